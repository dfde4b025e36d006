"""Bad input: one clear error naming the file and the column or line, before any training.

The library tests call :func:`dlpipe.modalities.tabular.prepare_tabular` on small synthetic
tables with one defect each; the CLI tests run Snakemake on a bad config or bad data and check
that the user sees the one-line ``dlpipe error:`` message and that nothing is left behind.

:data:`CASES` names every known bad input a user met and the tests that hold dlpipe to a clear
message (or warning) for it; a test checks that each named test exists.
"""

from __future__ import annotations

import errno
import gzip
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from dlpipe.cli import main
from dlpipe.config import validate_config
from dlpipe.datasets import TabularDataset
from dlpipe.errors import ConfigError, DlpipeError, InputError
from dlpipe.io.bed import read_bed
from dlpipe.learners import FoldModels, predict_new
from dlpipe.logs import step_logging
from dlpipe.modalities.sequence import prepare_fasta, read_new_fasta
from dlpipe.modalities.tabular import prepare_tabular
from dlpipe.schema import load_yaml
from dlpipe.steps.check import check_step
from dlpipe.steps.predict import predict_results_step

ROOT = Path(__file__).resolve().parents[1]

#: Known bad inputs and faults → the tests (``module::function``) that cover them.
CASES: dict[str, list[str]] = {
    # A results folder is data, not code.
    "tampered preprocessor or baseline file (a pickle that runs code)": [
        "test_results_folder::test_a_planted_pickle_executes_nothing_even_under_a_forged_manifest",
        "test_results_folder::test_predict_refuses_a_tampered_preprocessor_and_runs_none_of_it",
        "test_results_folder::test_a_skops_file_naming_a_foreign_function_is_refused_before_loading",
        "test_results_folder::test_a_checkpoint_holding_code_is_refused_and_runs_nothing",
    ],
    "file of a results folder replaced, added or missing": [
        "test_results_folder::test_a_swapped_config_is_refused",
        "test_results_folder::test_a_fold_model_the_manifest_does_not_record_is_refused",
        "test_results_folder::test_a_missing_or_foreign_manifest_is_refused",
        "test_results_folder::test_the_workflow_predict_job_checks_its_files_against_the_manifest",
    ],
    # Silent wrong results.
    "labels differing only in case or surrounding space": [
        "test_bad_input::test_labels_differing_only_in_case_or_space_are_refused",
        "test_bad_input::test_fasta_labels_differing_in_case_are_refused",
        "test_singlecell::test_labels_differing_only_in_case_or_space_are_refused",
    ],
    "duplicated column names": [
        "test_bad_input::test_duplicated_column_names_are_refused_before_pandas_renames_them",
    ],
    "duplicated YAML keys (a config block given twice)": [
        "test_bad_input::test_config_files_are_read_strictly",
        "test_snakemake::test_dlpipe_run_checks_everything_before_handing_over_to_snakemake",
    ],
    "empty FASTA record": ["test_bad_input::test_an_empty_fasta_record_is_refused_not_padded"],
    "zero-length BED intervals (warning)": [
        "test_bad_input::test_zero_length_bed_intervals_are_warned_about",
    ],
    "fold model missing from a results folder": [
        "test_results_folder::test_a_missing_fold_model_is_refused_unless_allowed",
    ],
    # Tracebacks.
    "truncated .csv.gz (check, prepare, predict) or .bed.gz": [
        "test_bad_input::test_truncated_gzip_table_is_named_as_truncated",
        "test_bad_input::test_predict_on_a_truncated_gzip_table",
        "test_bad_input::test_truncated_gzip_bed_is_named",
        "test_reader_properties::test_a_truncated_gzip_table_is_an_input_error_or_its_intact_prefix",
    ],
    "predict on a table with inf, text or repeated ids": [
        "test_bad_input::test_predict_validates_its_table_like_prepare",
        "test_bad_input::test_predict_without_imputation_refuses_empty_features",
    ],
    "damaged model.ckpt (truncated, altered, empty, not a checkpoint)": [
        "test_results_folder::test_a_damaged_checkpoint_names_the_file_and_the_fix",
        "test_results_folder::test_a_checkpoint_of_another_model_is_refused",
    ],
    "unwritable folder or full disk": [
        "test_bad_input::test_a_refused_write_is_one_message_and_removes_partial_outputs",
        "test_bad_input::test_predict_into_a_folder_that_does_not_exist_is_one_message",
    ],
    "workflow with a damaged model.ckpt retrains the fold, not re-evaluates it": [
        "test_results_folder::test_damaged_checkpoints_are_set_aside_not_deleted",
        "test_snakemake::test_a_damaged_checkpoint_is_retrained_and_results_of_other_configs_are_named",
    ],
    # Vague messages.
    "YAML syntax error or missing config file through the workflow": [
        "test_bad_input::test_config_files_are_read_strictly",
        "test_snakemake::test_dlpipe_run_checks_everything_before_handing_over_to_snakemake",
    ],
    "config holding YTE code (__use_yte__)": [
        "test_bad_input::test_config_files_are_read_strictly"
    ],
    "gzip data (or Parquet) named .csv; .gz name on plain text": [
        "test_bad_input::test_a_binary_file_named_csv_says_what_it_is",
        "test_bad_input::test_a_file_named_gz_that_is_not_compressed",
    ],
    "protein FASTA with the DNA alphabet": [
        "test_bad_input::test_a_protein_fasta_read_as_dna_names_file_record_and_key",
    ],
    "predict on single-cell results with a table": [
        "test_bad_input::test_predict_on_single_cell_results_gives_the_single_cell_refusal",
    ],
    "dlpipe check with n_splits larger than the sample count": [
        "test_bad_input::test_check_refuses_more_folds_than_samples",
    ],
    "dlpipe check with hold-out chromosomes absent from the genome": [
        "test_bad_input::test_check_refuses_hold_out_chromosomes_absent_from_the_genome",
    ],
    "another config rewrites the report without the earlier experiments": [
        "test_snakemake::test_a_damaged_checkpoint_is_retrained_and_results_of_other_configs_are_named",
    ],
    # Any bytes at all.
    "arbitrary bytes as a table, FASTA or BED file": [
        "test_reader_properties::test_any_bytes_named_as_a_table_give_a_table_or_an_input_error",
        "test_reader_properties::test_any_bytes_named_fasta_give_records_or_an_input_error",
        "test_reader_properties::test_any_bytes_named_bed_give_intervals_or_an_input_error",
    ],
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_case_names_tests_that_exist(case: str) -> None:
    for node in CASES[case]:
        module, _, function = node.partition("::")
        source = (ROOT / "tests" / f"{module}.py").read_text()
        assert f"def {function}(" in source, f"{case}: {node} not found"


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


# --------------------------------------------------------------------------------------------
# Never silent, never a traceback: the cases of a hostile but realistic user.


@pytest.mark.parametrize(
    ("labels", "shown"),
    [
        (["Benign ", "benign"], "'Benign ' (6 samples) and 'benign' (6 samples)"),
        (["Tumour", "tumour"], "'Tumour' (6 samples) and 'tumour' (6 samples)"),
        (["high  grade", "high grade"], "'high  grade' (6 samples) and 'high grade'"),
    ],
    ids=["trailing_space", "case", "inner_space"],
)
def test_labels_differing_only_in_case_or_space_are_refused(
    tmp_path: Path, labels: list[str], shown: str
) -> None:
    frame = _frame()
    frame["label"] = labels * 6
    # Quoted so that the spaces are part of the field, as a spreadsheet export writes them.
    frame.to_csv(tmp_path / "labels.csv", index=False, quoting=1)
    _error(_exp(tmp_path / "labels.csv"), "labels differ only in case or spaces", shown,
           "Write each class one way")  # fmt: skip


@pytest.mark.parametrize("sep", [",", "\t"], ids=["csv", "tsv"])
def test_duplicated_column_names_are_refused_before_pandas_renames_them(
    tmp_path: Path, sep: str
) -> None:
    path = tmp_path / ("table.csv" if sep == "," else "table.tsv")
    frame = _frame().rename(columns={"g2": "g1"})
    frame.to_csv(path, sep=sep, index=False)
    _error(_exp(path), "line 1: column names appear more than once: ['g1']", "rename them")


def test_truncated_gzip_table_is_named_as_truncated(tmp_path: Path) -> None:
    path = tmp_path / "table.csv.gz"
    _frame(400).to_csv(path, index=False)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _error(_exp(path), "the compressed file is truncated or damaged", "gzip -t")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (lambda frame: gzip.compress(frame.to_csv(index=False).encode()), "gzip-compressed"),
        (lambda frame: b"PAR1" + b"\0" * 64, "a Parquet file"),
    ],
    ids=["gzip", "parquet"],
)
def test_a_binary_file_named_csv_says_what_it_is(tmp_path: Path, content, expected: str) -> None:
    path = tmp_path / "table.csv"
    path.write_bytes(content(_frame()))
    _error(_exp(path), f"the file is {expected}, not a text table as its name says")


