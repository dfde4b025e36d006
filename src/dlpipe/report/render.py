"""The report's templates and the plain data they render: numbers, tables, inline images.

Every piece of markup lies in ``templates/`` (package data), one template per section; Python
builds dicts of text and numbers and never HTML. Autoescaping is on for every template, so a
name or a description from a config is shown as typed, never read as markup.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd

#: A cell whose text is a number, an interval or a ratio of them: kept on one line.
_NUMERIC = re.compile(r"^[-+−–\d.,\s±\[\]%eE×/→()*]*$")


@functools.cache
def environment() -> jinja2.Environment:
    """Return the Jinja2 environment of the report (templates shipped in the package)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("dlpipe.report", "templates"),
        autoescape=True,  # every template, whatever its extension
        undefined=jinja2.StrictUndefined,  # a misspelt field fails the report, not the reader
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(template: str, **context: Any) -> str:
    """Render one template of ``templates/`` with ``context``."""
    return environment().get_template(template).render(**context)


def render_section(section: Mapping[str, Any]) -> str:
    """Render one section (a dict from a section builder, naming its ``template``) alone."""
    return render("fragment.html.j2", section=section)


def section(template: str, title: str | None, anchor: str | None, **data: Any) -> dict[str, Any]:
    """Return a section: the template that renders it, its heading, its id and its data.

    Parameters
    ----------
    template
        File name in ``templates/``.
    title
        Heading (and table-of-contents entry); ``None`` for a block without heading.
    anchor
        The heading's id (see :func:`anchor`); ``None`` keeps it out of the table of contents.
    **data
        What the template shows.
    """
    return {"template": template, "title": title, "id": anchor, **data}


def anchor(*parts: str) -> str:
    """Return an id for an in-page link: the parts joined by ``-``, other characters replaced."""
    return "-".join(re.sub(r"[^A-Za-z0-9_-]+", "_", str(p)) for p in parts)


def warning(text: str) -> dict[str, str]:
    """Return a warning for a template's ``warnings`` list."""
    return {"text": text}


def image(path: str | Path, alt: str, caption: str | None = None) -> dict[str, str | None]:
    """Return a PNG file as a figure: base64 data (the page stands alone), alt text, caption."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return {"src": f"data:image/png;base64,{data}", "alt": alt, "caption": caption}


def cell(value: Any, css: str | None = None) -> dict[str, str]:
    """Return one table cell: its text and CSS classes (numbers and intervals do not wrap)."""
    text = str(value)
    classes = [css] if css else []
    if _NUMERIC.match(text) and text.strip():
        classes.append("num")
    return {"text": text, "css": " ".join(classes)}


def table(
    frame: pd.DataFrame,
    classes: Mapping[tuple[int, int], str] | None = None,
    groups: Iterable[tuple[str, int]] = (),
) -> dict[str, Any]:
    """Return a frame as table data for the ``table`` macro.

    Parameters
    ----------
    frame
        What the table shows; its columns are the headers.
    classes
        CSS classes of cells by (row, column), e.g. ``best``.
    groups
        An optional first header row: ``(label, number of columns it spans)``.
    """
    classes = classes or {}
    rows = [
        [cell(value, classes.get((i, j))) for j, value in enumerate(row)]
        for i, row in enumerate(frame.itertuples(index=False))
    ]
    return {
        "columns": [str(c) for c in frame.columns],
        "groups": [{"label": label, "span": span} for label, span in groups],
        "rows": rows,
    }


def fmt_p(value: Any) -> str:
    """Format a p-value: 4 decimals, or 2 significant digits below 0.0001 (never ``0.0000``)."""
    if value is None or not np.isfinite(float(value)):
        return "–"
    value = float(value)
    return f"{value:.1e}" if 0 < value < 1e-4 else f"{value:.4f}"


def fmt(value: Any, digits: int = 3) -> str:
    """Format a number with ``digits`` decimals; ``–`` for a missing or non-finite value."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    if isinstance(value, float | np.floating):
        return f"{value:.{digits}f}"
    return str(value)
