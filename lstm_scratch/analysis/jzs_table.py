"""JZS's Table 1 from a benchmark directory (:mod:`lstm_scratch.search.benchmark`), ours beside theirs,
and the answer to their headline question: does LSTM-b close the LSTM–GRU gap?

Rows are JZS's cells (Tanh, LSTM, LSTM-f/-i/-o/-b, GRU, MUT1–3), columns the tasks: best next-symbol
accuracy on arithmetic, XML and memorisation (higher is better), best test NLL per time step on
Nottingham and Piano-midi.de (lower is better). A cell's number is the test metric of its trial with the
best validation metric — the Odyssey analysis' selection (:func:`.stats.best_trials` on
:func:`.stats.scored`: diverged and failed trials count, with the worst score of their task) — with
the trials that ended beside it, and JZS's own number where Table 1 has one (:data:`JZS_TABLE1`; their
third column, PTB, needs an LDC corpus). A cell whose every ended trial diverged or failed shows
"broke", not the worst score it stands in with; a task whose every ended trial broke has no worst score
at all: its column is empty, with a note, and the other tasks are reported as usual.

The headline question, per task, from those best numbers::

    gap closed = (LSTM-b − LSTM) / (GRU − LSTM)

1: LSTM-b reaches the GRU; 0: no better than LSTM; > 1: beyond the GRU; < 0: worse than LSTM. The ratio
reads the same for accuracy and NLL; it is defined only where the GRU is better than LSTM (else there
is no gap to close). JZS's own numbers give 2.5 on arithmetic and 0.54 on XML. A single best trial is
noisy, so beside it: Welch's t-test on the best 10 % (by validation, test scores) of LSTM-b against LSTM
and against the GRU (:func:`.stats.compare` of the whole task, so a broken trial scores the worst of
every architecture, as in Table 1), where both sides have at least 2 trials.

``write_jzs_report(DIR, OUT)`` writes OUT/report.md, OUT/index.html (report.py's page machinery),
OUT/table1.csv (one row per cell and task), OUT/gap.csv and OUT/cost.csv (CPU seconds per trial and
the core-hours of K trials per cell; the benchmark's total once every task has an ended trial), and per
task a figure, OUT/figures/jzs_TASK.png and .svg: the Odyssey's Fig. 3 of its cells (box plots of the
test metric, every ended trial and the best 10 %; coloured where Welch's test against LSTM says
significantly better or worse), so the spread behind each best number is in view. A
benchmark with fewer trials per cell than its stated budget is marked REDUCED, one with trials not yet
ended UNFINISHED. The benchmark is read from its files: a live
one (the studies' trial directories) or a published one (``jzs export``: each study's ``study.json``
beside its ``trials.csv``), the same tables from either; a published one loads neither trainer nor Numba.
``published=True`` reads the published tables even beside trial directories that have moved on since.
"""
from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..variants import JZS_ARCHITECTURES
from .cost import group_stats
from . import page
from .stats import ENDED, best_trials, compare, scored, unscorable
from .table import TABLE_NAMES, load, published_table, task_info

JZS_TABLE1 = {
    "arithmetic": {"TANH": 0.295, "LSTM": 0.892, "LSTM-B": 0.902, "GRU": 0.896, "MUT1": 0.921, "MUT2": 0.897,
                   "MUT3": 0.907},
    "xml": {"TANH": 0.321, "LSTM": 0.425, "LSTM-B": 0.444, "GRU": 0.460, "MUT1": 0.475, "MUT2": 0.473,
            "MUT3": 0.465},
}
"""JZS Table 1, best next-step accuracy (SPEC §9); they print no LSTM-f/-i/-o row there."""
LABELS = {"TANH": "Tanh", "LSTM": "LSTM", "LSTM-F": "LSTM-f", "LSTM-I": "LSTM-i", "LSTM-O": "LSTM-o",
          "LSTM-B": "LSTM-b", "GRU": "GRU", "MUT1": "MUT1", "MUT2": "MUT2", "MUT3": "MUT3"}
