"""scikit-learn baselines, fitted on exactly the rows the deep model trains on.

The task picks the model of each kind (``linear``: L2 logistic regression for classes, one per
target for multi-label, ridge regression for targets; ``random_forest``: a random forest of the
same output; :mod:`dlpipe.tasks`); the modality picks what it reads (the preprocessed features,
k-mer frequencies or the flattened one-hot of sequences, the PCA of single cells:
:mod:`dlpipe.modalities`). They see the preprocessed training side of each fold (with SMOTE rows
when the config asks for SMOTE), never the validation or test side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from dlpipe.kmers import KmerFrequencies
from dlpipe.onehot import OneHotPositions
from dlpipe.pixels import DownsampledPixels


def logistic_regression(cfg: Mapping[str, Any], seed: int, balanced: bool) -> LogisticRegression:
    """L2 logistic regression with the ``baseline`` config's ``C`` and ``max_iter``."""
    return LogisticRegression(
        C=cfg["C"],
        max_iter=cfg["max_iter"],
        class_weight="balanced" if balanced else None,
        random_state=seed,
    )


def ridge_regression(cfg: Mapping[str, Any], seed: int) -> Ridge:
    """Multi-output ridge regression with the ``baseline`` config's ``alpha``."""
    return Ridge(alpha=cfg["alpha"], random_state=seed)


def random_forest_classifier(
    cfg: Mapping[str, Any], seed: int, balanced: bool
) -> RandomForestClassifier:
    """Random forest of ``cfg['trees']`` trees (one job, so reruns give the same trees)."""
    return RandomForestClassifier(
        n_estimators=cfg["trees"],
        class_weight="balanced" if balanced else None,
        random_state=seed,
        n_jobs=1,
    )


def random_forest_regressor(cfg: Mapping[str, Any], seed: int) -> RandomForestRegressor:
    """Multi-output random forest of ``cfg['trees']`` trees."""
    return RandomForestRegressor(n_estimators=cfg["trees"], random_state=seed, n_jobs=1)


def one_vs_rest(model: BaseEstimator) -> OneVsRestClassifier:
    """One copy of ``model`` per target of a multi-label task."""
    return OneVsRestClassifier(model)


def on_kmers(model: BaseEstimator, ks: Sequence[int], letters: int = 4) -> Pipeline:
    """``model`` on standardised k-mer frequencies (every k of ``ks``) of sequence codes."""
    k: int | list[int] = int(ks[0]) if len(ks) == 1 else [int(k) for k in ks]
    return make_pipeline(KmerFrequencies(k, letters), StandardScaler(), model)


def on_positions(model: BaseEstimator, letters: int = 4) -> Pipeline:
    """``model`` on the flattened one-hot of sequence codes (one feature per position × letter).

    No scaling: the features are 0/1 and share one scale, so the L2 penalty treats every
    position alike.
    """
    return make_pipeline(OneHotPositions(letters), model)


def on_pixels(model: BaseEstimator, side: int = 8) -> Pipeline:
    """``model`` on the standardised block means of images (``side`` × ``side`` per channel)."""
    return make_pipeline(DownsampledPixels(side), StandardScaler(), model)


def class_probabilities(model: BaseEstimator, X: np.ndarray, n_classes: int) -> np.ndarray:  # noqa: N803
    """Probabilities of all ``n_classes`` classes (zero for a class the fold never saw)."""
    proba = np.zeros((len(X), n_classes))
    proba[:, model.classes_.astype(int)] = model.predict_proba(X)
    return proba


def target_probabilities(model: BaseEstimator, X: np.ndarray) -> np.ndarray:  # noqa: N803
    """Independent probability of every target (multi-label)."""
    return np.asarray(model.predict_proba(X), dtype=np.float64)


def predicted_values(model: BaseEstimator, X: np.ndarray) -> np.ndarray:  # noqa: N803
    """Predicted targets as an ``(n, targets)`` matrix."""
    return np.asarray(model.predict(X), dtype=np.float64).reshape(len(X), -1)
