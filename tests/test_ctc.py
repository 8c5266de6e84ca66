"""CTC loss and gradient against brute force, closed forms, finite differences and PyTorch; decoding
and edit-distance metrics on hand-made cases; bad inputs."""
import itertools
import math

import numpy as np
import pytest

from lstm_scratch.ctc import (best_path, character_error_rate, ctc_loss, edit_distance, min_frames)
from lstm_scratch.gradcheck import numerical_gradient
from lstm_scratch.losses import log_softmax

METHODS = ["linear", "log", "auto"]

# (T, K, labels, blank): every case with T ≤ 6 and at most 3 classes + blank.
SMALL_CASES = {
    "T1-empty": (1, 2, [], 0),
    "T5-empty": (5, 4, [], 0),
    "T3-one": (3, 2, [1], 0),
    "T4-two": (4, 3, [1, 2], 0),
    "T5-repeat": (5, 3, [1, 1], 0),
    "T6-aba": (6, 4, [1, 2, 1], 0),
    "T6-triple": (6, 4, [2, 2, 2], 0),
    "T6-cbb": (6, 4, [3, 1, 1], 0),
    "T3-tight-repeat": (3, 2, [1, 1], 0),
    "T6-blank-last": (6, 4, [0, 1, 1], 3),
}


def brute_force_log_p(logits, labels, blank):
    """ln p(l | x) as log-sum-exp over every path of length T whose collapse is l."""
    logy = log_softmax(np.asarray(logits, dtype=np.float64))
    n_frames, n_classes = logy.shape
    target = tuple(labels)
    terms = []
    for path in itertools.product(range(n_classes), repeat=n_frames):
        merged = [k for i, k in enumerate(path) if i == 0 or k != path[i - 1]]
        if tuple(k for k in merged if k != blank) == target:
            terms.append(sum(logy[t, k] for t, k in enumerate(path)))
    return np.logaddexp.reduce(terms)


def random_logits(n_frames, n_classes, scale=2.0, seed=0):
    return np.random.default_rng(seed).normal(scale=scale, size=(n_frames, n_classes))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", SMALL_CASES.values(), ids=SMALL_CASES.keys())
def test_loss_equals_brute_force_sum_over_alignments(case, method):
    n_frames, n_classes, labels, blank = case
    logits = random_logits(n_frames, n_classes, seed=n_frames + 7 * len(labels))
    loss, grad = ctc_loss(logits, labels, blank=blank, method=method)
    assert loss == pytest.approx(-brute_force_log_p(logits, labels, blank), rel=1e-12, abs=1e-12)
    # softmax minus a posterior over the classes: every frame's gradient sums to zero
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-12)


@pytest.mark.parametrize("method", ["linear", "log"])
@pytest.mark.parametrize("case", ["T4-two", "T6-aba", "T6-triple", "T5-empty", "T6-blank-last"])
def test_gradient_matches_finite_differences(case, method):
    n_frames, n_classes, labels, blank = SMALL_CASES[case]
    logits = random_logits(n_frames, n_classes, seed=3)
    _, grad = ctc_loss(logits, labels, blank=blank, method=method)
    numeric = numerical_gradient(lambda: ctc_loss(logits, labels, blank=blank, method=method)[0], logits)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


def n_alignments(n_frames, labels):
    """Paths b^a₀ l₁^c₁ b^a₁ … l_L^c_L b^a_L with c ≥ 1, a ≥ 0, and a ≥ 1 between repeats: stars and
    bars give C(T + L − r, 2L) with r adjacent repeats."""
    n_labels = len(labels)
    repeats = min_frames(labels) - n_labels
    return math.comb(n_frames + n_labels - repeats, 2 * n_labels)


