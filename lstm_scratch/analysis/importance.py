"""fANOVA: how much of the variance of a metric over the search box each hyperparameter explains, alone
and in pairs (Hutter, Hoos & Leyton-Brown, *An Efficient Approach for Assessing Hyperparameter
Importance*, ICML 2014), implemented here because the ``fanova`` package no longer runs (SPEC §8).

A random forest ``f̂ = (1/T) Σ_t f_t`` is fitted to (hyperparameters → metric). Each tree f_t is
piecewise constant on its leaves, and each leaf ℓ is a box B_ℓ = Π_d [lo_ℓd, hi_ℓd) in the search box
Θ = Π_d [a_d, b_d]. Under the uniform measure on Θ, with w_ℓd = (hi_ℓd − lo_ℓd)/(b_d − a_d) the
fraction of dimension d that the leaf covers and v_ℓ its value, everything is a finite sum::

    mean       f_∅     = Σ_ℓ v_ℓ Π_d w_ℓd
    variance   V       = Σ_ℓ (v_ℓ − f_∅)² Π_d w_ℓd
    marginal   a_S(θ_S) = Σ_ℓ [θ_S ∈ B_ℓ,S] v_ℓ Π_{d∉S} w_ℓd        (θ_S's coordinates, the rest averaged)
    main       f_j = a_j − f_∅                       V_j  = ∫ f_j²
    pair       f_ij = a_ij − a_i − a_j + f_∅         V_ij = ∫ f_ij²      (the pure interaction)

a_j is constant between consecutive leaf edges of dimension j and a_ij on the grid of edges of i and j,
so V_j and V_ij are exact sums over those intervals / cells — no sampling. The fractions V_j/V and
V_ij/V are computed per tree and averaged over trees (trees with V = 0 are skipped, here and in the
curves, as in ``fanova`` and Optuna); ``higher_order = 1 − Σ main − Σ pairs``. Marginal curves are a_j
averaged over trees, with the standard deviation across trees (not a standard error: the band of the
paper's Fig. 4).

**Scale.** A parameter flagged ``log`` is analysed in log10 space: the forest is fitted to log10 θ and
the measure is uniform in log10 θ, which is how the paper sampled η, N and 1 − m (SPEC §8; Optuna and
the original ``fanova`` use raw units, which puts 90 % of η's measure in its top decade). Marginal
grids are returned in the parameter's own units, evenly spaced in the analysed scale.

Forest settings (stated in the report): scikit-learn ``RandomForestRegressor`` with ``n_trees`` trees
(default 64), bootstrap samples, all dimensions tried at each split (``max_features=1.0``), leaves of
one sample, depth ≤ 64 — Optuna's ``FanovaImportanceEvaluator`` settings, so the two agree when both
use raw units.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

# The paper's hyperparameters as analysed (SPEC §7): column, label, bounds in the column's units, log.
# Momentum enters as u = 1 − m, the quantity that was sampled log-uniformly. TIMIT's two fair coins
# (Nesterov or classical, clipping on or off) enter as 0/1 on [0, 1]: a tree splits them at ½, so the
# uniform measure on [0, 1] gives each side exactly the coin's ½. Elsewhere they are fixed and dropped.
PAPER_SPACE = {
    "lr": ("learning rate η", (1e-6, 1e-2), True),
    "hidden": ("hidden size N", (20, 200), True),
    "one_minus_momentum": ("1 − momentum m", (0.01, 1.0), True),
    "noise": ("input noise σ", (0.0, 1.0), False),
    "nesterov": ("Nesterov (1) or classical (0)", (0.0, 1.0), False),
    "clip": ("gradient clipping on (1) / off (0)", (0.0, 1.0), False),
}
# JZS's space (lstm_scratch.search.space.jzs_space) for studies of protocol jzs: the parameter budget as
# drawn (column ``budget``; N follows from it, the architecture and the layers), and the layers 1–4 on
# [0.5, 4.5], so that each of the four values gets ¼ of the uniform measure, as it was drawn.
JZS_SPACE = {
    "lr": ("learning rate η", (0.1, 5.0), True),
    "budget": ("parameter budget", (1e4, 1e5), True),
    "layers": ("stacked layers", (0.5, 4.5), False),
    "init_scale": ("initialisation scale", (0.02, 0.3), True),
    "clip_norm": ("gradient-norm clipping", (1.0, 20.0), True),
}


@dataclass(frozen=True)
class _Leaves:
    """One tree's leaves as boxes in the analysed space (log10 where flagged)."""
    lo: np.ndarray      # (L, D) lower corners, clipped to the search box
    hi: np.ndarray      # (L, D) upper corners
    value: np.ndarray   # (L,) the leaf's prediction
    frac: np.ndarray    # (L, D) w_ℓd: the fraction of dimension d the leaf covers

    def weight_without(self, dims) -> np.ndarray:
        """Π_{d ∉ dims} w_ℓd · v_ℓ — what a leaf contributes to the marginal a_dims."""
        keep = np.ones(self.frac.shape[1], bool)
        keep[list(dims)] = False
        return np.prod(self.frac[:, keep], axis=1) * self.value


