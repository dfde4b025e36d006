"""Fold-wise preprocessing, fitted on the training side only.

Per fold, a scikit-learn :class:`~sklearn.compose.ColumnTransformer` is fitted on the training
rows and applied unchanged to validation and test rows. Numeric features go through imputation,
sample-wise normalisation (``log1p``, ``cpm_log1p``), the variance filter, top-k selection and
the supervised selection (ANOVA F against the training side's classes; :func:`selection_plan`),
then feature-wise scaling (``zscore``, ``quantile``), in that order; categorical features are
imputed with their most frequent value and one-hot encoded (categories unseen in training become
all-zero rows). SMOTE (imbalanced-learn) then oversamples the training rows only; validation and
test rows are never seen by it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.feature_selection import SelectKBest, VarianceThreshold, f_classif
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, QuantileTransformer, StandardScaler

from dlpipe.datasets import ImageDataset, SequenceDataset, TabularDataset
from dlpipe.errors import ConfigError, InputError
from dlpipe.genomic import cross_fold_overlaps
from dlpipe.image_store import StoreImages, image_scale, scale_pixels

SAMPLE_WISE = ("log1p", "cpm_log1p")
FEATURE_WISE = ("zscore", "quantile")
#: ``select: auto`` selects when the numeric features number at least this many times the
#: training rows (p ≫ n): there an unselected MLP fits noise that a linear model shrinks away.
P_MUCH_LARGER_RATIO = 10
#: Features ``select_k: auto`` keeps per training row (and its floor and ceiling).
SELECT_PER_ROW, SELECT_MIN, SELECT_MAX = 1, 20, 200


def normaliser_steps(pre: Mapping[str, Any]) -> list[str]:
    """Return the normalisation steps of a preprocess config as a list (``none`` dropped)."""
    steps = pre["normalise"]
    steps = [steps] if isinstance(steps, str) else list(steps)
    return [s for s in steps if s != "none"]


class Log1p(TransformerMixin, BaseEstimator):
    """``log(1 + x)``; refuses negative values, which mean the data are already transformed."""

    def fit(self, X: np.ndarray, y: Any = None) -> Log1p:  # noqa: N803 - sklearn convention
        """Check that the training data are non-negative."""
        _check_non_negative(X, "log1p")
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        """Apply ``log1p`` (negative values are clipped to 0)."""
        return np.log1p(np.clip(np.asarray(X, dtype=np.float64), 0, None))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names pass through unchanged."""
        return np.asarray(input_features, dtype=object)


class CPMLog1p(Log1p):
    """Scale each sample to counts per million, then ``log1p`` (library-size normalisation)."""

    def fit(self, X: np.ndarray, y: Any = None) -> CPMLog1p:  # noqa: N803
        """Check that the training data are non-negative counts."""
        _check_non_negative(X, "cpm_log1p")
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        """Divide each row by its total, times 1e6, then ``log1p``."""
        X = np.clip(np.asarray(X, dtype=np.float64), 0, None)  # noqa: N806
        totals = X.sum(axis=1, keepdims=True)
        totals[totals == 0] = 1.0
        return np.log1p(X / totals * 1e6)


def _check_non_negative(X: np.ndarray, step: str) -> None:  # noqa: N803
    low = np.nanmin(np.asarray(X, dtype=np.float64))
    if low < 0:
        raise InputError(
            f"preprocess.normalise {step!r} needs non-negative values (counts or intensities), "
            f"but the training data hold {low:.3g}; the data look already log-transformed or "
            "centred: use normalise: zscore (or none)"
        )


def variance_score(X: np.ndarray, y: Any = None) -> np.ndarray:  # noqa: N803
    """Score features by variance so SelectKBest keeps the most variable (y is ignored)."""
    return np.nanvar(np.asarray(X, dtype=np.float64), axis=0)


