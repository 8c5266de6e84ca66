"""What a study cost and where the core-hours went, from its trial table alone (the columns
``cpu_seconds``, ``wall_seconds``, ``epochs``, ``hidden``, ``n_params``, ``arch``, ``outcome`` of
``Study.to_dataframe()``): the report's "Cost" section and ``<study>_cost.csv``.

For a group G of ended trials (finished, early_stopped, diverged, failed) — one architecture, one range
of N, or all — with CPU seconds c_i, epochs e_i, and M the study's epoch cap (``protocol.max_epochs``)::

    cpu_hours       = Σ_G c_i / 3600            cpu_share       = cpu_hours / (the study's cpu_hours)
    cpu_s_per_trial = mean_G c_i                mean_epochs     = mean_G e_i
    at_epoch_limit  = |{i ∈ G : e_i ≥ M}| / |G|   cpu_s_per_epoch = Σ_G c_i / Σ_G e_i

(each over the trials where the columns are known). CPU-s per epoch is a ratio of sums, so long trials
weigh by their epochs; it includes evaluation, as the trials spent it. For an unfinished study, per
architecture a with ``missing_a`` trials not yet ended (pending, running, or absent — as in
:func:`.report.counts`)::

    projected_cpu_hours_a = cpu_hours_a + missing_a · cpu_s_per_trial_a / 3600

a **projection**, not a measurement: it assumes the missing trials cost what the ended ones did on
average (they are drawn from the same space). A running trial's CPU so far is not in the table, so it is
projected whole; trials still running are the longer ones, so a projection made mid-study tends low.
An architecture with no ended trial is projected at the study's mean CPU-s per ended trial (and says so).
N is split at the quartiles of the ended trials' N: four groups of about equal trial counts, so their CPU
shares compare directly (ties keep equal N in one group; the labels give each group's N range).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .stats import ENDED

USES = {"cpu_seconds": "CPU hours, shares and the projection", "epochs": "epochs, the epoch-limit fraction "
        "and CPU-s per epoch", "hidden": "the split by N", "n_params": "mean parameters",
        "wall_seconds": "wall time"}
"""The columns the cost reads, and what is not shown without each (tables exported before it existed)."""
STATS = ("ended", "cpu_hours", "cpu_share", "cpu_s_per_trial", "mean_epochs", "at_epoch_limit",
         "cpu_s_per_epoch", "mean_params", "wall_hours")


def max_epochs(definition: dict):
    """The study's epoch cap: ``protocol.max_epochs`` of study.json (or a top-level ``max_epochs``); None
    when the definition does not say (a bare table)."""
    value = (definition.get("protocol") or {}).get("max_epochs", definition.get("max_epochs"))
    return int(value) if value is not None else None


def _column(ended, name):
    """The column as floats, NaN throughout when the table lacks it."""
    return ended[name].astype(float) if name in ended.columns else pd.Series(np.nan, index=ended.index)


def group_stats(group, total_cpu_hours: float = np.nan, cap=None) -> dict:
    """The module docstring's statistics (:data:`STATS`) of one group of ended trials: ``cpu_share``
    relative to ``total_cpu_hours``, ``at_epoch_limit`` for the epoch cap ``cap`` (NaN without them).
    Also the JZS report's CPU per trial (:func:`.jzs_table.cost`)."""
    cpu, epochs, wall = (_column(group, c) for c in ("cpu_seconds", "epochs", "wall_seconds"))
    both = cpu.notna() & epochs.notna()
    known_epochs = epochs.dropna()
    cpu_hours = float(cpu.sum() / 3600) if cpu.notna().any() else np.nan
    return {"ended": len(group), "cpu_hours": cpu_hours,
            "cpu_share": cpu_hours / total_cpu_hours if total_cpu_hours > 0 else np.nan,
            "cpu_s_per_trial": float(cpu.mean()) if cpu.notna().any() else np.nan,
            "mean_epochs": float(known_epochs.mean()) if len(known_epochs) else np.nan,
            "at_epoch_limit": float((known_epochs >= cap).mean()) if cap and len(known_epochs) else np.nan,
            "cpu_s_per_epoch": float(cpu[both].sum() / epochs[both].sum()) if epochs[both].sum() > 0 else np.nan,
            "mean_params": float(_column(group, "n_params").mean()),
            "wall_hours": float(wall.sum() / 3600) if wall.notna().any() else np.nan}


def _hidden_groups(hidden):
    """[(label, mask)] splitting the ended trials at the quartiles of N (module docstring)."""
    known = hidden.dropna()
    if known.empty:
        return []
    edges = np.unique(np.quantile(known, [0.25, 0.5, 0.75]))
    edges = edges[(edges > known.min()) & (edges <= known.max())]
    which = pd.Series(np.searchsorted(edges, hidden, side="right"), index=hidden.index).where(hidden.notna())
    out = []
    for g in range(len(edges) + 1):
        mask = which == g
        if mask.any():
            lo, hi = int(hidden[mask].min()), int(hidden[mask].max())
            out.append((f"{lo}" if lo == hi else f"{lo}–{hi}", mask))
    return out