UNIFORM_CASES = {
    "T6-K4-aba": (6, 4, [1, 2, 1]),
    "T6-K3-repeat": (6, 3, [1, 1]),
    "T50-K5-empty": (50, 5, []),
    "T80-K6-mixed": (80, 6, [1, 2, 2, 3, 5, 5, 5, 1]),
    "T700-K82-L40": (700, 82, list(np.random.default_rng(1).integers(1, 82, 40))),
    "T700-K82-L400-repeats": (700, 82, [1, 1, 1, 2] * 100),
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", UNIFORM_CASES.values(), ids=UNIFORM_CASES.keys())
def test_uniform_outputs_match_closed_form(case, method):
    """Equal logits: every path has probability K^−T, so loss = T ln K − ln(number of valid paths)."""
    n_frames, n_classes, labels = case
    logits = np.full((n_frames, n_classes), 0.37)
    loss, _ = ctc_loss(logits, labels, method=method)
    expected = n_frames * math.log(n_classes) - math.log(n_alignments(n_frames, labels))
    assert loss == pytest.approx(expected, rel=1e-11)


def test_closed_form_count_agrees_with_brute_force():
    """The stars-and-bars count above is itself checked by enumeration."""
    for n_frames, n_classes, labels, blank in SMALL_CASES.values():
        logits = np.zeros((n_frames, n_classes))
        count = math.exp(brute_force_log_p(logits, labels, blank) + n_frames * math.log(n_classes))
        assert round(count) == n_alignments(n_frames, labels)


def test_linear_and_log_space_agree_on_a_long_sequence():
    logits = random_logits(300, 30, scale=4.0, seed=5)
    labels = np.random.default_rng(6).integers(1, 30, 60)
    loss_lin, grad_lin = ctc_loss(logits, labels, method="linear")
    loss_log, grad_log = ctc_loss(logits, labels, method="log")
    assert loss_lin == pytest.approx(loss_log, rel=1e-11)
    np.testing.assert_allclose(grad_lin, grad_log, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_agrees_with_torch(dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    for n_frames, n_classes, n_labels in [(30, 6, 8), (120, 20, 30), (50, 4, 0)]:
        logits = rng.normal(scale=3.0, size=(n_frames, n_classes)).astype(dtype)
        labels = rng.integers(1, n_classes, n_labels)
        labels[1::4] = labels[::4][:len(labels[1::4])]          # force some adjacent repeats
        loss, grad = ctc_loss(logits, labels)
        a = torch.tensor(logits.astype(np.float64), requires_grad=True)
        ref = torch.nn.functional.ctc_loss(
            torch.log_softmax(a, dim=1)[:, None, :], torch.tensor(labels)[None, :],
            torch.tensor([n_frames]), torch.tensor([n_labels]), blank=0, reduction="sum")
        ref.backward()
        assert grad.dtype == dtype
        tol = 1e-10 if dtype == np.float64 else 1e-5
        assert loss == pytest.approx(ref.item(), rel=tol)
        np.testing.assert_allclose(grad, a.grad.numpy(), atol=tol)


@pytest.mark.parametrize("case", ["T6-aba", "T6-triple", "T5-empty", "T3-tight-repeat"])
def test_logits_of_1000_are_finite_and_exact(case):
    n_frames, n_classes, labels, blank = SMALL_CASES[case]
    logits = 1000.0 * np.sign(random_logits(n_frames, n_classes, seed=2))
    for dtype in (np.float64, np.float32):
        loss, grad = ctc_loss(logits.astype(dtype), labels, blank=blank)
        assert np.isfinite(loss) and np.all(np.isfinite(grad))
        assert loss == pytest.approx(-brute_force_log_p(logits, labels, blank), rel=1e-12)


def test_linear_method_refuses_what_it_cannot_represent():
    logits = np.full((6, 3), 1000.0)
    logits[:, 1] = -1000.0                       # the label's y = e^-2000 underflows in linear space
    with pytest.raises(FloatingPointError, match="method='auto'"):
        ctc_loss(logits, [1, 1], method="linear")
    assert ctc_loss(logits, [1, 1])[0] == pytest.approx(-brute_force_log_p(logits, [1, 1], 0))


def test_large_logits_fall_back_to_log_space_on_a_long_sequence():
    logits = 1000.0 * np.sign(random_logits(200, 10, seed=4))
    labels = np.random.default_rng(4).integers(1, 10, 50)
    loss, grad = ctc_loss(logits, labels)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert loss == ctc_loss(logits, labels, method="log")[0]


def test_auto_is_exact_on_adversarial_logits():
    """Logits of scale 50–300 on short sequences: the linear recursion flushes paths to zero that
    matter later (once more than 100 nats off). "auto" must notice every time and match log space;
    "linear" must refuse those cases instead of returning a wrong loss."""
    rng = np.random.default_rng(0)
    refused = 0
    for _ in range(400):
        n_frames, n_classes = rng.integers(4, 30), rng.integers(2, 6)
        labels = rng.integers(1, n_classes, rng.integers(1, min(n_frames // 2, 8) + 1))
        if min_frames(labels) > n_frames:
            continue
        logits = rng.normal(scale=rng.choice([50, 100, 200, 300]), size=(n_frames, n_classes))
        exact = ctc_loss(logits, labels, method="log")[0]
        assert ctc_loss(logits, labels)[0] == pytest.approx(exact, rel=1e-9)
        try:
            assert ctc_loss(logits, labels, method="linear")[0] == pytest.approx(exact, rel=1e-9)
        except FloatingPointError:
            refused += 1
    assert refused > 0


def test_float32_matches_float64():
    logits = random_logits(40, 7, seed=9)
    labels = [1, 3, 3, 6, 2]
    loss64, grad64 = ctc_loss(logits, labels)
    loss32, grad32 = ctc_loss(logits.astype(np.float32), labels)
    assert grad32.dtype == np.float32
    assert loss32 == pytest.approx(loss64, rel=1e-6)
    np.testing.assert_allclose(grad32, grad64, atol=1e-6)


def test_impossible_alignment_raises_or_gives_inf():
    logits = random_logits(3, 4)
    with pytest.raises(ValueError, match="need at least 4 frames, but the output has only 3"):
        ctc_loss(logits, [1, 1, 2])
    loss, grad = ctc_loss(logits.astype(np.float32), [1, 1, 2], zero_infinity=True)
    assert loss == math.inf and grad.dtype == np.float32 and not grad.any()
    # exactly enough frames is possible: a single path
    assert np.isfinite(ctc_loss(random_logits(4, 4), [1, 1, 2])[0])


def test_nan_logits_give_nan_not_an_exception():
    logits = random_logits(5, 3)
    logits[2, 1] = np.nan
    loss, grad = ctc_loss(logits, [1, 2])
    assert math.isnan(loss) and np.isnan(grad).all()


BAD_INPUTS = {
    "blank-inside-labels": (dict(labels=[1, 0, 2]), "position 1 is the blank"),
    "blank-inside-labels-nonzero-blank": (dict(labels=[1, 3], blank=3), "position 1 is the blank"),
    "label-too-large": (dict(labels=[1, 4]), "label 4 at position 1 is out of range"),
    "label-negative": (dict(labels=[-1]), "label -1 at position 0 is out of range"),
    "labels-2d": (dict(labels=[[1, 2]]), "1-D label sequence"),
    "labels-float": (dict(labels=[1.0, 2.0]), "must be integers"),
    "blank-out-of-range": (dict(labels=[1], blank=4), "blank index 4"),
    "logits-1d": (dict(logits=np.zeros(4)), "2-D float array"),
    "logits-int": (dict(logits=np.zeros((4, 4), dtype=int)), "2-D float array"),
    "no-frames": (dict(logits=np.zeros((0, 4))), "no frames"),
    "unknown-method": (dict(method="fast"), "unknown CTC method"),
}


@pytest.mark.parametrize("bad", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_inputs_raise_clear_errors(bad):
    kwargs, message = bad
    args = dict(logits=random_logits(6, 4), labels=[1, 2]) | kwargs
    with pytest.raises(ValueError, match=message):
        ctc_loss(**args)


@pytest.mark.parametrize("path, expected", [
    ([0, 1, 1, 0, 0, 1], [1, 1]),
    ([1, 1, 2, 2, 2, 1], [1, 2, 1]),
    ([0, 0, 0], []),
    ([3, 0, 3, 3, 2, 0], [3, 3, 2]),
], ids=["blank-separates-repeat", "merge-repeats", "all-blank", "mixed"])
def test_best_path_merges_repeats_and_drops_blanks(path, expected):
    logits = np.eye(4)[path] * 5.0
    np.testing.assert_array_equal(best_path(logits), expected)


def test_best_path_with_nonzero_blank():
    logits = np.eye(4)[[3, 1, 3, 1, 1, 0]]
    np.testing.assert_array_equal(best_path(logits, blank=3), [1, 1, 0])


@pytest.mark.parametrize("a, b, expected", [
    ("kitten", "sitting", 3), ("flaw", "lawn", 2), ("", "abc", 3), ("abc", "", 3), ("", "", 0),
    ("same", "same", 0), ([1, 2, 3, 4], [4, 3, 2, 1], 4), ("ab", "ba", 2),
], ids=["kitten", "flaw", "from-empty", "to-empty", "both-empty", "equal", "reversed-ints", "swap"])
def test_edit_distance_of_known_pairs(a, b, expected):
    assert edit_distance(a, b) == expected
    assert edit_distance(b, a) == expected


def test_character_error_rate_pools_edits_over_reference_length():
    # 3 edits over 6 reference characters, plus 0 over 4 → 30 %
    assert character_error_rate(["kitten", "abcd"], ["sitting", "abcd"]) == pytest.approx(30.0)
    assert character_error_rate([[1, 2]], [[3, 4, 5, 6]]) == pytest.approx(200.0)
    with pytest.raises(ValueError, match="not a single string"):
        character_error_rate("kitten", "sitting")
    with pytest.raises(ValueError, match="2 reference sequences but 1"):
        character_error_rate(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="all references are empty"):
        character_error_rate([""], ["abc"])
