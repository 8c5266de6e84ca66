"""The network: full finite-difference checks for each task's shape, save/load, predictions, errors."""
import json
from dataclasses import asdict

import numpy as np
import pytest

from lstm_scratch.gradcheck import numerical_gradient, relative_error
from lstm_scratch.network import Network

T, M, N = 7, 3, 4
TASKS = {  # loss, bidirectional, outputs: the three shapes of SPEC §5
    "timit-like": ("softmax", True, 5),
    "handwriting-like": ("ctc", True, 4),
    "music-like": ("bernoulli", False, 6),
}


def make(arch, task, backend="numba", seed=1, layers=1):
    loss, bidirectional, n_out = TASKS[task]
    net = Network(arch, M, N, n_out, loss=loss, bidirectional=bidirectional, backend=backend, seed=seed,
                  layers=layers)
    rng = np.random.default_rng(seed)
    net.flat[:] = rng.normal(0.0, 0.5, net.n_params)       # non-zero biases, peepholes, output bias
    x = rng.normal(size=(T, M))
    target = {"softmax": rng.integers(0, n_out, T), "ctc": np.array([1, 2, 2, 3]),
              "bernoulli": (rng.random((T, n_out)) < 0.3).astype(np.float64)}[loss]
    return net, x, target


@pytest.mark.parametrize("backend", ["numba", "reference"])
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("arch", ["V", "CIFG", "FGR", "GRU"])
def test_network_gradient(arch, task, backend):
    net, x, target = make(arch, task, backend)
    loss, grad = net.loss_and_grad(x, target)
    analytic = grad.copy()
    numeric = numerical_gradient(lambda: net.loss_and_grad(x, target)[0], net.flat)
    assert np.isfinite(loss)
    assert relative_error(analytic, numeric) <= 1e-6


def test_parameter_names_and_views():
    net = Network("V", M, N, 5, loss="softmax", bidirectional=True)
    assert {"fw.W_z", "bw.R_i", "out.W", "out.b"} <= set(net.params)
    assert net.params["out.W"].shape == (5, 2 * N)
    assert sum(v.size for v in net.params.values()) == net.n_params == net.flat.size
    net.params["bw.R_i"][0, 0] = 123.0
    assert 123.0 in net.flat
    uni = Network("GRU", M, N, 6)
    assert "fw.U_h" in uni.params and uni.params["out.W"].shape == (6, N)


def test_predictions_and_metrics():
    net, x, target = make("V", "music-like")
    p = net.predict(x)
    assert p.shape == (T, 6) and np.all((p > 0) & (p < 1))
    nll = net.evaluate([x], [target])
    assert nll == pytest.approx(net.loss_and_grad(x, target)[0] / T)
    net, x, target = make("V", "timit-like")
    assert np.allclose(net.predict(x).sum(axis=1), 1.0)
    assert 0.0 <= net.evaluate([x], [target]) <= 100.0
    net, x, target = make("GRU", "handwriting-like")
    labels = net.predict(x)
    assert labels.ndim == 1 and np.all(labels != 0)


def test_save_load_round_trip(tmp_path):
    net, x, target = make("FGR", "timit-like")
    path = tmp_path / "params.npz"
    net.save(path)
    again = Network.from_file(path)
    assert np.array_equal(again.flat, net.flat)
    assert np.array_equal(again.logits(x), net.logits(x))
    other = Network("FGR", M, N, 5, loss="softmax", bidirectional=True, seed=9)
    other.load(path)
    assert np.array_equal(other.flat, net.flat)
    assert [p.name for p in tmp_path.iterdir()] == ["params.npz"]     # no temporary left behind


def test_loading_another_architecture_is_refused(tmp_path):
    path = tmp_path / "v.npz"
    Network("V", M, N, 5, loss="softmax").save(path)
    net = Network("CIFG", M, N, 5, loss="softmax")
    before = net.flat.copy()
    with pytest.raises(ValueError, match=r"differs from this one.*'arch': \('V', 'CIFG'\)"):
        net.load(path)
    assert np.array_equal(net.flat, before)
    np.savez(tmp_path / "foreign.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a lstm_scratch parameter file"):
        net.load(tmp_path / "foreign.npz")


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown loss 'mse'"):
        Network("V", M, N, 5, loss="mse")
    with pytest.raises(ValueError, match="n_out must be a positive integer"):
        Network("V", M, N, 0)
    net, x, _ = make("V", "music-like")
    with pytest.raises(ValueError):
        net.loss_and_grad(x, np.zeros((T, 5)))                   # target shape != output shape
    net, x, _ = make("V", "timit-like")
    with pytest.raises(ValueError):
        net.loss_and_grad(x, np.full(T, 7))                     # class out of range


