r"""Build the single-cell demo data: two batches of human PBMC raw UMI counts in one .h5ad.

Writes ``pbmc_two_batches.h5ad`` into the output folder (default: this script's folder):

- batch ``pbmc68k``: the 700 cells of ``scanpy.datasets.pbmc68k_reduced()`` (shipped inside
  scanpy, no download), whose raw counts are recovered exactly from the log-normalised
  ``.raw`` matrix as ``round(expm1(raw.X) * obs['n_counts'] / 1e4)``; labelled by
  ``bulk_labels`` (10 cell types);
- batch ``celltypist``: the 559 cells of ``celltypist/data/samples/sample_cell_by_gene.csv``
  from the ``celltypist`` wheel (raw UMI counts), unlabelled.

Genes: the 764 genes both batches measure, in pbmc68k's order. ``X`` holds the counts as a
compressed sparse (CSR, float32) matrix; ``obs`` holds ``batch``, ``cell_type`` (missing for
the celltypist cells) and ``n_counts_source`` (pbmc68k's library size over all its genes).

    pip download --no-deps -d wheels celltypist==1.7.1
    python resources/make_singlecell_resources.py wheels/celltypist-1.7.1-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import io
import logging
import zipfile
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

log = logging.getLogger("make_singlecell_resources")

SAMPLE_MEMBER = "celltypist/data/samples/sample_cell_by_gene.csv"
OUT_NAME = "pbmc_two_batches.h5ad"


def pbmc68k_counts() -> ad.AnnData:
    """Return the 700 pbmc68k_reduced cells as raw counts, labelled by ``bulk_labels``."""
    import scanpy as sc

    reduced = sc.datasets.pbmc68k_reduced()
    raw = reduced.raw.to_adata()
    lognorm = raw.X.toarray() if sp.issparse(raw.X) else np.asarray(raw.X)
    size = reduced.obs["n_counts"].to_numpy(dtype=np.float64)[:, None]
    counts = np.expm1(lognorm.astype(np.float64)) * size / 1e4
    # float32 storage of the log values leaves at most ~0.1 of rounding noise per entry.
    deviation = float(np.abs(counts - np.round(counts)).max())
    if deviation > 0.25:
        raise ValueError(f"pbmc68k counts are not integers after recovery (off by {deviation})")
    obs = pd.DataFrame(
        {
            "batch": "pbmc68k",
            "cell_type": reduced.obs["bulk_labels"].astype(str).to_numpy(),
            "n_counts_source": size[:, 0],
        },
        index=reduced.obs_names.astype(str),
    )
    return ad.AnnData(
        X=sp.csr_matrix(np.round(counts).astype(np.float32)),
        obs=obs,
        var=pd.DataFrame(index=raw.var_names.astype(str)),
    )


def celltypist_counts(wheel: Path) -> ad.AnnData:
    """Return the 559 unlabelled cells of celltypist's sample (raw UMI counts, 32,786 genes)."""
    with zipfile.ZipFile(wheel) as archive:
        table = pd.read_csv(io.BytesIO(archive.read(SAMPLE_MEMBER)), index_col=0)
    values = table.to_numpy(dtype=np.float64)
    if values.min() < 0 or np.abs(values - np.round(values)).max() > 1e-6:
        raise ValueError(f"{SAMPLE_MEMBER} does not hold raw counts")
    obs = pd.DataFrame(
        {"batch": "celltypist", "cell_type": np.nan, "n_counts_source": values.sum(axis=1)},
        index=[f"celltypist_{name}" for name in table.index.astype(str)],
    )
    return ad.AnnData(
        X=sp.csr_matrix(np.round(values).astype(np.float32)),
        obs=obs,
        var=pd.DataFrame(index=table.columns.astype(str)),
    )


def build(wheel: Path) -> ad.AnnData:
    """Return both batches on their shared genes (pbmc68k's gene order)."""
    first, second = pbmc68k_counts(), celltypist_counts(wheel)
    genes = [g for g in first.var_names if g in set(second.var_names)]
    log.info("%d of %d pbmc68k genes are in the celltypist sample", len(genes), first.n_vars)
    merged = ad.concat([first[:, genes], second[:, genes]], join="inner", merge="same")
    merged.obs["batch"] = pd.Categorical(merged.obs["batch"], ["pbmc68k", "celltypist"])
    merged.obs["cell_type"] = merged.obs["cell_type"].astype("category")
    merged.X = sp.csr_matrix(merged.X, dtype=np.float32)
    merged.uns["source"] = {
        "pbmc68k": "scanpy.datasets.pbmc68k_reduced(): round(expm1(raw.X) * n_counts / 1e4)",
        "celltypist": SAMPLE_MEMBER + " (celltypist wheel)",
    }
    return merged


def main() -> None:
    """Build the file from the celltypist wheel named on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help="celltypist wheel (pip download --no-deps)")
    parser.add_argument("-o", "--outdir", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    merged = build(args.wheel)
    out = args.outdir / OUT_NAME
    merged.write_h5ad(out, compression="gzip")
    counts = merged.obs["batch"].value_counts().to_dict()
    log.info("%s: %d cells × %d genes %s", out, merged.n_obs, merged.n_vars, counts)


if __name__ == "__main__":
    main()
