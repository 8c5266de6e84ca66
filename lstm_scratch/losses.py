"""Framewise losses on the output pre-activations, and the metrics the paper reports (SPEC §5).

Every loss takes the output layer's pre-activations ``a`` (``logits``, shape (T, K)) of ONE sequence and
returns ``(loss, dlogits)``: the loss SUMMED over the sequence and its gradient ∂loss/∂a, same shape and
dtype as ``a``. The output non-linearity is folded into the loss, so the gradient is the familiar
"prediction minus target" and nothing overflows for logits of ±1000.

Summed, not averaged, over frames: the paper trains online, one update per sequence, and the sum is
the sequence's negative log-likelihood — what Graves and Greff's pylstm minimise. Long sequences thus
take larger steps; divide by T yourself if you want the mean. The metrics below are separate
functions over a whole set of sequences, pooled over all frames.

Softmax cross-entropy (TIMIT, one class ℓᵗ per frame), with LSE(aᵗ) = log Σ_k exp(aᵗ_k)::

    loss = Σ_t [ LSE(aᵗ) − aᵗ_{ℓᵗ} ]                ∂loss/∂aᵗ_k = softmax(aᵗ)_k − [k = ℓᵗ]

Independent Bernoulli NLL (JSB and the other music sets, K = 88 sigmoids, targets zᵗ_k ∈ {0, 1})::

    loss = −Σ_t Σ_k [ zᵗ_k log σ(aᵗ_k) + (1 − zᵗ_k) log(1 − σ(aᵗ_k)) ]
         = Σ_t Σ_k [ softplus(aᵗ_k) − zᵗ_k aᵗ_k ]      ∂loss/∂aᵗ_k = σ(aᵗ_k) − zᵗ_k

with softplus(a) = max(a, 0) + log1p(exp(−|a|)), which never overflows. Losses are in nats.

Metrics (SPEC §5), each over a set of sequences and pooled over all their frames:
:func:`framewise_error` (% of misclassified frames) and :func:`nll_per_step` (nats per time step,
summed over the 88 notes). The CTC loss and its metric (character error rate) live in :mod:`.ctc`.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


def _check_logits(logits) -> np.ndarray:
    logits = np.asarray(logits)
    if logits.ndim != 2 or not np.issubdtype(logits.dtype, np.floating):
        raise ValueError(f"logits must be a 2-D float array (T frames, K outputs); got shape "
                         f"{logits.shape} and dtype {logits.dtype}")
    return logits


def check_class_labels(labels, n_frames: int, n_classes: int) -> np.ndarray:
    """Validate one class label per frame: a 1-D integer array of length ``n_frames``, values in
    ``[0, n_classes)``. Returns it as int64; raises ``ValueError`` naming the offending value."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != n_frames:
        raise ValueError(f"labels must have shape ({n_frames},), one class per frame of the output; "
                         f"got shape {labels.shape}")
    check_label_values(labels, n_classes, "frame")
    return labels.astype(np.int64, copy=False)


def check_label_values(labels: np.ndarray, n_classes: int, where: str) -> None:
    """Labels must be integer class indices in [0, n_classes); ``where`` names what a position is
    ("frame", "position") in the message."""
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers (class indices); got dtype {labels.dtype}")
    bad = np.flatnonzero((labels < 0) | (labels >= n_classes))
    if bad.size:
        raise ValueError(f"label {labels[bad[0]]} at {where} {bad[0]} is out of range: the output has "
                         f"{n_classes} classes, so labels must lie in [0, {n_classes - 1}]")


