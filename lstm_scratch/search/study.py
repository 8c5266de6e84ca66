"""A random-search study: a directory that is the whole truth (SPEC §7).

    STUDY/
      study.json              the definition: task, architectures, trials, seed, space (and the reference
                              space it narrows, with its source), protocol, task options, …
      events.log              one JSON line per trial a worker ran to its end (append-only)
      trials/<ARCH>-<k:04d>/  one run directory per trial: the trainer's checkpoint.npz, record.json,
                              params.npz; lease.json while a worker holds it; failure.json if the
                              worker could not run it

Nothing else holds state: a trial's state is derived from its files, every time —

* **done** / **diverged** / **failed**: ``record.json`` is a valid run record
  (:func:`lstm_scratch.records.read_record`) whose configuration is this trial's (compared in canonical
  form, :meth:`TrainConfig.same_as`: a record written before a field existed matches its default), with
  that outcome (done = finished or early-stopped); a record that does not parse or belongs to another
  configuration is never used — the trial counts as not run, and the worker sets the file aside;
* **running**: a lease whose holder is alive (:mod:`.lease`);
* **failed** also: ``failure.json`` for this configuration (the worker could not even start the run);
* **pending**: anything else — never started, or its worker died (a stale lease).

Trial ``index`` (0 … archs × trials − 1) is trial k = index // len(archs) of architecture
archs[index % len(archs)], so any prefix of the indices covers every architecture evenly.
"""
from __future__ import annotations

import json
import math
import os
import uuid
from pathlib import Path
from typing import NamedTuple

from .. import minibatch, records
from ..atomic import atomic_write, is_part_file
from ..provenance import provenance
from ..rundir import RECORD_NAME
from ..train import TrainConfig
from ..variants import JZS_ARCHITECTURES, LSTM_VARIANTS
from ..variants import get as get_architecture
from . import lease as leases
from . import space as spaces
from . import task_options as options_of_tasks

STUDY_FORMAT = "lstm_scratch.study/1"
FAILURE_FORMAT = "lstm_scratch.trial_failure/1"
STUDY_NAME, EVENTS_NAME, TRIALS_DIR, FAILURE_NAME = "study.json", "events.log", "trials", "failure.json"
STATES = ("done", "running", "failed", "diverged", "pending")
PROTOCOL_FIELDS = ("protocol", "max_epochs", "patience", "dtype", "forget_bias", "bidirectional", "batch",
                   "unroll", "lr_decay")
"""The training settings every trial of a study shares (TrainConfig fields; study.json's ``protocol``).
A definition written before a field existed meant the field's default (:func:`protocol_settings`)."""
PROTOCOL_DEFAULTS = {"protocol": "online", "forget_bias": None, "bidirectional": None, "batch": None,
                     "unroll": None, "lr_decay": None}
NAMED_ARCHS = {"all": LSTM_VARIANTS, "jzs": JZS_ARCHITECTURES}
"""``archs="all"``: the nine Odyssey architectures; ``"jzs"``: JZS's ten (Tanh, LSTM, LSTM-f/-i/-o/-b,
GRU, MUT1–3)."""
JZS_LOSSES = ("next_symbol", "bernoulli")
"""The objectives of the tasks a jzs study takes: JZS's own tasks and the music sets (n_out = n_in)."""
# The definition of a study: what must match when a study is created again in the same directory.
DEFINITION = ("format", "task", "root", "archs", "trials", "seed", "shared_samples", "space", "protocol",
              "task_options")


class Trial(NamedTuple):
    index: int          # position in the study (Slurm array index, --index)
    id: str             # "<ARCH>-<k:04d>", also its directory name
    arch: str
    k: int              # the sample number; with shared samples, the same hyperparameters for every arch
    config: TrainConfig
    path: Path          # its run directory


class TrialState(NamedTuple):
    trial: Trial
    state: str                  # one of STATES
    record: dict | None         # the valid, matching run record (done / diverged / failed)
    lease: dict | None          # the live lease (running)
    failure: dict | None        # the worker's failure note (failed without a record)
    problem: str | None         # why a record that is there was not used (corrupt, another config)


