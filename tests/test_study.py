"""The study directory as the whole truth: definition, trial states derived from files, leases,
corrupt and mismatched records, failures as data, the local executor surviving a SIGKILLed child and
a killed driver, the CLI and its bad-input messages."""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict

import pytest
from search_helpers import (KILLABLE_EPOCHS, assert_each_trial_ended_once, kill_mid_trial, search_env, tiny_study,  # noqa: F401
                            trial_mid_run, wait_for)

from lstm_scratch import cli
from lstm_scratch.rundir import CHECKPOINT_NAME, RECORD_NAME
from lstm_scratch.search import Study, paper_space, sample
from lstm_scratch.search.lease import LEASE_NAME
from lstm_scratch.search.summary import COLUMNS
from lstm_scratch.search.worker import run_one

pytestmark = pytest.mark.usefixtures("search_env")


def listing(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else None


# ------------------------------------------------------------------------------------ definition
def test_create_writes_the_definition_and_open_reads_it(tmp_path):
    study = tiny_study(tmp_path / "s", trials=4)
    saved = json.loads((tmp_path / "s" / "study.json").read_text())
    assert saved["task"] == "jsb" and saved["archs"] == ["V", "CIFG"] and saved["trials"] == 4
    assert saved["seed"] == 0 and saved["shared_samples"] is True
    assert saved["space"]["hidden"] == {"dist": "fixed", "value": 4}
    assert saved["space"]["lr"] == {"dist": "log_uniform", "low": 1e-6, "high": 1e-2, "round": False}
    assert saved["protocol"]["max_epochs"] == 6 and saved["protocol"]["dtype"] == "float64"
    assert saved["provenance"]["code_version"] and saved["created"]
    again = Study.open(tmp_path / "s")
    assert again.definition == study.definition and again.size == 8
    assert tiny_study(tmp_path / "s", trials=4).id == study.id          # same definition: the same study


def test_trials_are_the_space_samples_in_interleaved_order(tmp_path):
    study = tiny_study(tmp_path / "s", trials=3)
    assert [t.id for t in study.trials()] == ["V-0000", "CIFG-0000", "V-0001", "CIFG-0001", "V-0002", "CIFG-0002"]
    trial = study.trial("CIFG-0002")
    assert trial.index == 5 and trial.path == tmp_path / "s" / "trials" / "CIFG-0002"
    space = study.space
    assert asdict(trial.config) == {**asdict(study.trial(4).config), "arch": "CIFG"}   # shared samples
    values = sample(space, seed=0, task="jsb", arch="CIFG", k=2)
    assert trial.config.lr == values["lr"] and trial.config.hidden == 4 and trial.config.max_epochs == 6
    assert sample(paper_space("jsb"), seed=0, task="jsb", arch="V", k=2)["lr"] == values["lr"]  # only N fixed


@pytest.mark.parametrize("changes, message", [
    ({"task": "chess"}, "unknown task 'chess'"),
    ({"archs": "V,XL"}, "unknown architecture 'XL'"),
    ({"trials": 0}, "trials=0"),
    ({"space": "hidden=0"}, "hidden"),
    ({"seed": -1}, "seed=-1"),
])
def test_bad_definitions_are_refused_before_anything_is_written(tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        tiny_study(tmp_path / "s", **changes)
    assert not (tmp_path / "s").exists()


def test_another_definition_in_an_existing_study_is_refused(tmp_path):
    tiny_study(tmp_path / "s")
    before = (tmp_path / "s" / "study.json").read_bytes()
    with pytest.raises(ValueError, match="another study.*trials"):
        tiny_study(tmp_path / "s", trials=5)
    with pytest.raises(ValueError, match="not an empty directory"):
        (tmp_path / "other").mkdir()
        (tmp_path / "other" / "notes.txt").write_text("mine")
        tiny_study(tmp_path / "other")
    assert (tmp_path / "s" / "study.json").read_bytes() == before
    assert listing(tmp_path / "other") == ["notes.txt"]


def test_cli_bad_input_gives_one_line_and_writes_nothing(tmp_path, capsys):
    base = ["search", "create", str(tmp_path / "s"), "--trials", "2", "--space", "hidden=4"]
    for extra, message in ((["--task", "chess"], "unknown task"), (["--task", "jsb", "--archs", "V,XL"], "XL"),
                           (["--task", "jsb", "--trials", "0"], "trials=0")):
        assert cli.main(base + extra) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "s").exists()
    assert cli.main(["search", "status", str(tmp_path / "nothing")]) == 2
    assert "no study here" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ states
def test_states_from_files_corrupt_and_mismatched_records_are_never_used(tmp_path):
    study = tiny_study(tmp_path / "s", trials=1, max_epochs=2)
    first, second = study.trials()
    assert [s.state for s in study.states()] == ["pending", "pending"]
    for trial in (first, second):
        assert run_one(study, trial.index)["state"] == "done"
    good = (first.path / RECORD_NAME).read_text()
    assert study.state(first).state == "done"
    # corrupt (truncated): not used, the trial counts as not run and runs again
    (first.path / RECORD_NAME).write_text(good[: len(good) // 2])
    s = study.state(first)
    assert s.state == "pending" and s.record is None and "record" in s.problem
    # another trial's record: never used
    (first.path / RECORD_NAME).write_text((second.path / RECORD_NAME).read_text())
    s = study.state(first)
    assert s.state == "pending" and "another configuration" in s.problem
    summary = run_one(study, first.index)
    assert summary["ran"] and summary["state"] == "done"
    record = json.loads((first.path / RECORD_NAME).read_text())
    assert record["config"] == asdict(first.config) and record["labels"]["trial"] == first.id
    assert list(first.path.glob("record.json.mismatched-*"))           # kept for inspection
    ends = [e["trial"] for e in study.events() if e["event"] == "end"]
    assert ends == [first.id, second.id, first.id]


def test_a_mismatched_checkpoint_is_set_aside_not_resumed(tmp_path):
    study = tiny_study(tmp_path / "s", trials=1, max_epochs=2)
    first, second = study.trials()
    run_one(study, second.index)
    first.path.mkdir(parents=True)
    (first.path / CHECKPOINT_NAME).write_bytes((second.path / CHECKPOINT_NAME).read_bytes())
    assert run_one(study, first.index)["state"] == "done"
    record = json.loads((first.path / RECORD_NAME).read_text())
    assert record["config"] == asdict(first.config) and record["sessions"] == 1
    assert list(first.path.glob("checkpoint.npz.mismatched-*"))


def write_lease(trial, **fields):
    trial.path.mkdir(parents=True, exist_ok=True)
    lease = {"host": socket.gethostname(), "pid": os.getpid(), "token": "t", "heartbeat": time.time(), **fields}
    (trial.path / LEASE_NAME).write_text(json.dumps(lease))


def test_leases_running_stale_and_busy(tmp_path):
    study = tiny_study(tmp_path / "s", trials=1, max_epochs=2)
    trial = study.trial(0)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write_lease(trial, pid=dead.pid)                               # same host, process gone: stale at once
    assert study.state(trial).state == "pending"
    write_lease(trial, host="elsewhere", pid=1)                    # another host, fresh heartbeat: running
    assert study.state(trial).state == "running"
    summary = run_one(study, trial.index)
    assert summary["state"] == "running" and not summary["ran"] and not (trial.path / RECORD_NAME).exists()
    write_lease(trial, host="elsewhere", pid=1, heartbeat=time.time() - study.lease_timeout - 1)
    assert study.state(trial).state == "pending"                   # no heartbeat for the timeout: stale
    assert run_one(study, trial.index)["ran"]
    assert study.state(trial).state == "done" and not (trial.path / LEASE_NAME).exists()


def test_a_requeued_slurm_element_takes_over_its_own_lease_at_once(tmp_path, monkeypatch):
    study = tiny_study(tmp_path / "s", trials=1, max_epochs=2)
    trial = study.trial(0)
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "77")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "0")
    write_lease(trial, host="node-that-died", pid=1, slurm_element="77_1")   # another element's: live
    assert not run_one(study, trial.index)["ran"]
    write_lease(trial, host="node-that-died", pid=1, slurm_element="77_0")   # this element's previous run
    assert study.state(trial).state == "running"                           # to everyone else
    assert run_one(study, trial.index)["ran"] and study.state(trial).state == "done"


def test_a_trial_that_keeps_killing_its_worker_ends_failed(tmp_path):
    from collections import Counter

    from lstm_scratch.search.executors import MAX_CRASHES, _count_crashes
    study = tiny_study(tmp_path / "s", trials=1, max_epochs=2)
    trial, crashes = study.trial(0), Counter()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for _ in range(MAX_CRASHES):
        assert study.state(trial).state == "pending"
        write_lease(trial, pid=dead.pid)                           # its worker died holding it
        gave_up = _count_crashes(study, study.states(), crashes)
    s = study.state(trial)
    assert gave_up and s.state == "failed" and f"died {MAX_CRASHES} times" in s.failure["error"]
    assert study.state(1).state == "pending"


def test_a_trial_that_raises_is_failed_with_its_traceback_and_can_be_retried(tmp_path, monkeypatch):
    import lstm_scratch.train as train
    study = tiny_study(tmp_path / "s", trials=1, max_epochs=2)
    real = train.run_trial

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")
    monkeypatch.setattr(train, "run_trial", broken)
    assert run_one(study, 0)["state"] == "failed"
    assert run_one(study, 1)["state"] == "failed"
    monkeypatch.setattr(train, "run_trial", real)
    assert run_one(study, 0)["state"] == "failed"                  # failures are results: not re-run …
    frame = study.to_dataframe()
    assert list(frame.columns) == list(COLUMNS)
    assert list(frame.outcome) == ["failed", "failed"] and "disk on fire" in frame.error[0]
    assert study.status()["total"]["failed"] == 2
    assert run_one(study, 0, retry_failed=True)["state"] == "done"   # … unless asked
    assert study.state(0).state == "done" and not (study.trial(0).path / "failure.json").exists()


def test_a_diverged_trial_is_recorded_as_such(tmp_path):
    study = tiny_study(tmp_path / "s", trials=1, max_epochs=2, archs="V", space="hidden=4,lr=1e308,momentum=0")  # steps overflow
    assert run_one(study, 0)["state"] == "diverged"
    frame = study.to_dataframe()
    assert frame.outcome[0] == "diverged" and study.status()["total"]["diverged"] == 1


# ------------------------------------------------------------------------------------ the local executor
def test_local_run_then_status_and_export(tmp_path, capsys):
    path = tmp_path / "s"
    assert cli.main(["search", "create", str(path), "--task", "jsb", "--archs", "V,CIFG", "--trials", "2",
                     "--max-epochs", "2", "--space", "hidden=4", "--seed", "3"]) == 0
    assert cli.main(["search", "run", str(path), "--workers", "2"]) == 0
    study = Study.open(path)
    assert_each_trial_ended_once(study)
    assert cli.main(["search", "status", str(path)]) == 0
    out = capsys.readouterr().out
    assert "4/4 trials ended" in out and "best so far" in out
    assert cli.main(["search", "export", str(path), "--csv", str(tmp_path / "t.csv")]) == 0
    import pandas as pd
    frame = pd.read_csv(tmp_path / "t.csv")
    assert len(frame) == 4 and set(frame.outcome) <= {"finished", "early_stopped"}
    assert (frame.hidden == 4).all() and frame.valid_metric.notna().all() and (frame.seed == study.trial(0).config.seed).sum() == 2
    assert frame.code_version.nunique() == 1 and frame.cpu.notna().all()
    # the published records: every record, in trial order, per-epoch timings rounded, no parameters,
    # the same bytes when exported again (nothing changes under version control)
    records = tmp_path / "records.jsonl.gz"
    assert cli.main(["search", "export", str(path), "--records", str(records)]) == 0
    first = records.read_bytes()
    assert cli.main(["search", "export", str(path), "--records", str(records)]) == 0
    assert records.read_bytes() == first
    import gzip
    import json
    published = [json.loads(line) for line in gzip.decompress(first).decode().splitlines()]
    originals = [study.state(i).record for i in range(4)]
    assert [r["labels"]["trial"] for r in published] == [r["labels"]["trial"] for r in originals]
    for mine, theirs in zip(published, originals):
        assert mine["history"]["train_loss"] == theirs["history"]["train_loss"]      # every digit kept
        assert mine["history"]["seconds"] == [round(x, 4) for x in theirs["history"]["seconds"]]
        assert {k: v for k, v in mine.items() if k != "history"} == {k: v for k, v in theirs.items() if k != "history"}
    assert "params" not in gzip.decompress(first).decode().replace('"n_params"', "")
    capsys.readouterr()
    assert cli.main(["search", "export", str(path)]) == 2                                   # nothing asked
    assert "nothing to export" in capsys.readouterr().err
    assert cli.main(["search", "export", str(path), "--records", str(tmp_path / "r.json")]) == 2
    assert "name it *.jsonl.gz" in capsys.readouterr().err and not (tmp_path / "r.json").exists()
    assert cli.main(["search", "run", str(path), "--workers", "2"]) == 0     # nothing left: nothing runs again
    assert_each_trial_ended_once(study)
    capsys.readouterr()
    study.run(progress=True)                                    # the bar a terminal shows
    bar = capsys.readouterr().err
    assert "4/4" in bar and "failed=0" in bar and "best=" in bar and "best=-" not in bar


def test_restoring_a_corrupt_records_file_is_a_clear_error_and_writes_nothing(tmp_path, capsys):
    """A records file whose gzip header is fine but whose deflate stream is damaged makes zlib raise
    zlib.error (neither OSError nor ValueError): still the one-line error, nothing written."""
    import gzip
    study = tiny_study(tmp_path / "s", trials=1)
    data = bytearray(gzip.compress(b'{"format": "lstm_scratch.run/1"}\n' * 50, mtime=0))
    data[10] ^= 0xFF                                   # the first byte of the deflate stream: bad block type
    (tmp_path / "bad.jsonl.gz").write_bytes(bytes(data))
    assert cli.main(["search", "restore", str(study.path), "--records", str(tmp_path / "bad.jsonl.gz")]) == 2
    assert "cannot read the published records (error: " in capsys.readouterr().err
    assert not (study.path / "trials").exists()


def test_restoring_two_records_of_one_trial_is_refused_and_writes_nothing(tmp_path, capsys):
    """Two exports concatenated (one valid gzip file) hold each trial twice: refused, not the last one kept."""
    from lstm_scratch.search.summary import records_jsonl_gz
    study = tiny_study(tmp_path / "s", archs="V", trials=1, max_epochs=1)
    run_one(study, 0)
    once = records_jsonl_gz(study.states())
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "study.json").write_bytes((study.path / "study.json").read_bytes())
    (tmp_path / "twice.jsonl.gz").write_bytes(once + once)
    assert cli.main(["search", "restore", str(copy), "--records", str(tmp_path / "twice.jsonl.gz")]) == 2
    assert "line 2: a second record of trial V-0000 (the first is on line 1)" in capsys.readouterr().err
    assert not (copy / "trials").exists()
    (tmp_path / "once.jsonl.gz").write_bytes(once)                  # a worker holds the trial: refused
    write_lease(Study.open(copy).trial(0), host="elsewhere", pid=1)
    assert cli.main(["search", "restore", str(copy), "--records", str(tmp_path / "once.jsonl.gz")]) == 2
    assert "trial V-0000 is running (process 1 on elsewhere)" in capsys.readouterr().err
    assert not (copy / "trials" / "V-0000" / RECORD_NAME).exists()


