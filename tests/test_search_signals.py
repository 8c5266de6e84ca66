"""Stopping a study, and workers that freeze, with real `lstm-odyssey` processes and real signals:
SIGTERM (or Ctrl-C's SIGINT) to a driver's process group stops every process of it (checkpoints kept,
leases released, exit 143 or 130) and a rerun completes the study; a SIGKILLed driver's pool children
stop by themselves (PR_SET_PDEATHSIG); a worker frozen (SIGSTOP) past the lease timeout, whose trial
another run took over, publishes nothing when it wakes (SIGCONT); in-process, a lease taken over
interrupts the (non-main) thread that holds it."""
import os
import signal
import subprocess
import sys
import time

import pytest
from search_helpers import (KILLABLE_EPOCHS, assert_each_trial_ended_once, epochs_done, search_env,  # noqa: F401
                            tiny_study, trial_mid_run, wait_for)

from lstm_scratch.records import read_record
from lstm_scratch.rundir import CHECKPOINT_NAME, RECORD_NAME
from lstm_scratch.search.lease import LEASE_NAME, read_lease

pytestmark = pytest.mark.usefixtures("search_env")


def start(tmp_path, name, *args, background=True):
    """``lstm-odyssey ARGS`` in a new process group, output to files; ``background``: started the way a
    non-interactive shell starts a background job (SIGINT ignored, so only SIGTERM or SIGKILL reach it),
    else as from a terminal (Ctrl-C sends SIGINT to the group). Set either way: pytest itself may run
    as a background job and hand its children an ignored SIGINT."""
    sigint = signal.SIG_IGN if background else signal.SIG_DFL
    out, err = (open(tmp_path / f"{name}.{kind}", "w") for kind in ("out", "err"))
    with out, err:
        return subprocess.Popen([sys.executable, "-m", "lstm_scratch.cli", *args], stdout=out, stderr=err,
                                start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, sigint))


