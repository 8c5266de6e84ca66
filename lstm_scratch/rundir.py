"""A run directory and its policy: what ``lstm-odyssey train --out DIR`` (or a study's trial) may do
with what is already there, the checkpoint format and what a run's state (:class:`RunState`) looks like
in it (:func:`save_run`, :func:`restore_run`), and the lock that keeps a second process out.

A run directory holds

* ``record.json`` — the run record (:mod:`.records`), written once, when the run ends;
* ``checkpoint.npz`` — the state after the last finished epoch (parameters, velocity, best
  parameters as arrays; configuration, history and random-generator states as JSON under
  ``__state__``), rewritten after every epoch; ``--resume`` continues from it;
* ``params.npz`` — the best-validation parameters in :meth:`lstm_scratch.network.Network.save`'s
  format (``Network.from_file`` reads it), written when the run ends with a test score;
* ``.lock`` — present while a process runs here (its host and pid inside; see :func:`locked`).

Every file is written atomically (temporary name + ``os.replace``): a reader sees the old file or the
new one, never half of one, even when the run is killed while writing.
"""
from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import socket
import tempfile
import time
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .atomic import atomic_write
from .checks import config_diff, is_integer, is_real
from .config import TrainConfig
from .records import HISTORY, check_fields, jsonable, now, read_json

CHECKPOINT_FORMAT = "lstm_scratch.checkpoint/1"
RECORD_NAME, CHECKPOINT_NAME, PARAMS_NAME, LOCK_NAME = "record.json", "checkpoint.npz", "params.npz", ".lock"
EXTENSIBLE = ("max_epochs", "patience")      # the limits a resumed run may raise (nothing else may change)


# ------------------------------------------------------------------------------------ the directory
def check_out(out) -> Path:
    """``out`` as a Path, refused with a clear ``ValueError`` before anything is written if a run could
    not write there: an empty name, a path through a file, a directory without write permission."""
    if not isinstance(out, (str, os.PathLike)) or not os.fspath(out):
        raise ValueError(f"out={out!r}: give the run directory as a non-empty path")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a directory; choose another --out")
    existing = out
    while not existing.exists():                       # the nearest ancestor that exists
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{out}: cannot be created, {existing} is a file; choose another --out")
    try:                                               # a real write: root ignores permission bits, and
        fd, probe = tempfile.mkstemp(prefix=".probe.", dir=existing)   # read-only mounts ignore them
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ValueError(f"{out}: cannot write in {existing} ({err.strerror or err}); choose another --out "
                         "or fix its permissions") from err
    return out


def no_checkpoint(out: Path) -> ValueError:
    """The error for ``--resume`` where no epoch has finished, so there is nothing to continue."""
    return ValueError(f"{out / CHECKPOINT_NAME}: no checkpoint to resume from (no epoch of a run in "
                      f"{out} has finished); start the run afresh: the same command without --resume, "
                      "with --task and the other options")


def check_run_dir(out: Path, resume: bool, config: dict | None = None) -> bool:
    """The policy of ``train``, checked before anything is written: True if ``out`` holds a checkpoint
    to continue, False for a fresh run. Refuses to overwrite an ended run or to restart a started one,
    saying what to do instead. A run that failed before its first checkpoint may start afresh (its
    record is then replaced); one that failed later is continued with ``resume``. An ended run
    (finished or early-stopped) may be continued with ``resume`` when ``config`` raises its
    ``max_epochs`` or ``patience`` (see :func:`compare_config`)."""
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
        if outcome != "failed" and not (resume and outcome in ("finished", "early_stopped")
                                        and config is not None and checkpoint.is_file()
                                        and _extends(checkpoint, config)):
            raise ValueError(f"{record}: this run has already ended ({outcome}); to run it again delete "
                             f"{out}, or choose another --out (a finished run can be extended: --resume "
                             "with a higher --max-epochs or --patience)")
    if not checkpoint.is_file():
        if resume:
            raise no_checkpoint(out)
        return False                      # fresh, or failed before its first checkpoint: start afresh
    if not resume:
        what = "failed after its last checkpoint" if outcome == "failed" else "was started here"
        raise ValueError(f"{checkpoint}: a run {what}; continue it with --resume, or delete {out} to "
                         "start it again, or choose another --out")
    return True


