"""The paper's results section for one or more studies: ``write_report(studies, out_dir)`` writes

* ``index.html`` — one self-contained page (figures embedded as base64 PNG): per study its definition,
  trial counts (finished / early-stopped / diverged / failed / missing), CPU time, the **cost** (where
  the core-hours went, and for an unfinished study their projection: :mod:`.cost`), the Welch table,
  the fANOVA shares, Figures 3–6, a **scorecard** against the paper's findings, the search space and
  protocol beside the reference space; versions at the end;
* ``report.md`` — the same tables in Markdown, linking the figure files;
* ``figures/<study>_fig{3,4,5,6}[_<task>].{png,svg}`` and the tables as CSV (``<study>_counts.csv``,
  ``<study>_cost.csv``, ``<study>_comparison.csv``, ``<study>_importance.csv``, ``scorecard.csv``).

Every input is checked before anything is written; each file is written atomically.
"""
from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from . import cost as cost_mod
from . import page
from . import importance as imp_mod
from ..search.space import Dimension, reference_space_of     # NumPy alone: no trainer, no Numba
from .stats import ENDED, arch_order, check_table, compare, scored
from .table import task_info

MIN_IMPORTANCE_TRIALS = 20      # below this a forest of 64 trees on 4 dimensions says little
LITTLE_INTERACTION = 0.20       # "little interaction": all interactions together < 20 % of the variance
BEST_LR_SPREAD = 1.0            # "N does not move the best η": the best η varies < 1 decade across N
PAPER_STUDY = {"trials": 200, "max_epochs": 150, "patience": 15}
"""The paper's study, per task and architecture (SPEC §6–7): what a smaller study is compared with."""


def _name(definition: dict, index: int) -> str:
    """A file-name-safe name: the definition's ``name``, else the last part of its ``path``."""
    for key in ("name", "path"):
        if definition.get(key):
            path = Path(str(definition[key]))
            name = path.stem if path.suffix in (".csv", ".jsonl") else path.name
            return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or f"study{index + 1}"
    return f"study{index + 1}"


def _archs(definition: dict, df) -> list:
    return list(definition.get("archs") or definition.get("architectures") or df["arch"].unique())


def _check(studies) -> list:
    """The studies as [(name, definition, df)], or a ValueError naming the bad one."""
    if isinstance(studies, tuple) and len(studies) == 2 and isinstance(studies[0], dict):
        studies = [studies]
    if not isinstance(studies, (list, tuple)) or not studies:
        raise ValueError("write_report needs a list of (definition, DataFrame) pairs, one per study")
    checked, names = [], set()
    for i, study in enumerate(studies):
        if not (isinstance(study, (list, tuple)) and len(study) == 2 and isinstance(study[0], dict)):
            raise ValueError(f"study #{i + 1}: not a study — give (definition dict as in study.json, "
                             f"DataFrame from Study.to_dataframe()), got {type(study).__name__}")
        definition, df = study
        if "task" not in definition:
            raise ValueError(f"study #{i + 1}: the definition has no 'task'; is this a study.json?")
        try:
            check_table(df)
        except ValueError as err:
            raise ValueError(f"study #{i + 1} ({definition['task']}): {err}") from None
        if not df["outcome"].isin(ENDED).any():
            raise ValueError(f"study #{i + 1} ({definition['task']}): empty — no trial has ended yet "
                             f"({len(df)} rows); run it ('lstm-odyssey search run STUDY') before reporting")
        name = _name(definition, i)
        while name in names:
            name += f"_{i + 1}"
        names.add(name)
        checked.append((name, definition, df))
    return checked


