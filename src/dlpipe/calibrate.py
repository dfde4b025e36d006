"""Calibrated confidence: temperature scaling, expected calibration error, Brier score.

Temperature scaling (Guo et al. 2017) divides a model's logits by one number ``T`` fitted to
minimise the negative log-likelihood of the fold's validation side; ``T > 1`` softens an
over-confident model, ``T < 1`` sharpens an under-confident one. One positive scalar changes
neither the predicted class nor the ranking of samples, so accuracy and auROC stay as they are
while the probabilities become honest. Multi-label tasks get one temperature per target.

The evaluate job fits the temperature on the fold's validation side only, then applies it to the
test side and reports both the raw and the calibrated probabilities. Logits are recovered from
probabilities (``log p`` for softmax outputs, ``logit p`` for independent sigmoids, the
``multilabel`` case), so the same code calibrates the deep model and the scikit-learn baseline.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

#: Equal-width confidence bins of the expected calibration error and the reliability diagram.
N_BINS = 10
#: Calibration metrics of every classification learner, raw then calibrated.
CALIBRATION_METRICS = (
    "brier",
    "ece",
    "nll",
    "brier_calibrated",
    "ece_calibrated",
    "nll_calibrated",
)
_EPS = 1e-7
#: Search range of log(T): T from 0.01 to 100.
_LOG_T_BOUNDS = (np.log(0.01), np.log(100.0))


def _clip(proba: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(proba, dtype=np.float64), _EPS, 1.0 - _EPS)


def apply_temperature(
    proba: np.ndarray, temperature: float | np.ndarray, multilabel: bool = False
) -> np.ndarray:
    """Probabilities after dividing the logits behind ``proba`` by ``temperature``.

    Parameters
    ----------
    proba
        ``(n, k)`` class probabilities (rows sum to 1) or, for ``multilabel``, ``(n, t)``
        independent probabilities.
    temperature
        One positive number, or one per target (``multilabel``).
    multilabel
        Independent sigmoids per target instead of one softmax over classes.

    Returns
    -------
    numpy.ndarray
        Calibrated probabilities, same shape.
    """
    temperature = np.asarray(temperature, dtype=np.float64)
    if np.any(temperature <= 0):
        raise ValueError("temperatures must be positive")
    p = _clip(proba)
    if multilabel:
        logits = np.log(p) - np.log1p(-p)
        return 1.0 / (1.0 + np.exp(-logits / temperature))
    z = np.log(p) / temperature
    z -= z.max(axis=1, keepdims=True)
    expo = np.exp(z)
    return expo / expo.sum(axis=1, keepdims=True)


def negative_log_likelihood(y: np.ndarray, proba: np.ndarray, multilabel: bool = False) -> float:
    """Mean negative log-likelihood of the true labels (per target, averaged, for multilabel)."""
    p = _clip(proba)
    if multilabel:
        y = np.asarray(y, dtype=np.float64).reshape(p.shape)
        return float(-(y * np.log(p) + (1 - y) * np.log1p(-p)).mean())
    codes = np.asarray(y, dtype=int)
    return float(-np.log(p[np.arange(len(codes)), codes]).mean())


#: Why a temperature was left at 1, by the code calibrate records beside it (``skipped``).
SKIPPED = {
    "no_validation_rows": "the fold had no validation rows",
    "separated": (
        "the validation side was perfectly separated (every row on the right side), so the "
        "likelihood only grows as T shrinks and there is no temperature to fit"
    ),
    "no_gain": "no temperature lowered the validation NLL",
    "too_few_validation_rows": (
        "the validation side had fewer rows than calibration.min_validation, too few to fit a "
        "temperature that holds on the test side (a fit to a handful of rows can make wrong "
        "calls more confident)"
    ),
}


def _fit_one(
    y: np.ndarray, proba: np.ndarray, multilabel: bool, min_rows: int = 0
) -> tuple[float, str | None]:
    """Return the temperature minimising the validation NLL, and why it is 1 when not fitted."""
    from scipy.optimize import minimize_scalar  # lazy: 0.2 s

    if len(y) == 0:
        return 1.0, "no_validation_rows"
    if len(y) < min_rows:
        log.info("%d validation rows < %d; temperature left at 1", len(y), min_rows)
        return 1.0, "too_few_validation_rows"
    if confidence_and_correct(y, proba, multilabel)[1].all():
        # Every validation row on the right side: the NLL keeps falling as T -> 0, so the fit
        # would only make the model as confident as the bounds allow, whatever the test side.
        log.info("validation rows separated perfectly; temperature left at 1")
        return 1.0, "separated"

    def loss(log_t: float) -> float:
        return negative_log_likelihood(
            y, apply_temperature(proba, np.exp(log_t), multilabel), multilabel
        )

    result = minimize_scalar(loss, bounds=_LOG_T_BOUNDS, method="bounded", options={"xatol": 1e-6})
    # Keep T = 1 unless fitting really lowers the NLL (a flat loss).
    if not result.success or loss(result.x) >= loss(0.0) - 1e-12:
        return 1.0, "no_gain"
    return float(np.exp(result.x)), None


def temperature_fit(
    y: np.ndarray, proba: np.ndarray, multilabel: bool = False, min_rows: int = 0
) -> tuple[float | list[float], str | list[str | None] | None]:
    """Fit temperature scaling and say why a temperature was left at 1.

    Parameters
    ----------
    y
        Class codes ``(n,)``, or the ``(n, t)`` 0/1 matrix of a multi-label task.
    proba
        The model's probabilities on the same rows.
    multilabel
        Independent targets: one temperature per target.
    min_rows
        Fewer validation rows than this leave the temperature at 1
        (``calibration.min_validation``).

    Returns
    -------
    tuple
        The temperature (one per target for ``multilabel``) and, for each, ``None`` when it was
        fitted or a key of :data:`SKIPPED` when it was left at 1.
    """
    if multilabel:
        y = np.asarray(y, dtype=np.float64).reshape(np.shape(proba))
        fits = [_fit_one(y[:, [j]], proba[:, [j]], True, min_rows) for j in range(y.shape[1])]
        return [t for t, _ in fits], [why for _, why in fits]
    return _fit_one(np.asarray(y, dtype=int), proba, False, min_rows)


def fit_temperature(
    y: np.ndarray, proba: np.ndarray, multilabel: bool = False
) -> float | list[float]:
    """Fit temperature scaling on validation labels and probabilities.

    The temperature(s) of :func:`temperature_fit`, without the reasons for one left at 1.
    """
    return temperature_fit(y, proba, multilabel)[0]


def _binned(confidence: np.ndarray, correct: np.ndarray, n_bins: int) -> pd.DataFrame:
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    count = np.bincount(index, minlength=n_bins)
    conf = np.bincount(index, weights=confidence, minlength=n_bins)
    acc = np.bincount(index, weights=correct.astype(np.float64), minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame(
            {
                "bin_low": edges[:-1],
                "bin_high": edges[1:],
                "count": count,
                "confidence": conf / count,
                "accuracy": acc / count,
            }
        )


def reliability_table(
    y: np.ndarray, proba: np.ndarray, n_bins: int = N_BINS, multilabel: bool = False
) -> pd.DataFrame:
    """Mean confidence and accuracy per equal-width confidence bin (a reliability diagram).

    For classification the confidence is the top-class probability and a sample is correct
    when that class is the true one; for binary targets (``multilabel``) every target's
    probability of its predicted state counts as one confidence.
    """
    confidence, correct = confidence_and_correct(y, proba, multilabel)
    return _binned(confidence, correct, n_bins)


def confidence_and_correct(
    y: np.ndarray, proba: np.ndarray, multilabel: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Confidence of each prediction and whether it is right (flat over targets for multilabel)."""
    if multilabel:
        p = np.asarray(proba, dtype=np.float64).ravel()
        truth = np.asarray(y, dtype=np.float64).ravel() > 0.5
        return np.where(p >= 0.5, p, 1.0 - p), (p >= 0.5) == truth
    p = np.asarray(proba, dtype=np.float64)
    return p.max(axis=1), p.argmax(axis=1) == np.asarray(y, dtype=int)


