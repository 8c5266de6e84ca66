"""The run record: one self-describing JSON object per training run (format ``RECORD_FORMAT``), the
contract between the trainer, a study and the analysis. This module is its schema: how a record is
built (:func:`run_record`), written (:func:`write_json`, atomically), read back and checked
(:func:`read_record`, :func:`check_record`), and shown in one line (:func:`summary_line`). Where records live on disk and
what a run directory may hold is :mod:`.rundir`; where the code and machine identity comes from is
:mod:`.provenance`.
"""
from __future__ import annotations

import json
import math
import os
from datetime import datetime, timezone

import numpy as np

from .atomic import atomic_write
from .checks import is_integer, is_real
from .provenance import provenance

RECORD_FORMAT = "lstm_scratch.run/1"
OUTCOMES = ("finished", "early_stopped", "diverged", "failed")
HISTORY = ("train_loss", "valid_metric", "seconds", "train_seconds", "valid_seconds")   # per-epoch lists


def now() -> str:
    """The current UTC time, ISO 8601, to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def jsonable(value):
    """``value`` with NumPy scalars and arrays made plain, and non-finite floats made ``None`` (strict
    JSON has no NaN; a diverged run's last loss is recorded as null)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | os.PathLike, obj) -> None:
    text = json.dumps(jsonable(obj), indent=1, allow_nan=False) + "\n"
    atomic_write(path, lambda handle: handle.write(text), binary=False)


def read_json(path: str | os.PathLike) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot read the JSON record ({type(err).__name__}: {err})") from err


def environment(threads: int) -> dict:
    """The record's ``environment``: :func:`.provenance.provenance` plus the run's thread count."""
    return {**provenance(), "threads": threads}


def run_record(*, outcome, config, task, network, history, best_epoch, best_valid_metric, test_metric,
               test_seconds, wall_seconds, cpu_seconds, started, sessions, divergence, error,
               environment, labels=None, extensions=()) -> dict:
    """The run record (fields: see :func:`lstm_scratch.train.train`), in a fixed order."""
    seconds = history["seconds"]
    return {"format": RECORD_FORMAT, "outcome": outcome, "config": config, "seed": config["seed"],
            "labels": dict(labels or {}), "task": task, "network": network,
            "epochs": len(history["valid_metric"]),
            "best_epoch": best_epoch, "best_valid_metric": best_valid_metric, "test_metric": test_metric,
            "history": history, "seconds_per_epoch": float(np.mean(seconds)) if seconds else None,
            "test_seconds": test_seconds, "wall_seconds": wall_seconds, "cpu_seconds": cpu_seconds,
            "started": started, "ended": now(), "sessions": sessions, "extensions": list(extensions),
            "divergence": divergence, "error": error, "environment": environment}


# What a record must hold to be used: field -> the test its value must pass (None allowed where the
# run may not have reached it). ``labels`` and ``extensions`` came later and are optional.
def _optional(test):
    return lambda v: v is None or test(v)


REQUIRED = {
    "outcome": lambda v: v in OUTCOMES, "config": lambda v: isinstance(v, dict),
    "seed": is_integer, "task": lambda v: isinstance(v, dict), "network": lambda v: isinstance(v, dict),
    "epochs": is_integer, "best_epoch": _optional(is_integer), "best_valid_metric": _optional(is_real),
    "test_metric": _optional(is_real),
    "history": lambda v: isinstance(v, dict) and all(isinstance(v.get(k), list) for k in HISTORY),
    "wall_seconds": is_real, "cpu_seconds": is_real, "started": lambda v: isinstance(v, str),
    "ended": lambda v: isinstance(v, str), "sessions": is_integer,
    "divergence": _optional(lambda v: isinstance(v, dict)), "error": _optional(lambda v: isinstance(v, str)),
    "environment": lambda v: isinstance(v, dict),
}
OPTIONAL = {"labels": lambda v: isinstance(v, dict), "extensions": lambda v: isinstance(v, list)}


def check_labels(labels) -> dict:
    """A record's ``labels`` (e.g. a study's {study, trial}) as a plain dict of string keys and JSON
    values, at most a few kilobytes; None gives {}."""
    if labels is None:
        return {}
    if not isinstance(labels, dict) or not all(isinstance(k, str) for k in labels):
        raise ValueError(f"labels={labels!r:.80}: give a dict with string keys, e.g. {{'study': 'jsb-0', "
                         "'trial': 'V-0003'}")
    try:
        text = json.dumps(labels, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"labels={labels!r:.80}: must be plain JSON (strings, numbers, lists, dicts): {err}") from err
    if len(text) > 4096:
        raise ValueError(f"labels: {len(text)} characters of JSON; keep labels small (≤ 4096), they go into "
                         "every record")
    return json.loads(text)


def check_fields(values: dict, required: dict, optional: dict, damaged, what: str = "the field") -> None:
    """Every field of ``required`` present in ``values``, and every present field of ``required`` or
    ``optional`` passing its test; else ``damaged(problem)`` is raised, the problem naming the field."""
    for field, test in (*required.items(), *optional.items()):
        if field not in values:
            if field in required:
                raise damaged(f"{what} {field!r} is missing")
        elif not test(values[field]):
            raise damaged(f"{what} {field!r} has an unusable value {values[field]!r:.80}")


def read_record(path: str | os.PathLike) -> dict:
    """The run record in ``path``, checked (:func:`check_record`). A truncated, foreign or corrupt record
    raises ``ValueError`` naming the file (a study treats it as missing and runs the trial again)."""
    return check_record(read_json(path), path, "delete it, or its run directory, to run again")


def check_record(record, where, remedy: str) -> dict:
    """``record`` if it is a run record: a JSON object of format ``RECORD_FORMAT``, every required field
    present with a value of the right kind, ``epochs`` equal to the history's length; else ``ValueError``
    naming ``where`` (a file, or a line of a published records file) and what to do (``remedy``)."""
    def damaged(problem):
        return ValueError(f"{where}: {problem}; not a usable run record ({remedy})")
    if not isinstance(record, dict):
        raise damaged(f"holds a JSON {type(record).__name__}, not an object")
    if record.get("format") != RECORD_FORMAT:
        raise damaged(f"format {record.get('format')!r}, expected {RECORD_FORMAT!r}")
    check_fields(record, REQUIRED, OPTIONAL, damaged)
    if record["epochs"] != len(record["history"]["valid_metric"]):
        raise damaged(f"epochs={record['epochs']} but the history holds "
                      f"{len(record['history']['valid_metric'])} epoch(s)")
    return record


def summary_line(record: dict, where=None) -> str:
    """One line for the end of ``lstm-odyssey train``."""
    c, r = record["config"], record
    synthetic = " [SYNTHETIC]" if r["task"].get("synthetic") else ""
    line = (f"{c['task']}{synthetic} {c['arch']} N={c['hidden']} lr={c['lr']:g} m={c['momentum']:g} "
            f"noise={c['noise']:g} seed={c['seed']}: {r['outcome']} after {r['epochs']} epoch(s)")
    if r["divergence"]:
        d = r["divergence"]
        line += f" (non-finite {d['what']} in epoch {d['epoch']})"
    if r["best_epoch"]:
        line += f"; best epoch {r['best_epoch']}, valid {r['best_valid_metric']:.4f}"
    if r["test_metric"] is not None:
        line += f", test {r['test_metric']:.4f} ({r['task']['metric']})"
    if r["seconds_per_epoch"]:
        line += f"; {r['seconds_per_epoch']:.2f} s/epoch"
    line += f"; wall {r['wall_seconds']:.1f} s"
    return line + (f" -> {where}" if where else "")
