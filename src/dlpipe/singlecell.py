"""Single-cell experiments: raw-count checks, scVI integration, scib-metrics, the latent dataset.

A single-cell experiment starts from one ``.h5ad`` of raw counts (``X`` or a named layer) with a
batch column and a cell-type column in ``obs``. :func:`load_counts` reads it and
:func:`check_singlecell` checks it before anything is fitted. :func:`integrate` selects highly
variable genes on the counts (batch-aware), trains scVI (scvi-tools; seeded through
``scvi.settings.seed``), adds the unintegrated PCA baseline, UMAPs and Leiden clusters (scanpy)
and, for ``integration.method: scanvi``, transfers labels to the unlabelled cells with scANVI.
:func:`scib_table` scores scVI against the PCA with scib-metrics, and :func:`latent_dataset`
turns the labelled cells into the tabular dataset that the cross-validated classification reads.

What is fitted on which cells: scVI and the PCA are fitted once, on every cell, without labels
(transductive and label-free, as integration is used in practice); the classifiers, their
scaler and early stopping see the training side of each fold only. scANVI is trained on the
labels of every labelled cell, so its latent space and predictions never feed the
classification: they only label the cells that had no label.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from dlpipe.errors import InputError

if TYPE_CHECKING:
    import anndata as ad

log = logging.getLogger(__name__)

#: obs value scANVI sees for cells without a label (must not be a real label).
UNLABELLED = "dlpipe_unlabelled"
#: obsm keys written into the integrated ``.h5ad``.
LATENT_KEY, PCA_KEY, SCANVI_KEY = "X_scVI", "X_pca", "X_scANVI"
UMAP_KEYS = {LATENT_KEY: "X_umap", PCA_KEY: "X_umap_pca"}
#: Column prefixes of the latent dataset: the deep model reads scVI, the baseline the PCA.
LATENT_PREFIX, PCA_PREFIX = "scVI_", "PC_"
#: Embeddings compared by the integration benchmark (display name → obsm key).
EMBEDDINGS = {"scVI": LATENT_KEY, "PCA (unintegrated)": PCA_KEY}
#: scib-metrics' weighting of the two metric families (Luecken et al. 2022).
SCIB_WEIGHTS = {"Batch correction": 0.4, "Bio conservation": 0.6}
#: scib-metrics builds 15-, 50- and 90-neighbour graphs: a scored set needs more cells.
SCIB_MIN_CELLS = 91


# ---------------------------------------------------------------------------------------------
# Reading and checking the counts.


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


def load_counts(path: str | Path, layer: str | None) -> ad.AnnData:
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
    import anndata as ad

    path = Path(path)
    try:
        adata = ad.read_h5ad(path)
    except Exception as err:  # noqa: BLE001 - h5py/anndata raise many types for a bad file
        raise InputError(f"{path}: not a readable .h5ad file: {err}") from None
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
    out = ad.AnnData(
        X=sp.csr_matrix(matrix, dtype=np.float32),
        obs=adata.obs.copy(),
        var=pd.DataFrame(index=adata.var_names.astype(str)),
    )
    out.obs_names = adata.obs_names.astype(str)
    return out


def _obs_column(adata: ad.AnnData, column: str, key: str, path: str) -> pd.Series:
    if column not in adata.obs.columns:
        shown = ", ".join(map(str, adata.obs.columns[:10])) or "none"
        more = " …" if adata.obs.shape[1] > 10 else ""
        raise InputError(
            f"{path}: obs column {column!r} named by config key {key} not found; obs has "
            f"columns: {shown}{more}"
        )
    return adata.obs[column]


def labels_of(adata: ad.AnnData, label_column: str) -> pd.Series:
    """Cell labels as text, missing (NaN) where a cell has none (empty strings count as none)."""
    labels = adata.obs[label_column]
    text = labels.astype("string").astype(object).where(labels.notna(), np.nan)
    return text.where(text.astype(str).str.strip() != "", np.nan)


def check_singlecell(adata: ad.AnnData, exp: Mapping[str, Any], name: str = "experiment") -> None:
    """Check the batches, labels and genes of a single-cell experiment before any fitting.

    Parameters
    ----------
    adata
        Counts from :func:`load_counts`.
    exp
        The experiment's validated config (``data``, ``integration``; with ``cv`` the labelled
        classes are also checked against the CV plan, as :func:`latent_dataset` does later).
    name
        Experiment name (for messages).

    Raises
    ------
    InputError
        A batch or label column absent, a batch too small, no gene detected in every batch,
        no labelled cell (scANVI, or the classification), or classes too small for the CV plan.
    """
    from dlpipe.dataset import check_class_sizes

    data, cfg = exp["data"], exp["integration"]
    path, key = str(data["path"]), f"experiments.{name}.data"
    batches = _obs_column(adata, data["batch_column"], f"{key}.batch_column", path)
    _obs_column(adata, data["label_column"], f"{key}.label_column", path)
    if data["group_column"]:
        groups = _obs_column(adata, data["group_column"], f"{key}.group_column", path)
        if groups.isna().any():
            raise InputError(
                f"{path}: obs column {data['group_column']!r} is empty for "
                f"{int(groups.isna().sum())} cells; every cell needs a group"
            )
    if batches.isna().any():
        cells = list(adata.obs_names[batches.isna().to_numpy()][:3])
        raise InputError(
            f"{path}: obs column {data['batch_column']!r} is empty for "
            f"{int(batches.isna().sum())} cells (e.g. {cells}); every cell needs a batch"
        )
    sizes = batches.astype(str).value_counts().sort_index()
    if len(sizes) < 2:
        raise InputError(
            f"{path}: obs column {data['batch_column']!r} holds a single batch "
            f"({sizes.index[0]!r}); integration needs two batches or more"
        )
    small = sizes[sizes < cfg["min_cells_per_batch"]]
    if len(small):
        shown = {str(b): int(n) for b, n in small.items()}
        raise InputError(
            f"{path}: batch(es) {shown} of obs column {data['batch_column']!r} have fewer cells "
            f"than the {cfg['min_cells_per_batch']} integration.min_cells_per_batch asks for; "
            "merge them with a related batch, drop them, or lower integration.min_cells_per_batch"
        )
    detected = genes_detected_per_batch(adata, batches)
    shared = np.logical_and.reduce(list(detected.values()))
    if not shared.any():
        counts = ", ".join(f"{b!r}: {int(d.sum())}" for b, d in detected.items())
        raise InputError(
            f"{path}: no gene has counts in every batch (genes with counts per batch: {counts}); "
            "the batches share no measured gene. Were they concatenated on different gene "
            "identifiers (e.g. Ensembl ids in one, symbols in another)? Map them to one "
            "vocabulary and concatenate with an inner join"
        )
    labels = labels_of(adata, data["label_column"])
    if (labels == UNLABELLED).any():
        raise InputError(
            f"{path}: obs column {data['label_column']!r} uses the reserved value "
            f"{UNLABELLED!r}; leave unlabelled cells empty (NaN) instead"
        )
    if labels.isna().all():
        if cfg["method"] == "scanvi":
            raise InputError(
                f"{path}: integration.method scanvi transfers labels from labelled cells, but "
                f"obs column {data['label_column']!r} is empty for all {adata.n_obs} cells; "
                "label some cells or set integration.method: scvi"
            )
        raise InputError(
            f"{path}: obs column {data['label_column']!r} is empty for all {adata.n_obs} cells; "
            "the cell-type classification needs labelled cells"
        )
    if "cv" in exp:
        counts = labels.dropna().value_counts()
        check_class_sizes(counts, exp["cv"], f"{path}: obs column {data['label_column']!r}")


def genes_detected_per_batch(adata: ad.AnnData, batches: pd.Series) -> dict[str, np.ndarray]:
    """For each batch, which genes have a count in at least one of its cells."""
    out = {}
    codes = batches.astype(str).to_numpy()
    for batch in sorted(set(codes)):
        rows = adata.X[codes == batch]
        out[batch] = np.asarray((rows > 0).sum(axis=0)).ravel() > 0
    return out


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
    import scanpy as sc

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
        Counts from :func:`load_counts`, checked by :func:`check_singlecell`.
    exp
        The experiment's validated config (``seed``, ``data``, ``integration``).
    threads
        CPU threads for torch.

    Returns
    -------
    Integration
        The integrated AnnData, the trained models, a summary and the training history.
    """
    import scanpy as sc
    import scvi

    from dlpipe.train import accelerator_settings

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
    import scvi

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


