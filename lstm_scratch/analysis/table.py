"""A study as the analysis sees it: (definition, table). The definition is the study's ``study.json``
(task, architectures, trials per architecture, seed, space, protocol, code version, created); the table
has one row per trial (the columns of ``Study.to_dataframe()``, ``search.summary.COLUMNS``; the analysis
needs those of :data:`.stats.COLUMNS`).

:func:`load` reads a study directory (through ``lstm_scratch.search.Study``), a published study
(``study.json`` beside ``trials.csv`` or ``trials.jsonl``, e.g. under ``results/``), or a bare CSV/JSONL
table. It reads files only: no training code runs.
"""
from __future__ import annotations

import json
from pathlib import Path

from .stats import COLUMNS, check_table

TABLE_NAMES = ("trials.csv", "trials.jsonl")
"""A published study's table beside its study.json (the first is what ``search export`` publishes)."""
TRIALS_DIR = "trials"
"""A live study's trial directories (``search.study.TRIALS_DIR``; named here so reading loads no search code)."""


def task_info(task: str) -> dict:
    """{metric, label, lower_is_better, synthetic, title, uninformed} of a task of the registry (its
    objective's row in :mod:`lstm_scratch.objectives`; ``uninformed``: the metric of a predictor that
    knows nothing, or None); generic, lower-is-better, for a task it does not know."""
    from ..datasets.registry import TASKS
    spec = TASKS.get(task)
    if spec is None:
        return {"metric": "metric", "label": "metric", "lower_is_better": True, "synthetic": False,
                "title": task, "uninformed": None}
    return {"metric": spec.metric, "label": spec.objective.label,
            "lower_is_better": spec.objective.lower_is_better, "synthetic": bool(spec.synthetic),
            "title": spec.title, "uninformed": spec.uninformed}


def load(path) -> tuple[dict, object]:
    """(definition, DataFrame) of the study at ``path`` (module docstring); ``ValueError`` if ``path``
    is not a study. The definition gets ``path`` (where it was read), which names the study in reports."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: no such study directory or table file")
    if path.is_file():
        definition_file = path.parent / "study.json"
        df = _read_table(path)
        definition = _read_definition(definition_file) if definition_file.is_file() else inferred_definition(df)
        return {**definition, "path": str(path.parent if definition_file.is_file() else path)}, df
    definition_file = path / "study.json"
    if not definition_file.is_file():
        raise ValueError(f"{path}: not a study (no study.json); create one with 'lstm-odyssey search "
                         "create', or pass a trials.csv / trials.jsonl table")
    definition = {**_read_definition(definition_file), "path": str(path)}
    table = published_table(path)
    if table and not (path / TRIALS_DIR).is_dir():   # a published study: the definition and its table
        return definition, _read_table(table)
    from ..search import Study
    return definition, Study.open(path).to_dataframe()


def published_table(study_dir) -> Path | None:
    """The published table in ``study_dir`` (the first of :data:`TABLE_NAMES` there), or None."""
    return next((Path(study_dir) / name for name in TABLE_NAMES if (Path(study_dir) / name).is_file()), None)


def _read_definition(path: Path) -> dict:
    try:
        definition = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot read the study definition ({type(err).__name__}: {err})") from err
    if not isinstance(definition, dict) or "task" not in definition:
        raise ValueError(f"{path}: not a study definition (a JSON object with 'task', 'archs', 'trials')")
    return definition


def _read_table(path: Path):
    import pandas as pd
    try:
        if path.suffix == ".csv":
            df = pd.read_csv(path)
        elif path.suffix == ".jsonl":
            df = pd.read_json(path, lines=True)
        else:
            raise ValueError(f"{path}: a study table is a .csv or .jsonl file")
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot read the study table ({err})") from err
    try:
        check_table(df, needed=COLUMNS[:2] + ("task", "outcome", "valid_metric", "test_metric"))
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    return df


def inferred_definition(df) -> dict:
    """A definition for a bare table: its tasks, architectures, and trials per architecture as the
    largest trial index + 1 (missing trials are then those absent below it)."""
    tasks = sorted(df["task"].unique())
    trials = int(df["k"].max()) + 1 if "k" in df.columns and len(df) else len(df)
    return {"task": tasks[0] if len(tasks) == 1 else ",".join(tasks), "archs": list(df["arch"].unique()),
            "trials": trials, "inferred from the table": True}
