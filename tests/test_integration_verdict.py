"""The integration verdict: which methods mixed the batches, which kept the cell types.

Pure-function tests on scib tables written by hand (every branch of the verdict), then two
integrations of synthetic counts: batches that share their cell types, where Harmony and scVI
must raise iLISI well above the unintegrated PCA, and batches that share none, where the
verdict must warn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from dlpipe.config import validate_config
from dlpipe.integration import integrate
from dlpipe.integration_benchmark import (
    aggregate_scores,
    integration_verdict,
    scib_table,
    shared_labels,
)
from dlpipe.report.latent import scib_html, verdict_block

PCA = "PCA (unintegrated)"


def _table(scores: dict[str, dict[str, float]]) -> pd.DataFrame:
    """A scib table from {metric: {embedding: score}}, with its aggregate rows."""
    kinds = {"iLISI": "Batch correction", "KBET": "Batch correction", "BRAS": "Batch correction",
             "PCR comparison": "Batch correction", "Graph connectivity": "Batch correction",
             "KMeans NMI": "Bio conservation", "Silhouette label": "Bio conservation"}  # fmt: skip
    rows = [{"metric": m, "type": kinds[m], "cells": "all", **v} for m, v in scores.items()]
    table = pd.DataFrame(rows)
    return pd.concat([table, aggregate_scores(table)], ignore_index=True)


def _scores(pca: float, **methods: tuple[float, float]) -> pd.DataFrame:
    """iLISI and bio scores: ``methods`` maps name → (iLISI, bio); PCA has (0.02, ``pca``)."""
    names = {PCA: (0.02, pca), **methods}
    return _table({
        "iLISI": {n: v[0] for n, v in names.items()},
        "PCR comparison": {n: (0.0 if n == PCA else 0.9) for n in names},
        "KMeans NMI": {n: v[1] for n, v in names.items()},
        "Silhouette label": {n: v[1] for n, v in names.items()},
    })  # fmt: skip


def test_pcr_comparison_cannot_decide_the_ranking() -> None:
    # scVI mixes nothing: its Total would lead on PCR comparison alone (0.9 vs 0 by construction).
    table = _scores(0.6, scVI=(0.02, 0.6))
    totals = table.set_index("metric").loc["Total"]
    assert totals["scVI"] == pytest.approx(totals[PCA])
    verdict = integration_verdict(table, 0.05, labelled_batches=2)
    assert verdict["best_batch"] == []
    assert verdict["sentence"].startswith("No integration method mixed the batches")
    (warning,) = verdict["warnings"]
    assert "No method mixed the batches" in warning
    assert "iLISI 0.02 vs 0.02" in warning
    # The report shows the verdict and the warning, and bolds nothing on the PCR row.
    block = verdict_block(verdict)
    assert '<p class="verdict">' in block
    assert '<p class="warning">' in block
    assert "PCR comparison (not in aggregates)" in scib_html(table, 0.05)


def test_mixed_and_kept_with_best_on_each_axis() -> None:
    table = _scores(0.60, Harmony=(0.40, 0.62), scVI=(0.30, 0.70), ComBat=(0.03, 0.61))
    verdict = integration_verdict(table, 0.05, labelled_batches=2)
    assert verdict["warnings"] == []
    per = verdict["methods"]
    assert (per["Harmony"]["mixed"], per["scVI"]["mixed"], per["ComBat"]["mixed"]) == (
        True, True, False)  # fmt: skip
    assert per["Harmony"]["kept"]
    assert per["scVI"]["kept"]
    assert verdict["best_batch"] == ["Harmony"]  # 0.40 vs 0.30: beyond the margin
    assert verdict["best_bio"] == ["scVI"]
    sentence = verdict["sentence"]
    assert sentence.startswith("Harmony and scVI mixed the batches (iLISI 0.40 vs 0.02;")
    assert ", ComBat did not;" in sentence
    assert "Best at mixing: Harmony" in sentence
    assert "Best at keeping cell types: scVI (bio conservation 0.70, above the unintegrated" in (
        sentence)  # fmt: skip


def test_close_scores_are_ties() -> None:
    table = _scores(0.60, Harmony=(0.40, 0.61), scVI=(0.38, 0.62))
    verdict = integration_verdict(table, 0.05, labelled_batches=2)
    assert verdict["best_batch"] == ["Harmony", "scVI"]
    assert "tied within 0.05 with scVI" in verdict["sentence"]
    assert "a tie with the unintegrated 0.60" in verdict["sentence"]
    # A wider margin makes more ties; a narrower one separates them.
    assert integration_verdict(table, 0.01, 2)["best_batch"] == ["Harmony"]


def test_mixing_by_erasing_biology_is_a_warning() -> None:
    table = _scores(0.70, Harmony=(0.80, 0.40), scVI=(0.30, 0.69))
    verdict = integration_verdict(table, 0.05, labelled_batches=2)
    assert not verdict["methods"]["Harmony"]["kept"]
    (warning,) = verdict["warnings"]
    assert warning.startswith("Harmony mixed the batches but lost cell-type structure")
    assert "0.40 vs 0.70" in warning
    assert "scVI kept the cell types" in verdict["sentence"]


def test_supervised_scanvi_is_not_ranked_on_its_own_labels() -> None:
    table = _scores(0.60, scVI=(0.30, 0.62), scANVI=(0.31, 0.95))
    verdict = integration_verdict(table, 0.05, labelled_batches=2)
    assert verdict["best_bio"] == ["scVI"]
    assert "scANVI, trained on these labels, is not ranked on them" in verdict["sentence"]


def test_shared_labels() -> None:
    obs = pd.DataFrame({"batch": ["a", "a", "b", "b", "b"],
                        "cell_type": ["T", "B", "T", None, "NK"]})  # fmt: skip
    assert shared_labels(obs, "batch", "cell_type") == ["T"]
    verdict = integration_verdict(_scores(0.6, scVI=(0.3, 0.6)), 0.05, 2, n_shared_labels=0)
    assert any("No labelled cell type occurs in two batches" in w for w in verdict["warnings"])


def test_scanvi_is_not_bolded_on_the_labels_it_learned() -> None:
    table = _scores(0.60, scVI=(0.30, 0.70), scANVI=(0.31, 0.95))
    shown = scib_html(table, 0.05)
    bio_row = next(r for r in shown.split("<tr>") if r.startswith("<td>KMeans NMI"))
    assert '<td class="best num">0.700</td>' in bio_row  # scVI, not scANVI's 0.95


def test_labels_in_one_batch_only_are_a_caveat() -> None:
    verdict = integration_verdict(_scores(0.6, scVI=(0.3, 0.6)), 0.05, labelled_batches=1)
    assert any("Labelled cells lie in one batch only" in w for w in verdict["warnings"])


# --------------------------------------------------------------------------------------------
# Integrations of synthetic counts.


def _two_batches(shared: bool, n_per_batch: int = 150, n_genes: int = 60) -> ad.AnnData:
    """Negative-binomial counts of two batches with a known batch effect.

    Cell types have 8 marker genes each at 6× the base rate. Batch ``b2`` doubles every third
    gene and has 1.5× the library size. ``shared``: both batches hold types A, B, C; otherwise
    ``b1`` holds A, B, C and ``b2`` D, E, F, so there is nothing to align.
    """
    rng = np.random.default_rng(0)
    batch = np.repeat(["b1", "b2"], n_per_batch)
    types = np.array([("A", "B", "C")[i % 3] for i in range(2 * n_per_batch)], dtype=object)
    if not shared:
        types[batch == "b2"] = np.array(["D", "E", "F"])[np.arange(n_per_batch) % 3]
    rate = np.ones((2 * n_per_batch, n_genes))
    for k, cell_type in enumerate(sorted(set(types))):
        markers = np.arange(8 * k, 8 * k + 8) % n_genes
        rate[np.ix_(types == cell_type, markers)] *= 6.0
    rate[np.ix_(batch == "b2", np.arange(0, n_genes, 3))] *= 2.0
    rate[batch == "b2"] *= 1.5
    counts = rng.negative_binomial(5, 5 / (5 + rate)).astype(np.float32)
    obs = pd.DataFrame({"batch": batch, "cell_type": types},
                       index=[f"cell{i:03d}" for i in range(2 * n_per_batch)])  # fmt: skip
    var = pd.DataFrame(index=[f"g{j}" for j in range(n_genes)])
    return ad.AnnData(X=sp.csr_matrix(counts), obs=obs, var=var)


def _integrate(adata: ad.AnnData, tmp_path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    exp = {"task": "classification", "seed": 0,
           "data": {"modality": "singlecell", "path": str(tmp_path / "c.h5ad"),
                    "batch_column": "batch", "label_column": "cell_type"},
           "integration": {"methods": ["pca", "harmony", "scvi"], "n_top_genes": None,
                           "n_latent": 4, "n_hidden": 32, "gene_likelihood": "nb",
                           "max_epochs": 200, "early_stopping": False, "n_pcs": 5,
                           "device": "cpu"},
           "cv": {"n_splits": 3}}  # fmt: skip
    exp = validate_config({"experiments": {"sc": exp}})["experiments"]["sc"]
    result = integrate(adata, exp)
    table = scib_table(result.adata, "batch", "cell_type")
    shared = shared_labels(result.adata.obs, "batch", "cell_type")
    return table, integration_verdict(table, 0.05, 2, len(shared))


def test_harmony_and_scvi_mix_batches_that_share_cell_types(tmp_path: Path) -> None:
    table, verdict = _integrate(_two_batches(shared=True), tmp_path)
    ilisi = table.set_index("metric").loc["iLISI"]
    # Measured: PCA 0.31 (the batches split each type in two), Harmony 0.89, scVI 0.94.
    assert ilisi[PCA] < 0.4
    assert ilisi["Harmony"] > ilisi[PCA] + 0.3
    assert ilisi["scVI"] > ilisi[PCA] + 0.3
    assert verdict["methods"]["Harmony"]["mixed"]
    assert verdict["methods"]["scVI"]["mixed"]
    assert verdict["methods"]["Harmony"]["kept"]
    assert verdict["methods"]["scVI"]["kept"]
    assert verdict["warnings"] == []


def test_batches_without_a_shared_cell_type_are_warned_about(tmp_path: Path) -> None:
    table, verdict = _integrate(_two_batches(shared=False), tmp_path)
    assert any("No labelled cell type occurs in two batches" in w for w in verdict["warnings"])
    # Label-aware batch metrics need a label in two batches: left out, not a crash.
    assert not {"BRAS", "KBET", "Graph connectivity"} & set(table["metric"])
    # Whatever a method did, it is not presented as a clean win: either nothing mixed, or
    # what mixed lost the cell types.
    for name, entry in verdict["methods"].items():
        assert not (entry["mixed"] and entry["kept"]), (name, entry)