"""Our architecture names → JZS's row labels."""
COLUMNS = {"arithmetic": "Arithmetic", "xml": "XML", "memorisation": "Memorisation", "nottingham": "Nottingham",
           "piano_midi": "Piano-midi"}
"""The table's columns in order (JZS's two, then memorisation and the music sets) and their headings."""
PROJECTED_TRIALS = (20, 50, 100)
"""Trials per cell for which the report projects the core-hours of a whole benchmark."""
BENCHMARK_NAME, BENCHMARK_FORMAT = "benchmark.json", "lstm_scratch.jzs_benchmark/1"
""":mod:`lstm_scratch.search.benchmark`'s file and format, not imported from there: importing the search
package loads the trainer and Numba, which reading a published benchmark must not (a test holds them equal)."""
REPORTED = ("tasks", "archs", "trials", "seed", "max_epochs", "patience", "dtype", "task_options")
"""The fields of ``benchmark.json`` the report reads."""


def load_benchmark(path, published: bool = False) -> tuple[dict, dict]:
    """(benchmark definition, {task: (study definition, trial table)}) of the benchmark at ``path``: its
    ``benchmark.json``, and per task the study in ``path/TASK`` (:func:`.table.load`: the trial
    directories if there are any, else the published ``trials.csv``). ``published``: each study's
    published table even where trial directories are there — while a benchmark runs they move on after
    ``jzs export``, and a report that matches the committed tables reads those. ``ValueError`` naming the
    file if ``path`` is not a benchmark, or (``published``) a study has no published table."""
    path = Path(path)
    file = path / BENCHMARK_NAME
    if not file.is_file():
        raise ValueError(f"{file}: no benchmark here (a directory made by 'lstm-odyssey jzs create {path} "
                         "--trials K', or one published by 'jzs export')")
    try:
        definition = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"{file}: cannot read the benchmark definition ({type(err).__name__}: {err})") from err
    if not isinstance(definition, dict) or definition.get("format") != BENCHMARK_FORMAT:
        raise ValueError(f"{file}: not a {BENCHMARK_FORMAT} benchmark definition")
    missing = [key for key in REPORTED if key not in definition]
    tasks = definition.get("tasks")
    if missing or not isinstance(tasks, list) or not tasks or not all(isinstance(t, str) and t for t in tasks):
        raise ValueError(f"{file}: damaged benchmark definition (missing {missing}, or 'tasks' is not a list of "
                         f"task names: {tasks!r})")
    return definition, {task: load(_published_table(path / task) if published else path / task) for task in tasks}


def _published_table(study_dir: Path) -> Path:
    """The table ``jzs export`` wrote into ``study_dir`` (:func:`.table.published_table`)."""
    table = published_table(study_dir)
    if table is None:
        raise ValueError(f"{study_dir}: no published table ({' or '.join(TABLE_NAMES)}); publish the benchmark "
                         f"with 'lstm-odyssey jzs export {study_dir.parent}' first, or report it without --published")
    return table


def _best_cell(group, lower_is_better: bool):
    """(test score, validation score, trial id) of the trial of ``group`` (scored trials of one cell)
    with the best validation score."""
    best = best_trials(group, 1 / len(group), lower_is_better).iloc[0]
    return float(best["test_score"]), float(best["valid_score"]), best["trial"]


def _tasks(studies: dict) -> list[str]:
    """The tasks of ``studies`` in :data:`COLUMNS` order, then any others."""
    return [t for t in COLUMNS if t in studies] + [t for t in studies if t not in COLUMNS]


def _archs(definition: dict) -> list[str]:
    """A study's cells: its architectures (JZS's ten if its definition does not say)."""
    return list(definition.get("archs") or JZS_ARCHITECTURES)


