"""JZS's training regime (lstm_scratch.minibatch, SPEC §11): kernels from an initial state against the
reference and finite differences, truncated-BPTT gradients, threads against one thread, clipping, the
learning-rate schedule, and bad input. Kill-and-resume of both protocols: tests/test_train.py."""
import math

import numpy as np
import pytest

from lstm_scratch import kernels, records, reference
from lstm_scratch.cli import main
from lstm_scratch.datasets import BLANK, Split
from lstm_scratch.gradcheck import numerical_gradient, relative_error
from lstm_scratch.layer import Layer
from lstm_scratch.minibatch import DECAY_AFTER, MinibatchEpoch, clip_by_norm, next_lr, windows
from lstm_scratch.momentum import Momentum
from lstm_scratch.network import Network
from lstm_scratch.objectives import objective
from lstm_scratch.train import TaskData, TrainConfig, run_trial, train
from lstm_scratch.variants import Layout, get

ARCHS = ["V", "CIFG", "NOG", "NIAF", "FGR", "LSTM", "LSTM-F", "GRU", "MUT1", "MUT2", "MUT3", "TANH"]


# ------------------------------------------------------------------------------------ fixtures
def sequence_task(loss="softmax", sizes=(7, 4, 4), steps=(9, 30), seed=0) -> TaskData:
    """A small task with sequences long enough for several windows (T = 9…29), 3 inputs, 4 outputs."""
    rng = np.random.default_rng(seed)

    def split(name, count):
        inputs, targets = [], []
        for _ in range(count):
            x = rng.normal(size=(int(rng.integers(*steps)), 3))
            inputs.append(x)
            if loss == "bernoulli":
                targets.append((rng.random((len(x), 4)) < 0.3).astype(np.float64))
            else:                                   # softmax; next_symbol also leaves frames unscored
                y = (x[:, 0] > 0) + 2 * (x[:, 1] > 0)
                targets.append(np.where(rng.random(len(x)) < 0.3, -1, y) if loss == "next_symbol" else y)
        return Split(task=f"seq-{loss}", name=name, inputs=inputs, targets=targets, ids=list(range(count)),
                     n_in=3, n_out=4, loss=loss, labels=("a", "b", "c", "d"), synthetic=True,
                     source="SYNTHETIC test fixture")
    return TaskData(*(split(name, count) for name, count in zip(("train", "valid", "test"), sizes)))


def jzs_config(loss="softmax", **changes):
    base = dict(task=f"seq-{loss}", arch="LSTM", hidden=4, lr=0.3, protocol="jzs", batch=3, unroll=7,
                max_epochs=4, patience=15, bidirectional=False)
    return TrainConfig(**{**base, **changes})


def random_state(arch, n_hidden, rng):
    h0 = rng.normal(0.0, 0.5, n_hidden)
    return h0, rng.normal(0.0, 0.5, n_hidden) if get(arch).family == "lstm" else None


def random_network(arch="LSTM", layers=2, loss="softmax", seed=0):
    net = Network(arch, 3, 5, 4, loss=loss, layers=layers, seed=seed)
    net.flat[:] = np.random.default_rng(seed).normal(0.0, 0.4, net.n_params)
    return net


