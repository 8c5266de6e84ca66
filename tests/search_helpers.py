"""Shared by the study tests (local, Dask, Slurm): a data environment for worker processes, a tiny
study, waiting for a trial to be mid-run, and the proof that every trial ended exactly once."""
import os
import signal
import time
from collections import Counter
from dataclasses import asdict

import pytest

from conftest import SHARED_DATA
from lstm_scratch.records import read_record
from lstm_scratch.rundir import CHECKPOINT_NAME, RECORD_NAME, load_checkpoint
from lstm_scratch.search import Study
from lstm_scratch.search.lease import read_lease

# Tiny trials: JSB, N = 4, a few epochs (~0.6 s each): long enough to be killed mid-run, short enough
# for two shared cores. Every other dimension comes from the paper's space.
TINY = dict(task="jsb", archs="V,CIFG", seed=0, space="hidden=4", patience=50)


@pytest.fixture(scope="module")
def search_env(tmp_path_factory):
    """Mirror = the shared data, cache = one temporary folder for the module, set in ``os.environ`` so
    that worker processes (pool children, Dask workers, Slurm jobs) inherit it."""
    from lstm_scratch.datasets import store
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (clone shared/ beside the repo)")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(store.ENV_MIRROR, str(SHARED_DATA))
        patch.setenv(store.ENV_CACHE, str(tmp_path_factory.mktemp("search-data")))
        yield


# Trials a test kills mid-run need enough epochs that "mid-run" lasts: on a quiet machine an N = 4 epoch
# takes ~0.1 s, and 6-epoch trials ended between two polls (a CI run timed out waiting for one).
KILLABLE_EPOCHS = 24


def tiny_study(path, trials=3, max_epochs=6, **changes) -> Study:
    return Study.create(path, **{**TINY, "trials": trials, "max_epochs": max_epochs, **changes})


def wait_for(condition, timeout, what, step=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def epochs_done(trial) -> int:
    try:
        return len(load_checkpoint(trial.path / CHECKPOINT_NAME, arrays=False)[1]["history"]["valid_metric"])
    except (OSError, ValueError):
        return 0


def trial_mid_run(study: Study, exclude_pid=None):
    """A trial that a live worker holds, with a checkpoint, no record yet and at least half of its epochs
    to go (so it is still running when the test stops it): (trial, lease)."""
    for trial in study.trials():
        lease = read_lease(trial.path)
        if (lease is not None and lease["pid"] != exclude_pid and not (trial.path / RECORD_NAME).exists()
                and 1 <= epochs_done(trial) <= trial.config.max_epochs // 2):
            return trial, lease
    return None


def kill_mid_trial(study: Study, timeout=240):
    """SIGKILL the worker process of a trial that is mid-run; return that trial."""
    trial, lease = wait_for(lambda: trial_mid_run(study, exclude_pid=os.getpid()), timeout, "a trial mid-run")
    os.kill(lease["pid"], signal.SIGKILL)
    return trial


def assert_each_trial_ended_once(study: Study, resumed=()):
    """Every trial done, its record valid and of its own configuration and labels, and ended exactly
    once: one ``end`` line per trial in the append-only events.log; ``resumed`` trials were continued
    from their checkpoint (a second session; a killed pool also stops its other children, whose trials
    then resume too)."""
    states = study.states()
    assert [s.state for s in states] == ["done"] * study.size, [(s.trial.id, s.state) for s in states]
    ends = Counter(e["trial"] for e in study.events() if e["event"] == "end")
    assert ends == Counter({t.id: 1 for t in study.trials()}), ends
    for trial in study.trials():
        record = read_record(trial.path / RECORD_NAME)
        assert record["config"] == asdict(trial.config)
        assert record["labels"]["study"] == study.id and record["labels"]["trial"] == trial.id
        assert record["sessions"] >= (2 if trial.id in resumed else 1), (trial.id, record["sessions"])