def _parse_archs(archs) -> list[str]:
    if isinstance(archs, str):
        named = NAMED_ARCHS.get(archs.strip().lower())
        archs = list(named) if named is not None else archs.split(",")
    if not isinstance(archs, (list, tuple)) or not archs:
        raise ValueError(f"archs={archs!r}: give 'all' (the nine Odyssey architectures), 'jzs' (JZS's ten) or "
                         "a list, e.g. V,CIFG,GRU")
    names = [get_architecture(str(a).strip()).name for a in archs]
    if len(set(names)) != len(names):
        raise ValueError(f"archs={archs!r}: an architecture is named twice")
    return names


def protocol_settings(definition: dict) -> dict:
    """The training settings of a definition, every field of :data:`PROTOCOL_FIELDS` present (those a
    definition of an older version lacks get the default they then meant)."""
    return {**PROTOCOL_DEFAULTS, **definition["protocol"]}


def same_study(definition: dict, other: dict) -> dict:
    """{field: (definition's, other's)} where two definitions give different trials, {} if none.
    The settings are compared as the trials see them: with the defaults filled in, and the forget-gate
    bias as each architecture resolves it (None and 0.0 are the same for every row but LSTM-B's)."""
    def effective(d):
        settings = protocol_settings(d)
        biases = {}
        for arch in d["archs"]:
            try:
                biases[arch] = get_architecture(arch).initial_forget_bias(settings["forget_bias"])
            except ValueError:
                biases[arch] = settings["forget_bias"]
        return {**{k: d.get(k) for k in DEFINITION}, "protocol": {**settings, "forget_bias": biases},
                "task_options": d.get("task_options") or {}}        # older definitions: none
    mine, theirs = effective(definition), effective(other)
    return {k: (definition.get(k), other.get(k)) for k in DEFINITION if mine[k] != theirs[k]}


def open_definition(cls, path, name: str, fmt: str, what: str, create: str):
    """``cls(path, definition)`` from the JSON file ``path/name`` of format ``fmt``; a ``ValueError`` naming
    the file if there is none (``create``: the command that makes one), it is of another format, or it
    lacks a field ``cls`` needs."""
    file = Path(path) / name
    if not file.is_file():
        raise ValueError(f"{file}: no {what} here; create one with '{create}'")
    definition = records.read_json(file)
    if not isinstance(definition, dict) or definition.get("format") != fmt:
        raise ValueError(f"{file}: not a {fmt} {what} definition")
    try:
        return cls(path, definition)
    except (KeyError, TypeError) as err:
        raise ValueError(f"{file}: damaged {what} definition (missing or bad {err})") from err


def existing_definition(cls, path, name: str, what: str, definition: dict, differences, remedy: str):
    """What directory ``path`` already holds for ``definition``, before anything is written there:

    * the file ``path/name`` exists: ``cls.open(path)`` if ``differences(its definition, definition)``
      (→ {field: (existing, given)}) is empty, else a ``ValueError`` naming the file, the fields and
      ``remedy`` (what to do instead);
    * the directory is free (absent, or empty but for temporary files of ``name`` —
      :func:`lstm_scratch.atomic.is_part_file`: another process creating it this moment, or one killed
      while it did; the exclusive write settles the first, and removes the second's once stale): None;
    * anything else (other files, or a file at ``path``): a ``ValueError`` naming ``path``.

    ``what`` names the thing (study, benchmark) in the messages."""
    path = Path(path)
    file = path / name
    if file.exists():
        existing = cls.open(path)
        diff = differences(existing.definition, definition)
        if diff:
            raise ValueError(f"{file}: this directory holds another {what} (field: (existing, given)) {diff}; "
                             f"{remedy}")
        return existing
    if path.exists() and (not path.is_dir() or any(not is_part_file(p.name, name) for p in path.iterdir())):
        raise ValueError(f"{path}: exists and is not an empty directory (no {name} in it); "
                         f"choose a new directory for the {what}")
    return None


