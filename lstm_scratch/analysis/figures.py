"""The paper's Figures 3–6 from a study (SPEC §8). The only module that imports matplotlib. Figures are
built as plain ``matplotlib.figure.Figure`` objects, without pyplot, so no display is needed and the
caller's backend is left alone (a notebook keeps showing its figures inline: ``display(fig)``). Each
``figure*`` function returns a Figure; :func:`save` writes it as PNG and SVG (atomically).

* Fig. 3 — per task, box plots over the architectures of the test metric, all trials and the best 10 %
  (by validation): quartile boxes, whiskers over the full range, the mean as a white diamond; boxes of
  architectures significantly different from the baseline (Welch, p < α) coloured; the mean parameter
  count of the best 10 % on a second axis.
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
            top: float = 0.10, lower_is_better: bool = True):
    """Fig. 3 for one task. ``table``: :func:`.stats.scored` rows of the task; ``comparison``: the
    task's rows of :func:`.stats.compare` (its order is the order of the boxes)."""
    archs = list(comparison["arch"])
    rows = comparison.set_index("arch")
    groups = {a: table[table["arch"] == a] for a in archs}
    samples = {"all trials": [groups[a]["test_score"].to_numpy(float) for a in archs],
               f"best {top:.0%} by validation": [best_trials(groups[a], top, lower_is_better)
                                                 ["test_score"].to_numpy(float) for a in archs]}
    fig = Figure(figsize=(max(8.0, 1.5 * len(archs) + 4), 4.6))
    axes = fig.subplots(1, 2)
    ticks = [a + "".join(f"\n{int(rows.loc[a, o])} {o}" for o in ("diverged", "failed") if rows.loc[a, o])
             for a in archs]
    for ax, (which, data) in zip(axes, samples.items()):
        parts = ax.boxplot(data, whis=(0, 100), showmeans=True, patch_artist=True, widths=0.6,
                           meanprops=dict(marker="D", markerfacecolor="white", markeredgecolor="black"),
                           medianprops=dict(color="black"))
        for arch, box in zip(archs, parts["boxes"]):
            key = "baseline" if arch == baseline else rows.loc[arch, "direction"]
            box.set_facecolor(COLOURS[key])
        ax.set_xticks(range(1, len(archs) + 1), ticks, fontsize=8)
        ax.set_xlabel("architecture")
        ax.set_ylabel(f"test {metric_label}")
        ax.set_title(which)
        ax.grid(axis="y", alpha=0.3)
        _log_if_spread(ax, data)
    twin = axes[1].twinx()
    twin.plot(range(1, len(archs) + 1), comparison["n_params_best10"], "k^", label="mean parameters")
    twin.set_ylabel(f"mean parameter count, best {top:.0%}")
    twin.set_ylim(bottom=0)
    handles = [Rectangle((0, 0), 1, 1, color=COLOURS[k]) for k in ("baseline", "worse", "better", "—")]
    fig.legend(handles, [f"baseline ({baseline})", "significantly worse (Welch p < α)",
                         "significantly better", "not significantly different"],
               loc="lower center", ncol=4, fontsize=8, bbox_to_anchor=(0.5, -0.06))
    fig.suptitle(f"{title}\nTest {metric_label} by architecture (box: quartiles, whiskers: range, "
                 "◇: mean, ▲: parameters)", fontsize=10)
    fig.tight_layout()
    return fig


def _log_if_spread(ax, data, ratio: float = 20.0) -> None:
    """A log y axis when the values are positive and span more than ``ratio``: a few blown-up trials
    (NOAF on JSB reaches NLL 1,700 where the rest lie near 9) would otherwise flatten every box."""
    values = np.concatenate([np.asarray(d, float) for d in data if len(d)]) if data else np.array([])
    values = values[np.isfinite(values)]
    if values.size and values.min() > 0 and values.max() / values.min() > ratio:
        ax.set_yscale("log")


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
            ax.set_xlabel(imp.labels[name] + (" (log scale)" if imp.log[imp.names.index(name)] else ""))
            ax.set_ylabel(f"test {metric_label}", color="tab:blue")
            ax.set_title(f"{label}: {imp.labels[name]}", fontsize=9)
            if time_imp is not None and name in time_imp.names:
                t_grid, t_mean, _ = time_imp.marginal(name, n=100)
                twin = ax.twinx()
                twin.plot(t_grid, t_mean, color="tab:orange", linestyle="--")
                twin.set_ylabel("training time (CPU s)", color="tab:orange")
    fig.suptitle(f"{title}\nfANOVA marginals: test metric (blue, ±1 std band) and training time (orange)",
                 fontsize=10)
    fig.tight_layout()
    return fig


def figure5(panels, title: str):
    """Fig. 5. ``panels``: [(label, Importance)]: bars of each main effect's share of variance and of all
    interactions together (1 − Σ main), with the std across trees."""
    fig = Figure(figsize=(4.6 * len(panels), 3.2))
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, (label, imp) in zip(axes[0], panels):
        names = [imp.labels[n] for n in imp.names] + ["all interactions"]
        values = [imp.main[n] for n in imp.names] + [imp.interactions]
        errors = [imp.main_std[n] for n in imp.names] + [0.0]
        y = np.arange(len(names))[::-1]
        colours = ["tab:blue"] * len(imp.names) + ["tab:grey"]
        ax.barh(y, np.array(values) * 100, xerr=np.array(errors) * 100, color=colours, alpha=0.8)
        for yi, v in zip(y, values):
            ax.text(max(v * 100, 0) + 1, yi, f"{v:.1%}", va="center", fontsize=8)
        ax.set_yticks(y, names, fontsize=8)
        ax.set_xlim(0, 110)
        ax.set_xlabel("share of variance (%)")
        ax.set_title(f"{label} ({imp.n_samples} trials)", fontsize=9)
    fig.suptitle(f"{title}\nfANOVA: variance explained by each hyperparameter and by all interactions "
                 "(log10 scale for η, N, 1 − m)", fontsize=10)
    fig.tight_layout()
    return fig


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
                ax.set_xlabel(imp.labels[a], fontsize=8)
                ax.set_ylabel(imp.labels[b], fontsize=8)
                ax.tick_params(labelsize=7)
                if r == 1 and c == 0:
                    ax.set_title(f"{what}", fontsize=9)
    fig.suptitle(f"{title}\n{label}: test {metric_label} over hyperparameter pairs — left: joint marginal, "
                 "right: interaction part alone", fontsize=10)
    fig.tight_layout()
    return fig
