"""Single cells: raw counts of several batches, integrated with scVI, cell types on the latent.

A single-cell experiment starts from one ``.h5ad`` of raw counts (``X`` or a named layer) with a
batch column and a cell-type column in ``obs``. The integrate job (``rules/singlecell.smk``)
reads and checks them (:func:`check_singlecell`) and integrates them
(:mod:`dlpipe.integration`); :func:`latent_dataset` then turns the labelled cells of the
integrated file into the table that the cross-validated classification reads: the MLP reads the
scVI latent dimensions, the logistic-regression baseline the PCA of the unintegrated data.

What is fitted on which cells: scVI and the PCA are fitted once, on every cell, without labels
(transductive and label-free, as integration is used in practice); the classifiers, their
scaler and early stopping see the training side of each fold only. scANVI is trained on the
labels of every labelled cell, so its latent space and predictions never feed the
classification: they only label the cells that had no label.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dlpipe.cells import (
    LATENT_KEY,
    LATENT_PREFIX,
    PCA_KEY,
    PCA_PREFIX,
    UNLABELLED,
    genes_detected_per_batch,
    labels_of,
)
from dlpipe.cv import CHROMOSOME_PLANS
from dlpipe.datasets import ID_INDEX, TabularDataset, check_class_sizes
from dlpipe.errors import ConfigError, InputError
from dlpipe.io.files import sha256
from dlpipe.io.h5ad import read_counts, read_h5ad
from dlpipe.modalities.base import Modality
from dlpipe.tasks import Task

if TYPE_CHECKING:
    import anndata as ad


def _obs_column(adata: ad.AnnData, column: str, key: str, path: str) -> pd.Series:
    if column not in adata.obs.columns:
        shown = ", ".join(map(str, adata.obs.columns[:10])) or "none"
        more = " …" if adata.obs.shape[1] > 10 else ""
        raise InputError(
            f"{path}: obs column {column!r} named by config key {key} not found; obs has "
            f"columns: {shown}{more}"
        )
    return adata.obs[column]


def check_singlecell(adata: ad.AnnData, exp: Mapping[str, Any], name: str = "experiment") -> None:
    """Check the batches, labels and genes of a single-cell experiment before any fitting.

    Parameters
    ----------
    adata
        Counts from :func:`dlpipe.io.h5ad.read_counts`.
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
    hidden = list(cfg["hide_labels"])
    unknown_batches = sorted(set(hidden) - set(sizes.index))
    if unknown_batches:
        raise InputError(
            f"{path}: integration.hide_labels names batch(es) {unknown_batches} that obs column "
            f"{data['batch_column']!r} does not hold; its batches are {list(sizes.index)}"
        )
    if "scanvi" in cfg["methods"]:
        seen = labels.notna() & ~batches.astype(str).isin(hidden).to_numpy()
        if not seen.any():
            raise InputError(
                f"{path}: integration.methods lists scanvi, which transfers labels from labelled "
                f"cells, but no cell of obs column {data['label_column']!r} has a label scANVI "
                "may see (empty, or in the batches of integration.hide_labels); label some "
                "cells or remove scanvi from integration.methods"
            )
        if hidden and labels[batches.astype(str).isin(hidden).to_numpy()].isna().all():
            raise InputError(
                f"{path}: integration.hide_labels names batch(es) {hidden} whose cells have no "
                f"label in obs column {data['label_column']!r}, so there is nothing to score the "
                "transfer against; name labelled batches or remove integration.hide_labels"
            )
    if labels.isna().all():
        raise InputError(
            f"{path}: obs column {data['label_column']!r} is empty for all {adata.n_obs} cells; "
            "the cell-type classification needs labelled cells"
        )
    if "cv" in exp:
        counts = labels.dropna().value_counts()
        check_class_sizes(counts, exp["cv"], f"{path}: obs column {data['label_column']!r}")


