"""Single-cell experiments: count checks, bad input, scVI integration, scib table, latent dataset.

Every test uses a small synthetic two-batch AnnData of negative-binomial counts: three cell
types with their own marker genes, and a batch effect that scales a third of the genes.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
import scipy.sparse as sp
import scvi
import torch
import yaml

from dlpipe import integration_benchmark
from dlpipe.cells import LATENT_KEY, PCA_KEY, embeddings
from dlpipe.cli import main
from dlpipe.config import validate_config
from dlpipe.errors import ConfigError, InputError
from dlpipe.integration import integrate, save_integration, transfer_summary
from dlpipe.integration_benchmark import scib_table
from dlpipe.io.fitted import load_fitted
from dlpipe.io.h5ad import count_problem, read_counts
from dlpipe.modalities.singlecell import check_singlecell, latent_dataset
from dlpipe.report.latent import transfer_section

TYPES = ("B", "NK", "T")
#: Methods of the shared integration fixture, as the scib table names them.
METHODS = ["pca", "harmony", "scvi", "scanvi"]
EMBEDDINGS = embeddings(METHODS)


def _counts(
    n_per_batch: int = 60, n_genes: int = 40, seed: int = 0, unlabelled: int = 12
) -> ad.AnnData:
    """Two batches (``b1``, ``b2``) of ``n_per_batch`` cells; labels in ``cell_type``.

    Cell types cycle B, NK, T; each has 8 marker genes with 6× the base rate. Batch ``b2``
    doubles genes 0, 3, 6, … and its cells have 1.5× the library size. The last ``unlabelled``
    cells of ``b2`` have no label.
    """
    rng = np.random.default_rng(seed)
    n = 2 * n_per_batch
    types = np.array([TYPES[i % 3] for i in range(n)])
    batch = np.repeat(["b1", "b2"], n_per_batch)
    rate = np.full((n, n_genes), 1.0)
    for k, cell_type in enumerate(TYPES):
        rate[np.ix_(types == cell_type, np.arange(8 * k, 8 * k + 8))] *= 6.0
    rate[np.ix_(batch == "b2", np.arange(0, n_genes, 3))] *= 2.0
    rate[batch == "b2"] *= 1.5
    counts = rng.negative_binomial(5, 5 / (5 + rate)).astype(np.float32)
    labels = pd.Series(types, dtype=object)
    labels[np.flatnonzero(batch == "b2")[n_per_batch - unlabelled :]] = np.nan
    obs = pd.DataFrame(
        {"batch": batch, "cell_type": labels.to_numpy()},
        index=[f"cell{i:03d}" for i in range(n)],
    )
    return ad.AnnData(
        X=sp.csr_matrix(counts), obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(n_genes)])
    )


def _exp(path: Path, **sections: Any) -> dict[str, Any]:
    data = {"modality": "singlecell", "path": str(path), "batch_column": "batch",
            "label_column": "cell_type", **sections.pop("data", {})}  # fmt: skip
    integration = {"n_top_genes": None, "n_latent": 4, "n_hidden": 16, "max_epochs": 8,
                   "early_stopping": False, "min_cells_per_batch": 20, "n_pcs": 5,
                   "device": "cpu", **sections.pop("integration", {})}  # fmt: skip
    exp = {"task": "classification", "data": data, "integration": integration,
           "cv": {"n_splits": 3}, **sections}  # fmt: skip
    return validate_config({"experiments": {"sc": exp}})["experiments"]["sc"]


def _write(adata: ad.AnnData, path: Path) -> Path:
    adata.write_h5ad(path)
    return path


def _error(adata: ad.AnnData, exp: dict[str, Any], *expected: str) -> str:
    with pytest.raises(InputError) as info:
        check_singlecell(adata, exp, "sc")
    message = str(info.value)
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"
    return message


@pytest.fixture
def counts_h5ad(tmp_path: Path) -> Path:
    return _write(_counts(), tmp_path / "counts.h5ad")


# --------------------------------------------------------------------------------------------
# Counts check.


def test_count_problem_accepts_integer_counts_dense_and_sparse() -> None:
    counts = np.array([[0, 3, 1], [7, 0, 2]], dtype=np.float32)
    assert count_problem(counts) is None
    assert count_problem(sp.csr_matrix(counts)) is None
    assert count_problem(sp.csr_matrix((2, 3))) is None  # no stored value at all


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([[0.0, 1.386, 2.0]], "non-integer values (e.g. 1.386; 1 entries)"),
        ([[0.0, -0.52, 2.0]], "negative values (minimum -0.52)"),
        ([[0.0, np.nan, 2.0]], "NaN or infinite"),
    ],
    ids=["log-normalised", "scaled", "nan"],
)
def test_count_problem_names_what_is_wrong(values: list, expected: str) -> None:
    assert expected in count_problem(sp.csr_matrix(np.array(values)))


def test_normalised_x_names_the_layer_holding_counts(tmp_path: Path) -> None:
    adata = _counts()
    adata.layers["counts"] = adata.X.copy()
    adata.X = sp.csr_matrix(np.log1p(adata.X.toarray() / adata.X.sum(axis=1).A * 1e4))
    path = _write(adata, tmp_path / "lognorm.h5ad")
    with pytest.raises(InputError) as info:
        read_counts(path, None)
    message = str(info.value)
    assert message.startswith(f"{path}: X holds non-integer values")
    assert "look normalised or log-transformed" in message
    assert "layer 'counts' holds raw counts: set data.layer: counts" in message
    loaded = read_counts(path, "counts")  # the fix works
    assert count_problem(loaded.X) is None
    np.testing.assert_array_equal(loaded.X.toarray(), adata.layers["counts"].toarray())


def test_normalised_layer_points_back_to_counts_in_x(tmp_path: Path) -> None:
    adata = _counts()
    adata.layers["lognorm"] = sp.csr_matrix(np.log1p(adata.X.toarray()))
    path = _write(adata, tmp_path / "layers.h5ad")
    with pytest.raises(InputError) as info:
        read_counts(path, "lognorm")
    assert str(info.value).endswith("X holds raw counts: set data.layer: null")


def test_normalised_layer_without_counts_anywhere(tmp_path: Path) -> None:
    adata = _counts()
    adata.layers["scaled"] = sp.csr_matrix(adata.X.toarray() - 1.5)
    adata.X = sp.csr_matrix(adata.X.toarray() / 3.0)
    path = _write(adata, tmp_path / "scaled.h5ad")
    with pytest.raises(InputError, match=r"layer 'scaled' holds negative values") as info:
        read_counts(path, "scaled")
    assert "no layer holds raw counts" in str(info.value)
    assert "adata.layers['counts']" in str(info.value)


def test_absent_layer_lists_the_layers(counts_h5ad: Path) -> None:
    with pytest.raises(InputError, match=r"layer 'raw' named by data.layer not found; available"):
        read_counts(counts_h5ad, "raw")


# --------------------------------------------------------------------------------------------
# Bad input: one clear error before any training.


def test_valid_input_passes(counts_h5ad: Path) -> None:
    check_singlecell(read_counts(counts_h5ad, None), _exp(counts_h5ad), "sc")


@pytest.mark.parametrize("key", ["batch_column", "label_column"])
def test_absent_batch_or_label_column(counts_h5ad: Path, key: str) -> None:
    exp = _exp(counts_h5ad, data={key: "donor"})
    _error(
        read_counts(counts_h5ad, None),
        exp,
        f"obs column 'donor' named by config key experiments.sc.data.{key} not found",
        "obs has columns: batch, cell_type",
    )


def test_batch_with_too_few_cells(tmp_path: Path) -> None:
    adata = _counts()
    adata.obs.loc[adata.obs_names[:5], "batch"] = "b0"
    path = _write(adata, tmp_path / "small.h5ad")
    _error(
        read_counts(path, None),
        _exp(path),
        "batch(es) {'b0': 5} of obs column 'batch' have fewer cells than the 20",
        "lower integration.min_cells_per_batch",
    )


def test_single_batch(tmp_path: Path) -> None:
    adata = _counts()
    adata.obs["batch"] = "b1"
    path = _write(adata, tmp_path / "one.h5ad")
    _error(read_counts(path, None), _exp(path), "a single batch ('b1')", "two batches or more")


def test_no_gene_shared_between_batches(tmp_path: Path) -> None:
    adata = _counts()
    dense = adata.X.toarray()
    b1 = (adata.obs["batch"] == "b1").to_numpy()
    dense[np.ix_(b1, np.arange(20, 40))] = 0  # b1 measured genes 0-19 only
    dense[np.ix_(~b1, np.arange(0, 20))] = 0  # b2 measured genes 20-39 only
    adata.X = sp.csr_matrix(dense)
    path = _write(adata, tmp_path / "disjoint.h5ad")
    _error(
        read_counts(path, None),
        _exp(path),
        "no gene has counts in every batch",
        "'b1': 20, 'b2': 20",
        "different gene identifiers",
    )


def test_scanvi_with_every_label_missing(tmp_path: Path) -> None:
    adata = _counts()
    adata.obs["cell_type"] = np.nan
    path = _write(adata, tmp_path / "unlabelled.h5ad")
    exp = _exp(path, integration={"methods": ["pca", "scvi", "scanvi"]})
    _error(
        read_counts(path, None),
        exp,
        "integration.methods lists scanvi, which transfers labels from labelled cells",
        "remove scanvi from integration.methods",
    )
    # Without scANVI the classification still needs labels.
    _error(read_counts(path, None), _exp(path), "the cell-type classification needs labelled")


def test_hidden_batches_must_exist_and_hold_labels(tmp_path: Path) -> None:
    path = _write(_counts(), tmp_path / "cells.h5ad")
    scanvi = {"methods": ["pca", "scvi", "scanvi"]}
    _error(
        read_counts(path, None),
        _exp(path, integration={**scanvi, "hide_labels": ["b3"]}),
        "integration.hide_labels names batch(es) ['b3']",
        "its batches are ['b1', 'b2']",
    )
    # Hiding every labelled batch leaves scANVI nothing to learn from.
    _error(read_counts(path, None),
           _exp(path, integration={**scanvi, "hide_labels": ["b1", "b2"]}),
           "no cell of obs column 'cell_type' has a label scANVI may see")  # fmt: skip
    unlabelled = _counts()
    unlabelled.obs["cell_type"] = unlabelled.obs["cell_type"].astype(object)
    unlabelled.obs.loc[unlabelled.obs["batch"] == "b2", "cell_type"] = np.nan
    path = _write(unlabelled, tmp_path / "half.h5ad")
    _error(
        read_counts(path, None),
        _exp(path, integration={**scanvi, "hide_labels": ["b2"]}),
        "whose cells have no label",
        "nothing to score the transfer against",
    )


def test_rare_labelled_class_is_checked_against_the_cv_plan(tmp_path: Path) -> None:
    adata = _counts()
    adata.obs["cell_type"] = adata.obs["cell_type"].astype(object)
    adata.obs.loc[adata.obs_names[:2], "cell_type"] = "pDC"
    path = _write(adata, tmp_path / "rare.h5ad")
    _error(read_counts(path, None), _exp(path), "{'pDC': 2}", "n_splits=3")


def test_labels_differing_only_in_case_or_space_are_refused(tmp_path: Path) -> None:
    adata = _counts()
    adata.obs["cell_type"] = adata.obs["cell_type"].astype(object)
    adata.obs.loc[adata.obs_names[:5], "cell_type"] = "nk "
    path = _write(adata, tmp_path / "spelled.h5ad")
    _error(read_counts(path, None), _exp(path), "labels differ only in case or spaces", "'nk '")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"data": {"batch_column": None}}, "needs the obs column that names each cell's batch"),
        ({"data": {"label_column": None}}, "classifies cell types"),
        ({"data": {"path": "counts.csv"}}, "read from an AnnData .h5ad"),
        ({"data": {"id_column": "cell"}}, "take cells from obs_names"),
        (
            {"model": {"name": "cnn"}},
            "'cnn' reads sequence, but this experiment's data are features; use one of mlp",
        ),
        ({"cv": {"plan": "leave_one_out"}}, "'leave_one_out' does not apply to cells"),
        ({"cv": {"plan": "group_kfold"}}, "needs the obs column of groups"),
        ({"embed": {"enabled": True}}, "scVI already is the VAE"),
        ({"integration": {"n_top_genes": 12, "n_latent": 20}}, "12 genes cannot carry a 20-dim"),
        ({"integration": {"methods": ["pca", "harmony"]}}, r"\['scvi'\] must be listed"),
        ({"integration": {"methods": ["harmony", "scvi"]}}, r"\['pca'\] must be listed"),
        ({"integration": {"hide_labels": ["b2"]}}, "only scANVI's label transfer uses it"),
        ({"integration": {"methods": ["pca", "scvi", "umap"]}}, "'umap' is not allowed"),
        # The key of earlier versions is named with its replacement.
        (
            {"integration": {"method": "scanvi"}},
            "'method' was replaced by 'methods', a list of the integration methods compared",
        ),
    ],
)
def test_config_errors(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _exp(tmp_path / "counts.h5ad", **change)


def test_prediction_job_on_cells_is_refused_before_any_job(tmp_path: Path) -> None:
    exp = _exp(tmp_path / "counts.h5ad")
    config = {"experiments": {"sc": exp}, "predict": {"new": {"experiment": "sc",
              "table": str(tmp_path / "new.csv")}}}  # fmt: skip
    with pytest.raises(ConfigError, match=r"predict\.new\.experiment: 'sc' classifies cells"):
        validate_config(config)


def test_dlpipe_check_reports_cells_and_stops_on_normalised_data(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = _write(_counts(), tmp_path / "cells.h5ad")
    data = {"modality": "singlecell", "path": str(path), "batch_column": "batch",
            "label_column": "cell_type"}  # fmt: skip
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"experiments": {"sc": {
        "task": "classification", "data": data,
        "integration": {"min_cells_per_batch": 20}}}}))  # fmt: skip
    assert main(["check", str(config)]) == 0
    assert "sc: 120 cells × 40 genes of raw counts in 2 batches, 108 labelled" in (
        capsys.readouterr().out
    )
    normalised = _counts()
    normalised.X = normalised.X / 2.0
    _write(normalised, path)
    assert main(["check", str(config)]) == 1
    assert "X holds non-integer values" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# Integration.


@pytest.fixture(scope="module")
def integrated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One tiny scVI + scANVI integration, saved; reused by the tests below.

    A labelled reference batch ``b1`` and an unlabelled query batch ``b2`` of 100 cells each
    (scib-metrics' neighbour graphs need more than 90 labelled cells).
    """
    folder = tmp_path_factory.mktemp("integration")
    path = _write(_counts(100, unlabelled=100), folder / "counts.h5ad")
    exp = _exp(path, integration={"methods": METHODS, "scanvi_max_epochs": 2})
    adata = read_counts(path, None)
    check_singlecell(adata, exp, "sc")
    result = integrate(adata, exp)
    out = folder / "integrated.h5ad"
    save_integration(result, out, folder / "models", folder / "history.tsv")
    return {"exp": exp, "result": result, "path": out, "folder": folder, "counts": path}


