"""The paper's Figures 3–6 from a study (SPEC §8). The only module that imports matplotlib. Figures are
built as plain ``matplotlib.figure.Figure`` objects, without pyplot, so no display is needed and the
caller's backend is left alone (a notebook keeps showing its figures inline: ``display(fig)``). Each
``figure*`` function returns a Figure; :func:`save` writes it as PNG and SVG (atomically).

* Fig. 3 — per task, box plots over the architectures of the test metric, all trials and the best 10 %
  (by validation): quartile boxes, whiskers over the full range, the mean as a white diamond; boxes of
  architectures significantly different from the baseline (Welch, uncorrected p < α) coloured; the
  mean parameter count of the best 10 % on a second axis (a grey triangle beside each box).
* Fig. 4 — fANOVA marginals of the test metric over η, N and σ with ±1 std across trees, and the
  marginal of training time on a second axis.
* Fig. 5 — the share of variance of each hyperparameter's main effect and of all interactions.
* Fig. 6 — lower-triangular grids over hyperparameter pairs: the joint marginal, and the interaction
  part alone (f_ab = a_ab − a_a − a_b + f_∅).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.ticker as ticker
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..atomic import atomic_write
from .stats import best_trials

COLOURS = {"worse": "#d62728", "better": "#2ca02c", "—": "#d9d9d9", "baseline": "#9ecae1"}
FIG4_PARAMETERS = ("lr", "hidden", "noise")
# Short names of the paper's log-scaled hyperparameters for Fig. 5's title; others go by their label.
SYMBOLS = {"lr": "η", "hidden": "N", "one_minus_momentum": "1 − m"}


def save(fig, stem) -> list[Path]:
    """Write ``fig`` to ``stem``.png and ``stem``.svg (atomically) and close it; the two paths. The same
    figure gives the same bytes (no date in the metadata, SVG ids from a fixed salt), so a report
    regenerated from the same table changes nothing under version control."""
    import matplotlib
    stem = Path(stem)
    paths = []
    for fmt in ("png", "svg"):
        path = stem.with_suffix(f".{fmt}")
        metadata = {"Date": None} if fmt == "svg" else {}
        with matplotlib.rc_context({"svg.hashsalt": "lstm_scratch"}):
            atomic_write(path, lambda handle, fmt=fmt: fig.savefig(handle, format=fmt, dpi=110, bbox_inches="tight",
                                                                   metadata=metadata))
        paths.append(path)
    return paths


def figure3(table, comparison, metric_label: str, title: str, baseline: str | None = "V",
            top: float = 0.10, lower_is_better: bool = True, alpha: float = 0.05, names: dict | None = None):
    """Fig. 3 for one task. ``table``: :func:`.stats.scored` rows of the task; ``comparison``: the
    task's rows of :func:`.stats.compare` (its order is the order of the boxes); ``alpha``: the level
    ``compare`` coloured the boxes at (uncorrected Welch p), written into the legend; ``names``: the
    architectures' labels on the axis and in the legend where they differ from ours (JZS's LSTM-b)."""
    names = names or {}
    archs = list(comparison["arch"])
    rows = comparison.set_index("arch")
    groups = {a: table[table["arch"] == a] for a in archs}
    best = [best_trials(groups[a], top, lower_is_better)["test_score"].to_numpy(float) for a in archs]
    sizes = sorted({len(b) for b in best})
    n = f"n = {sizes[0]}" if len(sizes) == 1 else f"n = {sizes[0]}–{sizes[-1]}"
    samples = {"all trials": [groups[a]["test_score"].to_numpy(float) for a in archs],
               f"best {top:.0%} by validation, {n} per architecture": best}
    fig = Figure(figsize=(max(8.0, 1.5 * len(archs) + 4), 4.6))
    axes = fig.subplots(1, 2)
    ticks = [names.get(a, a) + "".join(f"\n{int(rows.loc[a, o])} {o}" for o in ("diverged", "failed") if rows.loc[a, o])
             for a in archs]
    x = np.arange(1, len(archs) + 1)
    for ax, (which, data) in zip(axes, samples.items()):
        parts = ax.boxplot(data, whis=(0, 100), showmeans=True, patch_artist=True, widths=0.6,
                           meanprops=dict(marker="D", markerfacecolor="white", markeredgecolor="black"),
                           medianprops=dict(color="black"))
        for arch, box in zip(archs, parts["boxes"]):
            key = "baseline" if arch == baseline else rows.loc[arch, "direction"]
            box.set_facecolor(COLOURS[key])
        ax.set_xticks(x, ticks, fontsize=8)
        ax.set_xlabel("architecture")
        log = _log_if_spread(ax, data)
        ax.set_ylabel(f"test {metric_label}" + (" (log scale)" if log else ""))
        ax.set_title(which)
        ax.grid(axis="y", alpha=0.3)
    twin = axes[1].twinx()
    # Beside the box (half-width 0.3), in grey: on the box's axis it would hide the ◇ mean.
    twin.plot(x + 0.35, comparison["n_params_best10"], "^", color="grey", label="mean parameters")
    twin.set_ylabel(f"mean parameter count, best {top:.0%}")
    twin.set_ylim(bottom=0)
    legend = {"baseline": f"baseline ({names.get(baseline, baseline)})",
              "worse": f"significantly worse (Welch p < {alpha:g}, uncorrected)",
              "better": "significantly better", "—": "not significantly different"}
    if baseline not in archs:                               # no baseline box: nothing was compared
        legend = {"—": "not compared (no baseline)"}
    fig.legend([Rectangle((0, 0), 1, 1, color=COLOURS[k]) for k in legend], list(legend.values()),
               loc="lower center", ncol=len(legend), fontsize=8, bbox_to_anchor=(0.5, -0.06))
    fig.suptitle(f"{title}\nTest {metric_label} by architecture (box: quartiles, whiskers: range, "
                 "◇: mean, grey ▲: mean parameter count, right axis)", fontsize=10)
    fig.tight_layout()
    return fig


def _log_if_spread(ax, data, ratio: float = 20.0) -> bool:
    """A log y axis when the values are positive and span more than ``ratio``: a few blown-up trials
    (NOAF on JSB reaches NLL 1,700 where the rest lie near 9) would otherwise flatten every box. True if
    it switched to log (the caller says so in the axis label)."""
    values = np.concatenate([np.asarray(d, float) for d in data if len(d)]) if data else np.array([])
    values = values[np.isfinite(values)]
    if values.size and values.min() > 0 and values.max() / values.min() > ratio:
        ax.set_yscale("log")
        return True
    return False


def _axis_label(imp, name) -> str:
    """A parameter's axis label, with " (log scale)" for one analysed in log10 space."""
    return imp.labels[name] + (" (log scale)" if imp.log[imp.names.index(name)] else "")


