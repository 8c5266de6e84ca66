"""TIMIT: audio readers, frame labels, MFCCs against python_speech_features, splits, folding, loading."""
from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from lstm_scratch.datasets import PHONES_39, PHONES_61, fold_39, frame_error_39, load, store, timit, timit_corpus
from lstm_scratch.datasets.mfcc import mfcc, n_frames
from conftest import SHARED_DATA

SAMPLE = SHARED_DATA / "timit_sample" / "timit"
needs_sample = pytest.mark.skipif(not SAMPLE.is_dir(), reason=f"TIMIT sample not found at {SAMPLE}")
SPHERE_UTTERANCES = ["sa2", "si1466", "si2096", "si836", "sx116", "sx206", "sx26", "sx296", "sx386"]


@needs_sample
@pytest.mark.parametrize("utt", SPHERE_UTTERANCES)
def test_sphere_and_riff_readings_are_identical(utt):
    sph, rate_s = timit_corpus.read_audio(SAMPLE / "dr1-fvmh0" / f"{utt}.sph")
    wav, rate_w = timit_corpus.read_audio(SAMPLE / "dr1-fvmh0" / f"{utt}.wav")
    assert rate_s == rate_w == 16000 and sph.dtype == np.int16 and len(sph) > 16000
    assert np.array_equal(sph, wav)


@needs_sample
@pytest.mark.parametrize("header_size,order", [(512, "01"), (2048, "10")], ids=["512-little", "2048-big"])
def test_sphere_header_size_is_read_from_line_two(tmp_path, header_size, order):
    samples = np.array([1, -2, 300, -32768, 32767], dtype=np.int16)
    fields = (f"NIST_1A\n{header_size:7d}\nsample_count -i 5\nsample_rate -i 16000\nchannel_count -i 1\n"
              f"sample_n_bytes -i 2\nsample_byte_format -s2 {order}\nend_head\n").encode()
    body = samples.astype("<i2" if order == "01" else ">i2").tobytes()
    path = tmp_path / "x.WAV"
    path.write_bytes(fields.ljust(header_size, b" ") + body)
    got, rate = timit_corpus.read_audio(path)
    assert rate == 16000 and np.array_equal(got, samples)
    path.write_bytes(fields.ljust(header_size, b" ") + body[:-3])
    with pytest.raises(ValueError, match=r"x\.WAV: truncated"):
        timit_corpus.read_audio(path)


def test_unknown_audio_format_names_the_file(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"OggS" + bytes(100))
    with pytest.raises(ValueError, match=r"a\.wav: neither NIST SPHERE nor RIFF"):
        timit_corpus.read_audio(tmp_path / "a.wav")


@needs_sample
def test_labels_of_known_frames():
    # sa1.phn: "0 7812 h#", "7812 9507 sh", "9507 10610 iy"; frame t is centred on sample 160 t + 200
    _, labels, dropped = timit.utterance_features(SAMPLE / "dr1-fvmh0" / "sa1.wav", SAMPLE / "dr1-fvmh0" / "sa1.phn")
    assert dropped == 0
    assert [PHONES_61[k] for k in labels[[0, 47, 48, 58, 59, 62]]] == ["h#", "h#", "sh", "sh", "iy", "iy"]


@needs_sample
def test_untranscribed_tail_frames_are_dropped():
    # dr3-madc0/si1367: 72,090 samples, the last segment ends at 69,288
    audio = SAMPLE / "dr3-madc0" / "si1367.wav"
    features, labels, dropped = timit.utterance_features(audio, audio.with_suffix(".phn"))
    assert len(features) == len(labels) == n_frames(72090) - dropped
    assert 160 * (len(labels) - 1) + 200 < 69288 <= 160 * len(labels) + 200


@needs_sample
@pytest.mark.parametrize("utt", ["dr1-fvmh0/sa1", "dr5-ftlg0/si1743", "dr8-mbcg0/sx57"])
def test_mfcc_matches_python_speech_features(utt):
    psf = pytest.importorskip("python_speech_features")
    samples, _ = timit_corpus.read_audio(SAMPLE / f"{utt}.wav")
    t = n_frames(len(samples))
    exact = samples[:400 + 160 * (t - 1)].astype(np.float64)   # no partial frame: psf then pads nothing
    static = psf.mfcc(exact, 16000, winlen=0.025, winstep=0.01, numcep=13, nfilt=26, nfft=512, preemph=0.97,
                      ceplifter=22, appendEnergy=True, winfunc=np.hamming)
    delta = psf.delta(static, 2)
    expected = np.hstack([static, delta, psf.delta(delta, 2)])
    ours = mfcc(samples)
    assert ours.shape == expected.shape == (t, 39)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-9 * np.abs(expected).max())


