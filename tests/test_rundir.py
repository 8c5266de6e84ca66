"""The run directory: its lock (tested with real processes), the output path checked before anything
is written, checkpoints validated key by key, damaged files set aside."""
import json
import os
import signal
import socket
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from lstm_scratch import rundir
from lstm_scratch.cli import main
from lstm_scratch.rundir import RunLocked, locked
from lstm_scratch.train import TrainConfig, run_trial, train

sys.path.insert(0, str(Path(__file__).parent))
from test_train import Killed, config, synthetic_task  # noqa: E402

TESTS = str(Path(__file__).parent)

HOLDER = """
import sys
sys.path.insert(0, sys.argv[1])
from lstm_scratch.rundir import locked
with locked(sys.argv[2]):
    print("locked", flush=True)
    sys.stdin.read()                    # hold the lock until the test closes stdin (or kills us)
"""


@pytest.fixture
def holder(tmp_path):
    """A second process holding the lock of tmp_path/run; yields (process, run directory)."""
    out = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-c", HOLDER, TESTS, str(out)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "locked"
        yield process, out
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(60)


def test_a_second_process_is_refused_naming_the_holder_and_nothing_is_written(holder):
    process, out = holder
    with pytest.raises(RunLocked, match=rf"{out}: another run is using this directory \(process "
                                        rf"{process.pid} on {socket.gethostname()} since .*\); wait"):
        train(config(), out, data=synthetic_task(), threads=1)
    assert sorted(p.name for p in out.iterdir()) == [".lock"]
    assert json.loads((out / ".lock").read_text())["pid"] == process.pid
    assert issubclass(RunLocked, ValueError)


def test_the_lock_is_released_when_its_holder_ends_or_is_killed(holder):
    process, out = holder
    process.send_signal(signal.SIGKILL)                # no chance to clean up: the kernel drops the lock
    process.wait(60)
    record = train(config(max_epochs=2), out, data=synthetic_task(), threads=1)
    assert record["outcome"] == "finished"
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.npz", "params.npz", "record.json"]


def test_the_cli_turns_a_locked_directory_into_one_line(monkeypatch, holder, capsys):
    process, out = holder
    monkeypatch.setattr("lstm_scratch.train.load_task", lambda *args: synthetic_task())
    assert main(["train", "--task", "jsb", "--out", str(out), "--threads", "1"]) == 2
    err = capsys.readouterr().err
    assert f"another run is using this directory (process {process.pid}" in err and len(err.splitlines()) == 1


RACER = """
import sys, json
sys.path.insert(0, sys.argv[1])
from test_train import synthetic_task, config
from lstm_scratch.train import train
try:
    record = train(config(max_epochs=int(sys.argv[3])), sys.argv[2], data=synthetic_task(sizes=(30, 4, 4)), threads=1)
    print(json.dumps({"ran": record["outcome"]}))
except ValueError as err:
    print(json.dumps({"refused": str(err)}))
"""


