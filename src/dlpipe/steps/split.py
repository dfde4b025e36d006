"""Rule ``split`` (rules/split.smk): the dataset → every sample's side in every fold."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from dlpipe.datasets import load_dataset
from dlpipe.split import write_folds
from dlpipe.tasks import dataset_folds


def split_step(exp: Mapping[str, Any], dataset: str, meta: str, folds_tsv: str) -> pd.DataFrame:
    """Assign samples to train/val/test in every fold of the CV plan (seeded)."""
    folds = dataset_folds(load_dataset(dataset, meta), exp)
    write_folds(folds, folds_tsv)
    return folds
