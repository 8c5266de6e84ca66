"""The Layer / BiLayer API: parameter counts, initialisation, views, saturation and bad input."""
import numpy as np
import pytest

import lstm_scratch as ls
from lstm_scratch.gradcheck import check_layer, relative_error
from lstm_scratch.variants import ALL_ARCHITECTURES

from conftest import random_layer, random_problem

M, N = 7, 5


def expected_count(arch, M, N):
    """SPEC §2–§4: vanilla 4NM + 4N² + 4N + 3N, each variant's change applied to it."""
    vanilla = 4 * N * M + 4 * N * N + 4 * N + 3 * N
    one_gate = N * M + N * N + N + N          # a gate's W, R, peephole and bias
    return {
        "V": vanilla, "NIAF": vanilla, "NOAF": vanilla,
        "NIG": vanilla - one_gate, "NFG": vanilla - one_gate, "NOG": vanilla - one_gate,
        "CIFG": vanilla - one_gate, "NP": vanilla - 3 * N, "FGR": vanilla + 9 * N * N,
        "GRU": 3 * N * M + 3 * N * N + 3 * N, "MUT1": 3 * N * M + 2 * N * N + 3 * N,
        "MUT2": 3 * N * M + 3 * N * N + 3 * N, "MUT3": 3 * N * M + 3 * N * N + 3 * N,
        # JZS's rows: Tanh RNN N(M + N + 1); their LSTM = NP; -f/-i/-o drop one gate's W, R, b
        "TANH": N * M + N * N + N, "LSTM": vanilla - 3 * N, "LSTM-B": vanilla - 3 * N,
        "LSTM-F": 3 * (N * M + N * N + N), "LSTM-I": 3 * (N * M + N * N + N),
        "LSTM-O": 3 * (N * M + N * N + N),
    }[arch]


def test_architecture_list():
    assert ls.ARCHITECTURES == ("V", "NIG", "NFG", "NOG", "NIAF", "NOAF", "CIFG", "NP", "FGR",
                                "GRU", "MUT1", "MUT2", "MUT3")


@pytest.mark.parametrize("arch", ALL_ARCHITECTURES)
def test_parameter_count(arch):
    layer = ls.Layer(arch, M, N)
    assert layer.n_params == expected_count(arch, M, N) == ls.n_params(arch, M, N)
    assert sum(v.size for v in layer.params.values()) == layer.n_params
    assert ls.BiLayer(arch, M, N).n_params == 2 * expected_count(arch, M, N)


def test_parameter_names_follow_the_spec():
    assert list(ls.Layer("V", M, N).params) == [
        "W_z", "W_i", "W_f", "W_o", "R_z", "R_i", "R_f", "R_o", "p_i", "p_f", "p_o",
        "b_z", "b_i", "b_f", "b_o"]
    fgr = ls.Layer("FGR", M, N).params
    assert [k for k in fgr if len(k) == 4] == ["R_ii", "R_fi", "R_oi", "R_if", "R_ff", "R_of",
                                               "R_io", "R_fo", "R_oo"]
    assert set(ls.Layer("CIFG", M, N).params) == {"W_z", "W_i", "W_o", "R_z", "R_i", "R_o",
                                                  "p_i", "p_o", "b_z", "b_i", "b_o"}
    assert set(ls.Layer("GRU", M, N).params) == {"W_r", "U_r", "b_r", "W_u", "U_u", "b_u",
                                                 "W_h", "U_h", "b_h"}
    assert "U_z" not in ls.Layer("MUT1", M, N).params


def test_params_are_views_into_one_flat_vector():
    layer = ls.Layer("V", M, N)
    layer.params["R_f"][1, 2] = 42.0
    assert 42.0 in layer.flat
    layer.flat[:] = 0.0
    assert not layer.params["W_z"].any()
    bi = ls.BiLayer("NP", M, N)
    bi.params["bw.b_o"][:] = 3.0
    assert np.count_nonzero(bi.flat == 3.0) == N and np.all(bi.bw.params["b_o"] == 3.0)


