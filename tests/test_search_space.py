"""The search space (SPEC §7): ranges and distributions, sharing across architectures, determinism,
narrowing and fixing."""
import math

import numpy as np
import pytest
from scipy import stats

from lstm_scratch.search import space as spaces
from lstm_scratch.search.space import Dimension, narrowed, paper_space, sample

K = 2000


def draws(task="jsb", arch="V", seed=0, n=K, shared=True, space=None):
    space = paper_space(task) if space is None else space
    return [sample(space, seed=seed, task=task, arch=arch, k=k, shared=shared) for k in range(n)]


@pytest.fixture(scope="module")
def jsb_draws():
    return draws()


def test_log10_learning_rate_is_uniform_on_minus6_minus2(jsb_draws):
    log_lr = np.log10([d["lr"] for d in jsb_draws])
    assert log_lr.min() >= -6 and log_lr.max() <= -2
    assert stats.kstest((log_lr + 6) / 4, "uniform").pvalue > 0.01


def test_momentum_is_one_minus_log_uniform(jsb_draws):
    u = 1 - np.array([d["momentum"] for d in jsb_draws])
    assert u.min() >= 0.01 - 1e-12 and u.max() <= 1
    assert stats.kstest(np.log10(u) / 2 + 1, "uniform").pvalue > 0.01      # log10 u uniform on [−2, 0]


def test_noise_uniform_and_hidden_log_uniform_rounded(jsb_draws):
    noise = np.array([d["noise"] for d in jsb_draws])
    assert stats.kstest(noise, "uniform").pvalue > 0.01
    hidden = np.array([d["hidden"] for d in jsb_draws])
    assert hidden.dtype.kind == "i" and hidden.min() >= 20 and hidden.max() <= 200
    # log-uniform: as many below the geometric mean sqrt(20·200) ≈ 63 as above it (rounding aside)
    assert abs(np.mean(hidden < math.sqrt(20 * 200)) - 0.5) < 0.05
    assert np.mean(hidden <= 40) > np.mean(hidden >= 160)


def test_timit_adds_its_two_switches_elsewhere_fixed():
    timit = draws("timit_sample", n=400)
    assert {d["nesterov"] for d in timit} == {True, False}
    assert {d["clip"] for d in timit} == {None, spaces.PAPER_CLIP}
    assert 0.4 < np.mean([d["nesterov"] for d in timit]) < 0.6
    jsb = draws("jsb", n=50)
    assert {d["nesterov"] for d in jsb} == {True} and {d["clip"] for d in jsb} == {None}


def test_common_random_numbers_share_samples_across_architectures():
    v, gru = draws(arch="V", n=20), draws(arch="GRU", n=20)
    assert v == gru
    independent_v, independent_gru = draws(arch="V", n=20, shared=False), draws(arch="GRU", n=20, shared=False)
    assert all(a["lr"] != b["lr"] for a, b in zip(independent_v, independent_gru))


def test_a_trial_is_determined_by_seed_task_arch_k():
    first = sample(paper_space("jsb"), seed=3, task="jsb", arch="NP", k=7, shared=False)
    assert first == sample(paper_space("jsb"), seed=3, task="jsb", arch="NP", k=7, shared=False)
    for other in ({"seed": 4}, {"task": "nottingham"}, {"arch": "V"}, {"k": 8}):
        args = {"seed": 3, "task": "jsb", "arch": "NP", "k": 7, **other}
        assert sample(paper_space("jsb"), shared=False, **args)["lr"] != first["lr"], other


def test_narrowing_maps_the_same_draw_into_the_smaller_range_and_leaves_the_rest():
    paper = paper_space("jsb")
    narrow = narrowed(paper, "lr=1e-4:1e-2,hidden=32")
    a, b = draws(n=200), draws(n=200, space=narrow)
    assert all(d["hidden"] == 32 for d in b)
    assert all(1e-4 <= d["lr"] <= 1e-2 for d in b)
    # the same q: log lr moves from [−6, −2] to [−4, −2] by the same affine map
    np.testing.assert_allclose((np.log10([d["lr"] for d in a]) + 6) / 4, (np.log10([d["lr"] for d in b]) + 4) / 2,
                               atol=1e-9)
    for name in ("momentum", "noise", "seed"):
        assert [d[name] for d in a] == [d[name] for d in b]


def test_narrowing_from_a_dict_and_fixing_switches():
    space = narrowed(paper_space("timit"), {"momentum": (0.5, 0.9), "nesterov": False, "clip": None, "noise": 0.0})
    for d in draws("timit", n=100, space=space):
        assert 0.5 <= d["momentum"] <= 0.9 and d["nesterov"] is False and d["clip"] is None and d["noise"] == 0


@pytest.mark.parametrize("spec, message", [
    ("lr=1e-8:1e-2", "not inside the paper's"),
    ("hidden", "NAME=VALUE"),
    ("width=3", "unknown dimension"),
    ("nesterov=maybe", "nesterov"),
    ("hidden=3.5", "integer"),
    ("lr=abc", "not a number"),
])
def test_bad_narrowing_is_refused_with_a_clear_message(spec, message):
    with pytest.raises(ValueError, match=message):
        narrowed(paper_space("jsb"), spec)


def test_the_space_round_trips_through_json_and_names_its_distributions():
    import json
    space = narrowed(paper_space("timit"), "hidden=8,clip=none")
    again = spaces.space_from_dict(json.loads(json.dumps(spaces.space_to_dict(space))))
    assert again == space
    assert paper_space("jsb")["lr"].describe() == "log-uniform on [1e-06, 0.01]"
    with pytest.raises(ValueError, match="low > 0"):
        Dimension("log_uniform", 0, 1)
