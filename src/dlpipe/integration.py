"""Batch integration of single cells, methods side by side, and scANVI label transfer.

The counts of a single-cell experiment are read and checked by the modality
(:mod:`dlpipe.modalities.singlecell`). :func:`integrate` selects highly variable genes on the
counts (batch-aware) and embeds the same cells in the same genes with each method of
``integration.methods``: the unintegrated PCA of log-normalised counts (the reference), Harmony
(harmonypy) on that PCA, ComBat (scanpy) before a PCA, scVI (scvi-tools) on the counts and, with
labels, scANVI from the scVI model, which also transfers labels to the cells it saw no label of.
Every method is seeded. :mod:`dlpipe.integration_benchmark` scores the embeddings with
scib-metrics and states a verdict. What is fitted on which cells (all of them, without labels,
except scANVI) is set out in the modality's docstring.
"""

from __future__ import annotations

import logging
import time
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
    COMBAT_KEY,
    HARMONY_KEY,
    LATENT_KEY,
    METHODS,
    PCA_KEY,
    PREDICTION,
    PROBABILITY,
    SCANVI_KEY,
    TRANSFERRED,
    UNKNOWN,
    UNLABELLED,
    genes_detected_per_batch,
    labels_of,
    umap_key,
)
from dlpipe.train import accelerator_settings

log = logging.getLogger(__name__)