def _scored_task(task: str, df, lower: bool):
    """(the ended trials of one task scored by :func:`.stats.scored`, "") — or, when every trial that
    ended diverged or failed (:func:`.stats.unscorable`: no worst score to give them), (those trials,
    unscored, all ``broken``, the reason). One task's failure leaves the others' numbers standing; a
    table without the columns needed is still an error."""
    reason = unscorable(df)
    ended = df[df["outcome"].isin(ENDED)]
    if reason:
        return ended.assign(broken=True), f"{COLUMNS.get(task, task)}: no numbers — {reason}"
    return (scored(ended, lower) if len(ended) else ended.assign(broken=False)), ""


def cells(studies: dict) -> pd.DataFrame:
    """One row per (task, architecture), tasks in :data:`COLUMNS` order, cells in JZS's: ``cell`` (JZS's
    label), ``expected`` (trials defined), ``ended``, ``pending`` (not ended yet), ``broken`` (ended
    trials that diverged or failed), ``ours`` (test metric of the best trial by validation; NaN before
    one ended, and where every ended trial broke: the worst score of the task they stand in with is no
    measurement of the cell), ``valid`` (its validation metric), ``best_trial``, ``jzs`` (JZS Table 1,
    NaN where they print none), ``metric``, ``lower_is_better``, ``cpu_s_per_trial`` (mean over the
    ended trials, :func:`.cost.group_stats`), ``task_note`` (why a task has no numbers, else "")."""
    rows = []
    for task in _tasks(studies):
        definition, df = studies[task]
        info = task_info(task)
        lower = info["lower_is_better"]
        table, task_note = _scored_task(task, df, lower)
        for arch in _archs(definition):
            mine = table[table["arch"] == arch]
            broken = int(mine["broken"].sum())
            ours, valid, trial = _best_cell(mine, lower) if broken < len(mine) else (np.nan, np.nan, None)
            expected = int(definition.get("trials") or len(df[df["arch"] == arch]))
            rows.append({"task": task, "arch": arch, "cell": LABELS.get(arch, arch), "expected": expected,
                         "ended": len(mine), "pending": expected - len(mine), "broken": broken, "ours": ours,
                         "valid": valid, "best_trial": trial, "jzs": JZS_TABLE1.get(task, {}).get(arch, np.nan),
                         "metric": info["label"], "lower_is_better": lower,
                         "cpu_s_per_trial": group_stats(mine)["cpu_s_per_trial"], "task_note": task_note})
    return pd.DataFrame(rows)


def _all_broke(ended: int, broken: int) -> bool:
    """Whether every trial of a cell that ended (``ended`` of them) diverged or failed."""
    return ended > 0 and broken == ended


def notes(table: pd.DataFrame) -> list[str]:
    """The notes under Table 1: per task, why it has no numbers (:func:`cells`' ``task_note``), or which
    of its cells show no number because every trial that ended diverged or failed."""
    out = []
    for task, of_task in table.groupby("task", sort=False):
        if of_task["task_note"].iloc[0]:
            out.append(of_task["task_note"].iloc[0])
            continue
        broke = [f"{r.cell} ({r.ended})" for r in of_task.itertuples() if _all_broke(r.ended, r.broken)]
        if broke:
            out.append(f"{COLUMNS.get(task, task)}: every trial that ended diverged or failed in "
                       f"{', '.join(broke)} — shown as 'broke', no number (the worst score of the task they "
                       "count with in the comparison is not a measurement of the cell).")
    return out


def gap_closed(lstm: float, lstm_b: float, gru: float, lower_is_better: bool) -> float:
    """(LSTM-b − LSTM) / (GRU − LSTM) (module docstring), NaN unless the GRU is better than LSTM."""
    values = np.array([lstm, lstm_b, gru], dtype=float)
    if not np.isfinite(values).all():
        return np.nan
    gru_better = gru < lstm if lower_is_better else gru > lstm
    return float((lstm_b - lstm) / (gru - lstm)) if gru_better else np.nan


