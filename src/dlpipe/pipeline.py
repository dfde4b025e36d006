"""One function per workflow step, reading and writing the step's files.

The Snakemake scripts in ``workflow/scripts`` only unpack ``snakemake.input``/``output`` and call
these; tests call them directly. Imports of torch happen inside the steps that train or predict,
so light steps start fast.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import yaml

from dlpipe.baselines import baseline_name, baseline_scores, make_baseline
from dlpipe.calibrate import CALIBRATION_METRICS, apply_temperature, table_calibration_metrics
from dlpipe.config import effective_task
from dlpipe.dataset import SequenceDataset, TabularDataset, load_dataset, prepare_tabular
from dlpipe.evaluate import (
    CLASSIFICATION_METRICS,
    MULTILABEL_METRICS,
    REGRESSION_METRICS,
    classification_metrics,
    multilabel_metrics,
    regression_metrics,
    softmax,
    summarise_folds,
)
from dlpipe.io import read_json, write_json
from dlpipe.preprocess import (
    FittedPreprocessor,
    FoldArrays,
    preprocess_fold,
    preprocess_sequence_fold,
)
from dlpipe.provenance import provenance
from dlpipe.split import fold_indices, make_folds, read_folds, write_folds

log = logging.getLogger(__name__)

METRIC_NAMES = {
    "classification": CLASSIFICATION_METRICS + CALIBRATION_METRICS,
    "multilabel": MULTILABEL_METRICS + CALIBRATION_METRICS,
    "regression": REGRESSION_METRICS,
}


def learner_names(exp: Mapping[str, Any]) -> list[str]:
    """Names of the learners an experiment evaluates: the deep model, then the baseline."""
    names = [exp["model"]["name"]]
    if exp["baseline"]["enabled"]:
        names.append(baseline_name(exp))
    return names


def prepare_step(
    name: str,
    exp: Mapping[str, Any],
    dataset: str,
    meta: str,
    provenance_json: str,
    workdir: str,
    integrated: str | None = None,
) -> TabularDataset | SequenceDataset:
    """Check and canonicalise the raw inputs; record provenance.

    A single-cell experiment reads its ``integrated`` ``.h5ad`` (the integrate step's output)
    and keeps its labelled cells.
    """
    if exp["data"]["modality"] == "singlecell":
        from dlpipe.io import sha256
        from dlpipe.singlecell import latent_dataset

        if integrated is None:
            raise ValueError("a singlecell experiment is prepared from its integrated .h5ad")
        data = latent_dataset(integrated, exp, name)
        raw = str(exp["data"]["path"])
        inputs = {raw: sha256(raw), data.meta["source"]: data.meta["sha256"]}
    elif exp["data"]["modality"] == "sequence" and exp["data"]["fasta"]:
        from dlpipe.sequence import prepare_fasta

        data: TabularDataset | SequenceDataset = prepare_fasta(exp, name)
        inputs = {data.meta["source"]: data.meta["sha256"]}
    elif exp["data"]["modality"] == "sequence":
        from dlpipe.sequence import prepare_sequence

        data = prepare_sequence(exp, name, cache_dir=Path(dataset).parent / "genome_index")
        inputs = {
            data.meta["source"]: data.meta["sha256"],
            data.meta["genome"]: data.meta["genome_sha256"],
        }
    else:
        data = prepare_tabular(exp, name)
        inputs = {data.meta["source"]: data.meta["sha256"]}
    data.save(dataset, meta)
    write_json(provenance(name, exp, inputs, workdir), provenance_json)
    log.info("%s: %d samples", name, data.meta["n_samples"])
    return data


def split_step(exp: Mapping[str, Any], dataset: str, meta: str, folds_tsv: str) -> pd.DataFrame:
    """Assign samples to train/val/test in every fold of the CV plan."""
    data = load_dataset(dataset, meta)
    chromosomes = data.windows["chrom"].to_numpy() if isinstance(data, SequenceDataset) else None
    folds = make_folds(
        data.ids, data.y, exp["cv"], data.task, int(exp["seed"]), data.groups, chromosomes
    )
    write_folds(folds, folds_tsv)
    return folds


def preprocess_step(
    exp: Mapping[str, Any],
    fold: int,
    dataset: str,
    meta: str,
    folds_tsv: str,
    outputs: Mapping[str, str],
) -> dict[str, Any]:
    """Fit preprocessing on the fold's training side and write train/val/test arrays.

    ``outputs`` maps ``train``, ``val``, ``test``, ``preprocessor`` and ``summary`` to paths.
    """
    data = load_dataset(dataset, meta)
    index = fold_indices(read_folds(folds_tsv), fold, data.ids)
    if isinstance(data, SequenceDataset):
        arrays, fitted, summary = preprocess_sequence_fold(data, index)
    else:
        arrays, fitted, summary = preprocess_fold(data, index, exp["preprocess"], int(exp["seed"]))
    for side, arr in arrays.items():
        arr.save(outputs[side])
    joblib.dump(fitted, outputs["preprocessor"])
    write_json(summary, outputs["summary"])
    return summary


def learner_features(
    X: np.ndarray,  # noqa: N803
    fitted: Any,
    data_meta: Mapping[str, Any],
    role: str,
) -> np.ndarray:
    """Select the columns of ``X`` that a learner reads (``role``: ``model`` or ``baseline``).

    Datasets with ``feature_sets`` give each learner its own features (single-cell: the scVI
    latent space for the deep model, the PCA for the baseline); others share every column.
    """
    if not data_meta.get("feature_sets"):
        return X
    wanted = set(learner_feature_names(fitted, data_meta, role))
    keep = [i for i, name in enumerate(fitted.feature_names) if name in wanted]
    return X[:, keep]


def learner_feature_names(fitted: Any, data_meta: Mapping[str, Any], role: str) -> list[str]:
    """Names of the preprocessed columns a learner reads, in the preprocessor's order."""
    sets = data_meta.get("feature_sets")
    if not sets:
        return list(fitted.feature_names)
    wanted = set(sets[role])
    return [name for name in fitted.feature_names if name in wanted]


def _n_outputs(data_meta: Mapping[str, Any]) -> int:
    if data_meta["task"] in ("classification", "multilabel"):
        return len(data_meta["classes"])
    return len(data_meta["target_columns"])


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
    from dlpipe.train import fit

    info = read_json(meta)
    exp = {**exp, "task": info["task"]}  # the data's task: multilabel for several BEDs
    fitted: FittedPreprocessor = joblib.load(preprocessor)
    tr, va = FoldArrays.load(train), FoldArrays.load(val)
    y_tr, y_va = tr.y, va.y
    if exp["task"] == "regression":
        y_tr, y_va = fitted.scale_targets(y_tr), fitted.scale_targets(y_va)
    X_tr, X_va = (learner_features(a.X, fitted, info, "model") for a in (tr, va))  # noqa: N806
    fit((X_tr, y_tr), (X_va, y_va), exp, _n_outputs(info), checkpoint, history, threads, state_dir)


def baseline_step(
    exp: Mapping[str, Any], train: str, preprocessor: str, meta: str, model_out: str
) -> None:
    """Fit the scikit-learn baseline on the same training rows as the deep model."""
    info = read_json(meta)
    exp = {**exp, "task": info["task"]}
    fitted: FittedPreprocessor = joblib.load(preprocessor)
    tr = FoldArrays.load(train)
    y = fitted.scale_targets(tr.y) if exp["task"] == "regression" else tr.y
    model = make_baseline(exp)
    model.fit(learner_features(tr.X, fitted, info, "baseline"), y)
    joblib.dump(model, model_out)


def learner_scores(
    exp: Mapping[str, Any],
    learner: str,
    model_path: str,
    X: np.ndarray,  # noqa: N803
    fitted: FittedPreprocessor,
    n_classes: int | None,
    task: str,
    data_meta: Mapping[str, Any],
) -> np.ndarray:
    """Class (or target) probabilities, or original-scale predictions, of one learner.

    The learner reads only its own columns of ``X`` (:func:`learner_features` with
    ``data_meta``, the experiment's ``dataset.json``).
    """
    role = "model" if learner == exp["model"]["name"] else "baseline"
    X = learner_features(X, fitted, data_meta, role)  # noqa: N806
    if role == "model":
        from dlpipe.inference import load_model, predict

        raw = predict(load_model(model_path), X)
        if task == "multilabel":
            return 1.0 / (1.0 + np.exp(-raw))
        out = softmax(raw) if n_classes else raw
    else:
        out = baseline_scores(joblib.load(model_path), X, n_classes, task)
    return out if n_classes else fitted.unscale_targets(out)


def prediction_table(
    ids: np.ndarray,
    fold: int,
    learner: str,
    y_true: np.ndarray,
    scores: np.ndarray,
    meta: Mapping[str, Any],
    calibrated: np.ndarray | None = None,
) -> pd.DataFrame:
    """Tidy predictions: id, fold, learner, then truth/prediction (and class probabilities).

    ``calibrated`` probabilities, when given, follow as ``calprob_*`` columns.
    """
    frame = pd.DataFrame({"id": ids, "fold": fold, "learner": learner})
    if meta["task"] == "multilabel":
        truth = np.asarray(y_true).reshape(len(ids), -1)
        for j, target in enumerate(meta["classes"]):
            frame[f"true_{target}"] = truth[:, j].astype(int)
            frame[f"prob_{target}"] = scores[:, j]
        if calibrated is not None:
            for j, target in enumerate(meta["classes"]):
                frame[f"calprob_{target}"] = calibrated[:, j]
    elif meta["task"] == "classification":
        classes = np.asarray(meta["classes"])
        frame["y_true"] = classes[np.asarray(y_true, dtype=int)]
        frame["y_pred"] = classes[scores.argmax(axis=1)]
        for j, cls in enumerate(classes):
            frame[f"prob_{cls}"] = scores[:, j]
        if calibrated is not None:
            for j, cls in enumerate(classes):
                frame[f"calprob_{cls}"] = calibrated[:, j]
    else:
        truth = np.asarray(y_true).reshape(len(ids), -1)
        for j, target in enumerate(meta["target_columns"]):
            frame[f"true_{target}"] = truth[:, j]
            frame[f"pred_{target}"] = scores[:, j]
    return frame


def table_metrics(frame: pd.DataFrame, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Metrics of one learner's rows of a prediction table."""
    if meta["task"] == "multilabel":
        targets = list(meta["classes"])
        out = multilabel_metrics(
            frame[[f"true_{t}" for t in targets]].to_numpy(),
            frame[[f"prob_{t}" for t in targets]].to_numpy(),
            targets,
        )
        return {**out, **table_calibration_metrics(frame, meta)}
    if meta["task"] == "classification":
        classes = list(meta["classes"])
        codes = pd.Categorical(frame["y_true"], categories=classes).codes
        proba = frame[[f"prob_{c}" for c in classes]].to_numpy()
        return {**classification_metrics(codes, proba), **table_calibration_metrics(frame, meta)}
    targets = list(meta["target_columns"])
    return regression_metrics(
        frame[[f"true_{t}" for t in targets]].to_numpy(),
        frame[[f"pred_{t}" for t in targets]].to_numpy(),
        targets,
    )


def evaluate_step(
    exp: Mapping[str, Any],
    fold: int,
    test: str,
    model: str,
    baseline: str | None,
    preprocessor: str,
    meta: str,
    predictions_tsv: str,
    metrics_json: str,
    calibration: str | None = None,
) -> dict[str, Any]:
    """Score the deep model and the baseline on the fold's test side, the only step reading it.

    With ``calibration`` (the fold's ``calibration.json``, fitted on its validation side) the
    predictions also hold each learner's temperature-scaled probabilities (``calprob_*``).
    """
    info = read_json(meta)
    temperatures = {}
    if calibration is not None:
        fitted_t = read_json(calibration)["learners"]
        temperatures = {name: rec["temperature"] for name, rec in fitted_t.items()}
    fitted: FittedPreprocessor = joblib.load(preprocessor)
    te = FoldArrays.load(test)
    n_classes = len(info["classes"]) if info["task"] != "regression" else None
    files = dict(zip(learner_names(exp), [model, baseline], strict=False))
    tables, results = [], {}
    for learner, path in files.items():
        scores = learner_scores(
            exp, learner, path, te.X, fitted, n_classes, info["task"], data_meta=info
        )
        calibrated = None
        if learner in temperatures:
            calibrated = apply_temperature(scores, temperatures[learner], info["task"])
        table = prediction_table(te.ids, fold, learner, te.y, scores, info, calibrated)
        results[learner] = table_metrics(table, info)
        tables.append(table)
    pd.concat(tables).to_csv(predictions_tsv, sep="\t", index=False, float_format="%.8g")
    write_json(results, metrics_json)
    return results


def read_predictions(path: str) -> pd.DataFrame:
    """Read a predictions TSV (ids and labels kept as text)."""
    return pd.read_csv(path, sep="\t", dtype={"id": str, "y_true": str, "y_pred": str})


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

    With ``config_yaml`` the experiment's full config (defaults filled in) is written beside
    the metrics, so the results folder says exactly how it was made.
    """
    info = read_json(meta)
    if config_yaml is not None:
        Path(config_yaml).write_text(yaml.safe_dump(dict(exp), sort_keys=True))
    per_fold = {}
    for path in metrics_files:
        fold = int(Path(path).parent.name)
        per_fold[fold] = read_json(path)
    oof = pd.concat([read_predictions(p) for p in prediction_files], ignore_index=True)
    # The deep model first, then its baseline, in the tables and figures.
    order = {name: i for i, name in enumerate(learner_names(exp))}
    oof = oof.sort_values(
        ["learner", "fold", "id"], key=lambda col: col.map(order) if col.name == "learner" else col
    ).reset_index(drop=True)
    pooled = {
        learner: table_metrics(rows, info) for learner, rows in oof.groupby("learner", sort=False)
    }
    names = METRIC_NAMES[info["task"]]
    summary = summarise_folds(per_fold, names, pooled, learners=learner_names(exp))
    summary.to_csv(metrics_tsv, sep="\t", index=False, float_format="%.6g")
    oof.to_csv(oof_tsv, sep="\t", index=False, float_format="%.8g")
    return summary


FIGURES = {
    "classification": ("roc_pr.png", "confusion.png", "reliability.png", "training.png"),
    "multilabel": ("roc_pr.png", "reliability.png", "training.png"),
    "regression": ("scatter.png", "r2_per_target.png", "training.png"),
}


def figure_names(exp: Mapping[str, Any]) -> list[str]:
    """File names of the figures an experiment's aggregate step draws."""
    names = list(FIGURES[effective_task(exp)])
    if exp["data"]["modality"] == "sequence" and exp["data"]["alphabet"] != "protein":
        names.append("gc.png")
    return names


def figures_step(
    oof_tsv: str,
    history_files: Sequence[str],
    meta: str,
    outdir: str,
    dataset: str | None = None,
) -> list[str]:
    """Draw the experiment's figures from pooled predictions and training histories.

    For sequence experiments (``dataset`` given) also the GC content of positives and negatives.
    """
    from dlpipe import plots

    info = read_json(meta)
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    oof = read_predictions(oof_tsv)
    histories = {int(Path(p).parent.name): pd.read_csv(p, sep="\t") for p in history_files}
    if info["task"] == "multilabel":
        plots.multilabel_curves(oof, info["classes"], out / "roc_pr.png")
    elif info["task"] == "classification":
        plots.roc_pr_curves(oof, info["classes"], out / "roc_pr.png")
        plots.confusion_matrices(oof, info["classes"], out / "confusion.png")
    else:
        targets = info["target_columns"]
        plots.regression_scatter(oof, targets, out / "scatter.png")
        per_target = {
            learner: table_metrics(rows, info)["per_target"]
            for learner, rows in oof.groupby("learner", sort=False)
        }
        plots.per_target_bars(per_target, out / "r2_per_target.png")
    if info["task"] != "regression":
        from dlpipe.interpret_plots import reliability_diagram

        reliability_diagram(oof, info, out / "reliability.png")
    plots.training_curves(histories, out / "training.png")
    names = list(FIGURES[info["task"]])
    if info.get("modality") == "sequence" and info["alphabet"] != "protein" and dataset:
        windows = pd.read_parquet(dataset, columns=["label", "gc"])
        plots.gc_histogram(windows, out / "gc.png")
        names.append("gc.png")
    return [str(out / name) for name in names]


def report_step(
    experiments: Mapping[str, Mapping[str, Any]],
    files: Mapping[str, Any],
    title: str,
    out_html: str,
) -> None:
    """Write the HTML report.

    ``files`` holds ``{exp}_meta``, ``_provenance``, ``_metrics``, ``_figures`` (folder) and
    ``_summaries`` (list) for every experiment, and the files of its extra sections
    (:func:`dlpipe.workflow.extra_report_files`).
    """
    from dlpipe.report import ExperimentFiles, build_report
    from dlpipe.report_latent import extra_sections

    entries = []
    for name, exp in experiments.items():
        figures = Path(files[f"{name}_figures"])
        entries.append(
            ExperimentFiles(
                name=name,
                config=exp,
                dataset_meta=files[f"{name}_meta"],
                provenance=files[f"{name}_provenance"],
                metrics=files[f"{name}_metrics"],
                preprocess_summaries=list(files[f"{name}_summaries"]),
                figures=[str(figures / f) for f in figure_names(exp)],
                sections=extra_sections(name, exp, files),
                extras={
                    key: files[f"{name}_{key}"]
                    for key in ("histories", "models", "calibrations", "interpret")
                    if f"{name}_{key}" in files
                },
            )
        )
    comparison = None
    if "comparison_leaderboard" in files:
        comparison = {
            "leaderboard": files["comparison_leaderboard"],
            "pairs": files["comparison_pairs"],
        }
    build_report(entries, title, out_html, comparison)
