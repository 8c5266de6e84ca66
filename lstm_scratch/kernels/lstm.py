"""Numba forward and full-BPTT kernels for vanilla LSTM and the eight Odyssey variants.

One kernel for all nine: :func:`_build` closes over the architecture's flags (which gates exist,
coupled forget gate, g and h, peepholes, full gate recurrence) and returns a jitted forward and
backward. Numba freezes closure variables as compile-time constants, so every ``if has_o:`` is decided
while compiling and the dead branch vanishes; each flag combination gets its own machine code, shared by
every row that has it (NP, JZS's LSTM and LSTM-B: one kernel, :func:`.primitives.specialised`). The cache
index of a closure includes its captured values, so ``cache=True`` works — once each closure carries a
name of its own (:func:`.primitives.jit_named`): a fresh process loads every specialisation from
``__pycache__``.

Fast path (SPEC §10). Only what must be sequential is in the time loop:

    forward   P = X Wᵀ for all t (one GEMM); per step  pre = Pᵗ + b + R yᵗ⁻¹ [+ Q (i,f,o)ᵗ⁻¹], gates, cell
    backward  per step  element-wise δ's, then  δyᵗ⁻¹_rec = Rᵀ δᵗ [and δ(i,f,o)ᵗ⁻¹_rec = Qᵀ δ(ī,f̄,ō)ᵗ]
              after the loop, GEMMs:  δW = Dᵀ X   δR = Dᵀ Y₋₁   δx = D W   δb = Σ_t Dᵗ   δQ, δp

What made it fast (measured, batch 1, N = 20–200):
- The per-step matrix–vector products are blocked AXPYs over contiguous rows (:func:`.primitives.add_tmatvec`),
  which LLVM vectorises without reassociating sums; OpenBLAS gemv costs 2–5× more here.
- σ and tanh go through a vectorisable exp (:func:`.primitives.exp`); libm's scalar exp was the largest cost.
- The unit loops read and write *separate* arrays (per-gate scratch vectors, copied into the cache
  after the loop): LLVM gives up vectorising a loop that stores into two slices of one array, and the
  kernel then ran 3–10× slower. ``error_model="numpy"`` drops the division-by-zero checks that also
  block vectorisation (and gives IEEE inf/NaN, which the divergence checks want to see).

Cache layout (contiguous, time-major): ``A`` (T, G·N) holds the gate activations z, i, f, o of the
gates present (every derivative is written through the activation: σ' = s(1 − s), tanh' = 1 − t²);
``Y`` and ``C`` are (T + 1, N) with row 0 the initial state, so row t is yᵗ⁻¹ / cᵗ⁻¹ and row t + 1
is yᵗ / cᵗ; ``H`` (T, N) is h(cᵗ).

Initial state (truncated BPTT carries it from one window to the next): y⁻¹ = ``y0``, c⁻¹ = ``c0``, zeros
by default. Without one, step 0 skips R y⁻¹ exactly as before (bit for bit). FGR's previous gate values
i⁻¹, f⁻¹, o⁻¹ start at 0 even then — that part of FGR's state is not carried. With ``need_dstate``
the backward pass also returns ∂L/∂y⁻¹ = Σ_b R_bᵀ δb̄⁰ and ∂L/∂c⁻¹ = δc⁰ ⊙ f⁰ + p_i ⊙ δī⁰ + p_f ⊙ δf̄⁰.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from .primitives import add_tmatvec, compiled, jit_named, sigmoid, specialised, tanh


class LSTMCache(NamedTuple):
    """What :func:`forward` keeps for :func:`backward` (the returned y is ``Y[1:]``)."""
    x: np.ndarray   # (T, M) the input
    A: np.ndarray   # (T, G·N) gate activations z, i, f, o (those present)
    C: np.ndarray   # (T + 1, N) cells, row 0 = c⁻¹ (the initial state, 0 by default)
    H: np.ndarray   # (T, N) h(cᵗ)
    Y: np.ndarray   # (T + 1, N) outputs, row 0 = y⁻¹ (the initial state, 0 by default)


@njit(cache=True, nogil=True, error_model="numpy")
def _gate_matrix(Q, transpose):
    """The nine FGR matrices Q[b, a] = R_ab as one (3N, 3N) matrix with rows (b, j) and columns (a, k),
    or its transpose (rows (a, k), columns (b, j)) — the orientation :func:`add_tmatvec` needs."""
    N = Q.shape[2]
    out = np.empty((3 * N, 3 * N), dtype=Q.dtype)
    for b in range(3):
        for a in range(3):
            for j in range(N):
                for k in range(N):
                    if transpose:
                        out[a * N + k, b * N + j] = Q[b, a, j, k]
                    else:
                        out[b * N + j, a * N + k] = Q[b, a, j, k]
    return out


def _build(tag, has_i, has_f, has_o, coupled, g_tanh, h_tanh, peep, fgr):
    """Jitted (forward, backward) for one combination of flags (see module docstring).

    has_f means a forget gate with its own parameters (not CIFG, whose f = 1 − i is ``coupled``).
    Gate columns in A / D follow the storage order z, i, f, o of the gates present; peephole rows of
    ``p`` the order i, f, o of those present (:class:`~lstm_scratch.variants.Layout`).
    """
    # column block of each gate in A / D (units of N) and peephole row in p; an absent gate points
    # at block / row 0, never read (its branches are compiled out)
    CI = 1 if has_i else 0
    CF = 1 + int(has_i) if has_f else 0
    CO = 1 + int(has_i) + int(has_f) if has_o else 0
    has_pi, has_pf, has_po = peep and has_i, peep and has_f, peep and has_o
    PI = 0
    PF = int(has_pi) if has_pf else 0
    PO = int(has_pi) + int(has_pf) if has_po else 0

    def forward(x, W, R, p, b, Q, y0, c0, from_state):
        T = x.shape[0]
        GN, N = R.shape
        dt = x.dtype
        one = np.ones(1, dt)[0]                      # typed 1 keeps float32 arithmetic in float32
        P = np.dot(x, W.T)                           # (T, G·N) pre-activations: W xᵗ for all t, one GEMM
        A = np.empty_like(P)                         # activations
        # The unit loop writes each gate into its own scratch vector and copies them into A after:
        # LLVM will not vectorise a loop that stores into two slices of one array (it cannot prove
        # them disjoint), and the loop is all σ/tanh — the cost that dominates at small N.
        z_, i_, f_, o_ = np.empty(N, dt), np.empty(N, dt), np.empty(N, dt), np.empty(N, dt)
        Y = np.zeros((T + 1, N), dt)
        C = np.zeros((T + 1, N), dt)
        if from_state:
            Y[0] = y0
            C[0] = c0
        H = np.empty((T, N), dt)
        RT = np.ascontiguousarray(R.T)               # (N, G·N): rows are what one y_k feeds
        if fgr:
            QT = _gate_matrix(Q, True)
        pre = np.empty(GN, dt)                       # this step's pre-activations (scratch, as above)
        y_prev = Y[0].copy()
        for t in range(T):
            for j in range(GN):
                pre[j] = P[t, j] + b[j]
            if t > 0 or from_state:
                add_tmatvec(RT, y_prev, 0, pre, 0)              # + R yᵗ⁻¹
            if t > 0 and fgr:
                add_tmatvec(QT, A[t - 1], N, pre, N)            # + Σ_a R_ab aᵗ⁻¹ (i, f, o at t−1)
            # one contiguous slice per gate: plain indices let LLVM vectorise the loop over units
            c_prev, c, h, y = C[t], C[t + 1], H[t], Y[t + 1]
            z_bar, i_bar_, f_bar_, o_bar_ = (pre[:N], pre[CI * N:CI * N + N], pre[CF * N:CF * N + N],
                                            pre[CO * N:CO * N + N])
            p_i = p[PI] if has_pi else c_prev        # c_prev: a placeholder never read
            p_f = p[PF] if has_pf else c_prev
            p_o = p[PO] if has_po else c_prev
            for j in range(N):
                z = tanh(z_bar[j], one) if g_tanh else z_bar[j]
                z_[j] = z
                if has_i:
                    i_bar = i_bar_[j]
                    if has_pi:
                        i_bar += p_i[j] * c_prev[j]
                    i = sigmoid(i_bar, one)
                    i_[j] = i
                else:
                    i = one
                if has_f:
                    f_bar = f_bar_[j]
                    if has_pf:
                        f_bar += p_f[j] * c_prev[j]
                    f = sigmoid(f_bar, one)
                    f_[j] = f
                elif coupled:
                    f = one - i
                else:
                    f = one
                cj = z * i + c_prev[j] * f
                c[j] = cj
                hj = tanh(cj, one) if h_tanh else cj
                h[j] = hj
                if has_o:
                    o_bar = o_bar_[j]
                    if has_po:
                        o_bar += p_o[j] * cj
                    o = sigmoid(o_bar, one)
                    o_[j] = o
                    y[j] = hj * o
                else:
                    y[j] = hj
            y_prev[:] = y
            a = A[t]
            a[:N] = z_
            if has_i:
                a[CI * N:CI * N + N] = i_
            if has_f:
                a[CF * N:CF * N + N] = f_
            if has_o:
                a[CO * N:CO * N + N] = o_
        return A, C, H, Y

    def backward(x, W, R, p, b, Q, A, C, H, Y, dy, gW, gR, gp, gb, gQ, need_dx, need_dstate):
        T = x.shape[0]
        GN, N = R.shape
        dt = x.dtype
        one = np.ones(1, dt)[0]
        D = np.empty((T, GN), dt)                    # δ of every gate pre-activation, per step
        dy_rec = np.zeros(N, dt)                     # Σ_b R_bᵀ δb̄ᵗ⁺¹
        carry = np.zeros(N, dt)                      # δcᵗ⁺¹ ⊙ fᵗ⁺¹ + p_i ⊙ δīᵗ⁺¹ + p_f ⊙ δf̄ᵗ⁺¹
        # per-gate scratch for the unit loop, copied into D after it (see forward: separate arrays
        # let LLVM vectorise)
        dz_, di_, df_, do_ = np.empty(N, dt), np.empty(N, dt), np.empty(N, dt), np.empty(N, dt)
        if fgr:
            Qm = _gate_matrix(Q, False)
            dgate_rec = np.zeros(3 * N, dt)          # Σ_b R_abᵀ δb̄ᵗ⁺¹ for a = i, f, o
        for t in range(T - 1, -1, -1):
            a, c_prev, h, dyt = A[t], C[t], H[t], dy[t]
            z_, i_, f_, o_ = a[:N], a[CI * N:CI * N + N], a[CF * N:CF * N + N], a[CO * N:CO * N + N]
            p_i = p[PI] if has_pi else c_prev        # c_prev: a placeholder never read
            p_f = p[PF] if has_pf else c_prev
            p_o = p[PO] if has_po else c_prev
            if fgr:
                ri, rf, ro = dgate_rec[:N], dgate_rec[N:2 * N], dgate_rec[2 * N:]
            for j in range(N):
                dyj = dyt[j] + dy_rec[j]
                hj = h[j]
                dh_dc = one - hj * hj if h_tanh else one
                if has_o:
                    o = o_[j]
                    do = dyj * hj
                    if fgr:
                        do += ro[j]
                    do_bar = do * o * (one - o)
                    do_[j] = do_bar
                    dc = dyj * o * dh_dc + carry[j]
                    if has_po:
                        dc += p_o[j] * do_bar
                else:
                    dc = dyj * dh_dc + carry[j]
                z = z_[j]
                i = i_[j] if has_i else one
                di = dc * z
                df = dc * c_prev[j]
                if fgr:
                    di += ri[j]
                    df += rf[j]
                if coupled:
                    di -= df                         # f = 1 − i
                if has_f:
                    f = f_[j]
                    df_bar = df * f * (one - f)
                    df_[j] = df_bar
                elif coupled:
                    f = one - i
                else:
                    f = one
                if has_i:
                    di_bar = di * i * (one - i)
                    di_[j] = di_bar
                dz_[j] = dc * i * (one - z * z) if g_tanh else dc * i
                # what step t−1 receives through the cell: δcᵗ fᵗ and the peepholes on cᵗ⁻¹
                cj = dc * f
                if has_pi:
                    cj += p_i[j] * di_bar
                if has_pf:
                    cj += p_f[j] * df_bar
                carry[j] = cj
            d = D[t]
            d[:N] = dz_
            if has_i:
                d[CI * N:CI * N + N] = di_
            if has_f:
                d[CF * N:CF * N + N] = df_
            if has_o:
                d[CO * N:CO * N + N] = do_
            if t > 0 or need_dstate:                         # at t = 0: ∂L/∂y⁻¹
                dy_rec[:] = 0
                add_tmatvec(R, d, 0, dy_rec, 0)                  # Rᵀ δᵗ
            if t > 0 and fgr:
                dgate_rec[:] = 0
                add_tmatvec(Qm, d, N, dgate_rec, 0)              # Σ_b R_abᵀ δb̄ᵗ

        # weight gradients and δx as GEMMs over the whole sequence
        np.dot(D.T, x, gW)                                        # Σ_t δᵗ xᵗᵀ
        np.dot(D.T, Y[:T], gR)                                    # Σ_t δᵗ yᵗ⁻¹ᵀ (y⁻¹: initial state)
        gb[:] = 0
        for t in range(T):
            for k in range(GN):
                gb[k] += D[t, k]
        if peep:
            gp[:] = 0
            for t in range(T):
                for j in range(N):
                    if has_pi:
                        gp[PI, j] += C[t, j] * D[t, CI * N + j]       # cᵗ⁻¹ ⊙ δīᵗ
                    if has_pf:
                        gp[PF, j] += C[t, j] * D[t, CF * N + j]
                    if has_po:
                        gp[PO, j] += C[t + 1, j] * D[t, CO * N + j]   # cᵗ ⊙ δōᵗ
        if fgr and T == 1:
            gQ[:] = 0
        elif fgr:
            # δR_ab = Σ_{t≥1} δb̄ᵗ aᵗ⁻¹ᵀ: one (3N × 3N) GEMM over the i, f, o columns
            dQm = np.dot(np.ascontiguousarray(D[1:, N:].T), np.ascontiguousarray(A[:T - 1, N:]))
            for bb in range(3):
                for aa in range(3):
                    for j in range(N):
                        for k in range(N):
                            gQ[bb, aa, j, k] = dQm[bb * N + j, aa * N + k]
        # ∂L/∂y⁻¹, ∂L/∂c⁻¹ (empty unless asked for): what step 0 sent back
        dy0 = dy_rec.copy() if need_dstate else np.empty(0, dt)
        dc0 = carry.copy() if need_dstate else np.empty(0, dt)
        if not need_dx:                                           # a first layer: skip one GEMM
            return np.empty((0, W.shape[1]), dt), dy0, dc0
        return np.dot(D, W), dy0, dc0                             # δxᵗ = Wᵀ δᵗ

    return jit_named(forward, tag), jit_named(backward, tag)


def _build_for(arch):
    flags = dict(has_i=arch.input_gate, has_f=arch.has_forget_params,
                 has_o=arch.output_gate, coupled=arch.coupled, g_tanh=arch.input_activation,
                 h_tanh=arch.output_activation, peep=bool(arch.peephole_gates),
                 fgr=arch.full_gate_recurrence)
    return specialised("lstm", _build, flags)          # shared by every row with these flags


def forward(arch, blocks, x, h0=None, c0=None):
    """y (T, N) and the cache for :func:`backward`, from the initial state y⁻¹ = ``h0``, c⁻¹ = ``c0``
    ((N,) each; None: zeros); see :mod:`lstm_scratch.kernels`."""
    fwd, _ = compiled(arch, _build_for)
    from_state = h0 is not None or c0 is not None
    N, dt = blocks["R"].shape[1], x.dtype
    y0 = np.zeros(N, dt) if h0 is None else h0
    c0 = np.zeros(N, dt) if c0 is None else c0
    A, C, H, Y = fwd(x, blocks["W"], blocks["R"], blocks["p"], blocks["b"], blocks["Q"], y0, c0, from_state)
    return Y[1:], LSTMCache(x, A, C, H, Y)


def final_state(cache):
    """(yᵀ⁻¹, cᵀ⁻¹) of the sequence of ``cache``: the initial state of the window that follows."""
    return cache.Y[-1], cache.C[-1]


def backward(arch, blocks, cache, dy, grads, need_dx=True, need_dstate=False):
    """Overwrite every gradient in ``grads`` and return δx (T, M), or None without ``need_dx``; with
    ``need_dstate``, (δx, ∂L/∂y⁻¹, ∂L/∂c⁻¹)."""
    _, bwd = compiled(arch, _build_for)
    x, A, C, H, Y = cache
    dx, dy0, dc0 = bwd(x, blocks["W"], blocks["R"], blocks["p"], blocks["b"], blocks["Q"], A, C, H, Y,
                       np.ascontiguousarray(dy), grads["W"], grads["R"], grads["p"], grads["b"], grads["Q"],
                       need_dx, need_dstate)
    dx = dx if need_dx else None
    return (dx, dy0, dc0) if need_dstate else dx