def _against(df, baseline: str, top: float, alpha: float, lower: bool):
    """:func:`.stats.compare` of the whole task table against ``baseline``, one row per architecture
    (index ``arch``); None when ``baseline`` has no ended trial. The whole table, not the pair compared:
    a broken trial scores the worst of its task over every architecture, as in Table 1."""
    if not (df["outcome"].isin(ENDED) & (df["arch"] == baseline)).any():
        return None
    return compare(df, baseline=baseline, top=top, alpha=alpha, lower_is_better=lower).set_index("arch")


def _welch(rows, arch: str, baseline: str, top: float, missing: str = "no trials") -> dict:
    """Welch's test of ``arch``'s best ``top`` against ``baseline``'s (test scores) from ``rows``
    (:func:`_against` for ``baseline``): {n, diff, p, verdict}; ``missing`` is the verdict without them."""
    if rows is None or arch not in rows.index:
        return {"n": 0, "diff": np.nan, "p": np.nan, "verdict": missing}
    n = int(min(rows.loc[arch, "n_best"], rows.loc[baseline, "n_best"]))
    diff = float(rows.loc[arch, "best10_mean"] - rows.loc[baseline, "best10_mean"])
    if not np.isfinite(rows.loc[arch, "p"]):
        return {"n": n, "diff": diff, "p": np.nan,
                "verdict": f"too few trials (best {top:.0%}: {n} a side, Welch needs 2)"}
    verdict = rows.loc[arch, "direction"]
    return {"n": n, "diff": diff, "p": float(rows.loc[arch, "p"]),
            "verdict": "no significant difference" if verdict == "—" else f"significantly {verdict}"}


def headline(table: pd.DataFrame, studies: dict, top: float = 0.10, alpha: float = 0.05) -> pd.DataFrame:
    """Per task: LSTM, LSTM-b and GRU's best numbers, ``gru_better``, ``gap_closed`` (ours) and
    ``jzs_gap_closed`` (from JZS Table 1), Welch's p of LSTM-b against LSTM and against GRU on the best
    ``top`` with their verdicts (each from one :func:`.stats.compare` of the whole task), and a one-line
    ``answer``. ``table``: :func:`cells` of ``studies``."""
    rows = []
    for task, of_task in table.groupby("task", sort=False):
        cell = of_task.set_index("arch")
        best = cell["ours"]
        lower = bool(of_task["lower_is_better"].iloc[0])
        lstm, lstm_b, gru = (float(best.get(a, np.nan)) for a in ("LSTM", "LSTM-B", "GRU"))
        theirs = JZS_TABLE1.get(task, {})
        closed = gap_closed(lstm, lstm_b, gru, lower)
        df = studies[task][1]
        task_note = of_task["task_note"].iloc[0]
        if task_note:                                     # not scored: no comparison either
            against_lstm = against_gru = _welch(None, "LSTM-B", "", top, "no scores (see the task's note)")
        else:
            against_lstm = _welch(_against(df, "LSTM", top, alpha, lower), "LSTM-B", "LSTM", top)
            against_gru = _welch(_against(df, "GRU", top, alpha, lower), "LSTM-B", "GRU", top)
        broke = [LABELS[a] for a in ("LSTM", "LSTM-B", "GRU")
                 if a in cell.index and _all_broke(cell.loc[a, "ended"], cell.loc[a, "broken"])]
        if task_note:
            answer = "no answer: the task has no scores (see its note)"
        elif broke:
            answer = f"no answer: every trial of {', '.join(broke)} that ended diverged or failed"
        elif not np.isfinite([lstm, lstm_b, gru]).all():
            answer = "not yet: LSTM, LSTM-b or GRU has no ended trial"
        elif not np.isfinite(closed):
            answer = "no gap here: the GRU is not better than LSTM"
        elif closed >= 1:
            answer = f"yes, and more: LSTM-b reaches or passes the GRU ({closed:.0%} of the gap)"
        elif closed >= 0.5:
            answer = f"mostly: LSTM-b closes {closed:.0%} of the gap"
        elif closed > 0:
            answer = f"partly: LSTM-b closes {closed:.0%} of the gap"
        else:
            answer = f"no: LSTM-b is no better than LSTM ({closed:.0%} of the gap)"
        rows.append({"task": task, "metric": of_task["metric"].iloc[0], "LSTM": lstm, "LSTM-b": lstm_b, "GRU": gru,
                     "gru_better": bool(np.isfinite(closed)), "gap_closed": closed,
                     "jzs_gap_closed": gap_closed(theirs.get("LSTM", np.nan), theirs.get("LSTM-B", np.nan),
                                                  theirs.get("GRU", np.nan), lower),
                     "n_best": min(against_lstm["n"], against_gru["n"]),
                     "p_b_vs_lstm": against_lstm["p"], "b_vs_lstm": against_lstm["verdict"],
                     "p_b_vs_gru": against_gru["p"], "b_vs_gru": against_gru["verdict"], "answer": answer})
    return pd.DataFrame(rows)