# ---------------------------------------------------------------------------------------------
# Benchmark of the integration (scib-metrics).


def exact_neighbors(X: np.ndarray, k: int) -> Any:  # noqa: N803
    """Exact k nearest neighbours (scikit-learn) as scib-metrics' ``NeighborsResults``.

    Exact search keeps the metrics deterministic; scib-metrics' default (pynndescent) is an
    approximate, randomised search meant for atlases of millions of cells.
    """
    from scib_metrics.nearest_neighbors import NeighborsResults
    from sklearn.neighbors import NearestNeighbors

    k = min(k, len(X))
    distances, indices = NearestNeighbors(n_neighbors=k).fit(X).kneighbors(X)
    return NeighborsResults(indices=indices, distances=distances)


def _benchmarker_run(
    adata: ad.AnnData,
    batch_col: str,
    label_col: str,
    bio: Any,
    batch: Any,
    cells: str,
) -> pd.DataFrame:
    """One scib-metrics Benchmarker run: rows metric, type, cells; one column per embedding."""
    import anndata as ad
    from scib_metrics.benchmark import Benchmarker

    obs = pd.DataFrame(
        {
            batch_col: adata.obs[batch_col].astype(str).to_numpy(),
            label_col: adata.obs[label_col].astype(object).to_numpy(),
        },
        index=adata.obs_names,
    )
    lean = ad.AnnData(obs=obs, obsm={key: adata.obsm[key] for key in EMBEDDINGS.values()})
    bench = Benchmarker(
        lean,
        batch_key=batch_col,
        label_key=label_col,
        embedding_obsm_keys=list(EMBEDDINGS.values()),
        bio_conservation_metrics=bio,
        batch_correction_metrics=batch,
        pre_integrated_embedding_obsm_key=PCA_KEY,
        progress_bar=False,
    )
    bench.prepare(neighbor_computer=exact_neighbors)
    bench.benchmark()
    raw = bench.get_results(min_max_scale=False, clean_names=True)
    types = raw.loc["Metric Type"]
    metrics = [c for c in raw.columns if types[c] != "Aggregate score"]
    table = raw.loc[list(EMBEDDINGS.values()), metrics].T.astype(float)
    table.columns = list(EMBEDDINGS)
    table.insert(0, "cells", cells)
    table.insert(0, "type", [types[m] for m in metrics])
    table.index.name = "metric"
    return table.reset_index()


