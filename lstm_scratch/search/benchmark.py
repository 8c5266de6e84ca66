"""JZS's benchmark (issue 13): one study of protocol jzs per task over JZS's ten cells, in one directory.

    DIR/
      benchmark.json      the definition: tasks, trials per cell, seed, training limits, task options
      arithmetic/ xml/ memorisation/ nottingham/ piano_midi/      one study each (:mod:`.study`)

    lstm-odyssey jzs create DIR --trials 20           # or Benchmark.create("DIR", trials=20)
    lstm-odyssey jzs run DIR --workers 2               # the same executors as 'search run', study by study
    lstm-odyssey jzs export DIR                        # publish: each study's trials.csv + records.jsonl.gz
    lstm-odyssey jzs report DIR --out DIR/report       # JZS Table 1 (lstm_scratch.analysis.jzs_table)

Every study is an ordinary study (``search status``, ``search slurm``, ``search run`` work on each);
this module only defines them together and runs them in turn. Creating again with the same settings
resumes (the studies and their trials are kept); other settings are refused.

**Publishing.** ``jzs export`` writes, beside each study's ``study.json``, what ``search export`` writes
for one study (:data:`.summary.PUBLISHED`): the table, one row per trial, and the run records (no parameters).
``benchmark.json`` with those three files per task is the published benchmark; the report reads it alone
when the trial directories (``trials/``, git-ignored) are absent.

**Budget.** JZS's Table 1 comes from a search far larger than a CPU can run; ours is :data:`FULL_TRIALS`
trials per cell (cell = architecture × task), so the comparison of the best 10 % has 10 trials a side;
a benchmark with fewer is reported as REDUCED. The defaults below size one trial for a CPU
(:data:`DEFAULTS`; the measured costs are in README "JZS's benchmark").
"""
from __future__ import annotations

import json
import uuid
from pathlib import Path

from .. import records
from ..variants import JZS_ARCHITECTURES
from . import task_options as options_of_tasks
from .study import Study, existing_definition, open_definition, write_definition
from .summary import PUBLISHED

BENCHMARK_FORMAT = "lstm_scratch.jzs_benchmark/1"
BENCHMARK_NAME = "benchmark.json"
TASKS = ("arithmetic", "xml", "memorisation", "nottingham", "piano_midi")
"""JZS Table 1's columns we can run (arithmetic, XML; PTB is licensed), their memorisation task, and the
two music sets they used to check generalisation (Nottingham, Piano-midi.de)."""
FULL_TRIALS = 100
"""The stated budget: trials per cell of a full benchmark (best 10 % = 10 a side in the Welch test)."""
DEFAULTS = {"max_epochs": 20, "patience": 5,
            "task_options": {"arithmetic": {"max_digits": 3, "n_train": 10000, "n_valid": 500, "n_test": 500},
                             "xml": {"n_train": 2000, "n_valid": 500, "n_test": 500},
                             "memorisation": {"n_train": 2000, "n_valid": 500, "n_test": 500}}}
