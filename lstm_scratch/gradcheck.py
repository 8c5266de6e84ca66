"""Finite-difference gradient checks, shared by the tests, the tutorials and ``lstm-odyssey check``.

For a layer with outputs y = F(x; θ), take the scalar L = Σ_t Δᵗ · yᵗ for a fixed random Δ. Then
∂L/∂y = Δ, so one ``backward(Δ)`` gives the analytic ∂L/∂θ and ∂L/∂x, and central differences

    ∂L/∂θ_k ≈ (L(θ + ε e_k) − L(θ − ε e_k)) / 2ε          (error O(ε²) + rounding O(u/ε))

give the numerical ones. We compare them norm-wise, ``‖a − n‖ / max(‖a‖, ‖n‖, tiny)``, which is
meaningful even when single entries are near zero. With ε = 1e-6 in float64 errors are ~1e-9.

The problems are small random ones with **every** parameter non-zero, biases and peepholes too:
a zero bias hides a bug in its gradient (numpy-ml#42). :func:`random_layer` and
:func:`random_problem` are the one source of them for the tests, the tutorials and the self-check.
"""
from __future__ import annotations

import numpy as np

from .layer import BiLayer, Layer


def random_layer(arch, n_in: int = 3, n_hidden: int = 4, *, seed: int | np.random.Generator = 0,
                 scale: float = 0.5, dtype=np.float64, backend: str = "numba",
                 bidirectional: bool = False) -> Layer | BiLayer:
    """A Layer (or BiLayer) whose every parameter is drawn from N(0, scale²).

    ``seed``: an int, or a Generator to draw from (a caller that draws its inputs from the same
    stream afterwards passes the same Generator to :func:`random_problem`).
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    layer = (BiLayer if bidirectional else Layer)(arch, n_in, n_hidden, dtype=dtype, backend=backend)
    layer.flat[:] = rng.normal(0.0, scale, layer.n_params)     # cast to the layer's dtype on assignment
    return layer


def random_problem(layer, steps: int = 6, *, seed: int | np.random.Generator = 0):
    """An input sequence x (steps, M) and an upstream gradient Δ = ∂L/∂y (steps, width of y), both
    from N(0, 1) in the layer's dtype, x drawn first; y is 2N wide for a BiLayer."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    width = layer.n_hidden * (2 if isinstance(layer, BiLayer) else 1)
    x = rng.normal(0.0, 1.0, (steps, layer.n_in)).astype(layer.dtype)
    dy = rng.normal(0.0, 1.0, (steps, width)).astype(layer.dtype)
    return x, dy


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """‖a − b‖ / max(‖a‖, ‖b‖), and 0 when both are exactly zero."""
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    return 0.0 if scale == 0.0 else float(np.linalg.norm(a - b) / scale)


def numerical_gradient(loss, array: np.ndarray, eps: float = 1e-6, indices=None) -> np.ndarray:
    """Central differences of ``loss()`` with respect to ``array`` (perturbed in place, restored).

    ``indices``: flat indices to check (default all); the other entries of the result are 0.
    """
    grad = np.zeros(array.size, dtype=np.float64)
    flat = array.reshape(-1)                 # a view: perturbing it perturbs ``array``
    if not np.shares_memory(flat, array):
        raise ValueError("numerical_gradient needs an array it can perturb in place (a contiguous view)")
    for k in range(array.size) if indices is None else indices:
        original = flat[k]
        flat[k] = original + eps
        plus = loss()
        flat[k] = original - eps
        minus = loss()
        flat[k] = original
        grad[k] = (plus - minus) / (2.0 * eps)
    return grad.reshape(array.shape)


def check_layer(layer, x: np.ndarray, dy: np.ndarray, names=None, eps: float = 1e-6) -> dict:
    """Relative error of every parameter gradient (and of ``"dx"``) of a Layer or BiLayer.

    ``names``: the parameter names to check (default all, plus "dx"). Returns {name: error}.
    """
    names = list(layer.params) + ["dx"] if names is None else list(names)

    def loss() -> float:
        return float(np.sum(layer.forward(x) * dy))

    layer.forward(x)
    dx = layer.backward(dy)
    analytic = {name: layer.grads[name].copy() for name in names if name != "dx"}
    errors = {}
    for name in names:
        if name == "dx":
            x_work = x.copy()
            numeric = numerical_gradient(lambda: float(np.sum(layer.forward(x_work) * dy)), x_work, eps)
            errors["dx"] = relative_error(dx, numeric)
        else:
            errors[name] = relative_error(analytic[name], numerical_gradient(loss, layer.params[name], eps))
    return errors