def scib_table(adata: ad.AnnData, batch_col: str, label_col: str) -> pd.DataFrame:
    """Score scVI against the unintegrated PCA with scib-metrics.

    With every cell labelled this is scib-metrics' standard benchmark on all cells. When some
    cells have no label, the metrics that need labels (bio conservation, and the label-aware
    batch metrics BRAS, kBET per label and graph connectivity) are computed on the labelled
    cells, and the label-free batch metrics (iLISI, PCR comparison) on all cells; no predicted
    label is used. Label-aware batch metrics need labelled cells in two batches or more.

    Parameters
    ----------
    adata
        Integrated cells with ``obsm['X_scVI']`` and ``obsm['X_pca']``.
    batch_col, label_col
        obs columns of batches and labels (missing label = unlabelled).

    Returns
    -------
    pandas.DataFrame
        Columns ``metric``, ``type`` (Batch correction / Bio conservation / Aggregate score),
        ``cells`` (which cells it was computed on), then one column per embedding. The
        aggregates are scib's: the mean of each type, and Total = 0.4 batch + 0.6 bio.
    """
    from scib_metrics.benchmark import BatchCorrection, BioConservation

    labelled = adata.obs[label_col].notna().to_numpy()
    n_all, n_lab = adata.n_obs, int(labelled.sum())
    runs: list[tuple[ad.AnnData, Any, Any, str]] = []
    if labelled.all():
        runs.append((adata, BioConservation(), BatchCorrection(), f"all {n_all}"))
    else:
        sub = adata[labelled]
        label_aware = None
        if sub.obs[batch_col].nunique() >= 2:
            label_aware = BatchCorrection(ilisi_knn=False, pcr_comparison=False)
        runs.append((sub, BioConservation(), label_aware, f"labelled {n_lab}"))
        label_free = BatchCorrection(bras=False, kbet_per_label=False, graph_connectivity=False)
        runs.append((adata, None, label_free, f"all {n_all}"))
    tables = []
    for cells, bio, batch, text in runs:
        if cells.n_obs < SCIB_MIN_CELLS:
            log.warning("scib metrics on %s cells skipped: fewer than %d", text, SCIB_MIN_CELLS)
            continue
        tables.append(_benchmarker_run(cells, batch_col, label_col, bio, batch, text))
    if not tables:
        raise InputError(
            f"too few cells ({n_all}, {n_lab} labelled) for scib-metrics' 90-neighbour graphs; "
            "set integration.benchmark: false"
        )
    table = pd.concat(tables, ignore_index=True)
    return pd.concat([table, aggregate_scores(table)], ignore_index=True)


