"""Framewise losses against direct formulas and finite differences, at ±1000, on hand-made metric
cases, and with bad inputs."""
import math

import numpy as np
import pytest

from lstm_scratch.ctc import ctc_loss
from lstm_scratch.gradcheck import numerical_gradient
from lstm_scratch.losses import (bernoulli_nll, bernoulli_nll_fast, frame_errors, framewise_error, log_softmax,
                                 nll_per_step, sigmoid, softmax, softmax_xent)
from lstm_scratch.objectives import objective

T, K = 7, 5


def random_case(seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(T, K))
    labels = rng.integers(0, K, T)
    targets = (rng.random((T, K)) < 0.3).astype(np.float64)
    return logits, labels, targets


def test_softmax_xent_matches_direct_formula():
    logits, labels, _ = random_case()
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    loss, grad = softmax_xent(logits, labels)
    assert loss == pytest.approx(-np.log(probs[np.arange(T), labels]).sum(), rel=1e-13)
    np.testing.assert_allclose(grad, probs - np.eye(K)[labels], atol=1e-14)


def test_bernoulli_nll_matches_direct_formula():
    logits, _, targets = random_case()
    p = 1 / (1 + np.exp(-logits))
    loss, grad = bernoulli_nll(logits, targets)
    assert loss == pytest.approx(-(targets * np.log(p) + (1 - targets) * np.log(1 - p)).sum(), rel=1e-13)
    np.testing.assert_allclose(grad, p - targets, atol=1e-14)


@pytest.mark.parametrize("name", ["softmax", "bernoulli"])
def test_gradient_matches_finite_differences(name):
    logits, labels, targets = random_case(seed=1)
    target = labels if name == "softmax" else targets
    fn = objective(name).loss
    _, grad = fn(logits, target)
    numeric = numerical_gradient(lambda: fn(logits, target)[0], logits)    # perturbs logits in place
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", ["softmax", "bernoulli", "ctc"])
def test_logits_of_1000_give_finite_losses_and_gradients(name, dtype):
    logits, labels, targets = random_case(seed=2)
    logits = (1000.0 * np.sign(logits)).astype(dtype)
    target = {"softmax": labels, "bernoulli": targets, "ctc": [1, 2, 2]}[name]
    loss, grad = objective(name).loss(logits, target)
    assert np.isfinite(loss) and np.all(np.isfinite(grad)) and grad.dtype == dtype


def test_saturated_losses_have_exact_values():
    # a wrong class by a margin of 2000 costs 2000 nats; a confident right one costs 0
    loss, grad = softmax_xent(np.array([[1000.0, -1000.0], [1000.0, -1000.0]]), [1, 0])
    assert loss == 2000.0
    np.testing.assert_array_equal(grad, [[1.0, -1.0], [0.0, 0.0]])
    loss, grad = bernoulli_nll(np.array([[1000.0, -1000.0, 1000.0]]), np.array([[0, 0, 1]]))
    assert loss == 1000.0
    np.testing.assert_array_equal(grad, [[1.0, 0.0, 0.0]])


def test_output_helpers_are_stable():
    a = np.array([[1000.0, -1000.0, 0.0]])
    np.testing.assert_array_equal(sigmoid(a), [[1.0, 0.0, 0.5]])
    np.testing.assert_array_equal(softmax(a), [[1.0, 0.0, 0.0]])
    assert log_softmax(a)[0, 1] == -2000.0


def test_dtype_is_preserved():
    logits, labels, targets = random_case(seed=3)
    for fn, target in [(softmax_xent, labels), (bernoulli_nll, targets)]:
        loss32, grad32 = fn(logits.astype(np.float32), target)
        loss64, grad64 = fn(logits, target)
        assert grad32.dtype == np.float32 and isinstance(loss32, float)
        assert loss32 == pytest.approx(loss64, rel=1e-5)
        np.testing.assert_allclose(grad32, grad64, atol=1e-6)


def test_framewise_error_counts_wrong_argmax_frames():
    logits = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 5.0], [1.0, 0.0, 0.0]])
    assert frame_errors(logits, [0, 1, 1, 2]) == 2
    # pooled over all frames: 2 wrong of 4, then 1 wrong of 1 → 3 / 5 = 60 %
    assert framewise_error([logits, logits[:1]], [[0, 1, 1, 2], [2]]) == pytest.approx(60.0)
    assert framewise_error([logits], [[0, 1, 2, 0]]) == 0.0


