"""JZS's cells as rows of the architecture table: the plain tanh RNN (TANH) on the gated kernel, JZS's
LSTM (= NP) and its ablations LSTM-F/-I/-O/-B on the LSTM kernel — each equal to its flag combination
built by hand — and LSTM-B's forget bias as a default of its row, through Layer, Network, TrainConfig
and the CLI. Finite-difference checks of every new row are in test_gradients.py."""
import json
from dataclasses import fields, replace

import numpy as np
import pytest

import lstm_scratch as ls
from lstm_scratch import kernels, reference
from lstm_scratch.cli import main
from lstm_scratch.gradcheck import random_layer, random_problem, relative_error
from lstm_scratch.network import Network
from lstm_scratch.train import TrainConfig, train
from lstm_scratch.variants import (ALL_ARCHITECTURES, ARCHITECTURES, JZS_ARCHITECTURES, Architecture,
                                   Layout, get)

M, N, T = 3, 4, 7
NP = get("NP")
# Each JZS ablation written out as flags on NP (the no-peephole LSTM), by hand.
BY_HAND = {
    "LSTM": NP,
    "LSTM-F": replace(NP, name="NP+NFG", forget_gate=False),
    "LSTM-I": replace(NP, name="NP+NIG", input_gate=False),
    "LSTM-O": replace(NP, name="NP+NOG", output_gate=False),
    "LSTM-B": NP,
}
IDENTITY = ("name", "description", "forget_bias")      # what a row is called, not how it computes


def _flags(arch: Architecture) -> dict:
    return {f.name: getattr(arch, f.name) for f in fields(Architecture) if f.name not in IDENTITY}


def test_the_benchmark_set_and_the_paper_table():
    assert JZS_ARCHITECTURES == ("TANH", "LSTM", "LSTM-F", "LSTM-I", "LSTM-O", "LSTM-B",
                                 "GRU", "MUT1", "MUT2", "MUT3")
    assert len(ARCHITECTURES) == 13 and ls.LSTM_VARIANTS == ARCHITECTURES[:9]   # the Odyssey table stays
    assert set(ALL_ARCHITECTURES) == set(ARCHITECTURES) | set(JZS_ARCHITECTURES)
    assert get("lstm-f").name == "LSTM-F" and get("tanh").name == "TANH"       # JZS's lower case works
    with pytest.raises(ValueError, match=r"unknown architecture 'LSTM-X'.*MUT3, TANH, LSTM, LSTM-F"):
        get("LSTM-X")


@pytest.mark.parametrize("name", BY_HAND)
def test_ablation_is_its_flag_combination(name):
    """Same flags, parameter names and count as NP with that gate removed by hand, and identical
    outputs and gradients (bit for bit) on both backends."""
    row, hand = get(name), BY_HAND[name]
    assert row.family == "lstm" and not row.peephole_gates
    assert _flags(row) == _flags(hand)
    assert Layout(row, M, N).shapes == Layout(hand, M, N).shapes
    rng = np.random.default_rng(0)
    flat = rng.normal(0.0, 0.5, Layout(row, M, N).size)
    x, dy = rng.normal(size=(T, M)), rng.normal(size=(T, N))
    for backend in ("numba", "reference"):
        results = []
        for arch in (row, hand):
            layer = ls.Layer(arch, M, N, backend=backend)
            layer.flat[:] = flat
            y = layer.forward(x)
            results.append((y, layer.backward(dy), layer.grad_flat.copy()))
        assert all(np.array_equal(a, b) for a, b in zip(*results)), (name, backend)


def test_ablations_drop_exactly_one_gate_of_the_no_peephole_lstm():
    lstm = Layout("LSTM", M, N).shapes
    assert lstm == Layout("NP", M, N).shapes and len(lstm) == 12
    for name, gate in (("LSTM-F", "f"), ("LSTM-I", "i"), ("LSTM-O", "o")):
        assert set(Layout(name, M, N).shapes) == set(lstm) - {f"W_{gate}", f"R_{gate}", f"b_{gate}"}


@pytest.mark.parametrize("backend", ["numba", "reference"])
def test_tanh_rnn_is_its_equation(backend):
    """hᵗ = tanh(W x + U hᵗ⁻¹ + b), written out here, and nothing else: 3 tensors W_h, U_h, b_h."""
    layer = random_layer("TANH", M, N, backend=backend)
    assert list(layer.params) == ["W_h", "U_h", "b_h"]
    x, _ = random_problem(layer, T)
    W, U, b = layer.params["W_h"], layer.params["U_h"], layer.params["b_h"]
    h, expected = np.zeros(N), []
    for t in range(T):
        h = np.tanh(W @ x[t] + U @ h + b)
        expected.append(h)
    assert relative_error(layer.forward(x), np.array(expected)) < 1e-14