def answer(gaps: pd.DataFrame, top: float = 0.10) -> str:
    """The headline answer over the tasks: how many have a gap, how much of it LSTM-b closes, what
    Welch's tests on the best ``top`` (:func:`headline`'s) say of LSTM-b against LSTM and the GRU there,
    and of LSTM-b against LSTM on the tasks without a gap — the forget bias could help there too."""
    best = f"best {top * 100:g} %"

    def welch(rows, column: str) -> str:
        tested = rows[np.isfinite(rows["p_" + column])]
        return "; ".join(f"{t}: {v}" for t, v in zip(tested["task"], tested[column]))

    with_gap, no_gap = gaps[gaps["gru_better"]], gaps[~gaps["gru_better"] & np.isfinite(gaps["p_b_vs_lstm"])]
    elsewhere = (f" Where the GRU is not better than LSTM ({', '.join(no_gap['task'])}), LSTM-b against LSTM on the "
                 f"{best} — {welch(no_gap, 'b_vs_lstm')}." if len(no_gap) else "")
    if with_gap.empty:
        return ("No task shows an LSTM–GRU gap in our best trials (or none has ended yet), so there is "
                f"nothing for LSTM-b to close.{elsewhere}")
    closed = with_gap["gap_closed"]
    parts = ", ".join(f"{t} {c:.0%}" for t, c in zip(with_gap["task"], closed))
    median = float(closed.median())
    verdict = ("yes — LSTM-b closes most of the gap (median ≥ 50 %), as JZS found" if median >= 0.5 else
               "partly — LSTM-b closes less than half of the gap (median)" if median > 0 else
               "no — LSTM-b does not close the gap")
    against_lstm, against_gru = welch(with_gap, "b_vs_lstm"), welch(with_gap, "b_vs_gru")
    tests = (f" Welch on the {best}: LSTM-b against LSTM — {against_lstm or 'too few trials'}; "
             f"against GRU — {against_gru or 'too few trials'}." if against_lstm or against_gru
             else f" Too few trials for Welch's test on the {best}.")
    return (f"Does LSTM-b close the LSTM–GRU gap? {verdict}. The GRU beats LSTM on {len(with_gap)} of "
            f"{len(gaps)} task(s); LSTM-b closes {parts} of it.{tests}{elsewhere}")


def table1(table: pd.DataFrame) -> pd.DataFrame:
    """JZS Table 1's layout for the page: a row per cell, per task our number with the trials that ended
    in brackets ("—" before one ended, "broke" where every one that ended diverged or failed), and JZS's
    beside it for the tasks where they report one."""
    tasks = list(dict.fromkeys(table["task"]))
    out = pd.DataFrame({"Cell": [LABELS.get(a, a) for a in dict.fromkeys(table["arch"])]})
    for task in tasks:
        of_task = table[table["task"] == task].set_index("cell")
        digits = 3 if not of_task["lower_is_better"].iloc[0] else 2
        heading = f"{COLUMNS.get(task, task)} ({'acc' if digits == 3 else 'NLL'})"
        out[heading] = [_shown(of_task.loc[c], digits) for c in out["Cell"]]
        if task in JZS_TABLE1:
            out[f"{COLUMNS[task]} JZS"] = [f"{of_task.loc[c, 'jzs']:.3f}" if np.isfinite(of_task.loc[c, "jzs"])
                                           else "—" for c in out["Cell"]]
    return out