def counts(definition: dict, df):
    """Per architecture: trials expected, finished, early_stopped, diverged, failed, missing (not yet
    ended: pending, running or absent), CPU hours. ``trials`` of the definition is per architecture and
    task: a bare table of several tasks expects that many in each."""
    expected = definition.get("trials")
    tasks = max(1, df["task"].nunique())
    rows = []
    for arch in _archs(definition, df):
        of = df[df["arch"] == arch]
        row = {"arch": arch, "expected": int(expected) * tasks if expected else len(of)}
        row.update({o: int((of["outcome"] == o).sum()) for o in ENDED})
        row["missing"] = max(0, row["expected"] - sum(row[o] for o in ENDED))
        row["cpu_hours"] = float(of["cpu_seconds"].astype(float).sum() / 3600) if "cpu_seconds" in of else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def scorecard(task: str, comparison, pooled, lower_is_better: bool = True, robust=None):
    """The paper's findings against this study, one row each: finding, what this study found, verdict
    (agrees / disagrees / not testable) and why not testable. ``comparison``: the task's rows of
    :func:`.stats.compare`; ``pooled``: the task's pooled :class:`.importance.Importance`, or None when
    there were too few trials. ``robust``: (label, Importance) of the pooled analysis without the
    architectures that have blow-ups (:func:`.importance.blow_ups`), or None when there are none: its
    verdicts on the fANOVA findings fill the column ``without blow-ups``. The thresholds that
    turn "little" into a test are module constants."""
    rows = comparison.set_index("arch")
    has_base = "V" in rows.index and rows.loc["V", "n_best"] >= 2
    out = []

    def add(finding, found, ok, testable=True, why="", robust_text=""):
        out.append({"task": task, "finding": finding, "this study": found,
                    "verdict": ("agrees" if ok else "disagrees") if testable else "not testable", "note": why,
                    "without blow-ups": robust_text})

    def welch(arch):
        """(row, text) of arch against V, or (None, why not)."""
        if arch not in rows.index:
            return None, f"{arch} is not in this study"
        if not has_base:
            return None, "vanilla (V) is missing or has fewer than 2 best trials"
        r = rows.loc[arch]
        if r["n_best"] < 2:
            return None, f"{arch} has {int(r['n_best'])} best trial(s); Welch needs at least 2 per side"
        if not np.isfinite(r["p"]):
            return None, f"{arch}'s and V's best trials all score the same: Welch's t is 0/0"
        return r, f"{arch} − V = {r['best10_mean'] - rows.loc['V', 'best10_mean']:+.3f}, p = {r['p']:.2g}"

    for arch, worse in (("NFG", True), ("NOAF", True), ("CIFG", False), ("NP", False)):
        r, found = welch(arch)
        claim = f"{arch} significantly worse than V" if worse else f"{arch} not significantly different from V"
        if r is None:
            add(claim, "—", False, False, found)
        else:
            add(claim, found, (r["direction"] == "worse") if worse else not r["significant"])
    others = [a for a in rows.index if a != "V" and welch(a)[0] is not None]
    better = [a for a in others if rows.loc[a, "direction"] == "better"]
    if others:
        add("no variant significantly better than V",
            f"better: {', '.join(better)}" if better else f"none of {len(others)} better", not better)
    else:
        add("no variant significantly better than V", "—", False, False, "no variant comparable with V")

    claims = fanova_findings(task, pooled, lower_is_better)
    again = dict.fromkeys(claims)
    if robust is not None:
        label, imp = robust
        again = {claim: (f"{'agrees' if ok else 'disagrees'}: {found} ({label})" if testable else
                         f"not testable: {why}")
                 for claim, (found, ok, testable, why) in fanova_findings(task, imp, lower_is_better).items()}
    for claim, (found, ok, testable, why) in claims.items():
        add(claim, found, ok, testable, why, again[claim] or "")
    return pd.DataFrame(out, columns=["task", "finding", "this study", "verdict", "note", "without blow-ups"])


def fanova_findings(task: str, imp, lower_is_better: bool = True) -> dict:
    """The paper's fANOVA findings tested on one analysis ``imp`` (an :class:`.importance.Importance`, or
    None when there were too few trials): {finding: (what was found, agrees, testable, why not)}."""
    why = "" if imp is not None else f"fewer than {MIN_IMPORTANCE_TRIALS} trials for fANOVA"
    main = imp.main if imp is not None else {}
    out = {}
    claim = "η has the largest share of variance"
    if "lr" in main:
        top = max(main, key=main.get)
        out[claim] = (f"η {main['lr']:.1%}; largest: {SYMBOLS.get(top, top)} {main[top]:.1%}", top == "lr", True, "")
    else:
        out[claim] = ("—", False, False, why or "η is fixed in this study")
    claim = "η > 2/3 of the variance on JSB"
    if task == "jsb" and "lr" in main:
        out[claim] = (f"η {main['lr']:.1%}", main["lr"] > 2 / 3, True, "")
    else:
        out[claim] = ("—", False, False, why or f"the claim is about JSB; this task is {task}")
    claim = "momentum < 1 % of the variance"
    if "one_minus_momentum" in main:
        out[claim] = (f"1 − m {main['one_minus_momentum']:.2%}", main["one_minus_momentum"] < 0.01, True, "")
    else:
        out[claim] = ("—", False, False, why or "momentum is fixed in this study")
    claim = f"little interaction (all interactions < {LITTLE_INTERACTION:.0%} of the variance)"
    if imp is not None:
        out[claim] = (f"{imp.interactions:.1%} (pairs {sum(imp.pairs.values()):.1%}, higher order "
                      f"{imp.higher_order:.1%})", imp.interactions < LITTLE_INTERACTION, True, "")
    else:
        out[claim] = ("—", False, False, why)
    claim = f"hidden size does not move the best η (it moves < {BEST_LR_SPREAD:g} decade across N)"
    if imp is not None and {"lr", "hidden"} <= set(imp.names):
        spread = best_lr_spread(imp, lower_is_better)
        out[claim] = (f"the best η spans {spread:.2f} decades across N", spread < BEST_LR_SPREAD, True, "")
    else:
        out[claim] = ("—", False, False, why or "η or N is fixed in this study")
    return out


def best_lr_spread(imp, lower_is_better: bool = True, n: int = 20) -> float:
    """How far the best η moves with N: on the joint marginal a(η, N) (n × n grid), the η that is best
    for each N; the range of log10 of those η, in decades."""
    grid_lr, _, mean = imp.joint_marginal("lr", "hidden", n)
    best = (np.argmin if lower_is_better else np.argmax)(mean, axis=0)
    logs = np.log10(grid_lr[best])
    return float(logs.max() - logs.min())