def test_local_executor_reruns_the_trial_of_a_sigkilled_child(tmp_path):
    study = tiny_study(tmp_path / "s", max_epochs=KILLABLE_EPOCHS, trials=2)
    result = {}
    driver = threading.Thread(target=lambda: result.update(study.run(workers=2, progress=False)), daemon=True)
    driver.start()
    killed = kill_mid_trial(study)
    driver.join(timeout=600)
    assert not driver.is_alive()
    assert result["total"]["done"] == study.size
    assert_each_trial_ended_once(study, resumed={killed.id})


def test_run_trial_cli_runs_one_trial_once(tmp_path, capsys):
    study = tiny_study(tmp_path / "s", trials=1, max_epochs=2)
    assert cli.main(["search", "run-trial", str(study.path), "--index", "1"]) == 0
    assert capsys.readouterr().out.strip() == "trial CIFG-0000: done"
    assert cli.main(["search", "run-trial", str(study.path), "--index", "1"]) == 0
    assert capsys.readouterr().out.strip() == "trial CIFG-0000: done (not run here)"
    assert [s.state for s in study.states()] == ["pending", "done"]
    assert cli.main(["search", "run-trial", str(study.path), "--index", "2"]) == 2
    assert "out of range 0 … 1" in capsys.readouterr().err


