"""Running a study's trials: on local cores (the default, :mod:`.local`), on a Dask cluster, or on
dask-jobqueue workers; Slurm job arrays without Dask are in :mod:`.slurm`. One trial per process, one
thread each.

Every executor runs :func:`.worker.run_one` for the trials that are not done, and the driver loop
(:func:`run_study`) derives the state from the study directory again after every round, until no
trial is pending or running. So whatever an engine does — a child SIGKILLed, a Dask worker lost, a
task run twice — the files decide: a dead worker's trial has a stale lease and runs again (from its
checkpoint), a finished one is never trained again.

Before workers start, :func:`prepare` fetches the data and compiles the study's kernels once, in a
process with the workers' environment: four workers on cold caches took 56 s each (against 2.9 s
warm) and rebuilt the same cache four times.

Stopping: Ctrl-C or SIGTERM on the driver (``kill``, systemd, a batch system, a container stop) stops
the study and raises ``KeyboardInterrupt`` (:class:`Stopped` for SIGTERM) once the local pool's
children have stopped their trials (:mod:`.local`). Running again continues from the files.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections import Counter
from contextlib import contextmanager

from ..parallel import worker_environment
from .lease import LEASE_NAME, clear_stale
from .local import run_local
from .study import Study
from .summary import best_of
from .worker import run_one, write_failure

MAX_CRASHES = 3
"""A trial whose worker process dies this many times is recorded as failed (it would kill the next)."""

JOBQUEUE = ("slurm", "pbs", "sge")
CLOSE_SECONDS = 60                                   # a dask-jobqueue cluster's closing may hang: bounded
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3          # glibc's mallopt parameters (malloc.h)


class Stopped(KeyboardInterrupt):
    """The driver was sent SIGTERM: it stops the study as Ctrl-C does; the exit status is 128 + ``signum``."""
    signum = signal.SIGTERM


@contextmanager
def _sigterm_stops():
    """In the main thread, for the ``with`` block: SIGTERM raises :class:`Stopped`, once (a process group's
    ``kill``, systemd and batch systems may send it again while the study stops: then nothing happens;
    the handler stays, since one replaced by SIG_IGN after a second SIGTERM arrived makes Python raise
    "OSError: Signal 15 ignored due to race condition" in the middle of the cleanup)."""
    if threading.current_thread() is not threading.main_thread():
        yield                                        # signal handlers belong to the main thread
        return
    stopping = []

    def stop(signum, frame):
        if not stopping:
            stopping.append(signum)
            raise Stopped()
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


NUMBA_CACHE_VARIABLE = "LSTM_SCRATCH_NUMBA_CACHE"


def numba_cache_dir(study: Study):
    """The workers' ``NUMBA_CACHE_DIR``, chosen by ``$LSTM_SCRATCH_NUMBA_CACHE``: ``study`` for
    ``STUDY/numba-cache`` (on the shared file system with the study: one compile serves every node of
    the same CPU type), a directory (e.g. a node-local disk), or unset for Numba's default (the
    package's ``__pycache__``, else ``~/.cache/numba``). :func:`prepare` compiles into the same place."""
    chosen = os.environ.get(NUMBA_CACHE_VARIABLE)
    if not chosen:
        return None
    return str(study.path / "numba-cache") if chosen == "study" else os.path.abspath(os.path.expanduser(chosen))


def environment(study: Study) -> dict:
    """The environment of every worker process: one BLAS/OpenMP thread, one Numba thread, the cache."""
    return worker_environment(threads=1, numba_cache_dir=numba_cache_dir(study))


