"""Tables: samples × features from CSV, TSV, Parquet or an AnnData ``.h5ad``.

The plain modality: :func:`prepare_tabular` reads the table and checks it before any split or
training (missing columns, duplicate ids, missing or single-class labels, classes too small for
the CV plan, non-numeric features or targets, infinite values), each error naming the file,
the column and the line (or row) and the fix. The deep model is an MLP on the preprocessed
features, the baseline the task's linear model on the same features.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from dlpipe.cv import CHROMOSOME_PLANS
from dlpipe.datasets import ID_INDEX, TabularDataset, as_category_text, check_class_sizes
from dlpipe.errors import ConfigError, InputError
from dlpipe.io.files import sha256
from dlpipe.io.tables import infer_format, read_table, row_locations
from dlpipe.modalities.base import Modality


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


def read_new_table(
    path: str | Path,
    input_columns: Sequence[str],
    categorical: Sequence[str],
    id_column: str | None,
    imputed: bool = True,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Ids and feature columns of a new table, checked as :func:`prepare_tabular` checks data.

    Parameters
    ----------
    path
        The new table.
    input_columns
        The feature columns the models were trained on.
    categorical
        Those of them that are categorical (text).
    id_column
        Column of sample ids (rows are numbered ``row1`` … without one).
    imputed
        Whether the fold preprocessing imputes missing values; if not, an empty feature field
        is refused (a model given NaN answers NaN).

    Returns
    -------
    tuple
        ``(ids, features)``: numeric features as float, categorical ones as text.

    Raises
    ------
    InputError
        Naming the file, column and line of a missing column, repeated id, non-numeric,
        infinite or (without imputation) missing value.
    """
    path = str(path)
    fmt = infer_format(path)
    # Ids are taken literally, as prepare takes them (a sample called NA stays NA).
    table = read_table(
        path, text_columns=list(categorical), exact_columns=[id_column] if id_column else []
    )
    missing = [c for c in input_columns if c not in table.columns]
    if missing:
        raise InputError(
            f"{path}: {len(missing)} feature column(s) the models were trained on are missing, "
            f"e.g. {missing[:5]}; the new table needs every training feature column"
        )
    if id_column and id_column in table.columns:
        ids = table[id_column].astype(str)
    elif "obs_names" in table.columns:
        ids = table["obs_names"].astype(str)
    else:
        ids = pd.Series([f"row{i + 1}" for i in range(len(table))])
    dup = np.flatnonzero(ids.duplicated(keep=False).to_numpy())
    if len(dup):
        raise InputError(
            f"{path}: sample ids appear more than once at {_locate(path, fmt, dup, ids)}; every "
            "row needs its own id, or its predictions cannot be told apart"
        )
    features = table[list(input_columns)].copy()
    for col in input_columns:
        if col in categorical:
            features[col] = as_category_text(features[col])
            continue
        values = pd.to_numeric(features[col], errors="coerce")
        bad = np.flatnonzero(values.isna().to_numpy() & features[col].notna().to_numpy())
        if len(bad):
            raise InputError(
                f"{path}: feature column {col!r} is not numeric: {features[col].iloc[bad[0]]!r} "
                f"at {_locate(path, fmt, bad, ids)}"
            )
        arr = values.to_numpy(dtype=np.float64)
        infinite = np.flatnonzero(np.isinf(arr))
        if len(infinite):
            raise InputError(
                f"{path}: feature column {col!r} holds infinite values at "
                f"{_locate(path, fmt, infinite, ids)}; replace them"
                + (" or leave them empty to impute" if imputed else "")
            )
        if not imputed and np.isnan(arr).any():
            rows = np.flatnonzero(np.isnan(arr))
            raise InputError(
                f"{path}: feature column {col!r} is empty at {_locate(path, fmt, rows, ids)} and "
                "the experiment was trained without imputation (preprocess.impute: none); fill "
                "the values"
            )
        features[col] = arr
    return ids.to_numpy(), features