def test_a_killed_driver_then_a_rerun_completes_the_study(tmp_path):
    study = tiny_study(tmp_path / "s", max_epochs=KILLABLE_EPOCHS, trials=2)
    driver = subprocess.Popen([sys.executable, "-m", "lstm_scratch.cli", "search", "run", str(study.path),
                               "--workers", "2"], start_new_session=True, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: trial_mid_run(study), 240, "a trial mid-run")
    finally:
        os.killpg(driver.pid, signal.SIGKILL)                      # the driver and its workers, all at once
        driver.wait()
    assert any(s.state != "done" for s in study.states())
    study.run(workers=2, progress=False)
    assert_each_trial_ended_once(study)


# ------------------------------------------------------------------------------------ objective, dtype, settings
def fake_state(study, index, state, valid):
    """A trial state with a record holding just what the summaries read."""
    from lstm_scratch.search import TrialState
    record = {"outcome": "finished" if state == "done" else state, "best_valid_metric": valid,
              "test_metric": None if valid is None else valid - 1, "cpu_seconds": 1.0, "wall_seconds": 1.0,
              "task": {"metric": study.objective.metric_name}}
    return TrialState(study.trial(index), state, record, None, None, None)


@pytest.mark.parametrize("task, protocol, best", [("jsb", "online", 0.25), ("memorisation", "jzs", 0.75)])
def test_best_so_far_is_the_best_in_the_sense_of_the_task_objective(tmp_path, task, protocol, best):
    from lstm_scratch.search.executors import _Progress
    from lstm_scratch.search.summary import status
    study = Study.create(tmp_path / "s", task=task, archs="GRU", trials=4, protocol=protocol)
    assert study.objective.lower_is_better == (task == "jsb")
    states = [fake_state(study, 0, "done", 0.5), fake_state(study, 1, "done", 0.25),
              fake_state(study, 2, "diverged", 0.99), fake_state(study, 3, "done", 0.75)]
    info = status(study, states)
    assert info["total"]["best"]["valid_metric"] == best and info["archs"]["GRU"]["best"]["valid_metric"] == best
    assert info["total"]["best"]["trial"] == f"GRU-000{[0.5, 0.25, 0.99, 0.75].index(best)}"
    bar = _Progress(study, states[:2], enabled=False)
    assert bar.best == (0.25 if task == "jsb" else 0.5)
    bar.update({"ran": True, "state": "done", "valid_metric": 0.75})
    bar.update({"ran": True, "state": "diverged", "valid_metric": 0.99})     # a diverged trial is no best
    assert bar.best == best


