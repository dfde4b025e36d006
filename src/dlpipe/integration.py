"""Batch integration of single cells with scVI, and scANVI label transfer.

The counts of a single-cell experiment are read and checked by the modality
(:mod:`dlpipe.modalities.singlecell`). :func:`integrate` selects highly variable genes on the
counts (batch-aware), trains scVI (scvi-tools; seeded through ``scvi.settings.seed``), adds the
unintegrated PCA baseline, UMAPs and Leiden clusters (scanpy) and, for ``integration.method:
scanvi``, transfers labels to the unlabelled cells with scANVI. :mod:`dlpipe.integration_benchmark`
scores the result with scib-metrics. What is fitted on which cells (scVI and the PCA on all
cells without labels; scANVI on every label, so it only labels the unlabelled cells) is set out
in the modality's docstring.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import scvi

from dlpipe.cells import (
    LATENT_KEY,
    PCA_KEY,
    SCANVI_KEY,
    UMAP_KEYS,
    UNLABELLED,
    genes_detected_per_batch,
    labels_of,
)
from dlpipe.train import accelerator_settings

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Genes.


def select_genes(
    adata: ad.AnnData, batch_column: str, n_top_genes: int | None
) -> tuple[np.ndarray, int]:
    """Genes for integration: detected in every batch, then the most variable ones.

    Highly variable genes are ranked with scanpy's ``seurat_v3`` flavour on the counts, per
    batch (``batch_key``), which ranks first the genes variable in most batches.

    Parameters
    ----------
    adata
        Counts (``X``).
    batch_column
        obs column of batches.
    n_top_genes
        Number of genes to keep; ``None`` keeps every shared gene.

    Returns
    -------
    tuple
        Boolean mask over ``adata.var_names`` and the number of shared genes.
    """
    detected = genes_detected_per_batch(adata, adata.obs[batch_column])
    shared = np.logical_and.reduce(list(detected.values()))
    n_shared = int(shared.sum())
    if n_top_genes is None or n_top_genes >= n_shared:
        return shared, n_shared
    sub = adata[:, shared].copy()
    sub.obs[batch_column] = sub.obs[batch_column].astype(str)
    sc.pp.highly_variable_genes(
        sub, n_top_genes=n_top_genes, flavor="seurat_v3", batch_key=batch_column
    )
    mask = np.zeros(adata.n_vars, dtype=bool)
    mask[np.flatnonzero(shared)[sub.var["highly_variable"].to_numpy()]] = True
    return mask, n_shared


# ---------------------------------------------------------------------------------------------
# Integration.


@dataclass
class Integration:
    """The result of :func:`integrate`.

    Attributes
    ----------
    adata
        Cells × selected genes: log-normalised ``X``, raw ``layers['counts']``,
        ``obsm['X_scVI']``, ``obsm['X_pca']``, UMAPs, ``obs['leiden']`` and, with scANVI,
        ``obs['scanvi_prediction']`` / ``obs['scanvi_probability']``.
    scvi_model, scanvi_model
        The trained scvi-tools models (``scanvi_model`` is ``None`` without scANVI).
    summary
        Counts and training facts for the report.
    history
        Per-epoch scVI losses.
    """

    adata: ad.AnnData
    scvi_model: Any
    scanvi_model: Any = None
    summary: dict[str, Any] = field(default_factory=dict)
    history: pd.DataFrame | None = None


def _history(model: Any) -> pd.DataFrame:
    """scvi-tools' per-epoch history as one table (epoch, elbo_train, elbo_validation, …)."""
    frames = [frame for frame in model.history.values() if isinstance(frame, pd.DataFrame)]
    table = pd.concat(frames, axis=1)
    table.index.name = "epoch"
    return table.reset_index()