def test_nll_per_step_of_known_predictions():
    # σ(0) = 1/2 for all 88 notes: ln 2 per note whatever the target → 88 ln 2 per step
    targets = (np.random.default_rng(0).random((10, 88)) < 0.1).astype(float)
    assert nll_per_step([np.zeros((10, 88))], [targets]) == pytest.approx(88 * math.log(2))
    # p = 0.8 on each of 2 notes: one step right on both, one step wrong on one → pooled mean
    a = math.log(4.0)                                           # σ(ln 4) = 0.8
    logits = np.full((2, 2), a)
    targets = np.array([[1, 1], [1, 0]])
    expected = (2 * -math.log(0.8) + (-math.log(0.8) - math.log(0.2))) / 2
    assert nll_per_step([logits], [targets]) == pytest.approx(expected)
    assert nll_per_step([logits, logits[:1]], [targets, targets[:1]]) == pytest.approx(
        (2 * expected - 2 * math.log(0.8)) / 3)


def test_summed_loss_agrees_with_per_step_metric():
    logits, _, targets = random_case(seed=4)
    assert bernoulli_nll(logits, targets)[0] / T == pytest.approx(nll_per_step([logits], [targets]))


BAD_INPUTS = {
    "softmax-label-too-large": (softmax_xent, lambda l, y, z: (l, np.r_[y[:-1], K]),
                                f"label {K} at frame {T - 1} is out of range"),
    "softmax-label-negative": (softmax_xent, lambda l, y, z: (l, np.r_[-1, y[1:]]),
                               "label -1 at frame 0 is out of range"),
    "softmax-labels-too-short": (softmax_xent, lambda l, y, z: (l, y[:-1]),
                                 rf"must have shape \({T},\)"),
    "softmax-labels-float": (softmax_xent, lambda l, y, z: (l, y.astype(float)), "must be integers"),
    "softmax-logits-1d": (softmax_xent, lambda l, y, z: (l[0], y[:1]), "2-D float array"),
    "bernoulli-shape": (bernoulli_nll, lambda l, y, z: (l, z[:, :-1]),
                        rf"targets of shape \({T}, {K - 1}\) do not match the output of shape "
                        rf"\({T}, {K}\)"),
    "bernoulli-value": (bernoulli_nll, lambda l, y, z: (l, np.where(np.arange(K) == 2, 2.0, z)),
                        "target 2.0 at frame 0, unit 2 is not a probability"),
    "bernoulli-nan": (bernoulli_nll, lambda l, y, z: (l, np.where(np.arange(K) == 1, np.nan, z)),
                      "target nan at frame 0, unit 1"),
    "bernoulli-logits-int": (bernoulli_nll, lambda l, y, z: (l.astype(int), z), "2-D float array"),
}


@pytest.mark.parametrize("bad", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_inputs_raise_clear_errors(bad):
    fn, make_args, message = bad
    logits, labels, targets = random_case()
    with pytest.raises(ValueError, match=message):
        fn(*make_args(logits, labels, targets))


def test_metric_inputs_are_checked():
    logits, labels, targets = random_case()
    with pytest.raises(ValueError, match="LIST of"):
        framewise_error(logits, labels)
    with pytest.raises(ValueError, match="2 output sequences but 1 targets"):
        nll_per_step([logits, logits], [targets])
    with pytest.raises(ValueError, match="at least one frame"):
        framewise_error([np.zeros((0, K))], [np.zeros(0, dtype=int)])


def test_loss_function_names():
    assert objective("ctc").loss is ctc_loss
    assert objective("softmax").loss is softmax_xent
    with pytest.raises(ValueError, match="unknown loss 'mse'; choose one of"):
        objective("mse")


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_fast_bernoulli_nll_is_the_reference_bit_for_bit(dtype):
    rng = np.random.default_rng(7)
    logits = rng.normal(-1.0, 4.0, (40, 88)).astype(dtype)
    logits[0, :7] = [1000.0, -1000.0, 0.0, -0.0, 30.0, -800.0, 1e-30]      # saturation, zeros, tiny
    piano_roll, probabilities = (rng.random((40, 88)) < 0.1), rng.random((40, 88))
    for targets in (piano_roll.astype(dtype), probabilities.astype(dtype), probabilities):
        loss, grad = bernoulli_nll(logits, targets)
        fast_loss, fast_grad = bernoulli_nll_fast(logits, targets)    # float64 targets of float32
        assert fast_loss == loss and fast_grad.dtype == grad.dtype    # logits: the reference's path
        np.testing.assert_array_equal(fast_grad, grad)
    assert objective("bernoulli").loss is bernoulli_nll_fast


@pytest.mark.parametrize("case", [k for k in BAD_INPUTS if k.startswith("bernoulli")])
def test_fast_bernoulli_nll_raises_what_the_reference_raises(case):
    _, make_args, message = BAD_INPUTS[case]
    logits, labels, targets = random_case()
    with pytest.raises(ValueError, match=message):
        bernoulli_nll_fast(*make_args(logits, labels, targets))
