"""Configuration: defaults, schema errors that name key, value and choices, cross-key rules."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from dlpipe.config import validate_config
from dlpipe.errors import ConfigError
from dlpipe.modalities import task_of
from dlpipe.preprocess import normaliser_steps
from dlpipe.schema import load_yaml

TRAINING_KEYS = (
    "augment, batch_size, class_weights, device, devices, learning_rate, max_epochs, "
    "min_validation, num_workers, optimizer, patience, precision, progress_bar, "
    "reverse_complement, weight_decay"
)
PLANS = (
    "stratified_kfold, kfold, group_kfold, repeated_kfold, repeated_stratified_kfold, "
    "leave_one_out, holdout, chromosome_kfold, chromosome_holdout, bin_kfold, edge_kfold, "
    "cold_start_kfold"
)


def _classification(**extra: Any) -> dict[str, Any]:
    return {"task": "classification", "data": {"path": "x.csv", "label_column": "y"}, **extra}


def _regression(**extra: Any) -> dict[str, Any]:
    return {"task": "regression", "data": {"path": "x.csv", "target_columns": ["t"]}, **extra}


def _error(exp: dict[str, Any], name: str = "e") -> str:
    with pytest.raises(ConfigError) as err:
        validate_config({"experiments": {name: exp}})
    return str(err.value)


# --- defaults ----------------------------------------------------------------------------------


def test_defaults_are_filled() -> None:
    config = validate_config({"experiments": {"e": _classification()}})
    exp = config["experiments"]["e"]
    assert exp["seed"] == 0
    assert exp["training"]["max_epochs"] == 200
    assert exp["training"]["batch_size"] == 32
    assert exp["training"]["learning_rate"] == 0.001
    assert exp["training"]["class_weights"] == "none"
    assert exp["model"] == {"name": "mlp"}
    assert exp["cv"]["plan"] == "stratified_kfold"
    assert exp["cv"]["n_splits"] == 5
    assert exp["cv"]["val_fraction"] == 0.15
    assert exp["preprocess"]["normalise"] == ["zscore"]
    assert exp["preprocess"]["impute"] == "median"
    assert exp["preprocess"]["smote"] is False
    assert exp["data"]["modality"] == "tabular"
    assert exp["data"]["categorical_columns"] == []
    assert exp["data"]["id_column"] is None
    assert exp["data"]["negatives"]["ratio"] == 1.0  # nested defaults too
    assert config["report"] == {"title": "dlpipe report"}


def test_validate_config_fills_in_place_and_returns_the_same_object() -> None:
    config = {"experiments": {"e": _classification()}}
    assert validate_config(config) is config
    assert config["experiments"]["e"]["training"]["patience"] == 20


@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_given_seed_is_kept_and_zero_is_not_replaced(seed: int) -> None:
    exp = validate_config({"experiments": {"e": _classification(seed=seed)}})["experiments"]["e"]
    assert exp["seed"] == seed


def test_given_values_are_not_overwritten_by_defaults() -> None:
    exp = _classification(
        training={"max_epochs": 3, "progress_bar": False},
        preprocess={"normalise": "none", "impute": "none"},
    )
    out = validate_config({"experiments": {"e": exp}})["experiments"]["e"]
    assert out["training"]["max_epochs"] == 3
    assert out["training"]["progress_bar"] is False
    assert out["training"]["batch_size"] == 32
    assert out["preprocess"]["normalise"] == "none"
    assert normaliser_steps(out["preprocess"]) == []
    assert out["preprocess"]["impute"] == "none"


def test_two_experiments_do_not_share_default_objects() -> None:
    config = validate_config({"experiments": {"a": _classification(), "b": _classification()}})
    a, b = config["experiments"]["a"], config["experiments"]["b"]
    for section in ("training", "preprocess", "cv", "model", "baseline", "resources"):
        assert a[section] is not b[section], section
    assert a["preprocess"]["normalise"] is not b["preprocess"]["normalise"]
    assert a["data"]["negatives"] is not b["data"]["negatives"]
    a["preprocess"]["normalise"].append("quantile")
    a["training"]["max_epochs"] = 3
    a["data"]["exclude_columns"].append("junk")
    assert b["preprocess"]["normalise"] == ["zscore"]
    assert b["training"]["max_epochs"] == 200
    assert b["data"]["exclude_columns"] == []
    # A later validation starts from the schema again, not from a mutated default.
    c = validate_config({"experiments": {"c": _classification()}})["experiments"]["c"]
    assert c["preprocess"]["normalise"] == ["zscore"]


# --- schema errors -----------------------------------------------------------------------------


def test_unknown_key_names_path_and_lists_allowed_keys() -> None:
    message = _error(_classification(training={"max_epoch": 3}))
    assert message == (
        "config key experiments.e.training: unknown key(s) 'max_epoch'; "
        f"allowed keys are {TRAINING_KEYS}"
    )


def test_unknown_experiment_and_top_level_keys() -> None:
    message = _error(_classification(trainer={}))
    assert message.startswith("config key experiments.e: unknown key(s) 'trainer'; allowed keys")
    assert "cv, data, description, embed, integration, interpret, model" in message
    with pytest.raises(ConfigError, match=r"<top level>: unknown key\(s\) 'extra'.*experiments"):
        validate_config({"experiments": {"e": _classification()}, "extra": 1})


def test_unknown_data_key_lists_the_data_keys() -> None:
    exp = _classification()
    exp["data"]["labelcolumn"] = "y"
    message = _error(exp)
    assert message.startswith("config key experiments.e.data: unknown key(s) 'labelcolumn';")
    for key in ("label_column", "id_column", "target_columns", "categorical_columns"):
        assert key in message


def test_bad_model_name_names_key_value_and_choices() -> None:
    message = _error(_classification(model={"name": "foo"}), name="exp1")
    assert message == (
        "config key experiments.exp1.model.name: 'foo' is not allowed; "
        "choose one of cnn, danq, gnn, mlp, resnet, resnet1d, smallcnn"
    )


def test_bad_cv_plan_names_key_value_and_choices() -> None:
    message = _error(_classification(cv={"plan": "bogus"}))
    assert (
        message
        == f"config key experiments.e.cv.plan: 'bogus' is not allowed; choose one of {PLANS}"
    )


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"task": "clustering"}, "experiments.e.task: 'clustering' is not allowed; choose one of "
                                 "classification, link_prediction, regression"),
        ({"seed": -1}, "experiments.e.seed: -1 is less than the minimum of 0"),
        ({"seed": 1.5}, "experiments.e.seed: 1.5 is not of type 'integer'"),
        ({"training": {"max_epochs": 0}}, "experiments.e.training.max_epochs: 0 is less than"),
        ({"training": {"optimizer": "sgd"}}, "experiments.e.training.optimizer: 'sgd' is not "
                                             "allowed; choose one of adam, adamw"),
        ({"preprocess": {"normalise": ["zscore", "tpm"]}},
         "experiments.e.preprocess.normalise.1: 'tpm' is not allowed; choose one of none, log1p, "
         "cpm_log1p, zscore, quantile"),
        ({"preprocess": {"normalise": "tpm"}},
         "experiments.e.preprocess.normalise: 'tpm' is not valid; allowed values are cpm_log1p, "
         "log1p, none, quantile, zscore"),
        ({"cv": {"test_size": 1.0}}, "experiments.e.cv.test_size: 1.0 is greater than or equal"),
        ({"model": {"name": "mlp", "dropout": 1.0}}, "experiments.e.model.dropout: 1.0"),
    ],
)  # fmt: skip
def test_bad_values_name_the_key_path(patch: dict[str, Any], expected: str) -> None:
    message = _error({**_classification(), **patch})
    assert message.startswith("config key ")
    assert expected in message


def test_missing_required_keys() -> None:
    assert _error({"data": {"path": "x.csv"}}) == (
        "config key experiments.e: 'task' is a required property; add it to the config"
    )
    with pytest.raises(ConfigError, match=r"<top level>: 'experiments' is a required property"):
        validate_config({})
    with pytest.raises(ConfigError, match=r"config key experiments: \{\} should be non-empty"):
        validate_config({"experiments": {}})


def test_experiment_names_must_be_identifiers() -> None:
    with pytest.raises(ConfigError, match=r"config key experiments: .*'1e'"):
        validate_config({"experiments": {"1e": _classification()}})


# --- rules between keys ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exp", "key", "phrase"),
    [
        ({"task": "classification", "data": {"path": "x.csv"}},
         "experiments.e.data.label_column", "a classification needs the name of the label column"),
        (_classification(data={"path": "x.csv", "label_column": "y", "target_columns": ["t"]}),
         "experiments.e.data.target_columns", "only regression uses target columns"),
        ({"task": "regression", "data": {"path": "x.csv"}},
         "experiments.e.data.target_columns", "a regression needs a list"),
        (_regression(data={"path": "x.csv", "target_columns": ["t"], "label_column": "y"},
                     cv={"plan": "kfold"}),
         "experiments.e.data.label_column", "a regression predicts"),
        (_regression(cv={"plan": "kfold"}, preprocess={"smote": True}),
         "experiments.e.preprocess.smote", "does not apply to regression"),
        (_regression(cv={"plan": "kfold"}, training={"class_weights": "balanced"}),
         "experiments.e.training.class_weights", "classification only"),
        (_classification(cv={"plan": "group_kfold"}),
         "experiments.e.data.group_column", "group_kfold needs the column"),
        (_classification(model={"name": "cnn"}),
         "experiments.e.model.name",
         "'cnn' reads sequence, but this experiment's data are features; use one of mlp"),
        (_classification(cv={"plan": "chromosome_kfold"}),
         "experiments.e.cv.plan", "needs genomic intervals"),
        ({"task": "classification", "data": {"label_column": "y"}},
         "experiments.e.data.path", "a tabular experiment needs its table"),
        (_classification(data={"path": "x.csv", "label_column": "y", "feature_columns": ["y"]}),
         "experiments.e.data", "used both as a feature and as id/label/target/group"),
        (_classification(data={"path": "x.csv", "label_column": "y", "feature_columns": ["a"],
                               "categorical_columns": ["b"]}),
         "experiments.e.data.categorical_columns", "['b'] are not in data.feature_columns"),
    ],
)  # fmt: skip
def test_inconsistent_settings_name_the_key(exp: dict[str, Any], key: str, phrase: str) -> None:
    message = _error(exp)
    assert message.startswith(f"config key {key}:"), message
    assert phrase in message


@pytest.mark.parametrize("plan", ["stratified_kfold", "repeated_stratified_kfold"])
def test_regression_refuses_stratified_plans(plan: str) -> None:
    message = _error(_regression(cv={"plan": plan}))
    assert message.startswith(f"config key experiments.e.cv.plan: '{plan}' stratifies")
    assert "use kfold, repeated_kfold, group_kfold, leave_one_out or holdout" in message


def test_regression_default_plan_is_refused_without_an_explicit_plan() -> None:
    # The default plan is stratified_kfold, which a regression cannot use.
    assert "'stratified_kfold' stratifies" in _error(_regression())


def test_valid_regression_and_group_plans_pass() -> None:
    reg = validate_config({"experiments": {"e": _regression(cv={"plan": "kfold"})}})
    assert reg["experiments"]["e"]["data"]["target_columns"] == ["t"]
    exp = _classification(cv={"plan": "group_kfold"})
    exp["data"]["group_column"] = "patient"
    grouped = validate_config({"experiments": {"e": exp}})["experiments"]["e"]
    assert grouped["cv"]["plan"] == "group_kfold"
    assert task_of(grouped).name == "classification"


def test_unknown_model_hyperparameter_is_a_config_error() -> None:
    message = _error(_classification(model={"name": "mlp", "hiden_layers": [8]}))
    assert "experiments.e.model" in message
    assert "hiden_layers" in message
    assert "hidden_layers" in message


# --- helpers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("normalise", "steps"),
    [
        ("none", []),
        ("zscore", ["zscore"]),
        (["cpm_log1p", "none", "zscore"], ["cpm_log1p", "zscore"]),
        (["log1p", "quantile"], ["log1p", "quantile"]),
    ],
)
def test_normaliser_steps(normalise: str | list[str], steps: list[str]) -> None:
    assert normaliser_steps({"normalise": normalise}) == steps


def test_load_yaml_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=re.escape(f"{tmp_path / 'no.yaml'}: config file not found")
    ):
        load_yaml(tmp_path / "no.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("experiments: [unclosed\n")
    with pytest.raises(ConfigError, match=re.escape(f"{bad}, line 2, column 1: not valid YAML")):
        load_yaml(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a string\n")
    with pytest.raises(ConfigError, match="must be a mapping with an 'experiments' key"):
        load_yaml(scalar)
    good = tmp_path / "good.yaml"
    good.write_text("experiments:\n  e:\n    task: classification\n    seed: 0\n")
    assert load_yaml(good) == {"experiments": {"e": {"task": "classification", "seed": 0}}}
