"""Every tutorial runs, in its fast mode: its assertions (the claims it teaches) hold, it writes its
figures, and it converts to a notebook that executes (what ``make notebooks`` does)."""
import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

from conftest import SHARED_DATA

TUTORIAL_DIR = pathlib.Path(__file__).parent.parent / "tutorials"
TUTORIALS = sorted(TUTORIAL_DIR.glob("[0-9][0-9]_*.py"))
IDS = [p.stem for p in TUTORIALS]


def tutorial_env(path, tmp_path):
    """Fast mode; figures into a temporary folder; data from the shared mirror into a temporary cache
    (nothing is downloaded). A tutorial that loads a data set is skipped without the shared folder."""
    if re.search(r"\bload(_task)?\(", path.read_text(encoding="utf-8")) and not SHARED_DATA.is_dir():
        pytest.skip(f"{path.name} loads data; shared data not found at {SHARED_DATA} (clone shared/ beside the repo)")
    return dict(os.environ, LSTM_SCRATCH_FAST="1", MPLBACKEND="Agg",
                LSTM_SCRATCH_FIGURES=str(tmp_path / "figures"), LSTM_SCRATCH_MIRROR=str(SHARED_DATA),
                LSTM_SCRATCH_DATA=str(tmp_path / "data_cache"))


def test_there_are_tutorials():
    assert TUTORIALS, "tutorials/ holds no NN_*.py tutorial"


@pytest.mark.parametrize("path", TUTORIALS, ids=IDS)
def test_tutorial_runs(path, tmp_path):
    run_dir = tmp_path / "cwd"
    run_dir.mkdir()
    done = subprocess.run([sys.executable, str(path)], cwd=run_dir, env=tutorial_env(path, tmp_path),
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{path.name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert not any(run_dir.iterdir()), "a tutorial must not write into the working directory"
    figures = sorted((tmp_path / "figures").glob("*.png"))
    assert figures, f"{path.name} wrote no figure"
    for figure in figures:
        assert figure.name.startswith(path.name[:3]), f"{figure.name}: figure names start with the tutorial number"
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.stat().st_size > 5000, figure.name
    assert len(figures) == done.stdout.count("figure written to "), "each figure is written once, by show()"


def _notebook_tools():
    missing = [name for name in ("jupytext", "nbclient", "nbformat", "ipykernel")
               if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"notebook check needs {', '.join(missing)}: pip install -e '.[dev]'")
    spec = importlib.util.spec_from_file_location("tutorial_notebooks", TUTORIAL_DIR / "_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", TUTORIALS, ids=IDS)
def test_notebook_executes(path, tmp_path, monkeypatch):
    """``make notebooks`` in fast mode: jupytext converts, nbclient runs every cell in a fresh kernel
    (a failing cell raises), and the written notebook carries its outputs and its figures inline."""
    notebooks = _notebook_tools()
    for name, value in tutorial_env(path, tmp_path).items():
        monkeypatch.setenv(name, value)
    import nbformat
    written = notebooks.execute(path, tmp_path / "notebooks", fast=True, timeout=900)
    assert written == tmp_path / "notebooks" / f"{path.stem}.ipynb"
    notebook = nbformat.read(written, as_version=4)
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), f"{path.name}: no inline figure"
    assert not (tmp_path / "figures").exists(), "in a notebook figures are shown inline, not written"
