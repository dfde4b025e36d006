"""The learners of an experiment: what each reads, its scores, and the fold models as one predictor.

An experiment evaluates its learners in every fold: the deep model (``model.ckpt``) and, unless
disabled, its baselines (together in ``baselines.skops``), named by the modality
(:meth:`dlpipe.modalities.base.Modality.learners`). Each reads its own columns of a fold's
arrays (single cells: the scVI latent space for the deep model, the PCA for the baseline) and
gives probabilities or values through the task. For new data, the k fold models of an
experiment predict together: each after its own fold's preprocessing and, for classifiers, its
own temperature; the mean over models is the prediction and their standard deviation its
uncertainty.

The workflow's prediction jobs (the config's ``predict`` section) and ``dlpipe predict
results/EXP NEW_INPUT`` both go through :func:`predict_new`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlpipe.datasets import learner_input
from dlpipe.errors import InputError
from dlpipe.io.files import MANIFEST, read_json, read_manifest, verify_files
from dlpipe.io.fitted import load_fitted
from dlpipe.modalities import modality_of
from dlpipe.models import fold_model
from dlpipe.models.checkpoint import load_model, raw_outputs
from dlpipe.schema import load_yaml
from dlpipe.tasks import Task, get_task

log = logging.getLogger(__name__)


def _baselines(path: str | Path) -> dict[str, Any]:
    """Read the fold's baselines file once per job, however many baselines it holds."""
    stat = Path(path).stat()
    return _read_baselines(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _read_baselines(path: str, mtime_ns: int, size: int) -> dict[str, Any]:
    # mtime and size in the key: a file rewritten in the same process is read again.
    return load_fitted(path)


def learner_role(exp: Mapping[str, Any], learner: str) -> str:
    """``model`` for the deep model, ``baseline`` for the baseline."""
    return "model" if learner == exp["model"]["name"] else "baseline"


def learner_scores(
    exp: Mapping[str, Any],
    learner: str,
    model_path: str,
    X: np.ndarray,  # noqa: N803
    fitted: Any,
    task: Task,
    meta: Mapping[str, Any],
    model_config: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """Class (or target) probabilities, or original-scale predictions, of one learner.

    Parameters
    ----------
    exp
        The experiment's config (``model.name`` tells the deep model from the baseline).
    learner
        The learner's name.
    model_path
        Its ``model.ckpt``, or the fold's ``baselines.skops`` (which holds every baseline).
    X
        The fold's preprocessed rows (every column; the learner reads its own).
    fitted
        The fold's fitted preprocessor (target scaling, column names).
    task
        The data's task.
    meta
        The experiment's ``dataset.json``.
    model_config
        The experiment's ``model`` section; when given, a checkpoint of another model is
        refused (see :func:`dlpipe.models.checkpoint.load_model`).

    Returns
    -------
    numpy.ndarray
        ``(n, outputs)`` scores.
    """
    role = learner_role(exp, learner)
    X = learner_input(X, meta, role, fitted)  # noqa: N806
    if role == "model":
        # The fold trained its p ≫ n defaults, if any: compare the checkpoint with those.
        expected = (
            None
            if model_config is None
            else fold_model(model_config, getattr(fitted, "selection", None))
        )
        out = task.scores(raw_outputs(load_model(model_path, expected), X))
    else:
        out = task.baseline_scores(_baselines(model_path)[learner], X, task.n_outputs(meta))
    return task.finish(out, fitted)


def read_temperatures(paths: Iterable[str | Path]) -> list[dict[str, float]]:
    """Each fold's learner → temperature, read once from its ``calibration.json``.

    Parameters
    ----------
    paths
        The folds' ``calibration.json`` files, in fold order.

    Returns
    -------
    list of dict
        One mapping per fold; empty when any fold has none (regression, ``calibration.enabled:
        false``, or no files), so that either every fold model is calibrated or none is.

    Raises
    ------
    InputError
        If a file is not a calibration record or a temperature is not a positive number.
    """
    out = []
    for path in paths:
        record = read_json(path)
        learners = record.get("learners") if isinstance(record, dict) else None
        if not isinstance(learners, dict):
            raise InputError(f"{path}: not a dlpipe calibration record (no 'learners' mapping)")
        temperatures = {}
        for name, fit in learners.items():
            value = fit.get("temperature") if isinstance(fit, dict) else None
            if not isinstance(value, int | float) or not value > 0:
                raise InputError(
                    f"{path}: learners.{name}.temperature is {value!r}, not a positive number; "
                    "delete the file and rerun the workflow to refit it"
                )
            temperatures[name] = float(value)
        if not temperatures:
            return []
        out.append(temperatures)
    return out


@dataclass
class FoldModels:
    """What predicting with an experiment needs: its config, dataset meta and fold files.

    Attributes
    ----------
    exp
        The experiment's config (defaults filled).
    meta
        The experiment's ``dataset.json``.
    checkpoints, preprocessors
        One ``model.ckpt`` and ``preprocessor.skops`` per fold, in fold order.
    temperatures
        Per fold, each learner's temperature (see :func:`read_temperatures`); empty when
        calibration did not run.
    model_config
        The experiment's ``model`` section, which every checkpoint must have been trained with.
    """

    exp: Mapping[str, Any]
    meta: Mapping[str, Any]
    checkpoints: Sequence[str]
    preprocessors: Sequence[str]
    temperatures: Sequence[Mapping[str, float]] = field(default_factory=list)
    model_config: Mapping[str, Any] | None = None

    @classmethod
    def from_results(cls, folder: str | Path, allow_missing_folds: bool = False) -> FoldModels:
        """Read an experiment's results folder (``results/EXP``) written by the workflow.

        Every file read is first checked against the folder's ``manifest.json``: a file
        missing, changed since the workflow wrote it, or not recorded there is refused.

        Parameters
        ----------
        folder
            The results folder of one experiment.
        allow_missing_folds
            Predict with the fold models that remain when some are missing (a warning says
            how many); by default a missing fold model is an error, since the mean and spread
            over fewer models are not what the experiment measured.

        Raises
        ------
        InputError
            If the folder is not a complete, unaltered results folder of one experiment.
        """
        folder = Path(folder)
        for name in ("dataset.json", "config.yaml"):
            if not (folder / name).is_file():
                raise InputError(
                    f"{folder}: no {name}; give the results folder of one experiment "
                    "(results/EXPERIMENT) after the workflow has run it"
                )
        if read_json(folder / "dataset.json").get("modality") == "graph":
            raise InputError(
                f"{folder}: a graph experiment's models score pairs of its own graph, not new "
                "samples; its report lists the top novel pairs (interpret/novel_pairs.tsv)"
            )
        manifest = folder / MANIFEST
        recorded = read_manifest(manifest)
        folds = sorted(
            {int(name.split("/")[0]) for name in recorded if name.endswith("/model.ckpt")}
        )
        foreign = [
            p / "model.ckpt"
            for p in folder.iterdir()
            if p.name.isdigit() and int(p.name) not in folds and (p / "model.ckpt").exists()
        ]
        if foreign:
            raise InputError(
                f"{foreign[0]}: a fold model the manifest ({manifest}) does not record; dlpipe "
                "predicts only with the models the workflow wrote. Remove it"
            )
        needed = {k: [f"{k}/model.ckpt", f"{k}/preprocessor.skops"] for k in folds}
        calibrated = all(f"{k}/calibration.json" in recorded for k in folds)
        if calibrated:
            for k in folds:
                needed[k].append(f"{k}/calibration.json")
        missing = [k for k in folds if not all((folder / n).is_file() for n in needed[k])]
        if missing and not allow_missing_folds:
            raise InputError(
                f"{folder}: the files of fold model(s) {', '.join(map(str, missing))} of "
                f"{len(folds)} are missing ({folder / needed[missing[0]][0]} …); rerun the "
                "workflow to retrain them, or predict with the others (--allow-missing-folds)"
            )
        folds = [k for k in folds if k not in missing]
        if not folds:
            raise InputError(f"{folder}: holds no fold model (N/model.ckpt)")
        if missing:
            log.warning(
                "%s: fold model(s) %s missing; predicting with %d of %d models",
                folder,
                ", ".join(map(str, missing)),
                len(folds),
                len(folds) + len(missing),
            )
        files = ["config.yaml", "dataset.json"] + [n for k in folds for n in needed[k]]
        verify_files(manifest, [folder / n for n in files])
        exp = load_yaml(folder / "config.yaml")
        return cls(
            exp=exp,
            meta=read_json(folder / "dataset.json"),
            checkpoints=[str(folder / str(k) / "model.ckpt") for k in folds],
            preprocessors=[str(folder / str(k) / "preprocessor.skops") for k in folds],
            temperatures=read_temperatures(
                [folder / str(k) / "calibration.json" for k in folds] if calibrated else []
            ),
            model_config=exp["model"],
        )


def combine_folds(scores: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation over the fold models' predictions.

    Parameters
    ----------
    scores
        One ``(n, outputs)`` array per fold model.

    Returns
    -------
    tuple of numpy.ndarray
        ``(mean, sd)``, each ``(n, outputs)``; the sd is the sample sd over models (0 for one).
    """
    stack = np.stack([np.asarray(s, dtype=np.float64) for s in scores])
    sd = stack.std(axis=0, ddof=1) if len(stack) > 1 else np.zeros(stack.shape[1:])
    return stack.mean(axis=0), sd


def predict_new(models: FoldModels, source: Mapping[str, Any]) -> pd.DataFrame:
    """Predict new samples with every fold model; report the mean and sd over models.

    Parameters
    ----------
    models
        The experiment's fold models.
    source
        One of ``table`` (with optional ``id_column``), ``fasta``, or ``bed`` with ``genome``.

    Returns
    -------
    pandas.DataFrame
        ``id`` (and ``name`` for BED input), then per class ``prob_<class>`` and
        ``prob_<class>_sd`` and ``y_pred`` (classification), per target ``prob_<t>`` /
        ``prob_<t>_sd`` (multi-label) or ``pred_<t>`` / ``pred_<t>_sd`` on the original scale
        (regression), and ``models``. Classifier probabilities are temperature-scaled when the
        folds were calibrated (``calibrated`` column).
    """
    exp, meta = models.exp, models.meta
    modality = modality_of(exp)  # config.yaml's: single cells are tables of latent dimensions
    task = get_task(meta["task"])
    first = load_fitted(models.preprocessors[0]) if models.preprocessors else None
    ids, raw, extra = modality.read_new(source, exp, meta, first)
    name = exp["model"]["name"]
    if models.temperatures and (
        len(models.temperatures) != len(models.checkpoints)
        or any(name not in t for t in models.temperatures)
    ):
        raise InputError(
            f"the calibration records do not give a {name} temperature for each of the "
            f"{len(models.checkpoints)} fold models; rerun the workflow to refit them"
        )
    per_fold = []
    for k, (ckpt, pre) in enumerate(zip(models.checkpoints, models.preprocessors, strict=True)):
        fitted = load_fitted(pre)
        X = modality.model_input(raw, fitted)  # noqa: N806
        scores = learner_scores(exp, name, ckpt, X, fitted, task, meta, models.model_config)
        if models.temperatures and task.probabilistic:
            scores = task.apply_calibration(scores, models.temperatures[k][name])
        per_fold.append(scores)
    mean, sd = combine_folds(per_fold)
    frame = pd.DataFrame({"id": ids, **extra})
    return task.new_predictions(
        frame, mean, sd, meta, len(per_fold), calibrated=bool(models.temperatures)
    )
