"""Metrics per fold, summaries over folds with confidence intervals, and pooled predictions.

All metrics come from scikit-learn (Pearson from scipy). Binary tasks treat the second class in
sorted order as positive; multi-class tasks report macro averages (one-vs-rest for auROC and
auPRC). A metric that is undefined on a fold (auROC with one class present) is NaN, not zero.

The tasks (:mod:`dlpipe.tasks`) name these metrics when the Snakefile checks a config, so
scikit-learn and scipy are loaded by the functions that compute them.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

CLASSIFICATION_METRICS = (
    "accuracy",
    "balanced_accuracy",
    "precision",
    "recall",
    "f1",
    "mcc",
    "auroc",
    "auprc",
)
REGRESSION_METRICS = ("mse", "mae", "r2", "pearson")
MULTILABEL_METRICS = ("auroc", "auprc", "auroc_median", "auprc_median", "f1_macro")
#: Metrics for which lower is better (errors and calibration losses); higher for all others.
LOWER_IS_BETTER = ("mse", "mae", "brier", "ece", "nll")
#: Range of each metric; confidence intervals are computed on a scale that keeps them in it.
METRIC_BOUNDS = {
    **dict.fromkeys(CLASSIFICATION_METRICS, (0.0, 1.0)),
    "mcc": (-1.0, 1.0),
    "mse": (0.0, np.inf),
    "mae": (0.0, np.inf),
    "r2": (-np.inf, 1.0),
    "pearson": (-1.0, 1.0),
    "auroc_median": (0.0, 1.0),
    "auprc_median": (0.0, 1.0),
    "f1_macro": (0.0, 1.0),
    # Calibration (dlpipe.calibrate): Brier score halved into [0, 1], ECE, negative log-likelihood.
    "brier": (0.0, 1.0),
    "ece": (0.0, 1.0),
    "nll": (0.0, np.inf),
}
#: A fold value on a bound is moved inside it before the transform (a perfect fold would otherwise
#: lie infinitely far away on the logit or log scale): by half the smallest distance of another
#: fold from that bound, or by this fraction of the range when every fold lies on a bound.
BOUND_OFFSET = 1e-3
#: How the intervals are made, for the report.
INTERVAL_METHOD = (
    "Student t over folds on a scale that respects the metric's range (logit for metrics "
    "bounded on both sides, log of the distance to the bound for one-sided ones), mapped back"
)


def metric_bounds(metric: str) -> tuple[float, float]:
    """Range of a metric (``*_calibrated`` as its raw metric); unbounded when unknown."""
    return METRIC_BOUNDS.get(metric.removesuffix("_calibrated"), (-np.inf, np.inf))


#: What a metric scores for predictions unrelated to the truth (metrics not listed depend on the
#: data, e.g. auPRC on the prevalence).
CHANCE = {"auroc": 0.5, "mcc": 0.0, "r2": 0.0, "pearson": 0.0, "spearman": 0.0}


def at_chance(metric: str, ci_low: float) -> bool:
    """Whether a metric's 95 % interval reaches down to chance (see :data:`CHANCE`).

    Such a learner is not shown to do better than predictions unrelated to the truth; a
    missing interval or a metric without a fixed chance level is never flagged.
    """
    chance = CHANCE.get(metric)
    return chance is not None and bool(np.isfinite(ci_low)) and ci_low <= chance


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, numerically stable."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    expo = np.exp(shifted)
    return expo / expo.sum(axis=1, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Element-wise logistic function (independent probabilities of multi-label targets)."""
    return 1.0 / (1.0 + np.exp(-logits))


