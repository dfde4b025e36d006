"""Metrics per fold, summaries over folds with confidence intervals, and pooled predictions.

All metrics come from scikit-learn (Pearson from scipy). Binary tasks treat the second class in
sorted order as positive; multi-class tasks report macro averages (one-vs-rest for auROC and
auPRC). A metric that is undefined on a fold (auROC, precision, recall, F1 or MCC with one class
present) is NaN, not zero.

Where the folds' values cannot be summarised (leave-one-out: every test side one row; a holdout:
one fold; most folds without a value), a metric is summarised by its value on the pooled
out-of-fold predictions, with a bootstrap interval over samples (:func:`bootstrap_interval`).

The tasks (:mod:`dlpipe.tasks`) name these metrics when the Snakefile checks a config, so
scikit-learn and scipy are loaded by the functions that compute them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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
#: The K of the Hits@K of link prediction (:data:`dlpipe.link_metrics.HITS_AT`).
LINK_HITS_AT = (20, 50, 100)
#: Metrics of link prediction per fold (:func:`dlpipe.link_metrics.link_metrics`).
LINK_METRICS = ("auroc", "auprc", *(f"hits@{k}" for k in LINK_HITS_AT))
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
    # Link prediction (dlpipe.link_metrics): the share of edges above the K-th best non-edge.
    **{f"hits@{k}": (0.0, 1.0) for k in LINK_HITS_AT},
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
#: Resamples of the pooled out-of-fold predictions behind a pooled value's interval and the
#: paired bootstrap test of the leaderboard.
N_BOOTSTRAP = 1000
#: How the intervals of pooled values are made, for the report.
POOLED_INTERVAL_METHOD = (
    f"percentile bootstrap over samples ({N_BOOTSTRAP:,} resamples of the pooled out-of-fold "
    "predictions; a resample without both classes has no auROC and is left out)"
)
#: Metrics that need both classes on a fold's test side (NaN on a one-class fold).
TWO_CLASS_METRICS = ("precision", "recall", "f1", "mcc", "auroc", "auprc")


def metric_bounds(metric: str) -> tuple[float, float]:
    """Range of a metric (``*_calibrated`` as its raw metric); unbounded when unknown."""
    return METRIC_BOUNDS.get(metric.removesuffix("_calibrated"), (-np.inf, np.inf))


#: What a metric scores for predictions unrelated to the truth (metrics not listed depend on the
#: data, e.g. auPRC on the prevalence).
CHANCE = {"auroc": 0.5, "mcc": 0.0, "r2": 0.0, "pearson": 0.0, "spearman": 0.0}
#: The metric a learner ranked on one without a fixed chance level is judged at chance by.
CHANCE_STAND_IN = {"auprc": "auroc"}


def chance_metric(metric: str) -> str | None:
    """Return the metric whose interval says whether a learner ranked on ``metric`` is at chance.

    The metric itself when it has a fixed chance level (:data:`CHANCE`); for auPRC, whose
    chance level is the data's prevalence, the auROC of the same predictions; else ``None``.
    """
    return metric if metric in CHANCE else CHANCE_STAND_IN.get(metric)


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
        # One class (a leave-one-out fold): precision, recall, F1 and MCC would be 0 or 1 by
        # construction, not a measure of the model.
        out.update(dict.fromkeys(TWO_CLASS_METRICS, float("nan")))
    else:
        out.update(ranking_metrics(y_true, proba))
    out["confusion_matrix"] = skm.confusion_matrix(y_true, y_pred, labels=labels).tolist()
    return {k: (float(v) if isinstance(v, np.floating | float) else v) for k, v in out.items()}


def _binary_ranking(y: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """Return auROC and average precision of 0/1 labels, as scikit-learn computes them.

    auROC is the Mann-Whitney statistic (ties count half); average precision sums precision
    over the recall steps at each distinct score. numpy only, for the bootstrap's resamples.
    """
    from scipy.stats import rankdata  # lazy: 0.6 s

    y = np.asarray(y, dtype=np.float64)
    n_pos = y.sum()
    n_neg = len(y) - n_pos
    ranks = rankdata(score)
    auroc = (ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    order = np.argsort(-np.asarray(score), kind="mergesort")
    ordered = np.asarray(score)[order]
    last = np.r_[np.flatnonzero(np.diff(ordered)), len(y) - 1]
    tps = np.cumsum(y[order])[last]
    precision = tps / (last + 1)
    recall = tps / n_pos
    return float(auroc), float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def ranking_metrics(y_true: np.ndarray, proba: np.ndarray, fast: bool = False) -> dict[str, float]:
    """Return auROC and auPRC (macro one-vs-rest over the classes present for more than two).

    Parameters
    ----------
    y_true
        Class codes ``0..k-1`` of at least two classes.
    proba
        ``(n, k)`` class probabilities.
    fast
        Compute them with numpy (:func:`_binary_ranking`, for resamples) instead of
        scikit-learn; the same values up to rounding.

    Returns
    -------
    dict
        ``auroc`` and ``auprc``.
    """
    from sklearn import metrics as skm  # lazy: 0.7 s

    def one(truth: np.ndarray, score: np.ndarray) -> tuple[float, float]:
        if fast:
            return _binary_ranking(truth, score)
        return skm.roc_auc_score(truth, score), skm.average_precision_score(truth, score)

    n_classes = proba.shape[1]
    if n_classes == 2:
        auroc, auprc = one(y_true, proba[:, 1])
        return {"auroc": float(auroc), "auprc": float(auprc)}
    onehot = np.eye(n_classes)[y_true]
    cols = [c for c in range(n_classes) if 0 < onehot[:, c].sum() < len(y_true)]
    pairs = np.array([one(onehot[:, c], proba[:, c]) for c in cols], dtype=np.float64)
    return {"auroc": float(pairs[:, 0].mean()), "auprc": float(pairs[:, 1].mean())}


def confusion_metrics(cm: np.ndarray) -> dict[str, float]:
    """Return the metrics of :func:`classification_metrics` that follow from a confusion matrix.

    The same values as scikit-learn's scores (binary: the second class positive; otherwise
    macro over every class, 0 where undefined), from counts alone, so a bootstrap can score
    a thousand resamples in seconds.

    Parameters
    ----------
    cm
        ``(k, k)`` counts, rows true and columns predicted class.

    Returns
    -------
    dict
        ``accuracy``, ``balanced_accuracy``, ``precision``, ``recall``, ``f1``, ``mcc`` (the
        last four NaN with fewer than two true classes, as in :func:`classification_metrics`).
    """
    cm = np.asarray(cm, dtype=np.float64)
    n, diag = cm.sum(), np.diag(cm)
    true, pred = cm.sum(axis=1), cm.sum(axis=0)
    out = {
        "accuracy": float(diag.sum() / n),
        "balanced_accuracy": float(np.mean(diag[true > 0] / true[true > 0])),
    }
    if (true > 0).sum() < 2:
        return {**out, **dict.fromkeys(("precision", "recall", "f1", "mcc"), float("nan"))}

    def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        return np.divide(num, den, out=np.zeros_like(num), where=den > 0)

    fp, fn = pred - diag, true - diag
    precision, recall = ratio(diag, pred), ratio(diag, true)
    f1 = ratio(2 * diag, 2 * diag + fp + fn)
    pick = (lambda v: float(v[1])) if len(cm) == 2 else (lambda v: float(v.mean()))
    cov_tp = diag.sum() * n - true @ pred
    cov_pp, cov_tt = n * n - pred @ pred, n * n - true @ true
    mcc = 0.0 if cov_pp * cov_tt == 0 else float(cov_tp / np.sqrt(cov_tt * cov_pp))
    return {**out, "precision": pick(precision), "recall": pick(recall), "f1": pick(f1), "mcc": mcc}


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


def pooled_summary(values: Sequence[float], test_sizes: Sequence[int] = ()) -> bool:
    """Whether a metric is summarised on the pooled out-of-fold predictions, not over folds.

    Over folds only where the folds' values can be summarised: not when every test side is a
    single row (leave-one-out: each fold's value is 0 or 1, or undefined), and not when fewer
    than two folds, or fewer than half of them, have a value (a holdout; most folds with one
    class).

    Parameters
    ----------
    values
        The metric on each fold (NaN where undefined).
    test_sizes
        Rows of each fold's test side (``n`` of the fold's metrics), if known.

    Returns
    -------
    bool
        ``True`` for the pooled value.
    """
    finite = int(np.isfinite(np.asarray(values, dtype=np.float64)).sum())
    single_rows = len(test_sizes) > 0 and max(test_sizes) <= 1
    return single_rows or finite < max(2, int(np.ceil(len(values) / 2)))


def resample_indices(n: int, seed: int, n_boot: int = N_BOOTSTRAP) -> Iterator[np.ndarray]:
    """Yield ``n_boot`` bootstrap resamples of ``n`` rows (drawn with replacement).

    Not stratified: the class balance of the held-out rows varies between resamples as it would
    between data sets, so a learner calling one class everywhere gets an interval too. The same
    seed gives the same resamples, which pairs two learners' predictions of the same rows.
    """
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        yield rng.integers(0, n, n)


def bootstrap_values(
    statistic: Callable[[np.ndarray], Mapping[str, Any]], indices: Iterable[np.ndarray]
) -> dict[str, np.ndarray]:
    """Return each scalar of ``statistic`` (metrics of some rows) over the resamples given."""
    out: dict[str, list[float]] = {}
    for idx in indices:
        for key, value in statistic(idx).items():
            if isinstance(value, int | float | np.floating):
                out.setdefault(key, []).append(float(value))
    return {key: np.asarray(v) for key, v in out.items()}


def percentile_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap values (NaN ones left out; NaN when none is left).

    The ends are values the metric took on a resample, so the interval stays in its range.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(x, [tail, 100 - tail])
    return float(low), float(high)


def paired_bootstrap_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p-value of a paired bootstrap test from two learners' values on the same resamples.

    Twice the share of resampled differences ``a - b`` on the far side of zero (the smallest
    level at which the percentile interval of the difference excludes zero), at most 1.
    """
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return float("nan")
    return float(min(1.0, 2 * min((d <= 0).mean(), (d >= 0).mean())))