def aggregate_scores(table: pd.DataFrame) -> pd.DataFrame:
    """Compute scib's aggregate rows: mean per metric type, Total = 0.4 batch + 0.6 bio."""
    columns = list(EMBEDDINGS)
    means = table.groupby("type")[columns].mean()
    rows = [
        {"metric": kind, "type": "Aggregate score", "cells": "", **means.loc[kind]}
        for kind in means.index
    ]
    if set(SCIB_WEIGHTS) <= set(means.index):
        total = sum(weight * means.loc[kind] for kind, weight in SCIB_WEIGHTS.items())
        rows.append({"metric": "Total", "type": "Aggregate score", "cells": "", **total})
    return pd.DataFrame(rows, columns=table.columns)


# ---------------------------------------------------------------------------------------------
# The labelled cells as a tabular dataset.


def latent_dataset(path: str | Path, exp: Mapping[str, Any], name: str = "experiment") -> Any:
    """Turn the labelled cells of an integrated ``.h5ad`` into a classification dataset.

    Features are the scVI latent dimensions (``scVI_1`` …, read by the deep model) and the
    principal components of the unintegrated data (``PC_1`` …, read by the logistic-regression
    baseline); ``feature_sets`` records which learner reads which.

    Parameters
    ----------
    path
        ``integrated.h5ad`` written by :func:`save_integration`.
    exp
        The experiment's validated config.
    name
        Experiment name (for messages).

    Returns
    -------
    dlpipe.dataset.TabularDataset
        One row per labelled cell, indexed by obs name.
    """
    import anndata as ad

    from dlpipe.dataset import ID_INDEX, TabularDataset, check_class_sizes
    from dlpipe.io import sha256

    data = exp["data"]
    adata = ad.read_h5ad(path)
    label_col, group = data["label_column"], data["group_column"]
    labels = labels_of(adata, label_col)
    keep = labels.notna().to_numpy()
    latent = adata.obsm[LATENT_KEY][keep]
    pcs = adata.obsm[PCA_KEY][keep]
    latent_cols = [f"{LATENT_PREFIX}{i + 1}" for i in range(latent.shape[1])]
    pca_cols = [f"{PCA_PREFIX}{i + 1}" for i in range(pcs.shape[1])]
    table = pd.DataFrame(
        np.hstack([latent, pcs]).astype(np.float64),
        columns=latent_cols + pca_cols,
        index=pd.Index(adata.obs_names[keep].astype(str), name=ID_INDEX),
    )
    table[label_col] = labels[keep].astype(str).to_numpy()
    if group:
        table[group] = adata.obs.loc[keep, group].astype(str).to_numpy()
    counts = table[label_col].value_counts()
    check_class_sizes(counts, exp["cv"], f"{path}: labelled cells of obs column {label_col!r}")
    meta = {
        "source": str(path),
        "sha256": sha256(path),
        "n_samples": len(table),
        "n_features": len(latent_cols) + len(pca_cols),
        "n_categorical": 0,
        "missing_values": 0,
        "class_counts": {str(c): int(n) for c, n in counts.items()},
        "unlabelled_cells_left_out": int((~keep).sum()),
    }
    if group:
        meta["n_groups"] = int(table[group].nunique())
    return TabularDataset(
        table=table,
        task="classification",
        feature_columns=latent_cols + pca_cols,
        categorical_columns=[],
        target_columns=[label_col],
        group_column=group,
        classes=sorted(counts.index.tolist()),
        meta=meta,
        feature_sets={"model": latent_cols, "baseline": pca_cols},
    )