"""A trial sized for a CPU study, from 28 probe trials (README "JZS's benchmark"): at most 20 epochs,
patience 5; XML and memorisation at 2000 / 500 / 500 sequences; arithmetic with operands of up to 3
digits (JZS: 8) and 10000 training sequences.

Why arithmetic differs from JZS: at 8 digits no cell left the trivial level (best accuracy 0.17, the
previous-symbol predictor's 0.157) within 15k updates. At 3 digits the accuracy sits at the trivial
level (0.266) for 3k–8k updates and then rises; with fewer than 10000 sequences an epoch is so short that
the rule "η halved after 3 epochs without a better validation accuracy" decays η to nothing on that
plateau. At these settings, after 20 epochs, LSTM, LSTM-b and the GRU reach 0.40–0.45 on arithmetic
(Tanh 0.27–0.32) and 0.38–0.43 on XML (previous symbol 0.288; Tanh 0.28–0.29). The report says that
its arithmetic column is not JZS's task. Memorisation does not separate Tanh (1.000 at η = 0.2).

Cost measured at 31k parameters, scaled to the space's mean budget of 39k: CPU seconds per epoch ≈ 2.4
arithmetic, 2.8 xml, 0.45 memorisation, 1.5 nottingham, 1.0 piano_midi — ≈ 8.2 per cell and epoch over
the five tasks, so K trials per cell cost at most ≈ 0.45·K core-hours if every trial ran 20 epochs: 9
for K = 20, 45 for :data:`FULL_TRIALS`. Measured by the published benchmark (results/jzs-benchmark, K =
20): 8.06 core-hours, 29 CPU seconds per trial — early stopping saved ~10 %."""
# The definition: what must match when a benchmark is created again in the same directory.
DEFINITION = ("format", "tasks", "archs", "trials", "seed", "max_epochs", "patience", "dtype", "space",
              "task_options")


def same_benchmark(definition: dict, other: dict) -> dict:
    """{field: (definition's, other's)} for the :data:`DEFINITION` fields where two benchmark definitions
    differ, {} if none (cf. :func:`.study.same_study`)."""
    return {k: (definition.get(k), other.get(k)) for k in DEFINITION if definition.get(k) != other.get(k)}


def split_task_options(tasks, options) -> dict[str, list[str]]:
    """``--task-option`` items for a benchmark → {task: ["NAME=VALUE", …]}: ``TASK.NAME=VALUE`` goes to that
    task; ``NAME=VALUE`` to every task of ``tasks`` that takes NAME (at least one must). ``options`` may
    also be such a dict already ({task: {name: value}})."""
    if isinstance(options, dict):
        unknown = set(options) - set(tasks)
        if unknown:
            raise ValueError(f"task options for {sorted(unknown)}: not a task of this benchmark ({', '.join(tasks)})")
        return {task: [f"{k}={v}" for k, v in options.get(task, {}).items()] for task in tasks}
    out = {task: [] for task in tasks}
    for item in options or ():
        name, sep, value = str(item).partition("=")
        task, dot, name = name.strip().rpartition(".")
        if not sep:
            raise ValueError(f"task option {item!r}: write NAME=VALUE or TASK.NAME=VALUE, e.g. n_train=500 or "
                             "xml.n_train=300")
        if dot:
            if task not in out:
                raise ValueError(f"task option {item!r}: {task!r} is not a task of this benchmark "
                                 f"({', '.join(tasks)})")
            out[task].append(f"{name}={value}")
            continue
        takers = [t for t in tasks if name in options_of_tasks.declared(t)]
        if not takers:
            raise ValueError(f"task option {item!r}: no task of this benchmark takes {name!r}; " +
                             "; ".join(options_of_tasks.describe(t) for t in tasks))
        for t in takers:
            out[t].append(f"{name}={value}")
    return out


