"""fANOVA (lstm_scratch.analysis.importance): analytic variance decompositions, the exact per-tree
algorithm against brute-force integration over a tree's partition, and Optuna's independent evaluator."""
import numpy as np
import pytest
from sklearn.tree import DecisionTreeRegressor

from lstm_scratch.analysis.importance import Importance, blow_ups, fanova, study_importance

from fake_study import make_table

TOLERANCE = 0.02    # 64 trees, 1000 noise-free uniform samples: errors seen ≤ 0.008 (5 seeds); ±0.02


def uniform_inputs(n=1000, d=3, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, d))


def test_additive_function_fractions():
    """f = 3 x₀ + x₁ (x₂ inert) on U[0,1]³: V₀ = 9/12, V₁ = 1/12 → fractions 0.9, 0.1, 0; no interaction."""
    X = uniform_inputs()
    imp = fanova(X, 3 * X[:, 0] + X[:, 1], ["a", "b", "c"], [(0, 1)] * 3, log=[False] * 3)
    assert imp.main["a"] == pytest.approx(0.9, abs=TOLERANCE)
    assert imp.main["b"] == pytest.approx(0.1, abs=TOLERANCE)
    assert imp.main["c"] < 0.01
    assert sum(imp.pairs.values()) < 0.02 and abs(imp.higher_order) < 0.01
    assert imp.main_std["a"] > 0                   # std across trees is reported


def test_interaction_found():
    """f = u₀ + u₁ + 4 u₀u₁ with u = x − ½: V₀ = V₁ = 1/12, V₀₁ = 16/144 → 0.3, 0.3 and 0.4 for the pair."""
    X = uniform_inputs(seed=1)
    u = X - 0.5
    imp = fanova(X, u[:, 0] + u[:, 1] + 4 * u[:, 0] * u[:, 1], ["a", "b", "c"], [(0, 1)] * 3)
    assert imp.main["a"] == pytest.approx(0.3, abs=TOLERANCE)
    assert imp.main["b"] == pytest.approx(0.3, abs=TOLERANCE)
    assert imp.pairs[("a", "b")] == pytest.approx(0.4, abs=TOLERANCE)
    assert imp.pairs[("a", "c")] < 0.01 and imp.pairs[("b", "c")] < 0.01
    assert imp.interactions == pytest.approx(1 - sum(imp.main.values()))
    # The interaction part on a grid is close to 4 u₀u₁ (the forest's approximation of it).
    grid_a, grid_b, part = imp.interaction("a", "b", n=9)
    expected = 4 * np.outer(grid_a - 0.5, grid_b - 0.5)
    assert np.abs(part - expected).max() < 0.2


def test_log_scale_is_the_sampling_scale():
    """η log-uniform on [1e-6, 1e-2] and f = log10 η + 2x: in log10 space V_η = 16/12 and V_x = 4/12 →
    0.8 and 0.2; marginal grids come back in η's own units, evenly spaced in log10."""
    rng = np.random.default_rng(2)
    lr, x = 10 ** rng.uniform(-6, -2, 1000), rng.uniform(0, 1, 1000)
    X, y = np.column_stack([lr, x]), np.log10(lr) + 2 * x
    imp = fanova(X, y, ["lr", "x"], [(1e-6, 1e-2), (0, 1)], log=[True, False])
    assert imp.main["lr"] == pytest.approx(0.8, abs=TOLERANCE)
    assert imp.main["x"] == pytest.approx(0.2, abs=TOLERANCE)
    assert abs(imp.higher_order) < 1e-9            # two dimensions: main effects + the pair are everything
    grid, mean, std = imp.marginal("lr", n=5)
    np.testing.assert_allclose(grid, [1e-6, 1e-5, 1e-4, 1e-3, 1e-2])
    np.testing.assert_allclose(mean, np.log10(grid) + 1.0, atol=0.15)   # + E[2x] = 1
    assert std.shape == (5,)
    # In raw units the same data say something else: η's measure sits in [1e-3, 1e-2].
    raw = fanova(X, y, ["lr", "x"], [(1e-6, 1e-2), (0, 1)], log=[False, False])
    assert raw.main["lr"] < 0.6