def test_latent_space_shape_and_finiteness(integrated: dict[str, Any]) -> None:
    adata = integrated["result"].adata
    assert adata.obsm[LATENT_KEY].shape == (200, 4)
    assert np.isfinite(adata.obsm[LATENT_KEY]).all()
    assert adata.obsm[PCA_KEY].shape == (200, 5)
    assert adata.obsm["X_umap"].shape == adata.obsm["X_umap_pca"].shape == (200, 2)
    assert adata.obs["leiden"].nunique() >= 1
    summary = integrated["result"].summary
    assert summary["epochs_trained"] == 8
    assert summary["methods"] == METHODS
    assert adata.obsm["X_harmony"].shape == (200, 5)
    assert adata.obsm["X_scANVI"].shape == (200, 4)
    assert summary["cells_per_batch"] == {"b1": 100, "b2": 100}
    assert (summary["labelled_cells"], summary["unlabelled_cells"]) == (100, 100)
    # Counts kept as a layer; X log-normalised.
    assert count_problem(adata.layers["counts"]) is None
    assert count_problem(adata.X) is not None


def test_scanvi_labels_the_unlabelled_cells(integrated: dict[str, Any]) -> None:
    obs = integrated["result"].adata.obs
    assert set(obs["scanvi_prediction"].astype(str)) <= set(TYPES)
    assert obs["scanvi_probability"].between(0, 1).all()
    transfer = integrated["result"].summary["scanvi"]
    assert transfer["n_targets"] == 100
    assert sum(transfer["composition"]["b2"].values()) == 100
    # Only the cells scANVI saw no label of get a transferred label; below 0.5 it is unknown.
    targets = obs["scanvi_label"].notna().to_numpy()
    assert targets.sum() == 100
    assert not targets[:100].any()
    low = obs["scanvi_probability"].to_numpy() < 0.5
    assert (obs["scanvi_label"].astype(str)[targets & low] == "unknown").all()
    kept = targets & ~low
    np.testing.assert_array_equal(obs["scanvi_label"].astype(str)[kept],
                                  obs["scanvi_prediction"].astype(str)[kept])  # fmt: skip
    assert transfer["n_unknown"] == int((targets & low).sum())
    # The query batch repeats the reference's cell types: most are transferred correctly.
    truth = np.array([TYPES[i % 3] for i in range(200)])[100:]
    predicted = obs["scanvi_prediction"].astype(str).to_numpy()[100:]
    assert (predicted == truth).mean() > 0.5


