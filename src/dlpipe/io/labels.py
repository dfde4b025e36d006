"""Labels files: a tab-separated table of sequence ids and their labels (``data.labels``).

Two forms, both explicit about the header:

- a path: exactly two columns, id and label, and **no** header line;
- ``{path, id_column, label_column}``: a header line names the columns; any other columns are
  ignored.

What a user may get wrong is named, not guessed around: a header line in the first form, a third
column, a column name that is not in the header, an id given twice, an empty label, ids that
match none of the FASTA's.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dlpipe.errors import InputError

OBJECT_FORM = "{path: FILE, id_column: NAME, label_column: NAME}"


def labels_path(spec: str | Mapping[str, Any]) -> str:
    """Return the file of a ``data.labels`` value (a path, or the object form's ``path``)."""
    return str(spec["path"]) if isinstance(spec, Mapping) else str(spec)


def _rows(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise InputError(f"{path}: labels file not found; check data.labels")
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = [
                row for row in csv.reader(handle, delimiter="\t") if any(c.strip() for c in row)
            ]
    except UnicodeDecodeError:
        raise InputError(
            f"{path}: not a text file (compressed or binary?); data.labels is a plain "
            "tab-separated file"
        ) from None
    if not rows:
        raise InputError(f"{path}: the labels file is empty")
    return rows


def read_labels(spec: str | Mapping[str, Any], ids: Sequence[str]) -> dict[str, str]:
    """Read the labels of the sequences ``ids`` from a labels file.

    Parameters
    ----------
    spec
        ``data.labels``: a path (two columns, no header) or ``{path, id_column, label_column}``
        (a header line names the columns; ``id_column`` defaults to ``id``, ``label_column``
        to ``label``).
    ids
        The FASTA's sequence ids, to check the file against.

    Returns
    -------
    dict
        Label of each id in the file (ids the FASTA lacks included; the caller picks).

    Raises
    ------
    InputError
        Naming the file, the line and the fix, for every way the file can disagree with its form.
    """
    path = Path(labels_path(spec))
    rows = _rows(path)
    known = set(ids)
    if isinstance(spec, Mapping):
        header = [c.strip() for c in rows[0]]
        id_col, label_col = spec.get("id_column", "id"), spec.get("label_column", "label")
        for key, name in (("id_column", id_col), ("label_column", label_col)):
            if name not in header:
                raise InputError(
                    f"{path}: line 1 (the header) has no column {name!r} (data.labels.{key}); "
                    f"its columns are {header}"
                )
        i, j = header.index(id_col), header.index(label_col)
        body, first_line = rows[1:], 2
    else:
        width = len(rows[0])
        if width != 2:
            raise InputError(
                f"{path}: line 1 has {width} tab-separated columns; a labels file given as a path "
                "has two, id and label, and no header. For a file with a header or more columns "
                f"write data.labels as {OBJECT_FORM}"
            )
        first_id = rows[0][0].strip()
        if first_id not in known and any(r[0].strip() in known for r in rows[1:]):
            raise InputError(
                f"{path}: line 1 {rows[0]} looks like a header: {first_id!r} is not a sequence id "
                "of the FASTA while the ids below it are. Remove the line, or write data.labels "
                f"as {OBJECT_FORM} to name the header's columns"
            )
        i, j = 0, 1
        body, first_line = rows, 1
    mapping: dict[str, str] = {}
    for line, row in enumerate(body, first_line):
        if len(row) <= max(i, j):
            raise InputError(
                f"{path}: line {line} has {len(row)} column(s), fewer than the header's; "
                "every line needs an id and a label"
            )
        key, label = row[i].strip(), row[j].strip()
        if not label:
            raise InputError(f"{path}: line {line}: sequence {key!r} has an empty label")
        if key in mapping:
            raise InputError(f"{path}: line {line}: sequence id {key!r} is given a second time")
        mapping[key] = label
    if not known & set(mapping):
        raise InputError(
            f"{path}: none of its {len(mapping)} ids is a sequence id of the FASTA (the file "
            f"has e.g. {list(mapping)[:3]}, the FASTA {list(ids)[:3]}); ids are the header up "
            "to the first space or '|'"
        )
    return mapping
