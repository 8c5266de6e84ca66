"""A trial's lease: who is running it, kept fresh by a heartbeat, so a study can tell a running trial
from one whose worker died.

``trials/<ID>/lease.json`` names the holder (host, pid, a random token) and the time of its last
heartbeat. A lease is *stale* — the trial is runnable again — when

* its holder ran on this host and that process is gone (a SIGKILLed worker: seen at once), or
* its heartbeat is older than the study's timeout (a dead node, a frozen process, another host).

Taking, refreshing and releasing a lease happen under ``fcntl.flock`` on ``trials/<ID>/.lease.lock``
(a short critical section), so two workers that both see a stale lease cannot both take it. The
trainer's own lock on the run directory (:func:`lstm_scratch.rundir.locked`) still guards the run
itself; the lease is what other hosts and ``status`` can see.

A holder that was frozen past the timeout (suspended, swapped out, cut off from the file system) may
find on waking that another worker took its lease over. It must then publish nothing: its heartbeat
sees the foreign lease and raises :class:`LeaseLost` in the thread running the trial (at its next
Python instruction), and :meth:`Lease.publish` writes a result only after checking, under the lock,
that the lease is still its own — a takeover needs that lock too, so the check cannot go stale before
the write ends. (The interruption lands at whatever Python instruction the thread runs next — almost
always the return from a compiled kernel, but it could be a ``finally`` clause, whose rest it would skip:
a lock or file it was to release may then stay held until the process exits. No wrong record can result;
:meth:`Lease.publish` still guards the write.)

A lease file that cannot be read (a network file system's ESTALE or EIO) is no sign of a takeover: the
holder reads it again next beat, and gives the trial up only when the timeout has passed without a read
— by then a takeover may have happened.
"""
from __future__ import annotations

import ctypes
import fcntl
import json
import os
import secrets
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from ..atomic import atomic_write

LEASE_NAME, LEASE_LOCK_NAME = "lease.json", ".lease.lock"


class LeaseLost(BaseException):
    """Another worker took over the lease of the trial this thread runs (this process sent no heartbeat
    for the study's timeout). Like ``KeyboardInterrupt`` it is no error of the trial, hence a
    ``BaseException`` (the trainer's ``except Exception`` records failures): the trial stops, its
    checkpoint stays, and the new holder runs it."""


def read_lease(trial_dir: Path) -> dict | None:
    """The lease in ``trial_dir``, or None (absent or unreadable — a half-written lease cannot exist,
    writes are atomic, so unreadable means foreign: it protects nothing)."""
    try:
        return _load(trial_dir)
    except OSError:
        return None