def _transfer_obs(labels: list[Any], batches: list[str], predicted: list[str],
                  probability: list[float], seen: list[bool]) -> pd.DataFrame:  # fmt: skip
    accepted = [p if q >= 0.5 else "unknown" for p, q in zip(predicted, probability, strict=True)]
    return pd.DataFrame({
        "batch": batches, "cell_type": labels, "scanvi_prediction": predicted,
        "scanvi_probability": probability,
        "scanvi_label": [None if s else a for s, a in zip(seen, accepted, strict=True)],
    })  # fmt: skip


def test_transfer_summary_scores_hidden_labels_and_flags_domination() -> None:
    # Reference: 30 B, 30 NK, 30 T (seen). Query batch q: 20 cells, true labels hidden;
    # scANVI calls 16 of them T (12 right), 2 B (right) and 2 below the threshold.
    ref = ["B"] * 30 + ["NK"] * 30 + ["T"] * 30
    truth = ["T"] * 12 + ["NK"] * 4 + ["B"] * 2 + ["NK"] * 2
    predicted = ["T"] * 16 + ["B"] * 2 + ["NK"] * 2
    probability = [0.9] * 18 + [0.3] * 2
    obs = _transfer_obs(ref + truth, ["r"] * 90 + ["q"] * 20, ref + predicted,
                        [1.0] * 90 + probability, [True] * 90 + [False] * 20)  # fmt: skip
    summary = transfer_summary(obs, "batch", "cell_type", ["q"], 0.5)
    assert (summary["n_reference"], summary["n_targets"], summary["n_unknown"]) == (90, 20, 2)
    assert summary["composition"] == {"q": {"B": 2, "T": 16, "unknown": 2}}
    # T is 16 of 18 accepted labels (89 %) but a third of the reference: flagged.
    assert summary["dominated"] == {
        "q": {"label": "T", "fraction": pytest.approx(16 / 18),
              "reference_fraction": pytest.approx(1 / 3)}}  # fmt: skip
    check = summary["hidden_check"]
    assert check["cells"] == 20
    assert check["coverage"] == pytest.approx(18 / 20)
    assert check["accuracy_accepted"] == pytest.approx(14 / 18)
    assert check["accuracy_most_probable"] == pytest.approx(16 / 20)  # 12 T, 2 B, 2 NK right
    assert check["recall_most_probable"] == {"B": 1.0, "NK": pytest.approx(2 / 6), "T": 1.0}
    assert check["support"] == {"B": 2, "NK": 6, "T": 12}
    assert check["reference_support"] == {"B": 30, "NK": 30, "T": 30}
    # The report names the type scANVI mostly missed.
    html = transfer_section({**summary, "epochs": 10}, None)
    assert "NK (2 of 6; 30 in the reference)" in html
    assert "Batch q: 89% of the transferred labels are T" in html
    # A batch whose composition follows the reference is not flagged; nor are too few cells.
    even = _transfer_obs(ref + ref, ["r"] * 90 + ["q"] * 90, ref + ref, [1.0] * 180,
                         [True] * 90 + [False] * 90)  # fmt: skip
    assert transfer_summary(even, "batch", "cell_type", [], 0.5)["dominated"] == {}
    few = _transfer_obs(ref + ["T"] * 5, ["r"] * 90 + ["q"] * 5, ref + ["T"] * 5,
                        [1.0] * 95, [True] * 90 + [False] * 5)  # fmt: skip
    assert transfer_summary(few, "batch", "cell_type", [], 0.5)["dominated"] == {}


