"""The online trainer (SPEC §6): momentum against its closed form, early stopping, kill-and-resume (of
both protocols), divergence, input noise, failures, bad input, multicore evaluation, and the ``train``
command."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lstm_scratch import rundir
from lstm_scratch.cli import main
from lstm_scratch.datasets import BLANK, Split
from lstm_scratch.minibatch import windows
from lstm_scratch.momentum import MasterMomentum, Momentum
from lstm_scratch.network import Network
from lstm_scratch.train import TaskData, TrainConfig, train

from test_minibatch import jzs_config, sequence_task


# ------------------------------------------------------------------------------------ fixtures
def synthetic_task(loss="bernoulli", sizes=(8, 4, 4), seed=0) -> TaskData:
    """A tiny task of each loss kind (T = 6..10): fast, and shaped like the real ones."""
    rng = np.random.default_rng(seed)
    n_in = 4 if loss == "bernoulli" else 3

    def split(name, count):
        inputs, targets = [], []
        for _ in range(count):
            steps = int(rng.integers(6, 11))
            if loss == "bernoulli":                      # next step of a random piano roll
                roll = (rng.random((steps + 1, 4)) < 0.3).astype(np.float64)
                inputs.append(roll[:-1])
                targets.append(roll[1:])
            else:
                x = rng.normal(size=(steps, 3))
                inputs.append(x)
                targets.append((x[:, 0] > 0) + 2 * (x[:, 1] > 0) if loss == "softmax"
                               else rng.integers(1, 4, size=2))
        labels = ("a", "b", "c", "d") if loss != "ctc" else (BLANK, "a", "b", "c")
        return Split(task=f"synthetic-{loss}", name=name, inputs=inputs, targets=targets,
                     ids=list(range(count)), n_in=n_in, n_out=4, loss=loss, metric="test", labels=labels,
                     synthetic=True, source="SYNTHETIC test fixture")
    return TaskData(*(split(name, count) for name, count in zip(("train", "valid", "test"), sizes)))


def config(loss="bernoulli", **changes):
    base = dict(task=f"synthetic-{loss}", arch="V", hidden=4, lr=0.1, momentum=0.9, max_epochs=4, patience=15)
    return TrainConfig(**{**base, **changes})


class Killed(BaseException):
    """Stands in for the process being killed: not an Exception, so it is no 'failed' run either."""


def read_strict_json(path):
    def refuse(constant):
        raise AssertionError(f"{path} holds {constant}: not strict JSON")
    return json.loads(path.read_text(), parse_constant=refuse)


# ------------------------------------------------------------------------------------ momentum
MOMENTUM_CASES = {"nesterov-m0.9": (True, 0.9), "classical-m0.9": (False, 0.9),
                  "nesterov-m0.99": (True, 0.99), "nesterov-m0": (True, 0.0), "classical-m0.5": (False, 0.5)}


@pytest.mark.parametrize("case", MOMENTUM_CASES)
def test_momentum_on_a_quadratic_matches_the_closed_form(case):
    """f(θ) = ½ Σ a_i θ_i²: the look-ahead recursion is linear, (θ, v)_k = Mᵏ (θ₀, 0), with ε = (1 − m)η:
    Nesterov  v' = m v − ε a (θ + m v), θ' = θ + v';   classical  v' = m v − ε a θ, θ' = θ + v'.
    The optimiser stores Θ = θ + m v (Nesterov) or θ (classical)."""
    nesterov, m = MOMENTUM_CASES[case]
    lr, steps = 0.3, 40
    a = np.array([0.1, 0.5, 1.0, 2.0, 3.5])
    theta0 = np.array([1.0, -2.0, 0.5, 3.0, -1.5])
    opt = Momentum(theta0.copy(), lr, m, nesterov=nesterov)
    for _ in range(steps):
        opt.step(a * opt.theta)                       # ∇f at the stored vector
    eps = (1 - m) * lr
    for i, curvature in enumerate(a):
        c = 1 - eps * curvature
        M = (np.array([[c, m * c], [-eps * curvature, m * c]]) if nesterov
             else np.array([[c, m], [-eps * curvature, m]]))
        theta, v = np.linalg.matrix_power(M, steps) @ np.array([theta0[i], 0.0])
        stored = theta + m * v if nesterov else theta
        assert opt.theta[i] == pytest.approx(stored, rel=1e-12, abs=1e-15)
        assert opt.velocity[i] == pytest.approx(v, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("nesterov", [True, False], ids=["nesterov", "classical"])
def test_learning_rate_is_scaled_by_one_minus_momentum(nesterov):
    """First step from v = 0 with g = 1: v = −(1 − m)η; Θ moves by (1 + m)·v (Nesterov) or v."""
    m, lr = 0.9, 0.5
    opt = Momentum(np.zeros(1), lr, m, nesterov=nesterov)
    opt.step(np.ones(1))
    assert opt.velocity[0] == pytest.approx(-(1 - m) * lr, rel=1e-15)
    assert opt.theta[0] == pytest.approx(-(1 - m) * lr * ((1 + m) if nesterov else 1), rel=1e-15)


def test_clipping_is_element_wise_and_never_hides_a_nan():
    opt = Momentum(np.zeros(3), lr=1.0, momentum=0.0, clip=1.0)
    assert opt.step(np.array([5.0, -5.0, 0.5]))
    assert opt.theta.tolist() == [-1.0, 1.0, -0.5]          # not rescaled by the norm
    assert not opt.step(np.array([0.0, np.nan, 0.0]))
    assert not Momentum(np.zeros(3), lr=1.0, momentum=0.0, clip=1.0).step(np.array([0.0, np.inf, 0.0]))
    assert not Momentum(np.zeros(2), lr=1.0, momentum=0.5).step(np.array([np.inf, 0.0]))
    assert not Momentum(np.zeros(2), lr=0.0, momentum=0.5, nesterov=False).step(np.array([0.0, -np.inf]))


# ------------------------------------------------------------------------------------ early stopping
@pytest.mark.parametrize("patience, max_epochs, script, outcome, epochs, best", [
    (3, 10, [5.0, 4.0, 3.0, 3.5, 3.0, 3.2, 1.0], "early_stopped", 6, 3),     # a tie is no improvement
    (2, 10, [5.0, 6.0, 7.0, 1.0], "early_stopped", 3, 1),
    (15, 4, [5.0, 4.0, 4.5, 3.9, 1.0], "finished", 4, 4),
    (2, 4, [5.0, 4.0, 4.5, 4.2, 1.0], "early_stopped", 4, 2),                  # both limits at once
], ids=["patience3-tie", "patience2-first-best", "max-epochs", "patience-at-max-epochs"])
def test_early_stopping_on_a_scripted_validation_curve(monkeypatch, tmp_path, patience, max_epochs, script,
                                                       outcome, epochs, best):
    data = synthetic_task()
    seen = []                                              # (split, parameters) per evaluation

    def scripted(self, inputs, targets, threads=1):
        split = "test" if inputs[0] is data.test.inputs[0] else "valid"
        seen.append((split, self.flat.copy()))
        return 99.0 if split == "test" else script[len(seen) - 1]
    monkeypatch.setattr(Network, "evaluate", scripted)
    record = train(config(patience=patience, max_epochs=max_epochs), tmp_path / "run", data=data, threads=1)
    assert (record["outcome"], record["epochs"], record["best_epoch"]) == (outcome, epochs, best)
    assert record["history"]["valid_metric"] == script[:epochs]
    assert [split for split, _ in seen] == ["valid"] * epochs + ["test"]
    tested = seen[-1][1]
    assert np.array_equal(tested, seen[best - 1][1])               # the best-validation parameters ...
    assert not np.array_equal(tested, seen[epochs - 1][1]) or best == epochs   # ... not the last ones
    assert record["test_metric"] == 99.0 and record["best_valid_metric"] == script[best - 1]
    assert np.array_equal(Network.from_file(tmp_path / "run" / "params.npz").flat, tested)


# ------------------------------------------------------------------------------------ resume
def _resume_case(protocol, loss):
    """The data and configuration of a kill-and-resume case, with input noise (the noise RNG must resume
    too); jzs: sequences of several windows, two layers, η large enough to be halved during the run."""
    if protocol == "online":
        return synthetic_task(loss), config(loss, noise=0.3, max_epochs=5, dtype="float64")
    return sequence_task(loss, sizes=(7, 3, 3)), jzs_config(loss, noise=0.2, max_epochs=6, lr=2.0, clip_norm=0.5,
                                                            layers=2)


@pytest.mark.parametrize("protocol, loss, threads, kill, at", [
    ("online", "bernoulli", 1, "between-epochs", 2), ("online", "bernoulli", 1, "mid-epoch", 3),
    ("online", "softmax", 2, "mid-epoch", 3),
    ("jzs", "softmax", 1, "between-epochs", 3), ("jzs", "softmax", 2, "mid-epoch", 5),
], ids=["online-music-between-epochs", "online-music-mid-epoch", "online-bidirectional-2-threads-mid-epoch",
        "jzs-between-epochs", "jzs-2-threads-mid-epoch"])
def test_kill_and_resume_equals_uninterrupted_bit_for_bit(monkeypatch, tmp_path, protocol, loss, threads, kill,
                                                         at):
    """Both protocols: a run killed after epoch ``at`` (between epochs) or at the ``at``-th gradient of
    epoch 3 (mid-epoch), then resumed, is the uninterrupted run bit for bit (jzs: η's schedule too)."""
    data, cfg = _resume_case(protocol, loss)
    whole = train(cfg, tmp_path / "whole", data=data, threads=threads)

    if kill == "between-epochs":
        def on_epoch(epoch, history):
            if epoch == at:
                raise Killed
        with pytest.raises(Killed):
            train(cfg, tmp_path / "cut", data=data, threads=threads, on_epoch=on_epoch)
    else:
        # gradients per epoch: one per sequence (online), one per window of each sequence (jzs)
        per_epoch = sum(1 if protocol == "online" else len(windows(len(x), cfg.unroll)) for x in data.train.inputs)
        original, calls = Network.loss_and_grad, []

        def dies_in_epoch_3(self, *args):
            calls.append(1)
            if len(calls) == 2 * per_epoch + at:
                raise Killed
            return original(self, *args)
        monkeypatch.setattr(Network, "loss_and_grad", dies_in_epoch_3)
        with pytest.raises(Killed):
            train(cfg, tmp_path / "cut", data=data, threads=threads)
        monkeypatch.setattr(Network, "loss_and_grad", original)
    assert not (tmp_path / "cut" / "record.json").exists()
    assert rundir.load_checkpoint(tmp_path / "cut" / "checkpoint.npz")[1]["history"]["valid_metric"]
    resumed = train(cfg, tmp_path / "cut", data=data, threads=threads, resume=True)

    assert resumed["sessions"] == 2 and whole["sessions"] == 1
    for key in ("outcome", "epochs", "best_epoch", "best_valid_metric", "test_metric"):
        assert resumed[key] == whole[key], key
    assert ("lr" in whole["history"]) == (protocol == "jzs")             # jzs records each epoch's η
    for key in ("train_loss", "valid_metric", "lr"):
        assert resumed["history"].get(key) == whole["history"].get(key), key      # exact float equality
    final = [rundir.load_checkpoint(tmp_path / run / "checkpoint.npz") for run in ("whole", "cut")]
    for name in ("params", "velocity", "best_params"):
        assert np.array_equal(final[0][0][name], final[1][0][name]), name
    assert final[0][1]["lr"] == final[1][1]["lr"]                         # the next epoch's η
    best = [Network.from_file(tmp_path / run / "params.npz").flat for run in ("whole", "cut")]
    assert np.array_equal(best[0], best[1])


def test_resume_refuses_another_configuration_and_a_finished_run(tmp_path):
    data = synthetic_task()
    with pytest.raises(Killed):
        train(config(), tmp_path / "run", data=data, threads=1, on_epoch=_raise_killed)
    with pytest.raises(ValueError, match=r"another configuration.*'lr': \(0\.1, 0\.2\)"):
        train(config(lr=0.2), tmp_path / "run", data=data, threads=1, resume=True)
    train(config(), tmp_path / "run", data=data, threads=1, resume=True)
    with pytest.raises(ValueError, match="already ended"):
        train(config(), tmp_path / "run", data=data, threads=1, resume=True)
    with pytest.raises(Killed):
        train(config(), tmp_path / "started", data=data, threads=1, on_epoch=_raise_killed)
    with pytest.raises(ValueError, match="continue it with --resume"):
        train(config(), tmp_path / "started", data=data, threads=1)


def _raise_killed(epoch, history):
    raise Killed


# ------------------------------------------------------------------------------------ divergence, failure
@pytest.mark.parametrize("loss", ["bernoulli", "softmax", "ctc"])
def test_a_learning_rate_that_must_diverge_gives_outcome_diverged_and_a_valid_record(tmp_path, loss):
    """ε = η = 1e308 (m = 0): any gradient entry above 1.8 in size overflows a parameter at once.
    (Merely huge rates, 1e200, saturate the network instead: the losses stay finite.)"""
    record = train(config(loss, lr=1e308, momentum=0.0), tmp_path / "run", data=synthetic_task(loss),
                   threads=1)
    assert record["outcome"] == "diverged" and record["error"] is None
    assert record["divergence"]["epoch"] == 1 and record["test_metric"] is None
    assert record["divergence"]["what"] in ("loss", "gradient or parameters")
    on_disk = read_strict_json(tmp_path / "run" / "record.json")
    assert on_disk["outcome"] == "diverged" and on_disk["divergence"] == record["divergence"]
    assert not (tmp_path / "run" / "params.npz").exists()


@pytest.mark.parametrize("where", ["loss", "validation metric"])
def test_a_non_finite_loss_or_metric_ends_the_run_at_once(monkeypatch, tmp_path, where):
    """The other two places divergence shows: the loss of a sequence (epoch 2, 4th sequence) and the
    validation metric (epoch 2)."""
    data, calls = synthetic_task(), []
    name = "loss_and_grad" if where == "loss" else "evaluate"
    original = getattr(Network, name)

    def goes_nan(self, *args, **kwargs):
        calls.append(1)
        value = original(self, *args, **kwargs)
        if len(calls) == (len(data.train) + 4 if where == "loss" else 2):
            return (np.nan, value[1]) if where == "loss" else np.inf
        return value
    monkeypatch.setattr(Network, name, goes_nan)
    record = train(config(max_epochs=5), tmp_path / "run", data=data, threads=1)
    assert record["outcome"] == "diverged" and record["epochs"] == 1 and record["best_epoch"] == 1
    assert record["divergence"]["epoch"] == 2 and record["divergence"]["what"] == where
    assert record["divergence"]["position"] == (3 if where == "loss" else -1)
    assert len(calls) == (len(data.train) + 4 if where == "loss" else 2)      # nothing ran after it
    assert read_strict_json(tmp_path / "run" / "record.json")["history"] == record["history"]


def test_an_exception_gives_outcome_failed_with_the_traceback(monkeypatch, tmp_path, capsys):
    def broken(self, x, target):
        raise RuntimeError("boom in the kernel")
    monkeypatch.setattr(Network, "loss_and_grad", broken)
    record = train(config(), tmp_path / "run", data=synthetic_task(), threads=1)
    assert record["outcome"] == "failed" and "RuntimeError: boom in the kernel" in record["error"]
    assert read_strict_json(tmp_path / "run" / "record.json")["error"] == record["error"]


# ------------------------------------------------------------------------------------ input noise
@pytest.mark.parametrize("sigma", [0.0, 0.5], ids=["no-noise", "noise0.5"])
def test_input_noise_on_training_inputs_only_fresh_each_presentation(monkeypatch, sigma):
    data = synthetic_task(sizes=(6, 3, 3))
    clean = [x.copy() for split in data for x in split.inputs]
    trained, evaluated = [], []
    original_loss, original_logits = Network.loss_and_grad, Network.logits

    def spy_loss(self, x, target):
        index = next(i for i, y in enumerate(data.train.targets) if y is target)
        trained.append((index, x.copy()))
        return original_loss(self, x, target)

    def spy_logits(self, x):
        evaluated.append(x)
        return original_logits(self, x)
    monkeypatch.setattr(Network, "loss_and_grad", spy_loss)
    monkeypatch.setattr(Network, "logits", spy_logits)
    train(config(noise=sigma, max_epochs=3), data=data, threads=1)

    assert len(trained) == 3 * len(data.train)
    noise = [x - data.train.inputs[i] for i, x in trained]
    if sigma == 0:
        assert all(not n.any() for n in noise)
    else:
        pooled = np.concatenate([n.ravel() for n in noise])
        assert abs(pooled.std() - sigma) < 0.1 * sigma and abs(pooled.mean()) < 0.1 * sigma
        first, second = (next(n for (i, _), n in zip(trained[k:], noise[k:]) if i == 0)
                         for k in (0, len(data.train)))
        assert not np.allclose(first, second)                 # a new draw at every presentation
    clean_eval = data.valid.inputs + data.test.inputs
    assert len(evaluated) == 3 * len(data.valid) + len(data.test)
    assert all(any(x is c for c in clean_eval) for x in evaluated)   # validation / test: the clean arrays
    assert all(np.array_equal(a, b) for a, b in zip(clean, (x for s in data for x in s.inputs)))


# ------------------------------------------------------------------------------------ multicore
@pytest.mark.parametrize("loss", ["bernoulli", "softmax", "ctc"])
def test_evaluation_on_threads_equals_sequential(loss):
    data = synthetic_task(loss, sizes=(2, 9, 2))
    net = Network("CIFG", data.valid.n_in, 5, 4, loss=loss, bidirectional=loss != "bernoulli", seed=3)
    net.flat[:] = np.random.default_rng(0).normal(0, 0.5, net.n_params)
    assert net.evaluate(data.valid.inputs, data.valid.targets, threads=3) == \
        net.evaluate(data.valid.inputs, data.valid.targets, threads=1)


@pytest.mark.parametrize("arch", ["V", "GRU"])
def test_concurrent_directions_give_identical_gradients(arch):
    net = Network(arch, 3, 6, 4, loss="softmax", bidirectional=True, seed=2)
    x, labels = np.random.default_rng(1).normal(size=(12, 3)), np.arange(12) % 4
    loss, grad = net.loss_and_grad(x, labels)
    sequential = grad.copy()
    net.rnn.concurrent = True
    loss_concurrent, grad = net.loss_and_grad(x, labels)
    assert loss_concurrent == loss and np.array_equal(grad, sequential)


def test_every_blas_runs_one_thread_during_training_in_a_fresh_process():
    """Including the BLAS the kernels' np.dot calls (SciPy's), which a fresh process loads only with the
    first kernel call — after the pinning, unless the trainer loads it first. Unpinned, its threads
    oversubscribe the cores (measured: concurrent directions 0.7x instead of 1.5x)."""
    script = (
        "import sys, json; sys.path.insert(0, sys.argv[1])\n"
        "from threadpoolctl import threadpool_info\n"
        "from test_train import synthetic_task, config\n"
        "from lstm_scratch.train import train\n"
        "seen = []\n"
        "train(config('softmax', max_epochs=1), data=synthetic_task('softmax'), threads=2,\n"
        "      on_epoch=lambda e, h: seen.extend(b['num_threads'] for b in threadpool_info()\n"
        "                                        if b['user_api'] == 'blas'))\n"
        "print(json.dumps(seen))\n")
    done = subprocess.run([sys.executable, "-c", script, str(Path(__file__).parent)], capture_output=True,
                          text=True, timeout=600, env={**os.environ, "OPENBLAS_NUM_THREADS": "2"})
    assert done.returncode == 0, done.stderr
    threads = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(threads) >= 2 and set(threads) == {1}, threads


# ------------------------------------------------------------------------------------ bad input, CLI
@pytest.mark.parametrize("args, message", [
    (["--task", "no-such-task"], "unknown task 'no-such-task'"),
    (["--task", "jsb", "--arch", "LSTM9"], "unknown architecture 'LSTM9'"),
    (["--task", "jsb", "--lr", "-0.001"], "lr=-0.001"),
    (["--task", "jsb", "--momentum", "1"], "momentum=1.0"),
    (["--task", "jsb", "--momentum", "-0.1"], "momentum=-0.1"),
    (["--task", "jsb", "--hidden", "0"], "hidden=0"),
    (["--lr", "0.1"], "--task is required"),
    (["--task", "memorisation", "--unroll", "5"], "unroll=5: applies to protocol jzs only"),
], ids=["unknown-task", "unknown-arch", "negative-lr", "momentum-1", "negative-momentum", "hidden-0",
        "no-task", "jzs-option-online"])
def test_bad_input_is_a_clear_error_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    assert main(["train", *args, "--out", str(out), "--threads", "1"]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_unreadable_checkpoint_and_ended_run_are_left_untouched(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.npz").write_bytes(b"not a zip file")
    assert main(["train", "--out", str(out), "--resume"]) == 2
    assert "unreadable checkpoint" in capsys.readouterr().err
    assert (out / "checkpoint.npz").read_bytes() == b"not a zip file"
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.npz"]
    (out / "record.json").write_text('{"outcome": "finished"}')
    assert main(["train", "--task", "jsb", "--out", str(out)]) == 2
    assert "already ended" in capsys.readouterr().err
    assert (out / "record.json").read_text() == '{"outcome": "finished"}'


def test_train_command_on_jsb_resumes_a_killed_run(data_env, tmp_path, capsys):
    """JSB through the command line: a run killed after epoch 1 is continued by --resume, whose
    options may not contradict the checkpoint."""
    out = tmp_path / "jsb"
    cfg = TrainConfig("jsb", hidden=3, lr=0.01, max_epochs=2)
    with pytest.raises(Killed):
        train(cfg, out, threads=1, on_epoch=_raise_killed)
    assert main(["train", "--out", str(out), "--resume", "--lr", "0.5"]) == 2
    assert "differ from it" in capsys.readouterr().err
    assert main(["train", "--out", str(out), "--resume", "--task", "jsb", "--threads", "1"]) == 0
    line = capsys.readouterr().out
    assert "jsb V N=3 lr=0.01" in line and "finished after 2 epoch(s)" in line
    record = read_strict_json(out / "record.json")
    assert record["sessions"] == 2 and record["task"]["sequences"] == {"train": 229, "valid": 76, "test": 77}
    assert record["network"]["n_params"] == Network("V", 88, 3, 88).n_params
    assert 0 < record["test_metric"] < 88 * np.log(2) and record["environment"]["threads"] == 1


def test_float32_runs_in_float32(tmp_path):
    record = train(config("softmax", dtype="float32", max_epochs=2), tmp_path / "run",
                   data=synthetic_task("softmax"), threads=2)
    assert record["outcome"] == "finished" and record["network"]["dtype"] == "float32"
    assert Network.from_file(tmp_path / "run" / "params.npz").flat.dtype == np.float32
    assert rundir.load_checkpoint(tmp_path / "run" / "checkpoint.npz")[0]["velocity"].dtype == np.float32


def test_master_weights_keep_the_updates_that_float32_rounds_away():
    start, grad = np.full(3, 0.1, np.float32), np.full(3, 1e-3, np.float32)
    lr, m = 1e-6, 0.9             # Θ moves ≤ ~1e-9 a step: under half a float32 ulp of 0.1 (3.7e-9)
    pure, network = Momentum(start.copy(), lr, m), start.copy()
    mixed, exact = MasterMomentum(network, lr, m), Momentum(start.astype(np.float64), lr, m)
    for _ in range(200):
        pure.step(grad), mixed.step(grad), exact.step(grad.astype(np.float64))
    assert np.array_equal(pure.theta, start)                           # float32 alone: frozen
    assert mixed.theta.dtype == np.float64 and np.array_equal(mixed.theta, exact.theta)
    assert np.array_equal(network, exact.theta.astype(np.float32)) and np.all(network < start)


@pytest.mark.parametrize("kind", [Momentum, MasterMomentum])
def test_set_lr_changes_the_step_size_and_keeps_the_velocity(kind):
    m, grad = 0.9, np.array([0.5, -1.0, 2.0], np.float32)
    opt = kind(np.full(3, 0.1, np.float32), 0.1, m)
    opt.step(grad)
    theta, velocity = opt.theta.copy(), opt.velocity.copy()
    opt.set_lr(0.05)
    assert opt.eps == (1.0 - m) * 0.05
    eps = (1.0 - m) * 0.05
    opt.step(grad)
    expected_velocity = m * velocity - eps * grad
    assert np.allclose(opt.velocity, expected_velocity, rtol=1e-6)
    assert np.allclose(opt.theta, theta + m * expected_velocity - eps * grad, rtol=1e-6)


def test_mixed_runs_float32_kernels_on_float64_master_weights_and_resumes_bit_for_bit(tmp_path):
    data = synthetic_task("bernoulli")
    cfg = config("bernoulli", dtype="mixed", noise=0.3, max_epochs=4)
    whole = train(cfg, tmp_path / "whole", data=data, threads=1)

    def on_epoch(epoch, history):
        if epoch == 2:
            raise Killed
    with pytest.raises(Killed):
        train(cfg, tmp_path / "cut", data=data, threads=1, on_epoch=on_epoch)
    resumed = train(cfg, tmp_path / "cut", data=data, threads=1, resume=True)

    assert whole["config"]["dtype"] == "mixed" and whole["network"]["dtype"] == "float32"
    assert resumed["sessions"] == 2 and resumed["test_metric"] == whole["test_metric"]
    assert resumed["history"]["train_loss"] == whole["history"]["train_loss"]
    final = [rundir.load_checkpoint(tmp_path / run / "checkpoint.npz")[0] for run in ("whole", "cut")]
    for name in ("params", "velocity"):                               # the float64 master and velocity
        assert final[0][name].dtype == np.float64 and np.array_equal(final[0][name], final[1][name]), name
    best = [Network.from_file(tmp_path / run / "params.npz").flat for run in ("whole", "cut")]
    assert best[0].dtype == np.float32 and np.array_equal(best[0], best[1])


def test_the_train_command_offers_mixed_precision_and_says_what_it_is(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "float32 kernels with float64 master weights" in " ".join(capsys.readouterr().out.split())
    out = tmp_path / "run"
    assert main(["train", "--task", "memorisation", "--arch", "gru", "--hidden", "4", "--dtype", "mixed",
                 "--max-epochs", "1", "--threads", "1", "--out", str(out)]) == 0
    record = json.loads((out / "record.json").read_text())
    assert record["config"]["dtype"] == "mixed" and record["network"]["dtype"] == "float32"
    assert rundir.load_checkpoint(out / "checkpoint.npz")[0]["params"].dtype == np.float64   # the master


# ------------------------------------------------------------------------------------ run directories
@pytest.mark.parametrize("files, resume, message", [
    ({"record.json": '{"outcome": "finished"}'}, False, r"already ended \(finished\); to run it again delete {out}"),
    ({"record.json": '{"outcome": "diverged"}', "checkpoint.npz": "x"}, True, r"already ended \(diverged\)"),
    ({"record.json": "{not json"}, False, "cannot read the JSON record.*; delete {out} to start the run again"),
    ({"checkpoint.npz": "x"}, False, "continue it with --resume, or delete {out} to start it again"),
    ({"record.json": '{"outcome": "failed"}', "checkpoint.npz": "x"}, False,
     "failed after its last checkpoint; continue it with --resume, or delete {out}"),
    ({}, True, "no checkpoint to resume from .*without --resume"),
    ({"record.json": '{"outcome": "failed"}'}, True, "no checkpoint to resume from .*without --resume"),
], ids=["ended", "diverged-resume", "unreadable-record", "started", "failed-with-checkpoint", "empty-resume",
        "failed-before-checkpoint-resume"])
def test_every_refused_run_directory_says_what_to_do_and_is_left_untouched(tmp_path, files, resume, message):
    out = tmp_path / "run"
    out.mkdir()
    for name, text in files.items():
        (out / name).write_text(text)
    with pytest.raises(ValueError, match=message.format(out=str(out).replace("\\", "\\\\"))):
        train(config(), out, data=synthetic_task(), threads=1, resume=resume)
    assert {p.name: p.read_text() for p in out.iterdir()} == files


def test_a_run_that_failed_before_its_first_checkpoint_starts_afresh(monkeypatch, tmp_path, capsys):
    out, data = tmp_path / "run", synthetic_task()
    original = Network.loss_and_grad

    def broken(self, x, target):
        raise RuntimeError("out of memory")
    monkeypatch.setattr(Network, "loss_and_grad", broken)
    assert train(config(), out, data=data, threads=1)["outcome"] == "failed"
    assert sorted(p.name for p in out.iterdir()) == ["record.json"]
    assert main(["train", "--out", str(out), "--resume"]) == 2             # nothing to resume ...
    assert "start the run afresh: the same command without --resume" in capsys.readouterr().err
    monkeypatch.setattr(Network, "loss_and_grad", original)
    record = train(config(), out, data=data, threads=1)                    # ... but a fresh start works
    assert record["outcome"] == "finished" and record["sessions"] == 1
    assert read_strict_json(out / "record.json") == json.loads(json.dumps(record))


def test_resume_reads_the_checkpoint_arrays_once(monkeypatch, tmp_path):
    data = synthetic_task()
    with pytest.raises(Killed):
        train(config(), tmp_path / "run", data=data, threads=1, on_epoch=_raise_killed)
    loads = []
    original = rundir.load_checkpoint

    def counting(path, arrays=True):
        loads.append(arrays)
        return original(path, arrays)
    monkeypatch.setattr(rundir, "load_checkpoint", counting)
    monkeypatch.setattr("lstm_scratch.train.load_task", lambda *args: data)
    assert main(["train", "--out", str(tmp_path / "run"), "--resume", "--threads", "1"]) == 0
    assert loads == [False, True]          # the configuration (JSON state only), then the arrays


# ------------------------------------------------------------------------------------ bad data, up front
def _spoil(data, split, index, x=None, y=None, **fields):
    """``data`` with sequence ``index`` of ``split`` replaced (and the split's ids made visible)."""
    import dataclasses
    old = getattr(data, split)
    inputs, targets = list(old.inputs), list(old.targets)
    if x is not None:
        inputs[index] = x(inputs[index])
    if y is not None:
        targets[index] = y(targets[index])
    new = dataclasses.replace(old, inputs=inputs, targets=targets,
                              ids=[f"{split}-{i}" for i in range(len(inputs))], **fields)
    return data._replace(**{split: new})


BAD_DATA = {
    "ctc-target-longer-than-input": ("ctc", "valid", 2, None, lambda y: np.array([1, 1, 2, 2, 3, 3, 1, 2]),
                                     r"valid split, sequence 2 \(id 'valid-2'\): the CTC target's 8 labels "
                                     r"with 3 adjacent repeats need at least 11 frames, but the input has only"),
    "ctc-blank-in-target": ("ctc", "train", 5, None, lambda y: np.array([2, 0]),
                            r"train split, sequence 5 \(id 'train-5'\): label 0 at position 1 is the CTC blank"),
    "ctc-label-out-of-range": ("ctc", "test", 1, None, lambda y: np.array([4]),
                               r"test split, sequence 1 .*label 4 at position 0 is out of range"),
    "softmax-label-out-of-range": ("softmax", "train", 3, None, lambda y: np.where(np.arange(len(y)) == 4, 4, y),
                                   r"train split, sequence 3 \(id 'train-3'\): softmax target: label 4 at "
                                   r"frame 4 is out of range.*\[0, 3\]"),
    "softmax-float-labels": ("softmax", "valid", 0, None, lambda y: y.astype(float),
                             r"valid split, sequence 0 .*labels must be integers"),
    "softmax-wrong-length": ("softmax", "test", 3, None, lambda y: y[:-1],
                             r"test split, sequence 3 .*labels must have shape"),
    "bernoulli-wrong-shape": ("bernoulli", "test", 0, None, lambda y: y[:, :3],
                              r"test split, sequence 0 \(id 'test-0'\): Bernoulli targets must be a real array "
                              r"of shape \(\d+, 4\), one row per input frame; got shape \(\d+, 3\)"),
    "bernoulli-not-a-probability": ("bernoulli", "train", 7, None, lambda y: y * 2,
                                    r"train split, sequence 7 .*target 2.0 at frame \d+, unit \d+ is not in"),
    "nan-input": ("bernoulli", "valid", 1, lambda x: np.where(np.arange(len(x))[:, None] == 3, np.nan, x), None,
                  r"valid split, sequence 1 .*input nan at frame 3, input 0 is not finite"),
    "wrong-input-width": ("softmax", "train", 0, lambda x: x[:, :2], None,
                          r"train split, sequence 0 .*shape \(T, 3\); got shape \(\d+, 2\)"),
    "empty-input": ("softmax", "train", 2, lambda x: x[:0], lambda y: y[:0],
                    r"train split, sequence 2 .*no frames"),
}


@pytest.mark.parametrize("case", BAD_DATA)
def test_bad_data_is_refused_before_anything_is_written_naming_split_sequence_and_value(tmp_path, case):
    loss, split, index, x, y, message = BAD_DATA[case]
    data = _spoil(synthetic_task(loss), split, index, x, y)
    with pytest.raises(ValueError, match=message + ".*fix or remove that sequence"):
        train(config(loss), tmp_path / "run", data=data, threads=1)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("change, message", [
    (lambda d: d._replace(valid=_spoil(d, "valid", 0, n_in=5).valid),
     r"the valid split has n_in=5 \(train: 4\); all three splits must come from the same task"),
    (lambda d: d._replace(test=_spoil(d, "test", 0, loss="softmax").test),
     r"the test split has loss='softmax' \(train: 'bernoulli'\)"),
    (lambda d: d._replace(test=d.test.__class__(**{**vars(d.test), "inputs": [], "targets": [], "ids": []})),
     "the test split has no sequences; every split needs at least one"),
], ids=["n_in-disagrees", "loss-disagrees", "empty-split"])
def test_splits_that_do_not_fit_together_are_named(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        train(config(), tmp_path / "run", data=change(synthetic_task()), threads=1)
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------------ bad arguments, up front
@pytest.mark.parametrize("arguments, message", [
    (dict(threads=0), "threads=0: give the number of cores as an integer ≥ 1"),
    (dict(threads=1.5), "threads=1.5"),
    (dict(threads=True), "threads=True"),
    (dict(out=None, resume=True), "resume=True needs the run directory"),
    (dict(resume="yes"), "resume='yes': must be True or False"),
    (dict(progress="on"), "progress='on'"),
    (dict(on_epoch=3), "on_epoch=3: must be a function"),
    (dict(config={"task": "jsb"}), "pass a TrainConfig"),
    (dict(out=3), "out=3: give the run directory as a path"),
], ids=["threads-0", "threads-float", "threads-bool", "resume-without-out", "resume-not-bool", "progress",
        "on_epoch", "config-dict", "out-int"])
def test_bad_arguments_are_refused_before_data_is_loaded_or_anything_written(monkeypatch, tmp_path, arguments,
                                                                              message):
    def no_loading(*args, **kwargs):
        raise AssertionError("the data were loaded before the arguments were checked")
    monkeypatch.setattr("lstm_scratch.train.load_task", no_loading)
    arguments = {"config": config(), "out": tmp_path / "run", **arguments}
    with pytest.raises(ValueError, match=message):
        train(arguments.pop("config"), arguments.pop("out"), **arguments)
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------------ rough edges (issue 8)
def _ctrl_c_inside_a_kernel(epoch, history):
    """What Ctrl-C inside a Numba kernel looks like: the dispatcher's SystemError with the
    KeyboardInterrupt as its context."""
    if epoch == 2:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise SystemError("CPUDispatcher(<function lstm_forward>) returned a result with an exception set")


def test_ctrl_c_inside_a_kernel_is_an_interruption_not_a_failure(monkeypatch, tmp_path, capsys):
    out, data = tmp_path / "run", synthetic_task()
    with pytest.raises(KeyboardInterrupt):
        train(config(), out, data=data, threads=1, on_epoch=_ctrl_c_inside_a_kernel)
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.npz"]            # no 'failed' record
    assert rundir.load_checkpoint(out / "checkpoint.npz")[1]["history"]["valid_metric"]
    monkeypatch.setattr("lstm_scratch.train.load_task", lambda *args: data)
    original = train

    def interrupted_train(*args, **kwargs):
        return original(*args, **kwargs, on_epoch=_ctrl_c_inside_a_kernel)
    monkeypatch.setattr("lstm_scratch.train.train", interrupted_train)
    assert main(["train", "--task", "synthetic-bernoulli", "--out", str(tmp_path / "cli"), "--threads", "1",
                 "--hidden", "4"]) == 130
    err = capsys.readouterr().err
    assert "interrupted:" in err and "--resume" in err and "SystemError" not in err
    assert not (tmp_path / "cli" / "record.json").exists()


SIGINT_TARGET = """
import sys
sys.path.insert(0, sys.argv[1])
import lstm_scratch.train
from test_train import synthetic_task
data = synthetic_task(sizes=(60, 4, 4))
lstm_scratch.train.load_task = lambda *args: data
from lstm_scratch.cli import main
sys.exit(main(["train", "--task", "synthetic-bernoulli", "--hidden", "30", "--max-epochs", "100000",
               "--patience", "100000", "--out", sys.argv[2], "--threads", "1"]))
"""


@pytest.mark.parametrize("delay", [0.0, 0.07, 0.19], ids=["at-checkpoint", "delay-0.07s", "delay-0.19s"])
def test_a_real_sigint_always_ends_in_the_interrupted_path(tmp_path, delay):
    """SIGINT to a training process, at several moments of an epoch (most of which is spent inside
    Numba kernels): always exit 130 with the resume hint, never a 'failed' record."""
    import signal
    import time
    out = tmp_path / "run"
    # SIGINT at its default in the child, so Python turns it into KeyboardInterrupt even when the test
    # itself runs in the background (where the shell ignores SIGINT, and children inherit that).
    process = subprocess.Popen([sys.executable, "-c", SIGINT_TARGET, str(Path(__file__).parent), str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 600
        while not (out / "checkpoint.npz").exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.02)
        time.sleep(delay)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "interrupted:" in stderr and "--resume" in stderr and "Traceback" not in stderr
    assert not (out / "record.json").exists()


@pytest.mark.parametrize("kind", [tuple, list])
def test_data_as_a_plain_sequence_of_three_splits(tmp_path, kind):
    data = synthetic_task()
    reference = train(config(), data=data, threads=1)
    record = train(config(), tmp_path / "run", data=kind(data), threads=1)
    assert record["history"]["valid_metric"] == reference["history"]["valid_metric"]
    with pytest.raises(ValueError, match="pass the three splits, TaskData.*got list"):
        train(config(), data=list(data)[:2], threads=1)


def test_architecture_names_are_normalised_once(tmp_path, monkeypatch):
    cfg = config(arch="cifg")
    assert cfg.arch == "CIFG" and cfg == config(arch="CIFG")
    record = train(cfg, tmp_path / "run", data=synthetic_task(), threads=1)
    assert record["config"]["arch"] == record["network"]["arch"] == "CIFG"
    monkeypatch.setattr("lstm_scratch.train.load_task", lambda *args: synthetic_task())
    with pytest.raises(Killed):
        train(config(arch="gru"), tmp_path / "cli", data=synthetic_task(), threads=1, on_epoch=_raise_killed)
    assert main(["train", "--out", str(tmp_path / "cli"), "--resume", "--arch", "Gru", "--threads", "1"]) == 0


def test_a_finished_run_extended_equals_the_longer_run_bit_for_bit(tmp_path, capsys, monkeypatch):
    data, out = synthetic_task(), tmp_path / "run"
    longer = train(config(max_epochs=6, noise=0.3), tmp_path / "longer", data=data, threads=1)
    assert train(config(max_epochs=4, noise=0.3), out, data=data, threads=1)["outcome"] == "finished"
    with pytest.raises(ValueError, match="already ended"):                  # nothing raised: still ended
        train(config(max_epochs=4, noise=0.3), out, data=data, threads=1, resume=True)
    with pytest.raises(ValueError, match=r"extended, not shortened.*'max_epochs': \(4, 3\)"):
        train(config(max_epochs=3, noise=0.3), out, data=data, threads=1, resume=True)
    with pytest.raises(ValueError, match=r"another configuration.*'lr'.*only max_epochs and patience"):
        train(config(max_epochs=6, noise=0.3, lr=0.2), out, data=data, threads=1, resume=True)
    extended = train(config(max_epochs=6, noise=0.3), out, data=data, threads=1, resume=True)
    assert extended["extensions"] == [{"at_epoch": 4, "max_epochs": 6, "patience": 15}]
    assert extended["sessions"] == 2 and extended["config"]["max_epochs"] == 6
    for key in ("outcome", "epochs", "best_epoch", "test_metric"):
        assert extended[key] == longer[key], key
    assert extended["history"]["train_loss"] == longer["history"]["train_loss"]
    assert read_strict_json(out / "record.json")["extensions"] == extended["extensions"]
    # through the command line: raising --patience continues an early-stopped run
    monkeypatch.setattr("lstm_scratch.train.load_task", lambda *args: data)
    assert main(["train", "--out", str(out), "--resume", "--max-epochs", "8", "--threads", "1"]) == 0
    assert "finished after 8 epoch(s)" in capsys.readouterr().out
    assert main(["train", "--out", str(out), "--resume", "--max-epochs", "7"]) == 2
    assert "extended, not shortened" in capsys.readouterr().err
    assert len(read_strict_json(out / "record.json")["extensions"]) == 2


def test_an_early_stopped_run_that_would_stop_again_is_refused(monkeypatch, tmp_path):
    data, out = synthetic_task(), tmp_path / "run"
    script = iter([5.0, 4.0, 4.5, 4.6] + [9.0] * 20)
    monkeypatch.setattr(Network, "evaluate", lambda self, inputs, targets, threads=1: next(script))
    assert train(config(patience=2, max_epochs=10), out, data=data, threads=1)["outcome"] == "early_stopped"
    with pytest.raises(ValueError, match="would end again at once.*raise --max-epochs above 4 and --patience above 2"):
        train(config(patience=2, max_epochs=20), out, data=data, threads=1, resume=True)
    record = train(config(patience=4, max_epochs=10), out, data=data, threads=1, resume=True)
    assert record["outcome"] == "early_stopped" and record["epochs"] == 6 and record["best_epoch"] == 2


def test_a_network_too_big_for_memory_is_refused_before_allocating(monkeypatch, tmp_path, capsys):
    data = synthetic_task()
    with pytest.raises(ValueError, match=r"hidden=40000: a V network of 6,401,080,004 parameters needs "
                                         r"about \d+\.\d GiB in float64 .*choose a smaller --hidden"):
        train(config(hidden=40000), tmp_path / "run", data=data, threads=1)
    assert not (tmp_path / "run").exists()

    def out_of_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 47.8 GiB")
    monkeypatch.setattr(Network, "__init__", out_of_memory)
    with pytest.raises(ValueError, match="hidden=4: a V network of .* parameters needs about"):
        train(config(hidden=4), tmp_path / "small", data=data, threads=1)
    assert not (tmp_path / "small" / "record.json").exists()


def test_a_non_finite_forget_bias_is_refused(tmp_path, capsys):
    for value in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match=f"forget_bias={value}: the initial forget-gate bias must be a finite number"):
            config(forget_bias=value)
    assert main(["train", "--task", "jsb", "--forget-bias", "nan", "--out", str(tmp_path / "run")]) == 2
    assert "forget_bias=nan" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_the_summary_line_says_synthetic(tmp_path):
    from lstm_scratch.records import summary_line
    record = train(config(max_epochs=1), data=synthetic_task(), threads=1)
    assert summary_line(record).startswith("synthetic-bernoulli [SYNTHETIC] V N=4")
    real = {**record, "task": {**record["task"], "synthetic": False}}
    assert "SYNTHETIC" not in summary_line(real)
