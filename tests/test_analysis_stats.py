"""The variant comparison (lstm_scratch.analysis.stats): Welch against SciPy, best 10 % chosen by
validation and scored by test, diverged/failed trials counted with the worst score."""
import numpy as np
import pandas as pd
import pytest
from scipy.stats import ttest_ind

from lstm_scratch.analysis.stats import best_trials, compare, n_best, scored, unscorable

from fake_study import COLUMNS, make_table


def table(rows):
    """A study table from (arch, k, outcome, valid, test) tuples; other columns filled plausibly."""
    full = [{"trial": f"{a}-{k:04d}", "arch": a, "k": k, "task": task, "hidden": 50, "lr": 1e-3,
             "momentum": 0.9, "noise": 0.1, "nesterov": True, "clip": None, "seed": k, "outcome": o,
             "epochs": 10, "best_epoch": 5, "valid_metric": v, "test_metric": t, "n_params": 1000,
             "wall_seconds": 1.0, "cpu_seconds": 1.0} for task, a, k, o, v, t in rows]
    return pd.DataFrame(full, columns=COLUMNS)


def test_welch_equals_scipy_and_bonferroni():
    df = make_table()
    result = compare(df).set_index("arch")
    ended = scored(df)
    best = {a: g.sort_values(["valid_score", "k"]).head(4)["test_score"].to_numpy()
            for a, g in ended.groupby("arch")}
    for arch in ("NFG", "NOAF", "CIFG", "NP"):
        t, p = ttest_ind(best[arch], best["V"], equal_var=False)
        assert result.loc[arch, "t"] == pytest.approx(t, rel=1e-12)
        assert result.loc[arch, "p"] == pytest.approx(p, rel=1e-12)
        assert result.loc[arch, "p_bonferroni"] == pytest.approx(min(1.0, 4 * p), rel=1e-12)
        assert result.loc[arch, "best10_mean"] == pytest.approx(best[arch].mean())
        assert result.loc[arch, "best10_std"] == pytest.approx(best[arch].std(ddof=1))
    # The planted effects: NFG and NOAF worse, CIFG and NP not different; V is the baseline.
    assert list(result["direction"]) == ["—", "worse", "worse", "—", "—"]
    assert result.loc[["NFG", "NOAF"], "significant_bonferroni"].all()
    assert not result.loc[["V", "CIFG", "NP"], "significant"].any()
    assert np.isnan(result.loc["V", "p"])
    assert result.loc["V", "n_params_best10"] > 0


def test_best_chosen_by_validation_scored_by_test():
    """Validation and test disagree on purpose: the best by validation are the worst by test."""
    rows = [("jsb", "V", k, "finished", float(k), 100.0 - k) for k in range(20)]
    rows += [("jsb", "NP", k, "finished", float(k), 50.0 + k % 3) for k in range(20)]
    result = compare(table(rows)).set_index("arch")
    assert result.loc["V", "n_best"] == 2                              # 10 % of 20
    assert result.loc["V", "best10_mean"] == pytest.approx((100 + 99) / 2)   # valid 0 and 1 → test 100, 99
    assert result.loc["NP", "best10_mean"] == pytest.approx((50 + 51) / 2)
    assert result.loc["NP", "direction"] == "better"                  # on test, though worse on validation


def test_diverged_and_failed_counted_with_the_worst_score():
    """A trial with no metric scores the worst finite test metric of its task (every architecture)."""
    rows = [("jsb", "V", k, "finished", 1.0 + k, 10.0 + k) for k in range(10)]        # worst test: 19
    rows += [("jsb", "NFG", k, "diverged", np.nan, np.nan) for k in range(8)]
    rows += [("jsb", "NFG", 8, "failed", np.nan, np.nan), ("jsb", "NFG", 9, "early_stopped", 0.5, 12.0)]
    rows += [("jsb", "NP", k, "pending", np.nan, np.nan) for k in range(10)]          # not run yet
    rows += [("jsb", "NP", 10, "finished", 3.0, 11.0)]
    df = table(rows)
    ended = scored(df).set_index("trial")
    assert ended.loc["NFG-0000", "test_score"] == 19.0 and ended.loc["NFG-0008", "test_score"] == 19.0
    assert ended.loc["NFG-0000", "valid_score"] == 10.0        # the worst validation metric → ranked last
    assert bool(ended.loc["NFG-0000", "broken"]) and not bool(ended.loc["NFG-0009", "broken"])
    result = compare(df, top=0.2).set_index("arch")
    nfg = result.loc["NFG"]
    assert (nfg["trials"], nfg["diverged"], nfg["failed"], nfg["early_stopped"]) == (10, 8, 1, 1)
    assert nfg["best10_mean"] == pytest.approx((12.0 + 19.0) / 2)   # its one good trial + a broken one
    assert result.loc["NP", "trials"] == 1                          # pending trials are not counted
    assert np.isnan(result.loc["NP", "p"]) and result.loc["NP", "direction"] == "—"   # 1 best trial