def test_mfcc_of_too_short_signal_is_an_error():
    with pytest.raises(ValueError, match="shorter than one 400-sample frame"):
        mfcc(np.zeros(399))


def test_phone_outside_the_61_names_file_and_line(tmp_path):
    path = tmp_path / "bad.phn"
    path.write_text("0 100 h#\n100 200 xx\n")
    with pytest.raises(ValueError, match=r"bad\.phn line 2: phone 'xx' is not one of the 61"):
        timit_corpus.read_phn(path)
    path.write_text("")
    with pytest.raises(ValueError, match=r"bad\.phn: no phone segments"):
        timit_corpus.read_phn(path)


def test_folding_61_to_39():
    assert len(PHONES_61) == 61 and len(PHONES_39) == 39
    folded = fold_39(np.arange(61))
    assert sorted(set(folded.tolist()) - {-1}) == list(range(39))
    assert PHONES_39[folded[PHONES_61.index("ix")]] == "ih" and PHONES_39[folded[PHONES_61.index("pau")]] == "sil"
    assert folded[PHONES_61.index("q")] == -1
    target = np.array([PHONES_61.index(p) for p in ["ao", "q", "h#", "s"]])
    predicted = np.array([PHONES_61.index(p) for p in ["aa", "s", "pau", "z"]])
    assert frame_error_39(predicted, target) == pytest.approx(1 / 3)    # q ignored; ao≡aa, h#≡pau, s≠z


def test_timit_sample_splits_by_speaker(data_env):
    splits = {name: load("timit_sample", name) for name in ("train", "valid", "test")}
    assert [len(s) for s in splits.values()] == [96, 16, 16]
    speakers = {name: {i.split("/")[0] for i in s.ids} for name, s in splits.items()}
    assert [len(v) for v in speakers.values()] == [12, 2, 2]
    assert not (speakers["train"] & speakers["valid"] or speakers["train"] & speakers["test"]
                or speakers["valid"] & speakers["test"])
    assert not any(i.split("/")[1].startswith("sa") for s in splits.values() for i in s.ids)
    train, valid = splits["train"], splits["valid"]
    assert train.n_in == 39 and train.n_out == 61 and train.loss == "softmax"
    assert all(x.shape == (len(y), 39) and y.dtype == np.int64 for x, y in zip(train.inputs, train.targets))
    frames = np.concatenate(train.inputs)
    np.testing.assert_allclose(frames.mean(0), 0, atol=1e-10)
    np.testing.assert_allclose(frames.std(0), 1, atol=1e-10)
    assert np.array_equal(valid.normalisation["mean"], train.normalisation["mean"])
    assert np.abs(np.concatenate(valid.inputs).mean(0)).max() > 1e-3    # valid standardised with TRAIN stats
    assert set(np.concatenate(train.targets).tolist()) <= set(range(61))
    again = load("timit_sample", "valid", dtype=np.float32)             # from the derived cache
    assert again.inputs[0].dtype == np.float32
    np.testing.assert_allclose(again.inputs[3], valid.inputs[3], rtol=1e-6, atol=1e-6)


def _ldc_tree(tmp_path, age_seconds=0):
    """A miniature LDC tree: TRAIN speaker, a core-test and a development speaker, one that is in neither.
    ``age_seconds`` back-dates every file (digests of just-modified files are never remembered)."""
    source = SAMPLE / "dr1-fvmh0"
    layout = {"TRAIN/DR1/FVMH0": ["si1466", "sx116", "sa2"], "TEST/DR1/MDAB0": ["sx26"],
              "TEST/DR1/FAKS0": ["sx206", "si2096"], "TEST/DR1/MXYZ0": ["sx296"]}
    for folder, utts in layout.items():
        (tmp_path / "TIMIT" / folder).mkdir(parents=True)
        for utt in utts:
            (tmp_path / "TIMIT" / folder / f"{utt.upper()}.WAV").write_bytes((source / f"{utt}.sph").read_bytes())
            (tmp_path / "TIMIT" / folder / f"{utt.upper()}.PHN").write_bytes((source / f"{utt}.phn").read_bytes())
    if age_seconds:
        then = time.time() - age_seconds
        for path in (tmp_path / "TIMIT").rglob("*.*"):
            os.utime(path, (then, then))
    return tmp_path


