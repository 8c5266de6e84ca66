"""``lstm-odyssey demo`` end to end at a tiny size (real JSB data, real workers, the real report), its
resumability, and the report's note on how a study is smaller than the paper's."""
import json

import pytest

from lstm_scratch.analysis.report import reductions, write_report
from lstm_scratch.cli import main
from lstm_scratch.variants import LSTM_VARIANTS

from fake_study import make_definition, make_table

TINY = ["--trials", "2", "--max-epochs", "2", "--patience", "2", "--archs", "V,CIFG,NFG"]


def test_demo_runs_the_study_writes_the_report_and_resumes(tmp_path, data_env, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    report = out / "report"
    for name in ("index.html", "report.md", "demo_counts.csv", "demo_comparison.csv", "scorecard.csv",
                 "figures/demo_fig3.png", "figures/demo_fig3.svg"):
        assert (report / name).is_file(), name
    ended = (out / "events.log").read_text().splitlines()
    assert len(ended) == 6 and all(json.loads(line)["event"] == "end" for line in ended)
    page = (report / "index.html").read_text(encoding="utf-8")
    assert "REDUCED STUDY" in page and "2 trials per architecture (paper: 200)" in page
    assert "hidden size N in [20, 100] (paper: [20, 200])" in page          # the demo's narrowed N
    assert "6 trial(s) trained in this run" in printed and str(report / "index.html") in printed
    for arch in ("V", "CIFG", "NFG"):
        assert arch in printed

    # Again: every trial has ended, so nothing is trained; the report is written again.
    records = {p: p.stat().st_mtime_ns for p in (out / "trials").glob("*/record.json")}
    (report / "index.html").unlink()
    assert main(["demo", "--out", str(out), *TINY]) == 0
    assert "0 trial(s) trained in this run" in capsys.readouterr().out
    assert (out / "events.log").read_text().splitlines() == ended
    assert {p: p.stat().st_mtime_ns for p in records} == records and len(records) == 6
    assert (report / "index.html").is_file()

    # Another study's settings in the same directory: refused before anything is written.
    assert main(["demo", "--out", str(out), *TINY[:-2], "--archs", "V,NP"]) == 2
    assert "holds another study" in capsys.readouterr().err
    assert not (out / "trials" / "NP-0000").exists()


def test_reductions_name_every_difference_from_the_papers_study():
    paper = make_definition(archs=LSTM_VARIANTS, trials=200)
    assert reductions(paper) == []
    narrowed = {"hidden": {"dist": "log_uniform", "low": 20.0, "high": 100.0, "round": True},
                "lr": {"dist": "fixed", "value": 0.001}}
    small = {**paper, "trials": 40, "archs": ["V", "CIFG"], "protocol": {"max_epochs": 20, "patience": 5},
             "space": {**paper["space"], **narrowed}}
    assert reductions(small) == ["40 trials per architecture (paper: 200)",
                                 "at most 20 epochs per trial (paper: 150)",
                                 "early-stopping patience 5 (paper: 15)",
                                 "learning rate η fixed at 0.001",
                                 "hidden size N in [20, 100] (paper: [20, 200])",
                                 "without NIG, NFG, NOG, NIAF, NOAF, NP, FGR (paper: all nine architectures)"]
    # A bare table's inferred definition says nothing about the protocol: no claim either way.
    assert reductions({"task": "jsb", "archs": ["V"], "trials": 3, "inferred from the table": True}) == []


@pytest.mark.parametrize("trials, shown", [(200, False), (20, True)])
def test_report_shows_the_reduced_study_note_only_for_a_smaller_study(tmp_path, trials, shown):
    # The same 20 trials per architecture; only the definition says whether the study is paper-sized
    # (then 180 of its 200 trials are missing, which the report says separately).
    definition = make_definition(archs=LSTM_VARIANTS, trials=trials)
    index = write_report([(definition, make_table(archs=LSTM_VARIANTS, trials=20))], tmp_path / "out")
    for page in (index.read_text(encoding="utf-8"), (index.parent / "report.md").read_text(encoding="utf-8")):
        assert ("REDUCED STUDY" in page) is shown
        assert ("20 trials per architecture (paper: 200)" in page) is shown
