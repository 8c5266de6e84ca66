"""What a study has so far, from its trial states: the status table (``lstm-odyssey search status``),
the one-row-per-trial DataFrame (``export --csv``, the analysis' input) and the published run records
(``export --records``; ``restore`` puts them back into a study's trial directories)."""
from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

from .study import STATES, TRIALS_DIR

PUBLISHED = {"csv": "trials.csv", "records": "records.jsonl.gz"}
"""A published study's files beside its study.json (results/…): the table, one row per trial, which
``lstm-odyssey report`` reads when the trial directories are absent, and the run records."""

COLUMNS = ("trial", "index", "arch", "k", "task", "protocol", "hidden", "layers", "budget", "lr", "momentum",
           "noise", "nesterov", "clip", "init_scale", "clip_norm", "seed", "outcome", "epochs", "best_epoch",
           "valid_metric", "test_metric", "metric", "synthetic", "n_params", "wall_seconds", "cpu_seconds",
           "sessions", "host", "cpu", "code_version", "error")
"""The DataFrame's columns. ``protocol``: online (the paper's) or jzs; ``layers``, ``init_scale``,
``clip_norm``: the trial's (JZS's search dimensions; clip_norm None under online); ``budget``: a jzs
trial's parameter budget as drawn (N is the largest that fits it), None under online. ``outcome``: the
record's (finished, early_stopped, diverged, failed), or the trial's state (running, pending) when it
has none; ``valid_metric`` is the best validation metric (lower is better, but for accuracy: see the
task's objective, :attr:`Study.objective`); ``metric`` its name; ``synthetic`` whether the data were
a stand-in; ``host``, ``cpu`` (model × cores) and ``code_version``: where and with which code the trial
ran (a report states them: core-hours mean little without the machine); ``error``: the traceback of a
failed trial."""


def _row(study, s) -> dict:
    trial, record = s.trial, s.record
    config = trial.config
    jzs = config.protocol == "jzs"
    row = {"trial": trial.id, "index": trial.index, "arch": trial.arch, "k": trial.k, "task": study.task,
           "protocol": config.protocol, "hidden": config.hidden, "layers": config.layers,
           "budget": study.sample(trial.arch, trial.k, raw=True)["params"] if jzs else None,
           "lr": config.lr, "momentum": config.momentum, "noise": config.noise, "nesterov": config.nesterov,
           "clip": config.clip, "init_scale": config.init_scale, "clip_norm": config.clip_norm,
           "seed": config.seed}
    if record is None:
        failure = s.failure or {}
        row.update(outcome=s.state, epochs=None, best_epoch=None, valid_metric=None, test_metric=None,
                   metric=None, synthetic=None, n_params=None, wall_seconds=None, cpu_seconds=None,
                   sessions=None, host=failure.get("host"), cpu=None, code_version=None,
                   error=failure.get("error"))
        return row
    task, network, environment = record["task"], record["network"], record["environment"]
    row.update(outcome=record["outcome"], epochs=record["epochs"], best_epoch=record["best_epoch"],
               valid_metric=record["best_valid_metric"], test_metric=record["test_metric"],
               metric=task.get("metric"), synthetic=task.get("synthetic"), n_params=network.get("n_params"),
               wall_seconds=record["wall_seconds"], cpu_seconds=record["cpu_seconds"],
               sessions=record["sessions"], host=environment.get("host"), cpu=_cpu(environment),
               code_version=environment.get("code_version"), error=record["error"])
    return row


def _cpu(environment: dict) -> str | None:
    """The CPU model and the cores the machine had ("AMD EPYC × 2"), from a record's environment."""
    model, cores = environment.get("cpu"), environment.get("cpu_count")
    return None if model is None else f"{model} × {cores}" if cores else str(model)


def dataframe(study, states):
    """One row per trial, in index order, with :data:`COLUMNS`."""
    import pandas as pd
    return pd.DataFrame([_row(study, s) for s in states], columns=list(COLUMNS))


