"""Rule ``predict`` (rules/predict.smk) and ``dlpipe predict``: new samples by the fold models."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from dlpipe.io.files import read_json
from dlpipe.io.tables import input_kind

log = logging.getLogger(__name__)


def predict_step(
    exp: Mapping[str, Any],
    job: Mapping[str, Any],
    meta: str,
    checkpoints: Sequence[str],
    preprocessors: Sequence[str],
    calibrations: Sequence[str],
    out_tsv: str,
) -> pd.DataFrame:
    """One prediction job of the config's ``predict`` section to TSV."""
    from dlpipe.learners import FoldModels, predict_new, read_temperatures  # lazy: torch

    temperatures = read_temperatures(calibrations)
    models = FoldModels(exp, read_json(meta), list(checkpoints), list(preprocessors), temperatures)
    frame = predict_new(models, job)
    frame.to_csv(out_tsv, sep="\t", index=False, float_format="%.6g")
    log.info("%d samples predicted by %d fold models", len(frame), len(checkpoints))
    return frame


def predict_results_step(
    results: str | Path,
    path: str | Path,
    kind: str | None = None,
    genome: str | None = None,
    id_column: str | None = None,
) -> pd.DataFrame:
    """Predict new samples with the fold models of an experiment's results folder.

    Parameters
    ----------
    results
        The experiment's results folder (``results/EXP``) as the workflow wrote it.
    path
        The new samples: a table, a FASTA file, or a BED file (with ``genome``).
    kind
        ``table``, ``fasta`` or ``bed``; by default from the file name.
    genome
        Reference FASTA of a BED file.
    id_column
        Id column of a table (default: the experiment's).

    Returns
    -------
    pandas.DataFrame
        See :func:`dlpipe.learners.predict_new`.
    """
    from dlpipe.learners import FoldModels, predict_new  # lazy: torch

    source = {kind or input_kind(path): str(path), "genome": genome, "id_column": id_column}
    return predict_new(FoldModels.from_results(results), source)
