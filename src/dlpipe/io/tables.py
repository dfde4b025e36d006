"""Tables: CSV, TSV (plain or gzip-compressed) and Parquet, with errors that name file and line.

:func:`read_table` returns a :class:`pandas.DataFrame` whose rows are samples; an AnnData
``.h5ad`` is handed to :func:`dlpipe.io.h5ad.read_h5ad_table`, whose matrix (``X`` or a layer)
becomes the feature columns and ``obs`` the annotation columns.
"""

from __future__ import annotations

import csv
import gzip
import warnings
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from dlpipe.errors import InputError
from dlpipe.io.h5ad import read_h5ad_table

_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".txt": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".h5ad": "h5ad",
}
_DELIMITERS = {"csv": ",", "tsv": "\t"}
_FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".fas")
_BED_SUFFIXES = (".bed", ".narrowpeak", ".broadpeak")
_DELIMITER_NAMES = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}
#: pandas' default missing-value spellings (read_csv documentation).
_NA_VALUES = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
]  # fmt: skip


def infer_format(path: str | Path) -> str:
    """Return ``csv``, ``tsv``, ``parquet`` or ``h5ad`` from a file name (``.gz`` ignored).

    Parameters
    ----------
    path
        File name.

    Returns
    -------
    str
        The format name.
    """
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] in (".gz", ".bgz"):
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in _SUFFIXES:
        return _SUFFIXES[suffixes[-1]]
    raise InputError(
        f"{path}: cannot tell the format from the file name; name it .csv, .tsv, .parquet or "
        ".h5ad (optionally .gz), or set data.format in the config"
    )


def input_kind(path: str | Path) -> str:
    """``fasta``, ``bed`` or ``table``: what a file of new samples holds, from its name.

    ``.gz`` is ignored; any name that is not FASTA or BED is taken for a table.
    """
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] in (".gz", ".bgz"):
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    if last in _FASTA_SUFFIXES:
        return "fasta"
    if last in _BED_SUFFIXES:
        return "bed"
    return "table"


#: First bytes of formats a text table may have been confused with.
_MAGIC = {b"\x1f\x8b": "gzip-compressed", b"PAR1": "a Parquet file", b"PK\x03\x04": "a zip archive"}
_MAGIC_FIX = {
    "gzip-compressed": "add .gz to its name (e.g. .csv.gz)",
    "a Parquet file": "name it .parquet",
    "a zip archive": "unzip it",
}


def _check_content(path: Path) -> None:
    """Refuse a text table whose bytes say it is something else (gzip data named .csv)."""
    compressed = path.suffix.lower() in (".gz", ".bgz")
    with open(path, "rb") as handle:
        start = handle.read(4)
    for magic, what in _MAGIC.items():
        if start.startswith(magic) and not (compressed and magic == b"\x1f\x8b"):
            raise InputError(
                f"{path}: the file is {what}, not a text table as its name says; {_MAGIC_FIX[what]}"
            )
    if compressed and not start.startswith(b"\x1f\x8b"):
        raise InputError(
            f"{path}: named .gz but not gzip-compressed; remove .gz from its name or compress it "
            "with gzip"
        )


def _open_text(path: Path) -> Any:
    opener = gzip.open if path.suffix.lower() in (".gz", ".bgz") else open
    return opener(path, "rt", errors="replace", newline="")


def _first_line(path: Path) -> str:
    try:
        with _open_text(path) as handle:
            return handle.readline()
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise _damaged(path, err) from None
    except OSError as err:
        raise InputError(f"{path}: cannot be read: {err}") from None


def _damaged(path: Path, err: Exception) -> InputError:
    return InputError(
        f"{path}: the compressed file is truncated or damaged ({err}); copy or compress it "
        "again (gzip -t tests a .gz file)"
    )


def _records(path: Path, sep: str) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(first line number, fields)`` of every non-blank record, header first.

    Follows pandas' reading of the file (quoted fields may span lines, blank lines are
    skipped), so error messages can name the line a user sees in an editor.
    """
    with _open_text(path) as handle:
        reader = csv.reader(handle, delimiter=sep)
        start = 1
        for fields in reader:
            if fields:
                yield start, fields
            start = reader.line_num + 1


def _ragged_line(path: Path, sep: str) -> str | None:
    """Describe the first line whose field count differs from the header's, if any."""
    records = _records(path, sep)
    try:
        header_line, header = next(records, (1, []))
        for number, fields in records:
            if len(fields) != len(header):
                trailing = len(fields) == len(header) + 1 and fields[-1] == ""
                extra = " (a delimiter at the end of the line adds an empty field)" * trailing
                return (
                    f"line {number} has {len(fields)} fields but the header (line "
                    f"{header_line}) has {len(header)}{extra}"
                )
    except csv.Error:  # e.g. a field beyond csv's size limit: leave the verdict to pandas
        return None
    return None