def _leaf_boxes(tree, box: np.ndarray) -> _Leaves:
    """The leaves of a fitted scikit-learn tree (``estimator.tree_``) as boxes. A sample goes left when
    θ_feature ≤ threshold, so the left child's box ends at the threshold and the right child's begins
    there (the boundary has measure zero)."""
    left, right = tree.children_left, tree.children_right
    feature, threshold = tree.feature, tree.threshold
    value = tree.value.reshape(tree.node_count, -1)[:, 0]
    lo, hi, vals = [], [], []
    stack = [(0, box[:, 0].copy(), box[:, 1].copy())]
    while stack:
        node, node_lo, node_hi = stack.pop()
        if left[node] == -1:                                   # a leaf
            lo.append(node_lo), hi.append(node_hi), vals.append(value[node])
            continue
        f, t = feature[node], threshold[node]
        left_hi, right_lo = node_hi.copy(), node_lo.copy()
        left_hi[f] = min(node_hi[f], max(t, node_lo[f]))
        right_lo[f] = max(node_lo[f], min(t, node_hi[f]))
        stack.append((left[node], node_lo, left_hi))
        stack.append((right[node], right_lo, node_hi))
    lo, hi = np.array(lo), np.array(hi)
    return _Leaves(lo, hi, np.array(vals, float), (hi - lo) / (box[:, 1] - box[:, 0]))