def _load(trial_dir: Path) -> dict | None:
    """The lease in ``trial_dir``; None if there is none or the file is no lease; ``OSError`` if it could
    not be read just now (ESTALE, EIO: a hiccup of a network file system) — which tells its holder nothing
    about who holds it."""
    try:
        lease = json.loads((Path(trial_dir) / LEASE_NAME).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    ok = isinstance(lease, dict) and isinstance(lease.get("pid"), int) and isinstance(lease.get("heartbeat"), (int, float))
    return lease if ok else None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:             # exists, owned by someone else
        return True
    # A zombie (killed child not yet reaped by its parent) still answers kill(0) but runs nothing.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def is_stale(lease: dict, timeout: float, now: float | None = None) -> bool:
    """Whether ``lease``'s holder is dead: same host and its pid gone, or no heartbeat for ``timeout`` s."""
    now = time.time() if now is None else now
    if lease.get("host") == socket.gethostname() and not _process_alive(lease["pid"]):
        return True
    return now - lease["heartbeat"] > timeout


def live_lease(trial_dir: Path, timeout: float) -> dict | None:
    """The lease in ``trial_dir`` if its holder is alive, else None."""
    lease = read_lease(trial_dir)
    return lease if lease is not None and not is_stale(lease, timeout) else None


def clear_stale(trial_dir: Path, timeout: float) -> dict | None:
    """Remove the lease of ``trial_dir`` if its holder is dead, and return it (else None): the driver
    counts each lost worker once this way."""
    trial_dir = Path(trial_dir)
    if not (trial_dir / LEASE_NAME).exists():
        return None
    with _critical(trial_dir):
        if not (trial_dir / LEASE_NAME).exists():
            return None
        lease = read_lease(trial_dir)
        if lease is not None and not is_stale(lease, timeout):
            return None
        (trial_dir / LEASE_NAME).unlink(missing_ok=True)
        return lease or {}


@contextmanager
def _critical(trial_dir: Path):
    fd = os.open(Path(trial_dir) / LEASE_LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)                    # closing drops the flock


def _raise_in(thread_id: int, exception: type[BaseException]) -> None:
    """Raise ``exception`` in thread ``thread_id`` when it next runs Python code (a compiled kernel
    finishes first): CPython's ``PyThreadState_SetAsyncExc``. The thread running a trial is not always the
    main thread (a Dask worker runs tasks in threads), so a signal would not reach it."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exception))


class Lease:
    """A lease held by this process; :meth:`release` (or the ``with`` block's end) gives it back.
    A heartbeat thread rewrites the lease every ``heartbeat`` seconds while it is held; if it finds
    another holder's lease (or none), it raises :class:`LeaseLost` in the thread that took the lease
    (the one running the trial), unless that thread has published the trial's result already.

    A lease file that cannot be read (ESTALE, EIO on a network file system) says nothing about its
    holder: the heartbeat tries again next beat, and counts the lease as lost only once ``timeout``
    seconds have passed since it last read it as its own — by then another worker may have taken it."""

    def __init__(self, trial_dir: Path, *, timeout: float, heartbeat: float, labels: dict):
        self.dir, self.timeout, self.heartbeat = Path(trial_dir), float(timeout), float(heartbeat)
        self.content = {"host": socket.gethostname(), "pid": os.getpid(), "token": secrets.token_hex(8),
                        "acquired": time.time(), "heartbeat": time.time(), **labels}
        self._confirmed = time.time()       # when the lease was last read as this one (acquire writes it)
        # The thread running the trial (the one that took the lease); None once it published. Read and
        # cleared only under the lease's lock, so an interruption and a publication never cross.
        self._runner = threading.get_ident()
        self._stop = threading.Event()
        self._thread = None

    def _write(self) -> None:
        self.content["heartbeat"] = time.time()
        text = json.dumps(self.content)
        atomic_write(self.dir / LEASE_NAME, lambda handle: handle.write(text), binary=False)

    def _ours(self) -> bool | None:
        """Under the lease's lock: True if the lease file is this lease, False if it is absent or
        another's; None if it could not be read and ``timeout`` has not passed since it last was this
        lease (then it is False: lost)."""
        try:
            lease = _load(self.dir)
        except OSError:
            return None if time.time() - self._confirmed <= self.timeout else False
        if lease is None or lease.get("token") != self.content["token"]:
            return False
        self._confirmed = time.time()
        return True

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            try:
                with _critical(self.dir):
                    ours = self._ours()
                    if ours is False:
                        self._lose()
                        return
                    if ours:
                        self._write()
            except OSError:             # the lock or the write met a network file system's hiccup: again next beat
                pass

    def _lose(self) -> None:
        """Under the lease's lock, another worker's lease found (or none, or none readable for the
        timeout): stop the trial (its result would not be ours to publish)."""
        if self._runner is not None:
            _raise_in(self._runner, LeaseLost)

    def publish(self, write) -> None:
        """Call ``write()`` — the writing of the trial's result — if this process still holds the lease,
        checked under the lease's lock, which a takeover needs too; else raise :class:`LeaseLost` and
        write nothing. A lease file that cannot be read is read again every heartbeat (the lock let go
        meanwhile), until it reads or the lease counts as lost (:class:`Lease`). After it, the trial
        thread is no longer interrupted: its result is out."""
        while True:
            with _critical(self.dir):
                ours = self._ours()
                if ours is False:
                    raise LeaseLost(f"{self.dir}: the lease was taken over by another worker, or its file "
                                    f"could not be read for over {self.timeout:g} s")
                if ours:
                    write()
                    self._runner = None
                    return
            time.sleep(self.heartbeat)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with _critical(self.dir):
            if self._ours():            # unreadable: left to go stale, its heartbeat has stopped
                (self.dir / LEASE_NAME).unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def _restarted(current: dict, mine: dict) -> bool:
    """Whether this process is the same Slurm array element as the lease's holder, started again
    (requeue, preemption, node failure): Slurm restarts an element only after its previous run ended,
    maybe on another node whose death the heartbeat would show only after the timeout."""
    element = mine.get("slurm_element")
    return (element is not None and current.get("slurm_element") == element
            and (current.get("host"), current.get("pid")) != (mine["host"], mine["pid"]))


def acquire(trial_dir: Path, *, timeout: float, heartbeat: float, labels: dict | None = None) -> Lease | None:
    """Take the lease of ``trial_dir`` (created if need be) if it is free or stale (or held by this
    Slurm array element's previous run, see ``labels["slurm_element"]``), and start its heartbeat;
    None if a live holder has it. The calling thread is taken to run the trial: it gets
    :class:`LeaseLost` if another worker takes the lease over."""
    trial_dir = Path(trial_dir)
    trial_dir.mkdir(parents=True, exist_ok=True)
    lease = Lease(trial_dir, timeout=timeout, heartbeat=heartbeat, labels=labels or {})
    with _critical(trial_dir):
        current = read_lease(trial_dir)
        if current is not None and not is_stale(current, timeout) and not _restarted(current, lease.content):
            return None
        lease._write()
    lease._thread = threading.Thread(target=lease._beat, name=f"lease-heartbeat {trial_dir.name}", daemon=True)
    lease._thread.start()
    return lease
