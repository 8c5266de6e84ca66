"""Numba forward and full-BPTT kernels for vanilla LSTM and the eight Odyssey variants.

One kernel for all nine: :func:`_build` closes over the architecture's flags (which gates exist,
coupled forget gate, g and h, peepholes, full gate recurrence) and returns a jitted forward and
backward. Numba freezes closure variables as compile-time constants, so every ``if HAS_O:`` is decided
while compiling and the dead branch vanishes; each variant gets its own machine code. The cache index
of a closure includes its captured values, so ``cache=True`` works: a fresh process loads all nine
specialisations from ``__pycache__`` instead of compiling them.

Fast path (SPEC §10). Only what must be sequential is in the time loop:

    forward   Aᵗ = W xᵗ + b for all t (one GEMM)   then per step  Aᵗ += R yᵗ⁻¹ [+ Q (i,f,o)ᵗ⁻¹], gates, cell
    backward  per step  element-wise δ's, then  δyᵗ⁻¹_rec = Rᵀ δᵗ [and δ(i,f,o)ᵗ⁻¹_rec = Qᵀ δ(ī,f̄,ō)ᵗ]
              after the loop, GEMMs:  δW = Dᵀ X   δR = Dᵀ Y₋₁   δx = D W   δb = Σ_t Dᵗ   δQ, δp

The per-step matrix–vector products are written as blocked AXPYs over contiguous rows
(:func:`_add_tmatvec`): at batch size 1 and N ≤ 200 that beats a BLAS call, whose fixed cost is
comparable to the whole product at small N, and LLVM vectorises it without reassociating sums.

Cache layout (contiguous, time-major): ``A`` (T, G·N) holds the gate activations z, i, f, o of the
gates present (the pre-activations are overwritten; every derivative is written through the
activation: σ' = s(1 − s), tanh' = 1 − t²); ``Y`` and ``C`` are (T + 1, N) with row 0 the initial zero
state, so row t is yᵗ⁻¹ / cᵗ⁻¹ and row t + 1 is yᵗ / cᵗ; ``H`` (T, N) is h(cᵗ).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload


class LSTMCache(NamedTuple):
    """What :func:`forward` keeps for :func:`backward` (the returned y is ``Y[1:]``)."""
    x: np.ndarray   # (T, M) the input
    A: np.ndarray   # (T, G·N) gate activations z, i, f, o (those present)
    C: np.ndarray   # (T + 1, N) cells, row 0 = c⁻¹ = 0
    H: np.ndarray   # (T, N) h(cᵗ)
    Y: np.ndarray   # (T + 1, N) outputs, row 0 = y⁻¹ = 0


# ---------------------------------------------------------------------------------------------
# A vectorisable exp. Without Intel SVML, LLVM calls libm's scalar exp element by element (~5–14 ns
# here), which made σ and tanh the largest cost of a step at small N. This one is plain arithmetic, so
# the loop over hidden units vectorises (~1–2 ns), and stays in float32 for float32 data:
#     eˣ = 2ᵏ · e^r,  k = round(x / ln 2),  r = x − k ln 2 (Cody–Waite, |r| ≤ ln 2 / 2),
#     e^r by its Taylor polynomial (degree 13 in float64, 7 in float32: ≤ 1 ulp on the tested range),
#     2ᵏ assembled from exponent bits. Saturates like libm: 0 below the normal range, ∞ above, NaN → NaN.
# ---------------------------------------------------------------------------------------------
@intrinsic
def _pow2(typingctx, k, like):
    """2ᵏ (k a whole number held in a float, inside the normal exponent range) as ``like``'s type."""
    if like == types.float64:
        int_type, bias, shift, float_type = ir.IntType(64), 1023, 52, ir.DoubleType()
    elif like == types.float32:
        int_type, bias, shift, float_type = ir.IntType(32), 127, 23, ir.FloatType()
    else:
        return None

    def codegen(context, builder, signature, args):
        exponent = builder.add(builder.fptosi(args[0], int_type), ir.Constant(int_type, bias))
        return builder.bitcast(builder.shl(exponent, ir.Constant(int_type, shift)), float_type)
    return like(like, like), codegen


def _exp(x):
    """eˣ (the kernels get the vectorisable version below; Python callers get NumPy's)."""
    return np.exp(x)