# ------------------------------------------------------------------------------------ kernels from a state
@pytest.mark.parametrize("arch", ARCHS)
def test_kernels_from_an_initial_state_equal_the_reference(arch):
    rng = np.random.default_rng(1)
    layout = Layout(arch, 3, 4)
    flat = rng.normal(0.0, 0.5, layout.size)
    x, dy = rng.normal(size=(7, 3)), rng.normal(size=(7, 4))
    h0, c0 = random_state(arch, 4, rng)
    got, want = np.zeros(layout.size), np.zeros(layout.size)
    y, cache = kernels.forward(arch, layout.blocks(flat), x, h0, c0)
    dx, dh0, dc0 = kernels.backward(arch, layout.blocks(flat), cache, dy, layout.blocks(got), need_dstate=True)
    y_ref, cache_ref = reference.forward(arch, layout.views(flat), x, h0, c0)
    dx_ref, dh0_ref, dc0_ref = reference.backward(arch, layout.views(flat), cache_ref, dy, layout.views(want),
                                                  need_dstate=True)
    np.testing.assert_allclose(y, y_ref, atol=1e-12)
    np.testing.assert_allclose(got, want, atol=1e-12)
    np.testing.assert_allclose(dx, dx_ref, atol=1e-12)
    np.testing.assert_allclose(dh0, dh0_ref, atol=1e-12)
    (h, c), (h_ref, c_ref) = kernels.final_state(arch, cache), reference.final_state(arch, cache_ref)
    np.testing.assert_allclose(h, h_ref, atol=1e-12)
    assert (c is None) == (c_ref is None) == (c0 is None)
    if c is not None:
        np.testing.assert_allclose(c, c_ref, atol=1e-12)
    if c0 is None:
        assert dc0 is None and dc0_ref is None
    else:
        np.testing.assert_allclose(dc0, dc0_ref, atol=1e-12)
        assert not np.allclose(y, kernels.forward(arch, layout.blocks(flat), x, h0)[0])   # c0 is used


@pytest.mark.parametrize("arch", ARCHS)
def test_initial_state_and_parameter_gradients_against_finite_differences(arch):
    """L = Σ y·Δ from a non-zero state: ∂L/∂h0, ∂L/∂c0 and ∂L/∂θ (the state held fixed) by differences."""
    rng = np.random.default_rng(2)
    layout = Layout(arch, 3, 4)
    flat = rng.normal(0.0, 0.5, layout.size)
    x, dy = rng.normal(size=(6, 3)), rng.normal(size=(6, 4))
    h0, c0 = random_state(arch, 4, rng)

    def loss():
        return float(np.sum(kernels.forward(arch, layout.blocks(flat), x, h0, c0)[0] * dy))

    grad = np.zeros(layout.size)
    _, cache = kernels.forward(arch, layout.blocks(flat), x, h0, c0)
    _, dh0, dc0 = kernels.backward(arch, layout.blocks(flat), cache, dy, layout.blocks(grad), need_dstate=True)
    assert relative_error(dh0, numerical_gradient(loss, h0)) < 1e-7
    if c0 is not None:
        assert relative_error(dc0, numerical_gradient(loss, c0)) < 1e-7
    assert relative_error(grad, numerical_gradient(loss, flat)) < 1e-7


def test_no_state_and_a_zero_state_agree_and_the_default_path_is_the_old_one():
    rng = np.random.default_rng(3)
    for arch in ("V", "GRU"):
        layout = Layout(arch, 3, 4)
        flat = rng.normal(0.0, 0.5, layout.size)
        x = rng.normal(size=(5, 3))
        zero = np.zeros(4)
        y_none = kernels.forward(arch, layout.blocks(flat), x)[0]
        y_zero = kernels.forward(arch, layout.blocks(flat), x, zero, zero if arch == "V" else None)[0]
        np.testing.assert_allclose(y_none, y_zero, atol=1e-15)
        np.testing.assert_allclose(y_none, reference.forward(arch, layout.views(flat), x)[0], atol=1e-12)


def test_a_layer_checks_its_initial_state():
    lstm, gru = Layer("V", 3, 4), Layer("GRU", 3, 4)
    x = np.zeros((5, 3))
    with pytest.raises(ValueError, match="c0: GRU has no cell state"):
        gru.forward(x, state=(np.zeros(4), np.zeros(4)))
    with pytest.raises(ValueError, match="c0 is None: V needs it"):
        lstm.forward(x, state=(np.zeros(4), None))
    with pytest.raises(ValueError, match="h0 must be a finite float64 vector of 4 values"):
        lstm.forward(x, state=(np.zeros(3), np.zeros(4)))
    with pytest.raises(ValueError, match="h0 must be a finite"):
        gru.forward(x, state=(np.full(4, np.nan), None))
    with pytest.raises(ValueError, match="state: a bidirectional network"):
        Network("V", 3, 4, 4, loss="softmax", bidirectional=True).loss_and_grad(
            x, np.zeros(5, int), ((np.zeros(4), np.zeros(4)),))


