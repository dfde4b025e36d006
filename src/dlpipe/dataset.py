"""Turn a raw table into the canonical tabular dataset of one experiment, checking it first.

Every check that can fail on user data runs here, before any split or training: missing
columns, duplicate ids, missing or single-class labels, classes too small for the CV plan,
non-numeric features or targets, infinite values. Each error names the file, the column and the
line (or row), and says how to fix it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlpipe.errors import InputError
from dlpipe.io import infer_format, read_json, read_table, row_locations, sha256, write_json

ID_INDEX = "sample_id"


def as_category_text(values: pd.Series) -> pd.Series:
    """Categorical values as Python strings, with missing values as ``np.nan``."""
    text = values.astype("string").astype(object)
    return text.where(values.notna(), np.nan)


@dataclass
class TabularDataset:
    """Features, targets and groups of one experiment, indexed by unique sample id.

    Attributes
    ----------
    table
        Feature columns, then target column(s), then the group column if any; index = ids.
    task
        ``classification`` or ``regression``.
    feature_columns, categorical_columns, target_columns
        Column roles; ``categorical_columns`` is a subset of ``feature_columns``.
    group_column
        Column of group ids, or ``None``.
    classes
        Sorted class names (classification); the label code of a sample is its position here.
    meta
        Provenance: source file, checksum, counts.
    feature_sets
        Feature columns each learner reads (``model``, ``baseline``), when they differ (a
        single-cell experiment: scVI latent for the deep model, PCA for the baseline);
        ``None``: every learner reads every feature.
    """

    table: pd.DataFrame
    task: str
    feature_columns: list[str]
    categorical_columns: list[str]
    target_columns: list[str]
    group_column: str | None = None
    classes: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    feature_sets: dict[str, list[str]] | None = None

    @property
    def ids(self) -> np.ndarray:
        """Sample ids as strings."""
        return self.table.index.to_numpy(dtype=str)

    @property
    def features(self) -> pd.DataFrame:
        """The feature columns."""
        return self.table[self.feature_columns]

    @property
    def y(self) -> np.ndarray:
        """Class codes (int64) for classification, target matrix (float64) for regression."""
        if self.task == "classification":
            labels = self.table[self.target_columns[0]].astype(str)
            return pd.Categorical(labels, categories=self.classes).codes.astype(np.int64)
        return self.table[self.target_columns].to_numpy(dtype=np.float64)

    @property
    def groups(self) -> np.ndarray | None:
        """Group ids as strings, or ``None``."""
        if self.group_column is None:
            return None
        return self.table[self.group_column].to_numpy(dtype=str)

    def save(self, parquet: str | Path, meta_json: str | Path) -> None:
        """Write the table as Parquet and the column roles and provenance as JSON."""
        self.table.to_parquet(parquet, index=True)
        write_json(
            {
                "modality": "tabular",
                "task": self.task,
                "feature_columns": self.feature_columns,
                "categorical_columns": self.categorical_columns,
                "target_columns": self.target_columns,
                "group_column": self.group_column,
                "classes": self.classes,
                "meta": self.meta,
                "feature_sets": self.feature_sets,
            },
            meta_json,
        )

    @classmethod
    def load(cls, parquet: str | Path, meta_json: str | Path) -> TabularDataset:
        """Read a dataset written by :meth:`save`."""
        info = read_json(meta_json)
        info.pop("modality", None)
        table = pd.read_parquet(parquet)
        table.index = table.index.astype(str)
        for col in info["categorical_columns"]:  # Parquet reads missing text back as None
            table[col] = as_category_text(table[col])
        return cls(table=table, **info)


def _locate(path: str, fmt: str, rows: np.ndarray, ids: pd.Series | None = None) -> str:
    where = row_locations(path, rows[:3], fmt)
    if ids is not None:
        where = [f"{w} (id {ids.iloc[int(r)]})" for w, r in zip(where, rows[:3], strict=False)]
    more = f" and {len(rows) - 3} more" if len(rows) > 3 else ""
    return ", ".join(where) + more


def _require_columns(path: str, table: pd.DataFrame, columns: list[str], key: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        shown = ", ".join(list(table.columns[:8])) + (" …" if table.shape[1] > 8 else "")
        raise InputError(
            f"{path}: column(s) {missing} named by config key {key} not found; the table has "
            f"{table.shape[1]} columns: {shown}"
        )


def min_class_size(cv: Mapping[str, Any]) -> int:
    """Smallest class size a CV plan can stratify (each class in every test fold)."""
    plan = cv["plan"]
    if plan in ("stratified_kfold", "repeated_stratified_kfold"):
        return int(cv["n_splits"])
    if plan == "holdout":
        return 2
    return 1


def check_class_sizes(counts: pd.Series, cv: Mapping[str, Any], where: str) -> None:
    """Fail unless there are two classes or more, each as large as the CV plan needs.

    Parameters
    ----------
    counts
        Samples per class.
    cv
        The experiment's ``cv`` config.
    where
        File and column, for the message.
    """
    if len(counts) < 2:
        raise InputError(
            f"{where} holds a single class ({counts.index[0]!r}); a classification needs at "
            "least two classes"
        )
    need = min_class_size(cv)
    small = counts[counts < need]
    if len(small):
        sizes = {str(k): int(v) for k, v in small.items()}
        raise InputError(
            f"{where}: class(es) {sizes} have fewer samples than the {need} that cv.plan "
            f"{cv['plan']!r} needs (n_splits={cv['n_splits']}); lower cv.n_splits, merge rare "
            "classes or drop them"
        )


def prepare_tabular(exp: Mapping[str, Any], name: str = "experiment") -> TabularDataset:
    """Read and check an experiment's table and return its canonical dataset.

    Parameters
    ----------
    exp
        The experiment's validated configuration (see :func:`dlpipe.config.validate_config`).
    name
        The experiment's name, used in messages.

    Returns
    -------
    TabularDataset
        The checked dataset.

    Raises
    ------
    InputError
        For any problem in the data, naming the file, column and line and the fix.
    """
    data, task = exp["data"], exp["task"]
    path = str(data["path"])
    key = f"experiments.{name}.data"
    exact = [c for c in (data["id_column"], data["label_column"], data["group_column"]) if c]
    table = read_table(
        path,
        data["format"],
        data["layer"],
        text_columns=list(data["categorical_columns"]),
        exact_columns=exact,
    )
    fmt = infer_format(path) if data["format"] == "auto" else data["format"]

    id_col = data["id_column"]
    if id_col is None:
        ids = (
            table["obs_names"]
            if "obs_names" in table.columns
            else pd.Series([f"row{i + 1}" for i in range(len(table))])
        )
    else:
        _require_columns(path, table, [id_col], f"{key}.id_column")
        ids = table[id_col]
        if ids.isna().any():
            rows = np.flatnonzero(ids.isna().to_numpy())
            raise InputError(f"{path}: id column {id_col!r} is empty at {_locate(path, fmt, rows)}")
    ids = ids.astype(str).reset_index(drop=True)
    dup = ids.duplicated(keep=False).to_numpy()
    if dup.any():
        rows = np.flatnonzero(dup)
        raise InputError(
            f"{path}: sample ids in column {id_col or 'obs_names'!r} are not unique: "
            f"{sorted(set(ids[dup]))[:5]} at {_locate(path, fmt, rows)}; every row needs its own id"
        )

    if task == "classification":
        targets = [data["label_column"]]
        _require_columns(path, table, targets, f"{key}.label_column")
    else:
        targets = list(data["target_columns"])
        _require_columns(path, table, targets, f"{key}.target_columns")
    group = data["group_column"]
    if group is not None:
        _require_columns(path, table, [group], f"{key}.group_column")
        if table[group].isna().any():
            rows = np.flatnonzero(table[group].isna().to_numpy())
            raise InputError(
                f"{path}: group column {group!r} is empty at {_locate(path, fmt, rows, ids)}; "
                "every sample needs a group"
            )
    _require_columns(path, table, list(data["exclude_columns"]), f"{key}.exclude_columns")
    categorical = list(data["categorical_columns"])
    _require_columns(path, table, categorical, f"{key}.categorical_columns")
    reserved = {id_col, group, "obs_names", *targets, *data["exclude_columns"]}
    if data["feature_columns"] is not None:
        features = list(data["feature_columns"])
        _require_columns(path, table, features, f"{key}.feature_columns")
    else:
        features = [c for c in table.columns if c not in reserved]
    if not features:
        raise InputError(
            f"{path}: no feature columns are left after removing id, label/targets, group and "
            f"excluded columns; check {key}"
        )

    # Labels / targets.
    classes = None
    if task == "classification":
        label = table[targets[0]]
        if label.isna().any():
            rows = np.flatnonzero(label.isna().to_numpy())
            raise InputError(
                f"{path}: label column {targets[0]!r} is empty at {_locate(path, fmt, rows, ids)}; "
                "remove these samples or give them a label"
            )
        counts = label.astype(str).value_counts()
        check_class_sizes(counts, exp["cv"], f"{path}: label column {targets[0]!r}")
        classes = sorted(counts.index.tolist())
    else:
        for col in targets:
            values = pd.to_numeric(table[col], errors="coerce")
            bad = np.flatnonzero(values.isna().to_numpy() & table[col].notna().to_numpy())
            if len(bad):
                raise InputError(
                    f"{path}: regression target {col!r} is not numeric: "
                    f"{table[col].iloc[bad[0]]!r} at {_locate(path, fmt, bad, ids)}"
                )
            missing = np.flatnonzero(values.isna().to_numpy())
            if len(missing):
                raise InputError(
                    f"{path}: regression target {col!r} is missing at "
                    f"{_locate(path, fmt, missing, ids)}; remove these samples"
                )
            infinite = np.flatnonzero(~np.isfinite(values.to_numpy(dtype=float)))
            if len(infinite):
                raise InputError(
                    f"{path}: regression target {col!r} is infinite at "
                    f"{_locate(path, fmt, infinite, ids)}"
                )
            table[col] = values.astype(np.float64)

    # Features: numeric unless declared categorical; no infinities; NaN only if imputed.
    impute = exp["preprocess"]["impute"]
    for col in features:
        if col in categorical:
            # Text categories; a missing value stays NaN so the imputer sees it as missing.
            table[col] = as_category_text(table[col])
            continue
        values = table[col]
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            coerced = pd.to_numeric(values, errors="coerce")
            bad = np.flatnonzero(coerced.isna().to_numpy() & values.notna().to_numpy())
            if len(bad):
                raise InputError(
                    f"{path}: feature column {col!r} is not numeric: {values.iloc[bad[0]]!r} at "
                    f"{_locate(path, fmt, bad, ids)}; list it in {key}.categorical_columns to "
                    f"one-hot encode it, or in {key}.exclude_columns to leave it out"
                )
            values = coerced
        values = values.astype(np.float64)
        arr = values.to_numpy()
        infinite = np.flatnonzero(np.isinf(arr))
        if len(infinite):
            raise InputError(
                f"{path}: feature column {col!r} holds infinite values at "
                f"{_locate(path, fmt, infinite, ids)}; replace them or leave them empty to impute"
            )
        if impute == "none" and np.isnan(arr).any():
            rows = np.flatnonzero(np.isnan(arr))
            raise InputError(
                f"{path}: feature column {col!r} has missing values (NaN) at "
                f"{_locate(path, fmt, rows, ids)} and preprocess.impute is 'none'; set "
                "preprocess.impute to median, mean or most_frequent, or fill them"
            )
        table[col] = values
    numeric = [c for c in features if c not in categorical]
    if numeric and np.isnan(table[numeric].to_numpy()).all(axis=0).any():
        empty = [c for c in numeric if table[c].isna().all()]
        raise InputError(
            f"{path}: feature column(s) {empty[:5]} are empty in every row; exclude them in "
            f"{key}.exclude_columns"
        )

    keep = features + targets + ([group] if group else [])
    out = table[keep].copy()
    out.index = pd.Index(ids, name=ID_INDEX)
    if task == "classification":
        out[targets[0]] = out[targets[0]].astype(str)
    meta = {
        "source": path,
        "sha256": sha256(path),
        "n_samples": len(out),
        "n_features": len(features),
        "n_categorical": len(categorical),
        "missing_values": int(out[numeric].isna().to_numpy().sum()) if numeric else 0,
    }
    if classes is not None:
        meta["class_counts"] = {c: int(n) for c, n in out[targets[0]].value_counts().items()}
    if group:
        meta["n_groups"] = int(out[group].nunique())
    return TabularDataset(
        table=out,
        task=task,
        feature_columns=features,
        categorical_columns=categorical,
        target_columns=targets,
        group_column=group,
        classes=classes,
        meta=meta,
    )


@dataclass
class SequenceDataset:
    """Fixed-length sequences as ``uint8`` codes with their genomic windows and labels.

    Attributes
    ----------
    codes
        ``(n, length)`` ``uint8`` codes (see :mod:`dlpipe.encode`).
    windows
        One row per sequence, index = ids: ``chrom``, ``start``, ``end``, ``label`` (class
        name), ``group`` (CV group: chromosome or genomic bin), ``gc``.
    classes
        Class names (background first, then the target), or the targets of a multi-label
        task (``task == "multilabel"``, one 0/1 column ``y_<target>`` each in ``windows``).
    alphabet
        ``dna``, ``rna`` or ``protein``.
    meta
        Provenance and counts.
    """

    codes: np.ndarray
    windows: pd.DataFrame
    classes: list[str]
    alphabet: str = "dna"
    meta: dict[str, Any] = field(default_factory=dict)
    task: str = "classification"

    @property
    def ids(self) -> np.ndarray:
        """Sequence ids (``chrom:start-end``) as strings."""
        return self.windows.index.to_numpy(dtype=str)

    @property
    def y(self) -> np.ndarray:
        """Class codes (int64), or the ``(n, targets)`` 0/1 matrix of a multi-label task."""
        if self.task == "multilabel":
            return self.windows[[f"y_{t}" for t in self.classes]].to_numpy(dtype=np.float32)
        return pd.Categorical(self.windows["label"], categories=self.classes).codes.astype(np.int64)

    @property
    def groups(self) -> np.ndarray:
        """CV groups (chromosome or genomic bin)."""
        return self.windows["group"].to_numpy(dtype=str)

    def save(self, parquet: str | Path, meta_json: str | Path) -> None:
        """Write windows and codes (one fixed-size binary column) as Parquet, meta as JSON."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(self.windows, preserve_index=True)
        width = self.codes.shape[1]
        column = pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(width),
            len(self.codes),
            [None, pa.py_buffer(np.ascontiguousarray(self.codes))],
        )
        pq.write_table(table.append_column("sequence", column), parquet)
        write_json(
            {
                "modality": "sequence",
                "task": self.task,
                "classes": self.classes,
                "alphabet": self.alphabet,
                "length": int(width),
                "meta": self.meta,
            },
            meta_json,
        )

    @classmethod
    def load(cls, parquet: str | Path, meta_json: str | Path) -> SequenceDataset:
        """Read a dataset written by :meth:`save`."""
        import pyarrow.parquet as pq

        info = read_json(meta_json)
        table = pq.read_table(parquet)
        column = table.column("sequence").combine_chunks()
        codes = np.frombuffer(column.buffers()[1], dtype=np.uint8)[
            column.offset * info["length"] : (column.offset + len(column)) * info["length"]
        ].reshape(len(column), info["length"])
        windows = table.drop(["sequence"]).to_pandas()
        windows.index = windows.index.astype(str)
        return cls(
            codes=codes.copy(),
            windows=windows,
            classes=info["classes"],
            alphabet=info["alphabet"],
            meta=info["meta"],
            task=info["task"],
        )


def load_dataset(parquet: str | Path, meta_json: str | Path) -> TabularDataset | SequenceDataset:
    """Read the dataset of an experiment, tabular or sequence."""
    if read_json(meta_json).get("modality") == "sequence":
        return SequenceDataset.load(parquet, meta_json)
    return TabularDataset.load(parquet, meta_json)
