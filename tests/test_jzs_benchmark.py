"""JZS's benchmark (issue 13, part 5): loader options of a study (checked, stored, reaching the workers,
recorded), the reference space of study.json (and old files' ``paper_space``), the benchmark directory,
the report in the layout of JZS Table 1 with the LSTM-b question, and the published benchmark (``jzs
export``: the report from its tables alone, the same as from the live one, without Numba)."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstm_scratch import cli
from lstm_scratch.analysis import jzs_table
from lstm_scratch.analysis.report import reductions
from lstm_scratch.records import read_record
from lstm_scratch.search import Study
from lstm_scratch.search.benchmark import BENCHMARK_NAME, Benchmark
from lstm_scratch.search.space import JZS_SOURCE, PAPER_SOURCE, jzs_space, paper_space
from lstm_scratch.search.worker import run_one
from lstm_scratch.variants import JZS_ARCHITECTURES

SPEC = Path(__file__).resolve().parents[1].parent / "shared" / "SPEC.md"
# Tiny JZS trials: a budget of 1,500 parameters (N ≈ 10), one layer, one epoch.
TINY = dict(protocol="jzs", space="params=1500,layers=1", max_epochs=1)
TINY_SIZES = ["n_train=20", "n_valid=10", "n_test=10"]


# ------------------------------------------------------------------------------------ task options
@pytest.mark.parametrize("options, message", [
    (["n_trian=50"], r"task option 'n_trian': unknown for this task; task 'arithmetic' takes: seed .*n_train "
                     r"\(default 2000\).*distractor_mean"),
    (["memorise=3"], r"'memorise': unknown.*takes: .*max_digits"),          # memorisation's, not arithmetic's
    (["n_train=many"], r"task option n_train='many': give an integer \(default 2000\)"),
    (["signed_operands=maybe"], r"signed_operands='maybe': give true or false"),
    (["n_train=0"], r"task 'arithmetic', option\(s\) \{'n_train': 0\}: "
                    r"JzsSettings: n_train=0 must be an integer ≥ 1"),
    (["distractor_mean=-1"], r"distractor_mean=-1.0 must be a finite number ≥ 0"),
    (["n_train"], r"write NAME=VALUE"),
    (["n_train=5", "n_train=6"], r"'n_train' is given twice"),
    ({"n_train": 2.5}, r"n_train=2.5: give a value of the type of its default 2000"),
])
def test_bad_task_options_are_refused_before_anything_is_written(tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        Study.create(tmp_path / "s", task="arithmetic", archs="LSTM", trials=1, task_options=options, **TINY)
    assert not (tmp_path / "s").exists()


def test_bad_task_options_on_the_command_line_and_in_a_benchmark(tmp_path, capsys):
    assert cli.main(["search", "create", str(tmp_path / "s"), "--task", "nottingham", "--trials", "1",
                     "--protocol", "jzs", "--task-option", "n_train=5"]) == 2
    assert "task option 'n_train': unknown for this task; task 'nottingham' takes no options" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no task of this benchmark takes 'memorise'"):
        Benchmark.create(tmp_path / "b", trials=1, tasks="arithmetic,xml", task_options=["memorise=3"])
    with pytest.raises(ValueError, match="'jsb' is not a task of this benchmark"):
        Benchmark.create(tmp_path / "b", trials=1, task_options=["jsb.n_train=3"])
    with pytest.raises(ValueError, match="xml_max_steps=0 must be an integer ≥ 1"):       # the last study's error
        Benchmark.create(tmp_path / "b", trials=1, tasks="arithmetic,xml", task_options=["xml.xml_max_steps=0"])
    assert not (tmp_path / "s").exists() and not (tmp_path / "b").exists()


def test_task_options_are_stored_reach_the_workers_and_are_recorded(tmp_path):
    path = tmp_path / "s"
    study = Study.create(path, task="memorisation", archs="LSTM,GRU", trials=1, task_options=
                         ["n_train=37", "n_valid=11", "n_test=13", "seed=5"], **TINY)
    saved = json.loads((path / "study.json").read_text())
    assert saved["task_options"] == {"n_test": 13, "n_train": 37, "n_valid": 11, "seed": 5}
    assert Study.create(path, task="memorisation", archs="LSTM,GRU", trials=1,            # the same study again
                        task_options={"seed": 5, "n_train": 37, "n_valid": 11, "n_test": 13}, **TINY).id == study.id
    with pytest.raises(ValueError, match="another study.*task_options"):
        Study.create(path, task="memorisation", archs="LSTM,GRU", trials=1, task_options=["n_train=38"], **TINY)
    study.run(workers=1, progress=False)                   # spawned worker processes load the task themselves
    for trial in study.trials():
        record = read_record(trial.path / "record.json")
        assert record["task"]["sequences"] == {"train": 37, "valid": 11, "test": 13}
        assert record["labels"]["task_options"] == saved["task_options"]
        assert record["task"]["source"].endswith("seed 5")
    plain = Study.create(tmp_path / "plain", task="memorisation", archs="LSTM", trials=1, **TINY)
    assert plain.definition["task_options"] == {} and "task_options" not in plain.labels(plain.trial(0))
    assert len(plain.task_data("float64").train.inputs) == 2000          # no options: the generator's sizes


# ------------------------------------------------------------------------------------ reference space
@pytest.mark.parametrize("protocol, space, source", [("online", paper_space("timit_sample"), PAPER_SOURCE),
                                                     ("jzs", jzs_space("xml"), JZS_SOURCE)])
def test_old_study_json_with_paper_space_is_still_read(tmp_path, protocol, space, source):
    task = "timit_sample" if protocol == "online" else "xml"
    options = dict(task=task, archs="V" if protocol == "online" else "LSTM", trials=1, protocol=protocol,
                   space="nesterov=true" if protocol == "online" else None)
    study = Study.create(tmp_path / "s", **options)
    ranges = {name: dim.describe() for name, dim in space.items()}
    assert study.reference_space == {"source": source, "dimensions": ranges}
    file = tmp_path / "s" / "study.json"
    old = json.loads(file.read_text())
    old["paper_space"] = old.pop("reference_space")["dimensions"]        # as written before the rename
    del old["task_options"]
    file.write_text(json.dumps(old))
    reopened = Study.open(tmp_path / "s")
    assert reopened.reference_space == {"source": source, "dimensions": ranges} and reopened.task_options == {}
    assert Study.create(tmp_path / "s", **options).id == study.id          # still the same study
    if protocol == "online":                   # the report reads the TIMIT coin from either key
        assert reductions(old)[-2] == reductions(study.definition)[-2] == \
            "nesterov fixed at True (paper: one of True, False)"


def test_the_report_analyses_a_jzs_study_over_its_narrowed_space(tmp_path):
    """study.json's JZS names (``params`` is the column ``budget``) reach the analysed box; a choice of
    layers 1–2 spans [0.5, 2.5]; the full space gives JZS_SPACE itself."""
    from lstm_scratch.analysis import importance
    from lstm_scratch.analysis.report import space_from_definition
    full = Study.create(tmp_path / "full", task="xml", archs="LSTM", trials=1, protocol="jzs")
    assert space_from_definition(full.definition) == importance.JZS_SPACE
    narrow = Study.create(tmp_path / "narrow", task="xml", archs="LSTM", trials=1, protocol="jzs",
                          space="params=20000:50000,layers=1:2,lr=0.5:2,init_scale=0.05,clip_norm=2:10")
    space = space_from_definition(narrow.definition)
    assert space == {"lr": ("learning rate η", (0.5, 2.0), True), "budget": ("parameter budget", (2e4, 5e4), True),
                     "layers": ("stacked layers", (0.5, 2.5), False),
                     "init_scale": ("initialisation scale", (0.0, 0.0), True),
                     "clip_norm": ("gradient-norm clipping", (2.0, 10.0), True)}
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"protocol": "jzs", "lr": rng.uniform(0.5, 2, 8), "budget": rng.uniform(2e4, 5e4, 8),
                       "layers": [1, 2] * 4, "init_scale": 0.05, "clip_norm": rng.uniform(2, 10, 8)})
    assert importance.study_space(df, space) == {k: v for k, v in space.items() if k != "init_scale"}
    assert reductions(narrow.definition) == []                     # a JZS study: not the paper's reductions


# ------------------------------------------------------------------------------------ the LSTM-b gap
def test_gap_closed_by_hand():
    assert jzs_table.gap_closed(0.892, 0.902, 0.896, lower_is_better=False) == pytest.approx(2.5)   # JZS arithmetic
    assert jzs_table.gap_closed(0.425, 0.444, 0.460, lower_is_better=False) == pytest.approx(19 / 35)
    assert jzs_table.gap_closed(4.0, 3.5, 3.0, lower_is_better=True) == pytest.approx(0.5)       # NLL: lower
    assert jzs_table.gap_closed(4.0, 4.2, 3.0, lower_is_better=True) == pytest.approx(-0.2)
    assert np.isnan(jzs_table.gap_closed(3.0, 3.5, 4.0, lower_is_better=True))       # GRU worse: no gap
    assert np.isnan(jzs_table.gap_closed(0.5, 0.6, 0.5, lower_is_better=False))
    assert np.isnan(jzs_table.gap_closed(0.5, np.nan, 0.7, lower_is_better=False))


def _hand_study(task, scores: dict, trials: int) -> tuple[dict, pd.DataFrame]:
    """A study table by hand: trial k of ``arch`` has validation = test = scores[arch] + k·step (k = 0 best)."""
    lower = task in ("nottingham", "piano_midi")
    step = 0.001 if lower else -0.001
    rows = [{"trial": f"{arch}-{k:04d}", "arch": arch, "k": k, "task": task, "outcome": "finished",
             "valid_metric": value + k * step, "test_metric": value + k * step, "cpu_seconds": 10.0 + k}
            for arch, value in scores.items() for k in range(trials)]
    return {"task": task, "archs": list(scores), "trials": trials}, pd.DataFrame(rows)


def test_lstm_b_gap_and_welch_on_a_hand_made_table():
    studies = {"xml": _hand_study("xml", {"LSTM": 0.25, "LSTM-B": 0.375, "GRU": 0.5}, trials=20),
               "nottingham": _hand_study("nottingham", {"LSTM": 3.0, "LSTM-B": 3.1, "GRU": 3.5}, trials=20),
               "arithmetic": _hand_study("arithmetic", {"LSTM": 0.9, "LSTM-B": 0.9}, trials=1)}
    table = jzs_table.cells(studies)
    assert list(dict.fromkeys(table.task)) == ["arithmetic", "xml", "nottingham"]        # Table 1's order
    xml = table[table.task == "xml"].set_index("arch")
    assert xml.loc["GRU", "ours"] == 0.5 and xml.loc["LSTM", "best_trial"] == "LSTM-0000"  # k = 0 is the best
    assert xml.loc["LSTM", "jzs"] == 0.425 and (xml.ended == 20).all() and (xml.pending == 0).all()
    gaps = jzs_table.headline(table, studies).set_index("task")
    assert gaps.loc["xml", "gap_closed"] == 0.5                # (0.375 − 0.25) / (0.5 − 0.25)
    assert gaps.loc["xml", "jzs_gap_closed"] == pytest.approx(19 / 35)
    assert gaps.loc["xml", "answer"] == "mostly: LSTM-b closes 50% of the gap"
    # best 10 % = 2 trials a side: LSTM-b 0.375, 0.374 against GRU 0.5, 0.499 — worse, significantly
    assert gaps.loc["xml", "n_best"] == 2 and gaps.loc["xml", "b_vs_gru"] == "significantly worse"
    assert gaps.loc["xml", "b_vs_lstm"] == "significantly better" and gaps.loc["xml", "p_b_vs_gru"] < 1e-3
    assert not gaps.loc["nottingham", "gru_better"] and np.isnan(gaps.loc["nottingham", "gap_closed"])
    assert gaps.loc["nottingham", "answer"] == "no gap here: the GRU is not better than LSTM"
    assert gaps.loc["arithmetic", "answer"].startswith("not yet") and gaps.loc["arithmetic", "n_best"] == 0
    said = jzs_table.answer(gaps.reset_index())
    assert "The GRU beats LSTM on 1 of 3 task(s); LSTM-b closes xml 50% of it" in said
    assert said.startswith("Does LSTM-b close the LSTM–GRU gap? yes")
    assert ("Welch on the best 10 %: LSTM-b against LSTM — xml: significantly better; against GRU — xml: "
            "significantly worse.") in said
    # LSTM beats the GRU on nottingham, and LSTM-b (3.1) is worse than LSTM (3.0) there: said too
    assert said.endswith("Where the GRU is not better than LSTM (nottingham), LSTM-b against LSTM on the best 10 % "
                         "— nottingham: significantly worse.")
    no_gap = jzs_table.answer(gaps.drop(index="xml").reset_index())
    assert no_gap.startswith("No task shows an LSTM–GRU gap") and no_gap.endswith("nottingham: significantly worse.")
    cost = jzs_table.cost(studies, archs=10).set_index("task")
    assert cost.loc["xml", "cpu_s_per_trial"] == pytest.approx(19.5)             # mean of 10 … 29 s
    assert cost.loc["xml", "core_h_K20"] == pytest.approx(19.5 * 10 * 20 / 3600)
    assert cost.loc["benchmark", "core_h_K100"] == pytest.approx(cost.drop("benchmark").core_h_K100.sum())


def test_the_figures_colour_each_cell_by_welch_against_lstm():
    """One Fig. 3 per task with ended trials, boxes in JZS's cell order; against LSTM (Welch on the best
    10 %), better in green, worse in red; a task without LSTM is drawn uncoloured, its legend says so."""
    from matplotlib.colors import to_hex
    from lstm_scratch.analysis.figures import COLOURS
    studies = {"xml": _hand_study("xml", {"GRU": 0.5, "LSTM": 0.25, "TANH": 0.125, "LSTM-B": 0.25}, trials=20),
               "nottingham": _hand_study("nottingham", {"GRU": 3.0, "MUT1": 3.5}, trials=20),
               "memorisation": _hand_study("memorisation", {"LSTM": 0.5}, trials=20)}
    studies["memorisation"][1]["outcome"] = "pending"                                   # nothing ended
    built = jzs_table.figures_of(studies, jzs_table.cells(studies))
    assert [task for task, _, _ in built] == ["xml", "nottingham"]
    (_, caption, xml), (_, _, nottingham) = built
    assert caption.startswith("XML: test next-symbol accuracy (scored positions) (higher is better) by cell")
    left, right = xml.axes[:2]
    assert [t.get_text() for t in right.get_xticklabels()] == ["Tanh", "LSTM", "LSTM-b", "GRU"]     # JZS's labels
    faces = [to_hex(patch.get_facecolor()) for patch in right.patches]
    assert faces == [COLOURS["worse"], COLOURS["baseline"], COLOURS["—"], COLOURS["better"]]
    assert [t.get_text() for t in nottingham.legends[0].get_texts()] == ["not compared (no baseline)"]
    assert {to_hex(patch.get_facecolor()) for patch in nottingham.axes[1].patches} == {COLOURS["—"]}


def test_the_answer_names_the_fraction_its_welch_tests_used():
    """``jzs report --top 0.2`` compares the best 20 %: the headline sentence says so, not "10 %"."""
    studies = {"xml": _hand_study("xml", {"LSTM": 0.25, "LSTM-B": 0.375, "GRU": 0.5}, trials=20)}
    table = jzs_table.cells(studies)
    assert "Welch on the best 10 %: " in jzs_table.answer(jzs_table.headline(table, studies))
    said = jzs_table.answer(jzs_table.headline(table, studies, top=0.2), top=0.2)
    assert "Welch on the best 20 %: " in said and "10 %" not in said


def _broke(df, arch: str, keep: int = 0) -> pd.DataFrame:
    """``df`` with the trials k ≥ ``keep`` of ``arch`` diverged: no metrics."""
    df = df.copy()
    hit = (df["arch"] == arch) & (df["k"] >= keep)
    df.loc[hit, "outcome"] = "diverged"
    df.loc[hit, ["valid_metric", "test_metric"]] = np.nan
    return df


def test_welch_scores_broken_trials_with_the_worst_of_the_whole_task():
    """28 of LSTM-b's 30 trials diverged, so its best 10 % (3) holds one broken trial, which scores the
    worst test metric of the whole task — Tanh's 0.021, as in Table 1 — not the worst of LSTM and LSTM-b
    alone (LSTM's 0.221)."""
    from scipy.stats import ttest_ind
    definition, df = _hand_study("xml", {"TANH": 0.05, "LSTM": 0.25, "LSTM-B": 0.375, "GRU": 0.5}, trials=30)
    studies = {"xml": (definition, _broke(df, "LSTM-B", keep=2))}
    table = jzs_table.cells(studies)
    b = table.set_index("arch").loc["LSTM-B"]
    assert (b.ours, b.ended, b.broken) == (0.375, 30, 28)
    gaps = jzs_table.headline(table, studies).set_index("task")
    lstm_b, lstm, gru = [0.375, 0.374, 0.021], [0.25, 0.249, 0.248], [0.5, 0.499, 0.498]
    whole_lstm = ttest_ind(lstm_b, lstm, equal_var=False).pvalue
    assert gaps.loc["xml", "p_b_vs_lstm"] == pytest.approx(whole_lstm, rel=1e-9)
    assert gaps.loc["xml", "p_b_vs_gru"] == pytest.approx(ttest_ind(lstm_b, gru, equal_var=False).pvalue, rel=1e-9)
    pair_only = ttest_ind([0.375, 0.374, 0.221], lstm, equal_var=False).pvalue     # what scoring the pair gave
    assert abs(pair_only - whole_lstm) > 0.05


def test_a_cell_whose_trials_all_broke_shows_no_number():
    """Every LSTM-b trial diverged: its cell says "broke", not the task's worst score, and the gap it
    would close is not computed from that score."""
    definition, df = _hand_study("xml", {"LSTM": 0.25, "LSTM-B": 0.375, "GRU": 0.5}, trials=20)
    studies = {"xml": (definition, _broke(df, "LSTM-B"))}
    table = jzs_table.cells(studies)
    b = table.set_index("arch").loc["LSTM-B"]
    assert np.isnan(b.ours) and pd.isna(b.best_trial) and (b.ended, b.broken) == (20, 20)
    assert table.set_index("arch").loc["LSTM", "ours"] == 0.25                     # the others as before
    assert jzs_table.table1(table).set_index("Cell").loc["LSTM-b", "XML (acc)"] == "broke [20]"
    gaps = jzs_table.headline(table, studies).set_index("task")
    assert np.isnan(gaps.loc["xml", "gap_closed"]) and not gaps.loc["xml", "gru_better"]
    assert gaps.loc["xml", "answer"] == "no answer: every trial of LSTM-b that ended diverged or failed"
    assert gaps.loc["xml", "b_vs_gru"] == "significantly worse"        # in the comparison they count, worst
    assert jzs_table.notes(table) == ["XML: every trial that ended diverged or failed in LSTM-b (20) — shown as "
                                      "'broke', no number (the worst score of the task they count with in the "
                                      "comparison is not a measurement of the cell)."]


def test_a_task_whose_trials_all_broke_is_noted_and_the_others_are_reported():
    xml = _hand_study("xml", {"LSTM": 0.25, "LSTM-B": 0.375, "GRU": 0.5}, trials=20)
    definition, df = _hand_study("memorisation", {"LSTM": 0.25, "LSTM-B": 0.375, "GRU": 0.5}, trials=5)
    studies = {"xml": xml, "memorisation": (definition, _broke(_broke(_broke(df, "LSTM"), "LSTM-B"), "GRU"))}
    table = jzs_table.cells(studies)
    mem = table[table.task == "memorisation"]
    assert mem.ours.isna().all() and (mem.broken == mem.ended).all() and (mem.ended == 5).all()
    assert table[table.task == "xml"].set_index("arch").loc["GRU", "ours"] == 0.5
    said = jzs_table.notes(table)
    assert len(said) == 1 and said[0].startswith("Memorisation: no numbers — task(s) ['memorisation']: no trial "
                                                 "ended with finite validation and test metrics")
    assert "narrow the learning rate" in said[0]
    gaps = jzs_table.headline(table, studies).set_index("task")
    assert gaps.loc["memorisation", "answer"] == "no answer: the task has no scores (see its note)"
    assert gaps.loc["memorisation", "b_vs_lstm"] == "no scores (see the task's note)"
    assert gaps.loc["xml", "gap_closed"] == 0.5
    assert set(jzs_table.table1(table)["Memorisation (acc)"]) == {"broke [5]"}


def test_the_benchmark_cost_needs_every_task():
    import warnings
    xml = _hand_study("xml", {"LSTM": 0.25, "GRU": 0.5}, trials=4)
    definition, df = _hand_study("nottingham", {"LSTM": 3.0, "GRU": 3.5}, trials=4)
    studies = {"xml": xml, "nottingham": (definition, df.assign(outcome="pending", valid_metric=np.nan,
                                                                 test_metric=np.nan, cpu_seconds=np.nan))}
    with warnings.catch_warnings():
        warnings.simplefilter("error")                 # np.nanmean over all-NaN warned here
        costs = jzs_table.cost(studies, archs=10).set_index("task")
    assert costs.loc["xml", "core_h_K20"] == pytest.approx(11.5 * 10 * 20 / 3600)    # mean of 10 … 13 s
    assert np.isnan(costs.loc["nottingham", "cpu_s_per_trial"])
    assert costs.loc["benchmark", ["cpu_s_per_trial", "core_h_K20", "core_h_K50", "core_h_K100"]].isna().all()
    assert costs.loc["benchmark", "trials_ended"] == 8
    partial = ", ".join(f"{11.5 * 10 * k / 3600:.3g}" for k in (20, 50, 100))
    assert jzs_table.cost_notes(costs.reset_index()) == [
        "Cost: no ended trial with CPU seconds yet in nottingham, so the benchmark's totals are not given; the "
        f"other 1 task(s) alone (a partial sum): {partial} core-hours for K = 20, 50, 100."]
    assert jzs_table.cost_notes(jzs_table.cost({"xml": xml}, archs=10)) == []
    none = jzs_table.cost({"nottingham": studies["nottingham"]}, archs=10)
    assert jzs_table.cost_notes(none) == ["Cost: no task has an ended trial with CPU seconds yet (nottingham); "
                                          "nothing to project."]


def test_a_report_with_a_broken_task_and_a_task_not_run(tmp_path):
    """One task all diverged, one not started: the report is still written, the rest in it, with notes."""
    bench = Benchmark.create(tmp_path / "bench", trials=4, tasks="xml,memorisation,nottingham")
    _hand_study("xml", {"LSTM": 0.25, "LSTM-B": 0.375, "GRU": 0.5}, trials=4)[1].to_csv(
        bench.study_path("xml") / "trials.csv", index=False)
    broken = _broke(_hand_study("memorisation", {"LSTM": 0.25, "GRU": 0.5}, trials=4)[1], "LSTM")
    _broke(broken, "GRU").to_csv(bench.study_path("memorisation") / "trials.csv", index=False)
    out = tmp_path / "report"
    jzs_table.write_jzs_report(bench.path, out)
    md = (out / "report.md").read_text()
    assert "- Memorisation: no numbers — task(s) ['memorisation']" in md
    assert "Cost: no ended trial with CPU seconds yet in nottingham" in md
    gaps = pd.read_csv(out / "gap.csv").set_index("task")
    assert gaps.loc["xml", "gap_closed"] == 0.5 and gaps.loc["memorisation", "answer"].startswith("no answer")
    assert gaps.loc["nottingham", "answer"].startswith("not yet")
    # a figure for the task with scores only: none for the broken task, none for the one not run
    assert sorted(p.name for p in (out / "figures").iterdir()) == ["jzs_xml.png", "jzs_xml.svg"]
    assert "![XML: test next-symbol accuracy" in md and "(figures/jzs_xml.png)" in md
    assert pd.read_csv(out / "cost.csv").set_index("task").loc["benchmark", "core_h_K20"] != \
        pd.read_csv(out / "cost.csv").set_index("task").loc["benchmark", "core_h_K20"]      # NaN


def test_the_benchmark_status_line_adds_the_studies_and_names_those_without_an_estimate():
    from lstm_scratch.search.summary import benchmark_text

    def info(done, pending, running, cpu, eta, failed=0):
        return {"total": {"done": done, "failed": failed, "diverged": 0, "pending": pending, "running": running,
                          "trials": done + failed + pending + running, "cpu_hours": cpu, "eta_hours": eta}}
    infos = {"arithmetic": info(150, 47, 2, 1.5, 0.5, failed=1), "xml": info(0, 200, 0, 0.0, None),
             "memorisation": info(0, 200, 0, 0.0, None)}
    assert benchmark_text(infos) == ("benchmark: 151/600 trials ended, 1.50 CPU hours spent; ETA ≥ 30.0 min — no "
                                     "estimate yet for xml, memorisation (no trial ended)")
    infos["xml"], infos["memorisation"] = info(100, 0, 100, 2.0, 1.25), info(200, 0, 0, 0.25, 0.0)
    assert benchmark_text(infos) == "benchmark: 451/600 trials ended, 3.75 CPU hours spent; ETA 1.8 h"
    infos["xml"] = info(200, 0, 0, 2.0, 0.0)
    infos["arithmetic"] = info(199, 0, 0, 1.5, 0.0, failed=1)
    assert benchmark_text(infos) == "benchmark: 600/600 trials ended, 3.75 CPU hours spent; nothing left to run"
    assert benchmark_text({"xml": info(0, 200, 0, 0.0, None)}) == (
        "benchmark: 0/200 trials ended, 0.00 CPU hours spent; ETA ? — no estimate yet for xml (no trial ended)")


# ------------------------------------------------------------------------------------ the benchmark directory
def test_a_directory_holding_something_else_is_refused_for_a_study_and_a_benchmark(tmp_path):
    """One check for both (:func:`.study.existing_definition`): a file, a directory with other files, or
    another definition is refused, naming the place and the remedy, before anything is written."""
    create = {"study": lambda path, **changes: Study.create(path, task="xml", archs="LSTM", protocol="jzs",
                                                            **{"trials": 1, **changes}),
              "benchmark": lambda path, **changes: Benchmark.create(path, tasks="xml", **{"trials": 1, **changes})}
    for what, make in create.items():
        (tmp_path / f"{what}-file").write_text("mine")
        (tmp_path / f"{what}-dir").mkdir()
        (tmp_path / f"{what}-dir" / "notes.txt").write_text("mine")
        for taken in (tmp_path / f"{what}-file", tmp_path / f"{what}-dir"):
            with pytest.raises(ValueError, match=rf"{taken.name}: exists and is not an empty directory \(no "
                                                 rf"{what}\.json in it\); choose a new directory for the {what}"):
                make(taken)
        assert (tmp_path / f"{what}-file").read_text() == "mine"
        assert [p.name for p in (tmp_path / f"{what}-dir").iterdir()] == ["notes.txt"]
        first = make(tmp_path / what)
        file = tmp_path / what / f"{what}.json"
        before = file.read_bytes()
        assert make(tmp_path / what).definition["id"] == first.definition["id"]     # the same: that one
        with pytest.raises(ValueError, match=rf"{what}\.json: this directory holds another {what} \(field: "
                                             r"\(existing, given\)\) \{'trials': \(1, 2\)\}; (open|run) it as it is"):
            make(tmp_path / what, trials=2)
        assert file.read_bytes() == before


# ------------------------------------------------------------------------------------ Table 1 from a benchmark
def _spec_table1() -> dict:
    """JZS Table 1 as SPEC §9 prints it: {row label: (arithmetic, xml)}."""
    if not SPEC.is_file():
        pytest.skip(f"{SPEC} not found (clone shared/ beside the repo)")
    text = SPEC.read_text(encoding="utf-8")
    line = next(line for line in text.splitlines() if line.startswith("- JZS Table 1"))
    line += text.split(line, 1)[1].split("\n- ", 1)[0]
    found = re.findall(r"(Tanh|LSTM-b|LSTM|GRU|MUT\d) (\.\d+) / (\.\d+)", line)
    return {label: (float(arithmetic), float(xml)) for label, arithmetic, xml in found}


def test_table1_of_a_tiny_benchmark(tmp_path, capsys):
    bench_dir, out = tmp_path / "bench", tmp_path / "report"
    args = ["jzs", "create", str(bench_dir), "--trials", "1", "--tasks", "arithmetic,xml,memorisation",
            "--max-epochs", "1", "--space", "params=1500", "--space", "layers=1"]
    for option in TINY_SIZES:
        args += ["--task-option", option]
    assert cli.main(args) == 0
    bench = Benchmark.open(bench_dir)
    assert json.loads((bench_dir / BENCHMARK_NAME).read_text())["task_options"]["xml"] == \
        {"n_test": 10, "n_train": 20, "n_valid": 10}
    assert cli.main(args) == 0                                                 # again: the same benchmark
    studies = bench.studies()
    assert list(studies) == ["arithmetic", "xml", "memorisation"]
    trials = [(study, t) for study in studies.values() for t in study.trials()]
    assert len(trials) == 30 and {t.arch for _, t in trials} == set(JZS_ARCHITECTURES)
    for study, trial in trials[:-1]:                                          # all but one: UNFINISHED
        assert run_one(study, trial.index)["state"] == "done"
    assert cli.main(["jzs", "report", str(bench_dir), "--out", str(out)]) == 0
    assert "UNFINISHED: 1 of 30 trials" in (out / "report.md").read_text()
    capsys.readouterr()
    assert cli.main(["jzs", "status", str(bench_dir)]) == 0
    said = capsys.readouterr().out
    assert said.count("10/10 trials ended; nothing left to run") == 2 and "9/10 trials ended; ETA " in said
    assert "benchmark: 29/30 trials ended, " in said
    run_one(*trials[-1][:1], trials[-1][1].index)
    assert cli.main(["jzs", "status", str(bench_dir)]) == 0
    assert re.search(r"benchmark: 30/30 trials ended, \d+\.\d\d CPU hours spent; nothing left to run\n$",
                     capsys.readouterr().out)
    assert cli.main(["jzs", "report", str(bench_dir), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"report: {out / 'index.html'}"
    md = (out / "report.md").read_text()
    assert "UNFINISHED" not in md
    assert "REDUCED: 1 trials per cell, fewer than the benchmark's stated budget of 100" in md
    assert "| Cell | Arithmetic (acc) | Arithmetic JZS | XML (acc) | XML JZS | Memorisation (acc) |" in md
    page = (out / "index.html").read_text()
    assert "Does LSTM-b close the LSTM–GRU gap?" in md and "<table" in page
    # the gap table as shown: readable headings and numbers (gap.csv keeps the analysis' columns)
    assert "| task | metric | LSTM | LSTM-b | GRU | gap closed | JZS's gap closed | best trials a side |" in md
    assert "| task | trials ended | CPU s per trial | core-hours, 20 per cell |" in md
    # one figure per task, PNG and SVG, linked from report.md and embedded in index.html
    for task, heading in (("arithmetic", "Arithmetic"), ("xml", "XML"), ("memorisation", "Memorisation")):
        assert (out / "figures" / f"jzs_{task}.png").stat().st_size > 10_000
        assert (out / "figures" / f"jzs_{task}.svg").read_text().lstrip().startswith("<?xml")
        assert f"![{heading}: test next-symbol accuracy" in md and f"([SVG](figures/jzs_{task}.svg))" in md
    assert page.count("<img alt='") == 3 and page.count("src='data:image/png;base64,") == 3
    table = pd.read_csv(out / "table1.csv")
    assert list(table.columns[:4]) == ["task", "arch", "cell", "expected"]
    assert list(dict.fromkeys(table.task)) == ["arithmetic", "xml", "memorisation"]
    for task, rows in table.groupby("task"):
        assert list(rows.cell) == ["Tanh", "LSTM", "LSTM-f", "LSTM-i", "LSTM-o", "LSTM-b", "GRU", "MUT1", "MUT2",
                                   "MUT3"]
        assert (rows.ended == 1).all() and rows.ours.between(0, 1).all() and (rows.cpu_s_per_trial > 0).all()
        frame = studies[task].to_dataframe().set_index("arch")
        assert list(rows.ours) == list(frame.loc[list(rows.arch), "test_metric"])     # one trial: its test metric
    spec = _spec_table1()
    assert len(spec) == 7
    for label, (arithmetic, xml) in spec.items():
        row = table[table.cell == label].set_index("task")
        assert (row.loc["arithmetic", "jzs"], row.loc["xml", "jzs"]) == (arithmetic, xml)
    assert table[table.task == "memorisation"].jzs.isna().all()
    assert table[table.cell.isin(["LSTM-f", "LSTM-i", "LSTM-o"])].jzs.isna().all()
    gap = pd.read_csv(out / "gap.csv")
    assert list(gap.task) == ["arithmetic", "xml", "memorisation"]
    assert gap.set_index("task").loc["arithmetic", "jzs_gap_closed"] == pytest.approx(2.5)
    cost = pd.read_csv(out / "cost.csv")
    assert list(cost.task) == ["arithmetic", "xml", "memorisation", "benchmark"] and (cost.trials_ended[:3] == 10).all()


# ------------------------------------------------------------------------------------ publishing a benchmark
PUBLISHED_FILES = ("study.json", "trials.csv", "records.jsonl.gz")


def _publish_copy(bench_dir: Path, to: Path) -> Path:
    """Copy what a published benchmark keeps — benchmark.json and each study's study.json, trials.csv,
    records.jsonl.gz — and nothing else (no trial directories, no events.log)."""
    to.mkdir()
    (to / BENCHMARK_NAME).write_bytes((bench_dir / BENCHMARK_NAME).read_bytes())
    for task in Benchmark.open(bench_dir).tasks:
        (to / task).mkdir()
        for name in PUBLISHED_FILES:
            (to / task / name).write_bytes((bench_dir / task / name).read_bytes())
    return to


def test_a_published_benchmark_reports_the_same_tables_as_the_live_one(tmp_path, capsys):
    bench_dir = tmp_path / "bench"
    bench = Benchmark.create(bench_dir, trials=1, tasks="arithmetic", task_options=TINY_SIZES, max_epochs=1,
                             space="params=1500,layers=1")
    study = bench.studies()["arithmetic"]
    for trial in study.trials()[:-1]:                             # one trial left pending: UNFINISHED in both
        assert run_one(study, trial.index)["state"] == "done"
    assert cli.main(["jzs", "export", str(tmp_path / "nowhere")]) == 2
    assert "no benchmark here" in capsys.readouterr().err
    assert cli.main(["jzs", "export", str(bench_dir)]) == 0
    said = capsys.readouterr().out
    assert f"10 trials -> {bench_dir / 'arithmetic' / 'trials.csv'}" in said
    assert f"9 records -> {bench_dir / 'arithmetic' / 'records.jsonl.gz'}" in said
    # the same files as 'search export' writes for the study alone: one code path
    alone = tmp_path / "alone"
    alone.mkdir()
    assert cli.main(["search", "export", str(study.path), "--csv", str(alone / "trials.csv"),
                     "--records", str(alone / "records.jsonl.gz")]) == 0
    for name in PUBLISHED_FILES[1:]:
        assert (alone / name).read_bytes() == (study.path / name).read_bytes()
    assert not list(study.path.glob(".*.part"))                  # atomic writes leave no temporary behind

    published = _publish_copy(bench_dir, tmp_path / "published")
    reports = {}
    for name, where in (("live", bench_dir), ("published", published)):
        reports[name] = tmp_path / f"report-{name}"
        assert cli.main(["jzs", "report", str(where), "--out", str(reports[name])]) == 0
    for name in ("table1.csv", "gap.csv", "cost.csv", "report.md"):
        assert (reports["live"] / name).read_bytes() == (reports["published"] / name).read_bytes(), name
    table = pd.read_csv(reports["published"] / "table1.csv")
    assert table.ended.sum() == 9 and table.pending.sum() == 1
    assert "UNFINISHED: 1 of 10 trials" in (reports["published"] / "report.md").read_text()
    # the run goes on after the export: --published still reports the exported tables, the live one moves on
    assert run_one(study, study.trials()[-1].index)["state"] == "done"
    for name, published_only in (("moved-on", False), ("as-published", True)):
        reports[name] = tmp_path / f"report-{name}"
        assert cli.main(["jzs", "report", str(bench_dir), "--out", str(reports[name]),
                         *(["--published"] if published_only else [])]) == 0
    for name in ("table1.csv", "gap.csv", "cost.csv", "report.md"):
        assert (reports["as-published"] / name).read_bytes() == (reports["published"] / name).read_bytes(), name
    assert pd.read_csv(reports["moved-on"] / "table1.csv").ended.sum() == 10
    # exporting the published copy would replace its table with pending trials: refused, nothing written
    before = (published / "arithmetic" / "trials.csv").read_bytes()
    assert cli.main(["jzs", "export", str(published)]) == 2
    assert "a published study" in capsys.readouterr().err
    assert (published / "arithmetic" / "trials.csv").read_bytes() == before


def test_a_benchmark_exported_before_a_study_started_exports_again(tmp_path, capsys):
    """Export while the first study runs: the studies not started have no trial directories yet, only the
    table of pending trials the first export wrote. Nothing is lost by rewriting that, so a second export
    works (a table with ended trials and no trial directories is still refused: the test above)."""
    bench_dir = tmp_path / "bench"
    bench = Benchmark.create(bench_dir, trials=1, tasks="arithmetic,xml", task_options=TINY_SIZES, max_epochs=1,
                             space="params=1500,layers=1")
    study = bench.studies()["arithmetic"]
    assert run_one(study, study.trials()[0].index)["state"] == "done"
    assert not (bench_dir / "xml" / "trials").exists()
    for _ in range(2):
        assert cli.main(["jzs", "export", str(bench_dir)]) == 0
        said = capsys.readouterr().out
        assert f"10 trials -> {bench_dir / 'xml' / 'trials.csv'}" in said and "0 records -> " in said
        assert f"1 records -> {bench_dir / 'arithmetic' / 'records.jsonl.gz'}" in said
    assert set(pd.read_csv(bench_dir / "xml" / "trials.csv").outcome) == {"pending"}


def test_reporting_the_published_tables_of_a_benchmark_never_exported_names_the_study_and_the_fix(tmp_path, capsys):
    bench = Benchmark.create(tmp_path / "bench", trials=1, tasks="arithmetic", task_options=TINY_SIZES, max_epochs=1)
    out = tmp_path / "report"
    assert cli.main(["jzs", "report", str(bench.path), "--out", str(out), "--published"]) == 2
    said = capsys.readouterr().err
    assert f"{bench.path / 'arithmetic'}: no published table" in said and f"jzs export {bench.path}" in said
    assert not out.exists()                                      # nothing written


NO_NUMBA = """
import sys
sys.path.insert(0, sys.argv[1])
from lstm_scratch import cli
assert cli.main(["jzs", "report", sys.argv[2], "--out", sys.argv[3]]) == 0
assert "numba" not in sys.modules, "reporting a published benchmark loaded Numba"
print("ok")
"""


def test_a_published_benchmark_is_reported_without_importing_numba(tmp_path):
    from lstm_scratch.search import benchmark
    assert (jzs_table.BENCHMARK_NAME, jzs_table.BENCHMARK_FORMAT) == (BENCHMARK_NAME, benchmark.BENCHMARK_FORMAT)
    bench = Benchmark.create(tmp_path / "bench", trials=4, tasks="xml,nottingham")       # defined, not run
    for task, scores in (("xml", {"LSTM": 0.25, "LSTM-B": 0.375, "GRU": 0.5}),
                         ("nottingham", {"LSTM": 3.0, "LSTM-B": 3.1, "GRU": 3.5})):
        _hand_study(task, scores, trials=4)[1].to_csv(bench.study_path(task) / "trials.csv", index=False)
    out = tmp_path / "report"
    done = subprocess.run([sys.executable, "-c", NO_NUMBA, str(Path(__file__).parents[1]), str(bench.path), str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr
    gaps = pd.read_csv(out / "gap.csv").set_index("task")
    assert gaps.loc["xml", "gap_closed"] == 0.5 and not gaps.loc["nottingham", "gru_better"]
    table = pd.read_csv(out / "table1.csv")
    assert (table[table.arch.isin(["LSTM", "LSTM-B", "GRU"])].ended == 4).all()
    assert (table[~table.arch.isin(["LSTM", "LSTM-B", "GRU"])].ended == 0).all()      # cells the table lacks


@pytest.mark.parametrize("content, message", [
    (None, r"no benchmark here"),
    ("{", r"cannot read the benchmark definition"),
    (json.dumps({"format": "lstm_scratch.study/1"}), r"not a lstm_scratch.jzs_benchmark/1 benchmark"),
    (json.dumps({"format": "lstm_scratch.jzs_benchmark/1", "tasks": ["xml"]}), r"damaged.*missing \['archs'"),
])
def test_reporting_a_directory_that_is_not_a_benchmark_is_refused(tmp_path, content, message):
    if content is not None:
        (tmp_path / BENCHMARK_NAME).write_text(content)
    with pytest.raises(ValueError, match=message):
        jzs_table.write_jzs_report(tmp_path, tmp_path / "report")
    assert not (tmp_path / "report").exists()


def test_the_report_says_where_a_task_is_not_jzss():
    """Shorter arithmetic operands than JZS's 8 digits (the benchmark's default: 3) are said beside the
    table; JZS's own digits are not flagged."""
    from lstm_scratch.analysis.jzs_table import setup_text
    base = {"tasks": ["arithmetic", "xml"], "trials": 20, "seed": 0, "max_epochs": 20, "patience": 5,
            "dtype": "float64", "full_trials": 100}
    short = setup_text({**base, "task_options": {"arithmetic": {"max_digits": 3}}})
    assert "Arithmetic is not JZS's task: operands of up to 3 digits (theirs: up to 8)" in short
    assert "not JZS's task" not in setup_text({**base, "task_options": {"arithmetic": {"max_digits": 8}}})
    assert "not JZS's task" not in setup_text({**base, "task_options": {}})
    assert "not JZS's task" not in setup_text({**base, "tasks": ["xml"], "task_options": {"arithmetic": {"max_digits": 3}}})
