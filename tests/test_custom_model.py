"""A model family of the user's own trains from a config: ``model.class``, entry points, and
:func:`dlpipe.models.register_model`, checked before any job like the shipped families."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from dlpipe import models
from dlpipe.config import validate_config
from dlpipe.errors import ConfigError
from dlpipe.io.files import read_json
from dlpipe.models.checkpoint import load_model
from dlpipe.steps.evaluate import evaluate_step
from dlpipe.steps.prepare import prepare_step
from dlpipe.steps.preprocess import preprocess_step
from dlpipe.steps.split import split_step
from dlpipe.steps.train import baseline_step, train_step

LAB_MODELS = '''
"""Models of a lab's own, as a user would write them."""
from torch import nn


class TinyNet(nn.Module):
    """Two linear layers for tables."""

    inputs = "features"

    def __init__(self, n_inputs, n_outputs, width=8):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_inputs, width), nn.ReLU(), nn.Linear(width, n_outputs))

    def forward(self, x):
        return self.net(x)


class TinySequenceNet(nn.Module):
    """A model that reads sequence codes."""

    inputs = "sequence"

    def __init__(self, n_inputs, n_outputs):
        super().__init__()
        self.head = nn.Linear(n_inputs, n_outputs)

    def forward(self, x):
        return self.head(x.float())
'''


@pytest.fixture
def lab_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A module ``lab_models`` on sys.path, forgotten afterwards."""
    folder = tmp_path / "lab"
    folder.mkdir()
    (folder / "lab_models.py").write_text(LAB_MODELS)
    monkeypatch.syspath_prepend(str(folder))
    yield "lab_models"
    sys.modules.pop("lab_models", None)


def _exp(path: Path, model: dict) -> dict:
    exp = {
        "task": "classification",
        "data": {"path": str(path), "id_column": "id", "label_column": "y"},
        "model": model,
        "training": {"max_epochs": 30, "patience": 5, "progress_bar": False, "device": "cpu"},
        "cv": {"n_splits": 3},
    }
    return validate_config({"experiments": {"e": exp}})["experiments"]["e"]


def test_model_class_from_a_config_trains_evaluates_and_reloads(
    binary_csv: Path, lab_models: str, tmp_path: Path
) -> None:
    exp = _exp(binary_csv, {"class": f"{lab_models}:TinyNet", "width": 6})
    assert exp["model"]["name"] == "TinyNet"  # the learner's name in tables and figures
    out = tmp_path / "results"
    out.mkdir()
    f = {k: str(out / k) for k in ("dataset.parquet", "dataset.json", "provenance.json")}
    prepare_step("e", exp, f["dataset.parquet"], f["dataset.json"], f["provenance.json"], ".")
    split_step(exp, f["dataset.parquet"], f["dataset.json"], str(out / "folds.tsv"))
    sides = {k: str(out / f"{k}.npz") for k in ("train", "val", "test")}
    files = {**sides, "preprocessor": str(out / "pre.skops"), "summary": str(out / "pre.json")}
    preprocess_step(exp, 0, f["dataset.parquet"], f["dataset.json"], str(out / "folds.tsv"), files)
    ckpt = str(out / "model.ckpt")
    train_step(exp, sides["train"], sides["val"], files["preprocessor"], f["dataset.json"], ckpt,
               str(out / "history.tsv"))  # fmt: skip
    baseline_step(exp, sides["train"], files["preprocessor"], f["dataset.json"],
                  str(out / "baselines.skops"))  # fmt: skip
    results = evaluate_step(exp, 0, sides["test"], ckpt, str(out / "baselines.skops"),
                            files["preprocessor"], f["dataset.json"],
                            str(out / "predictions.tsv"), str(out / "metrics.json"))  # fmt: skip
    assert set(results) == {"TinyNet", "logistic_regression"}
    assert read_json(out / "metrics.json")["TinyNet"]["auroc"] > 0.85  # f0-f2 carry the signal
    model = load_model(ckpt)
    assert type(model).__name__ == "TinyNet"
    assert model.net[0].out_features == 6


def test_a_user_class_is_checked_from_its_source_without_importing_it(lab_models: str) -> None:
    found = models.outline({"class": f"{lab_models}:TinyNet"})
    assert found.hyperparameters == ("width",)
    assert found.inputs == "features"
    assert lab_models not in sys.modules


def test_unknown_hyperparameter_of_a_user_class_is_refused(
    binary_csv: Path, lab_models: str
) -> None:
    with pytest.raises(ConfigError, match=r"model: \['depth'\] are not hyperparameters .* width"):
        _exp(binary_csv, {"class": f"{lab_models}:TinyNet", "depth": 3})


def test_a_sequence_family_is_refused_for_a_table(binary_csv: Path, lab_models: str) -> None:
    expected = "reads sequence, but this experiment's data are features"
    with pytest.raises(ConfigError, match=expected):
        _exp(binary_csv, {"class": f"{lab_models}:TinySequenceNet"})


def test_a_class_that_cannot_be_imported_is_named(binary_csv: Path) -> None:
    with pytest.raises(ConfigError, match="'no_such_lab_module:Net' cannot be imported"):
        _exp(binary_csv, {"class": "no_such_lab_module:Net"})


def test_a_family_name_the_registry_does_not_know_is_refused(binary_csv: Path) -> None:
    with pytest.raises(ConfigError, match="'transformer' is not allowed; choose one of cnn, danq"):
        _exp(binary_csv, {"name": "transformer"})


def test_an_installed_package_registers_a_family_by_entry_point(
    binary_csv: Path, lab_models: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    point = EntryPoint(name="labnet", value=f"{lab_models}:TinyNet", group=models.ENTRY_POINT_GROUP)
    monkeypatch.setattr(models, "entry_points", lambda group: [point])
    models._entry_points.cache_clear()
    try:
        assert "labnet" in models.available_models()
        exp = _exp(binary_csv, {"name": "labnet", "width": 5})
        net = models.build_model(exp["model"], 6, 2)
        assert type(net).__name__ == "TinyNet"
        assert net.net[0].out_features == 5
    finally:
        monkeypatch.undo()
        models._entry_points.cache_clear()


def test_register_model_adds_a_family_in_this_process(
    binary_csv: Path, lab_models: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(models, "_REGISTERED", {})
    module = __import__(lab_models)
    models.register_model("tiny")(module.TinyNet)
    exp = _exp(binary_csv, {"name": "tiny", "width": 4})
    assert type(models.build_model(exp["model"], 6, 2)).__name__ == "TinyNet"
    with pytest.raises(ValueError, match="registered twice"):
        models.register_model("tiny")(module.TinyNet)
    with pytest.raises(ValueError, match="registered twice"):
        models.register_model("mlp")(module.TinyNet)


TRICKY = '''
from torch import nn