@pytest.mark.parametrize("arch", ["V", "NP", "FGR", "GRU"])
def test_initialisation(arch):
    layer = ls.Layer(arch, 40, 60, seed=3)
    weights = np.concatenate([v.ravel() for k, v in layer.params.items() if not k.startswith("b_")])
    assert abs(weights.std() - 0.1) < 0.005 and abs(weights.mean()) < 0.005
    assert all(not v.any() for k, v in layer.params.items() if k.startswith("b_"))
    same = ls.Layer(arch, 40, 60, seed=3)
    assert np.array_equal(layer.flat, same.flat)
    assert not np.array_equal(layer.flat, ls.Layer(arch, 40, 60, seed=4).flat)


def test_forget_bias():
    layer = ls.Layer("V", M, N, forget_bias=1.0)
    assert np.all(layer.params["b_f"] == 1.0) and not layer.params["b_i"].any()
    cifg = ls.Layer("CIFG", M, N, forget_bias=1.0)          # f = 1 − σ(b_i) = σ(1) at start
    assert np.all(cifg.params["b_i"] == -1.0)
    for arch in ("NFG", "GRU"):
        with pytest.raises(ValueError, match="forget"):
            ls.Layer(arch, M, N, forget_bias=1.0)


def test_bidirectional_backward_direction_reads_the_sequence_reversed():
    bi = random_layer("CIFG", bidirectional=True)
    x, _ = random_problem(bi)
    y = bi.forward(x)
    alone = ls.Layer("CIFG", bi.n_in, bi.n_hidden, backend="numba")
    alone.flat[:] = bi.bw.flat
    assert np.allclose(y[:, bi.n_hidden:], alone.forward(np.ascontiguousarray(x[::-1]))[::-1])


@pytest.mark.parametrize("backend", ["numba", "reference"])
@pytest.mark.parametrize("arch", ALL_ARCHITECTURES)
def test_saturation_gives_finite_values(arch, backend):
    layer = random_layer(arch, backend=backend, scale=10.0)
    x = np.tile([300.0, -300.0, 300.0], (8, 1))
    y = layer.forward(x)
    dx = layer.backward(np.ones_like(y))
    assert np.isfinite(y).all() and np.isfinite(dx).all() and np.isfinite(layer.grad_flat).all()


@pytest.mark.parametrize("arch", ALL_ARCHITECTURES)
def test_numba_float32_agrees_with_float64(arch):
    wide = random_layer(arch)
    narrow = random_layer(arch, dtype=np.float32)
    x, dy = random_problem(wide)
    y64, dx64 = wide.forward(x), wide.backward(dy)
    y32, dx32 = narrow.forward(x.astype(np.float32)), narrow.backward(dy.astype(np.float32))
    assert y32.dtype == dx32.dtype == narrow.grad_flat.dtype == np.float32
    assert relative_error(y64, y32) < 1e-4 and relative_error(dx64, dx32) < 1e-4
    assert relative_error(wide.grad_flat, narrow.grad_flat) < 1e-4


def test_gradient_check_catches_a_wrong_gradient():
    """The checker itself must be able to fail: corrupt one backward and it must notice."""
    layer = random_layer("V", backend="reference")
    x, dy = random_problem(layer)
    honest = layer.backward

    def wrong(d):
        dx = honest(d)
        layer.grads["p_f"] *= 1.01
        return dx
    layer.backward = wrong
    assert check_layer(layer, x, dy, names=["p_f"])["p_f"] > 1e-3


# ----------------------------------------------------------------------------- bad input
def test_unknown_architecture_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown architecture 'LSTM2'.*V, NIG, NFG.*MUT3"):
        ls.Layer("LSTM2", M, N)


@pytest.mark.parametrize("n_in, n_hidden", [(0, 5), (3, -1), (3, 2.5)])
def test_bad_sizes(n_in, n_hidden):
    with pytest.raises(ValueError, match="must be a positive integer"):
        ls.Layer("V", n_in, n_hidden)