@overload(_exp, jit_options={"cache": True, "error_model": "numpy"})
def _exp_typed(x):
    if x == types.float64:
        F, lowest, highest, degree = np.float64, -708.0, 709.0, 13
        ln2_hi, ln2_lo = 6.93147180369123816490e-01, 1.90821492927058770002e-10
    elif x == types.float32:
        F, lowest, highest, degree = np.float32, -87.0, 88.0, 7
        ln2_hi, ln2_lo = 0.693359375, -2.12194440e-4
    else:
        return None
    c = [F(1.0 / math.factorial(n)) for n in range(14)]            # Taylor coefficients of e^r
    LOG2E, LN2_HI, LN2_LO = F(1.4426950408889634), F(ln2_hi), F(ln2_lo)
    HALF, ZERO, LOWEST, HIGHEST, INF = F(0.5), F(0.0), F(lowest), F(highest), F(np.inf)
    c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13 = c
    if degree == 7:                                                # float32: the tail is below ulp
        c8 = c9 = c10 = c11 = c12 = c13 = ZERO

    def impl(x):
        inside = x if (x > LOWEST and x < HIGHEST) else ZERO   # NaN and the tails: k = 0
        k = np.floor(inside * LOG2E + HALF)
        r = (x - k * LN2_HI) - k * LN2_LO
        if degree == 13:
            e_r = c8 + r * (c9 + r * (c10 + r * (c11 + r * (c12 + r * c13))))
        else:
            e_r = c8
        e_r = c0 + r * (c1 + r * (c2 + r * (c3 + r * (c4 + r * (c5 + r * (c6 + r * (c7 + r * e_r)))))))
        e = e_r * _pow2(k, x)
        if x >= HIGHEST:
            e = INF
        if x <= LOWEST:
            e = ZERO
        return e
    return impl


@njit(inline="always", cache=True, error_model="numpy")
def _sigmoid(x, one):
    """σ(x) = 1 / (1 + e^{−x}); ``one`` carries the dtype so float32 stays float32."""
    return one / (one + _exp(-x))


@njit(inline="always", cache=True, error_model="numpy")
def _tanh(x, one):
    """tanh(x) = 1 − 2 / (e^{2x} + 1): exact 0, ±1 in saturation, never NaN for finite x."""
    return one - (one + one) / (_exp(x + x) + one)


@njit(cache=True, nogil=True, error_model="numpy")
def _add_tmatvec(mat, v, v0, out, o0):
    """out[o0 + c] += Σ_r mat[r, c] · v[v0 + r]  for every row r and column c of ``mat``.

    Rows are taken four at a time so each pass over ``out`` does four multiply-adds per load/store.
    """
    n_rows, n_cols = mat.shape
    r = 0
    while r + 4 <= n_rows:
        a0, a1, a2, a3 = v[v0 + r], v[v0 + r + 1], v[v0 + r + 2], v[v0 + r + 3]
        m0, m1, m2, m3 = mat[r], mat[r + 1], mat[r + 2], mat[r + 3]
        for c in range(n_cols):
            out[o0 + c] += (m0[c] * a0 + m1[c] * a1) + (m2[c] * a2 + m3[c] * a3)
        r += 4
    while r < n_rows:
        a0 = v[v0 + r]
        m0 = mat[r]
        for c in range(n_cols):
            out[o0 + c] += m0[c] * a0
        r += 1


