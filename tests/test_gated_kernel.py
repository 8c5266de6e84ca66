"""The gated-family Numba kernel (GRU, MUT1, MUT2, MUT3) on its own: central finite differences for every
tensor, the NumPy reference, float32 against float64, saturation, and a PyTorch-autograd twin."""
import sys
from pathlib import Path

import numpy as np
import pytest

from lstm_scratch import reference
from lstm_scratch.gradcheck import numerical_gradient, random_layer, random_problem, relative_error
from lstm_scratch.kernels import gated
from lstm_scratch.variants import Layout, get

CELLS = ("GRU", "MUT1", "MUT2", "MUT3")
M, N, T = 3, 4, 6


def _problem(cell, dtype=np.float64, seed=0, scale=0.5, steps=T):
    """Layout, flat parameters (every one non-zero, biases included), x and Δ, from one stream."""
    rng = np.random.default_rng(seed)
    layer = random_layer(cell, M, N, seed=rng, scale=scale, dtype=dtype)
    x, dy = random_problem(layer, steps, seed=rng)
    return layer.layout, layer.flat, x, dy


def _run(cell, layout, flat, x, dy):
    """y, the gradient vector and δx from the kernel."""
    arch = get(cell)
    grad = np.full_like(flat, np.nan)            # backward must overwrite every entry
    y, cache = gated.forward(arch, layout.blocks(flat), x)
    dx = gated.backward(arch, layout.blocks(flat), cache, dy, layout.blocks(grad))
    return y.copy(), grad, dx


def _fd_cases():
    for cell in CELLS:
        for name in list(Layout(cell, M, N).shapes) + ["dx"]:
            yield pytest.param(cell, name, id=f"{cell}-{name}")


@pytest.mark.parametrize("cell, tensor", list(_fd_cases()))
def test_gated_fd(cell, tensor):
    layout, flat, x, dy = _problem(cell)
    _, grad, dx = _run(cell, layout, flat, x, dy)

    def loss():
        return float(np.sum(gated.forward(get(cell), layout.blocks(flat), x)[0] * dy))

    if tensor == "dx":
        analytic, numeric = dx, numerical_gradient(loss, x)
    else:
        analytic = layout.views(grad)[tensor]
        numeric = numerical_gradient(loss, layout.views(flat)[tensor])
    error = relative_error(analytic, numeric)
    assert error <= 1e-6, f"{cell} {tensor}: relative error {error:.2e}"


@pytest.mark.parametrize("steps", [1, T], ids=["T1", f"T{T}"])
@pytest.mark.parametrize("cell", CELLS)
def test_gated_matches_reference(cell, steps):
    layout, flat, x, dy = _problem(cell, steps=steps)
    y, grad, dx = _run(cell, layout, flat, x, dy)
    y_ref, cache = reference.forward(cell, layout.views(flat), x)
    grad_ref = np.zeros_like(flat)
    dx_ref = reference.backward(cell, layout.views(flat), cache, dy, layout.views(grad_ref))
    for name, ours, theirs in (("y", y, y_ref), ("grad", grad, grad_ref), ("dx", dx, dx_ref)):
        assert relative_error(ours, theirs) <= 1e-12, f"{cell} {name}"


@pytest.mark.parametrize("cell", CELLS)
def test_gated_float32_matches_float64(cell):
    layout, flat, x, dy = _problem(cell, steps=20)
    results64 = _run(cell, layout, flat, x, dy)
    results32 = _run(cell, layout, flat.astype(np.float32), x.astype(np.float32), dy.astype(np.float32))
    for name, a, b in zip(("y", "grad", "dx"), results64, results32):
        assert b.dtype == np.float32, name
        assert relative_error(a, b.astype(np.float64)) <= 1e-4, f"{cell} {name}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("cell", CELLS)
def test_gated_saturation_stays_finite(cell, dtype):
    """Inputs of ±300 and weights of size ~50 drive every σ and tanh to exact 0, ±1: nothing overflows."""
    layout, flat, _, dy = _problem(cell, dtype=dtype, scale=50.0, steps=8)
    x = np.where(np.arange(8 * M).reshape(8, M) % 2 == 0, 300.0, -300.0).astype(dtype)
    y, grad, dx = _run(cell, layout, flat, x, dy)
    assert np.all(np.abs(y) <= 1.0)
    for name, array in (("y", y), ("grad", grad), ("dx", dx)):
        assert np.isfinite(array).all(), f"{cell} {name} has non-finite values"


@pytest.mark.parametrize("cell", CELLS)
def test_gated_matches_torch_autograd(cell):
    pytest.importorskip("torch")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from torch_gated_cells import TorchGatedTwin

    layout, flat, x, dy = _problem(cell, seed=3)
    y, grad, dx = _run(cell, layout, flat, x, dy)
    y_torch, grads_torch, dx_torch = TorchGatedTwin(cell, flat, M, N).forward_backward(x, dy)
    assert relative_error(y, y_torch) <= 1e-12
    assert relative_error(dx, dx_torch) <= 1e-12
    for name, ours in layout.views(grad).items():
        assert relative_error(ours, grads_torch[name]) <= 1e-12, f"{cell} {name}"