def test_a_mixed_dtype_study_prepares_float32_kernels_and_data_and_runs(tmp_path, monkeypatch):
    import lstm_scratch.datasets as datasets
    import lstm_scratch.parallel as parallel
    from lstm_scratch.search.worker import prepare
    path = tmp_path / "s"
    assert cli.main(["search", "create", str(path), "--task", "jsb", "--archs", "V", "--trials", "1",
                     "--max-epochs", "2", "--space", "hidden=4", "--dtype", "mixed"]) == 0
    study = Study.open(path)
    assert study.definition["protocol"]["dtype"] == "mixed" and study.trial(0).config.kernel_dtype == "float32"
    calls = []
    for module, name in ((datasets, "load_task"), (parallel, "warm_up")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, real=real, name=name: calls.append((name, a)) or real(*a))
    assert set(prepare(study)) == {"data_seconds", "compile_seconds"}
    assert calls == [("load_task", ("jsb", "float32", None)), ("warm_up", (["V"], "mixed"))]   # float32 kernels
    monkeypatch.undo()
    assert run_one(study, 0)["state"] == "done"
    record = json.loads((study.trial(0).path / RECORD_NAME).read_text())
    assert record["config"]["dtype"] == "mixed"


def test_the_forget_bias_is_each_architectures_own_unless_given(tmp_path):
    study = tiny_study(tmp_path / "s", archs="V,LSTM-B", trials=1)
    assert study.definition["protocol"]["forget_bias"] is None
    assert [t.config.forget_bias for t in study.trials()] == [0.0, 1.0]
    with pytest.raises(ValueError, match="forget_bias=0.0"):
        tiny_study(tmp_path / "t", archs="V,LSTM-B", trials=1, forget_bias=0.0)
    assert not (tmp_path / "t").exists()
    assert [t.config.forget_bias for t in tiny_study(tmp_path / "u", forget_bias=0.5).trials()] == [0.5] * 6


