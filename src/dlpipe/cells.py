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
HARMONY_KEY, COMBAT_KEY = "X_harmony", "X_combat"
#: Column prefixes of the latent dataset: the deep model reads scVI, the baseline the PCA.
LATENT_PREFIX, PCA_PREFIX = "scVI_", "PC_"
#: Integration methods (config name → display name, obsm key), in the order of the schema's
#: ``integration.methods``; ``pca`` is the unintegrated reference every method is scored against.
METHODS = {
    "pca": ("PCA (unintegrated)", PCA_KEY),
    "harmony": ("Harmony", HARMONY_KEY),
    "combat": ("ComBat", COMBAT_KEY),
    "scvi": ("scVI", LATENT_KEY),
    "scanvi": ("scANVI", SCANVI_KEY),
}
#: scib metrics that are 0 for the unintegrated embedding by construction (variance explained
#: by batch, relative to it): shown, but left out of aggregates so they cannot decide a ranking.
BY_CONSTRUCTION = ("PCR comparison",)
#: Methods trained on the cell labels: their label (bio conservation) scores are optimistic.
SUPERVISED = frozenset({"scanvi"})
#: obs columns of scANVI's label transfer: most probable label, its probability, and the label
#: kept (``unknown`` below ``integration.label_confidence``).
PREDICTION, PROBABILITY, TRANSFERRED = "scanvi_prediction", "scanvi_probability", "scanvi_label"
UNKNOWN = "unknown"


def umap_key(method: str) -> str:
    """Return the obsm key of a method's UMAP (scVI's is scanpy's default ``X_umap``)."""
    return "X_umap" if method == "scvi" else f"X_umap_{method}"


def embeddings(methods: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Display name → obsm key of the given methods, in the canonical order of :data:`METHODS`."""
    return {METHODS[m][0]: METHODS[m][1] for m in METHODS if m in methods}


def methods_of(adata: ad.AnnData) -> list[str]:
    """Integration methods recorded in an integrated ``.h5ad`` (files of older runs: scVI, PCA)."""
    recorded = adata.uns.get("dlpipe", {}).get("methods")
    if recorded is None:
        return ["pca", "scvi"]
    return [str(m) for m in recorded]


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