# ------------------------------------------------------------------------------------ truncated BPTT
@pytest.mark.parametrize("arch", ["LSTM", "GRU", "MUT3"])
def test_a_window_loss_given_a_carried_state_against_finite_differences(arch):
    """Window 2 of a sequence starts from window 1's final state; its gradient treats that state as a
    constant (stacked layers: one state per layer)."""
    net = random_network(arch)
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(12, 3)), rng.integers(0, 4, 12)
    net.loss_and_grad(x[:5], y[:5])
    carried = net.final_state()
    loss, grad = net.loss_and_grad(x[5:], y[5:], carried)
    grad = grad.copy()
    numeric = numerical_gradient(lambda: net.loss_and_grad(x[5:], y[5:], carried)[0], net.flat)
    assert relative_error(grad, numeric) < 1e-7
    # the windows chained reproduce the whole sequence's forward pass
    whole = net.loss_and_grad(x, y)[0]
    first = net.loss_and_grad(x[:5], y[:5])[0]
    assert math.isclose(first + loss, whole, rel_tol=1e-12)


def test_the_truncated_gradient_differs_from_full_bptt_and_stops_at_the_window():
    net = random_network("LSTM", layers=1)
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(12, 3)), rng.integers(0, 4, 12)
    full = net.loss_and_grad(x, y)[1].copy()
    net.loss_and_grad(x[:6], y[:6])
    first, state = net.grad.copy(), net.final_state()
    truncated = first + net.loss_and_grad(x[6:], y[6:], state)[1]
    assert relative_error(truncated, full) > 1e-4          # the cut removed something


def _one_epoch(net, data, *, batch, unroll, threads=1, lr=0.3, clip_norm=1e9, order=None):
    inputs, targets = data.train.inputs, data.train.targets
    order = np.arange(len(inputs)) if order is None else order
    opt = Momentum(net.flat, lr, 0.0)
    runner = MinibatchEpoch(net, batch, unroll, clip_norm, threads)
    try:
        loss = runner.run(opt, lr, inputs, targets, order, 0.0, None)
    finally:
        runner.close()
    return loss


@pytest.mark.parametrize("loss", ["softmax", "bernoulli", "next_symbol"])
def test_unroll_at_least_T_with_batch_1_is_online_sgd_bit_for_bit(loss):
    data = sequence_task(loss, sizes=(3, 1, 1))
    jzs, online = random_network(loss=loss), random_network(loss=loss)
    _one_epoch(jzs, data, batch=1, unroll=max(len(x) for x in data.train.inputs))
    opt = Momentum(online.flat, 0.3, 0.0)
    for x, y in zip(data.train.inputs, data.train.targets):
        opt.step(online.loss_and_grad(x, y)[1])
    assert np.array_equal(jzs.flat, online.flat)


def test_a_minibatch_update_is_the_mean_of_the_sequences_full_gradients_when_unroll_covers_them():
    data = sequence_task(sizes=(4, 1, 1))
    net, check = random_network(), random_network()
    _one_epoch(net, data, batch=4, unroll=100, lr=0.5)
    mean = sum(check.loss_and_grad(x, y)[1].copy() for x, y in zip(data.train.inputs, data.train.targets)) / 4
    np.testing.assert_allclose(net.flat, check.flat - 0.5 * mean, rtol=0, atol=1e-14)


def test_windows_split_a_sequence():
    assert windows(10, 4) == [slice(0, 4), slice(4, 8), slice(8, 10)]
    assert windows(3, 35) == [slice(0, 3)]