# ---------------------------------------------------------------------------------------------
# Figures.


def umap_figure(adata: ad.AnnData, batch_col: str, label_col: str, path: str | Path) -> None:
    """Draw UMAPs of the unintegrated PCA and of scVI by batch, label and transferred label.

    Rows are the embeddings, columns the colourings (scANVI's transferred label only when
    scANVI ran); unlabelled cells are light grey.
    """
    from dlpipe.plots import _save, plt

    colour_by = [(batch_col, "batch"), (label_col, "label")]
    if "scanvi_prediction" in adata.obs:
        colour_by.append(("scanvi_prediction", "scANVI label transfer"))
    # Unintegrated first, then integrated; known and transferred labels share their colours.
    rows = [(title, UMAP_KEYS[key]) for title, key in reversed(EMBEDDINGS.items())]
    label_names = sorted(adata.obs[label_col].dropna().astype(str).unique())
    fig, axes = plt.subplots(
        len(rows),
        len(colour_by),
        figsize=(4.6 * len(colour_by) + 2.2, 4.2 * len(rows)),
        squeeze=False,
    )
    for j, (column, what) in enumerate(colour_by):
        values = adata.obs[column].astype(object)
        categories = sorted(values.dropna().astype(str).unique())
        if column != batch_col:
            categories = label_names + [c for c in categories if c not in label_names]
        cmap = plt.get_cmap("tab10" if len(categories) <= 10 else "tab20")
        for i, (title, umap_key) in enumerate(rows):
            ax = axes[i, j]
            xy = adata.obsm[umap_key]
            missing = values.isna().to_numpy()
            if missing.any():
                ax.scatter(*xy[missing].T, s=3, c="#d0d0d0", label="unlabelled", rasterized=True)
            for k, cat in enumerate(categories):
                rows_k = (values.astype(str) == cat).to_numpy() & ~missing
                if rows_k.any():
                    ax.scatter(
                        *xy[rows_k].T, s=3, color=cmap(k % cmap.N), label=cat, rasterized=True
                    )
            ax.set_title(f"{title}: {what}", fontsize="medium")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == len(rows) - 1:
                ax.legend(
                    loc="upper left",
                    bbox_to_anchor=(0, -0.02),
                    fontsize="x-small",
                    markerscale=3,
                    ncol=2,
                    frameon=False,
                )
    _save(fig, path)


# ---------------------------------------------------------------------------------------------
# Workflow steps (called by the scripts of rules/singlecell.smk).


def integrate_step(
    name: str, exp: Mapping[str, Any], outputs: Mapping[str, str], threads: int = 1
) -> Integration:
    """Check the counts, integrate them and write the integrate rule's outputs.

    ``outputs`` maps ``adata`` (the integrated ``.h5ad``), ``models`` (folder of the
    scvi-tools models), ``summary`` (JSON) and ``history`` (TSV) to paths.
    """
    from dlpipe.io import sha256, write_json

    data = exp["data"]
    adata = load_counts(data["path"], data["layer"])
    check_singlecell(adata, exp, name)
    log.info("%s: %d cells × %d genes of raw counts", name, adata.n_obs, adata.n_vars)
    result = integrate(adata, exp, threads)
    result.summary.update(source=str(data["path"]), sha256=sha256(data["path"]))
    save_integration(result, outputs["adata"], outputs["models"], outputs["history"])
    write_json(result.summary, outputs["summary"])
    return result


def integration_metrics_step(
    exp: Mapping[str, Any], adata_path: str, scib_tsv: str, umap_png: str
) -> pd.DataFrame:
    """Draw the integration UMAPs and score scVI against the PCA (scib-metrics)."""
    import anndata as ad

    data = exp["data"]
    adata = ad.read_h5ad(adata_path)
    umap_figure(adata, data["batch_column"], data["label_column"], umap_png)
    if exp["integration"]["benchmark"]:
        table = scib_table(adata, data["batch_column"], data["label_column"])
    else:
        table = pd.DataFrame(columns=["metric", "type", "cells", *EMBEDDINGS])
    table.to_csv(scib_tsv, sep="\t", index=False, float_format="%.6g")
    return table