@dataclass(frozen=True)
class SelectionPlan:
    """What the supervised feature selection of a fold does.

    Attributes
    ----------
    k
        Numeric features kept (``None``: no selection).
    reason
        Why, in words (for the report and the fold summary).
    p_much_larger
        Whether the fold is a p ≫ n classification (its MLP then takes
        :data:`dlpipe.models.P_MUCH_LARGER_MLP` where the config is silent; see
        :func:`dlpipe.models.fold_model`).
    """

    k: int | None
    reason: str
    p_much_larger: bool = False


def selection_plan(
    pre: Mapping[str, Any], task: str, n_numeric: int, n_train: int
) -> SelectionPlan:
    """Resolve ``preprocess.select`` and ``select_k`` for one fold.

    A fold is p ≫ n when a classification has at least :data:`P_MUCH_LARGER_RATIO` numeric
    features (after ``top_k_features``) per training row; ``select: auto`` selects by ANOVA F
    there only. ``select_k: auto`` keeps :data:`SELECT_PER_ROW` feature per training row, at
    least :data:`SELECT_MIN` and at most :data:`SELECT_MAX` (never more than there are).

    Parameters
    ----------
    pre
        The experiment's ``preprocess`` config.
    task
        The data's task (selection needs classes: ``classification``).
    n_numeric
        Numeric input features.
    n_train
        Rows of the fold's training side (before SMOTE).

    Returns
    -------
    SelectionPlan
        ``k`` (``None``: none), the reason, and whether the fold is p ≫ n.

    Raises
    ------
    ConfigError
        For ``select: anova`` outside classification.
    """
    select = pre["select"]
    if pre["top_k_features"]:
        n_numeric = min(n_numeric, int(pre["top_k_features"]))
    if task != "classification":
        if select == "none":
            return SelectionPlan(None, "preprocess.select: none")
        if select == "anova":
            raise ConfigError(
                f"config key preprocess.select: 'anova' ranks features by their F between "
                f"classes, but this is a {task}; use none (or auto)"
            )
        return SelectionPlan(None, f"{select}: no classes to rank features by ({task})")
    wide = n_numeric >= P_MUCH_LARGER_RATIO * max(n_train, 1)
    size = f"{n_numeric} features for {n_train} training rows"
    if select == "none":
        return SelectionPlan(None, "preprocess.select: none", wide)
    if select == "auto" and not wide:
        return SelectionPlan(
            None, f"auto: {size} is not p ≫ n (fewer than {P_MUCH_LARGER_RATIO} per row)"
        )
    k = pre["select_k"]
    if k == "auto":
        k = min(max(SELECT_MIN, SELECT_PER_ROW * n_train), SELECT_MAX)
    k = min(int(k), n_numeric)
    why = f"auto: {size}, p ≫ n" if select == "auto" else "preprocess.select: anova"
    return SelectionPlan(k, why, wide)


def build_feature_transformer(
    pre: Mapping[str, Any],
    numeric: list[str],
    categorical: list[str],
    seed: int,
    n_train: int,
    select_k: int | None = None,
) -> ColumnTransformer:
    """Build the unfitted feature transformer that a preprocess config describes.

    Parameters
    ----------
    pre
        The experiment's ``preprocess`` config.
    numeric, categorical
        Column names of each kind.
    seed
        Seed (for the quantile transformer's subsampling).
    n_train
        Number of training rows (caps the number of quantiles).
    select_k
        Numeric features the ANOVA F selection keeps (``None``: no supervised selection; see
        :func:`selection_plan`); fitting then needs the class codes.

    Returns
    -------
    sklearn.compose.ColumnTransformer
        Unfitted transformer producing a dense float matrix.
    """
    steps: list[tuple[str, Any]] = []
    if pre["impute"] != "none":
        steps.append(("impute", SimpleImputer(strategy=pre["impute"])))
    normalisers = normaliser_steps(pre)
    for step in normalisers:
        if step in SAMPLE_WISE:
            steps.append((step, Log1p() if step == "log1p" else CPMLog1p()))
    steps.append(("variance", VarianceThreshold(pre["variance_threshold"])))
    if pre["top_k_features"]:
        steps.append(("top_k", SelectKBest(variance_score, k=pre["top_k_features"])))
    if select_k is not None:
        # After the filters, before scaling: F is scale-free, and the scaler is then fitted on
        # the kept features only.
        steps.append(("select", SelectKBest(f_classif, k=select_k)))
    for step in normalisers:
        if step == "zscore":
            steps.append((step, StandardScaler()))
        elif step == "quantile":
            steps.append(
                (
                    step,
                    QuantileTransformer(
                        n_quantiles=max(2, min(1000, n_train)),
                        output_distribution="normal",
                        random_state=seed,
                    ),
                )
            )
    parts: list[tuple[str, Any, list[str]]] = []
    if numeric:
        parts.append(("numeric", Pipeline(steps), numeric))
    if categorical:
        encoder = Pipeline(
            [
                ("impute", SimpleImputer(strategy="most_frequent")),
                ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            ]
        )
        parts.append(("categorical", encoder, categorical))
    return ColumnTransformer(parts, verbose_feature_names_out=False, sparse_threshold=0.0)