class Benchmark:
    """An existing benchmark directory (:meth:`create` makes one, :meth:`open` reads one)."""

    def __init__(self, path, definition: dict):
        self.path = Path(path)
        self.definition = definition
        self.tasks, self.trials = list(definition["tasks"]), definition["trials"]

    @classmethod
    def create(cls, path, *, trials: int, seed: int = 0, tasks=TASKS, task_options=None,
               max_epochs: int = DEFAULTS["max_epochs"], patience: int = DEFAULTS["patience"],
               dtype: str = "float64", space=None, defaults: bool = True) -> "Benchmark":
        """Define the benchmark in directory ``path`` and write it (``benchmark.json`` and one study per
        task); everything is checked — every study defined, every directory free or holding the same
        study — before anything is written. ``task_options``: ``["n_train=500", "xml.n_train=300"]``
        (:func:`split_task_options`) on top of :data:`DEFAULTS`' sizes (``defaults=False``: the
        generators' own sizes). ``space`` narrows JZS's space in every study (``"params=20000"``).
        ``max_epochs``, ``patience``, ``dtype``: every trial's. If ``path`` holds this benchmark already,
        it is returned (its trials kept)."""
        path = Path(path)
        if isinstance(tasks, str):
            tasks = [t.strip() for t in tasks.split(",") if t.strip()]
        unknown = [t for t in tasks if t not in TASKS]
        if not tasks or unknown or len(set(tasks)) != len(tasks):
            raise ValueError(f"tasks={tasks!r}: choose among {', '.join(TASKS)}, each once")
        given = split_task_options(tasks, task_options)
        base = DEFAULTS["task_options"] if defaults else {}
        options = {task: options_of_tasks.check(task, {**base.get(task, {}),
                                                       **options_of_tasks.check(task, given[task])})
                   for task in tasks}
        studies = {task: Study.define(path / task, task=task, archs="jzs", trials=trials, seed=seed,
                                      protocol="jzs", max_epochs=max_epochs, patience=patience, dtype=dtype,
                                      space=space, task_options=options[task]) for task in tasks}
        definition = {"format": BENCHMARK_FORMAT, "tasks": list(tasks), "archs": list(JZS_ARCHITECTURES),
                      "trials": trials, "seed": seed, "max_epochs": max_epochs, "patience": patience,
                      "dtype": dtype, "space": space, "task_options": options,
                      "full_trials": FULL_TRIALS, "id": uuid.uuid4().hex, "created": records.now()}
        definition = json.loads(json.dumps(definition))
        benchmark = existing_definition(cls, path, BENCHMARK_NAME, "benchmark", definition, same_benchmark,
                                        f"run it as it is ('lstm-odyssey jzs run {path}'), or choose another "
                                        "directory")
        for study in studies.values():
            study.existing()                # another study in a task's directory: refused before any write
        if benchmark is None:
            path.mkdir(parents=True, exist_ok=True)
            if not write_definition(path / BENCHMARK_NAME, definition):      # another process created it a moment ago
                return cls.create(path, trials=trials, seed=seed, tasks=tasks, task_options=task_options,
                                  dtype=dtype, space=space, defaults=defaults, max_epochs=max_epochs,
                                  patience=patience)
            benchmark = cls(path, definition)
        for study in studies.values():
            study.write()
        return benchmark

    @classmethod
    def open(cls, path) -> "Benchmark":
        """The benchmark in directory ``path``; ``ValueError`` naming the file if there is none or it is damaged."""
        return open_definition(cls, path, BENCHMARK_NAME, BENCHMARK_FORMAT, "benchmark",
                               f"lstm-odyssey jzs create {path} --trials K")

    def study_path(self, task: str) -> Path:
        return self.path / task

    def studies(self) -> dict[str, Study]:
        """{task: its study}, in the benchmark's task order."""
        return {task: Study.open(self.study_path(task)) for task in self.tasks}

    def exports(self) -> list[tuple[Study, dict[str, Path]]]:
        """[(each task's study, {"csv": path, "records": path})]: what ``jzs export`` writes where — each
        study's published files in its own directory (:data:`.summary.PUBLISHED`)."""
        return [(study, {kind: study.path / name for kind, name in PUBLISHED.items()})
                for study in self.studies().values()]

    def run(self, **executor) -> dict:
        """Run every study's trials not yet ended, one study after the other, on the executor that
        ``executor`` chooses (:meth:`Study.run`'s arguments: ``workers``, ``scheduler``, ``jobqueue``, …);
        returns {task: its status}."""
        return {task: study.run(**executor) for task, study in self.studies().items()}

    def status(self) -> dict:
        return {task: study.status() for task, study in self.studies().items()}

    def __repr__(self) -> str:
        return (f"Benchmark({str(self.path)!r}: {', '.join(self.tasks)} × {len(self.definition['archs'])} cells "
                f"× {self.trials} trials, seed {self.definition['seed']})")