def _set_scale(ax, imp, name, axis="x"):
    """A log axis for a parameter analysed in log10 space; over two decades or less (N: 20–200) ticks at
    1, 2, 5 × 10^k written as plain numbers, which read better than 2×10¹."""
    if not imp.log[imp.names.index(name)]:
        return
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    lo, hi = imp.bounds[imp.names.index(name)]
    if hi / lo <= 100:
        which = ax.xaxis if axis == "x" else ax.yaxis
        decades = range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)
        ticks = [m * 10.0 ** e for e in decades for m in (1, 2, 5) if lo <= m * 10.0 ** e <= hi]
        which.set_major_locator(ticker.FixedLocator(ticks))
        which.set_major_formatter(ticker.FormatStrFormatter("%g"))
        which.set_minor_formatter(ticker.NullFormatter())


def figure4(panels, title: str):
    """Fig. 4. ``panels``: [(row label, metric Importance, time Importance or None, metric label)], one
    row per task; columns η, N, σ (those analysed)."""
    columns = [p for p in FIG4_PARAMETERS if any(p in imp.names for _, imp, _, _ in panels)]
    if not columns:
        raise ValueError("figure 4: none of η, N, σ varies in these trials")
    fig = Figure(figsize=(4.2 * len(columns), 3.4 * len(panels)))
    axes = fig.subplots(len(panels), len(columns), squeeze=False)
    timed = False
    for row, (label, imp, time_imp, metric_label) in enumerate(panels):
        for col, name in enumerate(columns):
            ax = axes[row, col]
            if name not in imp.names:
                ax.set_axis_off()
                continue
            grid, mean, std = imp.marginal(name, n=100)
            ax.plot(grid, mean, color="tab:blue", label=f"test {metric_label}")
            ax.fill_between(grid, mean - std, mean + std, color="tab:blue", alpha=0.25,
                            label="±1 std across trees")
            _set_scale(ax, imp, name)
            ax.set_xlabel(_axis_label(imp, name))
            ax.set_ylabel(f"test {metric_label}", color="tab:blue")
            ax.set_title(f"{label}: {imp.labels[name]}", fontsize=9)
            if time_imp is not None and name in time_imp.names:
                timed = True
                t_grid, t_mean, _ = time_imp.marginal(name, n=100)
                twin = ax.twinx()
                twin.plot(t_grid, t_mean, color="tab:orange", linestyle="--")
                twin.set_ylabel("training time (CPU s)", color="tab:orange")
    metric_labels = {metric_label for _, _, _, metric_label in panels}
    metric = f"test {metric_labels.pop()}" if len(metric_labels) == 1 else "test metric"
    fig.suptitle(f"{title}\nfANOVA marginals — blue: {metric}, ±1 std band across trees"
                 + ("; orange, dashed: training time" if timed else ""), fontsize=10)
    fig.tight_layout()
    return fig