@njit(cache=True, nogil=True, error_model="numpy")
def _gate_matrix(Q, transpose):
    """The nine FGR matrices Q[b, a] = R_ab as one (3N, 3N) matrix with rows (b, j) and columns (a, k),
    or its transpose (rows (a, k), columns (b, j)) — the orientation :func:`_add_tmatvec` needs."""
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

    def forward(x, W, R, p, b, Q):
        T = x.shape[0]
        GN, N = R.shape
        dt = x.dtype
        one = np.ones(1, dt)[0]                      # typed 1 keeps float32 arithmetic in float32
        A = np.dot(x, W.T)                           # (T, G·N): W xᵗ for every t in one GEMM
        Y = np.zeros((T + 1, N), dt)
        C = np.zeros((T + 1, N), dt)
        H = np.empty((T, N), dt)
        RT = np.ascontiguousarray(R.T)               # (N, G·N): rows are what one y_k feeds
        if fgr:
            QT = _gate_matrix(Q, True)
        for t in range(T):
            a = A[t]
            for j in range(GN):
                a[j] += b[j]
            if t > 0:
                _add_tmatvec(RT, Y[t], 0, a, 0)                  # + R yᵗ⁻¹
                if fgr:
                    _add_tmatvec(QT, A[t - 1], N, a, N)          # + Σ_a R_ab aᵗ⁻¹ (i, f, o at t−1)
            # one contiguous slice per gate: plain indices let LLVM vectorise the loop over units
            c_prev, c, h, y = C[t], C[t + 1], H[t], Y[t + 1]
            z_, i_, f_, o_ = a[:N], a[CI * N:CI * N + N], a[CF * N:CF * N + N], a[CO * N:CO * N + N]
            p_i = p[PI] if has_pi else c_prev        # c_prev: a placeholder never read
            p_f = p[PF] if has_pf else c_prev
            p_o = p[PO] if has_po else c_prev
            for j in range(N):
                z = _tanh(z_[j], one) if g_tanh else z_[j]
                z_[j] = z
                if has_i:
                    i_bar = i_[j]
                    if has_pi:
                        i_bar += p_i[j] * c_prev[j]
                    i = _sigmoid(i_bar, one)
                    i_[j] = i
                else:
                    i = one
                if has_f:
                    f_bar = f_[j]
                    if has_pf:
                        f_bar += p_f[j] * c_prev[j]
                    f = _sigmoid(f_bar, one)
                    f_[j] = f
                elif coupled:
                    f = one - i
                else:
                    f = one
                cj = z * i + c_prev[j] * f
                c[j] = cj
                hj = _tanh(cj, one) if h_tanh else cj
                h[j] = hj
                if has_o:
                    o_bar = o_[j]
                    if has_po:
                        o_bar += p_o[j] * cj
                    o = _sigmoid(o_bar, one)
                    o_[j] = o
                    y[j] = hj * o
                else:
                    y[j] = hj
        return A, C, H, Y

    def backward(x, W, R, p, b, Q, A, C, H, Y, dy, gW, gR, gp, gb, gQ):
        T = x.shape[0]
        GN, N = R.shape
        dt = x.dtype
        one = np.ones(1, dt)[0]
        D = np.empty((T, GN), dt)                    # δ of every gate pre-activation, per step
        dy_rec = np.zeros(N, dt)                     # Σ_b R_bᵀ δb̄ᵗ⁺¹
        carry = np.zeros(N, dt)                      # δcᵗ⁺¹ ⊙ fᵗ⁺¹ + p_i ⊙ δīᵗ⁺¹ + p_f ⊙ δf̄ᵗ⁺¹
        if fgr:
            Qm = _gate_matrix(Q, False)
            dgate_rec = np.zeros(3 * N, dt)          # Σ_b R_abᵀ δb̄ᵗ⁺¹ for a = i, f, o
        for t in range(T - 1, -1, -1):
            a, d, c_prev, h, dyt = A[t], D[t], C[t], H[t], dy[t]
            z_, i_, f_, o_ = a[:N], a[CI * N:CI * N + N], a[CF * N:CF * N + N], a[CO * N:CO * N + N]
            dz_, di_, df_, do_ = d[:N], d[CI * N:CI * N + N], d[CF * N:CF * N + N], d[CO * N:CO * N + N]
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
            if t > 0:
                dy_rec[:] = 0
                _add_tmatvec(R, d, 0, dy_rec, 0)                  # Rᵀ δᵗ
                if fgr:
                    dgate_rec[:] = 0
                    _add_tmatvec(Qm, d, N, dgate_rec, 0)          # Σ_b R_abᵀ δb̄ᵗ

        # weight gradients and δx as GEMMs over the whole sequence
        np.dot(D.T, x, gW)                                        # Σ_t δᵗ xᵗᵀ
        np.dot(D.T, Y[:T], gR)                                    # Σ_t δᵗ yᵗ⁻¹ᵀ (y⁻¹ = 0)
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
        return np.dot(D, W)                                       # δxᵗ = Wᵀ δᵗ

    return _jit(forward, tag), _jit(backward, tag)


def _jit(function, tag):
    """Compile ``function`` under a name of its own (``forward_V``, ...): the cache files and the
    machine-code symbols of the nine closures must not collide — with one shared name, loading a
    second variant from the cache in the same process picks up the first one's environment."""
    function.__name__ = function.__qualname__ = f"{function.__name__}_{tag}"
    return njit(cache=True, nogil=True, error_model="numpy")(function)


_KERNELS: dict = {}


def kernels_for(arch):
    """The (forward, backward) pair specialised for ``arch`` (built once per process)."""
    found = _KERNELS.get(arch.name)
    if found is None:
        found = _build(arch.name, has_i=arch.input_gate, has_f=arch.forget_gate and not arch.coupled,
                       has_o=arch.output_gate, coupled=arch.coupled,
                       g_tanh=arch.input_activation, h_tanh=arch.output_activation,
                       peep=bool(arch.peephole_gates), fgr=arch.full_gate_recurrence)
        _KERNELS[arch.name] = found
    return found


def forward(arch, blocks, x):
    """y (T, N) and the cache for :func:`backward`; see :mod:`lstm_scratch.kernels`."""
    fwd, _ = kernels_for(arch)
    A, C, H, Y = fwd(x, blocks["W"], blocks["R"], blocks["p"], blocks["b"], blocks["Q"])
    return Y[1:], LSTMCache(x, A, C, H, Y)


def backward(arch, blocks, cache, dy, grads):
    """Overwrite every gradient in ``grads`` and return δx (T, M)."""
    _, bwd = kernels_for(arch)
    x, A, C, H, Y = cache
    return bwd(x, blocks["W"], blocks["R"], blocks["p"], blocks["b"], blocks["Q"], A, C, H, Y,
               np.ascontiguousarray(dy), grads["W"], grads["R"], grads["p"], grads["b"], grads["Q"])