STUDY_NAMES = {"one_minus_momentum": "momentum", "budget": "params"}
"""Analysed column → study.json's dimension, where they differ."""


def dimension_label(name: str) -> str:
    """study.json's dimension ``name`` as a reader knows it: its fANOVA label (``importance.PAPER_SPACE``,
    ``JZS_SPACE``), or for a dimension not analysed as sampled :data:`NOT_ANALYSED_NAMES`' name."""
    if name in NOT_ANALYSED_NAMES:
        return NOT_ANALYSED_NAMES[name]
    column = {source: column for column, source in STUDY_NAMES.items()}.get(name, name)
    return {**imp_mod.PAPER_SPACE, **imp_mod.JZS_SPACE}.get(column, (name,))[0]


def space_from_definition(definition: dict) -> dict:
    """The analysed box from the study's space ({name: {dist, low, high, …}} as in study.json): a
    narrowed range replaces the paper's (``importance.PAPER_SPACE``) or JZS's (``importance.JZS_SPACE``,
    for a study of protocol jzs: study.json's ``params`` is the column ``budget``; ``layers`` drawn from
    the integers a…b spans [a − ½, b + ½], each value its share of the measure, as JZS_SPACE's 1–4 do); a
    fixed dimension gets lo == hi and is dropped by fANOVA."""
    space = definition.get("space") or {}
    out = {}
    for column, (label, _, log) in {**imp_mod.PAPER_SPACE, **imp_mod.JZS_SPACE}.items():
        source = STUDY_NAMES.get(column, column)
        dim = space.get(source)
        if not isinstance(dim, dict):
            continue
        if dim.get("dist") == "fixed":
            out[column] = (label, (0.0, 0.0), log)
        elif column == "layers" and dim.get("dist") == "choice" and dim.get("choices"):
            out[column] = (label, (min(dim["choices"]) - 0.5, max(dim["choices"]) + 0.5), log)
        elif dim.get("low") is not None and dim.get("high") is not None:
            lo, hi = float(dim["low"]), float(dim["high"])
            out[column] = (label, (1 - hi, 1 - lo) if source == "momentum" else (lo, hi), log)
    return out


def analyse(name, definition, df, top=0.10, alpha=0.05, n_trees=64, seed=0) -> dict:
    """Every table and fANOVA of one study (no files): counts, cost, comparison, per-task importances."""
    task_names = sorted(df["task"].unique())
    directions = {task_info(t)["lower_is_better"] for t in task_names}
    if len(directions) > 1:
        raise ValueError(f"study {name}: its tasks {task_names} have metrics of opposite directions; "
                         "report them as separate studies")
    lower_is_better = directions.pop()
    archs = set(df["arch"])
    comparison = compare(df, baseline="V" if "V" in archs else None, top=top, alpha=alpha,
                         lower_is_better=lower_is_better)
    space = space_from_definition(definition)
    options = dict(space=space, n_trees=n_trees, seed=seed, lower_is_better=lower_is_better,
                   min_trials=MIN_IMPORTANCE_TRIALS)
    importances = imp_mod.study_importance(df, **options)
    time_column = "cpu_seconds" if "cpu_seconds" in df.columns and df["cpu_seconds"].notna().any() else None
    times = imp_mod.study_importance(df, target=time_column, per_arch=False, **options) if time_column else {}
    # The pooled analysis again without the architectures that have blow-ups (importance.blow_ups): it is
    # keyed (task, "pooled without …") beside the others, drawn in Figs. 4–6 and judged in the scorecard.
    blown = imp_mod.blow_ups(df, {t: task_info(t)["uninformed"] for t in task_names}, lower_is_better)
    robust = {}
    for task, held in blown.items():
        rest = df[(df["task"] == task) & ~df["arch"].isin(list(held))]
        label = "pooled without " + ", ".join(held)
        found = imp_mod.study_importance(rest, per_arch=False, **options) if len(rest) else {}
        if (task, "pooled") in found:
            importances[(task, label)] = found[(task, "pooled")]
            robust[task] = {"label": label, "importance": found[(task, "pooled")],
                            "time": (imp_mod.study_importance(rest, target=time_column, per_arch=False, **options)
                                     .get((task, "pooled")) if time_column else None)}
    cards = [scorecard(t, comparison[comparison["task"] == t], importances.get((t, "pooled")), lower_is_better,
                       (robust[t]["label"], robust[t]["importance"]) if t in robust else None)
             for t in task_names]
    count = counts(definition, df)
    cost, cost_notes = cost_mod.cost(definition, df, count)
    return {"name": name, "definition": definition, "df": df, "tasks": task_names, "counts": count,
            "cost": cost, "cost_summary": cost_mod.summary(cost, cost_notes),
            "comparison": comparison, "importances": importances, "times": times, "robust": robust,
            "blow_ups": blown,
            "importance_table": imp_mod.importance_table(importances),
            "scorecard": pd.concat(cards, ignore_index=True), "lower_is_better": lower_is_better,
            "synthetic": (any(task_info(t)["synthetic"] for t in task_names)
                          or ("synthetic" in df.columns and bool((df["synthetic"] == True).any()))),  # noqa: E712
            "missing": int(count["missing"].sum()), "expected": int(count["expected"].sum()),
            "cpu_hours": float(count["cpu_hours"].sum()), "top": top, "alpha": alpha}