def test_best_ten_percent_rounds_half_up_and_prefers_a_trial_that_finished_on_a_tie():
    assert [n_best(n, 0.10) for n in (0, 3, 15, 20, 25, 35, 45, 200)] == [0, 1, 2, 2, 3, 4, 5, 20]
    # NFG's diverged trial borrows the worst validation score, 9.0 — a tie with NFG's own worst finished
    # trial, which has the larger k: the trial that finished is chosen, not the one that broke.
    rows = [("jsb", "V", k, "finished", 1.0 + k, 10.0 + k) for k in range(9)]
    rows += [("jsb", "NFG", 0, "diverged", np.nan, np.nan), ("jsb", "NFG", 1, "finished", 9.0, 30.0)]
    ended = scored(table(rows))
    nfg = ended[ended["arch"] == "NFG"]
    assert nfg["valid_score"].tolist() == [9.0, 9.0]
    assert best_trials(nfg, 0.5)["outcome"].tolist() == ["finished"]


def test_constant_best_samples_have_no_p_and_no_corrected_p():
    rows = [("jsb", a, k, "finished", float(k), 5.0) for a in ("V", "NP") for k in range(20)]
    result = compare(table(rows)).set_index("arch")
    assert np.isnan(result.loc["NP", "p"]) and np.isnan(result.loc["NP", "p_bonferroni"])
    assert not result.loc["NP", "significant_bonferroni"] and result.loc["NP", "direction"] == "—"


def test_per_task_and_higher_is_better():
    rows = [(task, a, k, "finished", float(v), float(v)) for task in ("jsb", "arith")
            for a, shift in (("V", 0.0), ("GRU", 5.0)) for k, v in enumerate(np.arange(20) + shift)]
    rows += [("arith", "GRU", 20, "diverged", np.nan, np.nan)]
    df = table(rows)
    lower = compare(df).set_index(["task", "arch"])
    assert lower.loc[("jsb", "GRU"), "direction"] == "worse"
    higher = compare(df, lower_is_better=False).set_index(["task", "arch"])
    assert higher.loc[("jsb", "GRU"), "direction"] == "better"
    assert higher.loc[("jsb", "GRU"), "best10_mean"] == pytest.approx((24 + 23) / 2)
    # Higher is better: the worst score is the minimum (0), and the broken trial ranks last.
    assert scored(df, lower_is_better=False).set_index("trial").loc["GRU-0020", "test_score"] == 0.0


def test_architectures_come_in_the_papers_order_then_jzss_then_the_rest():
    archs = ("ZZZ", "GRU", "LSTM-B", "MUT1", "FGR", "TANH", "CIFG", "V", "LSTM", "AAA")
    rows = [("jsb", a, k, "finished", 1.0 + k, 1.0 + k) for a in archs for k in range(3)]
    order = list(compare(table(rows), baseline=None)["arch"])
    assert order == ["V", "CIFG", "FGR", "TANH", "LSTM", "LSTM-B", "GRU", "MUT1", "AAA", "ZZZ"]


def test_bad_input():
    df = make_table(trials=10)
    with pytest.raises(ValueError, match="lacks the column"):
        compare(df.drop(columns=["valid_metric"]))
    with pytest.raises(ValueError, match="baseline architecture 'v'"):
        compare(df, baseline="v")
    with pytest.raises(ValueError, match="pandas DataFrame"):
        compare(df.to_dict())
    with pytest.raises(ValueError, match="no trial that ended"):
        compare(df.assign(outcome="pending"))
    with pytest.raises(ValueError, match="fractions"):
        compare(df, top=0)
    with pytest.raises(ValueError, match=r"\['jsb'\]: no trial ended with finite"):
        compare(df.assign(outcome="diverged"))
    # the same reason, asked for without an exception (JZS's table reports the other tasks), only for the
    # task whose trials all broke; a task with one finished trial left is scorable
    two = pd.concat([df.assign(outcome="failed"), df.assign(task="nottingham")])
    assert unscorable(two).startswith("task(s) ['jsb']: no trial ended with finite") and unscorable(df) == ""
    first_good = (df["outcome"] == "finished").cumsum().eq(1) & (df["outcome"] == "finished")
    assert unscorable(df.assign(outcome=df["outcome"].where(first_good, "failed"))) == ""
    assert compare(df[df["arch"] == "CIFG"], baseline=None)["direction"].tolist() == ["—"]