#: Fewest accepted transfers in a batch for its composition to be flagged as dominated.
MIN_FLAGGED = 10


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
        Cells × selected genes: log-normalised ``X``, raw ``layers['counts']``, one obsm
        embedding per method (``X_pca``, ``X_harmony``, ``X_combat``, ``X_scVI``,
        ``X_scANVI``) with its UMAP, ``obs['leiden']`` on scVI and, with scANVI,
        ``obs['scanvi_prediction']``, ``obs['scanvi_probability']`` and ``obs['scanvi_label']``.
    scvi_model, scanvi_model
        The trained scvi-tools models (``scanvi_model`` is ``None`` without scANVI).
    summary
        Counts and training facts for the report.
    history
        Per-epoch scVI losses.
    seconds
        Wall time of each method (not written with the results: it differs between runs).
    """

    adata: ad.AnnData
    scvi_model: Any
    scanvi_model: Any = None
    summary: dict[str, Any] = field(default_factory=dict)
    history: pd.DataFrame | None = None
    seconds: dict[str, float] = field(default_factory=dict)


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
    """Embed the cells of checked counts with every method of ``integration.methods``.

    Parameters
    ----------
    adata
        Counts from :func:`dlpipe.io.h5ad.read_counts`, checked by
        :func:`dlpipe.modalities.singlecell.check_singlecell`.
    exp
        The experiment's validated config (``seed``, ``data``, ``integration``).
    threads
        CPU threads for torch and Harmony.

    Returns
    -------
    Integration
        The integrated AnnData, the trained models, a summary, the scVI history and the wall
        time of each method.
    """
    data, cfg, seed = exp["data"], exp["integration"], int(exp["seed"])
    methods = list(cfg["methods"])
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
    seconds: dict[str, float] = {}

    clock = time.perf_counter()
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
    seconds["scvi"] = time.perf_counter() - clock
    history = _history(model)
    summary: dict[str, Any] = {
        "methods": methods,
        "n_cells_in": n_cells_in,
        "n_genes_in": n_genes_in,
        "n_genes_shared": n_shared,
        "n_genes_used": int(genes.sum()),
        "n_cells_without_counts": int(empty.sum()),
        "n_cells": adata.n_obs,
        "cells_per_batch": adata.obs[batch_col].value_counts().sort_index().to_dict(),
        "labelled_cells": int(labels.notna().sum()),
        "unlabelled_cells": int(labels.isna().sum()),
        "epochs_trained": len(history),
        "max_epochs": cfg["max_epochs"],
        "final_elbo": {
            col: float(history[col].iloc[-1])
            for col in ("elbo_train", "elbo_validation")
            if col in history
        },
    }

    scanvi_model = None
    if "scanvi" in methods:
        clock = time.perf_counter()
        scanvi_model = _label_transfer(adata, model, batch_col, label_col, cfg, accel)
        seconds["scanvi"] = time.perf_counter() - clock
        summary["scanvi"] = transfer_summary(
            adata.obs, batch_col, label_col, cfg["hide_labels"], cfg["label_confidence"]
        )
        summary["scanvi"]["epochs"] = cfg["scanvi_max_epochs"]

    # The unintegrated reference: PCA of log-normalised counts of the same genes.
    clock = time.perf_counter()
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    n_pcs = min(cfg["n_pcs"], adata.n_vars - 1, adata.n_obs - 1)
    sc.tl.pca(adata, n_comps=n_pcs, svd_solver="arpack", random_state=seed)
    adata.obsm[PCA_KEY] = np.asarray(adata.obsm[PCA_KEY], dtype=np.float32)
    seconds["pca"] = time.perf_counter() - clock
    if "harmony" in methods:
        clock = time.perf_counter()
        adata.obsm[HARMONY_KEY] = harmony_embedding(
            adata.obsm[PCA_KEY], adata.obs[batch_col], cfg["harmony_theta"], seed, threads
        )
        seconds["harmony"] = time.perf_counter() - clock
    if "combat" in methods:
        clock = time.perf_counter()
        adata.obsm[COMBAT_KEY] = combat_embedding(adata, batch_col, n_pcs, seed)
        seconds["combat"] = time.perf_counter() - clock

    # A UMAP per method for the report; only scVI's neighbour graph is kept (Leiden clusters).
    for method in [m for m in methods if m != "scvi"]:
        sc.pp.neighbors(
            adata,
            n_neighbors=cfg["n_neighbors"],
            use_rep=METHODS[method][1],
            random_state=seed,
            key_added="pre",
        )
        sc.tl.umap(adata, random_state=seed, neighbors_key="pre")
        adata.obsm[umap_key(method)] = adata.obsm.pop("X_umap")
        for obsp_key in ("pre_distances", "pre_connectivities"):
            del adata.obsp[obsp_key]
        del adata.uns["pre"]
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
    adata.uns["dlpipe"] = {"batch_column": batch_col, "label_column": label_col, "methods": methods}
    for method, secs in seconds.items():
        log.info("%s: %.1f s", method, secs)
    return Integration(adata, model, scanvi_model, summary, history, seconds)


def harmony_embedding(
    pcs: np.ndarray, batches: pd.Series, theta: float, seed: int, threads: int = 1
) -> np.ndarray:
    """Harmony (harmonypy) on a PCA: the corrected components, cells × components.

    Parameters
    ----------
    pcs
        Principal components, cells × components.
    batches
        Batch of each cell.
    theta
        Diversity penalty (harmonypy's default 2; higher mixes more).
    seed
        Seed of Harmony's k-means initialisation (results do not depend on ``threads``).
    threads
        Harmony's worker threads.

    Returns
    -------
    numpy.ndarray
        float32, the shape of ``pcs``.
    """
    import harmonypy  # lazy: only experiments that list harmony pay for it

    meta = pd.DataFrame({"batch": batches.astype(str).to_numpy()})
    out = harmonypy.run_harmony(
        np.asarray(pcs, dtype=np.float64), meta, "batch", theta=theta,
        random_state=seed, ncores=max(1, threads), verbose=False,
    )  # fmt: skip
    corrected = np.asarray(out.Z_corr)
    if corrected.shape != pcs.shape:  # harmonypy < 2 returned components × cells
        corrected = corrected.T
    return corrected.astype(np.float32)


def combat_embedding(adata: ad.AnnData, batch_col: str, n_pcs: int, seed: int) -> np.ndarray:
    """ComBat (scanpy) on the log-normalised genes, then the PCA of the corrected values."""
    corrected = ad.AnnData(
        X=adata.X.toarray() if hasattr(adata.X, "toarray") else np.array(adata.X),
        obs=pd.DataFrame({"batch": adata.obs[batch_col].astype(str).to_numpy()},
                         index=adata.obs_names),
    )  # fmt: skip
    sc.pp.combat(corrected, key="batch")
    sc.tl.pca(corrected, n_comps=n_pcs, svd_solver="arpack", random_state=seed)
    return np.asarray(corrected.obsm["X_pca"], dtype=np.float32)


def _label_transfer(
    adata: ad.AnnData,
    model: Any,
    batch_col: str,
    label_col: str,
    cfg: Mapping[str, Any],
    accel: Mapping[str, Any],
) -> Any:
    """Train scANVI from the scVI model and write its predictions into ``adata.obs``.

    scANVI sees the labels of the labelled cells outside ``integration.hide_labels``; every
    cell it saw no label of gets ``scanvi_label``: the most probable label when its probability
    reaches ``integration.label_confidence``, else ``unknown``.
    """
    known = adata.obs[label_col].astype(object)
    hidden = adata.obs[batch_col].astype(str).isin(list(cfg["hide_labels"])).to_numpy()
    seen = known.notna().to_numpy() & ~hidden
    adata.obs["_scanvi_labels"] = pd.Categorical(np.where(seen, known.astype(str), UNLABELLED))
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
    best = proba.idxmax(axis=1).astype(str).to_numpy()
    probability = proba.max(axis=1).to_numpy(dtype=np.float64)
    adata.obs[PREDICTION] = pd.Categorical(best)
    adata.obs[PROBABILITY] = probability
    accepted = np.where(probability >= cfg["label_confidence"], best, UNKNOWN)
    adata.obs[TRANSFERRED] = pd.Categorical(np.where(seen, None, accepted).astype(object))
    adata.obsm[SCANVI_KEY] = np.asarray(scanvi.get_latent_representation(), dtype=np.float32)
    del adata.obs["_scanvi_labels"]
    return scanvi


def transfer_summary(
    obs: pd.DataFrame,
    batch_col: str,
    label_col: str,
    hidden: list[str] | tuple[str, ...],
    threshold: float,
) -> dict[str, Any]:
    """Summarise scANVI's label transfer, with the doubt it admits.

    The reference is the labelled cells scANVI trained on; the targets are the cells it saw no
    label of (unlabelled cells, and the labelled cells of the ``hidden`` batches, whose true
    labels then score the transfer).

    Parameters
    ----------
    obs
        obs of the integrated cells, with the columns :func:`_label_transfer` writes.
    batch_col, label_col
        obs columns of batches and labels.
    hidden
        Batches whose labels scANVI did not see.
    threshold
        Smallest probability of an accepted label; below it the cell is ``unknown``.

    Returns
    -------
    dict
        ``threshold``; ``n_targets``; ``n_unknown``; ``composition`` (batch → label → cells,
        ``unknown`` included); ``reference_fractions`` (label → fraction of the reference);
        ``mean_probability``; ``dominated`` (batches whose accepted labels are dominated by one
        class that the reference is not: batch → label, target fraction, reference fraction);
        and with hidden labels ``hidden_check`` (cells, coverage, accuracy of the accepted
        labels, accuracy of the most probable labels, per-class recall).
    """
    labels = obs[label_col].astype(object)
    batches = obs[batch_col].astype(str)
    targets = obs[TRANSFERRED].notna().to_numpy()
    reference = labels[~targets].dropna().astype(str)
    ref_fraction = reference.value_counts(normalize=True)
    transferred = obs.loc[targets, TRANSFERRED].astype(str)
    composition = {
        str(b): {str(k): int(v) for k, v in part.value_counts().sort_index().items()}
        for b, part in transferred.groupby(batches[targets], observed=True)
    }
    dominated = {}
    for batch, counts in composition.items():
        accepted = {k: v for k, v in counts.items() if k != UNKNOWN}
        total = sum(accepted.values())
        if total < MIN_FLAGGED:
            continue
        top = max(sorted(accepted), key=lambda k: accepted[k])
        share, ref_share = accepted[top] / total, float(ref_fraction.get(top, 0.0))
        # One class takes half or more of a batch's transfers while it is a minority of the
        # reference (under half of its share among the transfers).
        if share >= 0.5 and share >= 2 * ref_share:
            dominated[batch] = {"label": top, "fraction": share, "reference_fraction": ref_share}
    summary: dict[str, Any] = {
        "threshold": float(threshold),
        "hidden_batches": [str(b) for b in hidden],
        "n_reference": len(reference),
        "n_targets": int(targets.sum()),
        "n_unknown": int((transferred == UNKNOWN).sum()),
        "mean_probability": float(obs.loc[targets, PROBABILITY].mean()) if targets.any() else None,
        "composition": composition,
        "reference_fractions": {str(k): float(v) for k, v in ref_fraction.sort_index().items()},
        "dominated": dominated,
    }
    truth = labels[targets]
    known = truth.notna().to_numpy()
    if known.any():
        true = truth[known].astype(str).to_numpy()
        kept = transferred[known].to_numpy()
        best = obs.loc[targets, PREDICTION].astype(str)[known].to_numpy()
        decided = kept != UNKNOWN
        recall = {str(c): float((best[true == c] == c).mean()) for c in sorted(set(true))}
        summary["hidden_check"] = {
            "cells": int(known.sum()),
            "coverage": float(decided.mean()),
            "accuracy_accepted": float((kept[decided] == true[decided]).mean())
            if decided.any()
            else None,
            "accuracy_most_probable": float((best == true).mean()),
            "balanced_accuracy_most_probable": float(np.mean(list(recall.values()))),
            "recall_most_probable": recall,
            "support": {str(c): int((true == c).sum()) for c in sorted(set(true))},
            "reference_support": {str(c): int((reference == c).sum()) for c in sorted(set(true))},
            "labels_absent_from_reference": sorted(set(true) - set(reference)),
        }
    return summary


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
