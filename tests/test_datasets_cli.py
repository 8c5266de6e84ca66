"""``lstm-odyssey data list | info TASK | fetch TASK``."""
from __future__ import annotations

from pathlib import Path

from lstm_scratch.cli import main

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "fixtures" / "iam_ondb"


def test_data_list_names_every_task(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("LSTM_SCRATCH_DATA", str(tmp_path))
    monkeypatch.delenv("LSTM_SCRATCH_TIMIT", raising=False)
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for task in ("jsb", "nottingham", "musedata", "piano_midi", "timit", "timit_sample", "iam_ondb",
                 "handwriting_synthetic"):
        assert f"\n{task} " in out
    assert "needs root= or $LSTM_SCRATCH_TIMIT" in out and str(tmp_path) in out


def test_data_fetch_then_info_show_split_sizes(capsys, data_env):
    assert main(["data", "info", "jsb"]) == 0
    assert "run 'lstm-odyssey data fetch jsb'" in capsys.readouterr().out
    assert main(["data", "fetch", "jsb"]) == 0
    assert "| train | 229 | 13578 |" in capsys.readouterr().out
    assert main(["data", "info", "jsb"]) == 0
    assert "jsb/test: 77 sequences" in capsys.readouterr().out


def test_data_info_licensed_corpus_with_root(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("LSTM_SCRATCH_DATA", str(tmp_path))
    assert main(["data", "info", "handwriting", "--root", str(FIXTURE)]) == 0
    assert "iam_ondb/valid: 3 sequences" in capsys.readouterr().out


def test_data_errors_are_one_line_messages(capsys):
    assert main(["data", "info", "nosuch"]) == 2
    assert "unknown task 'nosuch'" in capsys.readouterr().err
    assert main(["data", "info"]) == 2
    assert "needs a TASK" in capsys.readouterr().err