def figure5(panels, title: str):
    """Fig. 5. ``panels``: [(label, Importance)]: bars of each main effect's share of variance and of all
    interactions together (1 − Σ main), with the std across trees. Each bar's percentage is written
    right of its error bar's end (value + std, in %, + 1)."""
    fig = Figure(figsize=(4.6 * len(panels), 3.2))
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, (label, imp) in zip(axes[0], panels):
        names = [imp.labels[n] for n in imp.names] + ["all interactions"]
        shares = np.array([imp.main[n] for n in imp.names] + [imp.interactions])
        errors = np.array([imp.main_std[n] for n in imp.names] + [0.0])
        y = np.arange(len(names))[::-1]
        colours = ["tab:blue"] * len(imp.names) + ["tab:grey"]
        ax.barh(y, shares * 100, xerr=errors * 100, color=colours, alpha=0.8)
        ends = np.maximum((shares + errors) * 100, 0) + 1
        for yi, share, x in zip(y, shares, ends):
            ax.text(x, yi, f"{share:.1%}", va="center", fontsize=8)
        ax.set_yticks(y, names, fontsize=8)
        # Room right of the furthest label ("100.0%" is about 14 % units wide here); ticks stop at 100 %.
        ax.set_xlim(0, max(110.0, ends.max() + 15))
        ax.set_xticks(np.arange(0, 101, 20))
        ax.set_xlabel("share of variance (%)")
        ax.set_title(f"{label} ({imp.n_samples} trials)", fontsize=9)
    logged = list(dict.fromkeys(SYMBOLS.get(n, imp.labels[n]) for _, imp in panels
                                for n, flag in zip(imp.names, imp.log) if flag))
    scale = (f";\nvariance measured with {_join(logged)} on a log10 scale" if logged else "")
    fig.suptitle(f"{title}\nfANOVA: variance explained by each hyperparameter and by all interactions"
                 + scale, fontsize=10)
    fig.tight_layout()
    return fig


def _join(words) -> str:
    """Words joined as in prose: a; a and b; a, b and c."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def figure6(imp, label: str, title: str, metric_label: str, n: int = 20):
    """Fig. 6 for one task: two lower-triangular grids over the hyperparameter pairs — left the joint
    marginal of the test metric, right the interaction part alone."""
    d = len(imp.names)
    if d < 2:
        raise ValueError("figure 6 needs at least two hyperparameters that vary")
    fig = Figure(figsize=(3.0 * 2 * (d - 1), 2.7 * (d - 1)))
    axes = fig.subplots(d - 1, 2 * (d - 1), squeeze=False)
    for block, (what, method) in enumerate((("joint marginal", imp.joint_marginal),
                                            ("interaction part", imp.interaction))):
        for r in range(1, d):
            for c in range(d - 1):
                ax = axes[r - 1, block * (d - 1) + c]
                if c >= r:
                    ax.set_axis_off()
                    continue
                a, b = imp.names[c], imp.names[r]
                grid_a, grid_b, values = method(a, b, n)
                # The interaction part is centred on 0: a symmetric diverging scale shows its sign.
                limit = np.abs(values).max() if block == 1 else None
                mesh = ax.pcolormesh(grid_a, grid_b, values.T, shading="nearest",
                                     cmap="viridis" if block == 0 else "RdBu_r",
                                     vmin=-limit if limit else None, vmax=limit, rasterized=True)
                fig.colorbar(mesh, ax=ax, fraction=0.05)
                _set_scale(ax, imp, a, "x")
                _set_scale(ax, imp, b, "y")
                ax.set_xlabel(_axis_label(imp, a), fontsize=8)
                ax.set_ylabel(_axis_label(imp, b), fontsize=8)
                ax.tick_params(labelsize=7)
                if r == 1 and c == 0:
                    ax.set_title(f"{what}", fontsize=9)
    fig.suptitle(f"{title}\n{label}: test {metric_label} over hyperparameter pairs — left: joint marginal, "
                 "right: interaction part alone", fontsize=10)
    fig.tight_layout()
    return fig