def _figures(study: dict, fig_dir: Path) -> list[tuple[str, Path]]:
    """Write Figures 3–6 of one study; [(caption, png path)]."""
    from . import figures
    name, out = study["name"], []
    banner = " — SYNTHETIC STAND-IN DATA" if study["synthetic"] else ""
    table = scored(study["df"], study["lower_is_better"])
    for task in study["tasks"]:
        info = task_info(task)
        title = f"{name}: {info['title']}{banner}"
        rows = study["comparison"][study["comparison"]["task"] == task]
        fig = figures.figure3(table[table["task"] == task], rows, info["label"], title,
                              baseline="V" if "V" in set(rows["arch"]) else None, top=study["top"],
                              alpha=study["alpha"],
                              lower_is_better=study["lower_is_better"])
        suffix = f"_{task}" if len(study["tasks"]) > 1 else ""
        out.append((f"Fig. 3 — {task}: test {info['label']} by architecture. Left: every ended trial; right: "
                    f"the best {study['top']:.0%} by validation, scored on test. Box = quartiles, whiskers = range, "
                    "◇ = mean, ▲ = mean parameter count of the best trials (right axis); coloured: Welch's test "
                    f"against V at p < {study['alpha']}, uncorrected.",
                    figures.save(fig, fig_dir / f"{name}_fig3{suffix}")[0]))
    # Figs. 4 and 6 draw the pooled analysis without the architectures that blew up where a task has them
    # (a marginal of a handful of blown-up trials says nothing about the rest); Fig. 5 shows both analyses.
    pooled = [(t, study["importances"][(t, "pooled")]) for t in study["tasks"] if (t, "pooled") in study["importances"]]
    drawn = []                  # per task: (panel label, whose trials, Importance, time Importance)
    for t, imp in pooled:
        robust = study["robust"].get(t)
        drawn.append((f"{t}, {robust['label']}", robust["label"], robust["importance"], robust["time"]) if robust
                     else (t, "all architectures pooled", imp, study["times"].get((t, "pooled"))))
    if pooled:
        title = f"{name}{banner}"
        what = ("all architectures pooled" if not study["robust"] else
                "all architectures pooled, without those with blow-ups: "
                + "; ".join(f"{t}: {', '.join(study['blow_ups'][t])}" for t in study["robust"]))
        panels = [(label, imp, time, task_info(t)["label"]) for (t, _), (label, _, imp, time) in zip(pooled, drawn)]
        if any(p in imp.names for _, imp, _, _ in panels for p in figures.FIG4_PARAMETERS):   # else no curve to draw
            out.append((f"Fig. 4 — fANOVA marginals ({what}). The forest's prediction of the test metric as one "
                        "hyperparameter varies, averaged over the others under the uniform measure on the search "
                        "box (so it lies above the best trials); band = ±1 std across the trees, not a confidence "
                        "interval; dashed orange = the same marginal of CPU seconds per trial (right axis).",
                        figures.save(figures.figure4(panels, title), fig_dir / f"{name}_fig4")[0]))
        shares = [panel for t, imp in pooled for panel in
                  [(t, imp)] + ([(f"{t}, {study['robust'][t]['label']}", study["robust"][t]["importance"])]
                                if t in study["robust"] else [])]
        out.append(("Fig. 5 — shares of variance (all architectures pooled"
                    + ("; and without the architectures with blow-ups)" if study["robust"] else ")")
                    + ": each hyperparameter's main effect (± std across the trees) and all interactions together "
                    "(1 − Σ main effects), of the variance of the test metric over the search box.",
                    figures.save(figures.figure5(shares, title), fig_dir / f"{name}_fig5")[0]))
        for (t, _), (label, whose, imp, _) in zip(pooled, drawn):
            if len(imp.names) >= 2:
                suffix = f"_{t}" if len(pooled) > 1 else ""
                out.append((f"Fig. 6 — {t}: pairs of hyperparameters ({whose}). Left triangle: the joint "
                            "marginal of the test metric over each pair; right: its interaction part alone "
                            "(a_ab − a_a − a_b + f∅: how far the pair departs from 'the effects add up'). Each "
                            "panel has its own colour scale.",
                            figures.save(figures.figure6(imp, label, title, task_info(t)["label"]),
                                         fig_dir / f"{name}_fig6{suffix}")[0]))
    return out


def _short_commits(text: str) -> str:
    """``text`` with every 40-digit commit hash cut to its first 12 digits (as ``git log`` would show it)."""
    return re.sub(r"\b([0-9a-f]{12})[0-9a-f]{28}\b", r"\1", text)