def _read_delimited(
    path: Path, fmt: str, text_columns: list[str], exact_columns: list[str]
) -> pd.DataFrame:
    sep = _DELIMITERS[fmt]
    header = _first_line(path)
    if not header.strip():
        raise InputError(f"{path}: the file is empty; it needs a header line and data rows")
    advice = "check the delimiter and that every line has as many fields as the header"
    names = next(csv.reader([header], delimiter=sep), [])
    # pandas renames a repeated name (mean_radius, mean_radius.1) without a word.
    seen: set[str] = set()
    repeated = sorted({n for n in names if n in seen or seen.add(n)})
    if repeated:
        raise InputError(
            f"{path}, line 1: column names appear more than once: {repeated[:5]}; rename them so "
            "every column has its own name"
        )
    # Ids, labels and groups are taken literally (a class called 'NA' or 'None' stays a
    # class); elsewhere pandas' usual missing-value spellings (NA, NaN, null, ...) apply.
    missing = {c: [""] if c in exact_columns else _NA_VALUES for c in names}
    # pandas pads short rows with NaN and drops a surplus empty field on the first data row
    # without a word; a table whose rows disagree with its header is refused instead.
    ragged = _ragged_line(path, sep)
    if ragged:
        raise InputError(f"{path}: not a valid {fmt.upper()} table: {ragged}; {advice}")
    try:
        with warnings.catch_warnings():
            # With index_col=False pandas only warns about (and drops) surplus fields.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            table = pd.read_csv(
                path,
                sep=sep,
                low_memory=False,
                index_col=False,
                dtype=dict.fromkeys([*text_columns, *exact_columns], str),
                keep_default_na=False,
                na_values=missing,
            )
    except (pd.errors.ParserError, pd.errors.ParserWarning) as err:
        where = _ragged_line(path, sep) or " ".join(str(err).split())
        raise InputError(f"{path}: not a valid {fmt.upper()} table: {where}; {advice}") from None
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not a text table ({err}); is it binary or compressed?") from None
    if table.shape[1] == 1:
        found = [d for d in _DELIMITER_NAMES if d != sep and header.count(d) > 0]
        if found:
            name = _DELIMITER_NAMES[found[0]]
            fix = {"\t": "tsv", ",": "csv"}.get(found[0])
            hint = (
                f"set data.format: {fix} (or give the file the .{fix} suffix)"
                if fix
                else "convert it to comma- or tab-separated"
            )
            raise InputError(
                f"{path}: line 1 has a single {fmt.upper()} column but looks {name}-separated; "
                f"{hint}"
            )
    return table


def read_table(
    path: str | Path,
    fmt: str = "auto",
    layer: str | None = None,
    text_columns: list[str] | None = None,
    exact_columns: list[str] | None = None,
    key: str = "data.path",
) -> pd.DataFrame:
    """Read a sample × column table from CSV, TSV, Parquet or ``.h5ad``.

    Parameters
    ----------
    path
        Input file; ``.gz`` compression is recognised for CSV and TSV.
    fmt
        ``auto`` (from the file name), ``csv``, ``tsv``, ``parquet`` or ``h5ad``.
    layer
        AnnData layer to use instead of ``X`` (``.h5ad`` only).
    text_columns
        Columns of a CSV/TSV read as text whatever they look like (ids such as ``01005``).
    exact_columns
        Columns of a CSV/TSV read as text in which only an empty field is missing: ids, labels
        and groups, where ``NA`` or ``None`` may be a real value.
    key
        The config key that gave the path, named in the messages of a missing file.

    Returns
    -------
    pandas.DataFrame
        One row per sample, with a default integer index. For ``.h5ad`` the first column is
        ``obs_names``, then the ``obs`` annotations, then one column per variable.

    Raises
    ------
    InputError
        If the file is missing, empty, of the wrong delimiter or otherwise unreadable.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found; check {key} in the config")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a file; check {key} in the config")
    fmt = infer_format(path) if fmt == "auto" else fmt
    if layer is not None and fmt != "h5ad":
        raise InputError(f"{path}: data.layer is set but the file is not .h5ad")
    if fmt in _DELIMITERS:
        _check_content(path)
        try:
            table = _read_delimited(path, fmt, text_columns or [], exact_columns or [])
        except (EOFError, zlib.error, gzip.BadGzipFile) as err:
            raise _damaged(path, err) from None
    elif fmt == "parquet":
        try:
            table = pd.read_parquet(path)
        except Exception as err:  # noqa: BLE001 - pyarrow raises several error types
            raise InputError(f"{path}: not a readable Parquet file: {err}") from None
        table = table.reset_index(drop=table.index.name is None)
    elif fmt == "h5ad":
        table = read_h5ad_table(path, layer)
    else:
        raise InputError(f"{path}: unknown format {fmt!r}")
    if table.shape[0] == 0:
        raise InputError(f"{path}: the table has a header but no data rows")
    table.columns = [str(c) for c in table.columns]
    dup = table.columns[table.columns.duplicated()].tolist()
    if dup:
        raise InputError(f"{path}: column names appear more than once: {dup[:5]}; rename them")
    return table


def row_locations(path: str | Path, rows: Iterable[int], fmt: str = "auto") -> list[str]:
    """Describe where data rows (0-based) of a table lie, for error messages.

    For CSV/TSV the file line (blank lines and quoted line breaks counted, as in an editor);
    for other formats the 1-based row number.
    """
    rows = [int(r) for r in rows]
    fmt = infer_format(path) if fmt == "auto" else fmt
    if fmt not in _DELIMITERS:
        return [f"row {r + 1}" for r in rows]
    wanted = set(rows)
    lines: dict[int, int] = {}
    records = _records(Path(path), _DELIMITERS[fmt])
    next(records, None)  # the header
    for row, (number, _) in enumerate(records):
        if row in wanted:
            lines[row] = number
            if len(lines) == len(wanted):
                break
    return [f"line {lines.get(r, r + 2)}" for r in rows]


def row_location(path: str | Path, row: int, fmt: str = "auto") -> str:
    """Describe where data row ``row`` (0-based) of a table lies (see :func:`row_locations`)."""
    return row_locations(path, [row], fmt)[0]
