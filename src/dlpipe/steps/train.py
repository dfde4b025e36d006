"""Rules ``train`` and ``baseline`` (rules/train.smk): the fold's deep model and its baselines."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from dlpipe.io.files import read_json
from dlpipe.io.fitted import save_fitted
from dlpipe.modalities import get_modality

log = logging.getLogger(__name__)


def train_step(
    exp: Mapping[str, Any],
    train: str,
    val: str,
    preprocessor: str,
    meta: str,
    checkpoint: str,
    history: str,
    threads: int = 1,
    state_dir: str | None = None,
) -> None:
    """Train the deep model of one fold and write checkpoint and history.

    The modality the dataset was prepared as trains it (Lightning; graphs: a full-graph loop);
    ``state_dir`` keeps resumable checkpoints between attempts (see :func:`dlpipe.train.fit`).
    """
    info = read_json(meta)
    exp = {**exp, "task": info["task"]}  # the data's task: multilabel for several BEDs
    modality = get_modality(info.get("modality", "tabular"))
    modality.train_fold(
        exp, info, train, val, preprocessor, checkpoint, history, threads, state_dir
    )


def baseline_step(
    exp: Mapping[str, Any], train: str, preprocessor: str, meta: str, model_out: str
) -> None:
    """Fit every baseline of the experiment on the same training rows as the deep model.

    The baselines are those the prepare step recorded (``dataset.json``); they are written
    together as ``{name: fitted model}`` in one skops file.
    """
    info = read_json(meta)
    exp = {**exp, "task": info["task"]}
    modality = get_modality(info.get("modality", "tabular"))
    models = modality.fit_baselines(exp, info, train, preprocessor)
    log.info("fitted %s", ", ".join(models) or "no baseline")
    save_fitted(models, model_out)