def _machines(df) -> str:
    """The machines and code the trials ran on (" Ran on AMD EPYC × 2 (1 host). Every trial ran with code
    git:…."), from the table's ``cpu``, ``host`` and ``code_version`` columns when it has them (tables
    exported before they existed do not)."""
    def distinct(column):
        return sorted(df[column].dropna().astype(str).unique()) if column in df.columns else []
    cpus, hosts = distinct("cpu"), distinct("host")
    codes = sorted({_short_commits(c) for c in distinct("code_version")})
    text = ""
    if cpus:
        text += f" Ran on {', '.join(cpus)}" + (f" ({len(hosts)} host{'s' if len(hosts) != 1 else ''})." if hosts else ".")
    if len(codes) == 1:
        text += f" Every trial ran with code {codes[0]}."
    elif codes:
        text += f" Trials ran with {len(codes)} code versions: {', '.join(codes)}."
    return text


def _status(study: dict) -> str:
    """The sentence on completeness (and synthetic data) shown on every page of a study."""
    definition = study["definition"]
    made = ", ".join(f"{k} {v}" for k, v in (("created", definition.get("created")),
                                            ("code", (definition.get("provenance") or {}).get("code_version")))
                     if v)
    made = _short_commits(made)
    text = (f"{study['expected'] - study['missing']} of {study['expected']} trials ended; "
            f"total CPU time {study['cpu_hours']:.2f} core-hours{' (' + made + ')' if made else ''}.")
    text += _machines(study["df"])
    if study["missing"]:
        text += f" UNFINISHED: {study['missing']} trial(s) missing (not yet run); results may change."
    if study["synthetic"]:
        text += " SYNTHETIC STAND-IN: this study ran on generated data, not the paper's corpus."
    return text


def write_report(studies, out_dir, top: float = 0.10, alpha: float = 0.05, n_trees: int = 64,
                 seed: int = 0) -> Path:
    """Write the report of ``studies`` ([(definition, DataFrame)], module docstring) into ``out_dir``;
    returns the path of index.html. Bad input raises ``ValueError`` before anything is written."""
    checked = _check(studies)
    versions = page.versions()
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir}: exists and is not a directory; choose another --out")
    analysed = [analyse(name, d, df, top, alpha, n_trees, seed) for name, d, df in checked]
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    for study in analysed:
        study["figures"] = _figures(study, fig_dir)
        for what in ("counts", "cost", "comparison", "importance_table"):
            page.write_csv(out_dir / f"{study['name']}_{what.replace('_table', '')}.csv", study[what])
    page.write_csv(out_dir / "scorecard.csv",
               pd.concat([s["scorecard"].assign(study=s["name"]) for s in analysed], ignore_index=True))
    settings = [
        f"Comparison: each architecture's best {top:.0%} of trials, chosen by validation metric and scored on the "
        f"test metric, against vanilla LSTM (V) by Welch's t-test at α = {alpha}, with Bonferroni's correction "
        "beside it.",
        "Broken trials: a diverged or failed trial counts, with the worst score any trial of its task reached.",
        f"fANOVA: a random forest of {n_trees} trees (scikit-learn, bootstrap samples, every hyperparameter tried "
        f"at each split, grown to single trials, seed {seed}) fitted to the test metric; each tree's marginals "
        "computed exactly under the uniform measure on the search box, with η, N and 1 − m in log10 space as "
        "they were sampled. Diverged trials count with the worst score, failed ones are left out. Every "
        "architecture's trials pooled per task (the paper's figures), and each architecture alone.",
    ]
    if any(s["blow_ups"] for s in analysed):
        settings.append("Blow-ups: where trials ended worse than a predictor that knows nothing (the level is "
                        "named with them), the pooled analysis is repeated without their architectures: Figs. 4 "
                        "and 6 show that one, Fig. 5 both, the scorecard judges both.")
    page.write_text(out_dir / "report.md", _markdown(analysed, settings, versions, out_dir))
    index = out_dir / "index.html"
    page.write_text(index, _html(analysed, settings, versions, out_dir))
    return index


def _blow_up_note(study: dict) -> str:
    """The sentence naming each task's blow-ups (:func:`.importance.blow_ups`), or ""."""
    parts = []
    for task, held in study["blow_ups"].items():
        level = task_info(task)["uninformed"]
        who = ", ".join(f"{n} {arch}" for arch, n in held.items())
        robust = study["robust"].get(task)
        parts.append(f"on {task}, {who} trial(s) ended worse than a predictor that knows nothing (test metric "
                     f"beyond {level:.1f}); " +
                     (f"the fANOVA findings are judged again without {', '.join(held)} (last column), "
                      "and Figs. 4 and 6 show that analysis" if robust else
                      "too few trials are left without their architectures for a second analysis"))
    return ("Blow-ups: " + "; ".join(parts) + ".") if parts else ""