def test_integrated_file_opens_in_scanpy_and_model_reloads(integrated: dict[str, Any]) -> None:
    adata = sc.read_h5ad(integrated["path"])
    assert adata.obsm["X_scVI"].shape == (200, 4)
    np.testing.assert_array_equal(adata.obsm["X_scVI"], integrated["result"].adata.obsm["X_scVI"])
    model = scvi.model.SCVI.load(str(integrated["folder"] / "models" / "scvi"), adata=adata)
    latent = model.get_latent_representation()
    np.testing.assert_allclose(latent, adata.obsm["X_scVI"], rtol=1e-5, atol=1e-6)
    history = pd.read_csv(integrated["folder"] / "history.tsv", sep="\t")
    assert len(history) == 8
    assert {"epoch", "elbo_train"} <= set(history.columns)


def test_same_seed_same_latent_and_another_seed_differs(integrated: dict[str, Any]) -> None:
    exp = integrated["exp"]
    again = integrate(read_counts(integrated["counts"], None), exp)
    first = integrated["result"].adata
    for key in ("X_scVI", "X_pca", "X_harmony", "X_scANVI"):
        np.testing.assert_array_equal(again.adata.obsm[key], first.obsm[key], err_msg=key)
    assert again.summary == integrated["result"].summary
    other = integrate(read_counts(integrated["counts"], None), {**exp, "seed": 1})
    assert not np.allclose(other.adata.obsm[LATENT_KEY], again.adata.obsm[LATENT_KEY])


