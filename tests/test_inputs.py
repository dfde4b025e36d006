"""Bad input stops before training with one message naming the file, column or line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dlpipe.config import validate_config
from dlpipe.dataset import prepare_tabular
from dlpipe.errors import InputError


def _good() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(30, 3)), columns=["g1", "g2", "g3"])
    frame.insert(0, "id", [f"S{i}" for i in range(30)])
    frame["label"] = ["tumour", "normal"] * 15
    frame["expr"] = rng.normal(size=30)
    return frame


def _exp(path: Path, task: str = "classification", **data: object) -> dict:
    spec = {"path": str(path), "id_column": "id", **data}
    if task == "classification":
        spec.setdefault("label_column", "label")
    exp = {"task": task, "data": spec, "cv": {"plan": "kfold" if task == "regression"
                                              else "stratified_kfold", "n_splits": 3}}  # fmt: skip
    return validate_config({"experiments": {"e": exp}})["experiments"]["e"]


def _fails(path: Path, *patterns: str, **kwargs: object) -> str:
    with pytest.raises(InputError) as err:
        prepare_tabular(_exp(path, **kwargs), "e")
    message = str(err.value)
    assert str(path) in message
    for pattern in patterns:
        assert pattern in message, message
    return message


def test_missing_file(tmp_path: Path) -> None:
    _fails(tmp_path / "absent.csv", "file not found", "data.path")


def test_empty_file_and_header_only(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    _fails(tmp_path / "empty.csv", "empty")
    (tmp_path / "header.csv").write_text("id,g1,label\n")
    _fails(tmp_path / "header.csv", "no data rows")


def test_wrong_delimiter_is_recognised(tmp_path: Path) -> None:
    path = tmp_path / "semicolon.csv"
    _good().to_csv(path, sep=";", index=False)
    _fails(path, "semicolon-separated")
    tabbed = tmp_path / "tabbed.csv"
    _good().to_csv(tabbed, sep="\t", index=False)
    _fails(tabbed, "tab-separated", "data.format: tsv")


def test_ragged_rows_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("id,g1,label\nA,1,x\nB,2,y,extra\n")
    _fails(path, "line 3")


def test_label_column_absent(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    _good().to_csv(path, index=False)
    _fails(path, "'diagnosis'", "label_column", label_column="diagnosis")


def test_single_class(tmp_path: Path) -> None:
    frame = _good().assign(label="tumour")
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    _fails(path, "single class", "'tumour'")


def test_class_smaller_than_the_folds(tmp_path: Path) -> None:
    frame = _good()
    frame.loc[:1, "label"] = "rare"
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    _fails(path, "'rare': 2", "n_splits=3")


def test_missing_labels_name_lines(tmp_path: Path) -> None:
    frame = _good()
    frame.loc[4, "label"] = np.nan
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    _fails(path, "label column 'label' is empty at line 6 (id S4)")


def test_nan_needs_imputation_and_inf_is_refused(tmp_path: Path) -> None:
    frame = _good()
    frame.loc[2, "g2"] = np.nan
    path = tmp_path / "nan.csv"
    frame.to_csv(path, index=False)
    exp = _exp(path)
    exp["preprocess"]["impute"] = "none"
    with pytest.raises(InputError, match=r"'g2' has missing values \(NaN\) at line 4"):
        prepare_tabular(exp, "e")
    assert prepare_tabular(_exp(path), "e").meta["missing_values"] == 1  # median imputation
    frame.loc[2, "g2"] = np.inf
    frame.to_csv(path, index=False)
    _fails(path, "'g2' holds infinite values at line 4")


def test_non_numeric_feature_suggests_categorical_columns(tmp_path: Path) -> None:
    frame = _good()
    frame["tissue"] = ["liver", "lung", "kidney"] * 10
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    _fails(path, "feature column 'tissue' is not numeric: 'liver' at line 2",
           "categorical_columns")  # fmt: skip
    exp = _exp(path, categorical_columns=["tissue"])
    assert prepare_tabular(exp, "e").categorical_columns == ["tissue"]


def test_duplicate_ids_name_ids_and_lines(tmp_path: Path) -> None:
    frame = _good()
    frame.loc[7, "id"] = "S3"
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    _fails(path, "not unique", "['S3']", "line 5", "line 9")


def test_regression_target_must_be_numeric_and_present(tmp_path: Path) -> None:
    frame = _good().astype({"expr": object})
    frame.loc[3, "expr"] = "high"
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    _fails(path, "target 'expr' is not numeric: 'high' at line 5", task="regression",
           target_columns=["expr"])  # fmt: skip
    frame.loc[3, "expr"] = np.nan
    frame.to_csv(path, index=False)
    _fails(path, "target 'expr' is missing at line 5", task="regression",
           target_columns=["expr"])  # fmt: skip


def test_text_ids_keep_leading_zeros(tmp_path: Path) -> None:
    frame = _good()
    frame["id"] = [f"{i:05d}" for i in range(30)]
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    assert prepare_tabular(_exp(path), "e").ids[0] == "00000"
