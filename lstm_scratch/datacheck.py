"""Checking a task's data before a training run starts: bad data is a ``ValueError`` that names the
split, the sequence and the value, raised before anything is written — not a run that fails mid-epoch."""
from __future__ import annotations

import numpy as np

from .checks import is_integer
from .objectives import OBJECTIVES, objective

SPLITS = ("train", "valid", "test")


def check_data(data) -> None:
    """Check every split before a run starts, so bad data is a ``ValueError`` naming the split, the
    sequence (index, and id if the split has ``ids``) and the value — not a failed run mid-epoch.

    The splits must agree on loss, n_in and n_out and hold at least one sequence each; every input is
    a finite real (T, n_in) array with T ≥ 1; every target fits its loss (the objective's
    ``target_problem``, :mod:`.objectives`): Bernoulli (T, n_out) in [0, 1]; softmax one integer class
    in [0, n_out) per frame; CTC integer labels in [1, n_out) (0 is the blank) that fit in T frames,
    T ≥ L + number of adjacent repeats (:func:`.ctc.min_frames`).
    Vectorised per sequence: TIMIT-sized splits take a fraction of a second."""
    for name, split in zip(SPLITS, data):
        missing = [f for f in ("inputs", "targets", "loss", "n_in", "n_out") if not hasattr(split, f)]
        if missing:
            raise ValueError(f"the {name} split has no {', '.join(missing)}; pass lstm_scratch.datasets.Split "
                             "objects (lstm_scratch.datasets.load) or objects with inputs, targets, loss, "
                             "n_in and n_out")
    train = data.train
    if train.loss not in OBJECTIVES:
        raise ValueError(f"the train split has loss={train.loss!r}; use one of {sorted(OBJECTIVES)}")
    for field in ("n_in", "n_out"):
        value = getattr(train, field)
        if not is_integer(value, 1):
            raise ValueError(f"the train split has {field}={value!r}; it must be a positive integer")
    for name, split in zip(SPLITS[1:], data[1:]):
        differ = [f"{f}={getattr(split, f)!r} (train: {getattr(train, f)!r})" for f in ("loss", "n_in", "n_out")
                  if getattr(split, f) != getattr(train, f)]
        if differ:
            raise ValueError(f"the {name} split has {', '.join(differ)}; all three splits must come from "
                             "the same task")
    for name, split in zip(SPLITS, data):
        if len(split.inputs) == 0:
            raise ValueError(f"the {name} split has no sequences; every split needs at least one")
        if len(split.targets) != len(split.inputs):
            raise ValueError(f"the {name} split has {len(split.inputs)} input sequences but "
                             f"{len(split.targets)} targets; give one target per sequence")
        ids = getattr(split, "ids", None)
        for index, (x, y) in enumerate(zip(split.inputs, split.targets)):
            problem = _sequence_problem(x, y, train.loss, train.n_in, train.n_out)
            if problem:
                where = f"{name} split, sequence {index}"
                if ids is not None and index < len(ids):
                    where += f" (id {ids[index]!r})"
                raise ValueError(f"{where}: {problem}; fix or remove that sequence")


def _sequence_problem(x, y, loss: str, n_in: int, n_out: int) -> str | None:
    """What is wrong with one (input, target) pair, or None (rules: :func:`check_data`)."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != n_in or x.dtype.kind not in "biuf":
        return f"the input must be a real array of shape (T, {n_in}); got shape {x.shape}, dtype {x.dtype}"
    frames = x.shape[0]
    if frames == 0:
        return "the input has no frames (T = 0)"
    finite = np.isfinite(x)
    if not finite.all():
        t, k = np.argwhere(~finite)[0]
        return f"input {x[t, k]} at frame {t}, input {k} is not finite"
    return objective(loss).target_problem(y, frames, n_out)
