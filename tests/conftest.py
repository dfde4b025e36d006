"""Shared fixtures: small seeded synthetic tables and a builder of validated experiment configs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dlpipe.config import validate_config

#: Feature columns of the synthetic classification tables.
FEATURES = [f"f{i}" for i in range(6)]


def _classification_frame(n: int, minority: float, seed: int) -> pd.DataFrame:
    """``n`` rows: text ids ``000``..., 6 numeric features (f0-f2 carry signal), label ``y``.

    Exactly ``round(n * minority)`` rows are ``case``; the rest are ``control``.
    """
    rng = np.random.default_rng(seed)
    n_case = round(n * minority)
    y = rng.permutation(np.r_[np.ones(n_case, int), np.zeros(n - n_case, int)])
    x = rng.normal(size=(n, len(FEATURES)))
    x[:, :3] += 2.0 * y[:, None]
    frame = pd.DataFrame(x, columns=FEATURES)
    frame.insert(0, "id", [f"{i:03d}" for i in range(n)])
    frame["y"] = np.where(y == 1, "case", "control")
    return frame


@pytest.fixture
def binary_csv(tmp_path: Path) -> Path:
    """Balanced binary classification CSV: 120 rows, 60 per class."""
    path = tmp_path / "binary.csv"
    _classification_frame(120, 0.5, seed=0).to_csv(path, index=False)
    return path


@pytest.fixture
def imbalanced_csv(tmp_path: Path) -> Path:
    """Imbalanced binary classification CSV: 120 rows, 96 control / 24 case."""
    path = tmp_path / "imbalanced.csv"
    _classification_frame(120, 0.2, seed=1).to_csv(path, index=False)
    return path


@pytest.fixture
def categorical_csv(tmp_path: Path) -> Path:
    """Binary table with a categorical ``tissue`` column and NaN in f0 (rows 3, 17) and f4 (40)."""
    frame = _classification_frame(120, 0.5, seed=2)
    frame["tissue"] = np.array(["liver", "lung", "kidney"])[np.arange(120) % 3]
    frame.loc[[3, 17], "f0"] = np.nan
    frame.loc[40, "f4"] = np.nan
    path = tmp_path / "categorical.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def regression_csv(tmp_path: Path) -> Path:
    """Two-target regression CSV: 100 rows, 5 features; t1, t2 linear in the features plus noise."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(100, 5))
    frame = pd.DataFrame(x, columns=[f"g{i}" for i in range(5)])
    frame.insert(0, "id", [f"r{i}" for i in range(100)])
    frame["t1"] = 3.0 * x[:, 0] - x[:, 1] + rng.normal(scale=0.1, size=100) + 10.0
    frame["t2"] = x[:, 2] + 0.5 * x[:, 3] + rng.normal(scale=0.1, size=100)
    path = tmp_path / "regression.csv"
    frame.to_csv(path, index=False)
    return path


ExpBuilder = Callable[..., dict[str, Any]]


@pytest.fixture
def make_exp() -> ExpBuilder:
    """Return ``build(path, task="classification", **sections)`` -> one validated experiment.

    Classification uses ``label_column: y``; regression uses ``target_columns: [t1, t2]`` and
    ``cv.plan: kfold``. Each keyword is merged into the experiment's section of that name
    (``data``, ``cv``, ``preprocess``, ``training``, ``model``) or set as is (``seed``).
    """

    def build(path: str | Path, task: str = "classification", **sections: Any) -> dict[str, Any]:
        exp: dict[str, Any] = {"task": task, "data": {"path": str(path), "id_column": "id"}}
        if task == "classification":
            exp["data"]["label_column"] = "y"
        else:
            exp["data"]["target_columns"] = ["t1", "t2"]
            exp["cv"] = {"plan": "kfold"}
        for key, value in sections.items():
            if isinstance(value, dict):
                exp.setdefault(key, {}).update(value)
            else:
                exp[key] = value
        return validate_config({"experiments": {"e": exp}})["experiments"]["e"]

    return build


CheckpointWriter = Callable[..., Path]


@pytest.fixture
def write_checkpoint() -> CheckpointWriter:
    """Return ``write(path, model, name, n_inputs, n_outputs, **hyperparameters)``.

    It saves a model built by hand (no training) the way :func:`dlpipe.train.fit` does, so
    :func:`dlpipe.inference.load_model` reads it back.
    """
    import torch

    def write(
        path: str | Path, model: Any, name: str, n_inputs: int, n_outputs: int, **hyper: Any
    ) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "hyper_parameters": {
                "model_config": {"name": name, **hyper},
                "n_inputs": n_inputs,
                "n_outputs": n_outputs,
            },
            "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
        }
        torch.save(state, path)
        return path

    return write


def seal(folder: Path, exp: dict[str, Any], model: dict[str, Any]) -> Path:
    """Write config.yaml (with the fold models' ``model`` section) and the manifest of a results
    folder built by hand, as the workflow does for one it trained."""
    import yaml

    from dlpipe.io.files import MANIFEST, write_manifest

    (folder / "config.yaml").write_text(yaml.safe_dump({**exp, "model": model}))
    names = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
    write_manifest(folder, names, folder / MANIFEST)
    return folder


#: Folds, temperatures and model settings of :func:`table_results`.
RESULTS_FOLDS = 3
RESULTS_TEMPERATURES = [1.0, 2.0, 0.5]
RESULTS_MLP = {"name": "mlp", "hidden_layers": [4], "batch_norm": False, "dropout": 0.0}


@pytest.fixture
def table_results(
    tmp_path: Path, make_exp: ExpBuilder, binary_csv: Path, write_checkpoint: CheckpointWriter
) -> Path:
    """results/cls of a tabular experiment: 3 small MLPs with their own preprocessors and
    temperatures, config.yaml and manifest.json, as the workflow writes them."""
    import torch

    from dlpipe.io.files import write_json
    from dlpipe.io.fitted import save_fitted
    from dlpipe.modalities.tabular import prepare_tabular
    from dlpipe.models import build_model
    from dlpipe.preprocess import preprocess_fold
    from dlpipe.split import fold_indices, make_folds
    from dlpipe.tasks import get_task

    exp = make_exp(binary_csv, cv={"n_splits": RESULTS_FOLDS})
    data = prepare_tabular(exp)
    folder = tmp_path / "results" / "cls"
    folder.mkdir(parents=True)
    data.save(folder / "dataset.parquet", folder / "dataset.json")
    folds = make_folds(data.ids, exp["cv"], 0, labels=get_task(data.task).stratify(data.y))
    for k in range(RESULTS_FOLDS):
        _, fitted, _ = preprocess_fold(data, fold_indices(folds, k, data.ids), exp["preprocess"], 0)
        (folder / str(k)).mkdir()
        save_fitted(fitted, folder / str(k) / "preprocessor.skops")
        torch.manual_seed(k)
        model = build_model("mlp", 6, 2, hidden_layers=[4], batch_norm=False, dropout=0.0)
        write_checkpoint(folder / str(k) / "model.ckpt", model, "mlp", 6, 2, hidden_layers=[4],
                         batch_norm=False, dropout=0.0)  # fmt: skip
        write_json({"learners": {"mlp": {"temperature": RESULTS_TEMPERATURES[k]}}},
                   folder / str(k) / "calibration.json")  # fmt: skip
    return seal(folder, exp, RESULTS_MLP)
