"""The tasks dlpipe learns, one class each: the one place that knows a task.

A task says what a model's outputs are (classes, independent targets, values) and how many,
which loss trains it, how raw outputs become probabilities or values, how its labels stratify
the folds and weight the loss, which linear baseline sits beside the deep model, which columns
its prediction table holds, which metrics and figures judge it, and which config rules apply to
it. Steps, modalities and the report ask the task instead of comparing task names; a new task
is one class here and a line in :data:`TASKS`.

The Snakefile imports this module to check a config, so the baselines (scikit-learn) and the
figures (matplotlib) are loaded by the methods that use them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from dlpipe.calibrate import (
    CALIBRATION_METRICS,
    apply_temperature,
    calibration_metrics,
    fit_temperature,
    resample_calibration_metrics,
    temperature_fit,
)
from dlpipe.cv import LINK_PLANS, STRATIFIED_PLANS
from dlpipe.errors import ConfigError
from dlpipe.metrics import (
    CLASSIFICATION_METRICS,
    LINK_METRICS,
    MULTILABEL_METRICS,
    REGRESSION_METRICS,
    bootstrap_values,
    classification_metrics,
    confusion_metrics,
    multilabel_metrics,
    percentile_interval,
    ranking_metrics,
    regression_metrics,
    resample_indices,
    sigmoid,
    softmax,
)


class Task:
    """What every task defines; see :class:`Classification` for a complete example."""

    #: The task's name (``task`` in the config and in ``dataset.json``).
    name: ClassVar[str]
    #: Whether ``task:`` in a config may name it (multi-label follows from the data).
    selectable: ClassVar[bool] = True
    #: Loss of the deep model (a key of :data:`dlpipe.train.LOSSES`).
    loss: ClassVar[str]
    #: Outputs are probabilities: temperature scaling, calibration metrics, reliability diagram.
    probabilistic: ClassVar[bool]
    #: One class per sample (attributions are averaged over the samples of each class).
    categorical: ClassVar[bool] = False
    #: Independent binary targets (one sigmoid and one temperature each).
    multilabel: ClassVar[bool] = False
    #: Scalar metrics per fold, summarised over folds.
    metric_names: ClassVar[tuple[str, ...]]
    #: The two metrics of the report's summary table.
    headline: ClassVar[tuple[str, str]]
    #: The metric learners are ranked on (first in the DOME summary).
    primary_metric: ClassVar[str]
    #: Figures of the aggregate step, besides the training curves.
    figures: ClassVar[tuple[str, ...]]
    #: What the deep model outputs, in words.
    outputs_text: ClassVar[str]
    #: Name of the linear baseline (modalities may prefix what it reads).
    baseline_name: ClassVar[str]

    def outputs(self, meta: Mapping[str, Any]) -> list[str]:
        """Names of the model's outputs: classes, or targets."""
        return list(meta["classes"])

    def n_outputs(self, meta: Mapping[str, Any]) -> int:
        """Return the number of model outputs."""
        return len(self.outputs(meta))

    def stratify(self, y: np.ndarray) -> np.ndarray | None:
        """Labels the folds are stratified on (``None``: no stratification)."""
        return None

    def training_targets(self, y: np.ndarray) -> np.ndarray:
        """Targets in the dtype and shape the loss expects."""
        y = np.asarray(y, dtype=np.float32)
        return y.reshape(len(y), -1)

    def scaled_targets(self, y: np.ndarray, fitted: Any) -> np.ndarray:
        """Targets as the models are fitted on them (regression: standardised on the fold)."""
        return y

    def balanced_weights(self, y: np.ndarray, n_outputs: int) -> list[float] | None:
        """Loss weights of ``training.class_weights: balanced`` from the training labels."""
        return None

    def scores(self, raw: np.ndarray) -> np.ndarray:
        """Probabilities (or values) from the deep model's raw outputs."""
        return raw

    def finish(self, scores: np.ndarray, fitted: Any) -> np.ndarray:
        """Scores on the scale they are reported on (regression: the original one)."""
        return scores

    def make_baseline(
        self, cfg: Mapping[str, Any], seed: int, balanced: bool, kind: str = "linear"
    ) -> Any:
        """Return an unfitted baseline (``kind``: ``linear`` or ``random_forest``)."""
        raise NotImplementedError

    def baseline_model_name(self, kind: str) -> str:
        """Name a baseline kind's model (``logistic_regression``, ``random_forest``)."""
        return self.baseline_name if kind == "linear" else kind

    def baseline_model_text(self, cfg: Mapping[str, Any], kind: str) -> str:
        """Describe a baseline kind's model and its strength, in words."""
        if kind == "random_forest":
            return f"random forest ({cfg['trees']} trees)"
        if self.probabilistic:
            return f"logistic regression (C={cfg['C']})"
        return f"ridge regression (alpha={cfg['alpha']})"

    def baseline_scores(self, model: Any, X: np.ndarray, n_outputs: int) -> np.ndarray:  # noqa: N803
        """Probabilities (or values) of a fitted baseline, one column per output."""
        raise NotImplementedError

    def calibrate(self, y: np.ndarray, proba: np.ndarray) -> float | list[float]:
        """Temperature(s) fitted on validation labels and probabilities."""
        return fit_temperature(y, proba, self.multilabel)

    def calibration_fit(
        self, y: np.ndarray, proba: np.ndarray, min_rows: int = 0
    ) -> tuple[Any, Any]:
        """Temperature(s) and why each was left at 1 (:func:`dlpipe.calibrate.temperature_fit`)."""
        return temperature_fit(y, proba, self.multilabel, min_rows)

    def apply_calibration(self, proba: np.ndarray, temperature: Any) -> np.ndarray:
        """Probabilities after temperature scaling."""
        return apply_temperature(proba, temperature, self.multilabel)

    def calibration_metrics(self, y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
        """``brier``, ``ece`` and ``nll`` of one set of probabilities."""
        return calibration_metrics(y, proba, self.multilabel)

    def prediction_table(
        self,
        ids: np.ndarray,
        fold: int,
        learner: str,
        y_true: np.ndarray,
        scores: np.ndarray,
        meta: Mapping[str, Any],
        calibrated: np.ndarray | None = None,
    ) -> pd.DataFrame:
        """Tidy predictions: id, fold, learner, then the task's truth and prediction columns.

        ``calibrated`` probabilities, when given, follow as ``calprob_*`` columns.
        """
        frame = pd.DataFrame({"id": ids, "fold": fold, "learner": learner})
        self.prediction_columns(frame, y_true, scores, meta, calibrated)
        return frame

    def prediction_columns(
        self,
        frame: pd.DataFrame,
        y_true: np.ndarray,
        scores: np.ndarray,
        meta: Mapping[str, Any],
        calibrated: np.ndarray | None,
    ) -> None:
        """Add the truth and prediction columns of one learner's rows to ``frame``."""
        raise NotImplementedError

    def truth(self, frame: pd.DataFrame, meta: Mapping[str, Any]) -> np.ndarray:
        """Return the true labels of a prediction table's rows, as the metrics take them."""
        raise NotImplementedError

    def table_metrics(self, frame: pd.DataFrame, meta: Mapping[str, Any]) -> dict[str, Any]:
        """Metrics of one learner's rows of a prediction table."""
        raise NotImplementedError

    def metric_statistic(
        self, frame: pd.DataFrame, meta: Mapping[str, Any]
    ) -> Callable[[np.ndarray], dict[str, Any]]:
        """Return the metrics of some of a learner's prediction rows, given by position.

        The statistic of the bootstrap over samples (:meth:`pooled_intervals`); called on every
        row it gives :meth:`table_metrics`.
        """
        return lambda idx: self.table_metrics(frame.iloc[idx], meta)

    def pooled_intervals(
        self, frame: pd.DataFrame, meta: Mapping[str, Any], seed: int
    ) -> dict[str, tuple[float, float]]:
        """Bootstrap 95 % intervals of the metrics of one learner's pooled predictions.

        Parameters
        ----------
        frame
            The learner's out-of-fold prediction rows.
        meta
            The dataset's record (classes or targets).
        seed
            Seed of the resamples.

        Returns
        -------
        dict
            ``{metric: (low, high)}`` (:func:`dlpipe.metrics.percentile_interval`).
        """
        frame = frame.reset_index(drop=True)
        values = bootstrap_values(
            self.metric_statistic(frame, meta), resample_indices(len(frame), seed)
        )
        return {metric: percentile_interval(v) for metric, v in values.items()}

    def table_calibration_metrics(
        self, frame: pd.DataFrame, meta: Mapping[str, Any]
    ) -> dict[str, float]:
        """Calibration metrics of raw ``prob_*`` and, if present, ``calprob_*`` columns.

        Returns
        -------
        dict
            :data:`dlpipe.calibrate.CALIBRATION_METRICS` (NaN for the calibrated ones when the
            table holds no calibrated probabilities).
        """
        truth = self.truth(frame, meta)
        raw = [f"prob_{c}" for c in meta["classes"]]
        out = self.calibration_metrics(truth, frame[raw].to_numpy())
        calibrated = [f"calprob_{c}" for c in meta["classes"]]
        if all(c in frame.columns for c in calibrated):
            after = self.calibration_metrics(truth, frame[calibrated].to_numpy())
        else:
            after = dict.fromkeys(out, float("nan"))
        out.update({f"{k}_calibrated": v for k, v in after.items()})
        return out

    def draw_figures(self, oof: pd.DataFrame, meta: Mapping[str, Any], out: Path) -> None:
        """Draw :attr:`figures` from the pooled out-of-fold predictions into ``out``."""
        raise NotImplementedError

    def explained_output(self, inputs: str) -> str:
        """Say what attributions explain (:class:`dlpipe.interpret.ExplainedOutput` mode)."""
        return "raw"

    def labels_text(self, meta: Mapping[str, Any]) -> str:
        """Say what the labels are, for the DOME summary (``meta``: ``dataset.json``)."""
        counts = (meta.get("meta") or {}).get("class_counts") or {}
        return ", ".join(f"{k}: {v}" for k, v in counts.items())

    def check_config(self, key: str, exp: Mapping[str, Any]) -> None:
        """Rules of the config that follow from the task (``key``: ``experiments.NAME``)."""

    def new_predictions(
        self,
        frame: pd.DataFrame,
        mean: np.ndarray,
        sd: np.ndarray,
        meta: Mapping[str, Any],
        n_models: int,
        calibrated: bool,
    ) -> pd.DataFrame:
        """Add the mean and spread over fold models of new samples' predictions to ``frame``."""
        outputs = self.outputs(meta)
        prefix = "prob" if self.probabilistic else "pred"
        for j, out in enumerate(outputs):
            frame[f"{prefix}_{out}"] = mean[:, j]
            frame[f"{prefix}_{out}_sd"] = sd[:, j]
        if self.categorical:
            frame["y_pred"] = np.asarray(outputs)[mean.argmax(axis=1)]
        frame["models"] = n_models
        if self.probabilistic:
            frame["calibrated"] = calibrated
        return frame


class Classification(Task):
    """One class per sample: softmax outputs, cross-entropy, stratified folds."""

    name = "classification"
    loss = "cross_entropy"
    probabilistic = True
    categorical = True
    metric_names = CLASSIFICATION_METRICS + CALIBRATION_METRICS
    headline = ("accuracy", "auroc")
    primary_metric = "auroc"
    figures = ("roc_pr.png", "confusion.png", "reliability.png")
    outputs_text = "outputs class probabilities (softmax)"
    baseline_name = "logistic_regression"

    def stratify(self, y: np.ndarray) -> np.ndarray | None:
        """Stratify on the class codes."""
        return np.asarray(y)

    def training_targets(self, y: np.ndarray) -> np.ndarray:
        """Class codes as int64 (cross-entropy's targets)."""
        return np.asarray(y, dtype=np.int64)

    def balanced_weights(self, y: np.ndarray, n_outputs: int) -> list[float] | None:
        """Inverse-frequency weights ``n / (k * n_c)`` (scikit-learn's rule; absent classes: 1)."""
        from sklearn.utils.class_weight import compute_class_weight  # lazy: 0.7 s

        present = np.unique(y)
        weights = np.ones(n_outputs)
        weights[present] = compute_class_weight("balanced", classes=present, y=y)
        return [float(w) for w in weights]

    def scores(self, raw: np.ndarray) -> np.ndarray:
        """Softmax over the logits."""
        return softmax(raw)

    def make_baseline(
        self, cfg: Mapping[str, Any], seed: int, balanced: bool, kind: str = "linear"
    ) -> Any:
        """L2 logistic regression, or a random forest."""
        from dlpipe import baselines  # lazy: scikit-learn, 0.7 s

        if kind == "random_forest":
            return baselines.random_forest_classifier(cfg, seed, balanced)
        return baselines.logistic_regression(cfg, seed, balanced)

    def baseline_scores(self, model: Any, X: np.ndarray, n_outputs: int) -> np.ndarray:  # noqa: N803
        """Probabilities of every class."""
        from dlpipe import baselines  # lazy: scikit-learn, 0.7 s

        return baselines.class_probabilities(model, X, n_outputs)

    def prediction_columns(
        self,
        frame: pd.DataFrame,
        y_true: np.ndarray,
        scores: np.ndarray,
        meta: Mapping[str, Any],
        calibrated: np.ndarray | None,
    ) -> None:
        """``y_true``, ``y_pred`` (class names) and ``prob_*`` (``calprob_*``) per class."""
        classes = np.asarray(meta["classes"])
        frame["y_true"] = classes[np.asarray(y_true, dtype=int)]
        frame["y_pred"] = classes[scores.argmax(axis=1)]
        for j, cls in enumerate(classes):
            frame[f"prob_{cls}"] = scores[:, j]
        if calibrated is not None:
            for j, cls in enumerate(classes):
                frame[f"calprob_{cls}"] = calibrated[:, j]

    def truth(self, frame: pd.DataFrame, meta: Mapping[str, Any]) -> np.ndarray:
        """Class codes of ``y_true``."""
        return pd.Categorical(frame["y_true"], categories=list(meta["classes"])).codes.astype(int)

    def table_metrics(self, frame: pd.DataFrame, meta: Mapping[str, Any]) -> dict[str, Any]:
        """Classification and calibration metrics."""
        classes = list(meta["classes"])
        codes = pd.Categorical(frame["y_true"], categories=classes).codes
        proba = frame[[f"prob_{c}" for c in classes]].to_numpy()
        return {
            **classification_metrics(codes, proba),
            **self.table_calibration_metrics(frame, meta),
        }

    def metric_statistic(
        self, frame: pd.DataFrame, meta: Mapping[str, Any]
    ) -> Callable[[np.ndarray], dict[str, Any]]:
        """Return :meth:`table_metrics` of some rows, from counts where it can (fast to redo)."""
        classes = list(meta["classes"])
        k = len(classes)
        codes = self.truth(frame, meta)
        proba = frame[[f"prob_{c}" for c in classes]].to_numpy()
        predicted = proba.argmax(axis=1)
        calibrated_columns = [f"calprob_{c}" for c in classes]
        calibrated = None
        if all(c in frame.columns for c in calibrated_columns):
            calibrated = frame[calibrated_columns].to_numpy()

        def statistic(idx: np.ndarray) -> dict[str, Any]:
            y, p = codes[idx], proba[idx]
            cm = np.bincount(y * k + predicted[idx], minlength=k * k).reshape(k, k)
            out: dict[str, Any] = confusion_metrics(cm)
            if len(np.unique(y)) > 1:
                out.update(ranking_metrics(y, p, fast=True))
            else:
                out.update(auroc=float("nan"), auprc=float("nan"))
            out.update(resample_calibration_metrics(y, p))
            after = {}
            if calibrated is not None:
                after = resample_calibration_metrics(y, calibrated[idx])
            out.update(
                {f"{m}_calibrated": after.get(m, float("nan")) for m in ("brier", "ece", "nll")}
            )
            return out

        return statistic

    def draw_figures(self, oof: pd.DataFrame, meta: Mapping[str, Any], out: Path) -> None:
        """ROC and PR curves, confusion matrices, reliability diagram."""
        from dlpipe.plots import performance  # lazy: matplotlib and scikit-learn

        performance.roc_pr_curves(oof, meta["classes"], out / "roc_pr.png")
        performance.confusion_matrices(oof, meta["classes"], out / "confusion.png")
        performance.reliability_diagram(oof, self, meta, out / "reliability.png")

    def explained_output(self, inputs: str) -> str:
        """Sequences: logits centred over classes; features: log-probabilities."""
        return "centred" if inputs == "sequence" else "log_softmax"

    def check_config(self, key: str, exp: Mapping[str, Any]) -> None:
        """Nothing beyond the modality's rules (a label column is data)."""


class MultiLabel(Task):
    """Independent binary targets (several BED files): sigmoid outputs, one temperature each."""

    name = "multilabel"
    selectable = False
    multilabel = True
    loss = "binary_cross_entropy"
    probabilistic = True
    metric_names = MULTILABEL_METRICS + CALIBRATION_METRICS
    headline = ("auroc", "auprc")
    primary_metric = "auroc"
    figures = ("roc_pr.png", "reliability.png")
    outputs_text = "outputs one probability per target (sigmoid)"
    baseline_name = "logistic_regression"

    def stratify(self, y: np.ndarray) -> np.ndarray | None:
        """Stratify on "positive for any target"."""
        return np.asarray(y).max(axis=1).astype(np.int64)

    def balanced_weights(self, y: np.ndarray, n_outputs: int) -> list[float] | None:
        """Per-target ``pos_weight`` = negatives / positives (1 for a target without positives)."""
        pos = y.sum(axis=0)
        neg = len(y) - pos
        return [float(n / p) if p > 0 else 1.0 for n, p in zip(neg, pos, strict=True)]

    def scores(self, raw: np.ndarray) -> np.ndarray:
        """One sigmoid per target."""
        return sigmoid(raw)

    def make_baseline(
        self, cfg: Mapping[str, Any], seed: int, balanced: bool, kind: str = "linear"
    ) -> Any:
        """One logistic regression (or random forest) per target."""
        from dlpipe import baselines  # lazy: scikit-learn, 0.7 s

        if kind == "random_forest":
            return baselines.one_vs_rest(baselines.random_forest_classifier(cfg, seed, balanced))
        return baselines.one_vs_rest(baselines.logistic_regression(cfg, seed, balanced))

    def baseline_scores(self, model: Any, X: np.ndarray, n_outputs: int) -> np.ndarray:  # noqa: N803
        """Probability of every target."""
        from dlpipe import baselines  # lazy: scikit-learn, 0.7 s

        return baselines.target_probabilities(model, X)

    def prediction_columns(
        self,
        frame: pd.DataFrame,
        y_true: np.ndarray,
        scores: np.ndarray,
        meta: Mapping[str, Any],
        calibrated: np.ndarray | None,
    ) -> None:
        """Tabulate ``true_*`` (0/1) and ``prob_*`` (``calprob_*``) per target."""
        truth = np.asarray(y_true).reshape(len(frame), -1)
        for j, target in enumerate(meta["classes"]):
            frame[f"true_{target}"] = truth[:, j].astype(int)
            frame[f"prob_{target}"] = scores[:, j]
        if calibrated is not None:
            for j, target in enumerate(meta["classes"]):
                frame[f"calprob_{target}"] = calibrated[:, j]

    def truth(self, frame: pd.DataFrame, meta: Mapping[str, Any]) -> np.ndarray:
        """Return the 0/1 target matrix."""
        return frame[[f"true_{t}" for t in meta["classes"]]].to_numpy(dtype=np.float64)

    def table_metrics(self, frame: pd.DataFrame, meta: Mapping[str, Any]) -> dict[str, Any]:
        """Per-target auROC and auPRC with their mean and median, macro F1, calibration."""
        targets = list(meta["classes"])
        out = multilabel_metrics(
            frame[[f"true_{t}" for t in targets]].to_numpy(),
            frame[[f"prob_{t}" for t in targets]].to_numpy(),
            targets,
        )
        return {**out, **self.table_calibration_metrics(frame, meta)}

    def draw_figures(self, oof: pd.DataFrame, meta: Mapping[str, Any], out: Path) -> None:
        """ROC and PR curves per target, reliability diagram."""
        from dlpipe.plots import performance  # lazy: matplotlib and scikit-learn

        performance.multilabel_curves(oof, meta["classes"], out / "roc_pr.png")
        performance.reliability_diagram(oof, self, meta, out / "reliability.png")


class Regression(Task):
    """One or more numeric targets: standardised values, mean squared error."""

    name = "regression"
    loss = "mse"
    probabilistic = False
    metric_names = REGRESSION_METRICS
    headline = ("r2", "pearson")
    primary_metric = "r2"
    figures = ("scatter.png", "r2_per_target.png")
    outputs_text = "outputs standardised targets, reported on the original scale"
    baseline_name = "ridge_regression"

    def outputs(self, meta: Mapping[str, Any]) -> list[str]:
        """Return the target columns."""
        return list(meta["target_columns"])

    def labels_text(self, meta: Mapping[str, Any]) -> str:
        """Count and name the targets (the first five)."""
        targets = meta["target_columns"]
        return f"{len(targets)} target(s): {', '.join(targets[:5])}" + (
            " …" if len(targets) > 5 else ""
        )

    def scaled_targets(self, y: np.ndarray, fitted: Any) -> np.ndarray:
        """Standardised with the training side's mean and scale (``preprocess.scale_targets``)."""
        return fitted.scale_targets(y)

    def finish(self, scores: np.ndarray, fitted: Any) -> np.ndarray:
        """Back to the original scale of the targets."""
        return fitted.unscale_targets(scores)

    def make_baseline(
        self, cfg: Mapping[str, Any], seed: int, balanced: bool, kind: str = "linear"
    ) -> Any:
        """Multi-output ridge regression, or a multi-output random forest."""
        from dlpipe import baselines  # lazy: scikit-learn, 0.7 s

        if kind == "random_forest":
            return baselines.random_forest_regressor(cfg, seed)
        return baselines.ridge_regression(cfg, seed)

    def baseline_scores(self, model: Any, X: np.ndarray, n_outputs: int) -> np.ndarray:  # noqa: N803
        """Predicted values of every target."""
        from dlpipe import baselines  # lazy: scikit-learn, 0.7 s

        return baselines.predicted_values(model, X)

    def prediction_columns(
        self,
        frame: pd.DataFrame,
        y_true: np.ndarray,
        scores: np.ndarray,
        meta: Mapping[str, Any],
        calibrated: np.ndarray | None,
    ) -> None:
        """Tabulate ``true_*`` and ``pred_*`` per target, on the original scale."""
        truth = np.asarray(y_true).reshape(len(frame), -1)
        for j, target in enumerate(meta["target_columns"]):
            frame[f"true_{target}"] = truth[:, j]
            frame[f"pred_{target}"] = scores[:, j]

    def truth(self, frame: pd.DataFrame, meta: Mapping[str, Any]) -> np.ndarray:
        """Return the true target matrix."""
        return frame[[f"true_{t}" for t in meta["target_columns"]]].to_numpy()

    def table_metrics(self, frame: pd.DataFrame, meta: Mapping[str, Any]) -> dict[str, Any]:
        """MSE, MAE, R² and Pearson per target and averaged."""
        targets = list(meta["target_columns"])
        return regression_metrics(
            frame[[f"true_{t}" for t in targets]].to_numpy(),
            frame[[f"pred_{t}" for t in targets]].to_numpy(),
            targets,
        )

    def draw_figures(self, oof: pd.DataFrame, meta: Mapping[str, Any], out: Path) -> None:
        """Predicted against true values, and pooled R² per target."""
        from dlpipe.plots import performance  # lazy: matplotlib and scikit-learn

        targets = meta["target_columns"]
        performance.regression_scatter(oof, targets, out / "scatter.png")
        per_target = {
            learner: self.table_metrics(rows, meta)["per_target"]
            for learner, rows in oof.groupby("learner", sort=False)
        }
        performance.per_target_bars(per_target, out / "r2_per_target.png")

    def check_config(self, key: str, exp: Mapping[str, Any]) -> None:
        """No stratified plans, SMOTE or class weights: they need classes."""
        plan = exp["cv"]["plan"]
        if plan in STRATIFIED_PLANS:
            raise ConfigError(
                f"config key {key}.cv.plan: {plan!r} stratifies on a class label and does "
                "not apply to regression; use kfold, repeated_kfold, group_kfold, leave_one_out "
                "or holdout"
            )
        if exp["preprocess"]["smote"]:
            raise ConfigError(
                f"config key {key}.preprocess.smote: SMOTE oversamples classes and does not "
                "apply to regression; set it to false"
            )
        if exp["training"]["class_weights"] != "none":
            raise ConfigError(
                f"config key {key}.training.class_weights: class weights apply to "
                "classification only; set it to none"
            )


#: ``y_true`` of a positive and of a negative pair in a link-prediction table.
EDGE, NON_EDGE = "edge", "non_edge"


class LinkPrediction(Task):
    """Whether a node pair is an edge: pairs scored and ranked against sampled non-edges.

    Every learner gives a score per pair, higher for a likelier edge: the GNN's inner product
    (as a sigmoid), a heuristic's count (common neighbours) or the logistic regression on the
    heuristics. Only rankings are judged (auROC, auPRC, Hits@K): the negatives are a sample of
    the non-edges, so the level of a score follows the sampled ratio and is not a calibrated
    probability of an interaction (no temperature, no reliability diagram).
    """

    name = "link_prediction"
    loss = "binary_cross_entropy"
    probabilistic = False
    metric_names = LINK_METRICS
    headline = ("auroc", "auprc")
    primary_metric = "auprc"
    figures = ("roc_pr.png",)
    outputs_text = "scores a node pair by the inner product of its two node embeddings"
    baseline_name = "heuristic_regression"

    def outputs(self, meta: Mapping[str, Any]) -> list[str]:
        """One output: the score of a pair."""
        return ["score"]

    def labels_text(self, meta: Mapping[str, Any]) -> str:
        """Say what a positive and a negative pair are."""
        m = meta.get("meta") or {}
        return (
            f"{m.get('n_edges')} edges over {m.get('n_nodes')} nodes (positives) against "
            "non-edges drawn per fold (negatives)"
        )

    def baseline_model_name(self, kind: str) -> str:
        """Name a baseline by its kind (``common_neighbours`` …, ``heuristic_regression``)."""
        return kind

    def baseline_model_text(self, cfg: Mapping[str, Any], kind: str) -> str:
        """Describe a heuristic, or the logistic regression on the heuristics."""
        from dlpipe.link_heuristics import heuristic_text  # lazy: scipy and scikit-learn

        return heuristic_text(kind)

    def prediction_columns(
        self,
        frame: pd.DataFrame,
        y_true: np.ndarray,
        scores: np.ndarray,
        meta: Mapping[str, Any],
        calibrated: np.ndarray | None,
    ) -> None:
        """``y_true`` (``edge`` or ``non_edge``) and ``score`` of each pair."""
        frame["y_true"] = np.where(np.asarray(y_true).ravel() == 1, EDGE, NON_EDGE)
        frame["score"] = np.asarray(scores, dtype=np.float64).ravel()

    def truth(self, frame: pd.DataFrame, meta: Mapping[str, Any]) -> np.ndarray:
        """1 for an edge, 0 for a non-edge."""
        return (frame["y_true"] == EDGE).to_numpy().astype(int)

    def table_metrics(self, frame: pd.DataFrame, meta: Mapping[str, Any]) -> dict[str, Any]:
        """AuROC, auPRC and Hits@K, with the counts of edges and non-edges."""
        from dlpipe.link_metrics import link_metrics  # lazy: scikit-learn, 0.7 s

        return link_metrics(self.truth(frame, meta), frame["score"].to_numpy())

    def draw_figures(self, oof: pd.DataFrame, meta: Mapping[str, Any], out: Path) -> None:
        """ROC and precision-recall curves of the pairs' scores."""
        from dlpipe.plots import performance  # lazy: matplotlib and scikit-learn

        performance.link_curves(oof, out / "roc_pr.png")

    def check_config(self, key: str, exp: Mapping[str, Any]) -> None:
        """Link prediction is a graph task, split by a link plan; no SMOTE or class weights."""
        if exp["data"]["modality"] != "graph":
            raise ConfigError(
                f"config key {key}.task: link_prediction needs a graph (data.modality: graph)"
            )
        if exp["cv"]["plan"] not in LINK_PLANS:
            raise ConfigError(
                f"config key {key}.cv.plan: {exp['cv']['plan']!r} splits samples, not the edges "
                f"of a graph; use {' or '.join(LINK_PLANS)}"
            )
        if exp["preprocess"]["smote"] or exp["training"]["class_weights"] != "none":
            raise ConfigError(
                f"config key {key}: link prediction draws its non-edges per side "
                "(cv.negative_ratio per edge); set preprocess.smote: false and "
                "training.class_weights: none"
            )


#: Every task by name.
TASKS: dict[str, Task] = {
    t.name: t for t in (Classification(), MultiLabel(), Regression(), LinkPrediction())
}


def get_task(name: str) -> Task:
    """Return the task of a name (``task`` of a config or of ``dataset.json``)."""
    return TASKS[name]


def selectable_tasks() -> list[str]:
    """Names a config's ``task`` key may take."""
    return [name for name, task in TASKS.items() if task.selectable]


def figure_names(task: Task, extra: Sequence[str] = ()) -> list[str]:
    """File names of an experiment's figures: the task's, the training curves, the modality's."""
    return [*task.figures, "training.png", *extra]


def dataset_folds(data: Any, exp: Mapping[str, Any]) -> pd.DataFrame:
    """Assign a dataset's samples to train, val and test in every fold of the CV plan.

    Parameters
    ----------
    data
        A dataset of :mod:`dlpipe.datasets` (ids, labels, groups, chromosomes, task).
    exp
        The experiment's config (``cv`` and ``seed``).

    Returns
    -------
    pandas.DataFrame
        See :func:`dlpipe.split.make_folds`; stratified as the data's task says.
    """
    from dlpipe.split import make_folds  # lazy: scikit-learn, 0.7 s; the Snakefile imports tasks

    return make_folds(
        data.ids,
        exp["cv"],
        int(exp["seed"]),
        labels=get_task(data.task).stratify(data.y),
        groups=data.groups,
        chromosomes=data.chromosomes,
        clusters=data.clusters,
    )
