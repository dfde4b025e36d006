"""Bad input: one clear error naming the file and the column or line, before any training.

The library tests call :func:`dlpipe.modalities.tabular.prepare_tabular` on small synthetic
tables with one defect each; the CLI tests run Snakemake on a bad config or bad data and check
that the user sees the one-line ``dlpipe error:`` message and that nothing is left behind.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from dlpipe.config import validate_config
from dlpipe.datasets import TabularDataset
from dlpipe.errors import ConfigError, DlpipeError, InputError
from dlpipe.modalities.tabular import prepare_tabular

ROOT = Path(__file__).resolve().parents[1]


def _frame(n: int = 12) -> pd.DataFrame:
    """Classification table: ids S00.., features g1-g3, labels alternating tumour/normal.

    Row ``r`` of the frame is line ``r + 2`` of the CSV written from it.
    """
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(n, 3)).round(4), columns=["g1", "g2", "g3"])
    frame.insert(0, "id", [f"S{i:02d}" for i in range(n)])
    frame["label"] = ["tumour", "normal"] * (n // 2)
    return frame


def _regression_frame(n: int = 12) -> pd.DataFrame:
    """Regression table: ids R00.., features g1-g3, numeric targets t1 and t2."""
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(n, 5)).round(4), columns=["g1", "g2", "g3", "t1", "t2"])
    frame.insert(0, "id", [f"R{i:02d}" for i in range(n)])
    return frame


def _exp(
    path: Path, task: str = "classification", data: dict[str, Any] | None = None, **sections: Any
) -> dict[str, Any]:
    """Validated experiment ``e`` reading ``path`` (3-fold CV unless ``cv`` is given)."""
    spec: dict[str, Any] = {"path": str(path), "id_column": "id"}
    if task == "classification":
        spec["label_column"] = "label"
    else:
        spec["target_columns"] = ["t1", "t2"]
    spec.update(data or {})
    plan = "stratified_kfold" if task == "classification" else "kfold"
    exp: dict[str, Any] = {"task": task, "data": spec, "cv": {"plan": plan, "n_splits": 3}}
    exp.update(sections)
    return validate_config({"experiments": {"e": exp}})["experiments"]["e"]


def _error(exp: dict[str, Any], *expected: str) -> str:
    """The message ``prepare_tabular`` fails with; it names the file and every ``expected``."""
    with pytest.raises(DlpipeError) as info:
        prepare_tabular(exp, "e")
    assert isinstance(info.value, InputError | ConfigError)
    message = str(info.value)
    path = str(exp["data"]["path"])
    assert path in message, message
    rest = message.replace(path, "<file>")  # the tmp folder repeats the test's name
    for part in expected:
        assert part in rest, f"{part!r} not in {message!r}"
    return message


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --------------------------------------------------------------------------------------------
# Files that cannot be read as a table.


def test_missing_file_names_path_and_config_key(tmp_path: Path) -> None:
    message = _error(_exp(tmp_path / "absent.csv"), "file not found", "data.path")
    assert message.startswith(str(tmp_path / "absent.csv"))


@pytest.mark.parametrize(
    ("sep", "expected"),
    [(";", ("semicolon-separated", "comma- or tab-separated")), ("\t", ("tab-separated", "tsv"))],
    ids=["semicolon", "tab"],
)
def test_wrong_delimiter_in_csv_is_named(tmp_path: Path, sep: str, expected: tuple[str]) -> None:
    path = tmp_path / "table.csv"
    _frame().to_csv(path, sep=sep, index=False)
    _error(_exp(path), "line 1", "single CSV column", *expected)


def test_empty_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "empty.csv", "")
    assert path.stat().st_size == 0
    _error(_exp(path), "the file is empty", "header line and data rows")


def test_header_only(tmp_path: Path) -> None:
    path = _write(tmp_path / "header.csv", "id,g1,g2,g3,label\n")
    _error(_exp(path), "header but no data rows")


def test_ragged_row_with_extra_field_names_its_line(tmp_path: Path) -> None:
    lines = _frame().to_csv(index=False).splitlines()
    lines[5] += ",surplus"  # line 6: row S04
    path = _write(tmp_path / "ragged.csv", "\n".join(lines) + "\n")
    _error(
        _exp(path),
        "not a valid CSV table",
        "line 6 has 6 fields but the header (line 1) has 5",
        "as many fields as the header",
    )


def test_ragged_row_message_is_one_line(tmp_path: Path) -> None:
    lines = _frame().to_csv(index=False).splitlines()
    lines[5] += ",surplus"
    path = _write(tmp_path / "ragged.csv", "\n".join(lines) + "\n")
    message = _error(_exp(path), "line 6")
    assert "\n" not in message


@pytest.mark.parametrize("where", ["first_row", "every_row"])
def test_extra_field_on_first_data_row_is_named(tmp_path: Path, where: str) -> None:
    lines = _frame().to_csv(index=False).splitlines()
    rows = [1] if where == "first_row" else range(1, len(lines))
    for row in rows:
        lines[row] += ","
    path = _write(tmp_path / "ragged.csv", "\n".join(lines) + "\n")
    message = _error(_exp(path), "line 2", "field")
    assert "is empty" not in message


# --------------------------------------------------------------------------------------------
# Columns named by the config.


def test_label_column_absent_lists_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    _frame().to_csv(path, index=False)
    _error(
        _exp(path, data={"label_column": "diagnosis"}),
        "['diagnosis']",
        "experiments.e.data.label_column",
        "not found",
        "the table has 5 columns: id, g1, g2, g3, label",
    )


def test_single_class(tmp_path: Path) -> None:
    frame = _frame()
    frame["label"] = "tumour"
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    _error(
        _exp(path),
        "label column 'label'",
        "single class ('tumour')",
        "at least two classes",
    )


def test_missing_label_names_its_line_and_id(tmp_path: Path) -> None:
    frame = _frame()
    frame.loc[4, "label"] = np.nan
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    _error(_exp(path), "label column 'label' is empty at line 6 (id S04)")


def test_class_smaller_than_n_splits_for_stratified_cv(tmp_path: Path) -> None:
    frame = _frame()
    frame["label"] = ["tumour"] * 10 + ["normal"] * 2
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    _error(
        _exp(path),
        "label column 'label'",
        "{'normal': 2}",
        "fewer samples than the 3",
        "'stratified_kfold'",
        "n_splits=3",
        "lower cv.n_splits",
    )
    # Two samples are enough for two stratified folds.
    data = prepare_tabular(_exp(path, cv={"plan": "stratified_kfold", "n_splits": 2}), "e")
    assert data.meta["class_counts"] == {"tumour": 10, "normal": 2}


# --------------------------------------------------------------------------------------------
# Feature values.


def test_nan_feature_with_impute_none_names_column_and_line(tmp_path: Path) -> None:
    frame = _frame()
    frame.loc[4, "g2"] = np.nan
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    _error(
        _exp(path, preprocess={"impute": "none"}),
        "feature column 'g2'",
        "missing values (NaN)",
        "line 6 (id S04)",
        "preprocess.impute is 'none'",
    )


def test_nan_feature_is_accepted_when_imputed(tmp_path: Path) -> None:
    frame = _frame()
    frame.loc[4, "g2"] = np.nan
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    data = prepare_tabular(_exp(path, preprocess={"impute": "median"}), "e")
    assert np.isnan(data.table.loc["S04", "g2"])
    assert data.meta["missing_values"] == 1
    assert data.feature_columns == ["g1", "g2", "g3"]


@pytest.mark.parametrize("spelling", ["NA", "NaN", "null", "#N/A"])
def test_missing_value_spellings_in_features_are_missing(tmp_path: Path, spelling: str) -> None:
    frame = _frame().astype({"g2": object})
    frame.loc[4, "g2"] = spelling  # as R, Excel or pandas write a missing value
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    data = prepare_tabular(_exp(path, preprocess={"impute": "median"}), "e")
    assert np.isnan(data.table.loc["S04", "g2"])


def test_short_row_is_named_not_padded(tmp_path: Path) -> None:
    lines = _frame().to_csv(index=False).splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0]  # line 4 loses its label field
    path = _write(tmp_path / "short.csv", "\n".join(lines) + "\n")
    _error(_exp(path), "line 4 has 4 fields but the header (line 1) has 5")


@pytest.mark.parametrize("value", ["inf", "-inf", "Infinity"])
def test_infinite_feature(tmp_path: Path, value: str) -> None:
    frame = _frame().astype({"g1": object})
    frame.loc[3, "g1"] = value
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    _error(
        _exp(path),
        "feature column 'g1'",
        "infinite values",
        "line 5 (id S03)",
    )


def test_non_numeric_feature_suggests_categorical_columns(tmp_path: Path) -> None:
    frame = _frame()
    frame.insert(4, "tissue", ["liver", "lung", "kidney"] * 4)
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    _error(
        _exp(path),
        "feature column 'tissue' is not numeric",
        "'liver'",
        "line 2 (id S00)",
        "experiments.e.data.categorical_columns",
        "experiments.e.data.exclude_columns",
    )
    # Declared categorical, the same table is accepted as text categories.
    data = prepare_tabular(_exp(path, data={"categorical_columns": ["tissue"]}), "e")
    assert data.categorical_columns == ["tissue"]
    assert data.table.loc["S01", "tissue"] == "lung"


def test_one_text_value_in_a_numeric_feature(tmp_path: Path) -> None:
    frame = _frame().astype({"g3": object})
    frame.loc[7, "g3"] = "high"
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    _error(_exp(path), "feature column 'g3'", "'high'", "line 9 (id S07)", "categorical_columns")


# --------------------------------------------------------------------------------------------
# Sample ids.


def test_duplicate_ids_name_the_ids_and_lines(tmp_path: Path) -> None:
    frame = _frame()
    frame.loc[7, "id"] = "S02"
    frame.loc[9, "id"] = "S05"
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    _error(
        _exp(path),
        "sample ids in column 'id' are not unique",
        "['S02', 'S05']",
        "line 4, line 7, line 9 and 1 more",
        "every row needs its own id",
    )


def test_ids_that_look_numeric_stay_strings(tmp_path: Path) -> None:
    frame = _frame()
    ids = ["007", "7", "0070", "1e3", "12", "012", "0", "00", "1.0", "1", "08", "8"]
    frame["id"] = ids
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    data = prepare_tabular(_exp(path), "e")
    assert data.ids.tolist() == ids
    data.save(tmp_path / "dataset.parquet", tmp_path / "dataset.json")
    loaded = TabularDataset.load(tmp_path / "dataset.parquet", tmp_path / "dataset.json")
    assert loaded.ids.tolist() == ids
    assert loaded.table.loc["007", "g1"] == frame.loc[0, "g1"]


# --------------------------------------------------------------------------------------------
# Regression targets.


def test_non_numeric_regression_target(tmp_path: Path) -> None:
    frame = _regression_frame().astype({"t1": object})
    frame.loc[3, "t1"] = "high"
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    _error(
        _exp(path, task="regression"),
        "regression target 't1' is not numeric",
        "'high'",
        "line 5 (id R03)",
    )


def test_missing_regression_target(tmp_path: Path) -> None:
    frame = _regression_frame()
    frame.loc[6, "t2"] = np.nan
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    _error(
        _exp(path, task="regression"),
        "regression target 't2' is missing",
        "line 8 (id R06)",
        "remove these samples",
    )


# --------------------------------------------------------------------------------------------
# Line numbers and text values that pandas reinterprets.


def test_line_numbers_count_blank_lines(tmp_path: Path) -> None:
    frame = _frame()
    frame.loc[5, "g2"] = np.nan  # S05: line 7, line 8 once a blank line precedes it
    lines = frame.to_csv(index=False).splitlines()
    lines.insert(3, "")
    path = _write(tmp_path / "table.csv", "\n".join(lines) + "\n")
    assert path.read_text().splitlines()[7].startswith("S05,")
    _error(_exp(path, preprocess={"impute": "none"}), "line 8 (id S05)")


def test_class_named_none_is_a_class(tmp_path: Path) -> None:
    frame = _frame()
    frame["label"] = ["None", "mild", "severe"] * 4
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    data = prepare_tabular(_exp(path, cv={"plan": "stratified_kfold", "n_splits": 2}), "e")
    assert data.classes == ["None", "mild", "severe"]


# --------------------------------------------------------------------------------------------
# Through the command line: the user sees one line, and nothing half-made is left behind.


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]
    return subprocess.run(
        [*command, "--cores", "1", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def _config(folder: Path, name: str, **exp: Any) -> str:
    (folder / "bad.yaml").write_text(yaml.safe_dump({"experiments": {name: exp}}))
    return "bad.yaml"


def _dlpipe_errors(run: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in (run.stdout + run.stderr).splitlines() if "dlpipe error:" in line]


@pytest.mark.workflow
def test_cli_duplicate_id_stops_before_training(tmp_path: Path) -> None:
    frame = _frame()
    frame.loc[7, "id"] = "S02"
    frame.to_csv(tmp_path / "dup.csv", index=False)
    data = {"path": "dup.csv", "id_column": "id", "label_column": "label"}
    config = _config(tmp_path, "dupes", task="classification", data=data, cv={"n_splits": 2})
    run = _snakemake(tmp_path, "--configfile", config)
    output = run.stdout + run.stderr
    assert run.returncode != 0
    errors = _dlpipe_errors(run)
    assert errors == [
        "dlpipe error: dup.csv: sample ids in column 'id' are not unique: ['S02'] at line 4, "
        "line 9; every row needs its own id"
    ], output
    assert "Error in rule prepare" in output
    assert "Traceback (most recent call last)" not in output
    assert "torch" not in output
    assert "lightning" not in output.lower()
    results = tmp_path / "results" / "dupes"
    assert not (results / "dataset.parquet").exists()
    assert not (results / "dataset.json").exists()
    assert not (results / "0" / "model.ckpt").exists()
    assert not (tmp_path / "logs" / "train").exists()
    assert "not unique" in (tmp_path / "logs" / "prepare" / "dupes.log").read_text()


@pytest.mark.workflow
def test_cli_invalid_cv_plan_stops_before_any_job(tmp_path: Path) -> None:
    _frame().to_csv(tmp_path / "table.csv", index=False)
    data = {"path": "table.csv", "id_column": "id", "label_column": "label"}
    config = _config(tmp_path, "planned", task="classification", data=data, cv={"plan": "bogus"})
    run = _snakemake(tmp_path, "--configfile", config)
    output = run.stdout + run.stderr
    assert run.returncode != 0
    schema = yaml.safe_load((ROOT / "config" / "schema" / "config.schema.yaml").read_text())
    allowed = schema["$defs"]["cv"]["properties"]["plan"]["enum"]
    assert _dlpipe_errors(run) == [
        "dlpipe error: config key experiments.planned.cv.plan: 'bogus' is not allowed; "
        f"choose one of {', '.join(allowed)}"
    ], output
    assert "Traceback" not in output
    assert "Building DAG of jobs" not in output
    assert not (tmp_path / "results").exists()
    assert not (tmp_path / "logs").exists()


@pytest.mark.workflow
def test_cli_missing_data_path_fails_before_any_job(tmp_path: Path) -> None:
    data = {"path": "nowhere/absent.csv", "id_column": "id", "label_column": "label"}
    config = _config(tmp_path, "lost", task="classification", data=data)
    run = _snakemake(tmp_path, "--configfile", config)
    output = run.stdout + run.stderr
    assert run.returncode != 0
    errors = _dlpipe_errors(run)
    assert len(errors) == 1, output
    assert errors[0].startswith(
        "dlpipe error: config key experiments.lost.data.path: file 'nowhere/absent.csv' not found"
    )
    assert f"relative paths start at {tmp_path.resolve()}" in errors[0]
    assert "Traceback" not in output
    assert "Building DAG of jobs" not in output
    assert not (tmp_path / "results").exists()