def test_a_study_defined_by_an_older_version_is_the_same_study(tmp_path):
    """study.json written before the protocol, batch, unroll, lr_decay settings existed and with the
    forget bias 0.0 that was then the default: created again with today's defaults, it is that study."""
    study = tiny_study(tmp_path / "s")
    configs = [t.config for t in study.trials()]
    file = tmp_path / "s" / "study.json"
    definition = json.loads(file.read_text())
    definition["protocol"] = {"max_epochs": 6, "patience": 50, "dtype": "float64", "forget_bias": 0.0,
                              "bidirectional": None}
    file.write_text(json.dumps(definition))
    again = tiny_study(tmp_path / "s")
    assert again.id == study.id and [t.config for t in again.trials()] == configs
    with pytest.raises(ValueError, match="another study.*protocol"):
        tiny_study(tmp_path / "s", max_epochs=7)


def test_a_record_written_before_newer_config_fields_still_counts(tmp_path):
    """Records and failure notes compare with a trial in canonical form (TrainConfig.same_as): a config
    without the fields added since (layers, protocol, init_scale, the jzs fields) is the same one."""
    study = tiny_study(tmp_path / "s", trials=1, max_epochs=2)
    trial = study.trial(0)
    assert run_one(study, 0)["state"] == "done"
    file = trial.path / RECORD_NAME
    record = json.loads(file.read_text())
    for name in ("layers", "protocol", "init_scale", "batch", "unroll", "clip_norm", "lr_decay"):
        del record["config"][name]
    record["config"]["arch"] = "v"
    file.write_text(json.dumps(record))
    assert study.state(trial).state == "done"
    assert not run_one(study, 0)["ran"] and file.read_text() == json.dumps(record)
    record["config"]["hidden"] = 5                                  # another configuration: never used
    file.write_text(json.dumps(record))
    assert study.state(trial).state == "pending" and "another configuration" in study.state(trial).problem