def reductions(definition: dict) -> list[str]:
    """How a study of the paper's protocol is smaller than the paper's (:data:`PAPER_STUDY`, the paper's
    space ``importance.PAPER_SPACE``), one phrase each: fewer trials, a lower epoch cap, another
    patience, a dimension narrowed or fixed, architectures left out. [] for a study of the paper's size,
    a study of JZS's protocol, or a bare table (its definition does not say)."""
    from ..variants import LSTM_VARIANTS
    protocol, space = definition.get("protocol") or {}, definition.get("space") or {}
    if protocol.get("protocol", "online") != "online" or not isinstance(definition.get("trials"), int) \
            or definition.get("inferred from the table"):
        return []
    out = []
    if definition["trials"] < PAPER_STUDY["trials"]:
        out.append(f"{definition['trials']} trials per architecture (paper: {PAPER_STUDY['trials']})")
    for key, what in (("max_epochs", "at most {} epochs per trial"), ("patience", "early-stopping patience {}")):
        if protocol.get(key) is not None and protocol[key] != PAPER_STUDY[key]:
            out.append(f"{what.format(protocol[key])} (paper: {PAPER_STUDY[key]})")
    for column, (label, (lo, hi), _) in space_from_definition(definition).items():
        paper = imp_mod.PAPER_SPACE[column][1]
        if column in ("nesterov", "clip") or np.allclose((lo, hi), paper, rtol=1e-9):   # 1 − 0.99 ≠ 0.01
            continue
        source = space["momentum" if column == "one_minus_momentum" else column]
        out.append(f"{label} fixed at {source['value']}" if source.get("dist") == "fixed" else
                   f"{label} in [{lo:g}, {hi:g}] (paper: [{paper[0]:g}, {paper[1]:g}])")
    reference = reference_space_of(definition)["dimensions"]
    for name in ("nesterov", "clip"):       # fair coins in the paper's TIMIT search, fixed elsewhere
        paper = reference.get(name, "")
        if (space.get(name) or {}).get("dist") == "fixed" and paper and not paper.startswith("="):
            out.append(f"{name} fixed at {space[name]['value']} (paper: {paper})")
    left_out = [a for a in LSTM_VARIANTS if a not in (definition.get("archs") or LSTM_VARIANTS)]
    if left_out:
        out.append(f"without {', '.join(left_out)} (paper: all nine architectures)")
    return out


def _reduced(study: dict) -> str:
    """The "reduced study" note of a study smaller than the paper's, or ""."""
    found = reductions(study["definition"])
    return ("REDUCED STUDY — smaller than the paper's: " + "; ".join(found) +
            ". Its numbers are this study's, not a reproduction of the paper's values.") if found else ""


# ------------------------------------------------------------------ the page: what a reader sees
SYMBOLS = {"lr": "η", "hidden": "N", "one_minus_momentum": "1 − m", "noise": "σ", "nesterov": "Nesterov",
           "clip": "clipping", "budget": "budget", "layers": "layers", "init_scale": "init scale",
           "clip_norm": "clip norm"}
"""The hyperparameters as the paper writes them (tables and the scorecard's text)."""

NOT_ANALYSED_NAMES = {"momentum": "momentum m", "nesterov": "Nesterov momentum", "clip": "gradient clipping to [−c, c]",
                      "seed": "run seed (initialisation, order, noise)"}
"""study.json's dimensions that the analysis does not label as sampled (it analyses 1 − m, the coins as 0/1,
and never the seed); the others are named by their fANOVA labels (:func:`dimension_label`)."""

PROTOCOL_NAMES = {"protocol": "protocol", "max_epochs": "epochs at most", "patience": "early-stopping patience "
                  "(epochs without a better validation metric)", "dtype": "arithmetic", "forget_bias": "forget-gate "
                  "bias", "bidirectional": "bidirectional", "batch": "minibatch", "unroll": "truncated BPTT unroll",
                  "lr_decay": "η decay"}
"""study.json's protocol settings as a reader knows them; a setting that is None (not used) is not shown."""


def search_space_shown(definition: dict) -> list:
    """What was searched, for the page: [the trials and protocol as a table of (setting, value), the space
    as a table of (hyperparameter, sampled in this study, in the reference space), the reference's source],
    each only when the definition says (a bare table's inferred definition says neither). Descriptions are
    :meth:`Dimension.describe`'s, as ``lstm-odyssey search create`` prints them."""
    out = []
    protocol = definition.get("protocol") or {}
    settings = [("trials per architecture", definition.get("trials")), ("study seed", definition.get("seed")),
                ("same draws for every architecture (common random numbers)", definition.get("shared_samples")),
                *((PROTOCOL_NAMES.get(k, k), v) for k, v in protocol.items())]
    if protocol:
        out.append(pd.DataFrame([{"setting": k, "value": str(v)} for k, v in settings if v is not None]))
    space = definition.get("space")
    if isinstance(space, dict) and space:
        reference = reference_space_of(definition)
        out.append(pd.DataFrame([{"hyperparameter": dimension_label(name),
                                  "sampled in this study": Dimension.from_dict(dim).describe(),
                                  "reference space": reference["dimensions"].get(name, "—")}
                                 for name, dim in space.items()]))
        if reference["source"]:
            out.append(f"Reference space: {reference['source']}.")
    return out