def _extends(checkpoint: Path, config: dict) -> bool:
    return compare_config(load_checkpoint(checkpoint, arrays=False)[1]["config"], config, checkpoint) is not None


def compare_config(saved: dict, wanted: dict, where, extend: bool = True) -> dict | None:
    """None if ``wanted`` is the configuration ``saved`` in ``where`` (a checkpoint or record); with
    ``extend``, the raised limits {max_epochs, patience} if it differs from it only by raising them.
    Anything else — another field, a lowered limit — is a ``ValueError`` listing (saved, wanted).
    Both are compared in canonical form (:meth:`.TrainConfig.canonical`): a file written before a
    field existed matches a configuration with that field's default."""
    try:
        saved = TrainConfig.canonical(saved)
    except ValueError as err:
        raise ValueError(f"{where}: its configuration cannot be read by this version ({err}); delete "
                         f"{Path(where).parent} to start the run again, or choose another --out") from err
    wanted = TrainConfig.canonical(wanted)
    diff = config_diff(saved, wanted)
    if not diff:
        return None
    if extend and set(diff) <= set(EXTENSIBLE):
        lowered = {k: d for k, d in diff.items() if not (isinstance(d[0], int) and d[1] > d[0])}
        if not lowered:
            return {k: wanted[k] for k in EXTENSIBLE}
        raise ValueError(f"{where}: a run can be extended, not shortened: {lowered} (field: (saved, now)) "
                         "would lower its limits")
    raise ValueError(f"{where}: made with another configuration (field: (saved, now)) "
                     f"{diff}" + ("; on resume only max_epochs and patience may be raised" if extend else ""))


def usable(path: Path, read, config_of, wanted: dict, otherwise: str):
    """``read(path)`` if ``path`` exists and was made with the configuration ``wanted`` (else a
    ``ValueError``, :func:`compare_config`); None if it does not exist, or if ``read`` finds it damaged —
    it is then set aside (:func:`set_aside`), with a warning, and the caller goes on ``otherwise``."""
    if not path.exists():
        return None
    try:
        found = read(path)
    except ValueError as err:
        moved = set_aside(path, "corrupt")
        warnings.warn(f"{err} -> set aside as {moved.name}; {otherwise}", RuntimeWarning)
        return None
    compare_config(config_of(found), wanted, path, extend=False)
    return found


def set_aside(path: Path, why: str) -> Path:
    """Rename a damaged file out of the way (``record.json`` -> ``record.json.<why>-<UTC time>``) so the
    run can go on without it and the file stays for inspection; return the new path."""
    target = path.with_name(f"{path.name}.{why}-{now().replace(':', '')}")
    os.replace(path, target)
    return target


# ------------------------------------------------------------------------------------ the lock
class RunLocked(ValueError):
    """Another process holds the run directory's lock; ``holder`` says who (host, pid, since)."""

    def __init__(self, out: Path, holder: dict):
        self.out, self.holder = out, holder
        who = (f"process {holder.get('pid')} on {holder.get('host')} since {holder.get('since')}" if holder
               else "another process (it has not written its name yet)")
        super().__init__(f"{out}: another run is using this directory ({who}); wait for it to end, or "
                         "choose another --out")


