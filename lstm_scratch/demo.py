"""``lstm-odyssey demo``: a small reproduction of the paper's JSB study, start to finish, on one machine.

It runs the real machinery at a size that fits in minutes: a random-search study
(:class:`lstm_scratch.search.Study`, the local executor on all cores) of all nine Odyssey architectures
on JSB Chorales, then the analysis (:func:`lstm_scratch.analysis.report.write_report`: Welch tests,
fANOVA, Figures 3–6, the scorecard against the paper) into ``OUT/report/``. How it differs from the
paper's JSB study, and why (every difference is recorded in ``OUT/study.json`` and shown by the report):

    paper:  200 trials per architecture, ≤ 150 epochs, patience 15, N log-uniform on [20, 200]
    demo:    40 trials per architecture, ≤  20 epochs, patience  5, N log-uniform on [20, 100]

Measured on the project's 2-core machine (float64, one thread per trial, CPU seconds from the trials'
records, a quadratic in N fitted to 180 trials of 2 epochs): a JSB epoch costs 0.07 / 0.13 / 0.28 / 0.77
CPU-s for vanilla at N = 20 / 50 / 100 / 200 and 0.08 / 0.21 / 0.65 / 2.5 for FGR, so in the paper's
space the 30 % of trials above N = 100 would cost 61 % of the study. With N ≤ 100, the demo's 40 trials
× 9 architectures × ≤ 20 epochs took 808–828 CPU-s in two runs (2.25–2.30 per trial, the longest 12 s;
49 stopped early), under 7 minutes on two cores; installing, fetching JSB and the first compile of the
nine kernels add about a minute and a half, the report ~10 s. 40 trials give 4 "best 10 %" trials per
architecture for Welch's test (20 would give 2, its minimum).

The study is an ordinary study directory, so the demo is resumable: run it again and it continues where
it stopped (a finished trial is never trained again); once every trial has ended it only writes the
report again. A directory holding another study is refused (choose another ``--out``).
"""
from __future__ import annotations

import time
from pathlib import Path

DEMO_DIR = "studies/demo"
DEMO_TASK = "jsb"
DEMO_TRIALS = 40            # per architecture (paper: 200)
DEMO_MAX_EPOCHS = 20        # paper: 150
DEMO_PATIENCE = 5           # paper: 15; a tenth of the cap (2, as 15 of 150) would end slow learners
                            # on one noisy epoch
DEMO_SPACE = "hidden=20:100"    # narrowed from the paper's [20, 200]: the large networks cost the most
DEMO_SEED = 0


def demo_study(out=DEMO_DIR, *, trials: int = DEMO_TRIALS, max_epochs: int = DEMO_MAX_EPOCHS,
               patience: int = DEMO_PATIENCE, archs="all", space: str | None = DEMO_SPACE):
    """The demo's study in ``out``: created there, or opened when ``out`` holds the same study
    (:meth:`Study.create` refuses a directory holding another one, before writing anything)."""
    from .search import Study
    return Study.create(out, task=DEMO_TASK, archs=archs, trials=trials, seed=DEMO_SEED, space=space,
                        max_epochs=max_epochs, patience=patience)


def run_demo(out=DEMO_DIR, *, trials: int = DEMO_TRIALS, max_epochs: int = DEMO_MAX_EPOCHS,
             patience: int = DEMO_PATIENCE, archs="all", space: str | None = DEMO_SPACE,
             workers: int | None = None, report_dir=None, progress: bool | None = None) -> dict:
    """Create or open the demo study, run every trial that has not ended (``workers`` local processes,
    default all cores), and write its report into ``report_dir`` (default ``out/report``). Returns
    {study, status, report (index.html), headline (:func:`headline`), trained (trials run by this call),
    seconds}."""
    from .analysis.report import write_report
    from .analysis.table import load
    start = time.perf_counter()
    study = demo_study(out, trials=trials, max_epochs=max_epochs, patience=patience, archs=archs, space=space)
    ended_before = _ended(study)
    # With nothing left to run, skip preparing workers (data, kernels): a rerun only writes the report.
    status = study.run(workers=workers, progress=progress, prepare=ended_before < study.size)
    trained = _ended(study) - ended_before
    definition, df = load(study.path)
    index = write_report([(definition, df)], Path(report_dir) if report_dir else study.path / "report")
    return {"study": study, "status": status, "report": index, "headline": headline(df), "trained": trained,
            "seconds": time.perf_counter() - start}


def _ended(study) -> int:
    return sum(s.state in ("done", "diverged", "failed") for s in study.states())


def headline(df, top: float = 0.10, alpha: float = 0.05):
    """The demo's headline table, one row per architecture: trials that ended, how many diverged or
    failed, the best ``top`` (chosen by validation, scored on test: :func:`.analysis.stats.compare`)
    as mean ± std, Welch's p against V, and the verdict (with Bonferroni's beside it)."""
    import numpy as np
    import pandas as pd

    from .analysis.stats import compare
    rows = []
    baseline = "V" if "V" in set(df["arch"]) else None
    for r in compare(df, baseline=baseline, top=top, alpha=alpha).itertuples(index=False):
        if r.arch == baseline:
            verdict = "baseline"
        elif baseline is None:
            verdict = "no baseline (V is not in this study)"
        elif not np.isfinite(r.p):
            verdict = "not testable (fewer than 2 best trials)"
        elif r.significant:
            verdict = f"{r.direction} (Bonferroni: {'yes' if r.significant_bonferroni else 'no'})"
        else:
            verdict = "no significant difference"
        std = "" if not np.isfinite(r.best10_std) else f" ± {r.best10_std:.2f}"
        rows.append({"arch": r.arch, "trials": r.trials, "diverged/failed": r.diverged + r.failed,
                     f"best {top:.0%}: test NLL": f"{r.best10_mean:.2f}{std} (n = {r.n_best})",
                     "p vs V": "—" if not np.isfinite(r.p) else f"{r.p:.2g}", "verdict": verdict})
    return pd.DataFrame(rows)