TIMING_KEYS = ("seconds", "train_seconds", "valid_seconds")
"""Per-epoch timings in a record's history, rounded to 0.1 ms when published (see :func:`published_record`)."""


def published_record(record: dict) -> dict:
    """A run record as it is published beside the table: everything the trial wrote (config, task,
    network, outcome, per-epoch history, CPU and wall time, environment) except that per-epoch timings
    are rounded to 0.1 ms — clock noise, which gzip cannot compress (it nearly halves the file). Metrics
    and losses keep every digit. Parameters and checkpoints are never part of a record."""
    history = record.get("history") or {}
    rounded = {key: [None if x is None else round(x, 4) for x in values] if key in TIMING_KEYS else values
               for key, values in history.items()}
    return {**record, "history": rounded}


def records_jsonl_gz(states) -> bytes:
    """The records of ``states`` that have one (ended trials, diverged and failed included), one JSON
    object per line in trial order, gzip-compressed with no time stamp in the header — so the same
    records give the same bytes (a re-export of an unchanged study changes nothing under version control)."""
    lines = [json.dumps(published_record(s.record), sort_keys=True, separators=(",", ":"), allow_nan=False)
             for s in sorted(states, key=lambda s: s.trial.index) if s.record is not None]
    text = "".join(line + "\n" for line in lines)
    return gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)


def _holds_ended_trials(table: Path) -> bool:
    """Whether the published table ``table`` lists a trial that ended (what an export from a study
    without trial directories would lose); a table that cannot be read counts as one that does."""
    import csv
    from ..records import OUTCOMES
    try:
        with open(table, newline="", encoding="utf-8") as handle:
            return any(row.get("outcome") in OUTCOMES for row in csv.DictReader(handle))
    except (OSError, UnicodeError, csv.Error):
        return True


def published_files(study, csv=None, records=None) -> list[tuple[str, bytes, str]]:
    """[(path, content, the line saying it was written)] of ``study``'s table (``csv``: :func:`dataframe`)
    and run records (``records``: :func:`records_jsonl_gz`), computed from one snapshot of its trial
    states, not written (``search export`` and ``jzs export`` — every study of a benchmark — prepare all
    their files before :func:`write_published` writes any).

    A study without trial directories but with a table of ended trials beside study.json is a published
    copy (a clone of results/): exporting it would replace the table with one of pending trials, so it is
    refused (``ValueError``) before anything is computed. A table of pending trials only (a benchmark's
    study not started when the benchmark was exported) has nothing to lose: it is exported again."""
    if not (csv or records):
        raise ValueError(f"{study.path}: nothing to export; give a table (--csv FILE) and/or the records "
                         "(--records FILE.jsonl.gz)")
    if records and not str(records).endswith(".jsonl.gz"):
        raise ValueError(f"--records {records}: the records file is gzipped JSON lines; name it *.jsonl.gz")
    table = study.path / PUBLISHED["csv"]
    if not (study.path / TRIALS_DIR).is_dir() and table.is_file() and _holds_ended_trials(table):
        raise ValueError(f"{study.path}: a published study (its table {table.name} without the trial "
                         f"directories {TRIALS_DIR}/); exporting would replace the table with one of pending "
                         "trials. Export from the directory the study ran in, or report this one as it is "
                         f"('lstm-odyssey report {table} --out OUT')")
    states = study.states()
    files = []
    if csv:
        frame = dataframe(study, states)
        files.append((str(csv), frame.to_csv(index=False).encode("utf-8"), f"{len(frame)} trials -> {csv}"))
    if records:
        data = records_jsonl_gz(states)
        files.append((str(records), data, f"{sum(s.record is not None for s in states)} records -> {records} "
                                          f"({len(data) / 1e6:.1f} MB)"))
    return files


def write_published(files) -> list[str]:
    """Write :func:`published_files`' files, each atomically; their lines."""
    from ..atomic import atomic_write
    for path, content, _ in files:
        atomic_write(path, lambda handle: handle.write(content))
    return [line for _, _, line in files]


