"""Piano-roll music sets: split sizes, roll layout, next-step pairs, bad input."""
from __future__ import annotations

import hashlib
import pickle

import numpy as np
import pytest

from lstm_scratch.datasets import load, music, store
from conftest import SHARED_DATA

SIZES = {"jsb": (229, 76, 77), "nottingham": (694, 173, 170), "musedata": (524, 135, 124), "piano_midi": (87, 12, 25)}


@pytest.mark.parametrize("task", list(SIZES))
def test_split_sizes_match_boulanger_lewandowski(data_env, task):
    sizes = tuple(len(load(task, split)) for split in ("train", "valid", "test"))
    assert sizes == SIZES[task]


def test_jsb_roll_layout_and_known_first_frame(data_env):
    train = load("jsb", "train")
    assert train.n_in == train.n_out == 88 and train.loss == "bernoulli" and not train.synthetic
    x0, y0 = train.inputs[0], train.targets[0]
    assert x0.dtype == np.float64 and x0.shape[1] == 88 and x0.shape == y0.shape
    # PROVENANCE.md: the first train step sounds MIDI 60, 72, 79, 88 → keys 39, 51, 58, 67 (C4 C5 G5 E6)
    assert np.flatnonzero(x0[0]).tolist() == [39, 51, 58, 67]
    assert [train.labels[k] for k in (39, 51, 58, 67)] == ["C4", "C5", "G5", "E6"]
    # next-step pairs: target t is input t+1, one step fewer than the piece (13,807 train steps, 229 pieces)
    assert np.array_equal(y0[:-1], x0[1:])
    assert train.n_frames == 13807 - 229
    assert set(np.unique(np.concatenate(train.inputs))) == {0.0, 1.0}


def test_jsb_pickle_and_mat_copies_give_identical_rolls(data_env):
    (pkl,) = store.fetch_group("jsb").values()
    (mat,) = store.fetch_group("jsb_mat").values()
    a, b = music.read_pitchlists(pkl), music.read_mat(mat)
    for split in ("train", "valid", "test"):
        assert len(a[split]) == len(b[split])
        assert all(np.array_equal(x, y) for x, y in zip(a[split], b[split])), split


def test_dtype_and_read_only_views(data_env):
    valid = load("jsb", "valid", dtype=np.float32)
    assert valid.inputs[0].dtype == np.float32 and valid.targets[0].dtype == np.float32
    with pytest.raises(ValueError):
        valid.inputs[0][0, 0] = 5.0          # shared with the targets: must not be changed in place


def test_cached_load_equals_fresh_load(data_env):
    first = load("nottingham", "test")
    assert list(data_env.glob("derived/nottingham-test-*.npz"))
    again = load("nottingham", "test")
    assert all(np.array_equal(a, b) for a, b in zip(first.inputs, again.inputs))


def test_truncated_pickle_is_an_error_naming_the_file(tmp_path):
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    path = tmp_path / "jsb-chorales-quarter.pkl"
    path.write_bytes((SHARED_DATA / "music" / "jsb-chorales-quarter.pkl").read_bytes()[:50_000])
    with pytest.raises(ValueError, match=r"jsb-chorales-quarter\.pkl.*truncated"):
        music.read_pitchlists(path)


def test_pitch_outside_the_piano_is_an_error(tmp_path):
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps({"train": [[(60,), (20, 64)]], "valid": [], "test": []}))
    with pytest.raises(ValueError, match=r"bad\.pkl: train piece 0 step 1 .*\[20, 64\]"):
        music.read_pitchlists(path)


def test_one_step_piece_is_an_error_naming_it():
    with pytest.raises(ValueError, match="piece 1 has 1 time step"):
        music.next_step_pairs([np.zeros((3, 88), np.uint8), np.zeros((1, 88), np.uint8)], np.float64, "x.pkl")


def test_derived_cache_key_is_the_source_checksum(data_env):
    load("piano_midi", "valid")
    (cached,) = data_env.glob("derived/piano_midi-valid-*.npz")
    digest = hashlib.sha256(cached.read_bytes()).hexdigest()
    load("piano_midi", "valid")
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in data_env.glob("derived/piano_midi-valid-*")] == [digest]