def test_a_file_named_gz_that_is_not_compressed(tmp_path: Path) -> None:
    path = tmp_path / "table.csv.gz"
    _frame().to_csv(path, index=False, compression=None)
    _error(_exp(path), "named .gz but not gzip-compressed")


def _fasta_exp(path: Path, alphabet: str = "dna", **cv: Any) -> dict[str, Any]:
    spec = {"modality": "sequence", "fasta": str(path), "sequence_length": 12,
            "alphabet": alphabet}  # fmt: skip
    exp = {"task": "classification", "data": spec,
           "cv": {"plan": "kfold", "n_splits": 2, **cv}}  # fmt: skip
    return validate_config({"experiments": {"e": exp}})["experiments"]["e"]


def _fasta(path: Path, records: list[tuple[str, str]]) -> Path:
    path.write_text("".join(f">{header}\n{seq}\n" for header, seq in records))
    return path


def test_an_empty_fasta_record_is_refused_not_padded(tmp_path: Path) -> None:
    records = [("s1|a", "ACGTACGTAC"), ("s2|b", ""), ("s3|a", "ACGTAAAAAC"), ("s4|b", "ACGGGC")]
    path = _fasta(tmp_path / "seqs.fa", records)
    with pytest.raises(InputError, match=r"seqs.fa: record 2 \(>s2\|b\) has no sequence"):
        prepare_fasta(_fasta_exp(path))
    with pytest.raises(InputError, match=r"record 2 \(>s2\|b\) has no sequence.*N's"):
        read_new_fasta(path, 12, "dna")


