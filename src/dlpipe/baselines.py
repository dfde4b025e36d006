"""scikit-learn baselines fitted on exactly the rows the deep model trains on.

Classification: L2 logistic regression; regression: ridge regression (multi-output);
sequences: k-mer frequencies, standardised, into logistic regression; single cells: logistic
regression on the principal components of the unintegrated data. They see the preprocessed
training side of each fold (with SMOTE rows when the config asks for SMOTE), never the
validation or test side.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from dlpipe.kmers import KmerFrequencies

BASELINE_NAMES = {"classification": "logistic_regression", "regression": "ridge_regression"}


def baseline_name(exp: Mapping[str, Any]) -> str:
    """Name of an experiment's baseline learner, as used in tables and figures."""
    if exp.get("data", {}).get("modality") == "sequence":
        return f"kmer{exp['baseline']['k']}_logistic_regression"
    if exp.get("data", {}).get("modality") == "singlecell":  # reads the unintegrated PCA
        return "pca_logistic_regression"
    return BASELINE_NAMES[exp["task"]]


def make_baseline(exp: Mapping[str, Any]) -> BaseEstimator:
    """Return the unfitted baseline an experiment's config describes.

    Parameters
    ----------
    exp
        The experiment's validated config (``task``, ``baseline``, ``training``, ``seed`` and
        ``data.modality``).

    Returns
    -------
    sklearn.base.BaseEstimator
        ``LogisticRegression``, ``Ridge``, or a k-mer → logistic-regression pipeline.
    """
    cfg = exp["baseline"]
    if exp["task"] == "classification":
        balanced = exp["training"]["class_weights"] == "balanced"
        model = LogisticRegression(
            C=cfg["C"],
            max_iter=cfg["max_iter"],
            class_weight="balanced" if balanced else None,
            random_state=exp["seed"],
        )
        if exp.get("data", {}).get("modality") == "sequence":
            return make_pipeline(KmerFrequencies(cfg["k"]), StandardScaler(), model)
        return model
    if exp["task"] == "multilabel":  # one logistic regression per target
        balanced = exp["training"]["class_weights"] == "balanced"
        model = LogisticRegression(
            C=cfg["C"],
            max_iter=cfg["max_iter"],
            class_weight="balanced" if balanced else None,
            random_state=exp["seed"],
        )
        return make_pipeline(
            KmerFrequencies(cfg["k"]), StandardScaler(), OneVsRestClassifier(model)
        )
    return Ridge(alpha=cfg["alpha"], random_state=exp["seed"])


def baseline_scores(
    model: BaseEstimator,
    X: np.ndarray,  # noqa: N803
    n_classes: int | None,
    task: str = "classification",
) -> np.ndarray:
    """Class probabilities (all ``n_classes`` columns) or predicted values of a fitted baseline.

    For ``task="multilabel"`` the probability of every target.
    """
    if task == "multilabel":
        return np.asarray(model.predict_proba(X), dtype=np.float64)
    if n_classes is None:
        pred = np.asarray(model.predict(X), dtype=np.float64)
        return pred.reshape(len(X), -1)
    proba = np.zeros((len(X), n_classes))
    proba[:, model.classes_.astype(int)] = model.predict_proba(X)
    return proba