@dataclass
class FittedPreprocessor:
    """Everything fitted on a fold's training side that prediction on new rows needs.

    Attributes
    ----------
    features
        The fitted feature transformer.
    feature_names
        Names of the columns it outputs.
    input_columns
        Names of the raw columns it expects.
    target_mean, target_scale
        Regression target standardisation (``None`` when targets are not scaled).
    selection
        The fold's feature selection, as its summary records it (``method``, ``k``, ``of``,
        ``reason``, ``p_much_larger``); ``None`` in files written before it existed.
    """

    features: ColumnTransformer
    feature_names: list[str]
    input_columns: list[str]
    target_mean: np.ndarray | None = None
    target_scale: np.ndarray | None = None
    selection: dict[str, Any] | None = None

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Transform raw feature columns into the model's float32 input matrix."""
        return np.asarray(self.features.transform(frame[self.input_columns]), dtype=np.float32)

    def scale_targets(self, y: np.ndarray) -> np.ndarray:
        """Standardise regression targets with the training-side mean and scale."""
        if self.target_mean is None:
            return np.asarray(y, dtype=np.float32)
        return ((y - self.target_mean) / self.target_scale).astype(np.float32)

    def unscale_targets(self, y: np.ndarray) -> np.ndarray:
        """Map standardised predictions back to the original target scale."""
        if self.target_mean is None:
            return np.asarray(y, dtype=np.float64)
        return np.asarray(y, dtype=np.float64) * self.target_scale + self.target_mean


@dataclass
class FoldArrays:
    """One side (train, val or test) of a preprocessed fold.

    ``X`` is an array (features, sequence codes), or for images the side's rows of the image
    store with the fitted scale (:class:`dlpipe.image_store.StoreImages`), read per batch.
    """

    X: np.ndarray | StoreImages
    y: np.ndarray
    ids: np.ndarray

    def save(self, path: str | Path) -> None:
        """Write as an uncompressed ``.npz`` (images: rows, scale and the store's relative path)."""
        if isinstance(self.X, StoreImages):
            # Relative to the file's folder, so a results folder can be moved as a whole.
            store = os.path.relpath(self.X.store, Path(path).parent)
            np.savez(
                path,
                rows=self.X.rows,
                scale=np.float64(self.X.scale),
                store=np.str_(Path(store).as_posix()),
                y=self.y,
                ids=self.ids.astype(str),
            )
            return
        np.savez(path, X=self.X, y=self.y, ids=self.ids.astype(str))

    @classmethod
    def load(cls, path: str | Path) -> FoldArrays:
        """Read a file written by :meth:`save` (images stay in their store until read)."""
        with np.load(path, allow_pickle=False) as data:
            if "rows" in data:
                store = Path(path).parent / str(data["store"])
                images = StoreImages(store, data["rows"], float(data["scale"]))
                return cls(X=images, y=data["y"], ids=data["ids"])
            return cls(X=data["X"], y=data["y"], ids=data["ids"])