def latent_dataset(
    path: str | Path, exp: Mapping[str, Any], name: str = "experiment"
) -> TabularDataset:
    """Turn the labelled cells of an integrated ``.h5ad`` into a classification dataset.

    Features are the scVI latent dimensions (``scVI_1`` …, read by the deep model) and the
    principal components of the unintegrated data (``PC_1`` …, read by the logistic-regression
    baseline); ``feature_sets`` records which learner reads which.

    Parameters
    ----------
    path
        ``integrated.h5ad`` written by :func:`dlpipe.integration.save_integration`.
    exp
        The experiment's validated config.
    name
        Experiment name (for messages).

    Returns
    -------
    dlpipe.datasets.TabularDataset
        One row per labelled cell, indexed by obs name.
    """
    data = exp["data"]
    adata = read_h5ad(path)
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


class SingleCell(Modality):
    """Cells of several batches: scVI integration, then cell types on the latent space."""

    name = "singlecell"
    prediction_inputs = ()

    def check_config(self, key: str, exp: Mapping[str, Any]) -> None:
        """Check for an .h5ad with batch and label columns; refuse tabular-only keys."""
        data = exp["data"]
        if not data["path"]:
            raise ConfigError(
                f"config key {key}.data.path: a singlecell experiment needs its .h5ad"
            )
        if data["format"] not in ("auto", "h5ad") or not str(data["path"]).endswith(".h5ad"):
            raise ConfigError(
                f"config key {key}.data.path: single-cell counts are read from an AnnData .h5ad "
                f"file, not {data['path']!r}"
            )
        if not data["batch_column"]:
            raise ConfigError(
                f"config key {key}.data.batch_column: a singlecell experiment needs the obs "
                "column that names each cell's batch"
            )
        if exp["task"] != "classification" or not data["label_column"]:
            raise ConfigError(
                f"config key {key}.data.label_column: a singlecell experiment classifies cell "
                "types; set task: classification and name the obs column of labels (cells "
                "without a label are integrated but not classified)"
            )
        unused = ("genome", "bed", "blacklist", "fasta", "labels", "target_columns")
        for field_name in (*unused, "feature_columns", "id_column"):
            if data[field_name]:
                raise ConfigError(
                    f"config key {key}.data.{field_name}: singlecell experiments take cells from "
                    "obs_names and features from the scVI latent space; remove it"
                )
        if data["categorical_columns"] or data["exclude_columns"]:
            raise ConfigError(
                f"config key {key}.data: categorical_columns and exclude_columns do not apply to "
                "singlecell experiments (the features are the latent dimensions); remove them"
            )
        if data["batch_column"] in (data["label_column"], data["group_column"]):
            raise ConfigError(
                f"config key {key}.data.batch_column: {data['batch_column']!r} is also the label "
                "or group column; name the obs column of batches"
            )
        if exp["cv"]["plan"] in (*CHROMOSOME_PLANS, "leave_one_out"):
            raise ConfigError(
                f"config key {key}.cv.plan: {exp['cv']['plan']!r} does not apply to cells; use "
                "stratified_kfold (or group_kfold over donors)"
            )
        if exp["cv"]["plan"] == "group_kfold" and not data["group_column"]:
            raise ConfigError(
                f"config key {key}.data.group_column: cv.plan group_kfold needs the obs column "
                "of groups (donors, samples)"
            )
        methods = exp["integration"]["methods"]
        missing = [m for m in ("pca", "scvi") if m not in methods]
        if missing:
            raise ConfigError(
                f"config key {key}.integration.methods: {missing} must be listed: every method is "
                "scored against the unintegrated pca, and the classification's deep model reads "
                "the scvi latent space"
            )
        if exp["integration"]["hide_labels"] and "scanvi" not in methods:
            raise ConfigError(
                f"config key {key}.integration.hide_labels: only scANVI's label transfer uses "
                "it; add scanvi to integration.methods or remove hide_labels"
            )
        n_top = exp["integration"]["n_top_genes"]
        if exp["embed"]["enabled"]:
            raise ConfigError(
                f"config key {key}.embed.enabled: scVI already is the VAE of single-cell "
                "counts; the Gaussian VAE (embed) is for bulk tables"
            )
        if n_top is not None and n_top < exp["integration"]["n_latent"]:
            raise ConfigError(
                f"config key {key}.integration.n_top_genes: {n_top} genes cannot carry a "
                f"{exp['integration']['n_latent']}-dimensional latent space; raise it or set null"
            )

    def check_prediction_job(self, key: str, job: Mapping[str, Any], given: str) -> None:
        """Refused: new cells need the experiment's own scVI model."""
        raise ConfigError(
            f"config key {key}.experiment: {job['experiment']!r} classifies cells on the "
            "latent space of its own scVI run; new cells need mapping onto that model, "
            "which dlpipe predict does not do. Add the cells to the experiment's .h5ad "
            "(unlabelled: scANVI transfers labels to them) and run it again"
        )

    def prepare_inputs(self, name: str, exp: Mapping[str, Any]) -> dict[str, str]:
        """Name the integrated ``.h5ad`` of the integrate job."""
        return {"integrated": f"results/{name}/integrated.h5ad"}

    def report_files(self, name: str, exp: Mapping[str, Any]) -> dict[str, str]:
        """Name the integration's summary, scib table, verdict, UMAPs and label transfer."""
        files = {
            f"{name}_integration": f"results/{name}/integration/summary.json",
            f"{name}_scib": f"results/{name}/integration/scib.tsv",
            f"{name}_umap": f"results/{name}/integration/umap.png",
            f"{name}_verdict": f"results/{name}/integration/verdict.json",
        }
        if "scanvi" in exp["integration"]["methods"]:
            files[f"{name}_transfer"] = f"results/{name}/integration/label_transfer.png"
        return files

    def prepare(
        self, name: str, exp: Mapping[str, Any], folder: Path, integrated: str | None = None
    ) -> tuple[TabularDataset, dict[str, Any]]:
        """Read the labelled cells of the integrated ``.h5ad`` (the integrate job's output)."""
        if integrated is None:
            raise ValueError("a singlecell experiment is prepared from its integrated .h5ad")
        data = latent_dataset(integrated, exp, name)
        raw = str(exp["data"]["path"])
        return data, {raw: sha256(raw), data.meta["source"]: data.meta["sha256"]}

    def describe_data(self, name: str, exp: Mapping[str, Any]) -> str:
        """Cells, genes, batches and labelled cells of the counts."""
        adata = read_counts(exp["data"]["path"], exp["data"]["layer"])
        check_singlecell(adata, exp, name)
        batches = adata.obs[exp["data"]["batch_column"]].astype(str).value_counts()
        labelled = int(labels_of(adata, exp["data"]["label_column"]).notna().sum())
        cv = exp["cv"]
        if cv["plan"] != "holdout" and labelled < int(cv["n_splits"]):
            raise InputError(
                f"experiments.{name}: cv.n_splits={cv['n_splits']} is larger than the number of "
                f"labelled cells ({labelled}); lower cv.n_splits"
            )
        return (
            f"{name}: {adata.n_obs} cells × {adata.n_vars} genes of raw counts in "
            f"{len(batches)} batches, {labelled} labelled"
        )

    def baseline_name(self, exp: Mapping[str, Any], task: Task, kind: str = "linear") -> str:
        """Name a baseline: it reads the unintegrated PCA (``pca_logistic_regression``)."""
        return f"pca_{task.baseline_model_name(kind)}"

    def baseline_text(self, exp: Mapping[str, Any], kind: str = "linear") -> str:
        """Describe a baseline on the unintegrated PCA."""
        return f"{super().baseline_text(exp, kind)} on the unintegrated PCA"

    def model_inputs_text(
        self, meta: Mapping[str, Any], summaries: Sequence[Mapping[str, Any]]
    ) -> str:
        """Say what the deep model reads: its own columns, the scVI latent space."""
        return f"{len(meta['feature_sets']['model'])} latent dimensions"

    def read_new(
        self,
        source: Mapping[str, Any],
        exp: Mapping[str, Any],
        meta: Mapping[str, Any],
        first_preprocessor: Any,
    ) -> tuple[np.ndarray, Any, dict[str, Any]]:
        """Refused: see :meth:`check_prediction_job`."""
        raise InputError(
            "a single-cell experiment classifies cells on the latent space of its own scVI run; "
            "add new cells to its .h5ad (unlabelled: scANVI transfers labels to them) instead"
        )


MODALITY = SingleCell()
