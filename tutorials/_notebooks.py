"""Executed notebooks of the tutorials: ``make notebooks`` (or ``python tutorials/_notebooks.py``).

Each ``tutorials/NN_*.py`` (jupytext percent format, the source) is converted to a notebook
(jupytext), executed top to bottom in a fresh kernel (nbclient) and written, outputs and inline
figures included, as ``NN_*.ipynb`` — by default next to the source in ``tutorials/`` (git-ignored),
so a reader who opens one in Jupyter sees the results without running anything.

The kernel is ipykernel's ``python3``, which jupyter_client starts with the interpreter running this
script: run it with the project's venv python and the notebooks execute with that venv, on CI too.
It runs in the tutorials' directory (so ``from _figures import show`` works) with the matplotlib
backend left to the kernel (inline), so ``_figures.show`` displays figures in the notebook.

    python tutorials/_notebooks.py                      # every tutorial, default sizes
    python tutorials/_notebooks.py --fast 01 04         # LSTM_SCRATCH_FAST=1, two tutorials
    python tutorials/_notebooks.py --out /tmp/nb        # somewhere else
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
KERNEL = "python3"


def tutorials(selection=()) -> list[Path]:
    """The tutorial sources, all or those whose file name starts with one of ``selection`` ("01", …)."""
    found = sorted(HERE.glob("[0-9][0-9]_*.py"))
    chosen = [p for p in found if not selection or any(p.name.startswith(s) for s in selection)]
    unknown = [s for s in selection if not any(p.name.startswith(s) for p in found)]
    if unknown:
        raise ValueError(f"no tutorial named {', '.join(unknown)}; there are {', '.join(p.stem for p in found)}")
    return chosen


def execute(source: Path, out_dir: Path, fast: bool = False, timeout: int = 1800) -> Path:
    """Convert ``source`` to a notebook, execute it, write ``out_dir/<stem>.ipynb`` (atomically); return it.

    A failing cell raises nbclient's ``CellExecutionError`` (with the traceback) and nothing is written."""
    import jupytext
    import nbformat
    from nbclient import NotebookClient

    from lstm_scratch.atomic import atomic_write

    notebook = jupytext.read(source)
    notebook.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)                     # let the kernel choose its inline backend
    env["LSTM_SCRATCH_FAST"] = "1" if fast else env.get("LSTM_SCRATCH_FAST", "0")
    client = NotebookClient(notebook, kernel_name=KERNEL, timeout=timeout,
                            resources={"metadata": {"path": str(source.parent)}})
    client.execute(env=env)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{source.stem}.ipynb"
    atomic_write(target, lambda handle: nbformat.write(notebook, handle), binary=False)
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="tutorial numbers or name prefixes (default: all)")
    parser.add_argument("--fast", action="store_true", help="LSTM_SCRATCH_FAST=1: small sizes, as in the tests")
    parser.add_argument("--out", type=Path, default=HERE, help="output directory (default: tutorials/)")
    args = parser.parse_args(argv)
    try:
        sources = tutorials(args.names)
    except ValueError as error:
        print(f"_notebooks.py: {error}", file=sys.stderr)
        return 2
    for source in sources:
        started = time.perf_counter()
        target = execute(source, args.out, fast=args.fast)
        print(f"{target}  ({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