@contextmanager
def locked(out: Path):
    """Hold an exclusive lock on the run directory ``out`` (created if need be) for the ``with`` block:
    ``fcntl.flock`` on ``out/.lock``, which names the holder. A second process — or a second trial in
    this process — gets :class:`RunLocked` at once. The kernel drops the lock when the holder dies, so
    a killed run never leaves the directory locked. The lock file is removed on release; since a waiter
    may have opened the old file just before, a lock counts only if the file it locked is still the
    one at ``out/.lock``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK_NAME
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise ValueError(f"{path}: cannot lock the run directory ({err.strerror}); its file system "
                                 "may not support locks (flock): use a directory on one that does") from err
            raise RunLocked(out, _holder(path)) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)                      # we locked a file its holder had just removed: try again
    try:
        # Written in place, not atomically: replacing the file would replace the inode we hold locked.
        text = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": now()}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, text, 0)
        yield path
    finally:
        try:
            os.unlink(path)               # while still holding it: see the docstring
        except FileNotFoundError:
            pass
        os.close(fd)


def _holder(path: Path) -> dict:
    try:
        holder = json.loads(path.read_text(encoding="utf-8") or "{}")
        return holder if isinstance(holder, dict) else {}
    except (OSError, ValueError):
        return {}


# ------------------------------------------------------------------------------------ checkpoints
def _is_number(v):
    return v is None or is_real(v)


def _is_rng(v):
    return isinstance(v, dict) and isinstance(v.get("bit_generator"), str) and isinstance(v.get("state"), dict)


# What a checkpoint's JSON state and arrays must hold, checked in one place (a hand-edited or foreign
# checkpoint then names the key instead of failing with a raw KeyError deep in the trainer).
CHECKPOINT_STATE = {
    "config": lambda v: isinstance(v, dict),
    "history": lambda v: isinstance(v, dict) and all(isinstance(v.get(k), list)
                                                     and all(_is_number(x) for x in v[k]) for k in HISTORY)
    and len({len(v[k]) for k in HISTORY}) == 1,
    "best_epoch": lambda v: v is None or is_integer(v), "best_metric": _is_number,
    "order_rng": _is_rng, "noise_rng": _is_rng,
    "wall_seconds": lambda v: v is not None and _is_number(v), "cpu_seconds": lambda v: v is not None and _is_number(v),
    "sessions": is_integer, "started": lambda v: isinstance(v, str),
}
CHECKPOINT_OPTIONAL = {"extensions": lambda v: isinstance(v, list) and all(isinstance(e, dict) for e in v)}
CHECKPOINT_ARRAYS = ("params", "velocity", "best_params")


def save_checkpoint(path: str | os.PathLike, arrays: dict, state: dict) -> None:
    """Arrays by name plus a JSON ``state`` in one .npz file, atomically."""
    blob = json.dumps(jsonable({"format": CHECKPOINT_FORMAT, **state}), allow_nan=False)
    atomic_write(path, lambda handle: np.savez(handle, __state__=blob, **arrays))


def load_checkpoint(path: str | os.PathLike, arrays: bool = True) -> tuple[dict, dict]:
    """(arrays, state) from :func:`save_checkpoint`, checked against ``CHECKPOINT_STATE`` and
    ``CHECKPOINT_ARRAYS``; ``ValueError`` naming the file (and the key) if it is damaged.
    ``arrays=False`` reads only the small JSON state (the .npz members are read lazily) and gives {}."""
    def damaged(problem):
        return ValueError(f"{path}: {problem}; delete {Path(path).parent} to start the run again, or point "
                          "--out at the right directory")
    try:
        with np.load(path, allow_pickle=False) as saved:
            state = json.loads(str(saved["__state__"]))
            loaded = {name: saved[name] for name in saved.files if name != "__state__"} if arrays else {}
    except FileNotFoundError:
        raise
    except Exception as err:   # zip, npy and JSON errors come in many types; all mean "unreadable"
        raise damaged(f"unreadable checkpoint ({type(err).__name__}: {err})") from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        got = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"{path}: not a {CHECKPOINT_FORMAT} checkpoint (format {got!r}); "
                         f"delete {Path(path).parent} or choose another --out")
    check_fields(state, CHECKPOINT_STATE, CHECKPOINT_OPTIONAL, damaged, "the checkpoint's field")
    for name in CHECKPOINT_ARRAYS if arrays else ():
        if name not in loaded:
            raise damaged(f"the checkpoint has no array {name!r}")
        if loaded[name].ndim != 1 or loaded[name].dtype.kind != "f":
            raise damaged(f"the checkpoint's array {name!r} is {loaded[name].dtype} {loaded[name].shape}, "
                          "not a vector of floats")
    return loaded, state


# ------------------------------------------------------------------------------------ a run's state
@dataclass
class RunState:
    """What a run carries from epoch to epoch besides the parameters and the velocity; a checkpoint
    holds it with them (:func:`save_run`, :func:`restore_run`)."""

    best: np.ndarray                 # the parameters with the best validation metric so far
    order_rng: np.random.Generator   # reshuffles the training sequences every epoch
    noise_rng: np.random.Generator   # input noise
    history: dict                    # per-epoch lists: train_loss, valid_metric, *_seconds (jzs: lr)
    lr: float = 0.0                  # η of the next epoch (jzs: halved as the validation metric stalls)
    best_epoch: int | None = None
    best_metric: float = math.inf
    wall_seconds: float = 0.0        # spent by earlier sessions of this run (resume)
    cpu_seconds: float = 0.0
    sessions: int = 1
    started: str = ""
    extensions: list = None          # [{at_epoch, max_epochs, patience}]: limits raised on resume
    clock: tuple = (0.0, 0.0)        # (wall, CPU) clock readings at the last tick

    @property
    def epochs(self) -> int:
        return len(self.history["valid_metric"])

    def tick(self) -> None:
        """Add the wall and CPU time since the last tick to the run's totals."""
        now = (time.perf_counter(), time.process_time())
        self.wall_seconds += now[0] - self.clock[0]
        self.cpu_seconds += now[1] - self.clock[1]
        self.clock = now


