"""Figures 3–6 (lstm_scratch.analysis.figures) from a small fake study: files, labels, one box per
architecture."""
import pytest

from lstm_scratch.analysis import figures
from lstm_scratch.analysis.importance import study_importance
from lstm_scratch.analysis.stats import compare, scored

from fake_study import make_table

ARCHS = ("V", "NFG", "NOAF", "CIFG", "NP")


@pytest.fixture(scope="module")
def fake():
    df = make_table(archs=ARCHS, trials=30)
    metric = study_importance(df, per_arch=False)[("jsb", "pooled")]
    time = study_importance(df, target="cpu_seconds", per_arch=False)[("jsb", "pooled")]
    return df, compare(df), metric, time


def test_figure3_one_box_per_architecture(fake, tmp_path):
    df, comparison, _, _ = fake
    fig = figures.figure3(scored(df), comparison, "NLL per time step (nats)", "fake JSB")
    all_trials, best, twin = fig.axes
    for ax in (all_trials, best):
        assert len(ax.patches) == len(ARCHS)                     # one box (patch) per architecture
        assert [t.get_text().split("\n")[0] for t in ax.get_xticklabels()] == list(ARCHS)
        assert ax.get_ylabel() == "test NLL per time step (nats)"
        assert ax.get_xlabel() == "architecture"
    assert best.get_title() == "best 10% by validation" and all_trials.get_title() == "all trials"
    assert twin.get_ylabel() == "mean parameter count, best 10%"
    colours = {a: p.get_facecolor() for a, p in zip(ARCHS, best.patches)}
    assert colours["NFG"] == colours["NOAF"] != colours["CIFG"] == colours["NP"] != colours["V"]
    paths = figures.save(fig, tmp_path / "fig3")
    assert [p.name for p in paths] == ["fig3.png", "fig3.svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in paths[1].read_bytes()[:1000]


def test_figure3_uses_a_log_axis_only_when_a_few_trials_blow_up(fake):
    df, comparison, _, _ = fake
    fig = figures.figure3(scored(df), comparison, "NLL per time step (nats)", "fake JSB")
    assert [ax.get_yscale() for ax in fig.axes[:2]] == ["linear", "linear"]
    blown = df.copy()
    blown.loc[blown.index[blown.arch == "NOAF"][:3], "test_metric"] = 1700.0   # as NOAF did on JSB
    fig = figures.figure3(scored(blown), compare(blown), "NLL per time step (nats)", "fake JSB")
    assert fig.axes[0].get_yscale() == "log"                    # all trials: 1,700 beside ~9
    assert fig.axes[1].get_yscale() == "linear"                 # the best 10 % are not affected


def test_figure4_marginals_with_time(fake, tmp_path):
    _, _, metric, time = fake
    fig = figures.figure4([("jsb", metric, time, "NLL per time step (nats)")], "fake JSB")
    main = [ax for ax in fig.axes if ax.get_xlabel()]
    assert [ax.get_xlabel() for ax in main] == ["learning rate η (log scale)", "hidden size N (log scale)",
                                                 "input noise σ"]
    assert [ax.get_xscale() for ax in main] == ["log", "log", "linear"]
    assert all(ax.get_ylabel() == "test NLL per time step (nats)" for ax in main)
    assert sum(ax.get_ylabel() == "training time (CPU s)" for ax in fig.axes) == 3
    assert len(main[0].collections) == 1                          # the ±1 std band
    assert all(p.stat().st_size > 1000 for p in figures.save(fig, tmp_path / "fig4"))


def test_figure5_shares(fake, tmp_path):
    _, _, metric, _ = fake
    fig = figures.figure5([("jsb", metric)], "fake JSB")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["learning rate η", "hidden size N", "1 − momentum m", "input noise σ", "all interactions"]
    assert len(ax.patches) == 5 and ax.get_xlabel() == "share of variance (%)"
    figures.save(fig, tmp_path / "fig5")


def test_figure6_lower_triangle(fake, tmp_path):
    _, _, metric, _ = fake
    fig = figures.figure6(metric, "jsb", "fake JSB", "NLL", n=8)
    heat = [ax for ax in fig.axes if ax.axison and ax.collections and ax.get_label() != "<colorbar>"]
    assert len(heat) == 2 * 6                    # 4 hyperparameters: 6 pairs, joint + interaction each
    assert {ax.get_title() for ax in heat} >= {"joint marginal", "interaction part"}
    first = heat[0]
    assert (first.get_xlabel(), first.get_ylabel()) == ("learning rate η", "hidden size N")
    assert first.get_xscale() == first.get_yscale() == "log"
    paths = figures.save(fig, tmp_path / "fig6")
    assert paths[1].stat().st_size < 2_000_000   # heat maps rasterised inside the SVG
