"""Rule ``split`` (rules/split.smk): the dataset → every sample's side in every fold."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from dlpipe.datasets import load_dataset
from dlpipe.split import make_folds, write_folds
from dlpipe.tasks import get_task


def split_step(exp: Mapping[str, Any], dataset: str, meta: str, folds_tsv: str) -> pd.DataFrame:
    """Assign samples to train/val/test in every fold of the CV plan (seeded)."""
    data = load_dataset(dataset, meta)
    folds = make_folds(
        data.ids,
        exp["cv"],
        int(exp["seed"]),
        labels=get_task(data.task).stratify(data.y),
        groups=data.groups,
        chromosomes=data.chromosomes,
    )
    write_folds(folds, folds_tsv)
    return folds