def test_scib_table_scores_both_embeddings(integrated: dict[str, Any]) -> None:
    table = scib_table(integrated["result"].adata, "batch", "cell_type")
    metrics = dict(zip(table["metric"], table["cells"], strict=True))
    # Only the reference batch is labelled: bio conservation on its 100 cells, the label-free
    # batch metrics on all 200; label-aware batch metrics need labels in two batches.
    for name in ("Isolated labels", "KMeans NMI", "KMeans ARI", "Silhouette label", "cLISI"):
        assert metrics[name] == "labelled 100", name
    for name in ("iLISI", "PCR comparison"):
        assert metrics[name] == "all 200", name
    assert not {"BRAS", "KBET", "Graph connectivity"} & set(metrics)
    assert {"Batch correction", "Bio conservation", "Total"} <= set(metrics)
    scores = table.set_index("metric")[list(EMBEDDINGS)]
    assert scores.notna().all().all()
    assert ((scores >= -1e-6) & (scores <= 1 + 1e-6)).all().all()
    # PCR comparison of the unintegrated embedding with itself is 0 by definition.
    assert scores.loc["PCR comparison", "PCA (unintegrated)"] == pytest.approx(0.0, abs=1e-6)
    bio = table[table["type"] == "Bio conservation"].set_index("metric")[list(EMBEDDINGS)].mean()
    assert scores.loc["Bio conservation"].to_numpy() == pytest.approx(bio.to_numpy())
    # PCR comparison (0 for the PCA by construction) is shown but not aggregated.
    batch = scores.loc[["iLISI"]].mean()
    assert scores.loc["Batch correction"].to_numpy() == pytest.approx(batch.to_numpy())
    total = 0.4 * scores.loc["Batch correction"] + 0.6 * scores.loc["Bio conservation"]
    assert scores.loc["Total"].to_numpy() == pytest.approx(total.to_numpy())