@pytest.mark.parametrize("threads", [2, 3])
def test_threads_give_the_same_bits_as_one_thread(threads):
    data = sequence_task(sizes=(8, 1, 1))
    order = np.random.default_rng(0).permutation(8)
    one, many = random_network("GRU"), random_network("GRU")
    loss_one = _one_epoch(one, data, batch=5, unroll=6, order=order, clip_norm=2.0)
    loss_many = _one_epoch(many, data, batch=5, unroll=6, order=order, clip_norm=2.0, threads=threads)
    assert loss_one == loss_many
    assert np.array_equal(one.flat, many.flat)


def test_a_replica_shares_the_parameters_not_the_gradient():
    net = random_network()
    twin = net.replica()
    assert twin.flat is net.flat and twin.grad is not net.grad
    x, y = np.random.default_rng(0).normal(size=(6, 3)), np.arange(6) % 4
    assert twin.loss_and_grad(x, y)[0] == net.loss_and_grad(x, y)[0]
    net.flat[0] += 1.0
    assert twin.params["fw.W_z"][0, 0] == net.params["fw.W_z"][0, 0]


# ------------------------------------------------------------------------------------ clipping, schedule
def test_clipping_scales_the_whole_gradient_to_the_norm_and_keeps_its_direction():
    g = np.array([3.0, -4.0, 0.0])
    assert clip_by_norm(g, 1.0) == 5.0
    np.testing.assert_allclose(g, [0.6, -0.8, 0.0])
    small = np.array([0.3, 0.4])
    assert clip_by_norm(small, 1.0) == pytest.approx(0.5) and np.array_equal(small, [0.3, 0.4])
    bad = np.array([np.nan, 1.0])
    clip_by_norm(bad, 1.0)
    assert np.isnan(bad[0])                    # never hidden: the update reports the divergence


def test_a_clipped_epoch_moves_each_step_by_at_most_lr_times_the_norm():
    data = sequence_task(sizes=(2, 1, 1), steps=(5, 6))
    net = random_network()
    before = net.flat.copy()
    _one_epoch(net, data, batch=2, unroll=10, lr=0.5, clip_norm=1e-3)
    assert np.linalg.norm(net.flat - before) == pytest.approx(0.5e-3, rel=1e-9)


def test_learning_rate_schedule_on_a_scripted_validation_curve():
    """Accuracy (higher is better): best at epochs 1, 2, then 5; stalls from 6 on."""
    accuracy = objective("next_symbol")
    metrics = [0.2, 0.3, 0.3, 0.25, 0.4, 0.4, 0.39, 0.4, 0.1, 0.38]
    lr, best, best_epoch, used = 1.0, -math.inf, None, []
    for epoch, metric in enumerate(metrics, start=1):
        used.append(lr)
        if best_epoch is None or accuracy.improves(metric, best):
            best, best_epoch = metric, epoch
        lr = next_lr(lr, epoch, best_epoch, 0.5)
    assert DECAY_AFTER == 3
    # epochs 3, 4 stall 1, 2 epochs (no decay); epoch 5 improves; 6, 7 stall; after epoch 8 (3 without
    # improvement) η halves, and again after 9 and 10
    assert used == [1, 1, 1, 1, 1, 1, 1, 1, 0.5, 0.25]
    assert lr == 0.125


def test_a_jzs_run_records_each_epochs_lr_as_the_schedule_says(tmp_path):
    data = sequence_task("next_symbol")
    record = train(jzs_config("next_symbol", lr=1e-9, max_epochs=7, patience=50), tmp_path / "run", data=data,
                   threads=1)
    assert record["config"]["protocol"] == "jzs" and record["outcome"] == "finished"
    history, lr, best, best_epoch = record["history"], 1e-9, None, None
    for epoch, metric in enumerate(history["valid_metric"], start=1):
        assert history["lr"][epoch - 1] == lr
        if best_epoch is None or metric > best:
            best, best_epoch = metric, epoch
        lr = next_lr(lr, epoch, best_epoch, 0.5)
    assert history["lr"][-1] < 1e-9          # the tiny η cannot improve the accuracy: it was halved