def test_fasta_labels_differing_in_case_are_refused(tmp_path: Path) -> None:
    records = [(f"s{i}|{'Bound' if i % 3 else 'bound'}", "ACGTACGTAC") for i in range(12)]
    path = _fasta(tmp_path / "seqs.fa", records)
    with pytest.raises(InputError, match=r"differ only in case or spaces: 'Bound' \(8 samples\)"):
        prepare_fasta(_fasta_exp(path))


def test_a_protein_fasta_read_as_dna_names_file_record_and_key(tmp_path: Path) -> None:
    records = [("s1|a", "ACGTACGTAC"), ("p2|b", "MKTAYIAKQR"), ("s3|a", "ACGTA"), ("s4|b", "ACGG")]
    path = _fasta(tmp_path / "prot.fa", records)
    with pytest.raises(InputError) as info:
        prepare_fasta(_fasta_exp(path))
    assert str(info.value) == (
        f"{path}: record >p2, position 6: character 'I' is not in the dna alphabet; set "
        "data.alphabet: protein"
    )
    with pytest.raises(InputError, match=r"prot.fa: record >p2.*the models read dna sequences"):
        read_new_fasta(path, 12, "dna")


def test_zero_length_bed_intervals_are_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "peaks.bed"
    path.write_text("chr1\t10\t20\nchr1\t30\t30\nchr2\t5\t5\n")
    bed = read_bed(path)
    assert len(bed) == 3
    assert "2 interval(s) have length 0 (start = end; line(s) 2, 3)" in caplog.text
    caplog.clear()
    path.write_text("chr1\t10\t20\n")
    read_bed(path)
    assert "length 0" not in caplog.text