class SequenceBase(nn.Module):
    inputs = "sequence"


class Inherits(SequenceBase):
    """Reads sequences through its base class."""

    def __init__(self, n_inputs, n_outputs, depth=2):
        super().__init__()
        self.head = nn.Linear(n_inputs, n_outputs)

    def forward(self, x):
        return self.head(x.float())


class Twice(nn.Module):
    def __init__(self, n_inputs, n_outputs, width=1):
        super().__init__()


class Twice(nn.Module):  # noqa: F811 - Python keeps this one
    def __init__(self, n_inputs, n_outputs, depth=1):
        super().__init__()
'''


@pytest.fixture
def tricky_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    folder = tmp_path / "tricky"
    folder.mkdir()
    (folder / "tricky_models.py").write_text(TRICKY)
    (folder / "broken_models.py").write_text("class Net(:\n")
    monkeypatch.syspath_prepend(str(folder))
    yield "tricky_models"
    for name in ("tricky_models", "broken_models"):
        sys.modules.pop(name, None)


def test_what_the_source_cannot_settle_is_read_from_the_imported_class(tricky_models: str) -> None:
    inherited = models.outline({"class": f"{tricky_models}:Inherits"})
    assert inherited.inputs == "sequence"  # from the base class: only the import knows
    assert inherited.hyperparameters == ("depth",)
    assert models.outline({"class": f"{tricky_models}:Twice"}).hyperparameters == ("depth",)


def test_a_user_module_that_does_not_parse_is_named(binary_csv: Path, tricky_models: str) -> None:
    with pytest.raises(ConfigError, match="'broken_models:Net' cannot be imported"):
        _exp(binary_csv, {"class": "broken_models:Net"})
