"""What :func:`lstm_scratch.datasets.load` returns: one split of one task, ready for the network.

Conventions shared by every task:

* ``inputs[i]`` is a float array ``(T_i, n_in)`` (float64 unless a ``dtype`` was asked for), already
  normalised (standardised with training-set statistics where the task calls for it).
* ``targets[i]`` depends on the loss:

  ===========  ==========================  ================================================
  loss         targets[i]                  meaning
  ===========  ==========================  ================================================
  bernoulli    float ``(T_i, n_out)`` 0/1  frame t+1 of the piano roll for input frame t
  softmax      int64 ``(T_i,)`` 0..n_out-1  class of every frame (TIMIT: index into 61 phones)
  ctc          int64 ``(L_i,)`` 1..n_out-1  label sequence; 0 is the CTC blank (never a target)
  ===========  ==========================  ================================================

* ``labels`` names every output unit: for CTC ``labels[0] == BLANK`` and ``labels[k]`` is the
  character of label ``k`` (so ``alphabet == "".join(labels[1:])``).
* ``fingerprint`` identifies the data: a short sha256 over what the derived cache is keyed on (source
  checksums, settings, feature version) for this split and, where inputs are standardised with
  training statistics, for the training split too (:func:`.store.fingerprint`). Equal fingerprints,
  equal data (up to the float dtype asked for, which is not part of it).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..objectives import OBJECTIVES

BLANK = "<blank>"


@dataclass(frozen=True)
class Split:
    """One split ("train" | "valid" | "test") of one task."""

    task: str                      # registry name, e.g. "jsb", "timit_sample", "handwriting_synthetic"
    name: str                      # "train", "valid" or "test"
    inputs: list                   # list of float arrays (T_i, n_in)
    targets: list                  # see the module docstring: depends on ``loss``
    ids: list                      # one identifier per sequence (utterance, text line, chorale index)
    n_in: int                      # input size M
    n_out: int                     # output units: 88 notes, 61 phones, or characters + blank
    loss: str                      # objective name: "bernoulli" | "softmax" | "ctc" (lstm_scratch.objectives)
    labels: tuple                  # name of every output unit (CTC: labels[0] == BLANK)
    synthetic: bool                # True for generated stand-in data: say so wherever results are shown
    source: str                    # one line: where the data came from (and "SYNTHETIC" if it is)
    normalisation: dict = field(default_factory=dict)  # e.g. {"mean": (n_in,), "std": (n_in,)} from train
    notes: dict = field(default_factory=dict)          # task-specific counts (skipped lines, ...)
    metric: str | None = None      # what the paper reports; None: the objective's metric_name (cer, ...)
    fingerprint: str | None = None  # identity of the data (module docstring); None for data made by hand

    def __post_init__(self):
        if self.loss not in OBJECTIVES:
            raise ValueError(f"loss {self.loss!r} not one of {tuple(OBJECTIVES)}")
        if self.metric is None:
            object.__setattr__(self, "metric", OBJECTIVES[self.loss].metric_name)
        if not (len(self.inputs) == len(self.targets) == len(self.ids)):
            raise ValueError(f"{self.task}/{self.name}: {len(self.inputs)} inputs, {len(self.targets)} "
                             f"targets, {len(self.ids)} ids — they must match")
        if len(self.labels) != self.n_out:
            raise ValueError(f"{self.task}/{self.name}: {len(self.labels)} labels for n_out={self.n_out}")

    def __len__(self) -> int:
        return len(self.inputs)

    @property
    def n_frames(self) -> int:
        """Total input time steps over all sequences."""
        return int(sum(len(x) for x in self.inputs))

    @property
    def n_target_labels(self) -> int:
        """Total target symbols: frames for framewise tasks, characters for CTC."""
        return int(sum(len(y) for y in self.targets))

    @property
    def alphabet(self) -> str:
        """CTC tasks: the characters of labels 1..K, in label order."""
        if self.loss != "ctc":
            raise ValueError(f"{self.task} is not a CTC task; it has no alphabet")
        return "".join(self.labels[1:])

    def decode(self, label_sequence) -> str:
        """CTC tasks: label ids (1..K) back to text."""
        return "".join(self.labels[int(k)] for k in label_sequence if int(k) != 0)

    def summary(self) -> str:
        lengths = [len(x) for x in self.inputs]
        flag = "  [SYNTHETIC]" if self.synthetic else ""
        return (f"{self.task}/{self.name}: {len(self)} sequences, {self.n_frames} frames "
                f"(length {min(lengths)}..{max(lengths)}, mean {np.mean(lengths):.1f}), "
                f"n_in={self.n_in}, n_out={self.n_out}, loss={self.loss}{flag}")


def fit_standardiser(sequences: list[np.ndarray], what: str) -> dict:
    """Per-feature mean and standard deviation over all frames of the training split.

    A feature that is constant in training gets std 1 so it stays finite (it is then only centred).
    """
    frames = np.concatenate(sequences, axis=0).astype(np.float64)
    if len(frames) == 0:
        raise ValueError(f"{what}: no training frames to compute normalisation statistics from")
    std = frames.std(axis=0)
    return {"mean": frames.mean(axis=0), "std": np.where(std > 0, std, 1.0)}


def standardise(sequences: list[np.ndarray], stats: dict, dtype) -> list[np.ndarray]:
    """x ← (x − mean) / std with training statistics, cast to ``dtype``."""
    mean, std = stats["mean"], stats["std"]
    return [((x - mean) / std).astype(dtype) for x in sequences]
