"""A trial's lease (:mod:`lstm_scratch.search.lease`) when its file cannot be read for a moment — a
network file system's ESTALE: the holder tries again, and gives the trial up only once the lease timeout
has passed without a read. In-process, the holder in a thread that is not the main one (as in a Dask
worker), so an interruption (:class:`LeaseLost`) is seen by the test, not by pytest."""
import errno
import os
import threading
import time
from pathlib import Path

from lstm_scratch.search.lease import LEASE_NAME, LeaseLost, acquire, read_lease

RUNNER = "runner"           # the thread that takes the lease and runs the "trial"


def unreadable_lease(monkeypatch, failures: dict) -> list:
    """Make reading ``lease.json`` raise ESTALE: ``failures["heartbeat"]`` times in the heartbeat thread,
    ``failures["runner"]`` times in the runner (``float("inf")``: always). Returns the failed reads, as
    the kind of thread that made each."""
    real, failed = Path.read_text, []

    def read_text(path, *args, **kwargs):
        name = threading.current_thread().name
        kind = "heartbeat" if name.startswith("lease-heartbeat") else name
        if path.name == LEASE_NAME and failures.get(kind, 0) > 0:
            failures[kind] -= 1
            failed.append(kind)
            raise OSError(errno.ESTALE, "Stale file handle", str(path))
        return real(path, *args, **kwargs)
    monkeypatch.setattr(Path, "read_text", read_text)
    return failed


def run_holder(trial, *, timeout: float, until, outcome: dict) -> None:
    """In a thread named :data:`RUNNER`: take the lease, "run" until ``until()`` or an interruption,
    publish a record, release; what happened goes into ``outcome``."""
    def holder():
        held = acquire(trial, timeout=timeout, heartbeat=0.02)
        try:
            deadline = time.monotonic() + 60               # a bound for a broken test, not a measurement
            while not until():
                if time.monotonic() > deadline:
                    outcome["gave up waiting"] = True
                    break
                time.sleep(0.01)
        except LeaseLost:
            outcome["interrupted"] = True
        try:
            held.publish(lambda: (trial / "record.json").write_text("{}"))
            outcome["published"] = True
        except LeaseLost:
            outcome["refused"] = True
        held.release()
    thread = threading.Thread(target=holder, name=RUNNER)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive()


def test_a_lease_file_unreadable_for_a_moment_does_not_stop_the_trial_nor_its_publication(tmp_path, monkeypatch):
    failures = {"heartbeat": 2}                 # two beats' reads fail
    failed = unreadable_lease(monkeypatch, failures)
    beats = set()

    def two_beats_after_the_failures():         # the heartbeat read its lease again and kept it fresh
        if failed.count("heartbeat") == 2:
            beats.add(read_lease(tmp_path)["heartbeat"])      # the test's thread reads normally
        if len(beats) < 3:
            return False
        failures[RUNNER] = 2                    # then the publication's first two reads fail
        return True

    outcome = {}
    run_holder(tmp_path, timeout=600.0, until=two_beats_after_the_failures, outcome=outcome)
    assert outcome == {"published": True}
    assert failed.count("heartbeat") == 2 and failed.count(RUNNER) == 2      # both were hit
    assert (tmp_path / "record.json").read_text() == "{}"
    assert not (tmp_path / LEASE_NAME).exists()                                 # released


def test_a_lease_file_unreadable_past_the_timeout_stops_the_trial_and_publishes_nothing(tmp_path, monkeypatch):
    inf = float("inf")
    failed = unreadable_lease(monkeypatch, {"heartbeat": inf, RUNNER: inf})
    outcome = {}
    run_holder(tmp_path, timeout=0.3, until=lambda: False, outcome=outcome)
    assert outcome == {"interrupted": True, "refused": True}
    assert "heartbeat" in failed and RUNNER in failed
    assert not (tmp_path / "record.json").exists()
    assert read_lease(tmp_path)["pid"] == os.getpid()      # not released unread: left to go stale