def cost(definition: dict, df, counts) -> tuple[pd.DataFrame, list[str]]:
    """(table, notes) of one study. ``counts``: its :func:`.report.counts` (architectures in report
    order and their ``missing``). The table has a row per architecture (``by`` = arch), one for the study
    (``by`` = all) and one per N group (``by`` = hidden), with :data:`STATS`, and for architectures and
    the study ``missing`` and ``projected_cpu_hours``. The notes (sentences) say what the table could not
    show."""
    ended = df[df["outcome"].isin(ENDED)]
    cap = max_epochs(definition)
    cpu = _column(ended, "cpu_seconds")
    total = float(cpu.sum() / 3600) if cpu.notna().any() else np.nan
    absent = [c for c in USES if c not in df.columns or df.loc[ended.index, c].isna().all()]
    notes = [f"Not shown: {USES[c]} (the table has no {c})." for c in absent]
    if cap is None and "epochs" not in absent:
        notes.append("Not shown: the epoch-limit fraction (the study definition gives no max_epochs).")
    if "cpu_seconds" not in absent and cpu.isna().any():
        notes.append(f"{int(cpu.isna().sum())} ended trial(s) have no cpu_seconds; the means are over the others.")
    study_mean = float(cpu.mean()) if cpu.notna().any() else np.nan
    rows = []
    for arch, missing in zip(counts["arch"], counts["missing"]):
        row = {"by": "arch", "group": arch, **group_stats(ended[ended["arch"] == arch], total, cap),
               "missing": int(missing)}
        per_trial = row["cpu_s_per_trial"]
        if missing and not np.isfinite(per_trial) and np.isfinite(study_mean):
            notes.append(f"{arch} has no ended trial with a CPU time: its {missing} missing trial(s) are "
                         "projected at the study's mean CPU-s per ended trial.")
            per_trial = study_mean
        row["projected_cpu_hours"] = (np.nan_to_num(row["cpu_hours"]) + missing * per_trial / 3600
                                      if missing else row["cpu_hours"])
        rows.append(row)
    by_arch = pd.DataFrame(rows)
    rows.append({"by": "all", "group": "all", **group_stats(ended, total, cap),
                 "missing": int(by_arch["missing"].sum()),
                 "projected_cpu_hours": float(by_arch["projected_cpu_hours"].sum(min_count=1))})
    hidden = _column(ended, "hidden")
    rows += [{"by": "hidden", "group": label, **group_stats(ended[mask], total, cap)}
             for label, mask in _hidden_groups(hidden)]
    columns = ["by", "group", "ended", "missing", *STATS[1:], "projected_cpu_hours"]
    table = pd.DataFrame(rows, columns=columns)
    table["mean_params"] = table["mean_params"].round()
    table = table.astype({"missing": "Int64", "mean_params": "Int64"})       # N groups have no missing
    return table, notes


def summary(table: pd.DataFrame, notes: list[str]) -> str:
    """The sentence above the cost tables: the total in core-hours, and for an unfinished study the
    projection, labelled as one; then the notes (what the table could not show)."""
    study = table[table["by"] == "all"].iloc[0]
    text = ""
    if np.isfinite(study["cpu_hours"]):
        text = f"Total CPU time {study['cpu_hours']:.2f} core-hours over {study['ended']} ended trial(s)"
        if np.isfinite(study["wall_hours"]):
            text += f" ({study['wall_hours']:.2f} h wall time, summed over trials)"
        text += "."
        if study["missing"]:
            text += (f" PROJECTION: the {study['missing']} missing trial(s), each at its architecture's mean "
                     f"CPU-s per ended trial, would add {study['projected_cpu_hours'] - study['cpu_hours']:.2f} "
                     f"core-hours: {study['projected_cpu_hours']:.2f} core-hours for the whole study "
                     "(projected from the ended trials, not measured).")
    return " ".join([text, *notes]) if text else " ".join(notes)


def tables(table: pd.DataFrame) -> list[pd.DataFrame]:
    """The tables the report shows: per architecture with the study's row (``arch`` = all), and per
    range of N when the table has N (without the projection, which is per architecture). Columns no trial
    has are left out, and the wall time (the summary gives it; the CPU time is what a study costs)."""
    shown = [c for c in table.columns[2:] if c != "wall_hours" and table[c].notna().any()]
    by_arch = table[table["by"] != "hidden"].rename(columns={"group": "arch"})
    by_hidden = table[table["by"] == "hidden"].rename(columns={"group": "N"})
    by_hidden = by_hidden[["N", *[c for c in shown if c not in ("missing", "projected_cpu_hours")]]]
    return [by_arch[["arch", *shown]]] + ([by_hidden] if len(by_hidden) else [])