def test_scib_runs_pick_cells_and_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_run(cells: ad.AnnData, batch: str, label: str, bio: Any, correction: Any,
                 text: str, shown: dict[str, str]) -> pd.DataFrame:  # fmt: skip
        calls.append((cells.n_obs, bio is not None, correction, text))
        kind = "Bio conservation" if bio is not None else "Batch correction"
        return pd.DataFrame({"metric": ["m"], "type": [kind], "cells": [text],
                             **{name: [0.5] for name in EMBEDDINGS}})  # fmt: skip

    monkeypatch.setattr(integration_benchmark, "_benchmarker_run", fake_run)
    adata = _counts(100)
    adata.obsm[LATENT_KEY] = adata.obsm[PCA_KEY] = np.zeros((200, 2))
    adata.obsm["X_harmony"] = adata.obsm["X_scANVI"] = np.zeros((200, 2))
    adata.uns["dlpipe"] = {"methods": METHODS}
    full = adata.copy()
    full.obs["cell_type"] = full.obs["cell_type"].fillna("T")
    scib_table(full, "batch", "cell_type")
    ((n, bio, correction, text),) = calls
    assert (n, bio, text) == (200, True, "all 200")
    assert correction.kbet_per_label  # scib's full default
    assert correction.ilisi_knn
    calls.clear()
    # Labels in both batches, some missing: label-aware metrics on the labelled cells.
    scib_table(adata, "batch", "cell_type")
    assert [(c[0], c[1], c[3]) for c in calls] == [(188, True, "labelled 188"),
                                                   (200, False, "all 200")]  # fmt: skip
    assert (calls[0][2].kbet_per_label, calls[0][2].ilisi_knn) == (True, False)
    assert (calls[1][2].kbet_per_label, calls[1][2].ilisi_knn) == (False, True)
    calls.clear()
    # Labelled cells in one batch only: no label-aware batch metric is possible.
    one_batch = adata.copy()
    one_batch.obs.loc[one_batch.obs["batch"] == "b2", "cell_type"] = np.nan
    table = scib_table(one_batch, "batch", "cell_type")
    assert [(c[0], c[1], c[3]) for c in calls] == [(100, True, "labelled 100"),
                                                   (200, False, "all 200")]  # fmt: skip
    assert calls[0][2] is None
    assert table.set_index("metric").loc["Total", "scVI"] == pytest.approx(0.5)
    calls.clear()
    # Too few labelled cells for the 90-neighbour graphs: only the label-free run.
    few = adata.copy()
    few.obs.loc[few.obs_names[50:], "cell_type"] = np.nan
    scib_table(few, "batch", "cell_type")
    assert [c[3] for c in calls] == ["all 200"]