def test_truncated_gzip_bed_is_named(tmp_path: Path) -> None:
    path = tmp_path / "peaks.bed.gz"
    text = "".join(f"chr1\t{i * 10}\t{i * 10 + 5}\n" for i in range(5000))
    data = gzip.compress(text.encode())
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"peaks\.bed\.gz: the compressed file is truncated"):
        read_bed(path)


# --- the config file --------------------------------------------------------------------------


def test_yaml_anchors_and_merge_keys_still_work(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "common: &c\n  seed: 1\n  task: classification\n"
        "experiments:\n  e:\n    <<: *c\n    seed: 2\n  f: *c\n"
    )
    config = load_yaml(path)
    assert config["experiments"]["e"] == {"seed": 2, "task": "classification"}  # override kept
    assert config["experiments"]["f"] == {"seed": 1, "task": "classification"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "experiments:\n  e:\n    task: classification\ntraining:\n  a: 1\ntraining:\n  b: 2\n",
            "line 6, column 1: not valid YAML: key 'training' appears twice in one mapping "
            "(lines 4 and 6)",
        ),
        ("experiments:\n  e:\n    seed: 1\n    seed: 2\n", "key 'seed' appears twice"),
        ("experiments:\n  e: [1, 2\n", "line 3, column 1: not valid YAML"),
        ("__use_yte__: true\nexperiments: {}\n", "__use_yte__ makes Snakemake run this config"),
    ],
    ids=["duplicate_block", "duplicate_key", "syntax", "yte"],
)
def test_config_files_are_read_strictly(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_yaml(path)
    assert str(info.value).startswith(str(path))
    assert expected in str(info.value)


# --- dlpipe check: what the workflow would refuse later ------------------------------------


def _check(tmp_path: Path, exp: dict[str, Any]) -> str:
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"experiments": {"e": exp}}))
    with pytest.raises(DlpipeError) as info:
        check_step(tmp_path / "c.yaml")
    assert main(["check", str(tmp_path / "c.yaml")]) == 1
    return str(info.value)


def test_check_refuses_more_folds_than_samples(tmp_path: Path) -> None:
    _frame().to_csv(tmp_path / "t.csv", index=False)
    data = {"path": str(tmp_path / "t.csv"), "id_column": "id", "label_column": "label"}
    exp = {"task": "classification", "cv": {"plan": "kfold", "n_splits": 20}, "data": data}
    message = _check(tmp_path, exp)
    assert message == ("experiments.e: cv.n_splits=20 is larger than the number of samples (12)")


def test_check_refuses_hold_out_chromosomes_absent_from_the_genome(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    genome = tmp_path / "genome.fa"
    genome.write_text("".join(
        f">chr{i}\n{''.join(rng.choice(list('ACGT'), 3000))}\n" for i in (1, 2, 3)
    ))  # fmt: skip
    (tmp_path / "peaks.bed").write_text(
        "".join(f"chr{c}\t{s}\t{s + 50}\n" for c in (1, 2, 3) for s in range(100, 2800, 300))
    )
    exp = {"task": "classification",
           "data": {"modality": "sequence", "genome": str(genome),
                    "bed": {"site": str(tmp_path / "peaks.bed")}, "sequence_length": 100},
           "cv": {"plan": "chromosome_holdout", "val_chromosomes": ["chr2"],
                  "test_chromosomes": ["chrX"]}}  # fmt: skip
    message = _check(tmp_path, exp)
    assert (
        "cv.val_chromosomes / cv.test_chromosomes name ['chrX'], which are not in the genome"
        in (message)
    )


# --- prediction validates its table like prepare ------------------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda t: t.assign(f1=t["f1"].astype(object).where(t.index != 2, "inf")),
            "feature column 'f1' holds infinite values at line 4 (id 002)",
        ),
        (
            lambda t: t.assign(f3=t["f3"].astype(object).where(t.index != 1, "high")),
            "feature column 'f3' is not numeric: 'high' at line 3 (id 001)",
        ),
        (
            lambda t: t.assign(id=["000", "001", "000", "003", "004"]),
            "sample ids appear more than once at line 2 (id 000), line 4 (id 000)",
        ),
    ],
    ids=["inf", "text", "duplicate_id"],
)
def test_predict_validates_its_table_like_prepare(
    table_results: Path, binary_csv: Path, tmp_path: Path, change, expected: str
) -> None:
    new = change(pd.read_csv(binary_csv, dtype={"id": str}).head(5).drop(columns="y"))
    new.to_csv(tmp_path / "new.csv", index=False)
    with pytest.raises(InputError) as info:
        predict_new(FoldModels.from_results(table_results), {"table": str(tmp_path / "new.csv")})
    assert str(info.value).startswith(f"{tmp_path / 'new.csv'}: {expected}")