class _TreeDecomposition:
    """The exact functional ANOVA of one tree (formulas in the module docstring).

    Per dimension d the leaf edges cut the box into K_d cells (intervals); every leaf covers a run of
    consecutive cells [start_ℓd, stop_ℓd). The marginal a_d is constant on each cell, and a_ij on each
    cell of the K_i × K_j grid, so both are built once, exactly, by difference arrays: add a leaf's
    weight where its run starts, subtract it where it stops, and take cumulative sums (in 2-D, the four
    corners of the leaf's rectangle) — O(L + K_i K_j) per pair instead of O(K_i K_j L) for the
    indicator products."""

    def __init__(self, tree, box: np.ndarray):
        self.box = box
        self.leaves = _leaf_boxes(tree, box)
        volume = np.prod(self.leaves.frac, axis=1)
        self.mean = float(volume @ self.leaves.value)
        self.variance = float(volume @ (self.leaves.value - self.mean) ** 2)
        self._cells, self._main = {}, {}     # per dimension; the K_i × K_j grids are not kept (memory)

    def cells(self, d: int):
        """(edges, widths as fractions of the box, start, stop) of dimension d's cells."""
        if d not in self._cells:
            lo, hi = self.leaves.lo[:, d], self.leaves.hi[:, d]
            edges = np.unique(np.concatenate([lo, hi, self.box[d]]))
            self._cells[d] = (edges, np.diff(edges) / (self.box[d, 1] - self.box[d, 0]),
                              np.searchsorted(edges, lo), np.searchsorted(edges, hi))
        return self._cells[d]

    def _locate(self, d: int, points: np.ndarray) -> np.ndarray:
        """The cell of each coordinate: edges[k] ≤ θ < edges[k+1]; the box's upper end is in the last."""
        edges = self.cells(d)[0]
        return np.clip(np.searchsorted(edges, points, side="right") - 1, 0, len(edges) - 2)

    def main_cells(self, d: int) -> np.ndarray:
        """a_d on every cell of dimension d."""
        if d not in self._main:
            edges, _, start, stop = self.cells(d)
            weight, n = self.leaves.weight_without([d]), len(edges)
            steps = np.bincount(start, weight, n) - np.bincount(stop, weight, n)
            self._main[d] = np.cumsum(steps)[:-1]
        return self._main[d]

    def joint_cells(self, i: int, j: int) -> np.ndarray:
        """a_ij on every cell of the K_i × K_j grid."""
        (edges_i, _, start_i, stop_i), (edges_j, _, start_j, stop_j) = self.cells(i), self.cells(j)
        weight, ni, nj = self.leaves.weight_without([i, j]), len(edges_i), len(edges_j)
        corners = (np.bincount(start_i * nj + start_j, weight, ni * nj)
                   - np.bincount(stop_i * nj + start_j, weight, ni * nj)
                   - np.bincount(start_i * nj + stop_j, weight, ni * nj)
                   + np.bincount(stop_i * nj + stop_j, weight, ni * nj))
        return corners.reshape(ni, nj).cumsum(axis=0).cumsum(axis=1)[:-1, :-1]

    def marginal(self, d: int, points: np.ndarray) -> np.ndarray:
        """a_d at the given coordinates (analysed scale)."""
        return self.main_cells(d)[self._locate(d, points)]

    def joint_marginal(self, i: int, j: int, points_i: np.ndarray, points_j: np.ndarray) -> np.ndarray:
        """a_ij on the grid points_i × points_j."""
        return self.joint_cells(i, j)[np.ix_(self._locate(i, points_i), self._locate(j, points_j))]

    def interaction(self, i: int, j: int, points_i: np.ndarray, points_j: np.ndarray) -> np.ndarray:
        """The pure interaction f_ij = a_ij − a_i − a_j + f_∅ on a grid."""
        return (self.joint_marginal(i, j, points_i, points_j) - self.marginal(i, points_i)[:, None]
                - self.marginal(j, points_j)[None, :] + self.mean)

    def main_variance(self, d: int) -> float:
        """V_d = Σ_cells width · (a_d − f_∅)²."""
        return float(self.cells(d)[1] @ (self.main_cells(d) - self.mean) ** 2)

    def pair_variance(self, i: int, j: int) -> float:
        """V_ij = Σ_cells area · f_ij², exact on the grid of leaf edges of i and j."""
        pure = (self.joint_cells(i, j) - self.main_cells(i)[:, None] - self.main_cells(j)[None, :]
                + self.mean)
        return float(self.cells(i)[1] @ pure ** 2 @ self.cells(j)[1])


