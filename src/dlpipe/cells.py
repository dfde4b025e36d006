"""Single cells in AnnData: labels, genes detected per batch, the layout of the integrated file.

Shared by the single-cell modality (checks, the latent dataset) and the integration science
(:mod:`dlpipe.integration`); light, so the Snakefile can check a config without scanpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import anndata as ad

#: obs value scANVI sees for cells without a label (must not be a real label).
UNLABELLED = "dlpipe_unlabelled"
#: obsm keys written into the integrated ``.h5ad``.
LATENT_KEY, PCA_KEY, SCANVI_KEY = "X_scVI", "X_pca", "X_scANVI"
UMAP_KEYS = {LATENT_KEY: "X_umap", PCA_KEY: "X_umap_pca"}
#: Column prefixes of the latent dataset: the deep model reads scVI, the baseline the PCA.
LATENT_PREFIX, PCA_PREFIX = "scVI_", "PC_"
#: Embeddings compared by the integration benchmark (display name → obsm key).
EMBEDDINGS = {"scVI": LATENT_KEY, "PCA (unintegrated)": PCA_KEY}


def labels_of(adata: ad.AnnData, label_column: str) -> pd.Series:
    """Cell labels as text, missing (NaN) where a cell has none (empty strings count as none)."""
    labels = adata.obs[label_column]
    text = labels.astype("string").astype(object).where(labels.notna(), np.nan)
    return text.where(text.astype(str).str.strip() != "", np.nan)


def genes_detected_per_batch(adata: ad.AnnData, batches: pd.Series) -> dict[str, np.ndarray]:
    """For each batch, which genes have a count in at least one of its cells."""
    out = {}
    codes = batches.astype(str).to_numpy()
    for batch in sorted(set(codes)):
        rows = adata.X[codes == batch]
        out[batch] = np.asarray((rows > 0).sum(axis=0)).ravel() > 0
    return out
