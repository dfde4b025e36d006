"""Rules ``integrate`` and ``integration_metrics`` (rules/singlecell.smk): scVI and scib.

``integrate`` checks a single-cell experiment's counts and integrates its batches;
``integration_metrics`` scores the integration with scib-metrics and draws its UMAPs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from dlpipe.cells import EMBEDDINGS
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
    exp: Mapping[str, Any], adata_path: str, scib_tsv: str, umap_png: str
) -> pd.DataFrame:
    """Draw the integration UMAPs and score scVI against the PCA (scib-metrics)."""
    from dlpipe.plots.embeddings import umap_figure  # lazy: matplotlib, 0.4 s

    data = exp["data"]
    adata = read_h5ad(adata_path)
    umap_figure(adata, data["batch_column"], data["label_column"], umap_png)
    if exp["integration"]["benchmark"]:
        from dlpipe.integration_benchmark import scib_table  # lazy: scib-metrics and JAX, 4 s

        table = scib_table(adata, data["batch_column"], data["label_column"])
    else:
        table = pd.DataFrame(columns=["metric", "type", "cells", *EMBEDDINGS])
    table.to_csv(scib_tsv, sep="\t", index=False, float_format="%.6g")
    return table
