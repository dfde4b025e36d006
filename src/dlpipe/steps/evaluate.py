"""Rules ``evaluate`` and ``aggregate`` (rules/evaluate.smk): score folds, then summarise them.

``evaluate`` calibrates each fold's learners on its validation side and scores them on its
test side; ``aggregate`` summarises the folds, pools their predictions and draws the figures.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from dlpipe.errors import InputError
from dlpipe.io.files import read_json, read_predictions, write_json
from dlpipe.io.fitted import load_fitted
from dlpipe.metrics import summarise_folds
from dlpipe.modalities import modality_of
from dlpipe.tasks import figure_names, get_task

log = logging.getLogger(__name__)


def side_scores(
    exp: Mapping[str, Any],
    task: Any,
    info: Mapping[str, Any],
    learner: str,
    path: str,
    side: Any,
    fitted: Any,
) -> Any:
    """Scores of one learner on a fold side: the modality's own, or from the side's ``X``."""
    modality = modality_of(exp)
    if modality.scores_learners:
        return modality.side_scores(exp, task, info, learner, path, side, fitted)
    from dlpipe.learners import learner_scores  # lazy: torch, 1.2 s

    return learner_scores(exp, learner, path, side.X, fitted, task, info)


def learner_files(
    exp: Mapping[str, Any],
    task: Any,
    info: Mapping[str, Any],
    model: str,
    baselines: str | None,
) -> dict[str, str]:
    """Each learner's file: the deep model's checkpoint, the baselines' shared file."""
    names = modality_of(exp).learners(exp, task, info)
    if len(names) > 1 and baselines is None:
        raise InputError(f"no baselines file given for {', '.join(names[1:])}")
    return {name: model if i == 0 else str(baselines) for i, name in enumerate(names)}


def calibrate_step(
    exp: Mapping[str, Any],
    fold: int,
    val: str,
    model: str,
    baselines: str | None,
    preprocessor: str,
    meta: str,
    out_json: str,
) -> dict[str, Any]:
    """Fit each learner's temperature on the fold's validation side and write them as JSON.

    Parameters
    ----------
    exp
        The experiment's config (``model.name``, ``baseline``, ``data.modality``,
        ``calibration.enabled``, ``calibration.min_validation``: fewer validation rows leave
        every temperature at 1, skipped as ``too_few_validation_rows``).
    fold
        The fold number (recorded in the output).
    val
        The fold's ``val.npz``; the only rows this step reads (it is given no test side).
    model, baselines
        The deep model's checkpoint and the fold's baselines file (``None``: no baselines).
    preprocessor
        The fold's fitted preprocessor.
    meta
        The dataset's ``dataset.json``.
    out_json
        Where to write ``{"learners": {name: {"temperature", "skipped", "val_before",
        "val_after"}}}`` (``skipped``: why a temperature was left at 1, or ``None``);
        ``learners`` is empty when the task has no probabilities and with
        ``calibration.enabled: false``.

    Returns
    -------
    dict
        What was written.
    """
    info = read_json(meta)
    task = get_task(info["task"])
    enabled = bool(exp.get("calibration", {}).get("enabled", True))
    # Below it, a temperature would follow a handful of rows (calibration.min_validation).
    min_rows = int(exp.get("calibration", {}).get("min_validation", 0))
    result: dict[str, Any] = {
        "fold": fold,
        "task": task.name,
        "fitted_on": "validation",
        "enabled": enabled and task.probabilistic,
        "learners": {},
    }
    if not result["enabled"]:
        write_json(result, out_json)
        return result
    modality = modality_of(exp)
    fitted = load_fitted(preprocessor)
    va = modality.load_side(val)
    result["n_val"] = len(va.ids)
    for learner, path in learner_files(exp, task, info, model, baselines).items():
        scores = side_scores(exp, task, info, learner, path, va, fitted)
        temperature, skipped = task.calibration_fit(va.y, scores, min_rows)
        after = task.apply_calibration(scores, temperature)
        result["learners"][learner] = {
            "temperature": temperature,
            # Why the temperature stayed at 1 (dlpipe.calibrate.SKIPPED), so the report says so.
            "skipped": skipped,
            "val_before": task.calibration_metrics(va.y, scores),
            "val_after": task.calibration_metrics(va.y, after),
        }
        log.info(
            "fold %d %s: temperature %s on %d validation rows",
            fold,
            learner,
            temperature,
            len(va.ids),
        )
    write_json(result, out_json)
    return result