def brute_force(tree, box):
    """The exact functional ANOVA of one fitted tree by integrating over the grid of all its thresholds:
    the tree is constant on every cell of that grid, so cell-centre values weighted by cell volume are
    the exact integrals."""
    t = tree.tree_
    d = box.shape[0]
    edges = [np.unique(np.concatenate([box[j], t.threshold[t.feature == j]])) for j in range(d)]
    centres = [(e[:-1] + e[1:]) / 2 for e in edges]
    widths = [np.diff(e) / (box[j, 1] - box[j, 0]) for j, e in enumerate(edges)]
    mesh = np.meshgrid(*centres, indexing="ij")
    values = tree.predict(np.column_stack([m.ravel() for m in mesh])).reshape(mesh[0].shape)
    weight = widths[0][:, None, None] * widths[1][None, :, None] * widths[2][None, None, :]
    mean = (weight * values).sum()
    variance = (weight * (values - mean) ** 2).sum()

    def marginal(keep):
        other = tuple(k for k in range(d) if k not in keep)
        w = np.ones_like(values)
        for k in other:
            shape = [1] * d
            shape[k] = -1
            w = w * widths[k].reshape(shape)
        return (w * values).sum(axis=other)

    main = {j: marginal((j,)) for j in range(d)}
    V_main = {j: widths[j] @ (main[j] - mean) ** 2 for j in range(d)}
    V_pair = {}
    for i in range(d):
        for j in range(i + 1, d):
            pure = marginal((i, j)) - main[i][:, None] - main[j][None, :] + mean
            V_pair[(i, j)] = widths[i] @ pure ** 2 @ widths[j]
    return edges, main, V_main, V_pair, variance, marginal


@pytest.mark.parametrize("log", [False, True])
def test_one_tree_marginals_exact(log):
    """A forest of one fitted tree: fractions, marginal curves and joint marginals equal brute-force
    integration over the tree's partition to 1e-12 (with the first dimension on a log scale or not)."""
    rng = np.random.default_rng(3)
    bounds = [(1e-6, 1e-2) if log else (0.0, 1.0), (20.0, 200.0), (0.0, 1.0)]
    X = np.column_stack([10 ** rng.uniform(-6, -2, 300) if log else rng.uniform(0, 1, 300),
                         rng.uniform(20, 200, 300), rng.uniform(0, 1, 300)])
    y = np.sin(6 * X[:, 2]) + (X[:, 1] / 100) * X[:, 2] + rng.normal(0, 0.3, 300)
    scaled = X.copy()
    if log:
        scaled[:, 0] = np.log10(X[:, 0])
    tree = DecisionTreeRegressor(max_depth=6, random_state=0).fit(scaled, y)
    names = ["a", "b", "c"]
    imp = Importance([tree.tree_], names, bounds, [log, False, False])
    box = np.array([np.log10(bounds[0]) if log else bounds[0], bounds[1], bounds[2]])
    edges, main, V_main, V_pair, variance, marginal = brute_force(tree, box)
    for j, name in enumerate(names):
        assert imp.main[name] == pytest.approx(V_main[j] / variance, abs=1e-12)
        assert imp.main_std[name] == 0.0
        grid, mean, std = imp.marginal(name, n=37)
        scaled_grid = np.log10(grid) if (log and j == 0) else grid
        cell = np.clip(np.searchsorted(edges[j], scaled_grid, side="right") - 1, 0, len(edges[j]) - 2)
        np.testing.assert_allclose(mean, main[j][cell], rtol=0, atol=1e-12)
    for (i, j), v in V_pair.items():
        assert imp.pairs[(names[i], names[j])] == pytest.approx(v / variance, abs=1e-12)
    total = sum(V_main.values()) + sum(V_pair.values())
    assert imp.higher_order == pytest.approx(1 - total / variance, abs=1e-12)
    grid_b, grid_c, joint = imp.joint_marginal("b", "c", n=11)
    cb = np.clip(np.searchsorted(edges[1], grid_b, side="right") - 1, 0, len(edges[1]) - 2)
    cc = np.clip(np.searchsorted(edges[2], grid_c, side="right") - 1, 0, len(edges[2]) - 2)
    np.testing.assert_allclose(joint, marginal((1, 2))[np.ix_(cb, cc)], rtol=0, atol=1e-12)


@pytest.mark.parametrize("log_distribution", [False, True])
def test_agrees_with_optuna_on_the_same_scale(log_distribution):
    """Optuna's FanovaImportanceEvaluator (raw units, even for log distributions; columns in name order)
    and ours with log=False on the same forest settings and seed give the same main effects."""
    optuna = pytest.importorskip("optuna")
    from optuna.distributions import FloatDistribution
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = np.random.default_rng(1)
    names, bounds = ["hidden", "lr", "noise"], [(20, 200), (1e-6, 1e-2), (0, 1)]
    X = np.column_stack([rng.uniform(lo, hi, 150) for lo, hi in bounds])
    y = np.sin(300 * X[:, 1]) + 0.01 * X[:, 0] + X[:, 2] ** 2
    study = optuna.create_study()
    distributions = {n: FloatDistribution(lo, hi, log=log_distribution and n != "noise")
                     for n, (lo, hi) in zip(names, bounds)}
    study.add_trials([optuna.trial.create_trial(params=dict(zip(names, row)), distributions=distributions,
                                                value=float(v)) for row, v in zip(X, y)])
    theirs = optuna.importance.FanovaImportanceEvaluator(seed=0).evaluate(study)
    ours = fanova(X, y, names, bounds, log=[False] * 3, n_trees=64, seed=0)
    for name in names:
        assert ours.main[name] == pytest.approx(theirs[name], abs=1e-9)


