"""Rules ``train`` and ``baseline`` (rules/train.smk): the fold's deep model and its baselines."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from dlpipe.datasets import learner_input
from dlpipe.io.files import read_json
from dlpipe.io.fitted import load_fitted, save_fitted
from dlpipe.modalities import modality_of
from dlpipe.models import fold_model
from dlpipe.preprocess import FittedPreprocessor, FoldArrays
from dlpipe.tasks import get_task

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
    """Train the deep model of one fold (Lightning) and write checkpoint and history.

    ``state_dir`` keeps resumable checkpoints between attempts (see :func:`dlpipe.train.fit`).
    """
    from dlpipe.train import fit  # lazy: Lightning, 4 s

    info = read_json(meta)
    task = get_task(info["task"])
    exp = {**exp, "task": info["task"]}  # the data's task: multilabel for several BEDs
    # training.reverse_complement as resolved for these data when they were prepared (auto:
    # unstranded DNA windows only); data without a strand plan are not sequences.
    plan = info.get("meta", {}).get("strand", {})
    exp["training"] = {
        **exp["training"],
        "reverse_complement": bool(plan.get("reverse_complement", False)),
    }
    fitted: FittedPreprocessor = load_fitted(preprocessor)
    # p ≫ n folds: an MLP's unset hidden_layers and dropout take the narrow defaults.
    exp["model"] = fold_model(exp["model"], getattr(fitted, "selection", None))
    tr, va = FoldArrays.load(train), FoldArrays.load(val)
    y_tr, y_va = task.scaled_targets(tr.y, fitted), task.scaled_targets(va.y, fitted)
    X_tr, X_va = (learner_input(a.X, info, "model", fitted) for a in (tr, va))  # noqa: N806
    fit(
        (X_tr, y_tr),
        (X_va, y_va),
        exp,
        task,
        task.n_outputs(info),
        checkpoint,
        history,
        threads,
        state_dir,
    )


def baseline_step(
    exp: Mapping[str, Any], train: str, preprocessor: str, meta: str, model_out: str
) -> None:
    """Fit every baseline of the experiment on the same training rows as the deep model.

    The baselines are those the prepare step recorded (``dataset.json``); they are written
    together as ``{name: fitted model}`` in one skops file.
    """
    info = read_json(meta)
    task = get_task(info["task"])
    exp = {**exp, "task": info["task"]}
    modality = modality_of(exp)
    fitted: FittedPreprocessor = load_fitted(preprocessor)
    tr = FoldArrays.load(train)
    y = task.scaled_targets(tr.y, fitted)
    X = learner_input(tr.X, info, "baseline", fitted)  # noqa: N806
    models = {}
    for name, kind in modality.baselines_of(exp, task, info).items():
        log.info("fitting %s on %d rows", name, len(X))
        models[name] = modality.make_baseline(exp, task, kind).fit(X, y)
    save_fitted(models, model_out)