def _shown(row, digits: int) -> str:
    """One cell of :func:`table1`: our number (or "broke", or "—") and the trials that ended."""
    value = ("broke" if _all_broke(row["ended"], row["broken"]) else "—" if not np.isfinite(row["ours"])
             else f"{row['ours']:.{digits}f}")
    return f"{value} [{row['ended']}]"


def cost(studies: dict, archs: int) -> pd.DataFrame:
    """CPU seconds per trial per task (the mean over its cells' ended trials, :func:`.cost.group_stats`)
    and the core-hours of K = :data:`PROJECTED_TRIALS` trials per cell, cpu_s_per_trial · ``archs`` · K
    / 3600, per task and for the whole benchmark (``archs`` cells). The benchmark's row needs every task:
    while one has no ended trial with CPU seconds, its CPU and core-hours are NaN (:func:`cost_notes`
    names the tasks and gives the others' sum). ``studies`` as for :func:`cells`."""
    rows = []
    for task in _tasks(studies):
        definition, df = studies[task]
        stats = group_stats(df[df["outcome"].isin(ENDED) & df["arch"].isin(_archs(definition))])
        rows.append({"task": task, "trials_ended": stats["ended"], "cpu_s_per_trial": stats["cpu_s_per_trial"]})
    per_task = pd.DataFrame(rows)
    for k in PROJECTED_TRIALS:
        per_task[f"core_h_K{k}"] = per_task["cpu_s_per_trial"] * archs * k / 3600
    whole = bool(np.isfinite(per_task["cpu_s_per_trial"]).all())
    total = {"task": "benchmark", "trials_ended": int(per_task["trials_ended"].sum()),
             "cpu_s_per_trial": float(np.mean(per_task["cpu_s_per_trial"].to_numpy(float))) if whole else np.nan,
             **{f"core_h_K{k}": float(per_task[f"core_h_K{k}"].sum()) if whole else np.nan
                for k in PROJECTED_TRIALS}}
    return pd.concat([per_task, pd.DataFrame([total])], ignore_index=True)


def cost_notes(costs: pd.DataFrame) -> list[str]:
    """The note under the cost table (:func:`cost`) when the benchmark's totals are NaN: the tasks without
    an ended trial with CPU seconds, and the sum over the others, said to be partial."""
    per_task = costs.iloc[:-1]                                  # the last row is the benchmark's
    known = np.isfinite(per_task["cpu_s_per_trial"].to_numpy(float))
    without = ", ".join(per_task.loc[~known, "task"])
    if known.all():
        return []
    if not known.any():
        return [f"Cost: no task has an ended trial with CPU seconds yet ({without}); nothing to project."]
    sums = ", ".join(f"{per_task.loc[known, f'core_h_K{k}'].sum():.3g}" for k in PROJECTED_TRIALS)
    ks = ", ".join(map(str, PROJECTED_TRIALS))
    return [f"Cost: no ended trial with CPU seconds yet in {without}, so the benchmark's totals are not given; "
            f"the other {int(known.sum())} task(s) alone (a partial sum): {sums} core-hours for K = {ks}."]


def status(definition: dict, table: pd.DataFrame) -> list[str]:
    """The warnings on the page: REDUCED (fewer trials per cell than the stated budget), UNFINISHED
    (trials not yet ended)."""
    out = []
    full = definition.get("full_trials")
    if full and definition["trials"] < full:
        out.append(f"REDUCED: {definition['trials']} trials per cell, fewer than the benchmark's stated budget of "
                   f"{full}; the numbers are this run's, not a reproduction of JZS's.")
    pending = int(table["pending"].sum())
    if pending:
        out.append(f"UNFINISHED: {pending} of {int(table['expected'].sum())} trials have not ended yet; the "
                   "numbers may change.")
    return out