class Importance:
    """The fANOVA of a forest: ``main``, ``main_std``, ``pairs``, ``pairs_std``, ``higher_order`` (fractions
    of the variance, means over trees), ``marginal`` and ``joint_marginal`` curves in the parameters'
    own units. Build it with :func:`fanova`; the constructor takes fitted scikit-learn trees
    (``estimator.tree_``) fitted to the analysed scale (log10 for ``log`` dimensions)."""

    def __init__(self, trees, names, bounds, log, n_samples: int | None = None, settings: dict | None = None,
                 labels: dict | None = None):
        self.names = list(names)
        self.labels = {n: (labels or {}).get(n, n) for n in self.names}     # for axes: "learning rate η"
        self.log = [bool(v) for v in log]
        self.bounds = [tuple(float(b) for b in pair) for pair in bounds]
        self.box = np.array([_to_scale(np.array(pair), flag) for pair, flag in zip(self.bounds, self.log)])
        self.n_samples, self.settings = n_samples, dict(settings or {})
        every = [_TreeDecomposition(tree, self.box) for tree in trees]
        self.trees = [t for t in every if t.variance > 0]
        if not self.trees:
            raise ValueError("fANOVA: every tree is constant (the metric does not vary over these trials); "
                             "there is no variance to decompose")
        main = np.array([[t.main_variance(d) / t.variance for d in range(len(self.names))]
                         for t in self.trees])
        pairs = list(combinations(range(len(self.names)), 2))
        pair = np.array([[t.pair_variance(i, j) / t.variance for i, j in pairs] for t in self.trees])
        pair = pair.reshape(len(self.trees), len(pairs))
        self.main = dict(zip(self.names, main.mean(axis=0)))
        self.main_std = dict(zip(self.names, main.std(axis=0)))
        pair_names = [(self.names[i], self.names[j]) for i, j in pairs]
        self.pairs = dict(zip(pair_names, pair.mean(axis=0)))
        self.pairs_std = dict(zip(pair_names, pair.std(axis=0)))
        self.higher_order = float(1 - main.sum(axis=1).mean() - pair.sum(axis=1).mean())
        self.interactions = float(1 - main.sum(axis=1).mean())     # every interaction, all orders

    def _index(self, name: str) -> int:
        if name not in self.names:
            raise ValueError(f"unknown hyperparameter {name!r}; this analysis has {self.names}")
        return self.names.index(name)

    def _grid(self, d: int, n: int):
        """n points evenly spaced in the analysed scale: (in the parameter's units, analysed scale)."""
        if n < 2:
            raise ValueError(f"n={n}: a marginal curve needs at least 2 grid points")
        scaled = np.linspace(self.box[d, 0], self.box[d, 1], n)
        return _from_scale(scaled, self.log[d]), scaled

    def marginal(self, name: str, n: int = 100):
        """(grid, mean, std): a_name on n points (parameter's own units), mean and std across trees."""
        d = self._index(name)
        grid, scaled = self._grid(d, n)
        curves = np.array([t.marginal(d, scaled) for t in self.trees])
        return grid, curves.mean(axis=0), curves.std(axis=0)

    def joint_marginal(self, a: str, b: str, n: int = 20):
        """(grid_a, grid_b, mean): a_ab on an n × n grid, mean over trees, ``mean[i, j]`` at
        (grid_a[i], grid_b[j])."""
        i, j = self._index(a), self._index(b)
        (grid_a, scaled_a), (grid_b, scaled_b) = self._grid(i, n), self._grid(j, n)
        mean = np.mean([t.joint_marginal(i, j, scaled_a, scaled_b) for t in self.trees], axis=0)
        return grid_a, grid_b, mean

    def interaction(self, a: str, b: str, n: int = 20):
        """(grid_a, grid_b, mean): the pure interaction f_ab = a_ab − a_a − a_b + f_∅ (Fig. 6)."""
        i, j = self._index(a), self._index(b)
        (grid_a, scaled_a), (grid_b, scaled_b) = self._grid(i, n), self._grid(j, n)
        mean = np.mean([t.interaction(i, j, scaled_a, scaled_b) for t in self.trees], axis=0)
        return grid_a, grid_b, mean


def _to_scale(values, log: bool):
    return np.log10(values) if log else np.asarray(values, float)


def _from_scale(values, log: bool):
    return 10.0 ** values if log else values


