"""The building blocks of the report page: escaped text, numbers, tables, inline images."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1100px;
color:#222;line-height:1.45;padding:0 1em}
h1{border-bottom:2px solid #333}h2{margin-top:2.2em;border-bottom:1px solid #bbb}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}
.best{font-weight:bold}.note{color:#555;font-size:.9em}
img{max-width:100%;border:1px solid #eee;margin:.4em 0}
details{margin:.6em 0}pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.8em}
nav a{margin-right:1em}.coverage{border-left:3px solid #888;padding-left:.6em}
.verdict{border-left:4px solid #2a6;padding:.3em .7em;background:#f3faf5}
.warning{border-left:4px solid #c60;padding:.3em .7em;background:#fff6ec}
"""


def warning(text: str) -> str:
    """Return a visible warning paragraph (``text`` is escaped)."""
    return f'<p class="warning"><strong>Warning:</strong> {esc(text)}</p>'


def esc(value: Any) -> str:
    """``value`` as HTML-escaped text."""
    return html.escape(str(value))


def img(path: str | Path, alt: str) -> str:
    """Inline a PNG file as ``<img>`` (base64), so the page stands alone."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def table(frame: pd.DataFrame, classes: Mapping[tuple[int, int], str] | None = None) -> str:
    """Render a frame as an HTML table; ``classes``: CSS classes of cells by (row, column)."""
    head = "".join(f"<th>{esc(c)}</th>" for c in frame.columns)
    rows = []
    for i, (_, row) in enumerate(frame.iterrows()):
        cells = []
        for j, value in enumerate(row):
            css = (classes or {}).get((i, j))
            attr = f' class="{css}"' if css else ""
            cells.append(f"<td{attr}>{esc(value)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def fmt(value: Any, digits: int = 3) -> str:
    """Format a number with ``digits`` decimals; ``–`` for a missing or non-finite value."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    if isinstance(value, float | np.floating):
        return f"{value:.{digits}f}"
    return str(value)
