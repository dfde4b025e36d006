"""How well each integration mixed batches and kept cell types apart, and a verdict.

scib-metrics' benchmark (Luecken et al. 2022) on the embeddings of the integrated ``.h5ad``, with
exact nearest neighbours and one BLAS thread so that the scores are deterministic, and
:func:`integration_verdict`: which methods mixed the batches, which kept the biology, the best
on each axis, and warnings when no method mixed or one mixed by erasing cell types.
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
from threadpoolctl import threadpool_limits

from dlpipe.cells import (
    BY_CONSTRUCTION,
    METHODS,
    PCA_KEY,
    SUPERVISED,
    embeddings,
    methods_of,
)
from dlpipe.errors import InputError

log = logging.getLogger(__name__)

#: scib-metrics' weighting of the two metric families (Luecken et al. 2022).
SCIB_WEIGHTS = {"Batch correction": 0.4, "Bio conservation": 0.6}
#: scib-metrics builds 15-, 50- and 90-neighbour graphs: a scored set needs more cells.
SCIB_MIN_CELLS = 91
#: Batch-mixing metrics that say whether an embedding mixed the batches (BRAS is scib-metrics'
#: batch silhouette).
MIXING_METRICS = ("iLISI", "KBET", "BRAS")


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
    shown: dict[str, str],
) -> pd.DataFrame:
    """One scib-metrics Benchmarker run: rows metric, type, cells; one column per embedding."""
    obs = pd.DataFrame(
        {
            batch_col: adata.obs[batch_col].astype(str).to_numpy(),
            label_col: adata.obs[label_col].astype(object).to_numpy(),
        },
        index=adata.obs_names,
    )
    lean = ad.AnnData(obs=obs, obsm={key: adata.obsm[key] for key in shown.values()})
    bench = Benchmarker(
        lean,
        batch_key=batch_col,
        label_key=label_col,
        embedding_obsm_keys=list(shown.values()),
        bio_conservation_metrics=bio,
        batch_correction_metrics=batch,
        pre_integrated_embedding_obsm_key=PCA_KEY,
        progress_bar=False,
    )
    bench.prepare(neighbor_computer=exact_neighbors)
    # kBET's diffusion maps (ARPACK) give different scores with different BLAS thread counts
    # (Harmony's kBET on the demo: 0.591 with two threads, 0.640 with one): one thread, always.
    with threadpool_limits(limits=1):
        bench.benchmark()
    raw = bench.get_results(min_max_scale=False, clean_names=True)
    types = raw.loc["Metric Type"]
    metrics = [c for c in raw.columns if types[c] != "Aggregate score"]
    table = raw.loc[list(shown.values()), metrics].T.astype(float)
    table.columns = list(shown)
    table.insert(0, "cells", cells)
    table.insert(0, "type", [types[m] for m in metrics])
    table.index.name = "metric"
    return table.reset_index()


def scib_table(adata: ad.AnnData, batch_col: str, label_col: str) -> pd.DataFrame:
    """Score every integration method of the file against the unintegrated PCA (scib-metrics).

    With every cell labelled this is scib-metrics' standard benchmark on all cells. When some
    cells have no label, the metrics that need labels (bio conservation, and the label-aware
    batch metrics BRAS, kBET per label and graph connectivity) are computed on the labelled
    cells, and the label-free batch metrics (iLISI, PCR comparison) on all cells; no predicted
    label is used. Label-aware batch metrics need labelled cells in two batches or more.

    Parameters
    ----------
    adata
        Integrated cells with one obsm embedding per method (``uns['dlpipe']['methods']``).
    batch_col, label_col
        obs columns of batches and labels (missing label = unlabelled).

    Returns
    -------
    pandas.DataFrame
        Columns ``metric``, ``type`` (Batch correction / Bio conservation / Aggregate score),
        ``cells`` (which cells it was computed on), then one column per embedding. The
        aggregates are scib's (the mean of each type, Total = 0.4 batch + 0.6 bio) except that
        PCR comparison, 0 for the unintegrated embedding by construction, is left out.
    """
    shown = embeddings(methods_of(adata))
    labelled = adata.obs[label_col].notna().to_numpy()
    n_all, n_lab = adata.n_obs, int(labelled.sum())
    # Label-aware batch metrics (BRAS, kBET per label, graph connectivity) compare batches
    # within a label: they need a label that occurs in two batches or more.
    shared = shared_labels(adata.obs[labelled], batch_col, label_col)
    runs: list[tuple[ad.AnnData, Any, Any, str]] = []
    if labelled.all() and shared:
        runs.append((adata, BioConservation(), BatchCorrection(), f"all {n_all}"))
    else:
        sub = adata[labelled]
        label_aware = None
        if shared:
            label_aware = BatchCorrection(ilisi_knn=False, pcr_comparison=False)
        else:
            log.warning("no label occurs in two batches: label-aware batch metrics skipped")
        runs.append((sub, BioConservation(), label_aware, f"labelled {n_lab}"))
        label_free = BatchCorrection(bras=False, kbet_per_label=False, graph_connectivity=False)
        runs.append((adata, None, label_free, f"all {n_all}"))
    tables = []
    for cells, bio, batch, text in runs:
        if cells.n_obs < SCIB_MIN_CELLS:
            log.warning("scib metrics on %s cells skipped: fewer than %d", text, SCIB_MIN_CELLS)
            continue
        tables.append(_benchmarker_run(cells, batch_col, label_col, bio, batch, text, shown))
    if not tables:
        raise InputError(
            f"too few cells ({n_all}, {n_lab} labelled) for scib-metrics' 90-neighbour graphs; "
            "set integration.benchmark: false"
        )
    table = pd.concat(tables, ignore_index=True)
    return pd.concat([table, aggregate_scores(table)], ignore_index=True)


def shared_labels(obs: pd.DataFrame, batch_col: str, label_col: str) -> list[str]:
    """Labels that occur in two batches or more (missing labels ignored)."""
    labelled = obs[obs[label_col].notna()]
    batches = labelled.groupby(labelled[label_col].astype(str))[batch_col].nunique()
    return sorted(str(label) for label in batches.index[batches >= 2])


def aggregate_scores(table: pd.DataFrame) -> pd.DataFrame:
    """Compute the aggregate rows: mean per metric type, Total = 0.4 batch + 0.6 bio.

    Metrics that are 0 for the unintegrated embedding by construction (:data:`BY_CONSTRUCTION`)
    are left out of the means.
    """
    columns = [c for c in table.columns if c not in ("metric", "type", "cells")]
    scored = table[~table["metric"].isin(BY_CONSTRUCTION)]
    means = scored.groupby("type")[columns].mean()
    rows = [
        {"metric": kind, "type": "Aggregate score", "cells": "", **means.loc[kind]}
        for kind in means.index
    ]
    if set(SCIB_WEIGHTS) <= set(means.index):
        total = sum(weight * means.loc[kind] for kind, weight in SCIB_WEIGHTS.items())
        rows.append({"metric": "Total", "type": "Aggregate score", "cells": "", **total})
    return pd.DataFrame(rows, columns=table.columns)


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def integration_verdict(
    table: pd.DataFrame,
    margin: float,
    labelled_batches: int,
    n_shared_labels: int | None = None,
) -> dict[str, Any]:
    """Say whether each method mixed the batches and kept the biology, from the scib table.

    A method *mixed the batches* when iLISI, kBET or the batch silhouette (BRAS) is at least
    ``margin`` above the unintegrated PCA's; it *kept the biology* when its bio-conservation
    mean is not more than ``margin`` below the PCA's. The best method on each axis is the one
    with the highest batch-correction (resp. bio-conservation) mean; methods within ``margin``
    of it are named as ties. scANVI, trained on the labels it is scored with, is not ranked on
    biology. Warnings: no method mixed; a method mixed by losing cell-type structure; the
    labelled cells lie in one batch only (merging of different types across batches is then
    invisible to the label metrics).

    Parameters
    ----------
    table
        :func:`scib_table`'s output (metrics, aggregates, one column per embedding).
    margin
        Smallest score difference counted as real (``integration.verdict_margin``).
    labelled_batches
        Number of batches with labelled cells.
    n_shared_labels
        Number of labels that occur in two batches or more (``None``: not known). With labels
        in several batches but none shared, the batches may share no cell type: a warning.

    Returns
    -------
    dict
        ``sentence`` (one sentence), ``warnings`` (list of sentences), ``methods`` (display name
        → mixed, kept, evidence and scores), ``best_batch`` / ``best_bio`` (lists: the best and
        its ties; empty when none beats the reference), ``margin``.
    """
    reference = METHODS["pca"][0]
    supervised = {METHODS[m][0] for m in SUPERVISED}
    scores = table.set_index("metric")
    names = [c for c in table.columns if c not in ("metric", "type", "cells") and c != reference]
    aggregate = scores[scores["type"] == "Aggregate score"]
    has_bio = "Bio conservation" in aggregate.index
    mixing = [m for m in MIXING_METRICS if m in scores.index]
    per: dict[str, dict[str, Any]] = {}
    for name in names:
        gains = {m: float(scores.loc[m, name] - scores.loc[m, reference]) for m in mixing}
        evidence = [m for m in mixing if gains[m] >= margin]
        entry: dict[str, Any] = {
            "mixed": bool(evidence),
            "evidence": {
                m: [float(scores.loc[m, name]), float(scores.loc[m, reference])]
                for m in (evidence or mixing)
            },
            "batch": float(aggregate.loc["Batch correction", name])
            if "Batch correction" in aggregate.index
            else None,
            "supervised": name in supervised,
        }
        if has_bio:
            bio, ref_bio = (float(aggregate.loc["Bio conservation", c]) for c in (name, reference))
            entry.update(bio=bio, bio_reference=ref_bio, kept=bio >= ref_bio - margin)
        per[name] = entry

    def best(key: str, pool: list[str], ref: float | None) -> list[str]:
        values = {n: per[n][key] for n in pool if per[n].get(key) is not None}
        if not values:
            return []
        top = max(values.values())
        if ref is not None and top < ref + margin:
            return []
        leaders = sorted(values, key=lambda n: -values[n])
        return [n for n in leaders if values[n] >= top - margin]

    ref_batch = (
        float(aggregate.loc["Batch correction", reference])
        if "Batch correction" in aggregate.index
        else None
    )
    best_batch = best("batch", [n for n in names if per[n]["mixed"]], ref_batch)
    ref_bio = float(aggregate.loc["Bio conservation", reference]) if has_bio else None
    bio_pool = [n for n in names if not per[n]["supervised"]]
    best_bio = best("bio", bio_pool, None) if has_bio else []

    def mix_text(name: str) -> str:
        metric, (value, ref) = next(iter(per[name]["evidence"].items()))
        return f"{metric} {value:.2f} vs {ref:.2f}"

    warnings: list[str] = []
    mixed = [n for n in names if per[n]["mixed"]]
    if not mixed:
        shown = "; ".join(f"{n}: {mix_text(n)}" for n in names)
        warnings.append(
            f"No method mixed the batches: no iLISI, kBET or batch silhouette is {margin:g} or "
            f"more above the unintegrated PCA ({shown}). The batches may share no cell type, or "
            "differ by more than a batch effect; the embeddings below keep them apart."
        )
        sentence = "No integration method mixed the batches beyond the unintegrated PCA"
    else:
        unmixed = [n for n in names if not per[n]["mixed"]]
        sentence = f"{_join(mixed)} mixed the batches ({'; '.join(mix_text(n) for n in mixed)})"
        if unmixed:
            sentence += f", {_join(unmixed)} did not"
        if has_bio:
            kept = [n for n in mixed if per[n]["kept"]]
            lost = [n for n in mixed if not per[n]["kept"]]
            if kept:
                sentence += (
                    f"; {_join(kept)} kept the cell types (bio conservation "
                    + ", ".join(f"{per[n]['bio']:.2f}" for n in kept)
                    + f" vs {ref_bio:.2f} unintegrated)"
                )
            for name in lost:
                warnings.append(
                    f"{name} mixed the batches but lost cell-type structure (bio conservation "
                    f"{per[name]['bio']:.2f} vs {ref_bio:.2f} unintegrated): it may have merged "
                    "different cell types; do not read cell types off its embedding."
                )
        if best_batch:
            ties = (
                f"; tied within {margin:g} with {_join(best_batch[1:])}" if best_batch[1:] else ""
            )
            sentence += (
                f". Best at mixing: {best_batch[0]} (batch correction "
                f"{per[best_batch[0]]['batch']:.2f} vs {ref_batch:.2f} unintegrated{ties})"
            )
    if has_bio and best_bio:
        leader = best_bio[0]
        ties = f", tied within {margin:g} with {_join(best_bio[1:])}" if best_bio[1:] else ""
        if per[leader]["bio"] >= ref_bio + margin:
            where = f"above the unintegrated {ref_bio:.2f}"
        elif per[leader]["bio"] > ref_bio - margin:
            where = f"a tie with the unintegrated {ref_bio:.2f}"
        else:
            where = f"below the unintegrated {ref_bio:.2f}"
        sentence += (
            f". Best at keeping cell types: {leader} (bio conservation "
            f"{per[leader]['bio']:.2f}, {where}{ties})"
        )
    if supervised & set(names) and has_bio:
        sentence += "; scANVI, trained on these labels, is not ranked on them"
    sentence += "."
    if labelled_batches >= 2 and n_shared_labels == 0:
        warnings.append(
            "No labelled cell type occurs in two batches: the batches may share no cell type, "
            "and then there is nothing to align; a method that mixes them merges different "
            "cell types."
        )
    if has_bio and labelled_batches < 2:
        warnings.append(
            "Labelled cells lie in one batch only: the cell-type scores cannot see whether a "
            "method merged different cell types of different batches."
        )
    return {
        "sentence": sentence,
        "warnings": warnings,
        "methods": per,
        "best_batch": best_batch,
        "best_bio": best_bio,
        "margin": margin,
    }