def classification_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, Any]:
    """Classification metrics from class codes and class probabilities.

    Parameters
    ----------
    y_true
        True class codes ``0..k-1``.
    proba
        ``(n, k)`` class probabilities.

    Returns
    -------
    dict
        The metrics in :data:`CLASSIFICATION_METRICS` plus ``confusion_matrix`` (rows = true,
        columns = predicted class) and ``n``.
    """
    from sklearn import metrics as skm  # lazy: 0.7 s

    y_true = np.asarray(y_true, dtype=int)
    n_classes = proba.shape[1]
    labels = np.arange(n_classes)
    y_pred = proba.argmax(axis=1)
    binary = n_classes == 2
    average = "binary" if binary else "macro"
    out: dict[str, Any] = {"n": len(y_true)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["accuracy"] = skm.accuracy_score(y_true, y_pred)
        out["balanced_accuracy"] = skm.balanced_accuracy_score(y_true, y_pred)
        kw = {"average": average, "zero_division": 0.0}
        if not binary:
            kw["labels"] = labels
        out["precision"] = skm.precision_score(y_true, y_pred, **kw)
        out["recall"] = skm.recall_score(y_true, y_pred, **kw)
        out["f1"] = skm.f1_score(y_true, y_pred, **kw)
        out["mcc"] = skm.matthews_corrcoef(y_true, y_pred)
    present = np.unique(y_true)
    if len(present) < 2:
        out["auroc"] = out["auprc"] = float("nan")
    elif binary:
        out["auroc"] = skm.roc_auc_score(y_true, proba[:, 1])
        out["auprc"] = skm.average_precision_score(y_true, proba[:, 1])
    else:
        onehot = np.eye(n_classes)[y_true]
        cols = [c for c in labels if 0 < onehot[:, c].sum() < len(y_true)]
        out["auroc"] = float(np.mean([skm.roc_auc_score(onehot[:, c], proba[:, c]) for c in cols]))
        out["auprc"] = float(
            np.mean([skm.average_precision_score(onehot[:, c], proba[:, c]) for c in cols])
        )
    out["confusion_matrix"] = skm.confusion_matrix(y_true, y_pred, labels=labels).tolist()
    return {k: (float(v) if isinstance(v, np.floating | float) else v) for k, v in out.items()}


def regression_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, target_names: Sequence[str]
) -> dict[str, Any]:
    """Regression metrics per target and averaged over targets.

    Parameters
    ----------
    y_true, y_pred
        ``(n, t)`` true and predicted values on the original scale.
    target_names
        The ``t`` target names.

    Returns
    -------
    dict
        ``mse``, ``mae``, ``r2``, ``pearson`` (means over targets), ``n`` and ``per_target``.
    """
    from scipy import stats  # lazy: 0.6 s
    from sklearn import metrics as skm  # lazy: 0.7 s

    y_true = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(len(y_pred), -1)
    per_target = {}
    for j, name in enumerate(target_names):
        t, p = y_true[:, j], y_pred[:, j]
        enough = len(t) >= 2 and np.ptp(t) > 0
        pearson = (
            float(stats.pearsonr(t, p).statistic) if enough and np.ptp(p) > 0 else float("nan")
        )
        per_target[name] = {
            "mse": float(skm.mean_squared_error(t, p)),
            "mae": float(skm.mean_absolute_error(t, p)),
            "r2": float(skm.r2_score(t, p)) if enough else float("nan"),
            "pearson": pearson,
        }
    out: dict[str, Any] = {"n": len(y_true)}
    for metric in REGRESSION_METRICS:
        values = np.array([per_target[n][metric] for n in target_names])
        out[metric] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
    out["per_target"] = per_target
    return out


def _offset(distances: np.ndarray) -> float:
    """Return how far inside its bound a fold value on the bound is placed.

    Half the smallest distance of another fold from the bound (the data's own resolution), else
    :data:`BOUND_OFFSET`.
    """
    inside = distances[distances > 0]
    return float(inside.min() / 2) if len(inside) else BOUND_OFFSET


def confidence_interval(
    values: Sequence[float],
    level: float = 0.95,
    bounds: tuple[float, float] = (-np.inf, np.inf),
) -> tuple[float, float]:
    """Student-t confidence interval of the mean over folds, inside the metric's range.

    With two finite bounds ``(a, b)`` the values are mapped to ``logit((x - a) / (b - a))``; with
    one bound to ``log`` of the distance from it; unbounded values stay as they are. The
    t-interval of the mean is computed on that scale and mapped back, so it never leaves the
    range (clipping a symmetric interval would only hide the overshoot). A value on a bound is
    first moved inside it by half the smallest distance of another fold from the bound.

    Parameters
    ----------
    values
        One value per fold; NaN and None are left out.
    level
        Coverage of the interval.
    bounds
        The metric's range (:func:`metric_bounds`).

    Returns
    -------
    tuple of float
        Low and high end; NaN with fewer than two values.
    """
    from scipy import stats  # lazy: 0.6 s

    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    if len(x) < 2:
        return float("nan"), float("nan")
    if np.ptp(x) == 0:  # every fold the same (e.g. all perfect): no spread to scale
        return float(x[0]), float(x[0])
    low, high = bounds
    if np.isfinite(low) and np.isfinite(high):
        u = (x - low) / (high - low)
        offset = _offset(np.minimum(u, 1 - u))  # at most a quarter of the range
        u = np.clip(u, offset, 1 - offset)
        z, back = np.log(u / (1 - u)), lambda t: low + (high - low) / (1 + np.exp(-t))
    elif np.isfinite(low) or np.isfinite(high):
        sign, edge = (1.0, low) if np.isfinite(low) else (-1.0, high)
        d = sign * (x - edge)
        z, back = np.log(np.maximum(d, _offset(d))), lambda t: edge + sign * np.exp(t)
    else:
        z, back = x, lambda t: t
    half = stats.t.ppf(0.5 + level / 2, len(z) - 1) * z.std(ddof=1) / np.sqrt(len(z))
    ends = sorted((float(back(z.mean() - half)), float(back(z.mean() + half))))
    return ends[0], ends[1]