@pytest.mark.parametrize("arch", [a for a in JZS_ARCHITECTURES if a not in ARCHITECTURES])
def test_numba_matches_reference(arch):
    """The JZS-only rows on the kernels against the readable reference (test_kernels does the 13)."""
    rng = np.random.default_rng(1)
    layer = random_layer(arch, 5, N, seed=rng)
    x, dy = random_problem(layer, T, seed=rng)
    layout, flat = layer.layout, layer.flat
    got_grad, want_grad = np.full_like(flat, np.nan), np.full_like(flat, np.nan)
    y, cache = kernels.forward(arch, layout.blocks(flat), x)
    dx = kernels.backward(arch, layout.blocks(flat), cache, dy, layout.blocks(got_grad))
    y_ref, cache_ref = reference.forward(arch, layout.views(flat), x)
    dx_ref = reference.backward(arch, layout.views(flat), cache_ref, dy, layout.views(want_grad))
    for got, want in ((y, y_ref), (dx, dx_ref), (got_grad, want_grad)):
        assert relative_error(got, want) < 1e-12


# ----------------------------------------------------------------------------- LSTM-B's forget bias
def test_lstm_b_starts_with_forget_bias_plus_one_everywhere():
    assert np.all(ls.Layer("LSTM-B", M, N).params["b_f"] == 1.0)
    assert not ls.Layer("LSTM", M, N).params["b_f"].any()
    assert np.array_equal(ls.Layer("LSTM-B", M, N, seed=3).flat,
                          ls.Layer("LSTM", M, N, seed=3, forget_bias=1.0).flat)
    bi = ls.BiLayer("LSTM-B", M, N)
    assert np.all(bi.params["fw.b_f"] == 1.0) and np.all(bi.params["bw.b_f"] == 1.0)
    net = Network("LSTM-B", M, N, 2, layers=2, bidirectional=True)
    assert all(np.all(net.params[f"{p}b_f"] == 1.0) for p in ("fw.", "bw.", "l2.fw.", "l2.bw."))
    assert TrainConfig(task="jsb", arch="lstm-b").forget_bias == 1.0
    assert TrainConfig(task="jsb", arch="LSTM-B", forget_bias=1).forget_bias == 1.0
    assert TrainConfig(task="jsb", arch="LSTM").forget_bias == 0.0
    assert TrainConfig(task="jsb", arch="V", forget_bias=2.0).forget_bias == 2.0   # others: a free option


def test_lstm_b_refuses_another_bias():
    for make in (lambda: ls.Layer("LSTM-B", M, N, forget_bias=0.0),
                 lambda: TrainConfig(task="jsb", arch="LSTM-B", forget_bias=0.0)):
        with pytest.raises(ValueError, match=r"forget_bias=0.0: LSTM-B is the JZS LSTM with forget-gate "
                                             r"bias \+1; leave forget_bias unset, or choose LSTM"):
            make()
    for arch in ("TANH", "LSTM-F"):
        with pytest.raises(ValueError, match="forget"):
            ls.Layer(arch, M, N, forget_bias=1.0)


def test_a_training_run_of_a_jzs_cell_with_a_dash_in_its_name(tmp_path):
    from test_train import synthetic_task
    config = TrainConfig(task="synthetic-bernoulli", arch="lstm-b", hidden=3, layers=2, lr=0.1,
                         max_epochs=2)
    record = train(config, tmp_path / "LSTM-B-0000", data=synthetic_task(), threads=1)
    assert record["outcome"] in ("finished", "early_stopped")
    assert record["config"]["arch"] == "LSTM-B" and record["config"]["forget_bias"] == 1.0
    assert record["config"]["layers"] == 2
    assert record["network"]["layers"] == 2 and record["network"]["arch"] == "LSTM-B"
    saved = json.loads((tmp_path / "LSTM-B-0000" / "record.json").read_text())
    assert saved["network"] == record["network"]
    again = Network.from_file(tmp_path / "LSTM-B-0000" / "params.npz")
    assert again.spec.layers == 2 and "l2.fw.b_f" in again.params


def test_the_cli_refuses_bad_layers_and_biases_before_writing(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--task", "jsb", "--arch", "LSTM-F", "--layers", "0", "--out", str(out)]) == 2
    assert "layers=0: the number of stacked recurrent layers must be a positive integer" in capsys.readouterr().err
    assert main(["train", "--task", "jsb", "--arch", "lstm-b", "--forget-bias", "0", "--out", str(out)]) == 2
    assert "LSTM-B is the JZS LSTM with forget-gate bias +1" in capsys.readouterr().err
    assert not out.exists()


def test_study_trials_of_jzs_cells_are_named_and_found_by_id(tmp_path):
    from lstm_scratch.search import Study
    study = Study.create(tmp_path / "study", task="jsb", archs="TANH,lstm-f", trials=2, space="hidden=4")
    assert study.archs == ["TANH", "LSTM-F"]
    trial = study.trial("LSTM-F-0001")
    assert (trial.id, trial.arch, trial.k, trial.path.name) == ("LSTM-F-0001", "LSTM-F", 1, "LSTM-F-0001")
    assert trial.config.arch == "LSTM-F"
