"""The study report (lstm_scratch.analysis.report, table, and ``lstm-odyssey report``): diverged and
failed trials, a single architecture, an unfinished study, a synthetic stand-in, bad input."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lstm_scratch.analysis.report import write_report
from lstm_scratch.analysis.table import load
from lstm_scratch.cli import main

from fake_study import make_definition, make_table


def report(tmp_path, definition, df, name="out"):
    index = write_report([(definition, df)], tmp_path / name)
    return index, index.read_text(encoding="utf-8"), (index.parent / "report.md").read_text(encoding="utf-8")


def test_report_with_diverged_and_failed_trials(tmp_path):
    definition = {**make_definition(), "name": "fake_jsb"}
    index, page, md = report(tmp_path, definition, make_table(diverged=3, failed=1))
    out = index.parent
    # One self-contained page: every image is inline, nothing refers to a file beside it.
    assert re.findall(r"<img[^>]*src='([^']{0,22})", page) == ["data:image/png;base64,"] * 4
    assert "<link" not in page and "<script" not in page
    for text in ("Scorecard against the paper", "Architectures against vanilla (Welch)", "fANOVA",
                 "lstm_scratch.study/1", "scikit-learn", "log10"):
        assert text in page
    counts = pd.read_csv(out / "fake_jsb_counts.csv").set_index("arch")
    assert counts["diverged"].tolist() == [3] * 5 and counts["failed"].tolist() == [1] * 5
    assert counts["missing"].sum() == 0
    card = pd.read_csv(out / "scorecard.csv").set_index("finding")
    assert card.loc["NFG significantly worse than V", "verdict"] == "agrees"           # planted
    assert card.loc["CIFG not significantly different from V", "verdict"] == "agrees"
    assert card.loc["η has the largest share of variance", "verdict"] == "agrees"
    assert set(card["verdict"]) <= {"agrees", "disagrees", "not testable"}
    comparison = pd.read_csv(out / "fake_jsb_comparison.csv")
    assert list(comparison["arch"]) == ["V", "NFG", "NOAF", "CIFG", "NP"]
    for figure in ("fig3", "fig4", "fig5", "fig6"):
        assert (out / "figures" / f"fake_jsb_{figure}.png").is_file()
        assert (out / "figures" / f"fake_jsb_{figure}.svg").is_file()
        assert f"figures/fake_jsb_{figure}.png" in md
    assert "SYNTHETIC" not in page and "UNFINISHED" not in page


def test_report_single_architecture(tmp_path):
    definition = {**make_definition(archs=("V",)), "name": "only_v"}
    _, page, _ = report(tmp_path, definition, make_table(archs=("V",)))
    card = pd.read_csv(tmp_path / "out" / "scorecard.csv").set_index("finding")
    assert card.loc["NFG significantly worse than V", "verdict"] == "not testable"
    assert card.loc["NFG significantly worse than V", "note"] == "NFG is not in this study"
    assert card.loc["no variant significantly better than V", "verdict"] == "not testable"
    assert card.loc["η has the largest share of variance", "verdict"] == "agrees"      # 40 trials of V


def test_report_repeats_the_pooled_fanova_without_architectures_that_blow_up(tmp_path):
    # As on JSB: a few NOAF trials end at test NLL in the thousands (worse than knowing nothing, 88 ln 2)
    # and take the pooled variance.
    df = make_table(diverged=0)
    rows = df.index[(df["arch"] == "NOAF") & (df["outcome"] != "failed")][:5]
    df.loc[rows, "test_metric"] = 1e3
    index, page, md = report(tmp_path, {**make_definition(), "name": "blowup"}, df)
    out = index.parent
    card = pd.read_csv(out / "scorecard.csv").set_index("finding")
    largest = card.loc["η has the largest share of variance"]
    assert largest["without blow-ups"].startswith("agrees: η ") and "(pooled without NOAF)" in \
        largest["without blow-ups"]
    # Welch's rows are about the best 10 %, which blow-ups do not reach: nothing to repeat there.
    assert pd.isna(card.loc["NFG significantly worse than V", "without blow-ups"])     # empty in the CSV
    shares = pd.read_csv(out / "blowup_importance.csv")
    assert set(shares["arch"]) == {"pooled", "pooled without NOAF", "V", "NFG", "NOAF", "CIFG", "NP"}
    lr = shares[shares["term"] == "lr"].set_index("arch")["fraction"]
    assert lr["pooled"] < 0.5 < 0.8 < lr["pooled without NOAF"]
    assert "Blow-ups: on jsb, 5 NOAF trial(s) ended worse than a predictor that knows nothing (test metric beyond 61.0)" in md
    assert "Blow-ups" in page
    assert "Fig. 4 — fANOVA marginals (all architectures pooled, without those with blow-ups: jsb: NOAF)" in md
    # Without blow-ups nothing is repeated.
    _, _, plain = report(tmp_path, {**make_definition(), "name": "plain"}, make_table(), name="plain")
    assert "Blow-ups" not in plain and "pooled without" not in plain


def test_report_unfinished_study_says_what_is_missing(tmp_path):
    definition = {**make_definition(trials=40), "name": "half"}
    df = make_table(missing=15)
    pending = df[df["k"] < 5].assign(outcome="pending", valid_metric=None, test_metric=None)
    _, page, md = report(tmp_path, definition, pd.concat([df[df["k"] >= 5], pending]))
    # 15 absent + 5 pending per architecture, 5 architectures.
    assert "UNFINISHED: 100 trial(s) missing" in page and "UNFINISHED: 100 trial(s) missing" in md
    assert "100 of 200 trials ended" in page


def test_report_cost_shares_epoch_limit_and_projection(tmp_path):
    """The Cost section on a hand-made table with known CPU times: V ends 3 of 4 trials (100 + 50 + 30
    CPU-s; 10, 5 and 3 epochs; one pending), CIFG 2 of 4 (200 + 100 CPU-s, 10 epochs each; two absent);
    the cap is 10 epochs."""
    from lstm_scratch.analysis import cost
    definition = {**make_definition(archs=("V", "CIFG"), trials=4), "name": "priced"}
    definition["protocol"] = {"max_epochs": 10, "patience": 15}
    df = make_table(archs=("V", "CIFG"), trials=4, diverged=0, failed=0).iloc[[0, 1, 2, 3, 4, 5]].copy()
    df["outcome"] = ["finished", "early_stopped", "diverged", "pending", "finished", "finished"]
    df["cpu_seconds"] = [100.0, 50.0, 30.0, None, 200.0, 100.0]
    df["wall_seconds"] = [120.0, 60.0, 30.0, None, 200.0, 110.0]
    df["epochs"] = [10, 5, 3, None, 10, 10]
    df["hidden"] = [20, 40, 100, 60, 20, 40]
    df.loc[df["outcome"].isin(["diverged", "pending"]), "test_metric"] = None
    report(tmp_path, definition, df)
    table = pd.read_csv(tmp_path / "out" / "priced_cost.csv").set_index("group")
    assert table.loc[["V", "CIFG", "all"], "ended"].tolist() == [3, 2, 5]
    assert table.loc[["V", "CIFG", "all"], "missing"].tolist() == [1, 2, 3]
    assert table.loc["all", "cpu_hours"] == pytest.approx(480 / 3600)
    assert table.loc[["V", "CIFG"], "cpu_share"].tolist() == pytest.approx([180 / 480, 300 / 480])
    assert table.loc[["V", "CIFG", "all"], "at_epoch_limit"].tolist() == pytest.approx([1 / 3, 1.0, 3 / 5])
    assert table.loc[["V", "CIFG", "all"], "cpu_s_per_epoch"].tolist() == pytest.approx([180 / 18, 300 / 20, 480 / 38])
    assert table.loc[["V", "CIFG"], "cpu_s_per_trial"].tolist() == pytest.approx([60.0, 150.0])
    # projection: each missing trial at its architecture's mean CPU-s per ended trial
    assert table.loc[["V", "CIFG", "all"], "projected_cpu_hours"].tolist() == \
        pytest.approx([(180 + 60) / 3600, (300 + 2 * 150) / 3600, 840 / 3600])
    # N at the quartiles of the ended trials' N (20, 40, 100, 20, 40): {20} and {40, 100}
    hidden = table[table["by"] == "hidden"]
    assert hidden.index.tolist() == ["20", "40–100"] and hidden["ended"].tolist() == [2, 3]
    assert hidden["cpu_share"].tolist() == pytest.approx([300 / 480, 180 / 480])
    md = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "### Cost" in md and "Total CPU time 0.13 core-hours over 5 ended trial(s)" in md
    assert ("PROJECTION: the 3 missing trial(s), each at its architecture's mean CPU-s per ended trial, "
            "would add 0.10 core-hours: 0.23 core-hours for the whole study (projected") in md
    # an older table without epochs, or a bare table's definition without the cap: it says what it cannot show
    counts = pd.read_csv(tmp_path / "out" / "priced_counts.csv")
    older, notes = cost.cost(definition, df.drop(columns=["epochs"]), counts)
    assert older["at_epoch_limit"].isna().all() and older["cpu_share"].notna().all()
    assert "Not shown: epochs, the epoch-limit fraction and CPU-s per epoch (the table has no epochs)." \
        in cost.summary(older, notes)
    _, notes = cost.cost({"task": "jsb", "trials": 4}, df, counts)
    assert notes == ["Not shown: the epoch-limit fraction (the study definition gives no max_epochs)."]


def test_report_synthetic_stand_in_says_so(tmp_path):
    task = "handwriting_synthetic"
    definition = {**make_definition(task=task), "name": "synthetic"}
    _, page, md = report(tmp_path, definition, make_table(task=task))
    assert page.count("SYNTHETIC") >= 2 and "SYNTHETIC" in md
    assert b"SYNTHETIC" in (tmp_path / "out" / "figures" / "synthetic_fig3.svg").read_bytes()
    card = pd.read_csv(tmp_path / "out" / "scorecard.csv").set_index("finding")
    assert card.loc["η > 2/3 of the variance on JSB", "verdict"] == "not testable"


def test_report_bad_input_writes_nothing(tmp_path):
    out = tmp_path / "never"
    definition, df = make_definition(), make_table(trials=10)
    with pytest.raises(ValueError, match="not a study"):
        write_report([("a string", df)], out)
    with pytest.raises(ValueError, match="no 'task'"):
        write_report([({"trials": 3}, df)], out)
    with pytest.raises(ValueError, match="empty"):
        write_report([(definition, df.assign(outcome="pending"))], out)
    with pytest.raises(ValueError, match="empty"):
        write_report([(definition, df.iloc[:0])], out)
    with pytest.raises(ValueError, match="lacks the column"):
        write_report([(definition, df.drop(columns=["test_metric"]))], out)
    with pytest.raises(ValueError, match="list of"):
        write_report([], out)
    assert not out.exists()
    with pytest.raises(ValueError, match="not a study"):
        load(tmp_path)                                     # a directory without study.json
    (tmp_path / "junk.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="junk.csv.*lacks the column"):
        load(tmp_path / "junk.csv")


NO_NUMBA = """
import sys
sys.path.insert(0, sys.argv[1])
import lstm_scratch.analysis.report, lstm_scratch.analysis.table
assert "numba" not in sys.modules, "importing the analysis loaded Numba"
definition, df = lstm_scratch.analysis.table.load(sys.argv[2])
assert len(df) and "numba" not in sys.modules, "reading a published table loaded Numba"
lstm_scratch.analysis.report.write_report([(definition, df)], sys.argv[3])     # task rows, objectives, fANOVA
assert "numba" not in sys.modules, "writing a report loaded Numba"
import lstm_scratch
assert lstm_scratch.JZS_ARCHITECTURES[0] == "TANH" and "numba" not in sys.modules
import numpy as np
net = lstm_scratch.Network("V", 2, 3, 2, loss="softmax")   # the facade still gives the network ...
net.loss_and_grad(np.zeros((4, 2)), np.array([0, 1, 0, 1]))    # ... whose first pass loads the kernels
assert "numba" in sys.modules
print("ok")
"""


def test_the_analysis_reads_a_published_table_and_writes_its_report_without_importing_numba(tmp_path):
    """Issue 10: the analysis runs on a laptop without Numba — the report reads the task table and the
    objectives, whose loss kernels are jitted on first use only; ``import lstm_scratch`` loads it lazily."""
    study = tmp_path / "jsb_study"
    study.mkdir()
    (study / "study.json").write_text(pd.Series(make_definition()).to_json())
    make_table().to_csv(study / "trials.csv", index=False)
    done = subprocess.run([sys.executable, "-c", NO_NUMBA, str(Path(__file__).parents[1]), str(study),
                           str(tmp_path / "report")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
    assert (tmp_path / "report" / "index.html").is_file()


def test_cli_report_on_a_published_table(tmp_path, capsys):
    """``lstm-odyssey report`` on a published study: study.json beside trials.csv."""
    study = tmp_path / "jsb_study"
    study.mkdir()
    (study / "study.json").write_text(pd.Series(make_definition()).to_json())
    make_table().to_csv(study / "trials.csv", index=False)
    assert main(["report", str(study), "--out", str(tmp_path / "rep")]) == 0
    assert "index.html" in capsys.readouterr().out
    assert (tmp_path / "rep" / "jsb_study_comparison.csv").is_file()
    assert main(["report", str(tmp_path / "nowhere"), "--out", str(tmp_path / "rep2")]) == 2
    assert "no such study" in capsys.readouterr().err


def test_cli_report_on_a_real_unfinished_study(tmp_path, data_env, capsys):
    """A real study directory (lstm_scratch.search): 2 architectures × 3 tiny trials, 4 of them run;
    the report reads it through Study.open(...).to_dataframe() and says 2 trials are missing."""
    from lstm_scratch.search import Study
    from lstm_scratch.search.worker import run_one
    study = Study.create(tmp_path / "tiny", task="jsb", archs="V,CIFG", trials=3, seed=0, space="hidden=4",
                         max_epochs=2, patience=5)
    for index in range(4):
        run_one(study, index)
    definition, df = load(tmp_path / "tiny")
    assert definition["path"] == str(tmp_path / "tiny") and len(df) == 6
    assert main(["report", str(tmp_path / "tiny"), "--out", str(tmp_path / "rep")]) == 0
    page = (tmp_path / "rep" / "index.html").read_text(encoding="utf-8")
    assert "UNFINISHED: 2 trial(s) missing" in page
    counts = pd.read_csv(tmp_path / "rep" / "tiny_counts.csv").set_index("arch")
    assert counts["missing"].to_dict() == {"V": 1, "CIFG": 1}
    # the cost: the CPU the 4 trials took, and the 2 missing ones projected at their architecture's mean
    cost = pd.read_csv(tmp_path / "rep" / "tiny_cost.csv").set_index("group")
    ended = df[df["outcome"].isin(["finished", "early_stopped", "diverged", "failed"])]
    assert cost.loc["all", "cpu_hours"] == pytest.approx(ended["cpu_seconds"].sum() / 3600)
    mean = ended.groupby("arch")["cpu_seconds"].mean()
    assert cost.loc["all", "projected_cpu_hours"] == pytest.approx((ended["cpu_seconds"].sum() + mean.sum()) / 3600)
    assert cost.loc[["V", "CIFG"], "at_epoch_limit"].notna().all() and cost.loc["4", "cpu_share"] == 1.0
    assert "<h3>Cost</h3>" in page and "PROJECTION: the 2 missing trial(s)" in page
    card = pd.read_csv(tmp_path / "rep" / "scorecard.csv").set_index("finding")
    assert card.loc["CIFG not significantly different from V", "verdict"] == "not testable"   # 1 best each
    assert card.loc["η has the largest share of variance", "verdict"] == "not testable"      # 4 trials
    # published as results/ keeps it: study.json, trials.csv, records.jsonl.gz — no trial directories;
    # the report from the committed table alone says the same, with the machine and the code it ran on
    published = tmp_path / "published"
    published.mkdir()
    (published / "study.json").write_bytes((tmp_path / "tiny" / "study.json").read_bytes())
    assert main(["search", "export", str(tmp_path / "tiny"), "--csv", str(published / "trials.csv"),
                 "--records", str(published / "records.jsonl.gz")]) == 0
    assert main(["report", str(published / "trials.csv"), "--out", str(tmp_path / "rep3")]) == 0
    again = (tmp_path / "rep3" / "report.md").read_text(encoding="utf-8")
    assert "UNFINISHED: 2 trial(s) missing" in again and "(1 host)" in again
    code = definition["provenance"]["code_version"]            # git:<40 digits>[+dirty], shown as git log shows it
    assert f"Every trial ran with code {code[:len('git:') + 12]}{'+dirty' if code.endswith('+dirty') else ''}." in again
    assert pd.read_csv(tmp_path / "rep3" / "published_counts.csv").equals(pd.read_csv(tmp_path / "rep" / "tiny_counts.csv"))
    assert pd.read_csv(tmp_path / "rep3" / "published_cost.csv").equals(pd.read_csv(tmp_path / "rep" / "tiny_cost.csv"))
    assert main(["report", str(published / "trials.csv"), "--out", str(tmp_path / "rep4")]) == 0
    files = sorted(p.relative_to(tmp_path / "rep3") for p in (tmp_path / "rep3").rglob("*") if p.is_file())
    assert any(f.suffix == ".svg" for f in files)         # the same table, the same bytes: nothing to commit
    assert all((tmp_path / "rep3" / f).read_bytes() == (tmp_path / "rep4" / f).read_bytes() for f in files)
    # a new machine: the published records put back, the study goes on from there (nothing re-run)
    study_copy = Study.open(published)
    assert main(["search", "restore", str(published), "--records", str(published / "records.jsonl.gz")]) == 0
    assert "4 record(s) restored" in capsys.readouterr().out
    assert [s.state for s in study_copy.states()] == [s.state for s in study.states()]
    assert [s.record["test_metric"] for s in study_copy.states() if s.record] == \
           [s.record["test_metric"] for s in study.states() if s.record]
    assert main(["search", "restore", str(published), "--records", str(published / "records.jsonl.gz")]) == 0
    assert "0 record(s) restored" in capsys.readouterr().out          # again: each trial keeps its record
    import shutil
    shutil.rmtree(published / "trials")
    # records of another study (another seed: other configurations), or a damaged file: refused, nothing written
    other = Study.create(tmp_path / "other", task="jsb", archs="V,CIFG", trials=3, seed=1, space="hidden=4",
                         max_epochs=2, patience=5)
    assert main(["search", "restore", str(other.path), "--records", str(published / "records.jsonl.gz")]) == 2
    assert "line 1: the record of 'V-0000' is not trial V-0000" in capsys.readouterr().err
    (tmp_path / "bad.jsonl.gz").write_bytes(b"not gzip")
    assert main(["search", "restore", str(other.path), "--records", str(tmp_path / "bad.jsonl.gz")]) == 2
    assert "cannot read the published records" in capsys.readouterr().err
    import gzip
    lines = gzip.decompress((published / "records.jsonl.gz").read_bytes()).splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"format":"lstm_scratch.run/1"', b'"format":"x"')
    (tmp_path / "half.jsonl.gz").write_bytes(gzip.compress(b"".join(lines)))
    assert main(["search", "restore", str(published), "--records", str(tmp_path / "half.jsonl.gz")]) == 2
    assert "line 2: format 'x'" in capsys.readouterr().err
    assert not (other.path / "trials").exists() and not (published / "trials").exists()
    table = (published / "trials.csv").read_bytes()           # exporting the copy would empty its table
    assert main(["search", "export", str(published), "--csv", str(published / "trials.csv")]) == 2
    assert "a published study" in capsys.readouterr().err and (published / "trials.csv").read_bytes() == table


def test_analysis_needs_no_training_code(tmp_path):
    """The report on a table imports neither the trainer nor the search (a laptop with only the files)."""
    import subprocess
    import sys
    code = ("import sys; sys.path.insert(0, 'tests'); from fake_study import make_table, make_definition; "
            "from lstm_scratch.analysis.report import write_report; "
            f"write_report([(make_definition(), make_table(trials=20))], {str(tmp_path / 'r')!r}); "
            "print(sorted(m for m in sys.modules if m.startswith(('lstm_scratch.train', 'lstm_scratch.search'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=__file__.rsplit("/tests/", 1)[0])
    # the search space's descriptions (NumPy alone), not the study driver that brings the trainer
    assert out.stdout.strip() == "['lstm_scratch.search', 'lstm_scratch.search.space']"


def test_report_shows_the_search_space_and_protocol_beside_the_papers(tmp_path):
    """What was searched, from study.json as Study.create writes it: the protocol's settings, and each
    dimension as sampled beside the paper's (a narrowed η shows both ranges) and the paper named; a bare
    table's inferred definition says neither, and the page then has no such section."""
    from lstm_scratch.search import Study
    Study.create(tmp_path / "s", task="jsb", archs="V,NOAF", trials=20, seed=0, space="lr=1e-4:1e-2",
                 max_epochs=20, patience=5)
    definition = {**json.loads((tmp_path / "s" / "study.json").read_text()), "name": "narrow"}
    table = make_table(archs=("V", "NOAF"), trials=20, diverged=0, failed=0)
    table["lr"] = 1e-4 * (table["lr"] / 1e-6) ** 0.5         # the fake's η mapped into the narrowed range
    _, page, md = report(tmp_path, definition, table)
    assert "### Search space and protocol" in md and "<h3>Search space and protocol</h3>" in page
    assert "| learning rate η | log-uniform on [0.0001, 0.01] | log-uniform on [1e-06, 0.01] |" in md
    assert "| hidden size N | log-uniform on [20, 200], rounded | log-uniform on [20, 200], rounded |" in md
    for row in ("| epochs at most | 20 |", "| trials per architecture | 20 |", "| arithmetic | float64 |"):
        assert row in md
    assert "Reference space: Greff, Srivastava" in md and "| truncated BPTT unroll |" not in md  # None: not shown
    assert "<details><summary>Definition (study.json)</summary>" in md
    make_table(archs=("V", "NOAF"), trials=20).to_csv(tmp_path / "bare.csv", index=False)
    _, _, bare = report(tmp_path, *load(tmp_path / "bare.csv"), name="bare")
    assert "Search space and protocol" not in bare