def integrate(
    adata: ad.AnnData,
    exp: Mapping[str, Any],
    threads: int = 1,
) -> Integration:
    """Integrate the batches of checked counts with scVI (and scANVI label transfer if asked).

    Parameters
    ----------
    adata
        Counts from :func:`dlpipe.io.h5ad.read_counts`, checked by
        :func:`dlpipe.modalities.singlecell.check_singlecell`.
    exp
        The experiment's validated config (``seed``, ``data``, ``integration``).
    threads
        CPU threads for torch.

    Returns
    -------
    Integration
        The integrated AnnData, the trained models, a summary and the training history.
    """
    data, cfg, seed = exp["data"], exp["integration"], int(exp["seed"])
    batch_col, label_col = data["batch_column"], data["label_column"]
    scvi.settings.seed = seed
    scvi.settings.num_threads = max(1, threads)
    scvi.settings.dl_num_workers = 0
    n_cells_in, n_genes_in = adata.n_obs, adata.n_vars
    genes, n_shared = select_genes(adata, batch_col, cfg["n_top_genes"])
    adata = adata[:, genes].copy()
    # A cell without counts in the selected genes has no library size for scVI.
    totals = np.asarray(adata.X.sum(axis=1)).ravel()
    empty = totals == 0
    if empty.any():
        log.warning("%d cells have no counts in the selected genes; left out", int(empty.sum()))
        adata = adata[~empty].copy()
        totals = totals[~empty]
    adata.obs[batch_col] = pd.Categorical(adata.obs[batch_col].astype(str))
    labels = labels_of(adata, label_col)
    adata.obs[label_col] = pd.Categorical(labels)
    adata.obs["total_counts"] = totals
    adata.layers["counts"] = adata.X.copy()

    scvi.model.SCVI.setup_anndata(adata, layer="counts", batch_key=batch_col)
    model = scvi.model.SCVI(
        adata,
        n_latent=cfg["n_latent"],
        n_layers=cfg["n_layers"],
        n_hidden=cfg["n_hidden"],
        dropout_rate=cfg["dropout_rate"],
        gene_likelihood=cfg["gene_likelihood"],
    )
    accel = accelerator_settings({"device": cfg["device"], "devices": 1})
    model.train(
        max_epochs=cfg["max_epochs"],
        batch_size=cfg["batch_size"],
        early_stopping=cfg["early_stopping"],
        early_stopping_patience=cfg["patience"],
        plan_kwargs={"lr": cfg["learning_rate"]},
        enable_progress_bar=False,
        **accel,
    )
    adata.obsm[LATENT_KEY] = np.asarray(model.get_latent_representation(), dtype=np.float32)
    history = _history(model)
    summary: dict[str, Any] = {
        "n_cells_in": n_cells_in,
        "n_genes_in": n_genes_in,
        "n_genes_shared": n_shared,
        "n_genes_used": int(genes.sum()),
        "n_cells_without_counts": int(empty.sum()),
        "n_cells": adata.n_obs,
        "cells_per_batch": adata.obs[batch_col].value_counts().sort_index().to_dict(),
        "labelled_cells": int(labels.notna().sum()),
        "unlabelled_cells": int(labels.isna().sum()),
        "method": cfg["method"],
        "epochs_trained": len(history),
        "max_epochs": cfg["max_epochs"],
        "final_elbo": {
            col: float(history[col].iloc[-1])
            for col in ("elbo_train", "elbo_validation")
            if col in history
        },
    }

    scanvi_model = None
    if cfg["method"] == "scanvi":
        scanvi_model = _label_transfer(adata, model, label_col, cfg, accel)
        unlabelled = labels.isna().to_numpy()
        predicted = adata.obs.loc[unlabelled, "scanvi_prediction"]
        summary["scanvi"] = {
            "epochs": cfg["scanvi_max_epochs"],
            "predicted_unlabelled": predicted.astype(str).value_counts().to_dict(),
            "mean_probability_unlabelled": float(
                adata.obs.loc[unlabelled, "scanvi_probability"].mean()
            )
            if unlabelled.any()
            else None,
        }

    # The unintegrated baseline: PCA of log-normalised counts of the same genes.
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    n_pcs = min(cfg["n_pcs"], adata.n_vars - 1, adata.n_obs - 1)
    sc.tl.pca(adata, n_comps=n_pcs, svd_solver="arpack", random_state=seed)
    adata.obsm[PCA_KEY] = np.asarray(adata.obsm[PCA_KEY], dtype=np.float32)
    # UMAP of the unintegrated PCA for the report; its graph is not kept.
    sc.pp.neighbors(
        adata, n_neighbors=cfg["n_neighbors"], use_rep=PCA_KEY, random_state=seed, key_added="pre"
    )
    sc.tl.umap(adata, random_state=seed, neighbors_key="pre")
    adata.obsm[UMAP_KEYS[PCA_KEY]] = adata.obsm.pop("X_umap")
    for key in ("pre_distances", "pre_connectivities"):
        del adata.obsp[key]
    del adata.uns["pre"]
    # The neighbours, UMAP and clusters kept are those of the integrated space.
    sc.pp.neighbors(adata, n_neighbors=cfg["n_neighbors"], use_rep=LATENT_KEY, random_state=seed)
    sc.tl.umap(adata, random_state=seed)
    sc.tl.leiden(
        adata,
        resolution=cfg["leiden_resolution"],
        random_state=seed,
        flavor="igraph",
        n_iterations=2,
        directed=False,
    )
    summary["n_clusters"] = int(adata.obs["leiden"].nunique())
    summary["n_pcs"] = n_pcs
    adata.uns["dlpipe"] = {"batch_column": batch_col, "label_column": label_col}
    return Integration(adata, model, scanvi_model, summary, history)