def test_bad_backend_and_dtype():
    with pytest.raises(ValueError, match="unknown backend 'cuda'"):
        ls.Layer("V", M, N, backend="cuda")
    with pytest.raises(TypeError, match="float32 or float64"):
        ls.Layer("V", M, N, dtype=np.int32)


@pytest.mark.parametrize("backend", ["numba", "reference"])
def test_bad_x(backend):
    layer = ls.Layer("V", M, N, backend=backend)
    with pytest.raises(ValueError, match=r"x must have shape \(T, 7\)"):
        layer.forward(np.zeros((4, M + 1)))
    with pytest.raises(ValueError, match="x must have shape"):
        layer.forward(np.zeros(M))
    with pytest.raises(ValueError, match="T >= 1"):
        layer.forward(np.zeros((0, M)))
    with pytest.raises(TypeError, match="dtype float32 but the layer is float64"):
        layer.forward(np.zeros((4, M), np.float32))
    with pytest.raises(TypeError, match="numpy array"):
        layer.forward([[0.0] * M])
    x = np.zeros((4, M))
    x[2, 5] = np.nan
    with pytest.raises(ValueError, match="non-finite value.*time step 2, unit 5"):
        layer.forward(x)


@pytest.mark.parametrize("backend", ["numba", "reference"])
def test_bad_dy_and_call_order(backend):
    layer = ls.Layer("GRU", M, N, backend=backend)
    with pytest.raises(RuntimeError, match="call forward"):
        layer.backward(np.zeros((4, N)))
    layer.forward(np.zeros((4, M)))
    with pytest.raises(ValueError, match="5 time steps but the forward pass had 4"):
        layer.backward(np.zeros((5, N)))
    with pytest.raises(ValueError, match=r"dy must have shape \(4, 5\)"):
        layer.backward(np.zeros((4, N + 1)))
    with pytest.raises(TypeError, match="dtype float32"):
        layer.backward(np.zeros((4, N), np.float32))
    with pytest.raises(ValueError, match=r"dy must have shape \(T, 10\)"):
        ls.BiLayer("GRU", M, N, backend=backend).backward(np.zeros((4, N)))


def test_bad_external_storage():
    with pytest.raises(ValueError, match="flat must be a 1-D float64 array of"):
        ls.Layer("V", M, N, flat=np.zeros(3))


@pytest.mark.parametrize("backend", ["numba", "reference"])
@pytest.mark.parametrize("arch", ["V", "FGR", "GRU", "MUT1"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_backward_without_dx_gives_the_same_gradients(arch, backend, bidirectional):
    layer = random_layer(arch, backend=backend, bidirectional=bidirectional)
    x, dy = random_problem(layer)
    layer.forward(x)
    assert layer.backward(dy).shape == x.shape
    full = layer.grad_flat.copy()
    layer.grad_flat[:] = np.nan
    layer.forward(x)
    assert layer.backward(dy, need_dx=False) is None
    assert np.array_equal(layer.grad_flat, full)


def test_read_only_input_is_accepted_without_a_second_compilation():
    from lstm_scratch.kernels.primitives import _COMPILED
    layer = random_layer("V")
    x, dy = random_problem(layer)
    frozen = x.copy()
    frozen.flags.writeable = False
    assert np.array_equal(layer.forward(frozen), layer.forward(x))
    layer.backward(dy)
    for kernel in _COMPILED[layer.arch]:
        assert not any("readonly" in str(signature) for signature in kernel.signatures)


def test_a_bidirectional_layer_pickles_after_concurrent_use():
    import pickle
    bi = random_layer("V", bidirectional=True)
    bi.concurrent = True
    x, dy = random_problem(bi)
    y = bi.forward(x)
    bi.backward(dy)
    copy = pickle.loads(pickle.dumps(bi))
    assert np.array_equal(copy.forward(x), y)
