"""Training: checkpoint and history, learning a separable set, bit-identical reruns, weights."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.utils.class_weight import compute_class_weight
from torch.utils.data import DataLoader, TensorDataset

from dlpipe.config import validate_config
from dlpipe.errors import ConfigError
from dlpipe.models.checkpoint import load_model, raw_outputs
from dlpipe.models.mlp import MLP
from dlpipe.tasks import get_task
from dlpipe.train import accelerator_settings, fit, make_loader, write_history

#: Two linearly separable classes in 6 dimensions: 120 train, 40 val, 40 test.
_RNG = np.random.default_rng(0)
X = _RNG.normal(size=(200, 6)).astype(np.float32)
Y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
TRAIN, VAL, TEST = slice(0, 120), slice(120, 160), slice(160, 200)


def _exp(task: str = "classification", seed: int = 0, **training: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"path": "unused.csv"}
    if task == "classification":
        data["label_column"] = "y"
    else:
        data["target_columns"] = ["t1", "t2"]
    exp = {
        "task": task,
        "seed": seed,
        "data": data,
        "cv": {"plan": "stratified_kfold" if task == "classification" else "kfold"},
        "model": {"name": "mlp", "hidden_layers": [16]},
        "training": {
            "max_epochs": 25,
            "patience": 10,
            "batch_size": 32,
            "learning_rate": 0.01,
            "progress_bar": False,
            "device": "cpu",
            **training,
        },
    }
    return validate_config({"experiments": {"e": exp}})["experiments"]["e"]


@pytest.fixture(scope="module", autouse=True)
def _restore_torch_threads() -> Iterator[None]:
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


Run = tuple[Any, np.ndarray, Path, Path]


@pytest.fixture(scope="module")
def train_run(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int, str], Run]:
    """``run(seed, name)``: fit the classifier once per name; returns model, test scores, files."""
    folder = tmp_path_factory.mktemp("train")
    cache: dict[str, Run] = {}

    def run(seed: int, name: str) -> Run:
        if name not in cache:
            checkpoint, history = folder / f"{name}.ckpt", folder / f"{name}.tsv"
            model = fit((X[TRAIN], Y[TRAIN]), (X[VAL], Y[VAL]), _exp(seed=seed),
                        get_task("classification"), 2, checkpoint, history)  # fmt: skip
            cache[name] = (model, raw_outputs(model, X[TEST]), checkpoint, history)
        return cache[name]

    return run


def test_fit_writes_checkpoint_and_history(train_run: Callable[[int, str], Run]) -> None:
    model, scores, checkpoint, history = train_run(0, "a")
    assert checkpoint.stat().st_size > 0
    table = pd.read_csv(history, sep="\t")
    assert list(table.columns) == ["epoch", "train_loss", "val_loss"]
    assert table["epoch"].tolist() == list(range(len(table)))
    assert 1 <= len(table) <= 25
    assert table[["train_loss", "val_loss"]].notna().all().all()
    assert table["val_loss"].min() < table["val_loss"].iloc[0]
    assert table["val_loss"].iloc[-1] < table["val_loss"].iloc[0]
    assert table["train_loss"].iloc[-1] < table["train_loss"].iloc[0]
    assert not model.training  # returned in eval mode
    assert scores.shape == (40, 2)
    assert scores.dtype == np.float64


def test_model_learns_the_separable_set(train_run: Callable[[int, str], Run]) -> None:
    _, scores, _, _ = train_run(0, "a")
    accuracy = (scores.argmax(axis=1) == Y[TEST]).mean()
    assert accuracy > 0.9


def test_checkpoint_holds_the_best_validation_epoch(train_run: Callable[[int, str], Run]) -> None:
    model, scores, checkpoint, history = train_run(0, "a")
    reloaded = load_model(checkpoint)
    np.testing.assert_array_equal(raw_outputs(reloaded, X[TEST]), scores)
    logits = torch.from_numpy(raw_outputs(model, X[VAL]))
    val_loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(Y[VAL])).item()
    best = pd.read_csv(history, sep="\t")["val_loss"].min()
    assert val_loss == pytest.approx(best, rel=1e-4)
    assert isinstance(reloaded, MLP)
    assert not reloaded.training
    hparams = torch.load(checkpoint, map_location="cpu", weights_only=True)["hyper_parameters"]
    assert hparams["model_config"] == {"name": "mlp", "hidden_layers": [16]}
    assert (hparams["n_inputs"], hparams["n_outputs"], hparams["loss"]) == (6, 2, "cross_entropy")


def test_same_seed_gives_bit_identical_predictions_and_history(
    train_run: Callable[[int, str], Run],
) -> None:
    _, first, ckpt_a, history_a = train_run(0, "a")
    _, second, ckpt_b, history_b = train_run(0, "b")
    assert np.array_equal(first, second)
    assert history_a.read_text() == history_b.read_text()
    state_a = load_model(ckpt_a).state_dict()
    state_b = load_model(ckpt_b).state_dict()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)


def test_a_different_seed_gives_different_predictions(
    train_run: Callable[[int, str], Run],
) -> None:
    _, zero, _, history_zero = train_run(0, "a")
    _, one, _, history_one = train_run(1, "c")
    assert not np.array_equal(zero, one)
    assert history_zero.read_text() != history_one.read_text()
    assert (one.argmax(axis=1) == Y[TEST]).mean() > 0.9


def test_predict_batches_give_the_same_outputs(train_run: Callable[[int, str], Run]) -> None:
    model, scores, _, _ = train_run(0, "a")
    np.testing.assert_allclose(raw_outputs(model, X[TEST], batch_size=7), scores, rtol=1e-6)


def test_multi_target_regression_fit(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(160, 6)).astype(np.float32)
    y = np.column_stack([x[:, 0] - x[:, 1], 0.5 * x[:, 2]]).astype(np.float32)
    model = fit((x[:100], y[:100]), (x[100:130], y[100:130]), _exp("regression"),
                get_task("regression"), 2, tmp_path / "r.ckpt", tmp_path / "r.tsv")  # fmt: skip
    pred = raw_outputs(model, x[130:])
    assert pred.shape == (30, 2)
    assert isinstance(model.loss, torch.nn.MSELoss)
    residual = ((pred - y[130:]) ** 2).sum(axis=0)
    total = ((y[130:] - y[130:].mean(axis=0)) ** 2).sum(axis=0)
    assert (1 - residual / total > 0.7).all()


def test_balanced_class_weights_reach_the_loss(tmp_path: Path) -> None:
    y = Y[TRAIN].copy()
    y[np.flatnonzero(y == 1)[:40]] = 0  # make class 1 the minority
    exp = _exp(class_weights="balanced", max_epochs=1)
    model = fit((X[TRAIN], y), (X[VAL], Y[VAL]), exp, get_task("classification"), 2,
                tmp_path / "w.ckpt", tmp_path / "w.tsv")  # fmt: skip
    expected = compute_class_weight("balanced", classes=np.array([0, 1]), y=y)
    np.testing.assert_allclose(model.loss.weight.numpy(), expected, rtol=1e-6)
    assert len(pd.read_csv(tmp_path / "w.tsv", sep="\t")) == 1  # max_epochs honoured


# --- helpers -----------------------------------------------------------------------------------


def test_balanced_class_weights_equal_scikit_learn() -> None:
    y = np.array([0] * 6 + [1] * 3 + [2] * 1)
    weights = get_task("classification").balanced_weights(y, 3)
    expected = compute_class_weight("balanced", classes=np.array([0, 1, 2]), y=y)
    np.testing.assert_allclose(weights, expected)
    np.testing.assert_allclose(weights, [10 / 18, 10 / 9, 10 / 3])
    assert all(isinstance(w, float) for w in weights)


def test_balanced_class_weights_give_absent_classes_weight_one() -> None:
    y = np.array([0, 0, 0, 2])
    weights = get_task("classification").balanced_weights(y, 4)
    present = compute_class_weight("balanced", classes=np.array([0, 2]), y=y)
    assert weights == pytest.approx([present[0], 1.0, present[1], 1.0])
    assert weights == pytest.approx([4 / 6, 1.0, 2.0, 1.0])


def test_positive_weights_are_negatives_over_positives() -> None:
    y = np.array([[1, 0, 0], [0, 0, 1], [0, 0, 1], [0, 0, 1]], dtype=np.float32)
    assert get_task("multilabel").balanced_weights(y, 3) == pytest.approx([3.0, 1.0, 1 / 3])


def test_training_targets_dtypes_and_shapes() -> None:
    codes = get_task("classification").training_targets(np.array([0, 1, 2]))
    assert codes.dtype == np.int64
    assert codes.shape == (3,)
    regression = get_task("regression")
    one = regression.training_targets(np.array([1.5, 2.5]))
    assert one.dtype == np.float32
    assert one.shape == (2, 1)
    assert regression.training_targets(np.ones((4, 3))).shape == (4, 3)


def test_accelerator_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert accelerator_settings({"device": "cpu", "devices": 1}) == {
        "accelerator": "cpu",
        "devices": 1,
    }
    # Several CPU processes train with DDP (gloo); the spawned ranks start inside the job.
    assert accelerator_settings({"device": "cpu", "devices": 2}) == {
        "accelerator": "cpu",
        "devices": 2,
        "strategy": "ddp_fork",
    }
    assert accelerator_settings({"device": "auto", "devices": 1}) == {
        "accelerator": "auto",
        "devices": 1,
    }
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    # auto without a visible GPU falls back to one CPU process, whatever devices says.
    assert accelerator_settings({"device": "auto", "devices": 4}) == {
        "accelerator": "cpu",
        "devices": 1,
    }
    with pytest.raises(ConfigError, match=r"training\.device is 'gpu' but no CUDA GPU"):
        accelerator_settings({"device": "gpu", "devices": 1})
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert accelerator_settings({"device": "gpu", "devices": 2}) == {
        "accelerator": "gpu",
        "devices": 2,
        "strategy": "ddp_fork",
    }
    assert accelerator_settings({"device": "auto", "devices": 2}) == {
        "accelerator": "gpu",
        "devices": 2,
        "strategy": "ddp_fork",
    }


def test_write_history_writes_one_row_per_epoch(tmp_path: Path) -> None:
    rows = [
        {"epoch": 0, "train_loss": 1.2, "val_loss": 0.9},
        {"epoch": 1, "train_loss": 0.8, "val_loss": 0.712345678},
    ]
    write_history(rows, tmp_path / "history.tsv")
    assert (tmp_path / "history.tsv").read_text() == (
        "epoch\ttrain_loss\tval_loss\n0\t1.2\t0.9\n1\t0.8\t0.712346\n"
    )


def test_batch_loader_yields_the_batches_of_a_per_sample_loader() -> None:
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 5, size=(37, 11), dtype=np.uint8)
    y = rng.integers(0, 2, 37)
    fast = make_loader(codes, y, batch_size=8, shuffle=True, seed=0)
    slow = DataLoader(
        TensorDataset(torch.from_numpy(codes), torch.from_numpy(y)),
        batch_size=8,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )
    for _ in range(2):  # two epochs: the generator's state carries over identically
        pairs = list(zip(fast, slow, strict=True))
        assert len(pairs) == 5
        for (x1, y1), (x2, y2) in pairs:
            assert x1.dtype == torch.uint8
            assert torch.equal(x1, x2)
            assert torch.equal(y1, y2)


def test_a_tiny_validation_side_trains_without_early_stopping(tmp_path: Path) -> None:
    # Six validation rows, below training.min_validation: no early stopping (patience 1 would
    # stop within a few epochs), the last epoch is kept, and the history says why.
    exp = _exp(max_epochs=12, patience=1, min_validation=10)
    val = slice(120, 126)
    checkpoint, history = tmp_path / "m.ckpt", tmp_path / "h.tsv"
    model = fit((X[TRAIN], Y[TRAIN]), (X[val], Y[val]), exp, get_task("classification"), 2,
                checkpoint, history)  # fmt: skip
    table = pd.read_csv(history, sep="\t")
    assert len(table) == 12
    assert (
        table["early_stopping"] == "skipped: 6 validation rows < training.min_validation 10"
    ).all()
    logits = torch.from_numpy(raw_outputs(model, X[val]))
    val_loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(Y[val])).item()
    assert val_loss == pytest.approx(table["val_loss"].iloc[-1], rel=1e-4)  # the last epoch
    # At the threshold early stopping is back, and the history has no such column.
    again = tmp_path / "h2.tsv"
    fit((X[TRAIN], Y[TRAIN]), (X[val], Y[val]), _exp(max_epochs=12, patience=1, min_validation=6),
        get_task("classification"), 2, tmp_path / "m2.ckpt", again)  # fmt: skip
    assert list(pd.read_csv(again, sep="\t").columns) == ["epoch", "train_loss", "val_loss"]