def fanova(X, y, names, bounds, log=None, n_trees: int = 64, seed: int = 0, max_features=1.0,
           labels: dict | None = None) -> Importance:
    """fANOVA of ``y`` over the hyperparameters ``X`` (n × D, in the parameters' own units) on the search
    box ``bounds`` ([(lo, hi), ...]); ``log[d]`` analyses dimension d in log10 space (see the module
    docstring). ``labels``: {name: axis label}. Returns an :class:`Importance`."""
    X, y = np.asarray(X, float), np.asarray(y, float)
    log = [False] * len(names) if log is None else list(log)
    if X.ndim != 2 or X.shape[1] != len(names) or len(bounds) != len(names) or len(log) != len(names):
        raise ValueError(f"fanova: X has shape {X.shape}, but there are {len(names)} names, {len(bounds)} "
                         f"bounds and {len(log)} log flags; give one column, bound and flag per name")
    if y.shape != (X.shape[0],):
        raise ValueError(f"fanova: y has shape {y.shape}; give one value per row of X ({X.shape[0]})")
    if X.shape[0] < 2 or not np.all(np.isfinite(X)) or not np.all(np.isfinite(y)):
        raise ValueError("fanova: needs at least 2 trials with finite hyperparameters and metric values "
                         "(give diverged/failed trials a score, or drop them, before calling)")
    for d, (name, (lo, hi), flag) in enumerate(zip(names, bounds, log)):
        if not lo < hi or (flag and lo <= 0):
            raise ValueError(f"fanova: bounds of {name!r} = ({lo}, {hi}) must satisfy lo < hi "
                             f"{'and lo > 0 (log scale)' if flag else ''}")
        outside = (X[:, d] < lo * (1 - 1e-9) - 1e-12) | (X[:, d] > hi * (1 + 1e-9) + 1e-12)
        if outside.any():
            raise ValueError(f"fanova: {outside.sum()} value(s) of {name!r} lie outside its bounds ({lo}, "
                             f"{hi}), e.g. {X[outside, d][0]}; widen the bounds to the searched box")
    from sklearn.ensemble import RandomForestRegressor
    scaled = np.column_stack([_to_scale(X[:, d], log[d]) for d in range(len(names))])
    settings = dict(n_estimators=n_trees, max_depth=64, min_samples_split=2, min_samples_leaf=1,
                    max_features=max_features, bootstrap=True, random_state=seed)
    forest = RandomForestRegressor(**settings).fit(scaled, y)
    return Importance([e.tree_ for e in forest.estimators_], names, bounds, log, n_samples=len(y),
                      settings=settings, labels=labels)


def study_space(df, space: dict | None = None) -> dict:
    """The dimensions to analyse: {column: (label, (lo, hi), log)} — the paper's space (``PAPER_SPACE``;
    ``JZS_SPACE`` for a table whose ``protocol`` column is jzs) updated by ``space`` (e.g. a narrowed
    range from the study definition), without the dimensions held fixed in this table (a single value,
    or lo == hi), which explain no variance."""
    jzs = "protocol" in df.columns and len(df) > 0 and bool((df["protocol"] == "jzs").all())
    base = JZS_SPACE if jzs else PAPER_SPACE
    merged = {**base, **(space or {})}
    kept = {}
    for column, (label, (lo, hi), log) in merged.items():
        values = _column(df, column)
        if values is None or lo >= hi or np.unique(values[np.isfinite(values)]).size < 2:
            continue
        kept[column] = (label, (lo, hi), log)
    return kept


def _column(df, column: str):
    """The analysed values of ``column`` (1 − m for momentum; 0/1 for the switches), or None."""
    source = "momentum" if column == "one_minus_momentum" else column
    if source not in df.columns:
        return None
    values = df[source]
    if column == "one_minus_momentum":
        return 1.0 - values.to_numpy(float)
    if column == "clip":                                     # a clipping range, or None for off
        return (values.notna() & (values.astype(float) != 0)).to_numpy(float)
    if column == "nesterov":
        return values.fillna(True).astype(bool).to_numpy(float)
    return values.to_numpy(float)