COUNTS_SHOWN = {"task": ("task", page.text), "arch": ("arch", page.text), "expected": ("planned", page.count),
                "finished": ("ran to the epoch cap", page.count),
                "early_stopped": ("stopped early (patience)", page.count),
                "diverged": ("diverged", page.count), "failed": ("failed (error)", page.count),
                "missing": ("not yet run", page.count)}
COST_SHOWN = {"arch": ("arch", page.text), "N": ("N (quartiles of the ended trials)", page.text),
              "ended": ("trials ended", page.count), "cpu_hours": ("core-hours", page.fixed(2)),
              "cpu_share": ("share of the CPU", page.percent),
              "cpu_s_per_trial": ("CPU-s per trial", page.significant(3)),
              "mean_epochs": ("mean epochs", page.fixed(1)), "at_epoch_limit": ("at the epoch cap", page.percent),
              "cpu_s_per_epoch": ("CPU-s per epoch", page.significant(3)),
              "mean_params": ("mean parameters", page.count),
              "missing": ("not yet run", page.count), "projected_cpu_hours": ("projected core-hours", page.fixed(2))}


def _one_task(frame, s: dict):
    """``frame`` without its ``task`` column when the study has one task."""
    return frame.drop(columns="task") if len(s["tasks"]) == 1 and "task" in frame.columns else frame


def _welch_shown(s: dict):
    """The comparison as a reader wants it: mean ± sd of the best trials, the difference to V, t, p,
    the Bonferroni p, the two verdicts, the parameters of the best trials, the mean over every trial."""
    rows = []
    for _, r in s["comparison"].iterrows():
        base = s["comparison"][(s["comparison"]["task"] == r["task"]) & (s["comparison"]["arch"] == "V")]
        delta = r["best10_mean"] - base["best10_mean"].iloc[0] if len(base) and r["arch"] != "V" else np.nan
        spread = "" if not np.isfinite(r["best10_std"]) else f" ± {r['best10_std']:.3f}"
        rows.append({"task": r["task"], "arch": r["arch"], "n": page.count(r["n_best"]),
                     "best: mean ± sd": f"{r['best10_mean']:.3f}{spread}", "Δ vs V": page.fixed(3, sign=True)(delta),
                     "t": page.fixed(2)(r["t"]), "p": page.p_value(r["p"]),
                     "p × m (Bonferroni)": page.p_value(r["p_bonferroni"]),
                     "verdict": "baseline" if r["arch"] == "V" else r["direction"],
                     "verdict (Bonferroni)": "baseline" if r["arch"] == "V" else
                     (r["direction"] if r["significant_bonferroni"] else "—"),
                     "mean parameters, best": page.count(r["n_params_best10"]),
                     "mean, all trials": page.fixed(3)(r["all_mean"])})
    return _one_task(pd.DataFrame(rows), s)


def _shares_shown(s: dict):
    """The fANOVA shares, one row per analysis (pooled, pooled without the blow-up architectures, each
    architecture): each main effect ± its std across trees, all pairs, higher order, all interactions."""
    table = s["importance_table"]
    rows = []
    for (task, arch), of in table.groupby(["task", "arch"], sort=False):
        main = of[of["kind"] == "main"]
        row = {"task": task, "analysis": arch, "trials": page.count(of["trials"].iloc[0])}
        row.update({SYMBOLS.get(t, t): f"{page.percent(f)} ± {100 * sd:.1f}" if np.isfinite(sd) else page.percent(f)
                    for t, f, sd in zip(main["term"], main["fraction"], main["std"])})
        row["all pairs"] = page.percent(of.loc[of["kind"] == "pair", "fraction"].sum())
        row["higher order"] = page.percent(of.loc[of["kind"] == "higher", "fraction"].iloc[0])
        row["all interactions"] = page.percent(of.loc[of["kind"] == "interactions", "fraction"].iloc[0])
        rows.append(row)
    order = {a: i for i, a in enumerate(arch_order(table["arch"].unique()))}
    shown = pd.DataFrame(rows)
    shown["_pooled"] = ~shown["analysis"].str.startswith("pooled")
    shown["_order"] = shown["analysis"].map(order)
    shown = shown.sort_values(["task", "_pooled", "_order"], kind="stable").drop(columns=["_pooled", "_order"])
    return _one_task(shown.fillna("—"), s)


def _scorecard_shown(s: dict):
    card = s["scorecard"].rename(columns={"note": "why not testable", "without blow-ups":
                                          "verdict without the architectures that blew up"})
    card = card[[c for c in card.columns if card[c].fillna("").astype(str).str.len().gt(0).any()]]
    return _one_task(card.fillna(""), s)


def _cost_shown(s: dict) -> list:
    tables = cost_mod.tables(s["cost"])
    if not s["missing"]:
        tables = [t.drop(columns=[c for c in ("missing", "projected_cpu_hours") if c in t.columns]) for t in tables]
    return [page.displayed(t, COST_SHOWN) for t in tables]


