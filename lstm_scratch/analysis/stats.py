"""The variant comparison of the paper (SPEC §8): per task, each architecture's best 10 % of trials,
**selected by validation metric** and **scored on the test metric**, against the baseline's (vanilla's)
best 10 % by Welch's t-test, with the Bonferroni-corrected verdict beside it.

Welch's t for samples A (an architecture) and B (the baseline), means x̄, variances s² (ddof 1), sizes n::

    t = (x̄_A − x̄_B) / sqrt(s_A²/n_A + s_B²/n_B)
    ν = (s_A²/n_A + s_B²/n_B)² / ((s_A²/n_A)²/(n_A − 1) + (s_B²/n_B)²/(n_B − 1))    p = 2 P(T_ν > |t|)

Bonferroni: with m comparisons in a task (every architecture but the baseline), p_bonferroni =
min(1, m·p), significant when p_bonferroni < α.

**Diverged and failed trials** count as trials (SPEC §6), with the worst score: a trial that ended
(finished, early_stopped, diverged, failed) without a finite validation and test metric is given, for
each metric, **the worst finite value of that metric among all trials of the same task in the study**
(every architecture) — the maximum for a lower-is-better metric. So it ranks last by validation (after
the worst trial that ended with metrics, on a tie), and
if it still falls in an architecture's best 10 % (when most of that architecture's trials broke), it
scores like the worst trial that did finish. We chose this over "the untrained network's score"
because it needs no per-task constant and never makes a broken trial look better than a finished one;
it is a lower bound on the penalty. Trials that have not run yet (pending, running, or absent from the
table) are left out and counted as missing.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

ENDED = ("finished", "early_stopped", "diverged", "failed")
COLUMNS = ("trial", "arch", "k", "task", "hidden", "lr", "momentum", "noise", "nesterov", "clip", "seed",
           "outcome", "epochs", "best_epoch", "valid_metric", "test_metric", "n_params", "wall_seconds",
           "cpu_seconds")


def check_table(df, needed=("arch", "task", "outcome", "valid_metric", "test_metric")) -> None:
    """A clear error unless ``df`` is a study table (``Study.to_dataframe()``) with these columns."""
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"expected a study table (pandas DataFrame from Study.to_dataframe()), got "
                         f"{type(df).__name__}")
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise ValueError(f"the study table lacks the column(s) {missing}; it has {list(df.columns)} — "
                         "pass Study.to_dataframe() or a CSV exported by 'lstm-odyssey search export'")


def scored(df, lower_is_better: bool = True):
    """The trials that ended, with ``valid_score`` and ``test_score``: the metrics, or for a trial with
    no finite metric (diverged, failed) the worst finite value of that metric in its task (module
    docstring). Also ``broken``: True where the worst value was substituted."""
    reason = unscorable(df)
    if reason:
        raise ValueError(reason)
    ended = df[df["outcome"].isin(ENDED)].copy()
    broken = _broken(ended)
    ended["broken"] = broken
    ended["valid_score"] = ended["valid_metric"].astype(float).where(~broken)
    ended["test_score"] = ended["test_metric"].astype(float).where(~broken)
    for column in ("valid_score", "test_score"):
        good = ended.loc[~broken].groupby("task")[column]
        worst = good.max() if lower_is_better else good.min()
        ended[column] = ended[column].fillna(ended["task"].map(worst))
    return ended


def _broken(ended):
    """Which ended trials are broken: diverged, failed, or without a finite validation or test metric (a
    diverged trial may carry the validation metric of its last good epoch; it still scores worst)."""
    valid, test = ended["valid_metric"].astype(float), ended["test_metric"].astype(float)
    return ended["outcome"].isin(("diverged", "failed")) | ~np.isfinite(valid) | ~np.isfinite(test)


def unscorable(df) -> str:
    """Why :func:`scored` cannot score ``df``, or "": the tasks none of whose ended trials has finite
    metrics (all diverged or failed) have no worst score to give the broken ones. A report that shows
    the other tasks asks first (JZS's table); the study report lets ``scored`` raise it."""
    check_table(df)
    ended = df[df["outcome"].isin(ENDED)]
    without = sorted(set(ended["task"]) - set(ended.loc[~_broken(ended), "task"]))
    if not without:
        return ""
    return (f"task(s) {without}: no trial ended with finite validation and test metrics (all diverged or "
            "failed), so there is no worst score to give the broken ones; look at the failed trials' errors, "
            "or narrow the learning rate")


def n_best(n_trials: int, top: float) -> int:
    """How many trials make the best ``top`` fraction: top·n rounded half up, at least 1 (20 of 200; 5 of
    45 — Python's ``round`` would give 4, rounding halves to even)."""
    return max(1, int(np.floor(top * n_trials + 0.5))) if n_trials else 0


def best_trials(group, top: float, lower_is_better: bool = True):
    """The best ``top`` fraction of one architecture's scored trials, ranked by validation score (ties: a
    trial that ended with metrics before a broken one, which only borrowed the worst score, then by trial
    index ``k`` when present, so the choice is deterministic)."""
    by = ["valid_score"] + (["broken"] if "broken" in group.columns else []) + (["k"] if "k" in group.columns else [])
    ranked = group.sort_values(by, ascending=[lower_is_better] + [True] * (len(by) - 1), kind="stable")
    return ranked.head(n_best(len(ranked), top))


def arch_order(archs) -> list:
    """Architectures in the tables' order: the paper's nine (V, then the eight variants, as in
    ``LSTM_VARIANTS``), then JZS's set in ``JZS_ARCHITECTURES`` order (TANH, LSTM, LSTM-F/-I/-O/-B, GRU,
    MUT1–3), then any other name, sorted."""
    from ..variants import JZS_ARCHITECTURES, LSTM_VARIANTS
    present = set(archs)
    known = list(dict.fromkeys(a for a in LSTM_VARIANTS + JZS_ARCHITECTURES if a in present))
    return known + sorted(present - set(known))


def compare(df, baseline: str | None = "V", top: float = 0.10, alpha: float = 0.05,
            lower_is_better: bool = True):
    """One row per (task, architecture): counts (``trials`` that ended, ``finished``, ``early_stopped``,
    ``diverged``, ``failed``), ``n_best``, ``best10_mean``/``best10_std`` (test score of the best
    ``top`` by validation; std with ddof 1), ``n_params_best10`` (their mean parameter count),
    ``all_mean`` (every ended trial), and against ``baseline``'s best: Welch's ``t``, ``p``,
    ``p_bonferroni``, ``significant``, ``significant_bonferroni``, ``direction`` ("better"/"worse" when
    significant at ``alpha``, else "—"). The baseline's own row, a task without the baseline, and
    samples of fewer than 2 trials get NaN statistics and "—". ``baseline=None``: counts and means only.
    ``lower_is_better``: the metric's direction (True for all three of the paper's metrics)."""
    from scipy.stats import ttest_ind
    if not 0 < top <= 1 or not 0 < alpha < 1:
        raise ValueError(f"top={top}, alpha={alpha}: both must be fractions in (0, 1]")
    table = scored(df, lower_is_better)
    if table.empty:
        raise ValueError("the study table has no trial that ended (finished, early_stopped, diverged or "
                         "failed); run the study before comparing architectures")
    if baseline is not None and baseline not in set(table["arch"]):
        raise ValueError(f"baseline architecture {baseline!r} has no ended trial in this table (it has "
                         f"{arch_order(table['arch'].unique())}); pass one of those, or baseline=None")
    rows = []
    for task, of_task in table.groupby("task", sort=True):
        groups = {arch: of_task[of_task["arch"] == arch] for arch in arch_order(of_task["arch"].unique())}
        best = {arch: best_trials(g, top, lower_is_better) for arch, g in groups.items()}
        base = best.get(baseline)
        m = sum(1 for arch in groups if arch != baseline) if base is not None else 0
        for arch, group in groups.items():
            scores = best[arch]["test_score"].to_numpy(float)
            row = {"task": task, "arch": arch, "trials": len(group),
                   **{o: int((group["outcome"] == o).sum()) for o in ENDED},
                   "n_best": len(scores), "best10_mean": scores.mean(),
                   "best10_std": scores.std(ddof=1) if len(scores) > 1 else np.nan,
                   "n_params_best10": (best[arch]["n_params"].astype(float).mean()
                                       if "n_params" in group.columns else np.nan),
                   "all_mean": group["test_score"].mean(),
                   "t": np.nan, "p": np.nan, "p_bonferroni": np.nan,
                   "significant": False, "significant_bonferroni": False, "direction": "—"}
            reference = None if base is None else base["test_score"].to_numpy(float)
            if arch != baseline and reference is not None and len(scores) > 1 and len(reference) > 1:
                with warnings.catch_warnings():     # constant samples: SciPy warns, then gives NaN/inf (handled)
                    warnings.simplefilter("ignore", RuntimeWarning)
                    t, p = ttest_ind(scores, reference, equal_var=False)
                # both samples constant: t and p are NaN, and so is the corrected p (min(1, NaN) would be 1)
                row.update(t=float(t), p=float(p), p_bonferroni=min(1.0, float(p) * m) if np.isfinite(p) else np.nan)
                if np.isfinite(p):
                    row["significant"] = bool(p < alpha)
                    row["significant_bonferroni"] = bool(row["p_bonferroni"] < alpha)
                    if row["significant"]:
                        better = (scores.mean() < reference.mean()) == lower_is_better
                        row["direction"] = "better" if better else "worse"
            rows.append(row)
    return pd.DataFrame(rows)