def write_definition(file: Path, definition: dict) -> bool:
    """Create ``file`` holding a definition as indented JSON, atomically and only if it does not exist:
    of two processes creating the same study at once exactly one writes it (True); the other gets False
    and has written nothing (it then reads the winner's)."""
    text = json.dumps(definition, indent=1) + "\n"
    try:
        atomic_write(file, lambda handle: handle.write(text), binary=False, exclusive=True)
    except FileExistsError:
        return False
    return True


class Study:
    """An existing study directory (:meth:`create` makes one, :meth:`open` reads one)."""

    def __init__(self, path, definition: dict):
        self.path = Path(path)
        self.definition = definition
        self.task, self.root = definition["task"], definition["root"]
        self.archs, self.n_trials, self.seed = list(definition["archs"]), definition["trials"], definition["seed"]
        self.space = spaces.space_from_dict(definition["space"])
        self.shared_samples, self.protocol = definition["shared_samples"], protocol_settings(definition)
        self.task_options = dict(definition.get("task_options") or {})     # older definitions: none
        self.reference_space = spaces.reference_space_of(definition)
        self.heartbeat = definition["lease"]["heartbeat_seconds"]
        self.lease_timeout = definition["lease"]["timeout_seconds"]
        self.id = definition["id"]
        self._trials: dict[int, Trial] = {}

    # ---------------------------------------------------------------------------- create / open
    @classmethod
    def create(cls, path, **settings) -> "Study":
        """Define a study in the directory ``path`` (:meth:`define`: the settings, every one checked and
        every trial's configuration built) and write its ``study.json`` (:meth:`write`): if ``path``
        already holds a study with the same definition, that study is returned; another definition is
        refused. Nothing is written unless all of it is right."""
        return cls.define(path, **settings).write()

    @classmethod
    def define(cls, path, *, task: str, archs="all", trials: int, seed: int = 0, space=None,
               shared_samples: bool = True, max_epochs: int = 150, patience: int = 15, dtype: str = "float64",
               forget_bias: float | None = None, bidirectional: bool | None = None, protocol: str = "online",
               batch: int | None = None, unroll: int | None = None, lr_decay: float | None = None, root=None,
               task_options=None, heartbeat_seconds: float = 30.0,
               lease_timeout_seconds: float = 300.0) -> "Study":
        """The study these settings define, in memory (nothing written: :meth:`write` writes it); a
        ``ValueError`` naming the setting if one is bad (every trial's configuration is built here).

        ``space``: narrow or fix dimensions of the paper's space (:func:`.space.narrowed`: a dict or
        ``"hidden=32,lr=1e-4:1e-2"``). ``shared_samples``: trial k of every architecture uses the same
        hyperparameters (common random numbers). ``max_epochs``, ``patience``, ``dtype`` (float64,
        float32 or mixed), ``forget_bias`` (None: each architecture's own, +1 for LSTM-B, else 0),
        ``bidirectional``: the training settings of every trial (SPEC §6).

        ``protocol="jzs"``: JZS's regime (SPEC §11, :mod:`lstm_scratch.minibatch`) on JZS's tasks
        (memorisation, arithmetic, xml) or the music sets, with JZS's space (:func:`.space.jzs_space`:
        parameter budget → N, layers, η, init scale, clipping norm; ``space`` narrows it) and
        ``batch``, ``unroll``, ``lr_decay`` for every trial (None: JZS's 20, 35, ½); ``archs="jzs"``
        names their ten cells.

        ``task_options``: options for the task's loader (:mod:`.task_options`: ``["n_train=500"]`` or
        ``{"n_train": 500}``; for JZS's tasks their sizes, seed and rules), checked against the options
        the task declares; every worker loads the task with them (:meth:`task_data`) and every record
        carries them (``labels["task_options"]``).

        The study's ``reference_space`` (in study.json: the source paper and the ranges of the space
        ``space`` narrows) is the Odyssey's for protocol online, JZS's for protocol jzs."""
        from ..datasets import TASKS, resolve
        path = Path(path)
        if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
            raise ValueError(f"trials={trials!r}: give the number of trials per architecture, an integer ≥ 1")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed={seed!r}: the study seed is an integer ≥ 0")
        if not isinstance(shared_samples, bool):
            raise ValueError(f"shared_samples={shared_samples!r}: must be True or False")
        for name, value in (("heartbeat_seconds", heartbeat_seconds), ("lease_timeout_seconds", lease_timeout_seconds)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise ValueError(f"{name}={value!r}: give a positive number of seconds")
        if lease_timeout_seconds <= 2 * heartbeat_seconds:
            raise ValueError(f"lease_timeout_seconds={lease_timeout_seconds} must exceed two heartbeats "
                             f"({2 * heartbeat_seconds} s), or live workers would look dead")
        if not isinstance(task, str):
            raise ValueError(f"task={task!r}: give a task name, e.g. jsb (see 'lstm-odyssey data list')")
        resolved = resolve(task, root)
        if root is not None and TASKS[resolved].access != "licensed":
            raise ValueError(f"root={root!r}: task {resolved!r} takes no corpus location (only timit and iam_ondb do)")
        if protocol not in ("online", "jzs"):
            raise ValueError(f"protocol={protocol!r}: use online (the paper's SGD) or jzs (JZS's minibatch regime)")
        if protocol == "jzs" and TASKS[resolved].loss not in JZS_LOSSES:
            raise ValueError(f"task={resolved!r}: a protocol jzs study takes JZS's tasks (memorisation, "
                             "arithmetic, xml) or a music set (jsb, nottingham, musedata, piano_midi)")
        default, source = spaces.reference_space(resolved, protocol)
        chosen = default if space is None else spaces.narrowed(
            default, space, "JZS's" if protocol == "jzs" else "the paper's")
        checked_options = options_of_tasks.check(resolved, task_options)
        if protocol == "jzs":            # JZS's defaults, recorded as numbers (what every trial uses)
            batch, unroll, lr_decay = (minibatch.DEFAULTS[name] if value is None else value
                                       for name, value in (("batch", batch), ("unroll", unroll),
                                                           ("lr_decay", lr_decay)))
        definition = {
            "format": STUDY_FORMAT, "task": resolved, "task_requested": task,
            "root": None if root is None else os.path.abspath(os.fspath(root)),
            "archs": _parse_archs(archs), "trials": trials, "seed": seed, "shared_samples": shared_samples,
            "space": spaces.space_to_dict(chosen),
            "reference_space": {"source": source,
                                "dimensions": {name: dim.describe() for name, dim in default.items()}},
            "protocol": {"protocol": protocol, "max_epochs": max_epochs, "patience": patience, "dtype": dtype,
                         "forget_bias": forget_bias, "bidirectional": bidirectional, "batch": batch,
                         "unroll": unroll, "lr_decay": lr_decay},
            "task_options": checked_options,
            "lease": {"heartbeat_seconds": float(heartbeat_seconds), "timeout_seconds": float(lease_timeout_seconds)},
            "id": uuid.uuid4().hex, "created": records.now(), "provenance": provenance(),
        }
        definition = json.loads(json.dumps(records.jsonable(definition)))   # as it will read back
        study = cls(path, definition)
        study.trials()                  # builds every trial's TrainConfig: a bad one raises before any write
        return study

    def existing(self) -> "Study | None":
        """The study already in this directory if it has this definition (:func:`same_study`), None if
        the directory is free (absent or empty); a ``ValueError`` if it holds another study or other files."""
        return existing_definition(type(self), self.path, STUDY_NAME, "study", self.definition, same_study,
                                   "open it as it is ('lstm-odyssey search run'), or choose another directory")

    def write(self) -> "Study":
        """Write this (defined) study's ``study.json``, atomically; if the directory holds the same study
        already — also one another process created at the same moment — return that one instead
        (:meth:`existing`)."""
        existing = self.existing()
        if existing is not None:
            return existing
        self.path.mkdir(parents=True, exist_ok=True)
        if not write_definition(self.path / STUDY_NAME, self.definition):
            return self.existing()              # another process created it a moment ago: theirs, if the same
        return self

    @classmethod
    def open(cls, path) -> "Study":
        """The study in directory ``path``; ``ValueError`` naming the file if there is none or it is damaged."""
        return open_definition(cls, path, STUDY_NAME, STUDY_FORMAT, "study",
                               f"lstm-odyssey search create {path} --task TASK --trials N")

    # ---------------------------------------------------------------------------- trials
    @property
    def size(self) -> int:
        return len(self.archs) * self.n_trials

    def trial(self, which) -> Trial:
        """Trial by index (int) or id (``"V-0003"``)."""
        if isinstance(which, str):
            arch, _, k = which.rpartition("-")
            if arch not in self.archs or not k.isdigit() or int(k) >= self.n_trials:
                raise ValueError(f"{self.path}: no trial {which!r} (architectures {','.join(self.archs)}, "
                                 f"k = 0 … {self.n_trials - 1})")
            which = int(k) * len(self.archs) + self.archs.index(arch)
        if isinstance(which, bool) or not isinstance(which, int) or not 0 <= which < self.size:
            raise ValueError(f"{self.path}: trial index {which!r} is out of range 0 … {self.size - 1}")
        if which not in self._trials:
            k, arch = divmod(which, len(self.archs))
            arch = self.archs[arch]
            config = TrainConfig(task=self.task, arch=arch, **{**self.protocol, **self.sample(arch, k)})
            trial_id = f"{arch}-{k:04d}"
            self._trials[which] = Trial(which, trial_id, arch, k, config, self.path / TRIALS_DIR / trial_id)
        return self._trials[which]

    def sample(self, arch: str, k: int, raw: bool = False) -> dict:
        """Trial k's hyperparameters for ``arch`` (TrainConfig values); ``raw``: the draws as sampled
        (jzs: the parameter budget ``params`` instead of N)."""
        options = dict(seed=self.seed, task=self.task, arch=arch, k=k, shared=self.shared_samples)
        if self.protocol["protocol"] != "jzs":
            return spaces.sample(self.space, **options)
        if raw:
            return spaces.jzs_draws(self.space, **options)
        from ..datasets import TASKS
        size = TASKS[self.task].n_in               # JZS's tasks and the music sets: n_out = n_in
        return spaces.jzs_sample(self.space, n_in=size, n_out=size, **options)

    @property
    def objective(self):
        """The task's objective (:mod:`lstm_scratch.objectives`): its metric and which way is better."""
        from ..datasets import TASKS
        return TASKS[self.task].objective

    def trials(self) -> list[Trial]:
        return [self.trial(i) for i in range(self.size)]

    def labels(self, trial: Trial) -> dict:
        """What a trial's record carries to name its study and place (``record["labels"]``), and the
        study's task options when it has any."""
        labels = {"study": self.id, "trial": trial.id, "index": trial.index, "arch": trial.arch, "k": trial.k}
        return {**labels, "task_options": self.task_options} if self.task_options else labels

    def task_data(self, dtype: str):
        """The task's splits as every trial of this study trains on them: loaded with the study's task
        options (none: ``load_task(task, dtype, root)``), once per process (:func:`.task_options.load`)."""
        return options_of_tasks.load(self.task, dtype, self.root, self.task_options)

    # ---------------------------------------------------------------------------- state
    def matching_record(self, trial: Trial) -> tuple[dict | None, str | None]:
        """(the trial's valid record, None), or (None, why the record there cannot be used), or (None, None)."""
        file = trial.path / RECORD_NAME
        if not file.exists():
            return None, None
        try:
            record = records.read_record(file)
        except ValueError as err:
            return None, str(err)
        if not trial.config.same_as(record["config"]):
            return None, f"{file}: the record is of another configuration than trial {trial.id}"
        return record, None

    def failure(self, trial: Trial) -> dict | None:
        try:
            note = json.loads((trial.path / FAILURE_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        ok = isinstance(note, dict) and note.get("format") == FAILURE_FORMAT
        return note if ok and trial.config.same_as(note.get("config")) else None

    def state(self, which) -> TrialState:
        trial = which if isinstance(which, Trial) else self.trial(which)
        record, problem = self.matching_record(trial)
        if record is not None:
            state = {"diverged": "diverged", "failed": "failed"}.get(record["outcome"], "done")
            return TrialState(trial, state, record, None, None, None)
        held = leases.live_lease(trial.path, self.lease_timeout)
        if held is not None:
            return TrialState(trial, "running", None, held, None, problem)
        failure = self.failure(trial)
        return TrialState(trial, "failed" if failure else "pending", None, None, failure, problem)

    def states(self) -> list[TrialState]:
        return [self.state(trial) for trial in self.trials()]

    # ---------------------------------------------------------------------------- events
    def log_event(self, **fields) -> None:
        """Append one JSON line to ``events.log`` in a single O_APPEND write: on a local file system
        lines from many processes never interleave. On NFS they may (its clients emulate O_APPEND:
        two hosts can write at the same offset), tearing a line — :meth:`events` then names it."""
        line = json.dumps({"time": records.now(), **records.jsonable(fields)}) + "\n"
        fd = os.open(self.path / EVENTS_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def events(self) -> list[dict]:
        """The lines of ``events.log``, in order (none if there is no log yet). A line that is no JSON
        object — torn by appends of several hosts on NFS, or edited — raises ``ValueError`` naming the
        file and line: the log is a history for people and tests, not state (that is in the trial
        directories), so deleting the line loses nothing a study needs."""
        file = self.path / EVENTS_NAME
        try:
            lines = file.read_bytes().splitlines()
        except FileNotFoundError:
            return []
        events = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                event = json.loads(line.decode("utf-8"))    # per line: a torn character is that line's error
                problem = None if isinstance(event, dict) else f"a JSON {type(event).__name__}"
            except ValueError as err:
                problem = f"not JSON ({err})"
            if problem is not None:
                raise ValueError(f"{file}, line {number}: {problem}, not an event (a line torn by appends from "
                                 "several hosts on NFS, or an edit?); delete that line — trial states live in "
                                 "the trial directories, not in this log")
            events.append(event)
        return events

    # ---------------------------------------------------------------------------- summaries
    def status(self, states: list[TrialState] | None = None) -> dict:
        """Per architecture and in total: counts per state, the best validation metric so far (and its
        test metric and trial), CPU hours spent, and an ETA at the current number of running trials."""
        from .summary import status
        return status(self, self.states() if states is None else states)

    def to_dataframe(self):
        """One row per trial (pandas DataFrame); see :func:`.summary.dataframe` for the columns."""
        from .summary import dataframe
        return dataframe(self, self.states())

    # ---------------------------------------------------------------------------- running
    def run(self, *, workers: int | None = None, scheduler: str | None = None, client=None,
            jobqueue: str | None = None, jobqueue_options: dict | None = None, retry_failed: bool = False,
            progress: bool | None = None, prepare: bool = True) -> dict:
        """Run every trial that is not done yet, and return :meth:`status`. One of: ``workers`` local
        processes (default: all cores), a Dask ``scheduler`` address or ``client``, or ``jobqueue``
        ("slurm", "pbs", "sge") with ``jobqueue_options`` for dask-jobqueue (``workers`` jobs).
        ``retry_failed``: run failed trials again (from their checkpoint). See :mod:`.executors`."""
        from .executors import run_study
        return run_study(self, workers=workers, scheduler=scheduler, client=client, jobqueue=jobqueue,
                         jobqueue_options=jobqueue_options, retry_failed=retry_failed, progress=progress,
                         prepare_first=prepare)

    def __repr__(self) -> str:
        return (f"Study({str(self.path)!r}: {self.task}, {','.join(self.archs)} × {self.n_trials} trials, "
                f"seed {self.seed})")