def history_names(config: TrainConfig) -> tuple:
    """The per-epoch lists of a run's history: :data:`.records.HISTORY`, plus each epoch's η for jzs."""
    return HISTORY + (("lr",) if config.protocol == "jzs" else ())


def save_run(path, config: TrainConfig, opt, state: RunState) -> None:
    """The checkpoint of a run after an epoch: the optimiser's Θ and velocity and the best parameters
    as arrays, ``config`` and the rest of ``state`` as JSON (:func:`save_checkpoint`)."""
    save_checkpoint(
        path, {"params": opt.theta, "velocity": opt.velocity, "best_params": state.best},
        {"config": asdict(config), "history": state.history, "best_epoch": state.best_epoch,
         "best_metric": state.best_metric, "order_rng": state.order_rng.bit_generator.state,
         "noise_rng": state.noise_rng.bit_generator.state, "wall_seconds": state.wall_seconds,
         "cpu_seconds": state.cpu_seconds, "sessions": state.sessions, "started": state.started,
         "extensions": state.extensions or [], "lr": state.lr})


def restore_run(checkpoint, path, config: TrainConfig, opt, state: RunState) -> dict | None:
    """Continue from ``checkpoint`` = (arrays, state) read from ``path`` by :func:`load_checkpoint`: its
    arrays into ``opt.theta``, ``opt.velocity`` and ``state.best``, the rest into ``state`` (a new
    session). ``config`` may raise the checkpoint's max_epochs / patience: the raised limits are
    returned and recorded in ``state.extensions``; any other difference is a ``ValueError``."""
    arrays, saved = checkpoint
    extension = compare_config(saved["config"], asdict(config), path)
    for name, target in (("params", opt.theta), ("velocity", opt.velocity), ("best_params", state.best)):
        if arrays[name].shape != target.shape or arrays[name].dtype != target.dtype:
            raise ValueError(f"{path}: checkpoint array {name!r} is {arrays[name].dtype} {arrays[name].shape}, "
                             f"the network needs {target.dtype} {target.shape}")
        target[...] = arrays[name]
    for name, rng in (("order_rng", state.order_rng), ("noise_rng", state.noise_rng)):
        try:
            rng.bit_generator.state = saved[name]
        except (TypeError, ValueError, KeyError) as err:
            raise ValueError(f"{path}: the checkpoint's {name!r} is not a {type(rng.bit_generator).__name__} "
                             f"state ({type(err).__name__}: {err})") from err
    state.history = {name: list(saved["history"][name]) for name in history_names(config)}
    state.lr = saved.get("lr", config.lr)           # checkpoints from before the jzs protocol: η fixed
    state.best_epoch = saved["best_epoch"]
    state.best_metric = math.inf if saved["best_metric"] is None else saved["best_metric"]
    state.wall_seconds, state.cpu_seconds = saved["wall_seconds"], saved["cpu_seconds"]
    state.sessions, state.started = saved["sessions"] + 1, saved["started"]
    state.extensions = list(saved.get("extensions", []))
    if extension is not None:
        state.extensions.append({"at_epoch": state.epochs, **extension})
    return extension


def read_checkpoint_config(out) -> TrainConfig:
    """The configuration stored in ``out``'s checkpoint (what ``--resume`` continues), with the defaults
    of fields added since it was written. Reads only the checkpoint's small JSON state."""
    out = Path(out)
    if not (out / CHECKPOINT_NAME).is_file():
        raise no_checkpoint(out)
    return TrainConfig.from_dict(load_checkpoint(out / CHECKPOINT_NAME, arrays=False)[1]["config"])
