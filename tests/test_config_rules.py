"""Config rules that hold for every modality: keys of another modality, learner names, reruns."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from dlpipe.config import validate_config
from dlpipe.errors import ConfigError, InputError
from dlpipe.learners import FoldModels, predict_new


def _table(path: Path, **data: object) -> dict:
    return {
        "task": "classification",
        "data": {"path": str(path), "id_column": "id", "label_column": "y", **data},
    }


@pytest.mark.parametrize(
    ("key", "value", "owner"),
    [
        ("batch_column", "batch", "singlecell"),
        ("alphabet", "protein", "sequence"),
        ("negatives", {"ratio": 2.0}, "sequence"),
        ("sequence_length", 100, "sequence"),
    ],
)
def test_a_data_key_of_another_modality_is_refused(
    binary_csv: Path, key: str, value: object, owner: str
) -> None:
    config = {"experiments": {"e": _table(binary_csv, **{key: value})}}
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    assert str(err.value) == (
        f"config key experiments.e.data.{key}: tabular experiments do not read it (only "
        f"{owner} experiments do); remove it"
    )


def test_a_validated_config_validates_again_unchanged(binary_csv: Path) -> None:
    config = validate_config({"experiments": {"e": _table(binary_csv)}})
    again = validate_config(copy.deepcopy(config))
    assert again == config


def test_a_model_named_like_its_baseline_is_refused(binary_csv: Path) -> None:
    exp = _table(binary_csv)
    exp["model"] = {"class": "dlpipe.models.mlp:MLP", "name": "logistic_regression"}
    with pytest.raises(ConfigError, match=r"'logistic_regression' is the name of the baseline"):
        validate_config({"experiments": {"e": exp}})


def test_leave_one_out_is_refused_for_sequences() -> None:
    exp = {"task": "classification", "cv": {"plan": "leave_one_out"},
           "data": {"modality": "sequence", "fasta": "s.fa"}}  # fmt: skip
    with pytest.raises(ConfigError, match=r"cv\.plan: leave_one_out trains one model per sequence"):
        validate_config({"experiments": {"s": exp}})


def test_a_class_that_is_not_a_torch_module_is_never_called(binary_csv: Path) -> None:
    exp = _table(binary_csv)
    exp["model"] = {"class": "subprocess:Popen"}
    with pytest.raises(ConfigError, match=r"'subprocess:Popen' is not a torch\.nn\.Module class"):
        validate_config({"experiments": {"e": exp}})


def test_predicting_a_single_cell_results_folder_is_refused(tmp_path: Path) -> None:
    exp = {"data": {"modality": "singlecell"}, "model": {"name": "mlp"}}
    meta = {"modality": "tabular", "task": "classification", "classes": ["B", "T"]}
    models = FoldModels(exp, meta, [], [])
    with pytest.raises(InputError, match="classifies cells on the latent space of its own scVI"):
        predict_new(models, {"table": str(tmp_path / "new.csv")})
