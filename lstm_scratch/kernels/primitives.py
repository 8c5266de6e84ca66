"""What both kernel families share: a vectorisable exp and the σ / tanh built on it, the blocked
matrix–vector product of the time loop, and the registry that builds, names and caches one kernel per
distinct combination of compile-time flags.

σ(x) = 1 / (1 + e^{−x}) and tanh(x) = 1 − 2 / (e^{2x} + 1) saturate to exact 0, ±1 for x = ±300 — never
NaN for finite x. ``one`` (a typed 1) carries the dtype so float32 stays float32.

Numba's disk cache checks only the file of the function it compiles, but a kernel also inlines the helpers
of this module. So every specialisation's name carries :data:`SOURCE_HASH`, a hash of all the kernel
sources: an edit of any of them gives new names, hence new cache entries, and stale machine code is never
loaded (the old entries stay unused in ``__pycache__`` and may be deleted at any time).
"""
from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload


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


def exp(x):
    """eˣ (the kernels get the vectorisable version below; Python callers get NumPy's)."""
    return np.exp(x)


@overload(exp, jit_options={"cache": True, "error_model": "numpy"})
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
def sigmoid(x, one):
    """σ(x) = 1 / (1 + e^{−x}); ``one`` carries the dtype so float32 stays float32."""
    return one / (one + exp(-x))


@njit(inline="always", cache=True, error_model="numpy")
def tanh(x, one):
    """tanh(x) = 1 − 2 / (e^{2x} + 1): exact 0, ±1 in saturation, never NaN for finite x."""
    return one - (one + one) / (exp(x + x) + one)


@njit(cache=True, nogil=True, error_model="numpy")
def add_tmatvec(mat, v, v0, out, o0):
    """out[o0 + c] += Σ_r mat[r, c] · v[v0 + r]  for every row r and column c of ``mat``.

    Rows are taken four at a time so each pass over ``out`` does four multiply-adds per load/store
    (eight gained nothing measurable at N = 20–200). The column loop writes through the view
    ``out[o0:]``, indexed from 0: with the offset inside the index (``out[o0 + c]``) LLVM left the
    loop scalar whenever ``o0`` was not a compile-time 0 — FGR's gate block ran 2.4× slower for it.
    """
    n_rows, n_cols = mat.shape
    o = out[o0:o0 + n_cols]
    r = 0
    while r + 4 <= n_rows:
        a0, a1, a2, a3 = v[v0 + r], v[v0 + r + 1], v[v0 + r + 2], v[v0 + r + 3]
        m0, m1, m2, m3 = mat[r], mat[r + 1], mat[r + 2], mat[r + 3]
        for c in range(n_cols):
            o[c] += (m0[c] * a0 + m1[c] * a1) + (m2[c] * a2 + m3[c] * a3)
        r += 4
    while r < n_rows:
        a0 = v[v0 + r]
        m0 = mat[r]
        for c in range(n_cols):
            o[c] += m0[c] * a0
        r += 1


def jit_named(function, tag):
    """Compile ``function`` under a name of its own (``forward_lstm_11101101_…``): the cache files and
    the machine-code symbols of the specialisations must not collide — with one shared name, loading a
    second specialisation from the cache in the same process picks up the first one's environment."""
    function.__name__ = function.__qualname__ = f"{function.__name__}_{tag}"
    return njit(cache=True, nogil=True, error_model="numpy")(function)


_KERNELS: dict = {}     # (family, flags) -> (forward, backward): one jitted pair per distinct kernel
_COMPILED: dict = {}    # Architecture -> its pair, so a call finds it without recomputing the flags


def specialised(family: str, build, flags: dict):
    """``build(tag, **flags)``: kernel ``family``'s jitted (forward, backward) for one combination of
    compile-time flags, made once per process.

    Keyed by the flags — the tuple that defines the machine code — not by an architecture's name: rows
    with equal flags (NP, JZS's LSTM and LSTM-B) share one pair, which is compiled, cached on disk and
    warmed up once."""
    key = (family, tuple(flags.items()))
    found = _KERNELS.get(key)
    if found is None:
        found = _KERNELS[key] = build(variant_tag(family, flags), **flags)
    return found


def compiled(arch, build):
    """The (forward, backward) pair for ``arch``: ``build(arch)`` (the :func:`specialised` pair of its
    flags) on the first call, then a lookup by the whole frozen
    :class:`~lstm_scratch.variants.Architecture` — not its name, so one that reuses a name with other
    flags gets the kernels of its own flags."""
    found = _COMPILED.get(arch)
    if found is None:
        found = _COMPILED[arch] = build(arch)
    return found


def _source_hash() -> str:
    """sha256 (12 hex digits) of every ``.py`` file of this package: the code the kernels are built from."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


SOURCE_HASH = _source_hash()


def variant_tag(family: str, flags: dict) -> str:
    """A name for one specialisation, unique per kernel family, flag combination and kernel source: the
    family, the flag values in order and :data:`SOURCE_HASH`, e.g. ``lstm_11101101_3f9c0a1b2c4d``.
    Numba keys its cache on the name, so an edit of any kernel source (even of a helper the kernel
    inlines, which Numba does not watch) can never load stale machine code."""
    return family + "_" + "".join(str(int(value)) for value in flags.values()) + "_" + SOURCE_HASH
