"""Connectionist temporal classification (Graves et al. 2006; Graves 2012, ch. 7): loss, gradient,
best-path decoding, edit distance and character error rate.

The network emits pre-softmax outputs a (T, K); yᵗ = softmax(aᵗ), one class is the blank. A label
sequence l (length L, no blanks) is extended with blanks, l' = (b, l₁, b, l₂, …, b), S = 2L + 1 states.
A path may stay in state s, advance to s + 1, or skip the blank to s + 2 when l'_{s+2} ≠ l'_s.
Forward variables include yᵗ, backward ones exclude it (so no division by y is ever needed)::

    α₀(0) = y⁰_b,  α₀(1) = y⁰_{l₁}            αₜ(s) = yᵗ_{l'_s} (αₜ₋₁(s) + αₜ₋₁(s−1) [+ αₜ₋₁(s−2)])
    β_{T−1}(S−1) = β_{T−1}(S−2) = 1          βₜ(s) = Σ_{s' ∈ {s, s+1, [s+2]}} yᵗ⁺¹_{l'_{s'}} βₜ₊₁(s')

(frames t = 0 … T−1, as in the code).
    p(l | x) = Σ_s αₜ(s) βₜ(s)   for every t,   loss = −ln p(l | x)

With the softmax folded in, the gradient with respect to the pre-activations is

    ∂loss/∂aᵗ_k = yᵗ_k − (1 / p) Σ_{s : l'_s = k} αₜ(s) βₜ(s)

Two recursions, one answer:

* **linear space with per-step rescaling** (Graves 2012, ch. 7): α̂ₜ = αₜ / Cₜ with
  Cₜ = Σ_s αₜ(s) (likewise β̂, Dₜ), so ln p = Σ ln Cₜ + ln Σ_s α̂_{T−1}(s) β_{T−1}(s). Multiplications only,
  several times faster than PyTorch's log-space kernel (benchmarks/bench_ctc.py). The gradient uses
  the per-frame posterior α̂ₜ(s) β̂ₜ(s) / Zₜ with Zₜ = Σ_s α̂ₜ(s) β̂ₜ(s), which needs no global scale.
* **log space**, with log-sum-exp in place of every sum: slower, exact for any logits.

``method="auto"`` takes the linear path and checks it: it must see no underflow (every y of a symbol in
l' above e^-600, no Cₜ, Dₜ or Zₜ equal to 0) and the identity p = Σ_s αₜ(s) βₜ(s) must give the
same ln p at every t to 1e-8 relative (paths flushed to zero in one direction but still alive in the
other would break it). If anything fails — logits of ±1000 do — it recomputes the sequence in log
space. Both run in float64 whatever the input dtype; the kernels release the GIL.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .jit_cache import lazy_njit     # jitted on first use: importing the CTC code loads no Numba
from .losses import check_label_values

LINEAR_MIN_Y = math.exp(-600.0)   # a label's y below this is near float64 underflow: use log space
CONSISTENCY_RTOL = 1e-8     # allowed spread of ln p over t, relative to max(1, |ln p|)


def min_frames(labels) -> int:
    """Fewest frames an alignment of ``labels`` needs: one per label, plus a blank between repeats."""
    labels = np.asarray(labels)
    return int(labels.size + np.count_nonzero(labels[1:] == labels[:-1]))


def _check_ctc_inputs(logits, labels, blank: int) -> tuple[np.ndarray, np.ndarray]:
    logits = np.asarray(logits)
    if logits.ndim != 2 or not np.issubdtype(logits.dtype, np.floating):
        raise ValueError(f"logits must be a 2-D float array (T frames, K classes incl. blank); got shape "
                         f"{logits.shape} and dtype {logits.dtype}")
    n_frames, n_classes = logits.shape
    if n_frames == 0:
        raise ValueError("logits has no frames (T = 0); CTC needs at least one output frame")
    if not 0 <= blank < n_classes:
        raise ValueError(f"blank index {blank} is out of range for {n_classes} classes")
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be a 1-D label sequence; got shape {labels.shape}")
    check_label_values(labels, n_classes, "position")
    blanks = np.flatnonzero(labels == blank)
    if blanks.size:
        raise ValueError(f"label at position {blanks[0]} is the blank ({blank}); a CTC target must not "
                         "contain the blank — remove it, or set blank= to the right index")
    return logits, labels.astype(np.int64)


def ctc_loss(logits, labels, blank: int = 0, zero_infinity: bool = False,
             method: str = "auto") -> tuple[float, np.ndarray]:
    """CTC negative log-likelihood −ln p(l | x) of one sequence and its gradient w.r.t. the logits.

    logits: (T, K) pre-softmax outputs, float32 or float64.  labels: (L,) ints in [0, K), no blank;
    L = 0 is allowed (the all-blank path).  blank: index of the blank class.
    zero_infinity: an impossible alignment (T < L + number of adjacent repeats) raises ValueError by
    default; with True it returns (inf, zeros) instead. (PyTorch's flag of that name returns 0, not inf.)
    method: "auto" (linear space, checked, log space as fallback), "linear" (no fallback; raises
    FloatingPointError where "auto" would fall back) or "log".
    Returns (loss in nats as a float, dlogits (T, K) in the dtype of ``logits``). NaN logits give NaN.
    """
    if method not in ("auto", "linear", "log"):
        raise ValueError(f"unknown CTC method {method!r}; choose 'auto', 'linear' or 'log'")
    logits, labels = _check_ctc_inputs(logits, labels, blank)
    needed = min_frames(labels)
    if logits.shape[0] < needed:
        if zero_infinity:
            return math.inf, np.zeros(logits.shape, dtype=logits.dtype)
        raise ValueError(f"impossible CTC alignment: {len(labels)} labels with "
                         f"{needed - len(labels)} adjacent repeats need at least {needed} frames, but "
                         f"the output has only {logits.shape[0]}; pass zero_infinity=True to get an "
                         "infinite loss with zero gradient instead")
    ext = np.full(2 * labels.size + 1, blank, dtype=np.int64)
    ext[1::2] = labels
    if method != "log":
        # Softmax in NumPy, in place in one float64 copy: NumPy's exp is SIMD-vectorised (Numba's is
        # ~10× slower without SVML), and every extra (T, K) temporary costs page faults per call.
        y = np.array(logits, dtype=np.float64)
        y -= y.max(axis=1, keepdims=True)
        np.exp(y, out=y)
        y /= y.sum(axis=1, keepdims=True)
        ok, loss, grad = _ctc_linear(y, ext, LINEAR_MIN_Y, CONSISTENCY_RTOL)
        if ok:
            return loss, grad.astype(logits.dtype, copy=False)
        if np.isnan(loss):      # NaN in, NaN out: the trainer's divergence check must see it
            return math.nan, np.full(logits.shape, np.nan, dtype=logits.dtype)
        if method == "linear":
            raise FloatingPointError("the rescaled linear-space CTC recursion under- or overflowed "
                                     "for these logits; use method='auto' or 'log'")
    logy = logits.astype(np.float64)
    logy -= logy.max(axis=1, keepdims=True)
    logy -= np.log(np.exp(logy).sum(axis=1, keepdims=True))
    loss, grad = _ctc_log(logy, np.exp(logy), ext)
    return loss, grad.astype(logits.dtype, copy=False)


@lazy_njit(cache=True)
def _can_skip(ext, s):
    """May a path jump from state s − 2 to s? Only onto a label that differs from the one before."""
    return s >= 2 and ext[s] != ext[s - 2]


@lazy_njit(inline="always", cache=True)
def _total(v):
    """Σ v with four partial sums, so the additions overlap instead of waiting on one another."""
    a0 = a1 = a2 = a3 = 0.0
    i = 0
    while i + 4 <= v.size:
        a0 += v[i]
        a1 += v[i + 1]
        a2 += v[i + 2]
        a3 += v[i + 3]
        i += 4
    while i < v.size:
        a0 += v[i]
        i += 1
    return (a0 + a1) + (a2 + a3)


@lazy_njit(cache=True, nogil=True)
def _ctc_linear(y, ext, min_y, rtol):
    """Rescaled linear-space recursion on the softmax outputs y (T, K), which it overwrites with the
    gradient. Returns (ok, loss, dlogits); ok = False means "use log space" (NaN logits come back as
    ok = False with a NaN loss). Only α̂ is stored; β̂ lives in one row, and the gradient of frame t is
    formed as soon as β̂ₜ is known. The skip rule is a 0/1 factor so the state loops have no branches."""
    n_frames = y.shape[0]
    n_states = ext.size
    skip = np.zeros(n_states)
    for s in range(n_states):
        skip[s] = 1.0 if _can_skip(ext, s) else 0.0

    alpha = np.zeros((n_frames, n_states))
    emit = np.empty(n_states)                   # yᵗ_{l'_s}, then β̂ₜ(s) yᵗ_{l'_s}
    log_c = np.empty(n_frames)                  # Σ_{τ ≤ t} ln C_τ
    acc = 0.0
    for t in range(n_frames):
        for s in range(n_states):
            emit[s] = y[t, ext[s]]
            if not emit[s] >= min_y:            # near underflow, or NaN
                return False, np.nan if np.isnan(y).any() else np.inf, y
        cur = alpha[t]
        if t == 0:
            cur[0] = emit[0]
            if n_states > 1:
                cur[1] = emit[1]
        else:
            prev = alpha[t - 1]
            cur[0] = prev[0] * emit[0]
            if n_states > 1:
                cur[1] = (prev[1] + prev[0]) * emit[1]
            for s in range(2, n_states):
                cur[s] = (prev[s] + prev[s - 1] + skip[s] * prev[s - 2]) * emit[s]
        c = _total(cur)
        if not c > 0.0:
            return False, np.inf, y
        inv = 1.0 / c
        for s in range(n_states):
            cur[s] *= inv
        acc += np.log(c)
        log_c[t] = acc

    beta = np.zeros(n_states)
    posterior = np.empty(n_states)              # α̂ₜ(s) β̂ₜ(s)
    beta[n_states - 1] = 1.0
    if n_states > 1:
        beta[n_states - 2] = 1.0
    log_d = 0.0                                 # Σ_{τ ≥ t} ln D_τ
    log_p = 0.0
    spread_lo = np.inf
    spread_hi = -np.inf
    for t in range(n_frames - 1, -1, -1):
        if t < n_frames - 1:                    # emit holds β̂ₜ₊₁(s) yᵗ⁺¹_{l'_s}
            for s in range(n_states - 2):
                beta[s] = emit[s] + emit[s + 1] + skip[s + 2] * emit[s + 2]
            if n_states > 1:
                beta[n_states - 2] = emit[n_states - 2] + emit[n_states - 1]
            beta[n_states - 1] = emit[n_states - 1]
        d = _total(beta)
        if not d > 0.0:
            return False, np.inf, y
        inv = 1.0 / d
        for s in range(n_states):
            beta[s] *= inv
            emit[s] = beta[s] * y[t, ext[s]]    # read before y[t] turns into the gradient below
            posterior[s] = alpha[t, s] * beta[s]
        z = _total(posterior)
        if not z > 0.0:
            return False, np.inf, y
        log_d += np.log(d)
        # p = Σ_s αₜ(s) βₜ(s) at every t: ln p from every frame must agree (the last frame's is the loss)
        log_p_t = log_c[t] + log_d + np.log(z)
        if t == n_frames - 1:
            log_p = log_p_t
        spread_lo = min(spread_lo, log_p_t)
        spread_hi = max(spread_hi, log_p_t)
        inv = 1.0 / z
        for s in range(n_states):
            y[t, ext[s]] -= posterior[s] * inv  # y becomes the gradient, frame by frame
    if spread_hi - spread_lo > rtol * max(1.0, abs(log_p)):
        return False, -log_p, y
    return True, -log_p, y


@lazy_njit(cache=True)
def _logaddexp(a, b):
    if a == -np.inf:
        return b
    if b == -np.inf:
        return a
    if a > b:
        return a + np.log1p(np.exp(b - a))
    return b + np.log1p(np.exp(a - b))


@lazy_njit(cache=True, nogil=True)
def _ctc_log(logy, y, ext):
    """Log-space recursion: the same variables as :func:`_ctc_linear`, as logarithms, from log y and
    y (T, K); overwrites y with the gradient. Returns (loss, dlogits)."""
    n_frames = logy.shape[0]
    n_states = ext.size
    log_alpha = np.full((n_frames, n_states), -np.inf)
    log_beta = np.full((n_frames, n_states), -np.inf)
    log_alpha[0, 0] = logy[0, ext[0]]
    if n_states > 1:
        log_alpha[0, 1] = logy[0, ext[1]]
    for t in range(1, n_frames):
        for s in range(n_states):
            a = log_alpha[t - 1, s]
            if s >= 1:
                a = _logaddexp(a, log_alpha[t - 1, s - 1])
            if _can_skip(ext, s):
                a = _logaddexp(a, log_alpha[t - 1, s - 2])
            log_alpha[t, s] = a + logy[t, ext[s]]
    log_beta[n_frames - 1, n_states - 1] = 0.0
    if n_states > 1:
        log_beta[n_frames - 1, n_states - 2] = 0.0
    for t in range(n_frames - 2, -1, -1):
        for s in range(n_states):
            b = log_beta[t + 1, s] + logy[t + 1, ext[s]]
            if s + 1 < n_states:
                b = _logaddexp(b, log_beta[t + 1, s + 1] + logy[t + 1, ext[s + 1]])
            if s + 2 < n_states and _can_skip(ext, s + 2):
                b = _logaddexp(b, log_beta[t + 1, s + 2] + logy[t + 1, ext[s + 2]])
            log_beta[t, s] = b
    log_p = log_alpha[n_frames - 1, n_states - 1]
    if n_states > 1:
        log_p = _logaddexp(log_p, log_alpha[n_frames - 1, n_states - 2])
    grad = y
    for t in range(n_frames):
        for s in range(n_states):
            grad[t, ext[s]] -= np.exp(log_alpha[t, s] + log_beta[t, s] - log_p)
    return -log_p, grad


def best_path(logits, blank: int = 0) -> np.ndarray:
    """Best-path decoding: the most probable class per frame, repeats merged, blanks removed.
    (b a a b b a → a a: the blank between the two a's keeps them apart.) Returns an int64 array."""
    logits = np.asarray(logits)
    if logits.ndim != 2:
        raise ValueError(f"logits must be 2-D (T frames, K classes); got shape {logits.shape}")
    if not 0 <= blank < logits.shape[1]:
        raise ValueError(f"blank index {blank} is out of range for {logits.shape[1]} classes")
    best = logits.argmax(axis=1)
    new = np.ones(best.shape, dtype=bool)
    new[1:] = best[1:] != best[:-1]
    return best[new & (best != blank)].astype(np.int64)


def _as_symbols(seq) -> np.ndarray:
    if isinstance(seq, str):
        return np.array([ord(ch) for ch in seq], dtype=np.int64)
    arr = np.asarray(seq)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"a symbol sequence must be a str or a 1-D integer array; got shape "
                         f"{arr.shape} and dtype {arr.dtype}")
    return arr.astype(np.int64)


@lazy_njit(cache=True, nogil=True)
def _levenshtein(a, b):
    prev = np.arange(b.size + 1)
    cur = np.empty_like(prev)
    for i in range(1, a.size + 1):
        cur[0] = i
        for j in range(1, b.size + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
        prev, cur = cur, prev
    return prev[b.size]


def edit_distance(a, b) -> int:
    """Levenshtein distance: the fewest insertions, deletions and substitutions turning ``a`` into
    ``b`` (each a str or a 1-D int sequence)."""
    return int(_levenshtein(_as_symbols(a), _as_symbols(b)))


def character_error_rate(refs: Sequence, hyps: Sequence) -> float:
    """Character error rate in PERCENT over a set of sequences (SPEC §5):
    100 · Σ edit_distance(ref, hyp) / Σ len(ref), pooled (long lines weigh more). Can exceed 100."""
    if isinstance(refs, str) or isinstance(hyps, str):
        raise ValueError("pass LISTS of sequences (e.g. [ref], [hyp]), not a single string")
    if len(refs) != len(hyps):
        raise ValueError(f"got {len(refs)} reference sequences but {len(hyps)} hypotheses")
    edits = sum(edit_distance(r, h) for r, h in zip(refs, hyps))
    length = sum(len(_as_symbols(r)) for r in refs)
    if length == 0:
        raise ValueError("character_error_rate needs at least one reference symbol; all references are "
                         "empty")
    return 100.0 * edits / length
