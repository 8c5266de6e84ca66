"""Slurm job arrays without Dask: ``lstm-odyssey search slurm STUDY --partition P --time T --parallel K``
writes an ``sbatch --array`` script into ``STUDY/slurm/`` and submits it. Element i runs
``lstm-odyssey search run-trial STUDY --index i`` (one trial, one core): the study directory, on a
file system every node sees, is all the elements share.

Only trials that have not ended (and are not running) are submitted, so a second submission completes
a study after cancelled, failed or timed-out elements. ``--requeue``: an element preempted or
requeued by Slurm starts again and continues its trial from the last epoch's checkpoint (the trial's
lease of the killed element is stale: same host and its process gone, or no heartbeat).
Slurm caps array indices below ``MaxArraySize`` (1001 by default) while a full study has 1,800
trials, so larger studies go in several arrays with an index offset, each waiting for the one before
(``--dependency=afterany``), which keeps at most K elements running.
"""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import time

from ..atomic import atomic_write
from .executors import environment, prepare
from .study import Study


def _scontrol_max_array_size() -> int:
    try:
        text = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=30).stdout
        found = re.search(r"^MaxArraySize\s*=\s*(\d+)", text, re.MULTILINE)
        return int(found.group(1)) if found else 1001
    except (OSError, subprocess.SubprocessError):
        return 1001


def _ranges(ids: list[int]) -> str:
    """[0, 1, 2, 5, 7, 8] → "0-2,5,7-8" (Slurm's array syntax)."""
    parts, start = [], None
    for i, value in enumerate(ids):
        if start is None:
            start = value
        if i + 1 == len(ids) or ids[i + 1] != value + 1:
            parts.append(str(start) if start == value else f"{start}-{value}")
            start = None
    return ",".join(parts)


def array_script(study: Study, ids: list[int], offset: int, *, partition, time_limit, parallel, mem=None,
                 account=None, extra=()) -> str:
    """The sbatch script of one array: elements ``ids`` run trials ``id + offset``."""
    options = [f"--job-name=lstm-odyssey-{study.path.name}", f"--array={_ranges(ids)}%{parallel}",
               f"--partition={partition}", f"--time={time_limit}", "--ntasks=1", "--cpus-per-task=1",
               "--requeue", "--open-mode=append", f"--output={study.path / 'slurm' / 'logs' / '%A_%a.out'}"]
    options += [f"--mem={mem}"] if mem else []
    options += [f"--account={account}"] if account else []
    options += list(extra)
    command = [sys.executable, "-m", "lstm_scratch.cli", "search", "run-trial", str(study.path)]
    lines = ["#!/bin/bash", *(f"#SBATCH {option}" for option in options),
             "# One trial per element, one core: BLAS/OpenMP and Numba pinned before Python starts.",
             *(f"export {name}={shlex.quote(value)}" for name, value in environment(study).items()),
             f"exec {' '.join(shlex.quote(c) for c in command)} --index $((SLURM_ARRAY_TASK_ID + {offset}))", ""]
    return "\n".join(lines)


def submit_array(study: Study, *, partition: str, time_limit: str, parallel: int, mem=None, account=None,
                 extra=(), dry_run: bool = False, prepare_first: bool = True) -> dict:
    """Write and (unless ``dry_run``) submit the array script(s) for every trial that has not ended;
    returns {"trials": n, "scripts": [paths], "jobs": [job ids]}. Checks its arguments and that
    ``sbatch`` exists before anything is written."""
    for name, value in (("partition", partition), ("time", time_limit)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"--{name}: give the Slurm {name}, e.g. --partition debug --time 04:00:00")
    if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
        raise ValueError(f"--parallel={parallel!r}: the number of elements running at once, an integer ≥ 1")
    if not dry_run and shutil.which("sbatch") is None:
        raise ValueError("sbatch not found: run this on a Slurm login node (or use --dry-run to only write "
                         "the script)")
    todo = [s.trial.index for s in study.states() if s.state == "pending"]
    if not todo:
        return {"trials": 0, "scripts": [], "jobs": []}
    if prepare_first and not dry_run:
        prepare(study)
    size = _scontrol_max_array_size() if not dry_run else 1001
    (study.path / "slurm" / "logs").mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    scripts, jobs, previous = [], [], None
    for chunk, offset in enumerate(range(0, todo[-1] + 1, size)):
        ids = [i - offset for i in todo if offset <= i < offset + size]
        if not ids:
            continue
        extra_chunk = list(extra) + ([f"--dependency=afterany:{previous}"] if previous else [])
        script = study.path / "slurm" / f"array-{stamp}-{chunk}.sbatch"
        text = array_script(study, ids, offset, partition=partition, time_limit=time_limit, parallel=parallel,
                            mem=mem, account=account, extra=extra_chunk)
        atomic_write(script, lambda handle: handle.write(text), binary=False)
        scripts.append(script)
        if dry_run:
            continue
        done = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True)
        if done.returncode != 0:
            raise ValueError(f"sbatch {script} failed: {done.stderr.strip() or done.stdout.strip()}")
        previous = done.stdout.strip().split(";")[0]
        jobs.append(previous)
    return {"trials": len(todo), "scripts": [str(s) for s in scripts], "jobs": jobs}
