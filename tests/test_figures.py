"""Figures 3–6 (lstm_scratch.analysis.figures) from a small fake study: files, labels, one box per
architecture, and where markers and labels sit (read from the Axes, not the pixels)."""
import numpy as np
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
    assert best.get_title() == "best 10% by validation, n = 3 per architecture"   # 26 ended trials each
    assert all_trials.get_title() == "all trials"
    assert twin.get_ylabel() == "mean parameter count, best 10%"
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "significantly worse (Welch p < 0.05, uncorrected)" in legend
    colours = {a: p.get_facecolor() for a, p in zip(ARCHS, best.patches)}
    assert colours["NFG"] == colours["NOAF"] != colours["CIFG"] == colours["NP"] != colours["V"]
    paths = figures.save(fig, tmp_path / "fig3")
    assert [p.name for p in paths] == ["fig3.png", "fig3.svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in paths[1].read_bytes()[:1000]


def test_figure3_parameter_marker_beside_the_mean_marker(fake):
    df, comparison, _, _ = fake
    fig = figures.figure3(scored(df), comparison, "NLL per time step (nats)", "fake JSB", alpha=0.01)
    _, best, twin = fig.axes
    means = [line for line in best.lines if line.get_marker() == "D"]
    assert [line.get_xdata()[0] for line in means] == [1, 2, 3, 4, 5]
    (params,) = twin.lines
    assert params.get_marker() == "^" and params.get_color() == "grey"
    np.testing.assert_allclose(params.get_xdata(), np.arange(1, 6) + 0.35)
    assert any("Welch p < 0.01, uncorrected" in t.get_text() for t in fig.legends[0].get_texts())


def test_figure3_best_count_range_in_title(fake):
    df, _, _, _ = fake
    fewer = df[~((df.arch == "NP") & (df.k >= 20))]           # NP: 16 ended trials → best 2; others 3
    fig = figures.figure3(scored(fewer), compare(fewer), "NLL", "fake JSB")
    assert fig.axes[1].get_title() == "best 10% by validation, n = 2–3 per architecture"


def test_figure3_uses_a_log_axis_only_when_a_few_trials_blow_up(fake):
    df, comparison, _, _ = fake
    fig = figures.figure3(scored(df), comparison, "NLL per time step (nats)", "fake JSB")
    assert [ax.get_yscale() for ax in fig.axes[:2]] == ["linear", "linear"]
    blown = df.copy()
    blown.loc[blown.index[blown.arch == "NOAF"][:3], "test_metric"] = 1700.0   # as NOAF did on JSB
    fig = figures.figure3(scored(blown), compare(blown), "NLL per time step (nats)", "fake JSB")
    assert fig.axes[0].get_yscale() == "log"                    # all trials: 1,700 beside ~9
    assert fig.axes[1].get_yscale() == "linear"                 # the best 10 % are not affected
    assert fig.axes[0].get_ylabel() == "test NLL per time step (nats) (log scale)"
    assert fig.axes[1].get_ylabel() == "test NLL per time step (nats)"


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
    assert fig.get_suptitle() == ("fake JSB\nfANOVA marginals — blue: test NLL per time step (nats), ±1 std "
                                  "band across trees; orange, dashed: training time")
    mixed = figures.figure4([("jsb", metric, None, "NLL"), ("timit", metric, None, "CER")], "fake")
    assert mixed.get_suptitle() == "fake\nfANOVA marginals — blue: test metric, ±1 std band across trees"


def test_figure5_shares(fake, tmp_path):
    _, _, metric, _ = fake
    fig = figures.figure5([("jsb", metric)], "fake JSB")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["learning rate η", "hidden size N", "1 − momentum m", "input noise σ", "all interactions"]
    assert len(ax.patches) == 5 and ax.get_xlabel() == "share of variance (%)"
    shares = [metric.main[n] for n in metric.names] + [metric.interactions]
    errors = [metric.main_std[n] for n in metric.names] + [0.0]
    texts = sorted(ax.texts, key=lambda t: -t.get_position()[1])          # top bar first, as the labels
    assert [t.get_text() for t in texts] == [f"{s:.1%}" for s in shares]
    caps = [seg[:, 0].max() for seg in ax.collections[0].get_segments()]    # the error bars' right ends
    assert any(e > 0.005 for e in errors)                                   # some bars have visible error
    for text, cap, share, error in zip(texts, caps, shares, errors):
        assert text.get_position()[0] == pytest.approx(max(100 * (share + error), 0) + 1)
        assert text.get_position()[0] > cap
    assert ax.get_xlim()[1] >= max(t.get_position()[0] for t in texts) + 10   # room for the label itself
    assert fig.get_suptitle().endswith("variance measured with η, N and 1 − m on a log10 scale")
    figures.save(fig, tmp_path / "fig5")


def test_figure6_lower_triangle(fake, tmp_path):
    _, _, metric, _ = fake
    fig = figures.figure6(metric, "jsb", "fake JSB", "NLL", n=8)
    heat = [ax for ax in fig.axes if ax.axison and ax.collections and ax.get_label() != "<colorbar>"]
    assert len(heat) == 2 * 6                    # 4 hyperparameters: 6 pairs, joint + interaction each
    assert {ax.get_title() for ax in heat} >= {"joint marginal", "interaction part"}
    first = heat[0]
    assert (first.get_xlabel(), first.get_ylabel()) == ("learning rate η (log scale)",
                                                        "hidden size N (log scale)")
    assert {ax.get_ylabel() for ax in heat} >= {"input noise σ"}            # linear: no "(log scale)"
    assert first.get_xscale() == first.get_yscale() == "log"
    paths = figures.save(fig, tmp_path / "fig6")
    assert paths[1].stat().st_size < 2_000_000   # heat maps rasterised inside the SVG
