"""Rule ``split`` (rules/split.smk): the dataset → every sample's side in every fold."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from dlpipe.datasets import load_dataset
from dlpipe.io.files import read_json
from dlpipe.modalities import get_modality
from dlpipe.split import write_folds


def split_step(exp: Mapping[str, Any], dataset: str, meta: str, folds_tsv: str) -> pd.DataFrame:
    """Assign samples to train/val/test in every fold of the CV plan (seeded).

    The modality the dataset was prepared as assigns them (graphs: node pairs, by link plans).
    """
    modality = get_modality(read_json(meta).get("modality", "tabular"))
    folds = modality.folds(load_dataset(dataset, meta), exp)
    write_folds(folds, folds_tsv)
    return folds