def apply_smote(
    X: np.ndarray,  # noqa: N803
    y: np.ndarray,
    k_neighbors: int,
    seed: int,
    onehot_blocks: list[tuple[int, int]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Oversample minority classes of training rows with SMOTE (SMOTENC with categorical columns).

    ``k_neighbors`` is lowered to the smallest class size minus one when a class is small.
    One-hot blocks are folded back into one categorical column each for SMOTENC and expanded
    again afterwards, so every synthetic row holds exactly one category per variable.

    Parameters
    ----------
    X, y
        Training rows and class codes only; never pass validation or test rows.
    k_neighbors
        Requested number of neighbours.
    seed
        Seed of the sampler.
    onehot_blocks
        ``(first column, width)`` of each one-hot encoded variable in ``X``.

    Returns
    -------
    tuple of numpy.ndarray
        The original rows followed by the synthetic ones, and their codes.
    """
    # lazy: imbalanced-learn takes 1 s to import and most preprocess jobs use no SMOTE
    from imblearn.over_sampling import SMOTE, SMOTENC

    classes, counts = np.unique(y, return_counts=True)
    smallest = int(counts.min())
    if smallest < 2:
        cls = classes[counts.argmin()]
        raise InputError(
            f"SMOTE needs at least 2 training samples per class, but class code {cls} has "
            f"{smallest} on the training side of this fold; lower cv.n_splits, drop the class or "
            "set preprocess.smote: false"
        )
    k = min(k_neighbors, smallest - 1)
    if not onehot_blocks:
        X_res, y_res = SMOTE(k_neighbors=k, random_state=seed).fit_resample(X, y)  # noqa: N806
        return np.asarray(X_res, dtype=np.float32), np.asarray(y_res)
    in_block = np.zeros(X.shape[1], dtype=bool)
    for start, width in onehot_blocks:
        in_block[start : start + width] = True
    numeric = np.flatnonzero(~in_block)
    if len(numeric) == 0:
        raise InputError("SMOTE needs at least one numeric feature; all features are categorical")
    # One integer column per variable: the index of its hot column (width = unseen/missing).
    codes = [
        np.where(X[:, s : s + w].any(axis=1), X[:, s : s + w].argmax(axis=1), w)
        for s, w in onehot_blocks
    ]
    compact = np.column_stack([X[:, numeric], *codes])
    sampler = SMOTENC(
        categorical_features=list(range(len(numeric), compact.shape[1])),
        k_neighbors=k,
        random_state=seed,
    )
    res, y_res = sampler.fit_resample(compact, y)
    out = np.zeros((len(res), X.shape[1]), dtype=np.float32)
    out[:, numeric] = res[:, : len(numeric)]
    for j, (start, width) in enumerate(onehot_blocks):
        code = res[:, len(numeric) + j].astype(int)
        hot = code < width
        out[np.flatnonzero(hot), start + code[hot]] = 1.0
    return out, np.asarray(y_res)


def onehot_blocks(transformer: ColumnTransformer) -> list[tuple[int, int]]:
    """``(first column, width)`` of each one-hot variable in a fitted transformer's output."""
    if "categorical" not in transformer.named_transformers_:
        return []
    start = 0
    for name, _, columns in transformer.transformers_:
        if name == "categorical":
            break
        if name != "remainder":
            start += len(transformer.named_transformers_[name].get_feature_names_out(columns))
    encoder = transformer.named_transformers_["categorical"].named_steps["onehot"]
    blocks = []
    for categories in encoder.categories_:
        blocks.append((start, len(categories)))
        start += len(categories)
    return blocks


def preprocess_fold(
    dataset: TabularDataset,
    index: Mapping[str, np.ndarray],
    pre: Mapping[str, Any],
    seed: int,
) -> tuple[dict[str, FoldArrays], FittedPreprocessor, dict[str, Any]]:
    """Fit preprocessing on a fold's training rows and apply it to all three sides.

    Parameters
    ----------
    dataset
        The experiment's dataset.
    index
        Positions of ``train``, ``val`` and ``test`` rows (see :func:`dlpipe.split.fold_indices`).
    pre
        The experiment's ``preprocess`` config.
    seed
        Seed for SMOTE and the quantile transformer.

    Returns
    -------
    arrays
        ``train``, ``val``, ``test`` :class:`FoldArrays` (train includes SMOTE rows, if any).
    fitted
        The :class:`FittedPreprocessor`.
    summary
        Counts for the report: rows per side, features in/out, class counts before/after SMOTE.
    """
    features = dataset.features
    y = dataset.y
    ids = dataset.ids
    categorical = dataset.categorical_columns
    numeric = [c for c in dataset.feature_columns if c not in categorical]
    train = index["train"]
    plan = selection_plan(pre, dataset.task, len(numeric), len(train))
    transformer = build_feature_transformer(
        pre, numeric, categorical, seed, len(train), plan.k if numeric else None
    )
    try:
        # The training side's labels reach only the supervised selection (ANOVA F).
        labels = y[train] if plan.k is not None else None
        X_train = np.asarray(  # noqa: N806
            transformer.fit_transform(features.iloc[train], labels), dtype=np.float32
        )
    except ValueError as err:
        if "variance threshold" not in str(err):
            raise
        raise InputError(
            f"preprocess.variance_threshold {pre['variance_threshold']} removes every numeric "
            "feature on the training side of this fold; lower it"
        ) from None
    names = [str(n) for n in transformer.get_feature_names_out()]
    selection = {
        "method": "anova" if plan.k is not None and numeric else "none",
        "k": plan.k if numeric else None,
        "of": min(len(numeric), int(pre["top_k_features"] or len(numeric))),
        "reason": plan.reason,
        "p_much_larger": plan.p_much_larger,
    }
    fitted = FittedPreprocessor(
        transformer, names, list(dataset.feature_columns), selection=selection
    )
    if dataset.task == "regression" and pre["scale_targets"]:
        mean = y[train].mean(axis=0)
        scale = y[train].std(axis=0)
        scale[scale == 0] = 1.0
        fitted.target_mean, fitted.target_scale = mean, scale

    arrays = {"train": FoldArrays(X_train, y[train], ids[train])}
    for side in ("val", "test"):
        rows = index[side]
        arrays[side] = FoldArrays(fitted.transform(features.iloc[rows]), y[rows], ids[rows])

    summary: dict[str, Any] = {
        "n_train": len(train),
        "n_val": len(index["val"]),
        "n_test": len(index["test"]),
        "n_input_features": len(dataset.feature_columns),
        "n_model_features": len(names),
        "selection": selection,
    }
    if dataset.task == "classification":
        classes = dataset.classes or []
        summary["train_class_counts"] = _counts(y[train], classes)
        if pre["smote"]:
            X_res, y_res = apply_smote(  # noqa: N806
                X_train, y[train], pre["smote_k_neighbors"], seed, onehot_blocks(transformer)
            )
            n_new = len(y_res) - len(train)
            new_ids = np.array([f"smote_{i}" for i in range(n_new)], dtype=str)
            arrays["train"] = FoldArrays(X_res, y_res, np.concatenate([ids[train], new_ids]))
            summary["train_class_counts_after_smote"] = _counts(y_res, classes)
            summary["n_smote_samples"] = n_new
    return arrays, fitted, summary


def _counts(codes: np.ndarray, classes: list[str]) -> dict[str, int]:
    if codes.ndim == 2:  # multilabel: positives per target
        return {name: int(codes[:, i].sum()) for i, name in enumerate(classes)}
    return {name: int((codes == i).sum()) for i, name in enumerate(classes)}


@dataclass
class SequenceInput:
    """What a sequence model expects of new inputs: alphabet and length (nothing is fitted)."""

    alphabet: str
    length: int


def preprocess_sequence_fold(
    dataset: SequenceDataset, index: Mapping[str, np.ndarray]
) -> tuple[dict[str, FoldArrays], SequenceInput, dict[str, Any]]:
    """Slice a sequence dataset into a fold's train, val and test codes.

    Nothing is fitted on sequences; the summary counts windows that overlap across sides
    (zero for chromosome plans by construction).
    """
    codes, y, ids = dataset.codes, dataset.y, dataset.ids
    arrays = {side: FoldArrays(codes[rows], y[rows], ids[rows]) for side, rows in index.items()}
    side = np.empty(len(ids), dtype=object)
    for name, rows in index.items():
        side[rows] = name
    used = side != None  # noqa: E711 - elementwise comparison on an object array
    summary = {
        "n_train": len(index["train"]),
        "n_val": len(index["val"]),
        "n_test": len(index["test"]),
        "n_input_features": int(codes.shape[1]),
        "n_model_features": int(codes.shape[1]),
        "train_class_counts": _counts(y[index["train"]], dataset.classes),
        "overlapping_windows_across_sides": cross_fold_overlaps(
            dataset.windows[used].reset_index(drop=True), side[used]
        ),
    }
    return arrays, SequenceInput(dataset.alphabet, int(codes.shape[1])), summary


@dataclass
class ImageInput:
    """What an image model expects of new inputs, and the intensity scale fitted for it.

    Attributes
    ----------
    dtype
        ``uint8`` or ``uint16``: the bit depth of the training images.
    channels
        Image channels.
    size
        ``[height, width]`` every image is resized to.
    scale
        Pixel value that becomes 1.0: 255 for 8-bit images; for 16-bit images the brightest
        pixel of the fold's training side (microscopy rarely fills 16 bits: a 12-bit camera
        tops out at 4095, so dividing by 65535 would squeeze the data into [0, 0.06]).
    """

    dtype: str
    channels: int
    size: list[int]
    scale: float

    def transform(self, pixels: np.ndarray) -> np.ndarray:
        """Scale ``(n, C, H, W)`` pixels of the training dtype to float32 (training: [0, 1])."""
        pixels = np.asarray(pixels)
        if pixels.dtype.name != self.dtype:
            raise InputError(
                f"images of {pixels.dtype.name} pixels given to models trained on {self.dtype} "
                "images; give images of the training bit depth"
            )
        if list(pixels.shape[1:]) != [self.channels, *self.size]:
            raise InputError(
                f"images of shape {list(pixels.shape[1:])} (channels, height, width) given to "
                f"models trained on {[self.channels, *self.size]}"
            )
        return scale_pixels(pixels, self.scale)


def preprocess_image_fold(
    dataset: ImageDataset, index: Mapping[str, np.ndarray]
) -> tuple[dict[str, FoldArrays], ImageInput, dict[str, Any]]:
    """Index a fold's sides into the image store; fit the intensity scale on its training side.

    Each side is its rows of the memory-mapped store with the scale
    (:class:`dlpipe.image_store.StoreImages`), not a copy: training reads a batch of stored
    pixels at a time and scales it to float32 on the device; evaluation and the baselines read
    a chunk at a time, scaled as :meth:`ImageInput.transform` scales new images. Augmentation
    happens later, per training batch (:mod:`dlpipe.train`).
    """
    images, y, ids = dataset.images, dataset.y, dataset.ids
    scale = image_scale(images, index["train"])
    fitted = ImageInput(
        str(images.dtype), int(images.shape[1]), [int(v) for v in images.shape[2:]], scale
    )
    arrays = {
        side: FoldArrays(StoreImages(dataset.store, rows, scale), y[rows], ids[rows])
        for side, rows in index.items()
    }
    summary = {
        "n_train": len(index["train"]),
        "n_val": len(index["val"]),
        "n_test": len(index["test"]),
        "n_input_features": int(np.prod(images.shape[1:])),
        "n_model_features": int(np.prod(images.shape[1:])),
        "train_class_counts": _counts(y[index["train"]], dataset.classes),
        "pixel_scale": scale,
        # Zero under a group plan; with groups named and another plan, the report shows the leak.
        "groups_on_both_sides": len(
            set(dataset.groups[index["train"]]) & set(dataset.groups[index["test"]])
        ),
    }
    return arrays, fitted, summary