def summarise_folds(
    per_fold: Mapping[int, Mapping[str, Mapping[str, Any]]],
    metric_names: Sequence[str],
    pooled: Mapping[str, Mapping[str, Any]] | None = None,
    learners: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Table of metrics per fold with mean, sd and 95 % CI over folds.

    Parameters
    ----------
    per_fold
        ``{fold: {learner: {metric: value}}}`` as written by evaluate.
    metric_names
        Scalar metrics to tabulate.
    pooled
        ``{learner: {metric: value}}`` computed on the pooled out-of-fold predictions.
    learners
        Order of the learners in the table (default: as first met in ``per_fold``).

    Returns
    -------
    pandas.DataFrame
        One row per learner and metric; columns ``fold_0`` … ``fold_k``, ``mean``, ``sd``,
        ``ci95_low``, ``ci95_high`` (inside the metric's range, :func:`confidence_interval`),
        ``folds_used`` (folds with a finite value, the ones the mean and interval are over)
        and ``pooled``.
    """
    folds = sorted(per_fold)
    if learners is None:
        learners = list(dict.fromkeys(lrn for f in folds for lrn in per_fold[f]))
    rows = []
    for learner in learners:
        for metric in metric_names:
            values = [per_fold[f].get(learner, {}).get(metric, float("nan")) for f in folds]
            values = [float("nan") if v is None else float(v) for v in values]
            finite = np.array([v for v in values if np.isfinite(v)])
            low, high = confidence_interval(values, bounds=metric_bounds(metric))
            row = {"learner": learner, "metric": metric}
            row.update({f"fold_{f}": v for f, v in zip(folds, values, strict=True)})
            row["mean"] = float(finite.mean()) if len(finite) else float("nan")
            row["sd"] = float(finite.std(ddof=1)) if len(finite) > 1 else float("nan")
            row["ci95_low"], row["ci95_high"] = low, high
            # Folds without a value (one class in the fold, a skipped fit) are left out of the
            # mean; the count says so wherever the mean is shown.
            row["folds_used"] = len(finite)
            if pooled is not None:
                row["pooled"] = pooled.get(learner, {}).get(metric, float("nan"))
            rows.append(row)
    return pd.DataFrame(rows)


def multilabel_metrics(
    y_true: np.ndarray, proba: np.ndarray, target_names: Sequence[str]
) -> dict[str, Any]:
    """Per-target auROC and auPRC with their mean and median, and macro F1 at 0.5.

    Parameters
    ----------
    y_true
        ``(n, t)`` 0/1 labels.
    proba
        ``(n, t)`` predicted probabilities.
    target_names
        The ``t`` target names.

    Returns
    -------
    dict
        The metrics in :data:`MULTILABEL_METRICS`, ``n`` and ``per_target``.
    """
    from sklearn import metrics as skm  # lazy: 0.7 s

    y_true = np.asarray(y_true).reshape(len(y_true), -1)
    per_target = {}
    for j, name in enumerate(target_names):
        t, p = y_true[:, j], proba[:, j]
        both = 0 < t.sum() < len(t)
        per_target[name] = {
            "auroc": float(skm.roc_auc_score(t, p)) if both else float("nan"),
            "auprc": float(skm.average_precision_score(t, p)) if both else float("nan"),
            "positives": int(t.sum()),
        }
    out: dict[str, Any] = {"n": len(y_true), "per_target": per_target}
    for metric in ("auroc", "auprc"):
        values = np.array([per_target[n][metric] for n in target_names])
        finite = values[np.isfinite(values)]
        out[metric] = float(finite.mean()) if len(finite) else float("nan")
        out[f"{metric}_median"] = float(np.median(finite)) if len(finite) else float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["f1_macro"] = float(
            skm.f1_score(y_true, proba >= 0.5, average="macro", zero_division=0.0)
        )
    return out
