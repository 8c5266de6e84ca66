"""Show or save a tutorial's figures — the one place that decides which.

* In Jupyter (the inline backend) or with a GUI backend, a figure is shown where it was made.
* Otherwise (a script on a headless machine, the test suite: a non-interactive backend such as Agg)
  it is written as PNG to ``$LSTM_SCRATCH_FIGURES`` (default ``tutorials/figures/``, git-ignored),
  atomically, as ``<name>.png``; names start with the tutorial's number, so figures of different
  tutorials can share one directory.
"""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
from lstm_scratch.atomic import atomic_write

ENV_FIGURES = "LSTM_SCRATCH_FIGURES"
DEFAULT_DIR = Path(__file__).resolve().parent / "figures"


def figure_dir() -> Path:
    """Where non-interactive runs write figures: ``$LSTM_SCRATCH_FIGURES`` or ``tutorials/figures/``."""
    return Path(os.environ.get(ENV_FIGURES) or DEFAULT_DIR).expanduser()


def interactive() -> bool:
    """True under Jupyter's inline backend or a GUI backend: figures are then shown, not written."""
    try:                                    # matplotlib ≥ 3.9
        from matplotlib.backends import BackendFilter, backend_registry
        non_interactive = backend_registry.list_builtin(BackendFilter.NON_INTERACTIVE)
    except ImportError:
        from matplotlib.rcsetup import non_interactive_bk as non_interactive
    return matplotlib.get_backend().lower() not in {name.lower() for name in non_interactive}


def show(fig, name: str) -> Path | None:
    """Show ``fig`` (interactive) or write it to ``figure_dir()/name.png``; return the file written."""
    if interactive():
        if fig.canvas.manager is None:      # built without pyplot (lstm_scratch.analysis.figures)
            from IPython.display import display
            display(fig)
        else:
            plt.show()
        return None
    if not name or "/" in name or os.sep in name:
        raise ValueError(f"figure name {name!r}: give a plain file stem such as '01_gates'")
    directory = figure_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=110, bbox_inches="tight"))
    if fig.canvas.manager is not None:
        plt.close(fig)
    print(f"figure written to {path}")
    return path