def test_workers_that_cannot_start_stop_the_driver_with_a_message(tmp_path):
    """A driver read from stdin: spawned workers cannot import its __main__ and die before any trial.
    The driver must say so instead of starting new workers for ever."""
    study = tiny_study(tmp_path / "s", trials=1, max_epochs=2)
    script = (f"from lstm_scratch.search import Study\n"
              f"Study.open({str(study.path)!r}).run(workers=1, progress=False)\n")
    done = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, timeout=600)
    assert done.returncode != 0
    assert "ended 3 times in a row before running any trial" in done.stderr
    assert [s.state for s in study.states()] == ["pending", "pending"]


def test_two_processes_creating_one_study_at_once_agree_on_it(tmp_path, monkeypatch):
    """Both saw an empty directory; the one that writes second must not replace the first's study.json
    (another id: the first's workers would label records of a study that no longer exists) — it gets the
    winner's study. Another definition in the same race is refused."""
    from lstm_scratch.search.study import STUDY_NAME, write_definition
    first = Study.create(tmp_path / "s", task="jsb", archs="V", trials=2, space="hidden=4", seed=0)
    file = tmp_path / "s" / STUDY_NAME
    before = file.read_bytes()
    assert write_definition(file, {"format": "anything"}) is False and file.read_bytes() == before
    late = Study.define(tmp_path / "s", task="jsb", archs="V", trials=2, space="hidden=4", seed=0)
    seen, real = [], Study.existing

    def blind_first_look(self):                          # the first look finds nothing, later ones the file
        seen.append(self)
        return None if len(seen) == 1 else real(self)
    monkeypatch.setattr(Study, "existing", blind_first_look)
    won = late.write()                                   # its first look found nothing: the race
    assert won.id == first.id != late.id and file.read_bytes() == before
    other = Study.define(tmp_path / "s", task="jsb", archs="V", trials=3, space="hidden=4", seed=0)
    seen.clear()
    with pytest.raises(ValueError, match="holds another study"):
        other.write()
    assert file.read_bytes() == before and not [p for p in (tmp_path / "s").iterdir() if p.name.endswith(".part")]


