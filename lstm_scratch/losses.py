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
summed over the 88 notes). The CTC loss and its metric (character error rate) live in :mod:`.ctc`;
:mod:`.objectives` binds each loss to its name, prediction and metric.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .jit_cache import lazy_njit     # jitted on first use: importing the losses loads no Numba


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


def bernoulli_nll_fast(logits, targets) -> tuple[float, np.ndarray]:
    """:func:`bernoulli_nll`, bit for bit — same loss, same gradient, same errors — in 40–50 % of
    its time: the loss training calls, once per sequence (the ``bernoulli`` row of :mod:`.objectives`).

    The reference makes ~20 NumPy passes over (T, K) — e^{−|a|} twice, one temporary per operation —
    and checks the targets in separate passes (at N = 20 that was a quarter of a training step). Here
    NumPy computes e = e^{−|a|} and log1p(e) once (its vectorised exp and log1p, so every value is the
    reference's), and one Numba pass forms softplus(a) − z·a and σ(a) − z with the reference's operations
    in the reference's order, and tests 0 ≤ z ≤ 1 on the way; the sum is NumPy's, as in the reference.
    Targets of another dtype than the logits, and logits Numba cannot take (float16), go to the
    reference itself.
    """
    logits = _check_logits(logits)
    targets = np.asarray(targets)
    if (targets.dtype != logits.dtype or targets.shape != logits.shape
            or logits.dtype not in (np.float32, np.float64)):
        return bernoulli_nll(logits, targets)          # converts, or raises, exactly as the reference
    e = np.abs(logits)
    np.negative(e, out=e)
    np.exp(e, out=e)                                    # e^{−|a|} ≤ 1, never overflows
    terms, dlogits = np.empty_like(logits), np.empty_like(logits)
    if _bernoulli_terms(logits, targets, e, np.log1p(e), terms, dlogits):
        _check_binary_targets(targets, logits.shape)   # raises, naming the first target outside [0, 1]
    return float(np.sum(terms, dtype=np.float64)), dlogits


@lazy_njit(cache=True, nogil=True, error_model="numpy")
def _bernoulli_terms(logits, targets, e, log1p_e, terms, dlogits):
    """terms = softplus(a) − z·a and dlogits = σ(a) − z element-wise, given e = e^{−|a|} and log1p(e);
    True if a target lies outside [0, 1] or is NaN. Arithmetic in the logits' dtype (``one`` carries it).
    The targets in range are counted, not tested with ``and``/``or``: a branch in the loop kept LLVM
    from vectorising it (3× slower)."""
    one = np.ones(1, logits.dtype)[0]
    zero = one - one
    inside = 0
    T, K = logits.shape
    for t in range(T):
        for k in range(K):
            a, z, ek = logits[t, k], targets[t, k], e[t, k]
            terms[t, k] = ((a if a > zero else zero) + log1p_e[t, k]) - z * a
            dlogits[t, k] = (one / (one + ek) if a >= zero else ek / (one + ek)) - z
            inside += (z >= zero) & (z <= one)          # False for NaN
    return inside != T * K


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


# --------------------------------------------------------------- next-symbol prediction (JZS's tasks)
UNSCORED = -1   # the label of a frame that neither the loss nor the metrics count


def check_scored_labels(labels, n_frames: int, n_classes: int) -> np.ndarray:
    """Validate one label per frame, each a class in ``[0, n_classes)`` or :data:`UNSCORED` (−1) for a
    frame that is not scored. Returns it as int64; raises ``ValueError`` naming the offending value."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != n_frames:
        raise ValueError(f"labels must have shape ({n_frames},), one per frame of the output; got shape "
                         f"{labels.shape}")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers (class indices, or {UNSCORED}); got dtype {labels.dtype}")
    bad = np.flatnonzero((labels < UNSCORED) | (labels >= n_classes))
    if bad.size:
        raise ValueError(f"label {labels[bad[0]]} at frame {bad[0]} is out of range: the output has {n_classes} "
                         f"classes, so labels must lie in [0, {n_classes - 1}], or be {UNSCORED} for a frame "
                         "that is not scored")
    return labels.astype(np.int64, copy=False)


def masked_softmax_xent(logits, labels) -> tuple[float, np.ndarray]:
    """Softmax cross-entropy of one sequence, summed over its scored frames S = {t : ℓᵗ ≠ −1} only::

        loss = Σ_{t∈S} [ LSE(aᵗ) − aᵗ_{ℓᵗ} ]       ∂loss/∂aᵗ_k = softmax(aᵗ)_k − [k = ℓᵗ]  (t ∈ S), 0 (t ∉ S)

    logits: (T, K).  labels: (T,) ints in [0, K) or −1. Returns (loss in nats, dlogits (T, K)).
    """
    logits = _check_logits(logits)
    labels = check_scored_labels(labels, *logits.shape)
    frames = np.flatnonzero(labels != UNSCORED)
    dlogits = np.zeros_like(logits)
    if frames.size:
        loss, dlogits[frames] = softmax_xent(logits[frames], labels[frames])
        return loss, dlogits
    return 0.0, dlogits


def _scored_pairs(logits_seqs: Sequence, labels_seqs: Sequence, what: str):
    """(logits, labels) of the scored frames of every sequence; a set without one is a ``ValueError``."""
    _check_pairs(logits_seqs, labels_seqs, "labels")
    pairs = []
    for a, z in zip(logits_seqs, labels_seqs):
        a = _check_logits(a)
        z = check_scored_labels(z, *a.shape)
        scored = z != UNSCORED
        pairs.append((a[scored], z[scored]))
    if not any(z.size for _, z in pairs):
        raise ValueError(f"{what} needs at least one scored frame (label ≠ {UNSCORED}); none was given")
    return pairs


def symbol_accuracy(logits_seqs: Sequence, labels_seqs: Sequence) -> float:
    """Next-symbol accuracy over a set of sequences (JZS's metric, a fraction in [0, 1]): the share of
    scored frames whose most probable symbol is the target, Σ [argmax aᵗ = ℓᵗ] / |S|, pooled over the
    scored frames of every sequence."""
    pairs = _scored_pairs(logits_seqs, labels_seqs, "symbol_accuracy")
    hits = sum(int(np.count_nonzero(a.argmax(axis=1) == z)) for a, z in pairs if z.size)
    return hits / sum(z.size for _, z in pairs)


def symbol_nll(logits_seqs: Sequence, labels_seqs: Sequence) -> float:
    """Negative log-likelihood in nats per scored symbol over a set of sequences:
    Σ_{t∈S} [ LSE(aᵗ) − aᵗ_{ℓᵗ} ] / |S|, pooled over the scored frames of every sequence."""
    pairs = _scored_pairs(logits_seqs, labels_seqs, "symbol_nll")
    return sum(softmax_xent(a, z)[0] for a, z in pairs if z.size) / sum(z.size for _, z in pairs)
