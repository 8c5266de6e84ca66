"""What a training run leaves on disk, written atomically (temporary name + ``os.replace``): a reader
sees the old file or the new one, never half of one, even when the run is killed while writing.

A run directory (``lstm-odyssey train --out DIR``) holds

* ``record.json`` — the run record: one self-describing JSON object per run (format ``RECORD_FORMAT``;
  fields listed in :func:`lstm_scratch.train.train`), written once, when the run ends;
* ``checkpoint.npz`` — the state after the last finished epoch (parameters, velocity, best
  parameters as arrays; configuration, history and random-generator states as JSON under
  ``__state__``), rewritten after every epoch; ``--resume`` continues from it;
* ``params.npz`` — the best-validation parameters in :meth:`lstm_scratch.network.Network.save`'s
  format (``Network.from_file`` reads it), written when the run ends with a test score.
"""
from __future__ import annotations

import json
import math
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .atomic import atomic_write

RECORD_FORMAT = "lstm_scratch.run/1"
CHECKPOINT_FORMAT = "lstm_scratch.checkpoint/1"
RECORD_NAME, CHECKPOINT_NAME, PARAMS_NAME = "record.json", "checkpoint.npz", "params.npz"


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


def save_checkpoint(path: str | os.PathLike, arrays: dict, state: dict) -> None:
    """Arrays by name plus a JSON ``state`` in one .npz file, atomically."""
    blob = json.dumps(jsonable({"format": CHECKPOINT_FORMAT, **state}), allow_nan=False)
    atomic_write(path, lambda handle: np.savez(handle, __state__=blob, **arrays))


def load_checkpoint(path: str | os.PathLike, arrays: bool = True) -> tuple[dict, dict]:
    """(arrays, state) from :func:`save_checkpoint`; ``ValueError`` naming the file if it is damaged.
    ``arrays=False`` reads only the small JSON state (the .npz members are read lazily) and gives {}."""
    try:
        with np.load(path, allow_pickle=False) as saved:
            state = json.loads(str(saved["__state__"]))
            loaded = {name: saved[name] for name in saved.files if name != "__state__"} if arrays else {}
    except FileNotFoundError:
        raise
    except Exception as err:   # zip, npy and JSON errors come in many types; all mean "unreadable"
        raise ValueError(f"{path}: unreadable checkpoint ({type(err).__name__}: {err}); delete "
                         f"{Path(path).parent} to start the run again, or point --out at the right "
                         "directory") from err
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a {CHECKPOINT_FORMAT} checkpoint (format {state.get('format')!r}); "
                         f"delete {Path(path).parent} or choose another --out")
    return loaded, state


def no_checkpoint(out: Path) -> ValueError:
    """The error for ``--resume`` where no epoch has finished, so there is nothing to continue."""
    return ValueError(f"{out / CHECKPOINT_NAME}: no checkpoint to resume from (no epoch of a run in "
                      f"{out} has finished); start the run afresh: the same command without --resume, "
                      "with --task and the other options")


def open_run_dir(out: Path | None, resume: bool):
    """Check a run directory before anything is written: the checkpoint to resume from (arrays, state),
    or None for a fresh run. Refuses to overwrite an ended run or to restart a started one, saying
    what to do instead. A run that failed before its first checkpoint may start afresh (its record
    is then replaced); one that failed later is continued with ``resume``."""
    if out is None:
        if resume:
            raise ValueError("resume needs the run directory (out=...) that holds the checkpoint")
        return None
    record, checkpoint = out / RECORD_NAME, out / CHECKPOINT_NAME
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a directory; choose another --out")
    outcome = None
    if record.exists():
        try:
            saved = read_json(record)
        except ValueError as err:
            raise ValueError(f"{err}; delete {out} to start the run again, or choose another --out") from err
        outcome = saved.get("outcome") if isinstance(saved, dict) else None
        if outcome != "failed":
            raise ValueError(f"{record}: this run has already ended ({outcome}); to run it again delete "
                             f"{out}, or choose another --out")
    if not checkpoint.is_file():
        if resume:
            raise no_checkpoint(out)
        return None                       # fresh, or failed before its first checkpoint: start afresh
    if not resume:
        what = "failed after its last checkpoint" if outcome == "failed" else "was started here"
        raise ValueError(f"{checkpoint}: a run {what}; continue it with --resume, or delete {out} to "
                         "start it again, or choose another --out")
    return load_checkpoint(checkpoint)


def code_version() -> str:
    """The git commit of the package's working tree (``+dirty`` if it has local changes), or the
    package version when it is not a git checkout."""
    from . import __version__
    here = Path(__file__).resolve().parent
    try:
        def git(*args):
            return subprocess.run(["git", "-C", str(here), *args], capture_output=True, text=True,
                                  timeout=10, check=True).stdout.strip()
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
        return f"git:{commit}{'+dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        return f"lstm_scratch {__version__}"


def environment(threads: int) -> dict:
    """Code and library versions and the machine, for the run record."""
    import numba
    import scipy
    from threadpoolctl import threadpool_info

    from . import __version__
    return {"code_version": code_version(), "package_version": __version__,
            "python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__,
            "scipy": scipy.__version__, "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "threads": threads,
            "blas": [f"{b.get('internal_api')} {b.get('version')} ({b.get('architecture')})"
                     for b in threadpool_info() if b.get("user_api") == "blas"]}


def run_record(*, outcome, config, task, network, history, best_epoch, best_valid_metric, test_metric,
               test_seconds, wall_seconds, cpu_seconds, started, sessions, divergence, error,
               environment) -> dict:
    """The run record (fields: see :func:`lstm_scratch.train.train`), in a fixed order."""
    seconds = history["seconds"]
    return {"format": RECORD_FORMAT, "outcome": outcome, "config": config, "seed": config["seed"],
            "task": task, "network": network, "epochs": len(history["valid_metric"]),
            "best_epoch": best_epoch, "best_valid_metric": best_valid_metric, "test_metric": test_metric,
            "history": history, "seconds_per_epoch": float(np.mean(seconds)) if seconds else None,
            "test_seconds": test_seconds, "wall_seconds": wall_seconds, "cpu_seconds": cpu_seconds,
            "started": started, "ended": now(),
            "sessions": sessions, "divergence": divergence, "error": error, "environment": environment}


def summary_line(record: dict, where=None) -> str:
    """One line for the end of ``lstm-odyssey train``."""
    c, r = record["config"], record
    line = (f"{c['task']} {c['arch']} N={c['hidden']} lr={c['lr']:g} m={c['momentum']:g} "
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