def still_running(process, tmp_path, name) -> bool:
    """True while ``process`` runs; if it ended, an AssertionError with its stderr (rather than waiting
    out the timeout for what it will never do)."""
    if process.poll() is not None:
        raise AssertionError(f"{name} ended ({process.returncode}): {(tmp_path / f'{name}.err').read_text()[-3000:]}")
    return True


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (ended, not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def group_members(pgid: int) -> list[int]:
    """The live processes of process group ``pgid`` (from /proc: the fifth field of stat)."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry))
    return members


def running_trials(study, count):
    """``count`` trials held by live workers, each with a checkpoint and no record yet: {id: lease}."""
    held = {}
    for trial in study.trials():
        lease = read_lease(trial.path)
        if lease is not None and not (trial.path / RECORD_NAME).exists() and epochs_done(trial) >= 1:
            held[trial.id] = lease
    return held if len(held) >= count else None


def no_leases(study):
    return not any((trial.path / LEASE_NAME).exists() for trial in study.trials())


def driver_with_two_trials_running(tmp_path, study, background=True):
    """``search run --workers 2`` on ``study``, once two of its trials are mid-run: (the driver, {trial id:
    lease}). The leases name the pool children."""
    driver = start(tmp_path, "driver", "search", "run", str(study.path), "--workers", "2", background=background)
    try:
        return driver, wait_for(lambda: still_running(driver, tmp_path, "driver") and running_trials(study, 2),
                                240, "two trials mid-run")
    except BaseException:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
        raise


@pytest.mark.parametrize("signum, background, status, said", [
    (signal.SIGTERM, True, 143, "stopped (SIGTERM): "),   # what kill, systemd or a container stop send
    (signal.SIGINT, False, 130, "interrupted: "),         # Ctrl-C on a terminal
])
def test_a_signal_to_the_drivers_process_group_stops_every_process_then_a_rerun_completes(
        tmp_path, signum, background, status, said):
    study = tiny_study(tmp_path / "s", trials=2, max_epochs=KILLABLE_EPOCHS)    # 4 trials on 2 workers
    driver, held = driver_with_two_trials_running(tmp_path, study, background)
    try:
        os.killpg(driver.pid, signum)
        ended = driver.wait(timeout=180)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
    err = (tmp_path / "driver.err").read_text()
    assert ended == status, err
    assert err.strip().splitlines()[-1].startswith(said) and f"search run {study.path}" in err
    wait_for(lambda: not group_members(driver.pid), 60, "every process of the driver's group to end")
    workers = {lease["pid"] for lease in held.values()}
    assert len(workers) == 2 and not any(alive(pid) for pid in workers)
    assert no_leases(study)
    for trial in study.trials():
        if trial.id in held:                           # stopped mid-trial: the checkpoint stays
            assert (trial.path / CHECKPOINT_NAME).exists() and not (trial.path / RECORD_NAME).exists()
    assert any(s.state == "pending" for s in study.states())
    rerun = start(tmp_path, "rerun", "search", "run", str(study.path), "--workers", "2")
    assert rerun.wait(timeout=600) == 0, (tmp_path / "rerun.err").read_text()
    assert_each_trial_ended_once(study, resumed=set(held))


def test_the_children_of_a_sigkilled_driver_stop_by_themselves_then_a_rerun_completes(tmp_path):
    study = tiny_study(tmp_path / "s", trials=1, max_epochs=KILLABLE_EPOCHS)    # 2 trials on 2 workers
    driver, held = driver_with_two_trials_running(tmp_path, study)
    os.kill(driver.pid, signal.SIGKILL)                # the driver alone: its children are not told
    driver.wait()
    workers = {lease["pid"] for lease in held.values()}
    try:
        wait_for(lambda: not any(alive(pid) for pid in workers), 60, "the orphaned workers to stop")
    finally:
        for pid in group_members(driver.pid):           # if they did not: clean up after the test
            os.kill(pid, signal.SIGKILL)
    assert no_leases(study)                            # they released their leases on the way out
    assert all((study.trial(i).path / CHECKPOINT_NAME).exists() for i in range(study.size))
    assert all(s.state == "pending" for s in study.states())
    study.run(workers=2, progress=False)
    assert_each_trial_ended_once(study, resumed=set(held))


def test_a_frozen_worker_whose_lease_was_taken_over_publishes_nothing(tmp_path):
    study = tiny_study(tmp_path / "s", archs="V", trials=1, max_epochs=KILLABLE_EPOCHS,
                       heartbeat_seconds=1.0, lease_timeout_seconds=3.0)
    trial = study.trial(0)
    frozen = start(tmp_path, "frozen", "search", "run-trial", str(study.path), "--index", "0")
    taker = None
    try:
        wait_for(lambda: still_running(frozen, tmp_path, "frozen") and trial_mid_run(study), 240, "the trial mid-run")
        os.kill(frozen.pid, signal.SIGSTOP)
        wait_for(lambda: time.time() - read_lease(trial.path)["heartbeat"] > study.lease_timeout + 1, 60,
                 "the frozen worker's lease to go stale")
        taker = start(tmp_path, "taker", "search", "run", str(study.path), "--workers", "1")
        wait_for(lambda: still_running(taker, tmp_path, "taker") and (read_lease(trial.path) or {}).get("pid")
                 != frozen.pid, 240, "another run to take the lease over")
        os.kill(frozen.pid, signal.SIGCONT)
        assert frozen.wait(timeout=120) == 0
        assert taker.wait(timeout=600) == 0, (tmp_path / "taker.err").read_text()
    finally:
        for process in (frozen, taker):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    ends = [e for e in study.events() if e["event"] == "end"]
    record = read_record(trial.path / RECORD_NAME)
    assert len(ends) == 1 and ends[0]["pid"] != frozen.pid
    assert record["environment"]["pid"] == ends[0]["pid"]         # the record is the new holder's
    assert_each_trial_ended_once(study, resumed={trial.id})        # which continued the checkpoint
    said = (tmp_path / "frozen.err").read_text()
    assert f"trial {trial.id}: process {frozen.pid} " in said and "lost its lease" in said, said


def test_a_lease_taken_over_interrupts_the_thread_that_holds_it_and_publishes_nothing(tmp_path):
    """In-process, in a thread that is not the main one (a Dask worker runs trials in threads)."""
    import json
    import socket
    import threading

    from lstm_scratch.search.lease import LeaseLost, acquire
    outcome, took_over = {}, threading.Event()

    def holder():
        held = acquire(tmp_path, timeout=10.0, heartbeat=0.05)
        (tmp_path / LEASE_NAME).write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                                       "token": "another", "heartbeat": time.time()}))
        took_over.set()
        try:
            while True:                                # the trial, until its heartbeat sees the other holder
                time.sleep(0.01)
        except LeaseLost:
            outcome["interrupted"] = True
        try:
            held.publish(lambda: (tmp_path / "record.json").write_text("{}"))
        except LeaseLost:
            outcome["refused"] = True
        held.release()

    thread = threading.Thread(target=holder)
    thread.start()
    thread.join(timeout=60)
    assert took_over.is_set() and not thread.is_alive()
    assert outcome == {"interrupted": True, "refused": True}
    assert not (tmp_path / "record.json").exists()
    assert read_lease(tmp_path)["token"] == "another"          # the new holder's lease is left alone