def test_a_directory_holding_only_another_creators_temporary_file_is_free(tmp_path):
    """A creator killed while writing study.json leaves ``.study.json.<pid>@<host>.<random>.part`` (hidden
    from ``ls``); one creating the same study this moment has its own there. Neither makes the directory
    taken: the study is created (and the killed creator's leftover, once stale, removed). Any other file
    — a temporary file of another target too — still makes it taken."""
    from lstm_scratch import atomic
    dead = int(open("/proc/sys/kernel/pid_max").read()) + 1          # a pid that never runs
    leftover = f".study.json.{dead}@{atomic._HOST}.x1.part"
    for name, free in ((leftover, True), ("notes.txt", False), (f".notes.txt.{dead}@{atomic._HOST}.x1.part", False)):
        where = tmp_path / name.strip(".")
        where.mkdir()
        (where / name).write_text("{\"format\": ")                    # half a definition
        stale = time.time() - 2 * atomic.DEAD_WRITER_GRACE_S
        os.utime(where / name, (stale, stale))
        if free:
            study = tiny_study(where, trials=1)
            assert Study.open(where).id == study.id
            assert sorted(p.name for p in where.iterdir()) == ["study.json"]     # the leftover removed
        else:
            with pytest.raises(ValueError, match=rf"{where.name}: exists and is not an empty directory \(no "
                                                 r"study\.json in it\); choose a new directory for the study"):
                tiny_study(where, trials=1)
            assert [p.name for p in where.iterdir()] == [name]


# ------------------------------------------------------------------------------------ events.log
def test_a_torn_events_line_is_an_error_naming_the_file_and_line(tmp_path):
    study = tiny_study(tmp_path / "s", trials=1)
    assert study.events() == []                                      # no log yet
    study.log_event(event="end", trial="V-0000")
    study.log_event(event="end", trial="CIFG-0000")
    log = tmp_path / "s" / "events.log"
    good = log.read_bytes()
    assert [e["trial"] for e in study.events()] == ["V-0000", "CIFG-0000"]
    for bad, problem in ((b'{"time": "2024', r"not JSON \(Unterminated string"), (b"[1, 2]", "a JSON list"),
                         (b'{"trial": "\xe9"}', r"not JSON \('utf-8' codec")):
        log.write_bytes(good + bad + b"\n\n" + good)              # a torn line between good ones, a blank line
        with pytest.raises(ValueError, match=rf"events\.log, line 3: {problem}.*; delete that line"):
            study.events()
    log.write_bytes(good + b"\n" + good)                           # blank lines are no events, nor errors
    assert len(study.events()) == 4
