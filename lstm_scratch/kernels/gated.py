"""Numba forward and full BPTT for the gated family — GRU, the JZS mutants MUT1–3 and the plain tanh
RNN (TANH) — over one sequence.

One kernel carries all five cells. With h = hᵗ⁻¹, h⁻¹ = 0, and m the mixing gate (u for GRU, z for
MUT1–3; :mod:`lstm_scratch.variants` has each cell written out)::

    m̄ = W_m x + [U_m h | U_m tanh(h) | nothing] + b_m        m = σ(m̄)       mix_recurrence h | tanh | none
    r̄ = W_r x + U_r h + b_r                                   r = σ(r̄)       (r ≡ 1 without reset gate)
    h̄ = U_h (r ⊙ h) + [W_h x | tanh(W_h x)] + b_h            h̃ = tanh(h̄)   candidate_input_tanh (MUT1)
    hᵗ = k ⊙ h + (1 − k) ⊙ h̃     k = m (mix_gate "u": GRU keeps the old state), k = 1 − m ("z": MUT),
                                 k ≡ 0 without mixing gate (TANH: hᵗ = h̃ = tanh(W_h x + U_h h + b_h))

The gates present are stored in the order m, r, h (:class:`~lstm_scratch.variants.Layout`): columns of
W, b and the cache's ``gates`` in units of N, and the rows of U of those with a recurrence.

Backward, with δhᵗ = Δᵗ + (what step t + 1 sends back) and σ'(m̄) = m (1 − m)::

    δh̃ = δhᵗ ⊙ (1 − k)       δm̄ = ±δhᵗ ⊙ (h − h̃) ⊙ σ'(m̄)   (+ for GRU, − for MUT; TANH: δh̃ = δhᵗ)
    δh̄ = δh̃ ⊙ (1 − h̃²)       δ(r ⊙ h) = U_hᵀ δh̄       δr̄ = δ(r ⊙ h) ⊙ h ⊙ σ'(r̄)
    δhᵗ⁻¹ = δhᵗ ⊙ k + δ(r ⊙ h) ⊙ r + U_rᵀ δr̄ + [U_mᵀ δm̄ | (U_mᵀ δm̄) ⊙ (1 − tanh²(h))]
    δ(W_h x) = δh̄, or δh̄ ⊙ (1 − tanh²(W_h x)) for MUT1 (b_h sits outside that tanh and gets δh̄)
    δx = Wᵀ [δm̄; δr̄; δ(W_h x)]   δW = Σ_t [δm̄; δr̄; δ(W_h x)] xᵀ   δb = Σ_t [δm̄; δr̄; δh̄]
    δU_m = Σ_t δm̄ [h | tanh(h)]ᵀ   δU_r = Σ_t δr̄ hᵀ   δU_h = Σ_t δh̄ (r ⊙ h)ᵀ

Fast path (SPEC §10): the input projection W x of all steps is one GEMM before the recurrence; only the
matrix–vector products with U (forward) and Uᵀ (backward) run step by step; δW, δU and δx are GEMMs
after the loop. The per-step products are the blocked AXPYs of :func:`.primitives.add_tmatvec` (forward on
transposed copies of U made once per sequence): at batch size 1 they match or beat a BLAS call, whose
fixed cost is comparable to the whole product at small N. Activations go through ``exp`` (:mod:`.primitives`) and saturate to exact 0, ±1, so
inputs of ±300 or huge weights give finite outputs and gradients.

Initial state (truncated BPTT carries it from one window to the next): h⁻¹ = ``h0``, zeros by default
(the same arithmetic either way: U h⁻¹ is formed at step 0 even when h⁻¹ = 0). With ``need_dstate``
the backward pass runs step 0's recurrent products too and also returns ∂L/∂h⁻¹.

Specialisation, as in :mod:`.lstm`: :func:`_build` closes over the cell's flags (a mixing gate or none,
which keeps or writes, mix_recurrence none | h | tanh, a reset gate or none, candidate_input_tanh) and
returns a jitted forward and backward. Numba
freezes closure variables as compile-time constants, so every flag test is decided while compiling and
the dead branches vanish; each flag combination gets its own machine code, compiled once per dtype
(float32, float64) and shared by every row that has it (:func:`.primitives.specialised`). The closures
are renamed per flag combination (``forward_gated_11110_…``) and the cache index of a closure includes
its captured values, so ``cache=True`` loads all five from ``__pycache__`` in a fresh process.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .primitives import add_tmatvec, compiled, jit_named, sigmoid, specialised, tanh

# What the mixing gate sees of hᵗ⁻¹ (Architecture.mix_recurrence) as a compile-time integer.
_MIX_NONE, _MIX_H, _MIX_TANH = 0, 1, 2
_MIX = {"none": _MIX_NONE, "h": _MIX_H, "tanh": _MIX_TANH}


class GatedCache(NamedTuple):
    """What :func:`forward` keeps for :func:`backward`. ``h`` is the same array as the returned y."""
    x: np.ndarray        # (T, M) the input
    h0: np.ndarray       # (N,) h⁻¹, the initial state (0 by default)
    h: np.ndarray        # (T, N) hᵗ
    gates: np.ndarray    # (T, G·N) [m, r, h̃] per step (those present: TANH keeps h̃ alone)
    x_h_tanh: np.ndarray  # (T, N) tanh(W_h xᵗ) for MUT1, else (0, N)
    h_tanh: np.ndarray   # (T, N) tanh(hᵗ⁻¹) for MUT3 (the mixing gate's recurrent input), else (0, N)


def _build(tag, has_mix, keeps_old, mix_recurrence, has_reset, candidate_input_tanh):
    """Jitted (forward, backward) for one cell. The flags are closure variables, which Numba freezes
    as compile-time constants: every flag test is decided while compiling (see module docstring)."""
    # column block (units of N) of the reset gate and the candidate in W, b, gates and δ; row block of
    # U_r in U. An absent gate points at block 0, never read (its branches are compiled out).
    CR = int(has_mix) if has_reset else 0
    CH = int(has_mix) + int(has_reset)
    G = CH + 1
    UR = int(mix_recurrence != _MIX_NONE)

    def forward(W, U, b, x, h0):
        T, N = x.shape[0], b.shape[0] // G
        dt = x.dtype
        one = np.ones(1, dt)[0]                      # typed 1 keeps float32 arithmetic in float32
        U_h = U[U.shape[0] - N:]                     # the last block of U, whatever K is
        pre = np.dot(x, W.T)                         # (T, G·N) W_m x, W_r x, W_h x for every t: one GEMM
        h_all = np.empty((T, N), dt)
        gates = np.empty((T, G * N), dt)
        x_h_tanh = np.empty((T if candidate_input_tanh else 0, N), dt)
        h_tanh = np.empty((T if mix_recurrence == _MIX_TANH else 0, N), dt)
        q = np.empty(N, dt)                          # r ⊙ h
        h = h0.copy()                                # h⁻¹: the initial state (0 by default)
        # Transposed copies (row k = what h_k feeds), so U·h is a run of AXPYs over contiguous rows.
        UT_h = np.ascontiguousarray(U_h.T)
        if mix_recurrence == _MIX_H and has_reset:
            UT_mr = np.ascontiguousarray(U[:2 * N].T)
        else:
            if mix_recurrence != _MIX_NONE:
                UT_m = np.ascontiguousarray(U[:N].T)
            if has_reset:
                UT_r = np.ascontiguousarray(U[UR * N:UR * N + N].T)
        u_q = np.empty(N, dt)                        # U_h (r ⊙ h)
        for t in range(T):
            p = pre[t]                               # this step's pre-activations, completed in place
            if mix_recurrence == _MIX_H and has_reset:   # U_m h and U_r h in one matrix-vector product
                add_tmatvec(UT_mr, h, 0, p, 0)
            else:                                    # MUT1: z sees no recurrence; TANH: no gate does
                if mix_recurrence == _MIX_H:
                    add_tmatvec(UT_m, h, 0, p, 0)
                elif mix_recurrence == _MIX_TANH:
                    for i in range(N):
                        h_tanh[t, i] = tanh(h[i], one)
                    add_tmatvec(UT_m, h_tanh[t], 0, p, 0)
                if has_reset:
                    add_tmatvec(UT_r, h, 0, p, CR * N)
            for i in range(N):
                if has_mix:
                    gates[t, i] = sigmoid(p[i] + b[i], one)
                if has_reset:
                    r = sigmoid(p[CR * N + i] + b[CR * N + i], one)
                    gates[t, CR * N + i] = r
                    q[i] = r * h[i]
                else:                                # r ≡ 1
                    q[i] = h[i]
            u_q[:] = 0
            add_tmatvec(UT_h, q, 0, u_q, 0)
            for i in range(N):
                x_h = p[CH * N + i]
                if candidate_input_tanh:             # MUT1: tanh(W_h x), then b_h outside it
                    x_h = tanh(x_h, one)
                    x_h_tanh[t, i] = x_h
                h_tilde = tanh(u_q[i] + x_h + b[CH * N + i], one)
                gates[t, CH * N + i] = h_tilde
                if not has_mix:                      # TANH: hᵗ = h̃
                    h_all[t, i] = h_tilde
                elif keeps_old:                      # GRU: hᵗ = u ⊙ h + (1 − u) ⊙ h̃
                    m = gates[t, i]
                    h_all[t, i] = m * h[i] + (one - m) * h_tilde
                else:                                # MUT: hᵗ = z ⊙ h̃ + (1 − z) ⊙ h
                    m = gates[t, i]
                    h_all[t, i] = m * h_tilde + (one - m) * h[i]
            h = h_all[t]
        return h_all, gates, x_h_tanh, h_tanh

    def backward(W, U, x, h0, h_all, gates, x_h_tanh, h_tanh, dy, gW, gU, gb, need_dx, need_dstate):
        T, N = x.shape[0], h_all.shape[1]
        dt = x.dtype
        one = np.ones(1, dt)[0]
        U_h = U[U.shape[0] - N:]
        delta = np.empty((T, G * N), dt)             # [δm̄, δr̄, δh̄] per step (those present)
        dh = np.zeros(N, dt)                         # ∂L/∂hᵗ arriving from step t + 1
        d_q = np.empty(N, dt)
        back = np.empty(N, dt)
        for t in range(T - 1, -1, -1):
            h = h_all[t - 1] if t > 0 else h0
            d = delta[t]
            for i in range(N):
                dh_t = dy[t, i] + dh[i]
                m, h_tilde = gates[t, i], gates[t, CH * N + i]
                if not has_mix:                      # k ≡ 0: δh̃ = δhᵗ, nothing reaches h directly
                    dh_tilde = dh_t
                    dh[i] = 0
                elif keeps_old:                      # k = u: δh̃ = δhᵗ (1 − u), δū = δhᵗ (h − h̃) σ'
                    dh_tilde = dh_t * (one - m)
                    d[i] = dh_t * (h[i] - h_tilde) * m * (one - m)
                    dh[i] = dh_t * m
                else:                                # k = 1 − z: δh̃ = δhᵗ z, δz̄ = δhᵗ (h̃ − h) σ'
                    dh_tilde = dh_t * m
                    d[i] = dh_t * (h_tilde - h[i]) * m * (one - m)
                    dh[i] = dh_t * (one - m)
                d[CH * N + i] = dh_tilde * (one - h_tilde * h_tilde)
            d_q[:] = 0
            add_tmatvec(U_h, d, CH * N, d_q, 0)      # δ(r ⊙ h) = U_hᵀ δh̄
            for i in range(N):
                if has_reset:
                    r = gates[t, CR * N + i]
                    d[CR * N + i] = d_q[i] * h[i] * r * (one - r)
                    dh[i] += d_q[i] * r
                else:                                # r ≡ 1
                    dh[i] += d_q[i]
            if t == 0 and not need_dstate:           # h⁻¹ is a constant: nothing to send further back
                break
            if mix_recurrence == _MIX_H and has_reset:   # U_mᵀ δm̄ + U_rᵀ δr̄ in one product
                add_tmatvec(U[:2 * N], d, 0, dh, 0)
            else:
                if has_reset:
                    add_tmatvec(U[UR * N:UR * N + N], d, CR * N, dh, 0)
                if mix_recurrence == _MIX_H:
                    add_tmatvec(U[:N], d, 0, dh, 0)
                elif mix_recurrence == _MIX_TANH:
                    back[:] = 0
                    add_tmatvec(U[:N], d, 0, back, 0)
                    for i in range(N):
                        dh[i] += back[i] * (one - h_tanh[t, i] * h_tanh[t, i])

        # Recurrent weights pair δᵗ with what U multiplied at step t; row 0 holds h⁻¹.
        h_prev = np.empty((T, N), dt)
        h_prev[0] = h0
        h_prev[1:] = h_all[:T - 1]
        if has_reset:
            q = np.empty((T, N), dt)                 # r ⊙ hᵗ⁻¹
            for t in range(T):
                for i in range(N):
                    q[t, i] = gates[t, CR * N + i] * h_prev[t, i]
        else:
            q = h_prev
        K = U.shape[0] // N
        gU[(K - 1) * N:] = np.dot(np.ascontiguousarray(delta[:, CH * N:]).T, q)
        if mix_recurrence == _MIX_H and has_reset:
            gU[:2 * N] = np.dot(np.ascontiguousarray(delta[:, :2 * N]).T, h_prev)
        else:
            if mix_recurrence == _MIX_H:
                gU[:N] = np.dot(np.ascontiguousarray(delta[:, :N]).T, h_prev)
            elif mix_recurrence == _MIX_TANH:
                gU[:N] = np.dot(np.ascontiguousarray(delta[:, :N]).T, h_tanh)
            if has_reset:
                gU[UR * N:UR * N + N] = np.dot(np.ascontiguousarray(delta[:, CR * N:CR * N + N]).T, h_prev)

        gb[:] = delta.sum(axis=0)                    # b_h sits outside MUT1's tanh(W_h x): it gets δh̄
        if candidate_input_tanh:                     # δ(W_h x) = δh̄ ⊙ (1 − tanh²(W_h x))
            for t in range(T):
                for i in range(N):
                    delta[t, CH * N + i] *= one - x_h_tanh[t, i] * x_h_tanh[t, i]
        gW[:] = np.dot(delta.T, x)                   # δW = Σ_t δᵗ xᵗᵀ
        dh0 = dh.copy() if need_dstate else np.empty(0, dt)     # ∂L/∂h⁻¹ (empty unless asked for)
        if not need_dx:                              # a first layer: skip one GEMM
            return np.empty((0, W.shape[1]), dt), dh0
        return np.dot(delta, W), dh0                 # δxᵗ = Wᵀ δᵗ

    return jit_named(forward, tag), jit_named(backward, tag)


def _build_for(arch):
    flags = dict(has_mix=bool(arch.mix_gate), keeps_old=arch.mix_gate == "u",
                 mix_recurrence=_MIX[arch.mix_recurrence], has_reset=arch.reset_gate,
                 candidate_input_tanh=arch.candidate_input_tanh)
    return specialised("gated", _build, flags)          # shared by every row with these flags


def forward(arch, blocks: dict, x: np.ndarray, h0: np.ndarray | None = None):
    """Run one sequence through a gated layer: ``y, cache = forward(arch, blocks, x)``.

    ``blocks`` = ``Layout(arch, M, N).blocks(flat)``: W (G·N, M), U (K·N, N), b (G·N,), all one dtype;
    ``x``: C-contiguous (T, M) of that dtype, T ≥ 1; ``h0``: the initial state h⁻¹ (N,) (None: zeros).
    Returns y = (h⁰ … hᵀ⁻¹) as (T, N) and a :class:`GatedCache`. y is also held by the cache: do not
    write into it before ``backward``.
    """
    fwd, _ = compiled(arch, _build_for)
    W, U, b = blocks["W"], blocks["U"], blocks["b"]
    h0 = np.zeros(U.shape[1], x.dtype) if h0 is None else h0
    h_all, gates, x_h_tanh, h_tanh = fwd(W, U, b, x, h0)
    return h_all, GatedCache(x, h0, h_all, gates, x_h_tanh, h_tanh)


def final_state(cache: GatedCache):
    """(hᵀ⁻¹, None) of the sequence of ``cache``: the initial state of the window that follows (a gated
    cell has no second state vector)."""
    return cache.h[-1], None


def backward(arch, blocks: dict, cache: GatedCache, dy: np.ndarray, grads: dict, need_dx: bool = True,
             need_dstate: bool = False):
    """Full BPTT: overwrite ``grads`` ("W", "U", "b" views of the gradient vector) with ∂L/∂θ
    for ∂L/∂y = ``dy`` (T, N) and return ∂L/∂x (T, M), or None without ``need_dx``; with
    ``need_dstate``, (∂L/∂x, ∂L/∂h⁻¹, None)."""
    _, bwd = compiled(arch, _build_for)
    W, U = blocks["W"], blocks["U"]
    dx, dh0 = bwd(W, U, cache.x, cache.h0, cache.h, cache.gates, cache.x_h_tanh, cache.h_tanh, dy,
                  grads["W"], grads["U"], grads["b"], need_dx, need_dstate)
    dx = dx if need_dx else None
    return (dx, dh0, None) if need_dstate else dx
