"""Scalar activations for the Numba kernels, written through ``exp``.

Numba's ``np.tanh`` costs ~8 ns per element and does not vectorise; ``exp`` does (~1.3 ns), and at small
N these element-wise costs dominate a time step (SPEC §10). Both forms saturate cleanly: for x = ±300,
``exp`` gives inf or 0 and the quotient gives exactly 0, ±1 — never NaN.

    σ(x) = 1 / (1 + e^{−x})            σ'(x) = σ(x) (1 − σ(x))
    tanh(x) = 1 − 2 / (e^{2x} + 1)       tanh'(x) = 1 − tanh(x)²

The tanh form loses relative (not absolute) precision near 0: |error| ≤ ~1e-16 in float64.
"""
import numpy as np
from numba import njit


@njit(inline="always", cache=True)
def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@njit(inline="always", cache=True)
def tanh(x):
    return 1.0 - 2.0 / (np.exp(2.0 * x) + 1.0)
