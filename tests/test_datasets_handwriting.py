"""IAM-OnDB reader on the self-made fixture, stroke features, and the synthetic Hershey stand-in."""
from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from lstm_scratch.datasets import (BLANK, SyntheticSettings, iam_ondb, load, resolve, store, strokes,
                                   synthetic_handwriting)

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "fixtures" / "iam_ondb"
TINY = SyntheticSettings(seed=3, writers=(4, 2, 2), lines_per_writer=3)


@pytest.fixture(autouse=True)
def private_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("LSTM_SCRATCH_DATA", str(tmp_path / "cache"))
    monkeypatch.delenv(iam_ondb.ENV_ROOT, raising=False)


def test_form_folder():
    assert iam_ondb.form_folder("a01-000u") == Path("a01/a01-000/a01-000u")
    assert iam_ondb.form_folder("a02-010") == Path("a02/a02-010/a02-010")
    with pytest.raises(ValueError, match="not an IAM-OnDB form id"):
        iam_ondb.form_folder("../x")


def test_crlf_transcription_keeps_only_csr_lines():
    lines = iam_ondb.read_transcription(FIXTURE / "ascii/a01/a01-000/a01-000u.txt")
    assert lines == ["a cat sat on it", "the dog ran.", "it rained"]


def test_iam_ondb_fixture_round_trip():
    train, valid, test = (load("iam_ondb", s, root=FIXTURE) for s in ("train", "valid", "test"))
    # a08-551z dropped; a01-000u line 3 has no strokes; a01-001w-03.xml has no transcription line
    assert train.ids == ["a01-000u-01", "a01-000u-02", "a01-001w-01", "a01-001w-02"]
    assert train.notes["lines_without_strokes"] == 1 and train.notes["strokes_without_transcription"] == 1
    assert valid.ids == ["a02-000x-01", "a02-000x-02", "a02-010-01"]      # testset_v + testset_t
    assert test.ids == ["a03-000u-01", "a03-000u-02"]
    assert train.alphabet == " .acdeghimnorstuwy" and train.labels[0] == BLANK
    assert train.n_out == len(train.alphabet) + 1 and valid.labels == train.labels
    assert train.decode(train.targets[1]) == "the dog ran." and train.targets[1].min() >= 1
    assert test.notes["characters_outside_alphabet"] == 3                 # Z, £, 5 never occur in training
    assert test.decode(test.targets[0]) == "oo costs  now"
    frames = np.concatenate(train.inputs)
    np.testing.assert_allclose(frames.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(frames.std(0), 1, atol=1e-12)


def test_known_line_features_after_subsampling():
    train = load("iam_ondb", "train", root=FIXTURE)
    raw = train.inputs[0] * train.normalisation["std"] + train.normalisation["mean"]
    # strokes of a01-000u-01 (the fixture generator's KNOWN_STROKES); every second point per stroke kept:
    # (100,200,1.00) (107,210,1.04) (112,216,1.08) | (130,205,1.30) | empty stroke | (140,190,1.50) (143,201,1.54)
    expected = [[0, 0, 0.00, 0], [7, 10, 0.04, 0], [5, 6, 0.08, 1],
                [18, -11, 0.00, 1],
                [10, -15, 0.00, 0], [3, 11, 0.04, 1]]
    np.testing.assert_allclose(raw, expected, atol=1e-9)


def _copy_fixture(tmp_path) -> Path:
    root = tmp_path / "iam"
    shutil.copytree(FIXTURE, root)
    return root


def test_iam_ondb_files_are_hashed_once_and_a_cached_load_hashes_nothing(tmp_path, monkeypatch):
    root = _copy_fixture(tmp_path)
    then = time.time() - 3600                     # digests of just-modified files are never remembered
    for path in root.rglob("*.*"):
        os.utime(path, (then, then))
    calls = Counter()
    real = store.sha256_file
    monkeypatch.setattr(store, "_DIGESTS", {})
    monkeypatch.setattr(store, "sha256_file", lambda path: calls.update([Path(path).name]) or real(path))
    first = [load("iam_ondb", s, root=root) for s in ("train", "valid", "test")]
    assert set(calls.values()) == {1} and {"trainset.txt", "a01-000u.txt", "a01-001w-03.xml"} <= set(calls)
    assert "a08-551z.txt" not in calls            # the excluded form is no part of any split
    calls.clear()
    again = [load("iam_ondb", s, root=root) for s in ("train", "valid", "test")]
    assert not calls and [s.ids for s in again] == [s.ids for s in first]
    stroke_file = root / "lineStrokes/a03/a03-000/a03-000u-02.xml"       # a test line
    stroke_file.write_bytes(stroke_file.read_bytes().replace(b'<Point x="1008"', b'<Point x="1018"', 1))   # same size
    test = load("iam_ondb", "test", root=root)
    assert set(calls) == {stroke_file.name}
    assert len(test.inputs[1]) == len(first[2].inputs[1]) and not np.array_equal(test.inputs[1], first[2].inputs[1])


def test_malformed_xml_is_an_error_naming_the_file(tmp_path):
    root = _copy_fixture(tmp_path)
    bad = root / "lineStrokes/a01/a01-001/a01-001w-02.xml"
    bad.write_bytes(bad.read_bytes()[:300])
    with pytest.raises(ValueError, match=r"a01-001w-02\.xml: malformed XML"):
        load("iam_ondb", "train", root=root)
    assert not list((tmp_path / "cache").rglob("iam_ondb-train-*"))


def test_stroke_file_without_points_is_an_empty_sequence_error(tmp_path):
    root = _copy_fixture(tmp_path)
    empty = root / "lineStrokes/a02/a02-010/a02-010-01.xml"
    empty.write_bytes(b'<?xml version="1.0" encoding="ISO-8859-1"?>\n<WhiteboardCaptureSession><StrokeSet>'
                      b'<Stroke colour="black"></Stroke></StrokeSet></WhiteboardCaptureSession>\n')
    with pytest.raises(ValueError, match=r"a02-010-01\.xml: no pen points \(empty sequence\)"):
        load("iam_ondb", "valid", root=root)


def test_missing_split_file_is_an_error_naming_it(tmp_path):
    root = _copy_fixture(tmp_path)
    (root / "testset_t.txt").unlink()
    with pytest.raises(FileNotFoundError, match="split file testset_t.txt not found"):
        load("iam_ondb", "valid", root=root)


def test_point_features_by_hand():
    line = [np.array([[0.0, 0.0, 5.0], [3.0, 4.0, 5.1]]), np.array([[10.0, 4.0, 6.0]])]
    np.testing.assert_allclose(strokes.point_features(line, "x"),
                               [[0, 0, 0, 0], [3, 4, 0.1, 1], [7, 0, 0, 1]])
    with pytest.raises(ValueError, match="empty sequence"):
        strokes.point_features([np.zeros((0, 3))], "line 7")


def test_synthetic_is_deterministic_per_seed_and_labelled_synthetic(tmp_path, monkeypatch):
    first = load("handwriting_synthetic", "valid", settings=TINY)
    monkeypatch.setenv("LSTM_SCRATCH_DATA", str(tmp_path / "other-cache"))     # regenerate from scratch
    again = load("handwriting_synthetic", "valid", settings=TINY)
    assert first.ids == again.ids and first.notes["texts"] == again.notes["texts"]
    assert all(np.array_equal(a, b) for a, b in zip(first.inputs, again.inputs))
    other = load("handwriting_synthetic", "valid", settings=SyntheticSettings(seed=4, writers=(4, 2, 2),
                                                                               lines_per_writer=3))
    assert other.notes["texts"] != first.notes["texts"]
    assert first.synthetic and "SYNTHETIC" in first.source and "SYNTHETIC" in first.summary()
    assert first.loss == "ctc" and first.n_in == 4 and len(first) == 2 * 3


def test_synthetic_splits_have_disjoint_writers_and_texts():
    splits = {s: load("handwriting_synthetic", s, settings=TINY) for s in ("train", "valid", "test")}
    writers = {s: set(v.notes["writers"]) for s, v in splits.items()}
    texts = {s: set(v.notes["texts"]) for s, v in splits.items()}
    assert [len(w) for w in writers.values()] == [4, 2, 2]
    for a, b in (("train", "valid"), ("train", "test"), ("valid", "test")):
        assert not writers[a] & writers[b] and not texts[a] & texts[b]
    train = splits["train"]
    assert all(x.shape[1] == 4 and len(x) >= 2 * len(y) for x, y in zip(train.inputs, train.targets))
    assert all(train.decode(y) == t for y, t in zip(train.targets, train.notes["texts"]))


def test_synthetic_pen_up_flags_end_every_stroke():
    writer = synthetic_handwriting.make_writer(0, seed=1)
    font = synthetic_handwriting.hershey_font(writer.font)
    line = synthetic_handwriting.render_line(font, "abc def", writer, np.random.default_rng(0))
    features = strokes.point_features(strokes.subsample(line), "line")
    assert features[:, 3].sum() == len(line) and features[-1, 3] == 1
    assert np.all(np.diff(np.concatenate([s[:, 2] for s in line])) > 0)     # time runs forward


def test_handwriting_alias_prefers_iam_ondb_when_configured(monkeypatch):
    assert resolve("handwriting") == "handwriting_synthetic"
    assert resolve("handwriting", root=FIXTURE) == "iam_ondb"
    monkeypatch.setenv(iam_ondb.ENV_ROOT, str(FIXTURE))
    assert resolve("handwriting") == "iam_ondb"


def test_iam_ondb_without_a_root_points_to_the_stand_in():
    with pytest.raises(FileNotFoundError, match="handwriting_synthetic"):
        load("iam_ondb", "train")