def test_two_processes_racing_for_one_run_directory_never_both_write(tmp_path):
    """Before the lock both exited 0 and one result was silently lost. Now exactly one runs; the other
    is refused, by the lock or (if the first already ended) as an ended run."""
    out = tmp_path / "run"
    racers = [subprocess.Popen([sys.executable, "-c", RACER, TESTS, str(out), "40"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = []
    for racer in racers:
        stdout, stderr = racer.communicate(timeout=900)
        assert racer.returncode == 0, stderr
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    assert sorted(next(iter(r)) for r in results) == ["ran", "refused"], results
    refusal = next(r["refused"] for r in results if "refused" in r)
    assert any(reason in refusal for reason in ("another run is using this directory", "already ended",
                                                "continue it with --resume")), refusal
    assert json.loads((out / "record.json").read_text())["sessions"] == 1


def test_one_process_cannot_take_its_own_run_directory_twice(tmp_path):
    """Two trials in one process (threads) on one directory: the second is refused too (flock locks
    belong to open files, not processes)."""
    with locked(tmp_path / "run"):
        with pytest.raises(RunLocked, match=f"process {os.getpid()}"):
            with locked(tmp_path / "run"):
                pass
    with locked(tmp_path / "run"):                  # released: free again
        pass
    assert list((tmp_path / "run").iterdir()) == []


# ------------------------------------------------------------------------------------ the output path
def test_an_output_path_that_cannot_be_written_is_refused_before_training(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    for out, message in [(tmp_path / "file" / "run", "is a file"), (tmp_path / "file", "not a directory"),
                         ("", "non-empty path")]:
        with pytest.raises(ValueError, match=message):
            train(config(), out, data=synthetic_task(), threads=1)
    assert main(["train", "--task", "jsb", "--out", ""]) == 2
    assert "out='': give the run directory as a non-empty path" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_a_directory_that_refuses_writes_is_refused_before_training(tmp_path):
    """A real write is tried (permission bits alone say nothing to root or of a read-only mount):
    /proc refuses new files to everyone."""
    with pytest.raises(ValueError, match=r"/proc/lstm-run: cannot write in /proc \(.*\); choose another --out"):
        train(config(), "/proc/lstm-run", data=synthetic_task(), threads=1)
    if os.geteuid() != 0:
        readonly = tmp_path / "readonly"
        readonly.mkdir(mode=0o555)
        with pytest.raises(ValueError, match="cannot write in"):
            train(config(), readonly / "run", data=synthetic_task(), threads=1)


def test_the_cli_turns_an_os_error_into_one_line(monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "/somewhere/record.json")
    monkeypatch.setattr("lstm_scratch.train.train", refuse)
    assert main(["train", "--task", "jsb", "--out", "/somewhere"]) == 2
    err = capsys.readouterr().err
    assert err == "lstm-odyssey train: error: [Errno 13] Permission denied: '/somewhere/record.json'\n"


# ------------------------------------------------------------------------------------ checkpoints
def _killed_run(tmp_path):
    out = tmp_path / "run"

    def kill(epoch, history):
        raise Killed
    with pytest.raises(Killed):
        train(config(), out, data=synthetic_task(), threads=1, on_epoch=kill)
    return out


def _rewrite(path, change_state=None, drop_array=None):
    with np.load(path) as saved:
        arrays = {k: saved[k] for k in saved.files if k != "__state__"}
        state = json.loads(str(saved["__state__"]))
    if change_state:
        change_state(state)
    if drop_array:
        arrays.pop(drop_array)
    np.savez(path, __state__=json.dumps(state), **arrays)


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("history"), "the checkpoint's field 'history' is missing"),
    (lambda s: s.pop("order_rng"), "the checkpoint's field 'order_rng' is missing"),
    (lambda s: s.update(sessions="2"), "the checkpoint's field 'sessions' has an unusable value '2'"),
    (lambda s: s["history"].pop("valid_metric"), "the checkpoint's field 'history' has an unusable value"),
    (lambda s: s.update(best_metric="low"), "'best_metric' has an unusable value"),
    (lambda s: s["noise_rng"].update(state={"state": "x"}), r"'noise_rng' is not a PCG64 state"),
    (lambda s: s.update(format="other/1"), "not a lstm_scratch.checkpoint/1 checkpoint"),
], ids=["no-history", "no-rng", "sessions-str", "history-key", "metric-str", "rng-state", "format"])
def test_a_hand_edited_checkpoint_is_a_clear_error_naming_file_and_key(monkeypatch, tmp_path, capsys, change,
                                                                       message):
    out = _killed_run(tmp_path)
    _rewrite(out / "checkpoint.npz", change_state=change)
    with pytest.raises(ValueError, match=f"{out / 'checkpoint.npz'}: .*{message}"):
        train(config(), out, data=synthetic_task(), threads=1, resume=True)
    monkeypatch.setattr("lstm_scratch.train.load_task", lambda *args: synthetic_task())
    assert main(["train", "--out", str(out), "--resume", "--threads", "1"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "checkpoint.npz: " in err
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.npz"]


@pytest.mark.parametrize("array", ["params", "velocity", "best_params"])
def test_a_checkpoint_missing_an_array_names_it(tmp_path, array):
    out = _killed_run(tmp_path)
    _rewrite(out / "checkpoint.npz", drop_array=array)
    with pytest.raises(ValueError, match=f"checkpoint.npz: the checkpoint has no array '{array}'"):
        train(config(), out, data=synthetic_task(), threads=1, resume=True)


# Fields TrainConfig gained after the first runs were written (stacked layers, JZS's protocol, …).
NEWER_FIELDS = ("layers", "protocol", "init_scale", "batch", "unroll", "clip_norm", "lr_decay")


def _as_an_older_version_wrote_it(saved: dict) -> None:
    """A configuration without the newer fields, the architecture as typed and forget_bias unresolved."""
    for name in NEWER_FIELDS:
        saved.pop(name)
    saved.update(arch=saved["arch"].lower(), forget_bias=None)


def test_a_checkpoint_and_a_record_from_before_the_newer_fields_still_belong_to_their_run(monkeypatch, tmp_path,
                                                                                          capsys):
    whole = train(config(), tmp_path / "whole", data=synthetic_task(), threads=1)
    out = _killed_run(tmp_path)
    _rewrite(out / "checkpoint.npz", change_state=lambda state: _as_an_older_version_wrote_it(state["config"]))
    resumed = train(config(), out, data=synthetic_task(), threads=1, resume=True)
    assert resumed["sessions"] == 2 and resumed["test_metric"] == whole["test_metric"]
    assert resumed["history"]["train_loss"] == whole["history"]["train_loss"]

    # An old finished run can be extended from the command line, and its old record is a finished trial.
    _rewrite(out / "checkpoint.npz", change_state=lambda state: _as_an_older_version_wrote_it(state["config"]))
    monkeypatch.setattr("lstm_scratch.train.load_task", lambda *args: synthetic_task())
    assert main(["train", "--out", str(out), "--resume", "--max-epochs", "5", "--threads", "1"]) == 0
    assert "after 5 epoch(s)" in capsys.readouterr().out
    record = json.loads((out / "record.json").read_text())
    _as_an_older_version_wrote_it(record["config"])
    (out / "record.json").write_text(json.dumps(record))
    assert run_trial(config(max_epochs=5), out, data=synthetic_task()) == record      # returned, not rerun

    # Defaults fill only what is missing: another value is still another configuration.
    with pytest.raises(ValueError, match=r"made with another configuration.*'hidden': \(4, 5\)"):
        run_trial(config(max_epochs=5, hidden=5), out, data=synthetic_task())
    with pytest.raises(ValueError, match=r"made with another configuration.*'layers': \(1, 2\)"):
        run_trial(config(max_epochs=5, layers=2), out, data=synthetic_task())


def test_the_canonical_form_of_a_saved_configuration():
    saved = asdict(config(arch="LSTM-B"))
    _as_an_older_version_wrote_it(saved)
    assert TrainConfig.canonical(saved) == asdict(config(arch="LSTM-B"))
    assert TrainConfig.canonical(saved)["forget_bias"] == 1.0 and TrainConfig.canonical(saved)["momentum"] == 0.9
    assert config(arch="LSTM-B").same_as(saved) and not config(arch="LSTM").same_as(saved)
    assert not config().same_as({**saved, "colour": "red"}) and not config().same_as(["not", "a", "dict"])
    with pytest.raises(ValueError, match=r"unknown configuration field\(s\) \['colour'\]"):
        TrainConfig.canonical({**saved, "colour": "red"})
    with pytest.raises(ValueError, match="made with another configuration"):
        rundir.compare_config({**saved, "arch": "v"}, asdict(config(arch="LSTM-B")), "here")
    with pytest.raises(ValueError, match=r"x/checkpoint.npz: its configuration cannot be read by this version "
                                         r"\(unknown configuration field"):
        rundir.compare_config({**saved, "colour": "red"}, asdict(config()), Path("x/checkpoint.npz"))


def test_set_aside_keeps_the_damaged_file_under_a_new_name(tmp_path):
    path = tmp_path / "record.json"
    path.write_text("{half")
    moved = rundir.set_aside(path, "corrupt")
    assert not path.exists() and moved.read_text() == "{half" and moved.name.startswith("record.json.corrupt-")