# ------------------------------------------------------------------------------------ runs
def test_one_and_two_threads_train_the_same_run(tmp_path):
    data = sequence_task("bernoulli")
    runs = [train(jzs_config("bernoulli", arch="GRU"), tmp_path / str(t), data=data, threads=t) for t in (1, 2)]
    assert runs[0]["history"]["train_loss"] == runs[1]["history"]["train_loss"]
    assert runs[0]["test_metric"] == runs[1]["test_metric"]


def test_run_trial_takes_a_jzs_configuration_and_returns_its_record_again(tmp_path):
    data = sequence_task()
    cfg = jzs_config(max_epochs=2)
    first = run_trial(cfg, tmp_path / "trial", data=data, labels={"study": "s"})
    assert first["config"]["protocol"] == "jzs" and first["config"]["batch"] == 3
    assert run_trial(cfg, tmp_path / "trial", data=data)["ended"] == first["ended"]


def test_online_configurations_are_unchanged_and_carry_no_jzs_fields():
    cfg = TrainConfig("jsb")
    assert (cfg.protocol, cfg.momentum, cfg.init_scale) == ("online", 0.9, 0.1)
    assert (cfg.batch, cfg.unroll, cfg.clip_norm, cfg.lr_decay) == (None,) * 4
    jzs = TrainConfig("xml", protocol="jzs")
    assert (jzs.batch, jzs.unroll, jzs.clip_norm, jzs.lr_decay, jzs.momentum) == (20, 35, 5.0, 0.5, 0.0)
    assert TrainConfig.from_dict(vars(jzs)) == jzs


@pytest.mark.parametrize("changes, message", [
    ({"unroll": 0}, r"unroll=0: must be an integer ≥ 1"),
    ({"batch": 0}, r"batch=0: must be an integer ≥ 1"),
    ({"batch": 2.5}, r"batch=2.5: must be an integer"),
    ({"protocol": "adam"}, r"protocol='adam': use online .* or jzs"),
    ({"protocol": "online", "batch": None, "unroll": None, "clip_norm": 1.0}, r"clip_norm=1.0: applies to "
     r"protocol jzs only"),
    ({"clip_norm": 0.0}, r"clip_norm=0.0: must be a finite number > 0"),
    ({"lr_decay": 2.0}, r"lr_decay=2.0: the decay factor must lie in \(0, 1\]"),
    ({"arch": "FGR"}, r"arch='FGR': FGR's gate recurrence"),
    ({"bidirectional": True}, r"bidirectional=True: protocol jzs carries the state"),
    ({"init_scale": -1.0}, r"init_scale=-1.0: .* > 0"),
])
def test_bad_configurations_are_clear_errors(changes, message):
    with pytest.raises(ValueError, match=message):
        jzs_config(**changes)


def test_a_ctc_task_or_a_bidirectional_task_is_refused_before_anything_is_written(tmp_path):
    data = sequence_task()
    ctc = TaskData(*(Split(**{**vars(s), "loss": "ctc", "targets": [np.array([1, 2])] * len(s.inputs),
                               "labels": (BLANK, "a", "b", "c")}) for s in data))
    with pytest.raises(ValueError, match="CTC loss is not a sum over frames"):
        train(jzs_config(), tmp_path / "ctc", data=ctc)
    with pytest.raises(ValueError, match="bidirectional network's backward direction"):
        train(jzs_config(bidirectional=None), tmp_path / "bi", data=data)    # softmax data: two directions
    for run in ("ctc", "bi"):
        assert not (tmp_path / run).exists() or not any((tmp_path / run).iterdir())


def test_train_command_with_protocol_jzs(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--task", "memorisation", "--arch", "gru", "--hidden", "8", "--protocol", "jzs",
                 "--batch", "10", "--unroll", "5", "--clip-norm", "3", "--lr", "0.5", "--max-epochs", "1",
                 "--threads", "1", "--out", str(out)]) == 0
    config = records.read_record(out / "record.json")["config"]
    assert (config["protocol"], config["batch"], config["unroll"], config["clip_norm"]) == ("jzs", 10, 5, 3.0)
    assert config["momentum"] == 0.0
    assert main(["train", "--out", str(out), "--resume", "--max-epochs", "2", "--threads", "1"]) == 0
    record = records.read_record(out / "record.json")       # extended: the jzs configuration kept
    assert record["epochs"] == 2 and record["config"] == {**config, "max_epochs": 2}
    assert len(record["history"]["lr"]) == 2