def setup_text(definition: dict) -> str:
    """What the benchmark ran: trials, limits, task options, budget."""
    options = "; ".join(f"{t}: {', '.join(f'{k}={v}' for k, v in o.items())}"
                        for t, o in definition["task_options"].items() if o) or "the generators' defaults"
    return (f"{definition['trials']} trials per cell (stated budget {definition.get('full_trials')}), seed "
            f"{definition['seed']}, protocol jzs (JZS's minibatch regime and space), at most "
            f"{definition['max_epochs']} epochs, patience {definition['patience']}, {definition['dtype']}"
            f"{', space ' + str(definition['space']) if definition.get('space') else ''}; task options: {options}. "
            "A cell's number is the test metric of its trial with the best validation metric [trials ended]; "
            "diverged and failed trials count with the worst score of their task." + _deviations(definition))


def _deviations(definition: dict) -> str:
    """Where the benchmark's tasks are not JZS's (a sentence, or ""): arithmetic with shorter operands."""
    from ..datasets.jzs import JzsSettings
    jzs_digits = JzsSettings().max_digits
    digits = ((definition.get("task_options") or {}).get("arithmetic") or {}).get("max_digits", jzs_digits)
    if "arithmetic" not in definition.get("tasks", ()) or digits == jzs_digits:
        return ""
    return (f" Arithmetic is not JZS's task: operands of up to {digits} digits (theirs: up to {jzs_digits}), "
            "so its accuracies are not comparable with their Table 1's.")


def figures_of(studies: dict, table: pd.DataFrame, top: float = 0.10, alpha: float = 0.05) -> list:
    """Per task with scores, (task, caption, Figure): :func:`.figures.figure3` of its cells against LSTM
    (no colours where LSTM has no ended trial). Built, not saved: the report writes nothing before all of
    it is computed. ``table``: :func:`cells` of ``studies``."""
    from . import figures
    out = []
    for task, of_task in table.groupby("task", sort=False):
        definition, df = studies[task]
        ended = df[df["outcome"].isin(ENDED) & df["arch"].isin(_archs(definition))]
        if of_task["task_note"].iloc[0] or ended.empty:             # no scores, or nothing ended yet
            continue
        lower, info = bool(of_task["lower_is_better"].iloc[0]), task_info(task)
        baseline = "LSTM" if (ended["arch"] == "LSTM").any() else None
        comparison = compare(ended, baseline=baseline, top=top, alpha=alpha, lower_is_better=lower)
        heading = COLUMNS.get(task, task)
        fig = figures.figure3(scored(ended, lower), comparison, info["label"], f"JZS's benchmark: {heading}",
                              baseline=baseline, top=top, alpha=alpha, lower_is_better=lower, names=LABELS)
        better = "higher" if not lower else "lower"
        caption = (f"{heading}: test {info['label']} ({better} is better) by cell. Left: every ended trial; right: "
                   f"the best {top:.0%} by validation, scored on test. Box = quartiles, whiskers = range, ◇ = mean, "
                   "▲ = mean parameter count of the best trials (right axis); coloured: Welch's test against "
                   f"LSTM at p < {alpha}, uncorrected. Diverged and failed trials count with the task's worst score.")
        out.append((task, caption, fig))
    return out


GAP_SHOWN = {"task": ("task", page.text), "metric": ("metric", page.text), "LSTM": ("LSTM", page.fixed(3)),
             "LSTM-b": ("LSTM-b", page.fixed(3)), "GRU": ("GRU", page.fixed(3)),
             "gap_closed": ("gap closed", page.percent), "jzs_gap_closed": ("JZS's gap closed", page.percent),
             "n_best": ("best trials a side", page.count), "p_b_vs_lstm": ("p, LSTM-b vs LSTM", page.p_value),
             "b_vs_lstm": ("LSTM-b vs LSTM", page.text), "p_b_vs_gru": ("p, LSTM-b vs GRU", page.p_value),
             "b_vs_gru": ("LSTM-b vs GRU", page.text), "answer": ("answer", page.text)}
