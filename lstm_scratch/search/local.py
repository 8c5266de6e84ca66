"""The local executor: a pool of spawned processes on this machine's cores, one trial per child, and
how it stops.

Ctrl-C or SIGTERM on the driver (``kill``, systemd, a batch system, a container stop; a driver a shell
started in the background ignores SIGINT) stops the study: queued trials never start; each child stops
its trial where Python next runs (the checkpoint of its last finished epoch stays), releases its lease
and exits, never taking another trial; the driver waits for them (:data:`STOP_SECONDS` at most, then
SIGKILL). A child also stops so when the driver dies, even by SIGKILL (Linux: ``PR_SET_PDEATHSIG``),
instead of running on as an orphan. Observed before: the children took SIGTERM as KeyboardInterrupt,
which concurrent.futures' worker loop catches, and each went on with the next queued trial, orphaned.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager

from .study import Study
from .worker import run_one

STOP_SECONDS = 60                                    # a stopped child still there after this is killed
PR_SET_PDEATHSIG = 1                                 # prctl's option (linux/prctl.h)


@contextmanager
def _environ(values: dict):
    """``os.environ`` with ``values`` for the ``with`` block (spawned children inherit it at start)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


_child = {"in_trial": False, "signal": None}         # in a pool child: whether a trial runs; the stop signal


def _init_local_worker(env: dict, driver: int) -> None:
    """In each pool child, before any trial: the worker environment; SIGTERM and Ctrl-C stop the child
    (:func:`_stop_child`; SIGINT only if the driver did not ignore it: a driver started in the background
    by a shell ignores it, and so its children); and the child stops too when the driver dies."""
    from ..parallel import prepare_worker
    prepare_worker(threads=1, numba_cache_dir=env.get("NUMBA_CACHE_DIR"))
    for signum in (signal.SIGTERM, signal.SIGINT):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _stop_child)
    _stop_with(driver)


def _stop_with(driver: int) -> None:
    """Linux: have the kernel send this child SIGTERM when the driver dies (even by SIGKILL), so it stops
    like on the driver's SIGTERM instead of running on as an orphan. (The signal comes when the *thread*
    that started the child ends: the driver's thread that runs the study, which outlives its pools.) If
    the driver died before this took effect, the child is already an orphan: it ends now."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):           # no usable libc: the driver's own stopping still works
        return
    if os.getppid() != driver:
        os._exit(128 + signal.SIGTERM)


def _stop_child(signum, frame) -> None:
    """SIGTERM or SIGINT in a pool child (sent by the driver, to the process group, or on the driver's
    death; often several of them), acted on once: a running trial is interrupted (KeyboardInterrupt: the
    trainer keeps its checkpoint, the lease is released, then :func:`_pool_trial` ends the process); an
    idle child ends. Later signals do nothing (not SIG_IGN: see :func:`.executors._sigterm_stops`)."""
    if _child["signal"] is not None:
        return
    _child["signal"] = signum
    if _child["in_trial"]:
        raise KeyboardInterrupt
    os._exit(128 + signum)


def _pool_trial(path: str, index: int, retry_failed: bool) -> dict:
    """One trial in a pool child. A child that got a stop signal ends here, once the trial has cleaned
    up: concurrent.futures' worker loop catches every exception, so it would take the next queued trial."""
    _child["in_trial"] = True
    try:
        return run_one(path, index, threads=1, retry_failed=retry_failed)
    finally:
        _child["in_trial"] = False
        if _child["signal"] is not None:
            sys.stderr.flush()
            os._exit(128 + _child["signal"])


def run_local(study: Study, todo, workers: int, env: dict, on_result, retry: set) -> None:
    """``todo`` on a pool of ``workers`` processes spawned with the environment ``env`` (spawn: it is
    read before NumPy loads); ``on_result(summary)`` for each trial that returns; ``retry``: the failed
    trials to run again. A dead child breaks the pool: its trial's lease goes stale and the driver runs
    it again (the pool sends the other children SIGTERM: they stop their trials, which continue in the
    next pool). Ctrl-C or SIGTERM (a KeyboardInterrupt) in the driver stops the pool at once."""
    with _environ(env):
        pool = ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_local_worker, initargs=(env, os.getpid()))
    try:
        with _environ(env):                     # children are spawned by submit(): they read it at start
            futures = [pool.submit(_pool_trial, str(study.path), i, i in retry) for i in todo]
        for future in as_completed(futures):
            try:
                on_result(future.result())
            except BrokenProcessPool:
                return
    except KeyboardInterrupt:                   # Ctrl-C, or SIGTERM (.executors.Stopped)
        _stop_children(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _stop_children(pool: ProcessPoolExecutor) -> None:
    """Stop the pool now: no queued trial starts; every child gets SIGTERM (it stops its trial, keeps
    the checkpoint, releases the lease, exits); one still there after STOP_SECONDS is killed (its
    lease is then stale at once on this host, and its trial continues from its last checkpoint)."""
    children = list((pool._processes or {}).values())     # the pool has no public list of its children
    pool.shutdown(wait=False, cancel_futures=True)
    for child in children:
        child.terminate()
    deadline = time.monotonic() + STOP_SECONDS
    for child in children:
        child.join(max(0.0, deadline - time.monotonic()))
        if child.exitcode is None:
            child.kill()
            child.join()
