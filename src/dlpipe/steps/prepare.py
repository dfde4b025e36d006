"""Rule ``prepare`` (rules/prepare.smk): raw inputs → the checked dataset and its provenance."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dlpipe.io.files import write_json
from dlpipe.modalities import modality_of
from dlpipe.provenance import provenance
from dlpipe.tasks import get_task

log = logging.getLogger(__name__)


def prepare_step(
    name: str,
    exp: Mapping[str, Any],
    dataset: str,
    meta: str,
    provenance_json: str,
    workdir: str,
    inputs: Sequence[str] | None = None,
    integrated: str | None = None,
) -> Any:
    """Check and canonicalise an experiment's raw inputs; record provenance.

    Parameters
    ----------
    name
        Experiment name.
    exp
        Its validated config.
    dataset, meta, provenance_json
        Outputs: ``dataset.parquet``, ``dataset.json``, ``provenance.json``.
    workdir
        Folder whose git commit is recorded.
    inputs
        The job's local copies of the input files, when they differ from the config's paths
        (remote storage), in the order of the modality's ``input_files``.
    integrated
        The integrated ``.h5ad`` a single-cell experiment is prepared from.

    Returns
    -------
    dlpipe.datasets.TabularDataset or dlpipe.datasets.SequenceDataset
        The dataset written.
    """
    modality = modality_of(exp)
    if inputs is not None:
        exp = modality.with_inputs(exp, inputs)
    data, checksums = modality.prepare(name, exp, Path(dataset).parent, integrated)
    # One answer for every later step: which baselines ``auto`` means on these data.
    data.meta["baselines"] = modality.baseline_plan(exp, get_task(data.task), data.meta)
    data.save(dataset, meta)
    write_json(provenance(name, exp, checksums, workdir), provenance_json)
    log.info("%s: %d samples", name, data.meta["n_samples"])
    return data