def test_ctc_blank_is_saved_and_checked(tmp_path):
    net = Network("V", M, N, 6, loss="ctc", bidirectional=True, blank=5, seed=2)
    path = tmp_path / "ctc.npz"
    net.save(path)
    again = Network.from_file(path)
    assert again.blank == 5
    x = np.random.default_rng(0).normal(size=(T, M))
    assert again.loss_and_grad(x, np.array([1, 2]))[0] == net.loss_and_grad(x, np.array([1, 2]))[0]
    assert np.array_equal(again.predict(x), net.predict(x))
    with pytest.raises(ValueError, match=r"'blank': \(5, 0\)"):
        Network("V", M, N, 6, loss="ctc", bidirectional=True).load(path)
    with pytest.raises(ValueError, match=r"blank=6: the CTC blank must be an output index in \[0, 5\]"):
        Network("V", M, N, 6, loss="ctc", blank=6)


def test_bad_hidden_size_names_the_field():
    with pytest.raises(ValueError, match="n_hidden must be a positive integer, got None"):
        Network("V", M, None, 5)


# ----------------------------------------------------------------------------- stacked layers
@pytest.mark.parametrize("backend", ["numba", "reference"])
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("layers", [2, 3])
@pytest.mark.parametrize("arch", ["V", "GRU", "TANH"])
def test_stacked_network_gradient(arch, layers, task, backend):
    net, x, target = make(arch, task, backend, layers=layers)
    loss, grad = net.loss_and_grad(x, target)
    analytic = grad.copy()
    numeric = numerical_gradient(lambda: net.loss_and_grad(x, target)[0], net.flat)
    assert np.isfinite(loss)
    assert relative_error(analytic, numeric) <= 1e-6


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_stacked_layers_read_the_layer_below(bidirectional):
    """Layer 2 is a layer of its own fed with layer 1's output (both directions concatenated), the
    output layer reads layer 2; names, sizes and the flat order follow."""
    net = Network("CIFG", M, N, 5, loss="softmax", bidirectional=bidirectional, layers=2, seed=4)
    directions = 2 if bidirectional else 1
    first, second = net.layers
    assert net.rnn is first and (first.n_in, second.n_in) == (M, directions * N)
    names = [k for k in net.params if k.endswith("W_z")]
    assert names == (["fw.W_z", "bw.W_z", "l2.fw.W_z", "l2.bw.W_z"] if bidirectional
                     else ["fw.W_z", "l2.fw.W_z"])
    assert net.n_params == first.n_params + second.n_params + 5 * directions * N + 5
    assert np.shares_memory(net.params["l2.fw.W_z"], net.flat[first.n_params:first.n_params + second.n_params])
    x = np.random.default_rng(0).normal(size=(T, M))
    expected = second.forward(first.forward(x)) @ net.params["out.W"].T + net.params["out.b"]
    assert np.allclose(net.logits(x), expected, rtol=0, atol=1e-13)


def test_one_layer_keeps_its_names_and_numbers():
    """layers=1 is the network as it was: same names, same initial parameters from the same seed."""
    one = Network("V", M, N, 5, loss="softmax", bidirectional=True, seed=7)
    explicit = Network("V", M, N, 5, loss="softmax", bidirectional=True, seed=7, layers=1)
    assert list(one.params) == list(explicit.params) and np.array_equal(one.flat, explicit.flat)
    assert not any(k.startswith("l") for k in one.params) and one.spec.layers == 1
    deeper = Network("V", M, N, 5, loss="softmax", bidirectional=True, seed=7, layers=2)
    first = one.layers[0].n_params
    assert np.array_equal(deeper.flat[:first], one.flat[:first])    # layer 1 drawn first, as before


@pytest.mark.parametrize("arch", ["V", "GRU"])
def test_stacked_concurrent_directions_give_identical_gradients(arch):
    net, x, target = make(arch, "timit-like", layers=3)
    loss, grad = net.loss_and_grad(x, target)
    sequential = grad.copy()
    for layer in net.layers:
        layer.concurrent = True
    loss_concurrent, grad = net.loss_and_grad(x, target)
    assert loss_concurrent == loss and np.array_equal(grad, sequential)


def test_stacked_save_load_and_files_from_before_stacking(tmp_path):
    net, x, _ = make("LSTM-F", "music-like", layers=2)
    path = tmp_path / "deep.npz"
    net.save(path)
    again = Network.from_file(path)
    assert again.spec.layers == 2 and np.array_equal(again.logits(x), net.logits(x))
    with pytest.raises(ValueError, match=r"'layers': \(2, 1\)"):
        Network("LSTM-F", M, N, 6, loss="bernoulli").load(path)
    # a file written before stacking existed has no "layers" in its spec: one layer
    one = Network("V", M, N, 6, loss="bernoulli", seed=3)
    spec = {k: v for k, v in asdict(one.spec).items() if k != "layers"}
    np.savez(tmp_path / "old.npz", __spec__=json.dumps(spec), **one.params)
    old = Network.from_file(tmp_path / "old.npz")
    assert old.spec.layers == 1 and np.array_equal(old.flat, one.flat)
    Network("V", M, N, 6, loss="bernoulli").load(tmp_path / "old.npz")


@pytest.mark.parametrize("layers", [0, -1, 1.5, None, True])
def test_bad_layers_name_the_field(layers):
    with pytest.raises(ValueError, match=f"layers must be a positive integer, got {layers!r}"):
        Network("V", M, N, 5, layers=layers)
