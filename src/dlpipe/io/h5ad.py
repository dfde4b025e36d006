"""AnnData ``.h5ad`` files: a sample × feature table, or the raw counts of single cells.

anndata is imported when a file is read, not with this module: the Snakefile and every table
job import :mod:`dlpipe.io`, and most of them never open an ``.h5ad``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from dlpipe.errors import InputError

if TYPE_CHECKING:
    import anndata as ad


def read_h5ad(path: str | Path) -> ad.AnnData:
    """Read an ``.h5ad`` file, with one clear error for a file anndata cannot read."""
    import anndata  # lazy: 0.4 s, needed only when an .h5ad is read

    try:
        return anndata.read_h5ad(path)
    except Exception as err:  # noqa: BLE001 - h5py/anndata raise many types for a bad file
        raise InputError(f"{path}: not a readable .h5ad file: {err}") from None


def read_h5ad_table(path: Path, layer: str | None) -> pd.DataFrame:
    """``obs_names``, the ``obs`` annotations, then one column per variable (``X`` or a layer)."""
    adata = read_h5ad(path)
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


def count_problem(matrix: Any) -> str | None:
    """Say why a matrix does not hold raw counts (``None`` when it does).

    Raw counts are finite, non-negative integers. Normalised data hold fractions, log data
    fractions too, scaled data negative values.

    Parameters
    ----------
    matrix
        Dense array or scipy sparse matrix.

    Returns
    -------
    str or None
        A short description of the first problem found.
    """
    values = matrix.data if sp.issparse(matrix) else np.asarray(matrix).ravel()
    if values.size == 0:
        return None
    values = np.asarray(values, dtype=np.float64)
    if not np.isfinite(values).all():
        return "holds NaN or infinite values"
    low = values.min()
    if low < 0:
        return f"holds negative values (minimum {low:.4g}): the data look scaled or centred"
    fractional = np.flatnonzero(values != np.round(values))
    if len(fractional):
        example = values[fractional[0]]
        return (
            f"holds non-integer values (e.g. {example:.4g}; {len(fractional)} entries): the "
            "data look normalised or log-transformed"
        )
    return None


def _matrices(adata: ad.AnnData) -> dict[str | None, Any]:
    """``X`` (key ``None``, as in data.layer) and every layer, by data.layer value."""
    matrices: dict[str | None, Any] = {None: adata.X} if adata.X is not None else {}
    matrices.update({str(name): adata.layers[name] for name in adata.layers})
    return matrices


def _matrix_name(layer: str | None) -> str:
    return "X" if layer is None else f"layer {layer!r}"


def read_counts(path: str | Path, layer: str | None) -> ad.AnnData:
    """Read an ``.h5ad`` and return it with its raw counts in ``X`` (CSR, float32).

    Parameters
    ----------
    path
        The ``.h5ad`` file.
    layer
        Layer of raw counts, or ``None`` for ``X``.

    Returns
    -------
    anndata.AnnData
        Cells × genes with counts in ``X``; ``obs`` and ``var`` as in the file, layers dropped.

    Raises
    ------
    InputError
        If the file cannot be read, the layer is absent, or the matrix is not raw counts (the
        message names a layer that does hold counts, when there is one).
    """
    import anndata  # lazy: 0.4 s, needed only when an .h5ad is read

    path = Path(path)
    adata = read_h5ad(path)
    if layer is not None and layer not in adata.layers:
        available = ", ".join(adata.layers.keys()) or "none"
        raise InputError(
            f"{path}: layer {layer!r} named by data.layer not found; available layers: "
            f"{available} (data.layer: null reads X)"
        )
    where = _matrix_name(layer)
    matrix = adata.layers[layer] if layer else adata.X
    if matrix is None:
        raise InputError(
            f"{path}: the AnnData object has no X; name the counts layer in data.layer"
        )
    problem = count_problem(matrix)
    if problem:
        counts = [
            name for name, m in _matrices(adata).items() if name != layer and not count_problem(m)
        ]
        if counts:
            setting = "null" if counts[0] is None else counts[0]
            fix = f"{_matrix_name(counts[0])} holds raw counts: set data.layer: {setting}"
        else:
            fix = (
                "no layer holds raw counts; store the unnormalised UMI counts in a layer "
                "(adata.layers['counts'] = ...) and name it in data.layer"
            )
        raise InputError(
            f"{path}: {where} {problem}; scVI models raw counts (non-negative integers). {fix}"
        )
    out = anndata.AnnData(
        X=sp.csr_matrix(matrix, dtype=np.float32),
        obs=adata.obs.copy(),
        var=pd.DataFrame(index=adata.var_names.astype(str)),
    )
    out.obs_names = adata.obs_names.astype(str)
    return out
