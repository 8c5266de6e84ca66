"""The Numba kernels against the readable NumPy reference, for every architecture.

float64: y, δx and every gradient tensor equal the reference to 1e-10 (norm-wise relative), with
non-zero biases and peepholes and T ≥ 5 so the recurrence is exercised. float32 follows float64 to
1e-4. Saturated inputs (x = ±300, large weights) give finite outputs and gradients.
"""
import numpy as np
import pytest

from lstm_scratch import kernels, reference
from lstm_scratch.gradcheck import random_layer, random_problem
from lstm_scratch.variants import ARCHITECTURES, get

M, N = 5, 4


def _problem(arch, T, dtype=np.float64, scale=0.5, seed=0):
    """Random parameters (biases and peepholes included), inputs and upstream gradient, in that order
    from one stream."""
    rng = np.random.default_rng(seed)
    layer = random_layer(arch, M, N, seed=rng, scale=scale, dtype=dtype)
    x, dy = random_problem(layer, T, seed=rng)
    return layer.layout, layer.flat, x, dy


def _run_kernels(arch, layout, flat, x, dy):
    """y, δx and the gradient vector from the Numba kernels."""
    grad = np.full_like(flat, np.nan)            # NaN: backward must overwrite every entry
    y, cache = kernels.forward(arch, layout.blocks(flat), x)
    dx = kernels.backward(arch, layout.blocks(flat), cache, dy, layout.blocks(grad))
    return y, dx, grad


def _run_reference(arch, layout, flat, x, dy):
    grad = np.full_like(flat, np.nan)
    y, cache = reference.forward(arch, layout.views(flat), x)
    dx = reference.backward(arch, layout.views(flat), cache, dy, layout.views(grad))
    return y, dx, grad


def _relative(a, b):
    return np.linalg.norm(np.asarray(a, np.float64) - b) / max(np.linalg.norm(b), 1e-300)


def _mismatches(layout, got, want, tol):
    """Names of the tensors (y, dx, each parameter gradient) that differ by more than ``tol``."""
    (y, dx, grad), (y_ref, dx_ref, grad_ref) = got, want
    pairs = {"y": (y, y_ref), "dx": (dx, dx_ref)}
    got_views, want_views = layout.views(grad), layout.views(grad_ref)
    pairs.update({f"d{name}": (got_views[name], want_views[name]) for name in layout.shapes})
    return {name: _relative(a, b) for name, (a, b) in pairs.items() if not _relative(a, b) <= tol}


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_numba_matches_reference(arch):
    layout, flat, x, dy = _problem(arch, T=7)
    want = _run_reference(arch, layout, flat, x, dy)
    got = _run_kernels(arch, layout, flat, x, dy)
    assert _mismatches(layout, got, want, 1e-10) == {}


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_single_step_matches_reference(arch):
    """T = 1: no recurrence at all, the edge of every loop and of the δR / δR_ab sums."""
    layout, flat, x, dy = _problem(arch, T=1, seed=1)
    assert _mismatches(layout, _run_kernels(arch, layout, flat, x, dy),
                       _run_reference(arch, layout, flat, x, dy), 1e-10) == {}


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_float32_follows_float64(arch):
    layout, flat, x, dy = _problem(arch, T=9, seed=2)
    want = _run_kernels(arch, layout, flat, x, dy)
    got = _run_kernels(arch, layout, flat.astype(np.float32), x.astype(np.float32),
                       dy.astype(np.float32))
    assert all(a.dtype == np.float32 for a in got)
    assert _mismatches(layout, got, want, 1e-4) == {}


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_saturation_stays_finite(arch, dtype):
    """x = ±300 and weights of scale 30 drive every σ and tanh into saturation."""
    layout, flat, x, dy = _problem(arch, T=6, dtype=dtype, scale=30.0, seed=3)
    x = np.where(x > 0, 300.0, -300.0).astype(dtype)
    y, dx, grad = _run_kernels(arch, layout, flat, x, dy)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx)) and np.all(np.isfinite(grad))
    if get(arch).family == "lstm" and get(arch).output_gate and get(arch).output_activation:
        assert np.all(np.abs(y) <= 1.0)          # y = tanh(c) ⊙ o stays in [−1, 1] when saturated


def test_an_architecture_reusing_a_name_gets_its_own_kernels():
    """Compiled kernels are keyed by the flags, not the name: a custom Architecture named "V" but without
    peepholes must run the no-peephole kernel, not vanilla's."""
    from lstm_scratch import Architecture, Layer
    vanilla = Layer("V", 3, 4, seed=1)
    custom = Architecture("V", "vanilla without peepholes, under the same name", peepholes=False)
    x = np.random.default_rng(0).normal(size=(6, 3))
    vanilla.forward(x)
    fast = Layer(custom, 3, 4, seed=1)
    slow = Layer(custom, 3, 4, seed=1, backend="reference")
    assert np.allclose(fast.forward(x), slow.forward(x), rtol=1e-12, atol=1e-14)
    from lstm_scratch.kernels import lstm
    assert lstm.compiled(custom, lstm._build_for) is lstm.compiled(get("NP"), lstm._build_for)


EQUAL_FLAGS = ("NP", "LSTM", "LSTM-B")        # JZS's LSTM is a no-peephole LSTM; LSTM-B differs in its init only


def test_rows_with_equal_flags_share_one_kernel_object_and_others_do_not():
    from lstm_scratch.kernels import gated, lstm
    pairs = [lstm.compiled(get(arch), lstm._build_for) for arch in EQUAL_FLAGS]
    assert all(pair is pairs[0] for pair in pairs)
    others = [lstm.compiled(get(arch), lstm._build_for) for arch in ("V", "LSTM-F", "NFG", "CIFG")]
    others += [gated.compiled(get(arch), gated._build_for) for arch in ("GRU", "MUT1", "TANH")]
    assert len({id(pair) for pair in others + [pairs[0]]}) == 8


def test_warm_up_over_rows_with_equal_flags_builds_and_compiles_one_kernel(monkeypatch):
    """From an empty registry: NP, LSTM and LSTM-B make one jitted pair, compiled for one signature."""
    from lstm_scratch import parallel
    from lstm_scratch.kernels import lstm, primitives
    monkeypatch.setattr(primitives, "_KERNELS", {})
    monkeypatch.setattr(primitives, "_COMPILED", {})
    built, original = [], lstm._build

    def counting(tag, **flags):
        built.append(tag)
        return original(tag, **flags)
    monkeypatch.setattr(lstm, "_build", counting)
    assert list(parallel.warm_up(list(EQUAL_FLAGS), "float64", loss="softmax")) == list(EQUAL_FLAGS)
    assert len(built) == 1 and len(primitives._KERNELS) == 1
    forward, backward = primitives._KERNELS.popitem()[1]
    assert len(forward.signatures) == 1 and len(backward.signatures) == 1       # float64, compiled once