def study_importance(df, target: str = "test_metric", space: dict | None = None, pooled: bool = True,
                     per_arch: bool = True, n_trees: int = 64, seed: int = 0, lower_is_better: bool = True,
                     min_trials: int = 10) -> dict:
    """fANOVA of a study table (``Study.to_dataframe()``): {(task, arch): Importance}, per architecture
    and, with ``pooled``, over all architectures of the task together (arch ``"pooled"``, the paper's
    Fig. 4–6). Hyperparameters: η (``lr``), N (``hidden``), 1 − m (``one_minus_momentum``), σ
    (``noise``) — η, N and 1 − m in log10 space (module docstring) — and on TIMIT the two switches
    ``nesterov`` and ``clip`` (0/1), minus those held fixed. A study of protocol jzs: ``JZS_SPACE``'s
    η, parameter budget, layers, init scale and clipping norm (:func:`study_space`).

    ``target="test_metric"`` uses the test score of :func:`.stats.scored`: diverged trials count, with
    the worst score of the task (divergence is a property of the hyperparameters: it belongs to the
    response surface); failed trials are left out here (a crash says nothing about the hyperparameters,
    and one worst score among good neighbours puts a spike in every marginal). Any other column (e.g.
    ``cpu_seconds``, for Fig. 4's training-time curve) is used as recorded, over the finished and
    early-stopped trials. Groups with fewer than ``min_trials`` such trials are left out."""
    from .stats import check_table, scored
    check_table(df, needed=("arch", "task", "outcome", target))
    table = scored(df, lower_is_better)
    if target == "test_metric":
        table = table[table["outcome"] != "failed"].assign(_y=table["test_score"])
    else:
        table = table[table["outcome"].isin(("finished", "early_stopped"))]
        table = table.assign(_y=table[target].astype(float))
    table = table[np.isfinite(table["_y"].to_numpy(float))]
    results = {}
    for task, of_task in table.groupby("task", sort=True):
        groups = ([("pooled", of_task)] if pooled else []) + (
            [(arch, g) for arch, g in of_task.groupby("arch", sort=False)] if per_arch else [])
        for arch, group in groups:
            dims = study_space(group, space)
            if len(group) < min_trials or not dims or np.ptp(group["_y"].to_numpy(float)) == 0:
                continue
            X = np.column_stack([_column(group, c) for c in dims])
            results[(task, arch)] = fanova(X, group["_y"].to_numpy(float), list(dims),
                                           [b for _, b, _ in dims.values()], [g for _, _, g in dims.values()],
                                           n_trees=n_trees, seed=seed,
                                           labels={c: label for c, (label, _, _) in dims.items()})
    return results


def blow_ups(df, uninformed: dict, lower_is_better: bool = True) -> dict:
    """{task: {arch: n}}: per task, the architectures with trials that ended worse than a predictor that
    knows nothing (``uninformed[task]``: on the music sets p = ½ for every key, 88 ln 2 ≈ 61.0 nats per
    step), and how many; tasks without such trials, or without an ``uninformed`` level, are absent. Only
    trials that ended with a metric count (finished, early-stopped): a diverged trial's worst score
    (:func:`.stats.scored`) is borrowed from the others.

    Why: the variance fANOVA decomposes is a sum of squares, so a few trials that blow up (on JSB, NOAF's
    unbounded h(x) = x ends some trials at test NLL in the thousands against ≈ 8.5 for the best and ≈ 50
    for the slowest learners) carry most of the pooled variance, and the shares then describe *those*
    trials, not the search box. The report therefore repeats the pooled analysis without the
    architectures that have blow-ups (whole architectures, so the response surface of the rest is not
    conditioned on outcomes). A statistical fence (Tukey's Q3 + 3·IQR) does not serve: in a study with a
    short epoch cap the slow learners at small η form a long but legitimate tail past it."""
    from .stats import arch_order, scored
    table = scored(df, lower_is_better)
    table = table[~table["broken"]]
    found = {}
    for task, of_task in table.groupby("task", sort=True):
        level = uninformed.get(task)
        if level is None:
            continue
        y = of_task["test_score"].to_numpy(float)
        counts = of_task.loc[y > level if lower_is_better else y < level, "arch"].value_counts()
        if len(counts):
            found[task] = {arch: int(counts[arch]) for arch in arch_order(counts.index)}
    return found


def importance_table(results: dict):
    """A tidy table of :func:`study_importance`'s results: one row per (task, arch, term) with the
    fraction of variance and its std across trees; terms are each main effect, each pair ("a × b"),
    "higher order" and "all interactions" (= 1 − Σ main)."""
    import pandas as pd
    rows = []
    for (task, arch), imp in results.items():
        base = {"task": task, "arch": arch, "trials": imp.n_samples}
        rows += [{**base, "term": n, "kind": "main", "fraction": imp.main[n], "std": imp.main_std[n]}
                 for n in imp.names]
        rows += [{**base, "term": f"{a} × {b}", "kind": "pair", "fraction": v, "std": imp.pairs_std[(a, b)]}
                 for (a, b), v in imp.pairs.items()]
        rows.append({**base, "term": "higher order", "kind": "higher", "fraction": imp.higher_order,
                     "std": np.nan})
        rows.append({**base, "term": "all interactions", "kind": "interactions",
                     "fraction": imp.interactions, "std": np.nan})
    return pd.DataFrame(rows, columns=["task", "arch", "trials", "term", "kind", "fraction", "std"])