def restore_published(study, path) -> dict:
    """Put the run records of a published records file (``path``, as :func:`records_jsonl_gz` writes it)
    back into ``study``'s trial directories, so a study whose working files are gone — a new machine, a
    wiped scratch disk, a fresh clone of results/ — continues where its records end instead of running
    those trials again (``lstm-odyssey search restore``).

    Every line must be a valid run record (:func:`lstm_scratch.records.check_record`) whose labels name a
    trial of this study and whose configuration is that trial's (the test a study applies to every
    record), each trial once; otherwise ``ValueError`` naming the line, and nothing is written. A trial that has a valid
    record already keeps it. The restored records are the published ones: per-epoch timings rounded to
    0.1 ms, everything else as the trial wrote it. Restoring while the study runs is refused if a worker
    holds one of the trials to restore (checked before writing; a worker starting in the moment between
    would write a record of the same configuration). Returns {"restored": n, "kept": n}."""
    from ..records import check_record, write_json
    from ..rundir import RECORD_NAME
    try:
        lines = gzip.decompress(Path(path).read_bytes()).decode("utf-8").splitlines()
    # gzip.BadGzipFile is an OSError, UnicodeError a ValueError; a damaged deflate stream raises zlib.error
    except (OSError, EOFError, ValueError, zlib.error) as err:
        raise ValueError(f"{path}: cannot read the published records ({type(err).__name__}: {err})") from None
    wanted, seen = [], {}           # seen: trial index -> the line of its record
    for number, line in enumerate(lines, 1):
        where = f"{path}, line {number}"
        try:
            record = check_record(json.loads(line), where, "export the records again from the study "
                                                            "that ran them: 'lstm-odyssey search export'")
        except ValueError as err:
            raise ValueError(str(err) if str(err).startswith(where) else f"{where}: not JSON ({err})") from None
        labels = record.get("labels") or {}
        index = labels.get("index")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < study.size:
            raise ValueError(f"{where}: labels.index {index!r} is no trial of {study.path} "
                             f"(0 … {study.size - 1}); restore records into the study they came from")
        trial = study.trial(index)
        if labels.get("trial") != trial.id or not trial.config.same_as(record["config"]):
            raise ValueError(f"{where}: the record of {labels.get('trial')!r} is not trial {trial.id} of "
                             f"{study.path} (another configuration); restore records into the study they "
                             "came from")
        if index in seen:           # e.g. two exports concatenated (cat a.gz b.gz is one valid gzip file)
            raise ValueError(f"{where}: a second record of trial {trial.id} (the first is on line {seen[index]}); "
                             "restore a records file as 'lstm-odyssey search export' wrote it")
        seen[index] = number
        wanted.append((trial, record))
    from .lease import live_lease
    missing = [(trial, record) for trial, record in wanted if study.matching_record(trial)[0] is None]
    for trial, _ in missing:          # a worker running a trial writes its own record: stop the study first
        holder = live_lease(trial.path, study.lease_timeout)
        if holder is not None:
            raise ValueError(f"{study.path}: trial {trial.id} is running (process {holder.get('pid')} on "
                             f"{holder.get('host')}); stop the study's workers before restoring records into it")
    for trial, record in missing:
        trial.path.mkdir(parents=True, exist_ok=True)
        write_json(trial.path / RECORD_NAME, record)
    return {"restored": len(missing), "kept": len(wanted) - len(missing)}


