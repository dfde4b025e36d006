"""Rule ``preprocess`` (rules/preprocess.smk): fit on a fold's training side, write its sides."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dlpipe.datasets import load_dataset
from dlpipe.io.files import write_json
from dlpipe.io.fitted import save_fitted
from dlpipe.modalities import modality_of
from dlpipe.split import read_folds


def preprocess_step(
    exp: Mapping[str, Any],
    fold: int,
    dataset: str,
    meta: str,
    folds_tsv: str,
    outputs: Mapping[str, str],
) -> dict[str, Any]:
    """Fit preprocessing on the fold's training side and write train/val/test arrays.

    ``exp`` holds the experiment's ``task``, ``seed``, ``preprocess`` and ``data.modality``;
    ``outputs`` maps ``train``, ``val``, ``test``, ``preprocessor`` and ``summary`` to paths.
    """
    data = load_dataset(dataset, meta)
    arrays, fitted, summary = modality_of(exp).fold_sides(data, read_folds(folds_tsv), fold, exp)
    for side, arr in arrays.items():
        arr.save(outputs[side])
    save_fitted(fitted, outputs["preprocessor"])
    write_json(summary, outputs["summary"])
    return summary