def test_latent_dataset_keeps_labelled_cells_and_splits_feature_sets(
    integrated: dict[str, Any],
) -> None:
    data = latent_dataset(integrated["path"], integrated["exp"], "sc")
    assert data.meta["n_samples"] == 100
    assert data.meta["unlabelled_cells_left_out"] == 100
    assert data.classes == list(TYPES)
    assert data.feature_sets == {
        "model": ["scVI_1", "scVI_2", "scVI_3", "scVI_4"],
        "baseline": [f"PC_{i}" for i in range(1, 6)],
    }
    adata = integrated["result"].adata
    labelled = adata.obs["cell_type"].notna().to_numpy()
    np.testing.assert_allclose(
        data.table[data.feature_sets["model"]].to_numpy(), adata.obsm[LATENT_KEY][labelled]
    )
    assert list(data.table.index) == list(adata.obs_names[labelled])


# --------------------------------------------------------------------------------------------
# The workflow: integrate → scib → split → train → evaluate → report, and the VAE beside a table.


@pytest.mark.workflow
def test_workflow_integrates_classifies_and_embeds(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    _write(_counts(100, unlabelled=100), tmp_path / "cells.h5ad")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 12)) @ rng.normal(size=(12, 12))
    table = pd.DataFrame(x, columns=[f"g{i}" for i in range(12)])
    table.insert(0, "sample", [f"S{i:02d}" for i in range(60)])
    table["t"] = x[:, 0] - x[:, 1] + rng.normal(size=60)
    table.to_csv(tmp_path / "bulk.csv", index=False)
    fast = {"max_epochs": 4, "patience": 2, "progress_bar": False, "device": "cpu"}
    config = {"experiments": {
        "cells": {"task": "classification",
                  "data": {"modality": "singlecell", "path": "cells.h5ad",
                           "batch_column": "batch", "label_column": "cell_type"},
                  "integration": {"methods": ["pca", "harmony", "scvi", "scanvi"],
                                  "n_top_genes": 30, "n_latent": 4,
                                  "n_hidden": 16, "max_epochs": 6, "scanvi_max_epochs": 2,
                                  "n_pcs": 5, "min_cells_per_batch": 20, "device": "cpu"},
                  "model": {"name": "mlp", "hidden_layers": [8]}, "training": fast,
                  "cv": {"n_splits": 3}, "resources": {"threads": 1}},
        "bulk": {"task": "regression",
                 "data": {"path": "bulk.csv", "id_column": "sample", "target_columns": ["t"]},
                 "embed": {"enabled": True, "n_latent": 3, "hidden_layers": [8],
                           "max_epochs": 4, "patience": 2},
                 "model": {"name": "mlp", "hidden_layers": [8]}, "training": fast,
                 "cv": {"plan": "kfold", "n_splits": 3}, "resources": {"threads": 1}},
    }}  # fmt: skip
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))

    def snakemake(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(root / "Snakefile"),
               "--directory", str(tmp_path), "--configfile", "config.yaml", "--cores", "2",
               *args]  # fmt: skip
        return subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=tmp_path)

    run = snakemake("--quiet")
    assert run.returncode == 0, run.stderr[-3000:]
    results = tmp_path / "results"
    adata = sc.read_h5ad(results / "cells" / "integrated.h5ad")
    assert adata.obsm["X_scVI"].shape == (200, 4)
    assert {"leiden", "scanvi_prediction", "scanvi_probability", "scanvi_label"} <= set(
        adata.obs.columns
    )
    assert {"X_harmony", "X_umap_harmony", "X_scANVI"} <= set(adata.obsm)
    assert (results / "cells" / "integration" / "models" / "scvi" / "model.pt").is_file()
    scib = pd.read_csv(results / "cells" / "integration" / "scib.tsv", sep="\t")
    assert {"iLISI", "KMeans NMI", "Total"} <= set(scib["metric"])
    assert scib[list(EMBEDDINGS)].notna().all().all()

    metrics = pd.read_csv(results / "cells" / "metrics.tsv", sep="\t")
    assert set(metrics["learner"]) == {"mlp", "pca_logistic_regression"}
    oof = pd.read_csv(results / "cells" / "oof_predictions.tsv", sep="\t")
    assert (oof.groupby("learner")["id"].nunique() == 100).all()  # the labelled cells only
    # The deep model read the 4 scVI dimensions, the baseline the 5 principal components.
    state = torch.load(results / "cells" / "0" / "model.ckpt", weights_only=True)
    assert state["hyper_parameters"]["n_inputs"] == 4
    baselines = load_fitted(results / "cells" / "0" / "baselines.skops")
    assert baselines["pca_logistic_regression"].n_features_in_ == 5

    recon = pd.read_csv(results / "bulk" / "embedding" / "reconstruction.tsv", sep="\t")
    assert recon.shape[0] == 9
    embedding = pd.read_csv(results / "bulk" / "2" / "embedding.tsv", sep="\t")
    assert embedding.shape == (60, 2 + 3)
    html = (results / "report.html").read_text()
    transfer = pd.read_csv(results / "cells" / "integration" / "label_transfer.tsv", sep="\t")
    assert len(transfer) == 100  # the unlabelled cells
    verdict = json.loads((results / "cells" / "integration" / "verdict.json").read_text())
    assert verdict["sentence"]
    for text in ("Batch integration", "Integration benchmark (scib-metrics)",
                 "Cell-type classification", "Label transfer (scANVI)", "VAE embedding",
                 "pca_logistic_regression", "input 4 latent dimensions",
                 '<p class="verdict"><strong>Integration:</strong>'):  # fmt: skip
        assert text in html, text

    # A new classifier setting retrains; it does not integrate again.
    config["experiments"]["cells"]["training"]["learning_rate"] = 0.01
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    changed = snakemake("-n", "--quiet", "rules")
    jobs = re.findall(r"^(\w+)\s+\d+$", changed.stdout + changed.stderr, flags=re.MULTILINE)
    assert "train" in jobs
    assert "integrate" not in jobs