def best_of(values, objective):
    """The best of ``values`` (numbers, None skipped) in ``objective``'s sense, or None if there are none."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    return min(values) if objective.lower_is_better else max(values)


def _best(states, objective):
    done = [s for s in states if s.state == "done" and s.record["best_valid_metric"] is not None]
    if not done:
        return None
    best = (min if objective.lower_is_better else max)(done, key=lambda s: s.record["best_valid_metric"])
    return {"trial": best.trial.id, "valid_metric": best.record["best_valid_metric"],
            "test_metric": best.record["test_metric"]}


def status(study, states) -> dict:
    """{"archs": {arch: {state counts, best, cpu_hours}}, "total": {…, eta_hours}, "metric": name}.

    ETA = (pending + running trials) × mean wall time of the trials run so far ÷ max(1, running):
    the time to finish at the current parallelism, known once one trial has a record. "best": the best
    validation metric in the sense of the task's objective (highest accuracy, lowest error or NLL)."""
    objective = study.objective

    def summarise(group):
        counts = {state: sum(s.state == state for s in group) for state in STATES}
        cpu = sum(s.record["cpu_seconds"] for s in group if s.record is not None)
        return {**counts, "trials": len(group), "best": _best(group, objective), "cpu_hours": cpu / 3600}
    out = {"archs": {arch: summarise([s for s in states if s.trial.arch == arch]) for arch in study.archs},
           "total": summarise(states), "metric": None}
    walls = [s.record["wall_seconds"] for s in states if s.record is not None]
    metrics = [s.record["task"].get("metric") for s in states if s.record is not None]
    out["metric"] = metrics[0] if metrics else None
    total = out["total"]
    remaining = total["pending"] + total["running"]
    total["eta_hours"] = (remaining * (sum(walls) / len(walls)) / max(1, total["running"]) / 3600
                          if walls else (0.0 if remaining == 0 else None))
    return out


def _hours(h) -> str:
    if h is None:
        return "?"
    return f"{h * 60:.1f} min" if h < 1 else f"{h:.1f} h"


def status_text(study, info: dict) -> str:
    """The table of ``lstm-odyssey search status``."""
    metric = info["metric"] or "metric"
    head = f"{'arch':6} {'done':>5} {'running':>7} {'failed':>6} {'diverged':>8} {'pending':>7}  " \
           f"{'best valid ' + metric:>24} {'(test)':>9} {'CPU h':>7}"
    lines = [f"{study.path}: {study.task}, {len(study.archs)} architecture(s) × {study.n_trials} trials, "
             f"seed {study.seed}", head]
    for name, row in [*info["archs"].items(), ("total", info["total"])]:
        best = row["best"]
        best_text = (f"{best['valid_metric']:24.4f} {best['test_metric']:9.4f}"
                     if best and best["test_metric"] is not None else f"{'-':>24} {'':>9}")
        lines.append(f"{name:6} {row['done']:5d} {row['running']:7d} {row['failed']:6d} {row['diverged']:8d} "
                     f"{row['pending']:7d}  {best_text} {row['cpu_hours']:7.2f}")
    total = info["total"]
    if total["best"]:
        lines.append(f"best so far: trial {total['best']['trial']}")
    finished = total["done"] + total["failed"] + total["diverged"]
    remaining = total["pending"] + total["running"]
    lines.append(f"{finished}/{total['trials']} trials ended; " +
                 (f"ETA {_hours(total['eta_hours'])} at {max(1, total['running'])} running" if remaining else
                  "nothing left to run"))
    return "\n".join(lines)


def benchmark_text(infos: dict) -> str:
    """The line under ``lstm-odyssey jzs status``: the whole benchmark's progress from its studies'
    :func:`status` ({task: info}, run one after the other). Its ETA adds the studies' ETAs, each at its
    own parallelism; a study with no ended trial has none yet, so the ETA is then a lower bound and the
    line names those studies."""
    totals = {task: info["total"] for task, info in infos.items()}
    ended = sum(t["done"] + t["failed"] + t["diverged"] for t in totals.values())
    trials = sum(t["trials"] for t in totals.values())
    cpu = sum(t["cpu_hours"] for t in totals.values())
    unknown = [task for task, t in totals.items() if t["eta_hours"] is None]
    eta = sum(t["eta_hours"] for t in totals.values() if t["eta_hours"] is not None)
    line = f"benchmark: {ended}/{trials} trials ended, {cpu:.2f} CPU hours spent; "
    if not any(t["pending"] + t["running"] for t in totals.values()):
        return line + "nothing left to run"
    if not unknown:
        return line + f"ETA {_hours(eta)}"
    return line + (f"ETA ≥ {_hours(eta)}" if eta else "ETA ?") + \
        f" — no estimate yet for {', '.join(unknown)} (no trial ended)"