def test_study_importance_per_architecture_and_pooled():
    df = make_table()
    results = study_importance(df)
    assert set(results) == {("jsb", a) for a in ("pooled", "V", "NFG", "NOAF", "CIFG", "NP")}
    pooled = results[("jsb", "pooled")]
    assert pooled.names == ["lr", "hidden", "one_minus_momentum", "noise"]
    assert pooled.log == [True, True, True, False]
    assert max(pooled.main, key=pooled.main.get) == "lr" and pooled.main["lr"] > 0.8   # the planted effect
    # Failed trials are left out of the fANOVA, diverged ones count (5 archs × (40 − 1 failed)).
    assert pooled.n_samples == 5 * 39
    # A dimension held fixed explains nothing and is dropped.
    fixed = study_importance(df.assign(noise=0.0), per_arch=False)[("jsb", "pooled")]
    assert "noise" not in fixed.names
    times = study_importance(df, target="cpu_seconds", per_arch=False)[("jsb", "pooled")]
    assert max(times.main, key=times.main.get) == "hidden"         # the fake's time grows with N only


def blown_up(df, arch="NOAF", n=5, value=1e3):
    """``df`` with ``n`` of ``arch``'s finished trials ending at ``value`` (as NOAF's unbounded h(x) = x
    ends some JSB trials at test NLL in the thousands)."""
    df = df.copy()
    rows = df.index[(df["arch"] == arch) & df["outcome"].isin(("finished", "early_stopped"))][:n]
    df.loc[rows, "test_metric"] = value + np.arange(n)
    return df


def test_blow_ups_name_the_architectures_whose_trials_end_worse_than_knowing_nothing():
    df, level = make_table(), {"jsb": 88 * np.log(2)}
    assert blow_ups(df, level) == {}                  # the fake's slowest learners stay below 88 ln 2
    assert blow_ups(blown_up(df), level) == {"jsb": {"NOAF": 5}}
    assert blow_ups(blown_up(df), {}) == {}           # a task without an uninformed level: none
    both = blown_up(blown_up(df), "NP", 2)
    assert blow_ups(both, level) == {"jsb": {"NOAF": 5, "NP": 2}}     # the paper's order of architectures
    # A trial just better than the level is no blow-up; higher is better (an accuracy): below the level.
    assert blow_ups(blown_up(df, value=60.0, n=1), level) == {}
    accuracy = df.assign(valid_metric=-df["valid_metric"], test_metric=-df["test_metric"])
    assert blow_ups(blown_up(accuracy, value=-1e3), {"jsb": -100.0}, lower_is_better=False) == {"jsb": {"NOAF": 5}}
    # The blow-ups take the pooled variance; without their architecture η's planted dominance returns.
    # (No diverged trials here: at the highest η they would take the worst score, 1e3, and so follow η.)
    df = blown_up(make_table(diverged=0))
    pooled = study_importance(df, per_arch=False)[("jsb", "pooled")]
    rest = study_importance(df[df["arch"] != "NOAF"], per_arch=False)[("jsb", "pooled")]
    assert pooled.main["lr"] < 0.5 < 0.8 < rest.main["lr"]


def test_bad_input():
    X = uniform_inputs(50, 2)
    with pytest.raises(ValueError, match="outside its bounds"):
        fanova(X * 2, X[:, 0], ["a", "b"], [(0, 1), (0, 1)])
    with pytest.raises(ValueError, match="finite"):
        fanova(X, np.where(X[:, 0] > 0.5, np.nan, 1.0), ["a", "b"], [(0, 1), (0, 1)])
    with pytest.raises(ValueError, match="every tree is constant"):
        fanova(X, np.ones(50), ["a", "b"], [(0, 1), (0, 1)])
    with pytest.raises(ValueError, match="one column, bound and flag per name"):
        fanova(X, X[:, 0], ["a"], [(0, 1)])
    imp = fanova(X, X[:, 0], ["a", "b"], [(0, 1), (0, 1)])
    with pytest.raises(ValueError, match="unknown hyperparameter 'lr'"):
        imp.marginal("lr")


def test_timit_switches_are_analysed_when_they_vary():
    """Nesterov/classical and clipping on/off (fair coins on TIMIT) enter as 0/1; a planted clipping
    effect is found, and the switches are dropped where the study fixed them (JSB)."""
    df = make_table(task="timit", diverged=0, failed=0)
    rng = np.random.default_rng(5)
    clip = np.where(rng.random(len(df)) < 0.5, 1.0, None)
    df = df.assign(clip=clip, nesterov=rng.random(len(df)) < 0.5)
    df["test_metric"] += np.where(df["clip"].notna(), 5.0, 0.0)
    imp = study_importance(df, per_arch=False)[("timit", "pooled")]
    assert imp.names[-2:] == ["nesterov", "clip"]
    assert imp.main["clip"] > 0.1 and imp.main["nesterov"] < 0.01
    assert "clip" not in study_importance(make_table(), per_arch=False)[("jsb", "pooled")].names
