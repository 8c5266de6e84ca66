"""What a study has so far, from its trial states: the status table (``lstm-odyssey search status``)
and the one-row-per-trial DataFrame (``export``, the analysis' input). Read-only."""
from __future__ import annotations

from .study import STATES

COLUMNS = ("trial", "index", "arch", "k", "task", "protocol", "hidden", "layers", "budget", "lr", "momentum",
           "noise", "nesterov", "clip", "init_scale", "clip_norm", "seed", "outcome", "epochs", "best_epoch",
           "valid_metric", "test_metric", "metric", "synthetic", "n_params", "wall_seconds", "cpu_seconds",
           "sessions", "host", "error")
"""The DataFrame's columns. ``protocol``: online (the paper's) or jzs; ``layers``, ``init_scale``,
``clip_norm``: the trial's (JZS's search dimensions; clip_norm None under online); ``budget``: a jzs
trial's parameter budget as drawn (N is the largest that fits it), None under online. ``outcome``: the
record's (finished, early_stopped, diverged, failed), or the trial's state (running, pending) when it
has none; ``valid_metric`` is the best validation metric (lower is better, but for accuracy: see the
task's objective, :attr:`Study.objective`); ``metric`` its name; ``synthetic`` whether the data were
a stand-in; ``error``: the traceback of a failed trial."""


def _row(study, s) -> dict:
    trial, record = s.trial, s.record
    config = trial.config
    jzs = config.protocol == "jzs"
    row = {"trial": trial.id, "index": trial.index, "arch": trial.arch, "k": trial.k, "task": study.task,
           "protocol": config.protocol, "hidden": config.hidden, "layers": config.layers,
           "budget": study.sample(trial.arch, trial.k, raw=True)["params"] if jzs else None,
           "lr": config.lr, "momentum": config.momentum, "noise": config.noise, "nesterov": config.nesterov,
           "clip": config.clip, "init_scale": config.init_scale, "clip_norm": config.clip_norm,
           "seed": config.seed}
    if record is None:
        failure = s.failure or {}
        row.update(outcome=s.state, epochs=None, best_epoch=None, valid_metric=None, test_metric=None,
                   metric=None, synthetic=None, n_params=None, wall_seconds=None, cpu_seconds=None,
                   sessions=None, host=failure.get("host"), error=failure.get("error"))
        return row
    task, network, environment = record["task"], record["network"], record["environment"]
    row.update(outcome=record["outcome"], epochs=record["epochs"], best_epoch=record["best_epoch"],
               valid_metric=record["best_valid_metric"], test_metric=record["test_metric"],
               metric=task.get("metric"), synthetic=task.get("synthetic"), n_params=network.get("n_params"),
               wall_seconds=record["wall_seconds"], cpu_seconds=record["cpu_seconds"],
               sessions=record["sessions"], host=environment.get("host"), error=record["error"])
    return row


def dataframe(study, states):
    """One row per trial, in index order, with :data:`COLUMNS`."""
    import pandas as pd
    return pd.DataFrame([_row(study, s) for s in states], columns=list(COLUMNS))


def best_of(values, objective):
    """The best of ``values`` (numbers, None skipped) in ``objective``'s sense, or None if there are none."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    return min(values) if objective.lower_is_better else max(values)


def _best(states, objective):
    done = [s for s in states if s.state == "done" and s.record["best_valid_metric"] is not None]
    if not done:
        return None
    best = (min if objective.lower_is_better else max)(done, key=lambda s: s.record["best_valid_metric"])
    return {"trial": best.trial.id, "valid_metric": best.record["best_valid_metric"],
            "test_metric": best.record["test_metric"]}


def status(study, states) -> dict:
    """{"archs": {arch: {state counts, best, cpu_hours}}, "total": {…, eta_hours}, "metric": name}.

    ETA = (pending + running trials) × mean wall time of the trials run so far ÷ max(1, running):
    the time to finish at the current parallelism, known once one trial has a record. "best": the best
    validation metric in the sense of the task's objective (highest accuracy, lowest error or NLL)."""
    objective = study.objective

    def summarise(group):
        counts = {state: sum(s.state == state for s in group) for state in STATES}
        cpu = sum(s.record["cpu_seconds"] for s in group if s.record is not None)
        return {**counts, "trials": len(group), "best": _best(group, objective), "cpu_hours": cpu / 3600}
    out = {"archs": {arch: summarise([s for s in states if s.trial.arch == arch]) for arch in study.archs},
           "total": summarise(states), "metric": None}
    walls = [s.record["wall_seconds"] for s in states if s.record is not None]
    metrics = [s.record["task"].get("metric") for s in states if s.record is not None]
    out["metric"] = metrics[0] if metrics else None
    total = out["total"]
    remaining = total["pending"] + total["running"]
    total["eta_hours"] = (remaining * (sum(walls) / len(walls)) / max(1, total["running"]) / 3600
                          if walls else (0.0 if remaining == 0 else None))
    return out


def _hours(h) -> str:
    if h is None:
        return "?"
    return f"{h * 60:.1f} min" if h < 1 else f"{h:.1f} h"


def status_text(study, info: dict) -> str:
    """The table of ``lstm-odyssey search status``."""
    metric = info["metric"] or "metric"
    head = f"{'arch':6} {'done':>5} {'running':>7} {'failed':>6} {'diverged':>8} {'pending':>7}  " \
           f"{'best valid ' + metric:>24} {'(test)':>9} {'CPU h':>7}"
    lines = [f"{study.path}: {study.task}, {len(study.archs)} architecture(s) × {study.n_trials} trials, "
             f"seed {study.seed}", head]
    for name, row in [*info["archs"].items(), ("total", info["total"])]:
        best = row["best"]
        best_text = (f"{best['valid_metric']:24.4f} {best['test_metric']:9.4f}"
                     if best and best["test_metric"] is not None else f"{'-':>24} {'':>9}")
        lines.append(f"{name:6} {row['done']:5d} {row['running']:7d} {row['failed']:6d} {row['diverged']:8d} "
                     f"{row['pending']:7d}  {best_text} {row['cpu_hours']:7.2f}")
    total = info["total"]
    if total["best"]:
        lines.append(f"best so far: trial {total['best']['trial']}")
    finished = total["done"] + total["failed"] + total["diverged"]
    lines.append(f"{finished}/{total['trials']} trials ended; ETA {_hours(total['eta_hours'])} "
                 f"at {max(1, total['running'])} running")
    return "\n".join(lines)