def test_the_analysis_names_the_published_files_as_the_search_writes_them():
    """table.py spells the trial directory and the published table itself (reading a table loads no search
    code): they must stay the names search.study and search.summary use."""
    from lstm_scratch.analysis import table
    from lstm_scratch.search.study import TRIALS_DIR
    from lstm_scratch.search.summary import PUBLISHED
    assert table.TRIALS_DIR == TRIALS_DIR and table.TABLE_NAMES[0] == PUBLISHED["csv"]


def test_report_without_any_fig4_parameter_and_a_bare_table_of_two_tasks(tmp_path):
    # η, N and σ all fixed: no Fig. 4 to draw (the report still writes the rest, nothing half-done);
    # the settings name the blow-up rule only where a study has blow-ups.
    fixed = make_table().assign(lr=1e-3, hidden=50, noise=0.0)
    definition = {**make_definition(), "name": "fixed"}
    for dim in ("lr", "hidden", "noise"):
        definition["space"] = {**definition["space"], dim: {"dist": "fixed", "value": float(fixed[dim].iloc[0])}}
    index, page, md = report(tmp_path, definition, fixed)
    assert not (index.parent / "figures" / "fixed_fig4.png").exists() and "Fig. 4" not in md
    assert "Fig. 5" in md and "blew up" not in md
    # A bare table of two tasks expects its trials per architecture in each task.
    two = pd.concat([make_table(trials=10), make_table(trials=10, task="nottingham")])
    two.to_csv(tmp_path / "two.csv", index=False)
    definition, df = load(tmp_path / "two.csv")
    write_report([(definition, df)], tmp_path / "two")
    counts = pd.read_csv(tmp_path / "two" / "two_counts.csv")
    assert counts["expected"].tolist() == [20] * 5 and counts["missing"].sum() == 0
