"""One trial in one process: take the trial's lease, run (or resume, or find done) the trial with the
trainer's :func:`lstm_scratch.train.run_trial`, release the lease. Every executor — the local pool,
a Dask worker, a Slurm array element (``lstm-odyssey search run-trial``) — calls :func:`run_one`.

Exactly once: the lease keeps a second worker away while one runs the trial (and the trainer's
directory lock backs it up); a worker that finds a valid record of the trial returns it without
training; so a trial is trained to its end by one worker, even when a scheduler starts it twice
(Dask runs a task again when a worker dies, even one that had finished). The worker that ends it
appends one ``end`` line to the study's ``events.log``. A worker whose lease was taken over while it
was frozen (:class:`.lease.LeaseLost`) stops the trial and writes no record, failure or ``end`` line:
it publishes only through :meth:`.lease.Lease.publish`.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import traceback
from dataclasses import asdict
from pathlib import Path

from .. import records
from ..atomic import atomic_write
from ..rundir import CHECKPOINT_NAME, RECORD_NAME, RunLocked, load_checkpoint, set_aside
from . import lease as leases
from .study import FAILURE_FORMAT, FAILURE_NAME, Study

def _summary(s, ran: bool, busy: bool = False) -> dict:
    """What a worker returns to its executor (small: it travels over Dask and pipes)."""
    record = s.record
    return {"index": s.trial.index, "trial": s.trial.id, "state": "running" if busy else s.state, "ran": ran,
            "outcome": record["outcome"] if record else s.state,
            "valid_metric": record["best_valid_metric"] if record else None,
            "test_metric": record["test_metric"] if record else None,
            "wall_seconds": record["wall_seconds"] if record else None}


def _set_aside_foreign(trial, retry_failed: bool) -> None:
    """Under the lease: move out of the way what the trial must not use — a record or checkpoint of
    another configuration (never silently used, kept for inspection), and with ``retry_failed`` the
    failed record (so the trainer continues from the checkpoint)."""
    record_path, checkpoint_path = trial.path / RECORD_NAME, trial.path / CHECKPOINT_NAME
    if record_path.exists():
        try:
            record = records.read_record(record_path)
        except ValueError:
            record = None                   # damaged: the trainer sets it aside itself
        if record is not None and not trial.config.same_as(record["config"]):
            set_aside(record_path, "mismatched")
        elif record is not None and record["outcome"] == "failed" and retry_failed:
            set_aside(record_path, "retried")
    if checkpoint_path.exists():
        try:
            state = load_checkpoint(checkpoint_path, arrays=False)[1]
        except ValueError:
            state = None                    # damaged: the trainer sets it aside itself
        if state is not None and not trial.config.same_as(state["config"]):
            set_aside(checkpoint_path, "mismatched")
    if retry_failed:
        (trial.path / FAILURE_NAME).unlink(missing_ok=True)


def write_failure(trial, error: str) -> None:
    """``failure.json``: the trial could not run (its traceback or the reason), for this configuration."""
    note = {"format": FAILURE_FORMAT, "trial": trial.id, "config": asdict(trial.config), "error": error,
            "host": socket.gethostname(), "pid": os.getpid(), "time": records.now()}
    text = json.dumps(records.jsonable(note), indent=1)
    atomic_write(trial.path / FAILURE_NAME, lambda handle: handle.write(text), binary=False)


def _slurm_element() -> dict:
    """{"slurm_element": "JOB_TASK"} inside a Slurm array element (its lease then names it), else {}."""
    job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return {"slurm_element": f"{job}_{task}"} if job and task else {}


def run_one(study, which, *, threads: int = 1, retry_failed: bool = False) -> dict:
    """Run trial ``which`` (index or id) of ``study`` (a :class:`Study` or its path) in this process,
    unless it has ended or another live worker holds it; return a small summary dict (index, trial,
    state, ran, outcome, valid_metric, test_metric, wall_seconds). A trial that raises ends
    ``failed`` with its traceback (in its record, or in ``failure.json`` if no run could start);
    ``KeyboardInterrupt`` (and SIGTERM in ``lstm-odyssey search run-trial``) stops it, the checkpoint stays.
    If another worker takes the lease over meanwhile (this process was frozen past the lease timeout), the
    trial stops, nothing of it is written, a line on stderr says so, and the summary says not ``ran``."""
    study = study if isinstance(study, Study) else Study.open(study)
    trial = study.trial(which)
    s = study.state(trial)
    if s.state in ("done", "diverged") or (s.state == "failed" and not retry_failed):
        return _summary(s, ran=False)
    held = leases.acquire(trial.path, timeout=study.lease_timeout, heartbeat=study.heartbeat,
                          labels={"trial": trial.id, **_slurm_element()})
    if held is None:
        return _summary(study.state(trial), ran=False, busy=True)
    try:
        with held:
            ran = _run_held(study, trial, threads, retry_failed, held.publish)
    except leases.LeaseLost:
        _report_lost(study, trial)
        return _summary(study.state(trial), ran=False)
    return _summary(study.state(trial), ran=ran, busy=ran is None)


def _report_lost(study: Study, trial) -> None:
    holder = leases.read_lease(trial.path)
    what = (f"process {holder['pid']} on {holder.get('host')} took the trial over" if holder else
            "no lease of its own could be read since (another worker may hold it, or the file system failed)")
    print(f"trial {trial.id}: process {os.getpid()} on {socket.gethostname()} lost its lease (no heartbeat for "
          f"over {study.lease_timeout:g} s: frozen, suspended or cut off?) and {what}; "
          "stopped it and discarded its result, nothing written (the checkpoint stays)",
          file=sys.stderr, flush=True)


def _run_held(study: Study, trial, threads: int, retry_failed: bool, publish) -> bool | None:
    """Under the trial's lease: True if this process ran the trial to its end, False if it had
    ended already, None if a process that ignores leases holds its run directory. The record or
    failure note is written through ``publish`` (:meth:`.lease.Lease.publish`: only while the lease is
    still this process's), the ``end`` line after it."""
    from ..train import run_trial
    s = study.state(trial)                          # another worker may have ended it meanwhile
    if s.record is not None and not (s.state == "failed" and retry_failed):
        return False
    _set_aside_foreign(trial, retry_failed)
    event = {"event": "end", "trial": trial.id, "index": trial.index, "host": socket.gethostname(),
             "pid": os.getpid()}
    try:
        record = run_trial(trial.config, trial.path, labels=study.labels(trial), root=study.root,
                           data=study.task_data(trial.config.kernel_dtype), threads=threads, progress=False,
                           publish=publish)
    except RunLocked:
        return None
    except Exception:
        error = traceback.format_exc()
        publish(lambda: write_failure(trial, error))
        study.log_event(**event, outcome="failed", sessions=None)
        return True
    (trial.path / FAILURE_NAME).unlink(missing_ok=True)
    study.log_event(**event, outcome=record["outcome"], sessions=record["sessions"])
    return True

def prepare(study) -> dict:
    """Before the workers start: fetch and cache the task's data and compile (or load from the cache)
    the kernels of the study's architectures, so N workers do not each do it. Run in a process with
    the workers' environment (:func:`lstm_scratch.parallel.worker_environment`), so the kernels land
    in the Numba cache the workers read. Returns the seconds taken per step."""
    import time

    from ..parallel import warm_up
    study = study if isinstance(study, Study) else Study.open(study)
    start = time.perf_counter()
    study.task_data(study.trial(0).config.kernel_dtype)                      # mixed: float32 data
    loaded = time.perf_counter()
    compiled = warm_up(study.archs, study.protocol["dtype"])                 # mixed: float32 kernels
    return {"data_seconds": loaded - start, "compile_seconds": compiled}


def main(argv=None) -> int:
    """``python -m lstm_scratch.search.worker prepare STUDY`` (what executors start before workers)."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "prepare":
        print("usage: python -m lstm_scratch.search.worker prepare STUDY", file=sys.stderr)
        return 2
    print(json.dumps(prepare(Path(argv[1]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