def _count_hashes(monkeypatch) -> Counter:
    """Forget remembered digests and count store.sha256_file calls per file."""
    calls = Counter()
    real = store.sha256_file
    monkeypatch.setattr(store, "_DIGESTS", {})
    monkeypatch.setattr(store, "sha256_file", lambda path: calls.update([Path(path).name]) or real(path))
    return calls


def _load_all(root):
    with pytest.warns(UserWarning, match="expected"):     # the miniature tree has the wrong split sizes
        return [load("timit", split, root=root) for split in ("train", "valid", "test")]


@needs_sample
def test_ldc_layout_upper_case_sphere_and_standard_splits(tmp_path, monkeypatch):
    monkeypatch.setenv("LSTM_SCRATCH_DATA", str(tmp_path / "cache"))
    source = SAMPLE / "dr1-fvmh0"
    _ldc_tree(tmp_path)
    splits = timit_corpus.ldc_splits(tmp_path)
    assert {k: [u.uid for u in v] for k, v in splits.items()} == {
        "train": ["train/dr1/fvmh0/si1466", "train/dr1/fvmh0/sx116"], "valid": ["test/dr1/faks0/si2096",
                                                                                 "test/dr1/faks0/sx206"],
        "test": ["test/dr1/mdab0/sx26"]}
    with pytest.warns(UserWarning, match="expected"):
        test = load("timit", "test", root=tmp_path)
    sample_features, labels, _ = timit.utterance_features(source / "sx26.wav", source / "sx26.phn")
    assert np.array_equal(test.targets[0], labels)
    np.testing.assert_allclose(test.inputs[0] * test.normalisation["std"] + test.normalisation["mean"],
                               sample_features, atol=1e-9)


@needs_sample
def test_each_corpus_file_is_hashed_once_and_a_cached_load_hashes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("LSTM_SCRATCH_DATA", str(tmp_path / "cache"))
    root = _ldc_tree(tmp_path, age_seconds=3600)
    calls = _count_hashes(monkeypatch)
    first = _load_all(root)
    # 2 train + 2 valid + 1 test utterances (SA and the speaker in neither split are not used), .WAV + .PHN
    assert len(calls) == 10 and set(calls.values()) == {1}, calls
    calls.clear()
    again = _load_all(root)
    assert not calls
    assert all(np.array_equal(a.inputs[0], b.inputs[0]) for a, b in zip(first, again))


@needs_sample
@pytest.mark.parametrize("changed", ["TRAIN/DR1/FVMH0/SX116.WAV", "TEST/DR1/MDAB0/SX26.PHN"],
                         ids=["train-audio", "test-phones"])
def test_a_changed_corpus_file_rebuilds_the_features(tmp_path, monkeypatch, changed):
    monkeypatch.setenv("LSTM_SCRATCH_DATA", str(tmp_path / "cache"))
    root = _ldc_tree(tmp_path, age_seconds=3600)
    calls = _count_hashes(monkeypatch)
    train, _, test = _load_all(root)
    derived = set((tmp_path / "cache" / "derived").iterdir())
    path = root / "TIMIT" / changed
    content = bytearray(path.read_bytes())
    if changed.endswith(".WAV"):                  # same size, one sample changed: only the content tells
        content[5000:5002] = (int.from_bytes(content[5000:5002], "little") ^ 0x0400).to_bytes(2, "little")
    else:                                         # the frame centred on sample 2200 turns from m into h#
        content = content.replace(b"0 2193 h#\n2193 ", b"0 2353 h#\n2353 ", 1)
        assert len(content) == path.stat().st_size
    path.write_bytes(bytes(content))
    calls.clear()
    train2, _, test2 = _load_all(root)
    assert set(calls) == {path.name}    # only the changed file is read again (each load while it is fresh)
    rebuilt = set((tmp_path / "cache" / "derived").iterdir()) - derived
    split = "train" if changed.startswith("TRAIN") else "test"
    assert [p.name.split("-")[1] for p in rebuilt] == [split]
    if split == "train":
        assert not np.array_equal(train2.normalisation["mean"], train.normalisation["mean"])
    else:
        assert not np.array_equal(test2.targets[0], test.targets[0])


def test_full_timit_without_a_root_says_what_to_do(monkeypatch):
    monkeypatch.delenv(timit.ENV_ROOT, raising=False)
    with pytest.raises(FileNotFoundError, match="LSTM_SCRATCH_TIMIT"):
        load("timit", "train")