def _check_binary_targets(targets, shape: tuple) -> np.ndarray:
    targets = np.asarray(targets)
    if targets.shape != shape:
        raise ValueError(f"targets of shape {targets.shape} do not match the output of shape {shape} "
                         "(T frames, K units)")
    bad = np.flatnonzero(~((targets >= 0) & (targets <= 1)))     # also catches NaN
    if bad.size:
        t, k = np.unravel_index(bad[0], shape)
        raise ValueError(f"target {targets[t, k]} at frame {t}, unit {k} is not a probability: "
                         "Bernoulli targets must lie in [0, 1] (0/1 for piano rolls)")
    return targets


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log softmax(a)_k = a_k − LSE(a) row-wise, shifted by the row maximum so nothing overflows."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (T, K) logits, computed as exp(log_softmax)."""
    return np.exp(log_softmax(logits))


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """σ(a) = 1 / (1 + e^{−a}) written through e^{−|a|} ≤ 1, so ±1000 gives exactly 0 or 1, no warning."""
    e = np.exp(-np.abs(logits))
    return np.where(logits >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(logits.dtype, copy=False)


def softmax_xent(logits, labels) -> tuple[float, np.ndarray]:
    """Softmax cross-entropy of one sequence, summed over its frames.

    logits: (T, K) pre-softmax outputs.  labels: (T,) ints in [0, K).
    Returns (loss in nats as a float, dlogits (T, K) in the dtype of ``logits``).
    """
    logits = _check_logits(logits)
    labels = check_class_labels(labels, *logits.shape)
    logp = log_softmax(logits)
    frames = np.arange(logits.shape[0])
    loss = -float(np.sum(logp[frames, labels], dtype=np.float64))
    dlogits = np.exp(logp)
    dlogits[frames, labels] -= 1
    return loss, dlogits


def bernoulli_nll(logits, targets) -> tuple[float, np.ndarray]:
    """Independent-Bernoulli negative log-likelihood of one sequence, summed over frames and units.

    logits: (T, K) pre-sigmoid outputs.  targets: (T, K) in [0, 1] (0/1 piano-roll frames).
    Returns (loss in nats as a float, dlogits (T, K) in the dtype of ``logits``).
    """
    logits = _check_logits(logits)
    targets = _check_binary_targets(targets, logits.shape)
    loss = float(np.sum(_softplus(logits) - targets * logits, dtype=np.float64))
    return loss, sigmoid(logits) - targets.astype(logits.dtype, copy=False)


def _softplus(a: np.ndarray) -> np.ndarray:
    return np.maximum(a, 0) + np.log1p(np.exp(-np.abs(a)))


def frame_errors(logits, labels) -> int:
    """Number of frames of one sequence whose most probable class (argmax of the logits) is wrong."""
    logits = _check_logits(logits)
    labels = check_class_labels(labels, *logits.shape)
    return int(np.count_nonzero(logits.argmax(axis=1) != labels))


def framewise_error(logits_seqs: Sequence, labels_seqs: Sequence) -> float:
    """Framewise classification error in PERCENT over a set of sequences (TIMIT's metric):
    100 · Σ misclassified frames / Σ frames, pooled over all frames (long utterances weigh more)."""
    _check_pairs(logits_seqs, labels_seqs, "labels")
    errors = sum(frame_errors(a, z) for a, z in zip(logits_seqs, labels_seqs))
    frames = sum(np.shape(a)[0] for a in logits_seqs)
    if frames == 0:
        raise ValueError("framewise_error needs at least one frame; every sequence given is empty")
    return 100.0 * errors / frames


def nll_per_step(logits_seqs: Sequence, targets_seqs: Sequence) -> float:
    """Bernoulli NLL per time step over a set of sequences (JSB's metric, SPEC §5), in nats:
    Σ_sequences Σ_t Σ_k nll / Σ_sequences T — the sum over the 88 notes, the mean over all frames
    pooled (not the mean of per-sequence means)."""
    _check_pairs(logits_seqs, targets_seqs, "targets")
    total = 0.0
    for a, z in zip(logits_seqs, targets_seqs):
        a = _check_logits(a)
        z = _check_binary_targets(z, a.shape)
        total += float(np.sum(_softplus(a) - z * a, dtype=np.float64))
    frames = sum(np.shape(a)[0] for a in logits_seqs)
    if frames == 0:
        raise ValueError("nll_per_step needs at least one frame; every sequence given is empty")
    return total / frames


def _check_pairs(outputs: Sequence, targets: Sequence, what: str) -> None:
    if isinstance(outputs, np.ndarray) and outputs.ndim == 2:
        raise ValueError("pass a LIST of (T, K) arrays, one per sequence, not a single 2-D array "
                         "(wrap it: [logits])")
    if len(outputs) != len(targets):
        raise ValueError(f"got {len(outputs)} output sequences but {len(targets)} {what} sequences")


def loss_function(name: str) -> Callable[..., tuple[float, np.ndarray]]:
    """The loss ``f(logits, target) -> (loss, dlogits)`` for a network's ``loss=`` name:
    "softmax" (target: (T,) class ints), "bernoulli" (target: (T, K) 0/1) or "ctc" (target: a label
    sequence without blanks; blank index 0)."""
    from .ctc import ctc_loss
    table = {"softmax": softmax_xent, "bernoulli": bernoulli_nll, "ctc": ctc_loss}
    if name not in table:
        raise ValueError(f"unknown loss {name!r}; choose one of {sorted(table)}")
    return table[name]
