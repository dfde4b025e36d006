"""Read every tabular input format dlpipe accepts, with errors that name the file and line.

Tables come as CSV, TSV (plain or gzip-compressed), Parquet or AnnData ``.h5ad``. The reader
returns a :class:`pandas.DataFrame` whose rows are samples; for ``.h5ad`` the matrix (``X`` or a
layer) becomes the feature columns and ``obs`` the annotation columns.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlpipe.errors import InputError

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
_DELIMITER_NAMES = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}


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


def _first_line(path: Path) -> str:
    import gzip

    opener = gzip.open if path.suffix.lower() in (".gz", ".bgz") else open
    try:
        with opener(path, "rt", errors="replace") as handle:
            return handle.readline()
    except (OSError, EOFError) as err:
        raise InputError(f"{path}: cannot be read: {err}") from None


def _read_delimited(path: Path, fmt: str, text_columns: list[str]) -> pd.DataFrame:
    sep = _DELIMITERS[fmt]
    header = _first_line(path)
    if not header.strip():
        raise InputError(f"{path}: the file is empty; it needs a header line and data rows")
    try:
        table = pd.read_csv(path, sep=sep, low_memory=False, dtype=dict.fromkeys(text_columns, str))
    except pd.errors.ParserError as err:
        raise InputError(
            f"{path}: not a valid {fmt.upper()} table: {err}. Check the delimiter and that every "
            "line has as many fields as the header"
        ) from None
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


def _read_h5ad(path: Path, layer: str | None) -> pd.DataFrame:
    import anndata as ad
    import scipy.sparse as sp

    try:
        adata = ad.read_h5ad(path)
    except Exception as err:  # noqa: BLE001 - h5py/anndata raise many types for a bad file
        raise InputError(f"{path}: not a readable .h5ad file: {err}") from None
    if layer is None:
        matrix = adata.X
    elif layer in adata.layers:
        matrix = adata.layers[layer]
    else:
        raise InputError(
            f"{path}: layer {layer!r} not found; available layers: "
            f"{', '.join(adata.layers.keys()) or 'none (use X: set data.layer: null)'}"
        )
    if matrix is None:
        raise InputError(f"{path}: the AnnData object has no X matrix; name a layer in data.layer")
    dense = matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)
    features = pd.DataFrame(dense, index=adata.obs_names.astype(str), columns=adata.var_names)
    clash = set(adata.obs.columns) & set(features.columns)
    if clash:
        raise InputError(
            f"{path}: obs columns {sorted(clash)} have the same names as genes in var_names; "
            "rename them in obs"
        )
    table = pd.concat([adata.obs, features], axis=1)
    table.insert(0, "obs_names", adata.obs_names.astype(str))
    return table.reset_index(drop=True)


def read_table(
    path: str | Path,
    fmt: str = "auto",
    layer: str | None = None,
    text_columns: list[str] | None = None,
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
        raise InputError(f"{path}: file not found; check data.path in the config")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a file; check data.path in the config")
    fmt = infer_format(path) if fmt == "auto" else fmt
    if layer is not None and fmt != "h5ad":
        raise InputError(f"{path}: data.layer is set but the file is not .h5ad")
    if fmt in _DELIMITERS:
        table = _read_delimited(path, fmt, text_columns or [])
    elif fmt == "parquet":
        try:
            table = pd.read_parquet(path)
        except Exception as err:  # noqa: BLE001 - pyarrow raises several error types
            raise InputError(f"{path}: not a readable Parquet file: {err}") from None
        table = table.reset_index(drop=table.index.name is None)
    elif fmt == "h5ad":
        table = _read_h5ad(path, layer)
    else:
        raise InputError(f"{path}: unknown format {fmt!r}")
    if table.shape[0] == 0:
        raise InputError(f"{path}: the table has a header but no data rows")
    table.columns = [str(c) for c in table.columns]
    dup = table.columns[table.columns.duplicated()].tolist()
    if dup:
        raise InputError(f"{path}: column names appear more than once: {dup[:5]}; rename them")
    return table


def row_location(path: str | Path, row: int, fmt: str = "auto") -> str:
    """Describe where row ``row`` (0-based data row) of a table lies, for error messages."""
    fmt = infer_format(path) if fmt == "auto" else fmt
    if fmt in _DELIMITERS:
        return f"line {row + 2}"
    return f"row {row + 1}"


def sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Return the SHA-256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_json(obj: Any, path: str | Path) -> None:
    """Write ``obj`` as sorted, indented JSON (NaN written as null) so reruns are byte-identical."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not np.isfinite(value):
            return None
        return value

    Path(path).write_text(json.dumps(clean(obj), indent=2, sort_keys=True) + "\n")


def read_json(path: str | Path) -> Any:
    """Read a JSON file written by :func:`write_json`."""
    return json.loads(Path(path).read_text())