def expected_calibration_error(
    y: np.ndarray, proba: np.ndarray, n_bins: int = N_BINS, multilabel: bool = False
) -> float:
    """Return the expected calibration error: the count-weighted gap of confidence and accuracy.

    Parameters
    ----------
    y
        Class codes, or the 0/1 target matrix (``multilabel``).
    proba
        Probabilities of the same rows.
    n_bins
        Equal-width confidence bins.
    multilabel
        Independent targets (sigmoid probabilities).

    Returns
    -------
    float
        ECE in [0, 1] (NaN without samples).
    """
    table = reliability_table(y, proba, n_bins, multilabel)
    used = table["count"] > 0
    if not used.any():
        return float("nan")
    gap = (table["confidence"] - table["accuracy"]).abs()[used]
    weights = table["count"][used] / table["count"][used].sum()
    return float((gap * weights).sum())


def brier_score(y: np.ndarray, proba: np.ndarray, multilabel: bool = False) -> float:
    """Brier score, halved so that it lies in [0, 1] for any number of classes.

    For two classes this equals scikit-learn's ``brier_score_loss`` of the positive class; for
    ``multilabel`` it is the mean squared error of the probabilities over all targets.
    """
    p = np.asarray(proba, dtype=np.float64)
    if multilabel:
        return float(((p - np.asarray(y, dtype=np.float64).reshape(p.shape)) ** 2).mean())
    onehot = np.eye(p.shape[1])[np.asarray(y, dtype=int)]
    return float(0.5 * ((p - onehot) ** 2).sum(axis=1).mean())


def calibration_metrics(
    y: np.ndarray, proba: np.ndarray, multilabel: bool = False, n_bins: int = N_BINS
) -> dict[str, float]:
    """``brier``, ``ece`` and ``nll`` of one set of probabilities."""
    if len(y) == 0:
        return {"brier": float("nan"), "ece": float("nan"), "nll": float("nan")}
    return {
        "brier": brier_score(y, proba, multilabel),
        "ece": expected_calibration_error(y, proba, n_bins, multilabel),
        "nll": negative_log_likelihood(y, proba, multilabel),
    }


def resample_calibration_metrics(
    y: np.ndarray, proba: np.ndarray, multilabel: bool = False, n_bins: int = N_BINS
) -> dict[str, float]:
    """Return :func:`calibration_metrics` with numpy alone (the bootstrap's many resamples)."""
    if len(y) == 0:
        return {"brier": float("nan"), "ece": float("nan"), "nll": float("nan")}
    confidence, correct = confidence_and_correct(y, proba, multilabel)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    count = np.bincount(index, minlength=n_bins)
    gap = np.abs(
        np.bincount(index, weights=confidence, minlength=n_bins)
        - np.bincount(index, weights=correct.astype(np.float64), minlength=n_bins)
    )
    return {
        "brier": brier_score(y, proba, multilabel),
        # sum over bins of count/total * |mean confidence - accuracy| = sum |gap| / total
        "ece": float(gap.sum() / count.sum()),
        "nll": negative_log_likelihood(y, proba, multilabel),
    }
