"""Rule ``predict`` (rules/predict.smk) and ``dlpipe predict``: new samples by the fold models."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from dlpipe.io.files import MANIFEST, read_json, verify_files, write_manifest
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
    manifest: str | None = None,
) -> pd.DataFrame:
    """One prediction job of the config's ``predict`` section to TSV.

    With ``manifest`` (the experiment's ``manifest.json``) every fold file is checked against
    it first, so a file replaced or damaged since training is refused, not read.
    """
    from dlpipe.learners import FoldModels, predict_new, read_temperatures  # lazy: torch

    if manifest is not None:
        verify_files(manifest, [meta, *checkpoints, *preprocessors, *calibrations])
    temperatures = read_temperatures(calibrations)
    models = FoldModels(
        exp,
        read_json(meta),
        list(checkpoints),
        list(preprocessors),
        temperatures,
        model_config=exp["model"],
    )
    frame = predict_new(models, job)
    frame.to_csv(out_tsv, sep="\t", index=False, float_format="%.6g")
    log.info("%d samples predicted by %d fold models", len(frame), len(checkpoints))
    return frame


def manifest_step(files: Sequence[str | Path], out: str | Path) -> None:
    """Rule ``manifest``: record the sha256 of the files of a trained experiment.

    Parameters
    ----------
    files
        The files to record, all inside the folder of ``out`` (the experiment's results folder,
        wherever Snakemake's storage has put it).
    out
        ``results/EXP/manifest.json``.
    """
    root = Path(out).parent.resolve()
    names = [Path(f).resolve().relative_to(root).as_posix() for f in files]
    write_manifest(root, names, out)
    log.info("%d files of %s recorded in %s", len(names), root.name, MANIFEST)


def predict_results_step(
    results: str | Path,
    path: str | Path,
    kind: str | None = None,
    genome: str | None = None,
    id_column: str | None = None,
    allow_missing_folds: bool = False,
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
    allow_missing_folds
        Predict with the fold models that remain when some are missing (see
        :meth:`dlpipe.learners.FoldModels.from_results`).

    Returns
    -------
    pandas.DataFrame
        See :func:`dlpipe.learners.predict_new`.
    """
    from dlpipe.learners import FoldModels, predict_new  # lazy: torch

    source = {kind or input_kind(path): str(path), "genome": genome, "id_column": id_column}
    return predict_new(FoldModels.from_results(results, allow_missing_folds), source)