"""gap.csv's columns as the page shows them (the CSV keeps every column and digit)."""
COST_SHOWN = {"task": ("task", page.text), "trials_ended": ("trials ended", page.count),
              "cpu_s_per_trial": ("CPU s per trial", page.significant(3)),
              **{f"core_h_K{k}": (f"core-hours, {k} per cell", page.significant(3)) for k in PROJECTED_TRIALS}}
"""cost.csv's columns as the page shows them."""


def write_jzs_report(path, out_dir, top: float = 0.10, alpha: float = 0.05, published: bool = False) -> Path:
    """Write the report of the benchmark at ``path`` into ``out_dir`` (module docstring); returns the path
    of index.html. ``published``: from the published tables alone (:func:`load_benchmark`). Everything is
    read and computed before anything is written."""
    definition, studies = load_benchmark(path, published)
    if not 0 < top <= 1:
        raise ValueError(f"top={top}: the fraction of best trials must be in (0, 1]")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir}: exists and is not a directory; choose another --out")
    table = cells(studies)
    gaps = headline(table, studies, top, alpha)
    costs = cost(studies, len(definition["archs"]))
    layout, warnings, said = table1(table), status(definition, table), answer(gaps, top)
    table_notes, cost_said = notes(table), cost_notes(costs)
    setup, versions = setup_text(definition), page.versions()
    built = figures_of(studies, table, top, alpha)
    gaps_shown, costs_shown = page.displayed(gaps, GAP_SHOWN), page.displayed(costs, COST_SHOWN)
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    page.write_csv(out_dir / "table1.csv", table)
    page.write_csv(out_dir / "gap.csv", gaps)
    page.write_csv(out_dir / "cost.csv", costs)
    from .figures import save
    shown = [(caption, save(fig, out_dir / "figures" / f"jzs_{task}")[0]) for task, caption, fig in built]
    title = "JZS's benchmark: Table 1 and the LSTM-b question"
    md = [f"# {title}", "", *[f"**{w}**\n" for w in warnings], setup, "", "## Table 1", "", page.md_table(layout), "",
          *[f"- {n}" for n in table_notes], *([""] if table_notes else []),
          "## Does LSTM-b close the LSTM–GRU gap?", "", said, "", page.md_table(gaps_shown), "",
          *(["## The cells' trials, task by task", ""] if shown else []),
          *[line for caption, png in shown for line in (*page.md_figure(caption, png, out_dir), "")],
          "## Cost (CPU seconds per trial; core-hours of K trials per cell)", "", page.md_table(costs_shown), "",
          *[f"{n}\n" for n in cost_said],
          "## Versions", "", *[f"- {k}: {v}" for k, v in versions.items()], ""]
    page.write_text(out_dir / "report.md", "\n".join(md))
    esc = html.escape
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(title)}</title>",
             f"<style>{page.CSS}</style></head><body><h1>{esc(title)}</h1>",
             *[f"<p class='warn'>{esc(w)}</p>" for w in warnings], f"<p>{esc(setup)}</p>",
             "<h2>Table 1</h2>", layout.to_html(index=False, border=0, escape=True),
             *[f"<p>{esc(n)}</p>" for n in table_notes],
             "<h2>Does LSTM-b close the LSTM–GRU gap?</h2>", f"<p>{esc(said)}</p>", page.html_table(gaps_shown),
             *(["<h2>The cells' trials, task by task</h2>"] if shown else []),
             *[page.html_figure(caption, png) for caption, png in shown],
             "<h2>Cost (CPU seconds per trial; core-hours of K trials per cell)</h2>", page.html_table(costs_shown),
             *[f"<p>{esc(n)}</p>" for n in cost_said],
             "<h2>Versions</h2><ul>", *[f"<li>{esc(k)}: {esc(str(v))}</li>" for k, v in versions.items()],
             "</ul></body></html>"]
    index = out_dir / "index.html"
    page.write_text(index, "\n".join(parts))
    return index
