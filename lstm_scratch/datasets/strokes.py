"""Online handwriting as network input, shared by IAM-OnDB and the synthetic stand-in.

A text line is a list of strokes (pen-down segments); a stroke is an (n, 3) array of points (x, y, t)
with y growing downward and t in seconds. Before features, each stroke keeps every second point
(points 0, 2, 4, … — a one-point stroke keeps its point, so no dot is lost); this halves the sequence
as SPEC §5 asks. Then per kept point k, over the whole line in writing order:

    Δxᵏ = xᵏ − xᵏ⁻¹,  Δyᵏ = yᵏ − yᵏ⁻¹      (0 for the line's first point; across a pen-up this is the jump)
    τᵏ  = tᵏ − t(first point of k's stroke)  time since the start of the stroke
    uᵏ  = 1 if k is the last point of its stroke else 0                       pen-up flag

giving (T, 4) features, later standardised with training-set statistics. Targets: the line's text as
CTC labels 1..K over the alphabet read from the training split; label 0 is the CTC blank.
"""
from __future__ import annotations

import numpy as np

from . import store
from .split import BLANK, Split, fit_standardiser, standardise

N_FEATURES = 4
FEATURE_NAMES = ("dx", "dy", "time_in_stroke", "pen_up")


def subsample(strokes: list[np.ndarray], step: int = 2) -> list[np.ndarray]:
    """Keep points 0, step, 2·step, … of each stroke."""
    return [s[::step] for s in strokes]


def point_features(strokes: list[np.ndarray], what: str) -> np.ndarray:
    """(T, 4) float64 features (Δx, Δy, τ, u) of a line; see the module docstring."""
    strokes = [s for s in strokes if len(s)]
    if not strokes:
        raise ValueError(f"{what}: no pen points (empty sequence)")
    points = np.concatenate(strokes)
    features = np.zeros((len(points), N_FEATURES))
    features[1:, 0:2] = np.diff(points[:, 0:2], axis=0)
    stroke_start = np.concatenate([np.full(len(s), s[0, 2]) for s in strokes])
    features[:, 2] = points[:, 2] - stroke_start
    features[np.cumsum([len(s) for s in strokes]) - 1, 3] = 1.0
    return features


def alphabet_of(texts: list[str]) -> str:
    """Sorted distinct characters of the training transcriptions; label k ↔ alphabet[k − 1]."""
    return "".join(sorted(set("".join(texts))))


def encode(text: str, alphabet: str) -> tuple[np.ndarray, int]:
    """(CTC labels 1..K, number of characters not in the alphabet, which are left out)."""
    index = {c: k + 1 for k, c in enumerate(alphabet)}
    labels = [index[c] for c in text if c in index]
    return np.array(labels, dtype=np.int64), len(text) - len(labels)


def pack_lines(features: list[np.ndarray], texts: list[str], ids: list[str]) -> dict:
    """Arrays for the derived cache (train also carries normalisation statistics and the alphabet)."""
    data, offsets = store.pack(features)
    return {"features": data, "offsets": offsets, "texts": np.array(texts, dtype=str), "ids": np.array(ids, dtype=str)}


def add_training_statistics(arrays: dict, features: list[np.ndarray], texts: list[str], what: str) -> None:
    arrays.update(fit_standardiser(features, what))
    arrays["alphabet"] = np.array(alphabet_of(texts))


def ctc_split(task: str, split: str, raw: dict, train: dict, dtype, source: str, synthetic: bool,
              notes: dict, fingerprint: str | None = None) -> Split:
    """Assemble a CTC :class:`Split` from cached raw lines and the training statistics/alphabet."""
    alphabet = str(train["alphabet"])
    features = store.unpack(raw["features"], raw["offsets"])
    targets, unknown = [], 0
    for text, line_id, x in zip(raw["texts"], raw["ids"], features):
        labels, n_unknown = encode(str(text), alphabet)
        if len(labels) == 0:
            raise ValueError(f"{task} {split} line {line_id}: transcription {str(text)!r} has no character of "
                             f"the training alphabet (empty target)")
        targets.append(labels)
        unknown += n_unknown
    stats = {"mean": train["mean"], "std": train["std"]}
    return Split(task=task, name=split, inputs=standardise(features, stats, dtype), targets=targets,
                 ids=[str(i) for i in raw["ids"]], n_in=N_FEATURES, n_out=len(alphabet) + 1, loss="ctc",
                 labels=(BLANK, *alphabet), synthetic=synthetic, source=source,
                 normalisation=stats, notes={**notes, "characters_outside_alphabet": unknown,
                                             "texts": [str(t) for t in raw["texts"]]},
                 fingerprint=fingerprint)
