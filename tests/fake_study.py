"""A small fake study table for the analysis tests, in the columns of ``Study.to_dataframe()``, with
known planted effects: the learning rate dominates (a parabola in log10 η), the hidden size matters a
little, momentum and noise not at all; NFG and NOAF are worse than vanilla by a wide margin, the other
architectures equal to it. Some trials diverge (high η) or fail."""
from __future__ import annotations

import numpy as np
import pandas as pd

COLUMNS = ["trial", "arch", "k", "task", "hidden", "lr", "momentum", "noise", "nesterov", "clip", "seed",
           "outcome", "epochs", "best_epoch", "valid_metric", "test_metric", "n_params", "wall_seconds",
           "cpu_seconds"]
PENALTY = {"NFG": 3.0, "NOAF": 2.0}     # planted: these two are worse than V by this much (test NLL)


def metric(lr, hidden):
    """The planted response: best at η = 1e-3, a little better with more blocks."""
    return 8.0 + 1.5 * (np.log10(lr) + 3.0) ** 2 - 0.5 * (np.log10(hidden) - np.log10(20))


def make_table(archs=("V", "NFG", "NOAF", "CIFG", "NP"), trials=40, task="jsb", seed=0,
               diverged=3, failed=1, missing=0) -> pd.DataFrame:
    """``trials`` trials per architecture (common random numbers: trial k has the same hyperparameters in
    every architecture); per architecture the ``diverged`` trials with the highest η diverge and
    ``failed`` others fail; the last ``missing`` trials are not in the table (an unfinished study)."""
    rng = np.random.default_rng(seed)
    lr = 10 ** rng.uniform(-6, -2, trials)
    hidden = np.round(10 ** rng.uniform(np.log10(20), np.log10(200), trials))
    momentum = 1 - 10 ** rng.uniform(-2, 0, trials)
    noise = rng.uniform(0, 1, trials)
    rows = []
    for arch in archs:
        test = metric(lr, hidden) + PENALTY.get(arch, 0.0) + rng.normal(0, 0.05, trials)
        valid = test + rng.normal(0, 0.05, trials)
        outcome = np.where(rng.random(trials) < 0.5, "finished", "early_stopped").astype(object)
        outcome[np.argsort(-lr)[:diverged]] = "diverged"
        others = [k for k in range(trials) if outcome[k] != "diverged"]
        outcome[others[:failed]] = "failed"
        for k in range(trials - missing):
            broken = outcome[k] in ("diverged", "failed")
            rows.append({"trial": f"{arch}-{k:04d}", "arch": arch, "k": k, "task": task,
                         "hidden": int(hidden[k]), "lr": lr[k], "momentum": momentum[k], "noise": noise[k],
                         "nesterov": True, "clip": None, "seed": 1000 + k, "outcome": outcome[k],
                         "epochs": 3 if broken else 40, "best_epoch": None if broken else 30,
                         "valid_metric": valid[k] if outcome[k] != "failed" else np.nan,
                         "test_metric": np.nan if broken else test[k],
                         "n_params": int(4 * hidden[k] * (hidden[k] + 88) + 88 * hidden[k]),
                         "wall_seconds": 2.0 + hidden[k] / 10, "cpu_seconds": 1.9 + hidden[k] / 10})
    return pd.DataFrame(rows, columns=COLUMNS)


def make_definition(archs=("V", "NFG", "NOAF", "CIFG", "NP"), trials=40, task="jsb", seed=0) -> dict:
    """A study definition shaped like ``study.json``."""
    space = {"hidden": {"dist": "log_uniform", "low": 20.0, "high": 200.0, "round": True},
             "lr": {"dist": "log_uniform", "low": 1e-6, "high": 1e-2, "round": False},
             "momentum": {"dist": "one_minus_log_uniform", "low": 0.0, "high": 0.99, "round": False},
             "noise": {"dist": "uniform", "low": 0.0, "high": 1.0, "round": False},
             "nesterov": {"dist": "fixed", "value": True}, "clip": {"dist": "fixed", "value": None},
             "seed": {"dist": "uniform", "low": 0, "high": 2 ** 31 - 1, "round": True}}
    return {"format": "lstm_scratch.study/1", "task": task, "archs": list(archs), "trials": trials,
            "seed": seed, "space": space, "protocol": {"max_epochs": 150, "patience": 15},
            "code_version": "git:fake", "created": "2026-11-26T06:00:00+00:00"}