def prepare(study: Study) -> None:
    """Fetch the data and compile the kernels once, in a fresh process with the workers' environment
    (``python -m lstm_scratch.search.worker prepare STUDY``); a failure here stops the run before
    any worker starts, with the child's message."""
    done = subprocess.run([sys.executable, "-m", "lstm_scratch.search.worker", "prepare", str(study.path)],
                          env={**os.environ, **environment(study)}, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise ValueError(f"{study.path}: preparing the workers (data, kernels) failed:\n{tail}")


# ---------------------------------------------------------------------------------- progress
class _Progress:
    """A tqdm bar over the study's trials: ended / total, failures, best so far (in the sense of the
    task's objective: the highest accuracy, the lowest error or NLL), ETA (tqdm's rate)."""

    def __init__(self, study: Study, states, enabled):
        self.bar, self.objective = None, study.objective
        if enabled is None:
            enabled = sys.stderr.isatty()
        if enabled:
            from tqdm import tqdm
            self.bar = tqdm(total=study.size, unit="trial", desc=f"{study.task} study", dynamic_ncols=True)
        self.refresh(states)

    def refresh(self, states) -> None:
        ended = [s for s in states if s.state in ("done", "diverged", "failed")]
        self.failed = sum(s.state == "failed" for s in states)
        self.diverged = sum(s.state == "diverged" for s in states)
        self.best = best_of([s.record["best_valid_metric"] for s in ended if s.state == "done"], self.objective)
        if self.bar is not None:
            self.bar.n = len(ended)
            self._postfix()

    def _postfix(self) -> None:
        self.bar.set_postfix(failed=self.failed, diverged=self.diverged,
                             best="-" if self.best is None else f"{self.best:.4g}", refresh=True)

    def update(self, summary: dict) -> None:
        if not summary["ran"] or summary["state"] not in ("done", "diverged", "failed"):
            return
        self.failed += summary["state"] == "failed"
        self.diverged += summary["state"] == "diverged"
        if summary["state"] == "done":
            self.best = best_of([self.best, summary["valid_metric"]], self.objective)
        if self.bar is not None:
            self.bar.update(1)
            self._postfix()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ---------------------------------------------------------------------------------- the driver
def _check_choice(workers, scheduler, client, jobqueue, jobqueue_options) -> None:
    given = [name for name, value in (("scheduler", scheduler), ("client", client), ("jobqueue", jobqueue))
             if value is not None]
    if len(given) > 1:
        raise ValueError(f"choose one executor: {' and '.join(given)} were both given")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers={workers!r}: give the number of worker processes (or jobs), an integer ≥ 1")
    if workers is not None and (scheduler or client):
        raise ValueError("workers= is for the local executor and dask-jobqueue; a Dask cluster has its own workers")
    if jobqueue is not None and jobqueue not in JOBQUEUE:
        raise ValueError(f"jobqueue={jobqueue!r}: use one of {', '.join(JOBQUEUE)}")
    if jobqueue_options and jobqueue is None:
        raise ValueError("jobqueue_options need jobqueue= (slurm, pbs or sge)")
    if scheduler is not None and (not isinstance(scheduler, str) or "://" not in scheduler):
        raise ValueError(f"scheduler={scheduler!r}: give the address as tcp://HOST:PORT")


def run_study(study: Study, *, workers=None, scheduler=None, client=None, jobqueue=None, jobqueue_options=None,
              retry_failed=False, progress=None, prepare_first=True, poll_seconds=None) -> dict:
    """Run every trial of ``study`` that has not ended, on the chosen executor, and return its status."""
    _check_choice(workers, scheduler, client, jobqueue, jobqueue_options)
    with _sigterm_stops(), _executor(study, workers, scheduler, client, jobqueue, jobqueue_options) as submit:
        if prepare_first:
            prepare(study)
        states = study.states()
        bar = _Progress(study, states, progress)
        crashes, retried, silent = Counter(), set(), 0
        poll = min(5.0, study.heartbeat) if poll_seconds is None else poll_seconds
        try:
            while True:
                if _count_crashes(study, states, crashes):
                    states = study.states()
                todo = [s.trial.index for s in states if s.state == "pending"
                        or (retry_failed and s.state == "failed" and s.trial.index not in retried)]
                if not todo:
                    if not any(s.state == "running" for s in states):
                        break
                    time.sleep(poll)            # trials held by workers of another driver: wait for them
                else:
                    retry = {i for i in todo if states[i].state == "failed"}
                    retried |= retry
                    ran = []
                    submit(todo, lambda summary: (ran.append(summary["ran"]), bar.update(summary)), retry)
                    silent = _check_started(study, todo, ran, silent)
                    if not any(ran):            # all found busy (e.g. a run outside the study holds one)
                        time.sleep(poll)
                states = study.states()
                bar.refresh(states)
        finally:
            bar.close()
    return study.status(states)


def _check_started(study: Study, todo, ran: list, silent: int) -> int:
    """The number of rounds in a row in which no worker reported a trial or took one's lease: workers
    that die before they start (a broken environment; a driver script read from stdin, which spawned
    workers cannot import) would otherwise be started again for ever. After MAX_CRASHES such rounds,
    a ``ValueError`` (the workers' own error is on stderr above it)."""
    if ran or any((study.trial(i).path / LEASE_NAME).exists() for i in todo):
        return 0
    if silent + 1 < MAX_CRASHES:
        return silent + 1
    raise ValueError(f"{study.path}: the worker processes ended {MAX_CRASHES} times in a row before running any "
                     "trial (their error is above); see what one trial does in the foreground with "
                     f"'lstm-odyssey search run-trial {study.path} --index {todo[0]}'. A driver script must "
                     "be a file the workers can import (not python - or stdin) and guard its work with "
                     "if __name__ == '__main__'")


def _count_crashes(study: Study, states, crashes: Counter) -> bool:
    """A pending trial whose lease file is still there lost its worker (killed, out of memory, node
    gone). After MAX_CRASHES such losses it is recorded as failed instead of killing another worker
    (then True: the states changed)."""
    gave_up = False
    for s in states:
        if s.state != "pending":
            continue
        lease = clear_stale(s.trial.path, study.lease_timeout)     # removed: each loss counted once
        if lease is None:
            continue
        crashes[s.trial.index] += 1
        if crashes[s.trial.index] >= MAX_CRASHES:
            who = f"process {lease.get('pid')} on {lease.get('host')}" if lease else "its worker"
            write_failure(s.trial, f"the worker process died {MAX_CRASHES} times while running this "
                                           f"trial (last: {who}); run it alone to see why (e.g. memory)")
            gave_up = True
    return gave_up


@contextmanager
def _executor(study, workers, scheduler, client, jobqueue, jobqueue_options):
    """A ``submit(indices, on_result, retry)`` function that runs the trials and returns when all ended
    or the engine broke (the driver then looks at the files again)."""
    if scheduler is None and client is None and jobqueue is None:
        yield lambda todo, on_result, retry: run_local(study, todo, workers or len(os.sched_getaffinity(0)),
                                                       environment(study), on_result, retry)
        return
    with _dask_client(study, scheduler, client, jobqueue, jobqueue_options, workers) as dask_client:
        rounds = Counter()

        def submit(todo, on_result, retry):
            rounds["n"] += 1
            _run_dask(study, dask_client, todo, on_result, retry, rounds["n"])
        yield submit


# ---------------------------------------------------------------------------------- Dask
def parse_options(items) -> dict:
    """``["queue=debug", "walltime=01:00:00", "cores=1", 'scheduler_options={"dashboard_address": null}']``
    → {queue: "debug", …, cores: 1, scheduler_options: {…}}: a value that reads as JSON is taken as
    such, any other as a string."""
    options = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"jobqueue option {item!r}: write NAME=VALUE, e.g. queue=debug")
        try:
            options[name.strip().replace("-", "_")] = json.loads(value)
        except ValueError:
            options[name.strip().replace("-", "_")] = value.strip()
    return options