def _sections(s: dict) -> list[tuple[str, list]]:
    """One study's page, the same for Markdown and HTML: [(heading, [paragraph text, table, or figure
    (caption, png path)])] — the analyses, the figures, then trials and cost."""
    metric = "/".join(sorted({task_info(t)["label"] for t in s["tasks"]}))
    n = sorted(set(s["comparison"]["n_best"]))
    out = [("Scorecard against the paper", [
        *([_blow_up_note(s)] if _blow_up_note(s) else []),
        "Each finding of the paper as this study tests it: Welch's tests against V on the best trials, "
        "fANOVA shares of the pooled analysis (thresholds: 'little interaction' = all interactions < "
        f"{LITTLE_INTERACTION:.0%} of the variance; 'N does not move the best η' = the η minimising the "
        f"fANOVA joint marginal a(η, N), per N on a 20-point grid, spans < {BEST_LR_SPREAD:g} decade).",
        _scorecard_shown(s)]),
        ("Architectures against vanilla (Welch)", [
        f"Test {metric} of each architecture's best {s['top']:.0%} of trials (n = "
        f"{'–'.join(map(str, (n[0], n[-1])) if len(n) > 1 else map(str, n))} per architecture), chosen by "
        f"validation; Welch's t-test against V at α = {s['alpha']}; Bonferroni: p × m, m = the comparisons in "
        "the task. Diverged and failed trials count with the worst score of the task. 'mean, all trials': "
        "every ended trial, which the search box's bad corners dominate.", _welch_shown(s)])]
    if len(s["importance_table"]):
        out.append((f"fANOVA: shares of the variance of the test {metric}", [
            "Share of the variance over the search box explained by each hyperparameter alone (± std across "
            "the trees), by all pairs together, and by the rest (higher order); η, N and 1 − m in log10 space. "
            "'pooled' = every architecture's trials together (the paper's figures); then each architecture alone.",
            _shares_shown(s)]))
    out.append(("Figures", s["figures"]))
    out.append(("Trials", [page.displayed(_one_task(s["counts"], s), COUNTS_SHOWN)]))
    out.append(("Cost", [s["cost_summary"], *_cost_shown(s)]))
    searched = search_space_shown(s["definition"])
    if searched:
        out.append(("Search space and protocol", [
            "What each trial drew, and how it trained (the whole definition, study.json, follows).", *searched]))
    return out


def _markdown(analysed, settings, versions, out_dir: Path) -> str:
    lines = ["# LSTM: A Search Space Odyssey — study report", ""]
    if any(s["synthetic"] for s in analysed):
        lines += ["**SYNTHETIC STAND-IN DATA in at least one study — not the paper's corpus.**", ""]
    lines += [*[f"- {item}" for item in settings], ""]
    for s in analysed:
        lines += [f"## {s['name']} ({', '.join(s['tasks'])})", "", f"**{_status(s)}**", ""]
        if _reduced(s):
            lines += [f"**{_reduced(s)}**", ""]
        for heading, items in _sections(s):
            lines += [f"### {heading}", ""]
            for item in items:
                if isinstance(item, tuple):                     # a figure: (caption, png)
                    lines += page.md_figure(*item, out_dir)
                else:
                    lines.append(item if isinstance(item, str) else page.md_table(item))
                lines.append("")
        lines += ["<details><summary>Definition (study.json)</summary>", "", "```json",
                  json.dumps(s["definition"], indent=1, default=str), "```", "", "</details>", ""]
    lines += ["## Versions", "", *[f"- {k}: {v}" for k, v in versions.items()], ""]
    return "\n".join(lines)


def _html(analysed, settings, versions, out_dir: Path) -> str:
    esc = html.escape
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>LSTM Odyssey study report</title>",
             f"<style>{page.CSS}</style></head><body><h1>LSTM: A Search Space Odyssey — study report</h1>"]
    if any(s["synthetic"] for s in analysed):
        parts.append("<p class='warn'>SYNTHETIC STAND-IN DATA in at least one study below — not the paper's "
                     "corpus.</p>")
    parts.append("<ul>" + "".join(f"<li>{esc(item)}</li>" for item in settings) + "</ul>")
    for s in analysed:
        warn = s["missing"] or s["synthetic"]
        parts += [f"<h2>{esc(s['name'])} ({esc(', '.join(s['tasks']))})</h2>",
                  f"<p class='{'warn' if warn else ''}'>{esc(_status(s))}</p>",
                  f"<p class='warn'>{esc(_reduced(s))}</p>" if _reduced(s) else ""]
        for heading, items in _sections(s):
            parts.append(f"<h3>{esc(heading)}</h3>")
            for item in items:
                if isinstance(item, tuple):
                    parts.append(page.html_figure(*item))
                else:
                    parts.append(f"<p>{esc(item)}</p>" if isinstance(item, str) else page.html_table(item))
        parts += ["<details><summary>Definition (study.json)</summary>",
                  f"<pre>{esc(json.dumps(s['definition'], indent=1, default=str))}</pre></details>"]
    parts += ["<h2>Versions</h2><ul>", *[f"<li>{esc(k)}: {esc(str(v))}</li>" for k, v in versions.items()],
              "</ul></body></html>"]
    return "\n".join(parts)