def _label_transfer(
    adata: ad.AnnData,
    model: Any,
    label_col: str,
    cfg: Mapping[str, Any],
    accel: Mapping[str, Any],
) -> Any:
    """Train scANVI from the scVI model and write its predictions into ``adata.obs``."""
    known = adata.obs[label_col].astype(object)
    adata.obs["_scanvi_labels"] = pd.Categorical(known.where(known.notna(), UNLABELLED))
    scanvi = scvi.model.SCANVI.from_scvi_model(
        model, unlabeled_category=UNLABELLED, labels_key="_scanvi_labels"
    )
    scanvi.train(
        max_epochs=cfg["scanvi_max_epochs"],
        batch_size=cfg["batch_size"],
        enable_progress_bar=False,
        **accel,
    )
    proba = scanvi.predict(soft=True)
    proba = proba[[c for c in proba.columns if c != UNLABELLED]]
    adata.obs["scanvi_prediction"] = pd.Categorical(proba.idxmax(axis=1).to_numpy())
    adata.obs["scanvi_probability"] = proba.max(axis=1).to_numpy(dtype=np.float64)
    adata.obsm[SCANVI_KEY] = np.asarray(scanvi.get_latent_representation(), dtype=np.float32)
    del adata.obs["_scanvi_labels"]
    return scanvi


def save_integration(
    result: Integration, adata_path: str | Path, models_dir: str | Path, history_tsv: str | Path
) -> None:
    """Write the integrated ``.h5ad``, the scvi-tools models (their own format) and history."""
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    result.scvi_model.save(models_dir / "scvi", overwrite=True, save_anndata=False)
    if result.scanvi_model is not None:
        result.scanvi_model.save(models_dir / "scanvi", overwrite=True, save_anndata=False)
    adata = result.adata.copy()
    # scvi-tools' registry in uns holds objects h5ad cannot store.
    for key in [k for k in adata.uns if k.startswith("_scvi")]:
        del adata.uns[key]
    adata.write_h5ad(adata_path, compression="gzip")
    if result.history is not None:
        result.history.to_csv(history_tsv, sep="\t", index=False, float_format="%.6g")