def evaluate_step(
    exp: Mapping[str, Any],
    fold: int,
    test: str,
    model: str,
    baselines: str | None,
    preprocessor: str,
    meta: str,
    predictions_tsv: str,
    metrics_json: str,
    calibration: str | None = None,
) -> dict[str, Any]:
    """Score the deep model and the baselines on the fold's test side, the only step reading it.

    With ``calibration`` (the fold's ``calibration.json``, fitted on its validation side) the
    predictions also hold each learner's temperature-scaled probabilities (``calprob_*``).
    """
    info = read_json(meta)
    task = get_task(info["task"])
    temperatures = {}
    if calibration is not None:
        fitted_t = read_json(calibration)["learners"]
        temperatures = {name: rec["temperature"] for name, rec in fitted_t.items()}
    modality = modality_of(exp)
    fitted = load_fitted(preprocessor)
    te = modality.load_side(test)
    tables, results = [], {}
    for learner, path in learner_files(exp, task, info, model, baselines).items():
        scores = side_scores(exp, task, info, learner, path, te, fitted)
        calibrated = None
        if learner in temperatures:
            calibrated = task.apply_calibration(scores, temperatures[learner])
        table = task.prediction_table(te.ids, fold, learner, te.y, scores, info, calibrated)
        results[learner] = task.table_metrics(table, info)
        tables.append(modality.prediction_extras(table, te, fitted))
    pd.concat(tables).to_csv(predictions_tsv, sep="\t", index=False, float_format="%.8g")
    write_json(results, metrics_json)
    return results


def aggregate_step(
    exp: Mapping[str, Any],
    metrics_files: Sequence[str],
    prediction_files: Sequence[str],
    meta: str,
    metrics_tsv: str,
    oof_tsv: str,
    config_yaml: str | None = None,
) -> pd.DataFrame:
    """Summarise metrics over folds (mean, sd, 95 % CI, pooled) and pool the predictions.

    A metric the folds cannot summarise (:func:`dlpipe.metrics.pooled_summary`: leave-one-out,
    a holdout) is summarised by its pooled value with a bootstrap interval over samples.

    With ``config_yaml`` the experiment's full config (defaults filled in) is written beside
    the metrics, so the results folder says exactly how it was made.
    """
    info = read_json(meta)
    task = get_task(info["task"])
    if config_yaml is not None:
        Path(config_yaml).write_text(yaml.safe_dump(dict(exp), sort_keys=True))
    per_fold = {}
    for path in metrics_files:
        fold = int(Path(path).parent.name)
        per_fold[fold] = read_json(path)
    oof = pd.concat([read_predictions(p) for p in prediction_files], ignore_index=True)
    # The deep model first, then its baselines, in the tables and figures.
    learners = modality_of(exp).learners(exp, task, info)
    order = {name: i for i, name in enumerate(learners)}
    oof = oof.sort_values(
        ["learner", "fold", "id"], key=lambda col: col.map(order) if col.name == "learner" else col
    ).reset_index(drop=True)
    pooled = {
        learner: task.table_metrics(rows, info)
        for learner, rows in oof.groupby("learner", sort=False)
    }
    summary = summarise_folds(per_fold, task.metric_names, pooled, learners=learners)
    # Bootstrap intervals only for the learners with a metric summarised pooled (leave-one-out,
    # a holdout): a thousand resamples are not worth it where the folds give the interval.
    need = set(summary.loc[summary["summary"] == "pooled", "learner"])
    if need:
        seed = int(exp.get("seed", 0))
        intervals = {
            learner: task.pooled_intervals(rows, info, seed)
            for learner, rows in oof.groupby("learner", sort=False)
            if learner in need
        }
        summary = summarise_folds(
            per_fold, task.metric_names, pooled, learners=learners, pooled_intervals=intervals
        )
    summary.to_csv(metrics_tsv, sep="\t", index=False, float_format="%.6g")
    oof.to_csv(oof_tsv, sep="\t", index=False, float_format="%.8g")
    return summary


def figures_step(
    exp: Mapping[str, Any],
    oof_tsv: str,
    history_files: Sequence[str],
    meta: str,
    outdir: str,
    dataset: str | None = None,
) -> list[str]:
    """Draw the experiment's figures from pooled predictions and training histories.

    The task draws its own (ROC/PR curves, confusion matrices, reliability diagrams, or
    scatter plots), then the training curves, then the modality's (``dataset`` given: the GC
    content of sequence windows).
    """
    from dlpipe.plots.performance import training_curves  # lazy: matplotlib, 0.4 s

    info = read_json(meta)
    task = get_task(info["task"])
    modality = modality_of(exp)
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    oof = read_predictions(oof_tsv)
    histories = {int(Path(p).parent.name): pd.read_csv(p, sep="\t") for p in history_files}
    task.draw_figures(oof, info, out)
    training_curves(histories, out / "training.png")
    extra = modality.figures(info) if dataset else []
    if extra:
        modality.draw_figures(dataset, info, out)
    return [str(out / name) for name in figure_names(task, extra)]