@contextmanager
def _dask_client(study, scheduler, client, jobqueue, options, workers):
    try:
        from distributed import Client
    except ImportError:
        raise ValueError("the Dask executors need the dask extra: pip install 'lstm_scratch[dask]'") from None
    if client is not None:
        yield client
        return
    if scheduler is not None:
        try:
            connected = Client(scheduler, timeout="10s", set_as_default=False)
        except (OSError, TimeoutError) as err:
            raise ValueError(f"cannot reach the Dask scheduler at {scheduler} ({type(err).__name__}: {err}); "
                             "start one ('dask scheduler') or check the address — nothing was run") from None
        with connected:
            yield connected
        return
    with _jobqueue_cluster(study, jobqueue, options, workers) as cluster:
        connected = Client(cluster, set_as_default=False)
        try:
            yield connected
        finally:
            connected.close(timeout=CLOSE_SECONDS)


@contextmanager
def _jobqueue_cluster(study, kind, options, workers):
    """A dask-jobqueue cluster of ``workers`` single-core jobs (kept at that size: a lost job is
    replaced), each worker with the workers' environment. ``options`` go to the cluster class
    (queue, walltime, memory, account, interface, …)."""
    try:
        import dask_jobqueue
    except ImportError:
        raise ValueError("--jobqueue needs dask-jobqueue: pip install 'lstm_scratch[dask]'") from None
    cls = {"slurm": dask_jobqueue.SLURMCluster, "pbs": dask_jobqueue.PBSCluster, "sge": dask_jobqueue.SGECluster}[kind]
    logs = study.path / "jobqueue"
    settings = {"cores": 1, "processes": 1, "memory": "2GB", "log_directory": str(logs),
                "job_script_prologue": [f"export {k}={v}" for k, v in environment(study).items()],
                **(options or {})}
    try:
        cluster = cls(**settings)
    except (TypeError, ValueError) as err:
        raise ValueError(f"dask-jobqueue {kind}: {err} (options: {sorted(settings)})") from None
    try:
        count = workers or 1
        cluster.adapt(minimum=count, maximum=count)
        yield cluster
    finally:
        jobs = [getattr(job, "job_id", None) for job in cluster.workers.values()]
        try:
            cluster.close(timeout=CLOSE_SECONDS)
        except Exception as err:          # the trials are done; say what may be left
            warnings.warn(f"dask-jobqueue: the cluster did not close cleanly ({type(err).__name__}: {err}); "
                          f"check that its jobs {jobs} have ended", RuntimeWarning, stacklevel=2)