def test_predict_on_a_truncated_gzip_table(table_results: Path, binary_csv: Path,
                                           tmp_path: Path) -> None:  # fmt: skip
    path = tmp_path / "new.csv.gz"
    pd.concat([pd.read_csv(binary_csv, dtype={"id": str})] * 4).to_csv(path, index=False)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"new\.csv\.gz: the compressed file is truncated"):
        predict_results_step(table_results, path)
    assert main(["predict", str(table_results), str(path)]) == 1


def test_predict_without_imputation_refuses_empty_features(
    table_results: Path, binary_csv: Path, tmp_path: Path
) -> None:
    new = pd.read_csv(binary_csv, dtype={"id": str}).head(5).drop(columns="y")
    new.loc[3, "f0"] = np.nan
    new.to_csv(tmp_path / "new.csv", index=False)
    models = FoldModels.from_results(table_results)
    models.exp = {**models.exp, "preprocess": {**models.exp["preprocess"], "impute": "none"}}
    with pytest.raises(InputError, match=r"'f0' is empty at line 5 \(id 003\).*impute: none"):
        predict_new(models, {"table": str(tmp_path / "new.csv")})
    models.exp["preprocess"]["impute"] = "median"
    assert len(predict_new(models, {"table": str(tmp_path / "new.csv")})) == 5


def test_predict_on_single_cell_results_gives_the_single_cell_refusal(
    table_results: Path, binary_csv: Path
) -> None:
    models = FoldModels.from_results(table_results)
    models.exp = {**models.exp, "data": {**models.exp["data"], "modality": "singlecell"}}
    with pytest.raises(InputError, match="a single-cell experiment classifies cells on the latent"):
        predict_new(models, {"table": str(binary_csv)})


# --- a step that cannot write -------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "fix"),
    [(errno.EACCES, "make its folder writable"), (errno.ENOSPC, "free space there")],
    ids=["permission", "disk_full"],
)
def test_a_refused_write_is_one_message_and_removes_partial_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], code: int, fix: str
) -> None:
    out = tmp_path / "out.tsv"
    target = tmp_path / "e" / "0" / "model.ckpt"

    def step() -> None:
        with step_logging(tmp_path / "job.log", [str(out)]):
            out.write_text("partial")
            # Root ignores permission bits: the refusal the file system would give, raised here.
            raise OSError(code, os.strerror(code), str(target))

    with pytest.raises(SystemExit) as info:
        step()
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"dlpipe error: cannot write {target}: {os.strerror(code)}; {fix}")
    assert err.count("\n") == 1
    assert not out.exists()
    assert "cannot write" in (tmp_path / "job.log").read_text()


def test_predict_into_a_folder_that_does_not_exist_is_one_message(
    table_results: Path, binary_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = tmp_path / "new.csv"
    pd.read_csv(binary_csv, dtype={"id": str}).head(3).drop(columns="y").to_csv(new, index=False)
    out = tmp_path / "absent" / "out.tsv"
    assert main(["predict", str(table_results), str(new), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"dlpipe error: {out}: cannot be written (")
    assert "non-existent directory" in err
    assert err.count("\n") == 1