class Tabular(Modality):
    """Samples × features: an MLP on the preprocessed features beside a linear model."""

    name = "tabular"
    file_keys: ClassVar[tuple[str, ...]] = ("path",)

    def check_config(self, key: str, exp: Mapping[str, Any]) -> None:
        """Table keys only: a path, a label or targets, group column for group plans."""
        data, cv = exp["data"], exp["cv"]
        if not data["path"]:
            raise ConfigError(f"config key {key}.data.path: a tabular experiment needs its table")
        for field in ("genome", "bed", "blacklist", "fasta", "labels"):
            if data[field]:
                raise ConfigError(
                    f"config key {key}.data.{field}: only sequence experiments use it; set "
                    "data.modality: sequence or remove it"
                )
        if cv["plan"] in CHROMOSOME_PLANS:
            raise ConfigError(
                f"config key {key}.cv.plan: {cv['plan']!r} needs genomic intervals "
                "(data.modality: sequence)"
            )
        if self.task(exp).categorical:
            if not data["label_column"]:
                raise ConfigError(
                    f"config key {key}.data.label_column: a classification needs the name of the "
                    "label column"
                )
            if data["target_columns"]:
                raise ConfigError(
                    f"config key {key}.data.target_columns: only regression uses target columns; "
                    "for classification set data.label_column"
                )
        else:
            if not data["target_columns"]:
                raise ConfigError(
                    f"config key {key}.data.target_columns: a regression needs a list of numeric "
                    "target columns"
                )
            if data["label_column"]:
                raise ConfigError(
                    f"config key {key}.data.label_column: a regression predicts "
                    "data.target_columns; remove label_column or set task: classification"
                )
        if exp["preprocess"]["select"] == "anova" and not self.task(exp).categorical:
            raise ConfigError(
                f"config key {key}.preprocess.select: 'anova' ranks features by their F between "
                f"classes, but this is a {exp['task']}; use auto or none"
            )
        if cv["plan"] == "group_kfold" and not data["group_column"]:
            raise ConfigError(
                f"config key {key}.data.group_column: cv.plan group_kfold needs the column that "
                "holds the groups"
            )
        if data["layer"] and data["format"] not in ("auto", "h5ad"):
            raise ConfigError(f"config key {key}.data.layer: layers exist in .h5ad files only")
        reserved = [data["id_column"], data["label_column"], data["group_column"]]
        reserved += data["target_columns"] or []
        for col in (data["feature_columns"] or []) + data["categorical_columns"]:
            if col in reserved:
                raise ConfigError(
                    f"config key {key}.data: column {col!r} is used both as a feature and as "
                    "id/label/target/group; remove it from the feature lists"
                )
        if data["feature_columns"] is not None:
            missing = set(data["categorical_columns"]) - set(data["feature_columns"])
            if missing:
                raise ConfigError(
                    f"config key {key}.data.categorical_columns: {sorted(missing)} are not in "
                    "data.feature_columns; add them there"
                )

    def prepare(
        self, name: str, exp: Mapping[str, Any], folder: Path, integrated: str | None = None
    ) -> tuple[TabularDataset, dict[str, Any]]:
        """Read and check the table."""
        data = prepare_tabular(exp, name)
        return data, {data.meta["source"]: data.meta["sha256"]}

    def describe_data(self, name: str, exp: Mapping[str, Any]) -> str:
        """Check the table and that its folds can be made; count samples and classes."""
        data = prepare_tabular(exp, name)
        self.check_split(name, data, exp)
        counts = data.meta.get("class_counts") or {}
        detail = ", ".join(f"{k}: {v}" for k, v in counts.items())
        return f"{name}: {data.meta['n_samples']} samples" + (f" ({detail})" if detail else "")

    def read_new(
        self,
        source: Mapping[str, Any],
        exp: Mapping[str, Any],
        meta: Mapping[str, Any],
        first_preprocessor: Any,
    ) -> tuple[np.ndarray, Any, dict[str, Any]]:
        """Read a table of the training feature columns (each fold preprocesses it)."""
        if source.get("fasta") or source.get("bed"):
            raise InputError("a tabular experiment predicts a table, not FASTA or BED input")
        if not source.get("table"):
            raise InputError("nothing to predict: give a table, a FASTA file or a BED file")
        id_column = source.get("id_column") or exp.get("data", {}).get("id_column")
        ids, features = read_new_table(
            source["table"],
            first_preprocessor.input_columns,
            meta.get("categorical_columns") or [],
            id_column,
            imputed=exp.get("preprocess", {}).get("impute", "none") != "none",
        )
        return ids, features, {}


MODALITY = Tabular()