def test_an_epoch_carries_each_sequences_state_across_its_windows_and_updates_between_them():
    """The epoch written out by hand: batch of 2 (T = 12 and 7), windows of 5, the state of each sequence
    carried from window to window, one update per window; the second sequence ends after window 2."""
    rng = np.random.default_rng(6)
    xs = [rng.normal(size=(12, 3)), rng.normal(size=(7, 3))]
    ys = [rng.integers(0, 4, 12), rng.integers(0, 4, 7)]
    data = TaskData(*(Split(task="seq", name=n, inputs=xs, targets=ys, ids=[0, 1], n_in=3, n_out=4,
                            loss="softmax", labels=tuple("abcd"), synthetic=True, source="test")
                      for n in ("train", "valid", "test")))
    net, by_hand = random_network(), random_network()
    _one_epoch(net, data, batch=2, unroll=5, lr=0.4)
    opt, states = Momentum(by_hand.flat, 0.4, 0.0), [None, None]
    for window in (slice(0, 5), slice(5, 10), slice(10, 15)):
        grad = np.zeros_like(by_hand.flat)
        for b in (0, 1):
            if len(xs[b]) > window.start:
                grad += by_hand.loss_and_grad(xs[b][window], ys[b][window], states[b])[1]
                states[b] = by_hand.final_state()
        opt.step(grad / 2)
    np.testing.assert_allclose(net.flat, by_hand.flat, rtol=0, atol=1e-14)
    whole = random_network()                 # one window per sequence (full BPTT) gives another result
    _one_epoch(whole, data, batch=2, unroll=100, lr=0.4)
    assert not np.allclose(net.flat, whole.flat)


# ------------------------------------------------------------------------------------ search space
def test_jzs_space_draws_within_a_parameter_budget_and_makes_valid_jzs_configurations():
    from lstm_scratch.search.space import hidden_for_budget, jzs_sample, jzs_space, uniform_number
    space = jzs_space("xml")
    for arch in ("LSTM", "GRU", "TANH"):
        values = [jzs_sample(space, seed=0, task="xml", arch=arch, k=k, n_in=29, n_out=29) for k in range(6)]
        assert values == [jzs_sample(space, seed=0, task="xml", arch=arch, k=k, n_in=29, n_out=29)
                          for k in range(6)]                     # determined by (seed, task, arch, k)
        for k, v in enumerate(values):
            assert 1 <= v["layers"] <= 4 and 0.1 <= v["lr"] <= 5 and 1 <= v["clip_norm"] <= 20
            cfg = TrainConfig("xml", arch=arch, **v)
            assert cfg.protocol == "jzs"
            budget = space["params"].draw(uniform_number(0, "xml", None, k, "params"))
            fits = Network(arch, 29, cfg.hidden, 29, loss="next_symbol", layers=cfg.layers).n_params
            over = Network(arch, 29, cfg.hidden + 1, 29, loss="next_symbol", layers=cfg.layers).n_params
            assert fits <= budget < over, (arch, v, budget)
    lstm = jzs_sample(space, seed=0, task="xml", arch="LSTM", k=2, n_in=29, n_out=29)
    gru = jzs_sample(space, seed=0, task="xml", arch="GRU", k=2, n_in=29, n_out=29)
    assert {k: v for k, v in lstm.items() if k != "hidden"} == {k: v for k, v in gru.items() if k != "hidden"}
    assert gru["hidden"] > lstm["hidden"]                        # 3 gate blocks against 4: more units
    assert hidden_for_budget(10, "LSTM", 1, 29, 29) == 1          # never below one unit

