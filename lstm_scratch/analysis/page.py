"""What both reports' pages are made of (:mod:`.report` for a study, :mod:`.jzs_table` for JZS's
benchmark): tables and figures in Markdown and HTML, the page's CSS, the versions listed at the end, and
atomic writing of text and CSV files."""
from __future__ import annotations

import base64
import html
import platform
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_write

CSS = ("body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}table{border-collapse:collapse;"
       "font-size:13px;margin:0.5em 0}td,th{border:1px solid #ccc;padding:2px 6px}th{background:#eee}"
       ".warn{background:#fde0dc;border:1px solid #d62728;padding:0.5em;font-weight:bold}"
       "img{max-width:100%}pre{background:#f6f6f6;padding:0.5em;font-size:12px}")


def versions() -> dict:
    """The versions a report names: this package, its code (git commit), Python and the libraries."""
    import matplotlib
    import pandas
    import scipy
    import sklearn

    from .. import __version__
    from ..provenance import code_version
    return {"lstm_scratch": __version__, "code": code_version(), "python": platform.python_version(),
            "numpy": np.__version__, "pandas": pandas.__version__, "scipy": scipy.__version__,
            "scikit-learn": sklearn.__version__, "matplotlib": matplotlib.__version__}


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda handle: handle.write(text), binary=False)


def write_csv(path: Path, frame) -> None:
    atomic_write(path, lambda handle: frame.to_csv(handle, index=False), binary=False)


def _cell(value) -> str:
    if isinstance(value, float):
        return "—" if not np.isfinite(value) else f"{value:.4g}"
    return str(value).replace("|", "\\|")


def md_table(frame) -> str:
    """A GitHub-flavoured Markdown table (pandas' to_markdown needs the optional ``tabulate``)."""
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def html_table(frame) -> str:
    """An HTML table, numbers rounded to 4 decimals, missing values as "—"."""
    return frame.round(4).to_html(index=False, na_rep="—", border=0, escape=True)


def md_figure(caption: str, png: Path, out_dir: Path) -> list[str]:
    """A figure in report.md: the PNG (:func:`.figures.save` wrote it and its SVG twin) by its path
    relative to the page, then the caption with a link to the SVG."""
    rel = Path(png).relative_to(out_dir).as_posix()
    return [f"![{caption}]({rel})", f"*{caption}* ([SVG]({Path(rel).with_suffix('.svg').as_posix()}))"]


def html_figure(caption: str, png: Path) -> str:
    """A figure in index.html, the PNG embedded (base64), so the page is one self-contained file."""
    data = base64.b64encode(Path(png).read_bytes()).decode("ascii")
    return (f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


# ------------------------------------------------------------------ display: names and number formats
# The CSV files keep the analysis' column names and every digit; the pages show the same tables with
# names a reader of the paper understands and numbers at the precision that means something.
def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and not np.isfinite(value))


def fixed(decimals: int, sign: bool = False):
    """Format with ``decimals`` decimals (``sign``: always a sign — a difference)."""
    return lambda v: "—" if _missing(v) else f"{float(v):{'+' if sign else ''}.{decimals}f}"


def significant(digits: int):
    """Format with ``digits`` significant digits, without exponent for everyday sizes."""
    def format_(v):
        return "—" if _missing(v) else f"{float(v):,.{digits}g}" if abs(float(v)) < 1e6 else f"{float(v):.{digits}e}"
    return format_


def p_value(v) -> str:
    """p with two significant digits; "< 0.001" below that."""
    return "—" if _missing(v) else "< 0.001" if float(v) < 0.001 else f"{float(v):.2g}"


def percent(v) -> str:
    """A fraction in % with one decimal; "< 0.1 %" below that."""
    if _missing(v):
        return "—"
    return "< 0.1 %" if 0 <= float(v) < 0.0005 else f"{100 * float(v):.1f} %"


def count(v) -> str:
    """An integer with thousands separators (84,788)."""
    return "—" if _missing(v) else f"{int(round(float(v))):,}"


def yes(v) -> str:
    return "yes" if v is True or v == 1 else "—"


def text(v) -> str:
    return "—" if _missing(v) else str(v)


def displayed(frame, columns: dict) -> pd.DataFrame:
    """``frame`` as shown on a page: the columns of ``columns`` ({column: (display name, format)}) that
    it has, in that order, renamed and formatted to strings."""
    shown = [c for c in columns if c in frame.columns]
    return pd.DataFrame({columns[c][0]: [columns[c][1](v) for v in frame[c]] for c in shown}, index=frame.index)