def _restore_malloc() -> None:
    """Undo, in this process, what ``MALLOC_TRIM_THRESHOLD_`` did to glibc's allocator. Dask's nanny sets
    it (65536) for every worker process; glibc then also stops adapting its mmap threshold, so every
    NumPy temporary above 128 KiB becomes a fresh mmap with page faults: trials in a Dask worker trained
    1.5× and validated 1.9× slower (JSB, N = 100, same trial, same machine). Thresholds as glibc's own
    adaptation would reach them (mmap 32 MiB, trim 64 MiB) make them as fast as in a plain process."""
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ or getattr(_restore_malloc, "done", False):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(M_TRIM_THRESHOLD, 64 << 20)
    except (OSError, AttributeError):        # not glibc: the variable meant nothing there either
        pass
    _restore_malloc.done = True


def _dask_task(path: str, index: int, retry_failed: bool) -> dict:
    """What a Dask worker runs for one trial (one thread: ``run_trial`` pins it)."""
    from ..parallel import prepare_worker
    prepare_worker(threads=1)
    _restore_malloc()
    return run_one(path, index, threads=1, retry_failed=retry_failed)


def _run_dask(study: Study, client, todo, on_result, retry: set, round_number: int) -> None:
    """One future per trial: key = the trial's id (plus the round when the driver resubmits),
    ``pure=False``, ``retries=2`` (for exceptions; a lost worker's task is rescheduled by Dask
    itself, up to ``distributed.scheduler.allowed-failures``, then ``KilledWorker``)."""
    from distributed import as_completed as dask_completed
    from distributed.scheduler import KilledWorker
    suffix = "" if round_number == 1 else f"#{round_number}"
    futures = {client.submit(_dask_task, str(study.path), i, i in retry, key=f"{study.id[:8]}:{study.trial(i).id}{suffix}",
                             pure=False, retries=2): i for i in todo}
    for future in dask_completed(futures, loop=client.loop):
        index = futures[future]
        try:
            on_result(future.result())
        except KilledWorker as err:
            write_failure(study.trial(index), f"Dask: the trial killed its workers ({err})")
        except ValueError as err:         # the worker cannot use the study (no shared file system?)
            raise ValueError(f"trial {study.trial(index).id} on a Dask worker: {err} (workers need the "
                             f"study directory {study.path} on a shared file system)") from None
        finally:
            future.release()