def summarise_folds(
    per_fold: Mapping[int, Mapping[str, Mapping[str, Any]]],
    metric_names: Sequence[str],
    pooled: Mapping[str, Mapping[str, Any]] | None = None,
    learners: Sequence[str] | None = None,
    pooled_intervals: Mapping[str, Mapping[str, tuple[float, float]]] | None = None,
) -> pd.DataFrame:
    """Table of metrics per fold with mean, sd and 95 % CI over folds, or the pooled value.

    Parameters
    ----------
    per_fold
        ``{fold: {learner: {metric: value}}}`` as written by evaluate (``n``: test rows).
    metric_names
        Scalar metrics to tabulate.
    pooled
        ``{learner: {metric: value}}`` computed on the pooled out-of-fold predictions.
    learners
        Order of the learners in the table (default: as first met in ``per_fold``).
    pooled_intervals
        ``{learner: {metric: (low, high)}}``: the bootstrap intervals of pooled values
        (:func:`percentile_interval`), used where a metric is summarised pooled.

    Returns
    -------
    pandas.DataFrame
        One row per learner and metric; columns ``fold_0`` … ``fold_k``, ``mean``, ``sd``,
        ``ci95_low``, ``ci95_high``, ``folds_used`` (folds with a finite value), ``pooled``
        and ``summary``. ``summary`` is ``folds`` where the mean over folds is the summary
        (the interval: :func:`confidence_interval`) and ``pooled`` where it is the pooled
        value (:func:`pooled_summary`: leave-one-out, a holdout, most folds undefined); there
        ``mean`` and ``sd`` are NaN and the interval is the pooled value's bootstrap interval.
    """
    folds = sorted(per_fold)
    if learners is None:
        learners = list(dict.fromkeys(lrn for f in folds for lrn in per_fold[f]))
    rows = []
    for learner in learners:
        sizes = [per_fold[f].get(learner, {}).get("n") for f in folds]
        sizes = [int(n) for n in sizes if n is not None]
        for metric in metric_names:
            values = [per_fold[f].get(learner, {}).get(metric, float("nan")) for f in folds]
            values = [float("nan") if v is None else float(v) for v in values]
            finite = np.array([v for v in values if np.isfinite(v)])
            row = {"learner": learner, "metric": metric}
            row.update({f"fold_{f}": v for f, v in zip(folds, values, strict=True)})
            # Folds without a value (one class in the fold, a skipped fit) are left out of the
            # mean; the count says so wherever the mean is shown.
            row["folds_used"] = len(finite)
            row["pooled"] = float("nan")
            if pooled is not None:
                row["pooled"] = pooled.get(learner, {}).get(metric, float("nan"))
            if pooled is not None and pooled_summary(values, sizes):
                # Per-fold values stay in the fold columns where they exist; a mean and sd of
                # them would summarise 0/1 values or a handful of folds.
                row["mean"] = row["sd"] = float("nan")
                interval = (pooled_intervals or {}).get(learner, {}).get(metric)
                row["ci95_low"], row["ci95_high"] = interval or (float("nan"), float("nan"))
                row["summary"] = "pooled"
            else:
                low, high = confidence_interval(values, bounds=metric_bounds(metric))
                row["mean"] = float(finite.mean()) if len(finite) else float("nan")
                row["sd"] = float(finite.std(ddof=1)) if len(finite) > 1 else float("nan")
                row["ci95_low"], row["ci95_high"] = low, high
                row["summary"] = "folds"
            rows.append(row)
    columns = [
        "learner", "metric", *(f"fold_{f}" for f in folds), "mean", "sd", "ci95_low",
        "ci95_high", "folds_used", "pooled", "summary",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def summary_value(row: Mapping[str, Any]) -> float:
    """Return the value a ``metrics.tsv`` row is summarised by: the fold mean, or the pooled one."""
    return float(row["pooled"] if row.get("summary") == "pooled" else row["mean"])


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
