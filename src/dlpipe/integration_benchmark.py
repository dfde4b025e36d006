"""How well an integration mixed batches and kept cell types apart: scib-metrics against PCA.

scib-metrics' benchmark (Luecken et al. 2022) on the embeddings of the integrated ``.h5ad``, with
exact nearest neighbours so that the scores are deterministic.
"""

from __future__ import annotations

import logging
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
from scib_metrics.benchmark import BatchCorrection, Benchmarker, BioConservation
from scib_metrics.nearest_neighbors import NeighborsResults
from sklearn.neighbors import NearestNeighbors

from dlpipe.cells import EMBEDDINGS, PCA_KEY
from dlpipe.errors import InputError

log = logging.getLogger(__name__)

#: scib-metrics' weighting of the two metric families (Luecken et al. 2022).
SCIB_WEIGHTS = {"Batch correction": 0.4, "Bio conservation": 0.6}
#: scib-metrics builds 15-, 50- and 90-neighbour graphs: a scored set needs more cells.
SCIB_MIN_CELLS = 91


def exact_neighbors(X: np.ndarray, k: int) -> Any:  # noqa: N803
    """Exact k nearest neighbours (scikit-learn) as scib-metrics' ``NeighborsResults``.

    Exact search keeps the metrics deterministic; scib-metrics' default (pynndescent) is an
    approximate, randomised search meant for atlases of millions of cells.
    """
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
