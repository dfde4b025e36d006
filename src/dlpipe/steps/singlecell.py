"""Rules ``integrate``, ``integration_metrics`` and ``label_transfer`` (rules/singlecell.smk).

``integrate`` checks a single-cell experiment's counts and embeds them with each integration
method; ``integration_metrics`` scores the methods with scib-metrics, states the verdict and
draws the UMAPs; ``label_transfer`` tables and draws scANVI's transferred labels.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from dlpipe.cells import (
    PREDICTION,
    PROBABILITY,
    TRANSFERRED,
    embeddings,
    labels_of,
    methods_of,
)
from dlpipe.io.files import sha256, write_json
from dlpipe.io.h5ad import read_counts, read_h5ad
from dlpipe.modalities import modality_of
from dlpipe.modalities.singlecell import check_singlecell

log = logging.getLogger(__name__)


def integrate_step(
    name: str,
    exp: Mapping[str, Any],
    outputs: Mapping[str, str],
    threads: int = 1,
    inputs: Sequence[str] | None = None,
) -> Any:
    """Check the counts, integrate them and write the integrate rule's outputs.

    ``outputs`` maps ``adata`` (the integrated ``.h5ad``), ``models`` (folder of the
    scvi-tools models), ``summary`` (JSON) and ``history`` (TSV) to paths; ``inputs`` are the
    job's local copies of the counts when they differ from the config's path (remote storage).
    """
    from dlpipe.integration import integrate, save_integration  # lazy: scvi-tools, 6 s

    if inputs is not None:
        exp = modality_of(exp).with_inputs(exp, inputs)
    data = exp["data"]
    adata = read_counts(data["path"], data["layer"])
    check_singlecell(adata, exp, name)
    log.info("%s: %d cells × %d genes of raw counts", name, adata.n_obs, adata.n_vars)
    result = integrate(adata, exp, threads)
    result.summary.update(source=str(data["path"]), sha256=sha256(data["path"]))
    save_integration(result, outputs["adata"], outputs["models"], outputs["history"])
    write_json(result.summary, outputs["summary"])
    return result


def integration_metrics_step(
    exp: Mapping[str, Any], adata_path: str, scib_tsv: str, umap_png: str, verdict_json: str
) -> pd.DataFrame:
    """Draw the integration UMAPs, score the methods (scib-metrics) and state the verdict."""
    from dlpipe.plots.embeddings import umap_figure  # lazy: matplotlib, 0.4 s

    data, cfg = exp["data"], exp["integration"]
    adata = read_h5ad(adata_path)
    umap_figure(adata, data["batch_column"], data["label_column"], umap_png)
    if cfg["benchmark"]:
        # lazy: scib-metrics and JAX, 4 s
        from dlpipe.integration_benchmark import integration_verdict, scib_table, shared_labels

        batch_col, label_col = data["batch_column"], data["label_column"]
        table = scib_table(adata, batch_col, label_col)
        labels = labels_of(adata, label_col).notna().to_numpy()
        labelled_batches = int(adata.obs.loc[labels, batch_col].nunique())
        shared = shared_labels(adata.obs, batch_col, label_col)
        verdict = integration_verdict(table, cfg["verdict_margin"], labelled_batches, len(shared))
        for warning in verdict["warnings"]:
            log.warning("%s", warning)
    else:
        columns = ["metric", "type", "cells", *embeddings(methods_of(adata))]
        table = pd.DataFrame(columns=columns)
        verdict = {"sentence": None, "warnings": [], "methods": {}, "benchmark": False}
    table.to_csv(scib_tsv, sep="\t", index=False, float_format="%.6g")
    write_json(verdict, verdict_json)
    return table


def label_transfer_step(exp: Mapping[str, Any], adata_path: str, tsv: str, png: str) -> None:
    """Table scANVI's label transfer per cell and draw its confidence and composition."""
    from dlpipe.plots.embeddings import transfer_figure  # lazy: matplotlib, 0.4 s

    data = exp["data"]
    adata = read_h5ad(adata_path)
    if TRANSFERRED not in adata.obs:
        raise ValueError(f"{adata_path}: no scANVI label transfer (is scanvi in methods?)")
    targets = adata.obs[TRANSFERRED].notna().to_numpy()
    obs = adata.obs.loc[targets]
    table = pd.DataFrame(
        {
            "cell": obs.index.astype(str),
            "batch": obs[data["batch_column"]].astype(str).to_numpy(),
            "label": obs[TRANSFERRED].astype(str).to_numpy(),
            "most_probable": obs[PREDICTION].astype(str).to_numpy(),
            "probability": obs[PROBABILITY].to_numpy(),
            "true_label": labels_of(adata, data["label_column"])[targets].to_numpy(),
        }
    )
    table.to_csv(tsv, sep="\t", index=False, float_format="%.6g")
    transfer_figure(adata.obs, data["batch_column"], data["label_column"],
                    exp["integration"]["label_confidence"], png)  # fmt: skip
