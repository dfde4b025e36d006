"""Temperature scaling, ECE and Brier score; calibration fitted on validation rows only."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import brier_score_loss, log_loss

from dlpipe.calibrate import (
    SKIPPED,
    apply_temperature,
    brier_score,
    calibration_metrics,
    expected_calibration_error,
    fit_temperature,
    reliability_table,
    resample_calibration_metrics,
    temperature_fit,
)
from dlpipe.io.files import read_json, write_json
from dlpipe.io.fitted import save_fitted
from dlpipe.metrics import softmax
from dlpipe.models import build_model
from dlpipe.preprocess import FittedPreprocessor, FoldArrays
from dlpipe.steps.evaluate import calibrate_step, evaluate_step

ROOT = Path(__file__).resolve().parents[1]


def _overconfident(n: int, seed: int, sharpness: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(z), and a model that reports softmax(sharpness * z)."""
    rng = np.random.default_rng(seed)
    z = np.stack([np.zeros(n), rng.normal(scale=1.5, size=n)], axis=1)
    y = (rng.random(n) < softmax(z)[:, 1]).astype(int)
    return y, softmax(sharpness * z)


def test_temperature_scaling_lowers_ece_of_an_overconfident_model() -> None:
    y_val, p_val = _overconfident(2000, seed=0)
    y_test, p_test = _overconfident(2000, seed=1)
    temperature = fit_temperature(y_val, p_val)
    assert temperature == pytest.approx(4.0, rel=0.15)  # recovers the over-sharpening
    before = expected_calibration_error(y_test, p_test)
    after = expected_calibration_error(y_test, apply_temperature(p_test, temperature))
    assert before > 0.1
    assert after < before / 3
    assert brier_score(y_test, apply_temperature(p_test, temperature)) < brier_score(y_test, p_test)


def test_temperature_keeps_predicted_classes_and_is_one_when_calibrated() -> None:
    y, p = _overconfident(3000, seed=2, sharpness=1.0)
    assert fit_temperature(y, p) == pytest.approx(1.0, abs=0.15)
    scaled = apply_temperature(p, 2.5)
    assert (scaled.argmax(axis=1) == p.argmax(axis=1)).all()
    np.testing.assert_allclose(scaled.sum(axis=1), 1.0)
    np.testing.assert_allclose(apply_temperature(p, 1.0), p, atol=1e-6)


def test_perfectly_separated_validation_side_keeps_temperature_one() -> None:
    # Every row right: the NLL only falls as T shrinks, so there is no temperature to fit.
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, size=60)
    proba = np.full((60, 3), 0.2)
    proba[np.arange(60), y] = 0.6
    assert fit_temperature(y, proba) == 1.0
    labels = (rng.random((60, 2)) < 0.5).astype(float)
    assert fit_temperature(labels, np.where(labels > 0, 0.7, 0.3), multilabel=True) == [1.0, 1.0]
    # One row wrong is enough to fit again.
    proba[0] = np.roll(proba[0], 1)
    assert fit_temperature(y, proba) != 1.0


def test_a_temperature_left_at_one_records_why() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, size=40)
    separated = np.where(y[:, None] == np.arange(2), 0.8, 0.2)
    assert temperature_fit(y, separated) == (1.0, "separated")
    assert temperature_fit(y[:0], separated[:0]) == (1.0, "no_validation_rows")
    y_val, p_val = _overconfident(2000, seed=0)
    temperature, skipped = temperature_fit(y_val, p_val)
    assert temperature > 1
    assert skipped is None
    labels = (rng.random((40, 2)) < 0.5).astype(float)
    proba = np.where(labels > 0, 0.7, 0.3)
    assert temperature_fit(labels, proba, multilabel=True) == (
        [1.0, 1.0], ["separated", "separated"])  # fmt: skip


def test_metrics_agree_with_scikit_learn() -> None:
    y, p = _overconfident(500, seed=3, sharpness=1.5)
    assert brier_score(y, p) == pytest.approx(brier_score_loss(y, p[:, 1]))
    assert calibration_metrics(y, p)["nll"] == pytest.approx(log_loss(y, p), rel=1e-5)


def test_ece_of_a_hand_made_example() -> None:
    # Two confidence bins: 0.9 (accuracy 0.5) and 0.6 (accuracy 1.0): ECE = (0.4 + 0.4) / 2.
    p = np.array([[0.1, 0.9], [0.1, 0.9], [0.4, 0.6], [0.4, 0.6]])
    y = np.array([1, 0, 1, 1])
    assert expected_calibration_error(y, p) == pytest.approx(0.4)
    table = reliability_table(y, p)
    assert table["count"].sum() == 4
    assert table.loc[table["count"] > 0, "accuracy"].tolist() == [1.0, 0.5]


def test_multilabel_gets_one_temperature_per_target() -> None:
    rng = np.random.default_rng(4)
    z = rng.normal(scale=2, size=(3000, 2))
    y = (rng.random((3000, 2)) < 1 / (1 + np.exp(-z))).astype(float)
    proba = 1 / (1 + np.exp(-z * np.array([3.0, 1.0])))  # first target over-confident
    temps = fit_temperature(y, proba, multilabel=True)
    assert temps[0] == pytest.approx(3.0, rel=0.2)
    assert temps[1] == pytest.approx(1.0, abs=0.2)
    assert expected_calibration_error(
        y, apply_temperature(proba, temps, multilabel=True), multilabel=True
    ) < expected_calibration_error(y, proba, multilabel=True)


@pytest.fixture
def overconfident_fold(tmp_path: Path, write_checkpoint) -> dict[str, Path]:
    """A linear 'MLP' 4x sharper than the truth, with val and test sides of one fold."""
    model = build_model("mlp", 2, 2, hidden_layers=[], batch_norm=False)
    with torch.no_grad():
        model.head.weight.copy_(torch.tensor([[0.0, 0.0], [6.0, 0.0]]))
        model.head.bias.zero_()
    files = {"model": write_checkpoint(tmp_path / "model.ckpt", model, "mlp", 2, 2,
                                       hidden_layers=[], batch_norm=False)}  # fmt: skip
    rng = np.random.default_rng(5)
    for side, n in (("val", 800), ("test", 800)):
        x = rng.normal(size=(n, 2)).astype(np.float32)
        y = (rng.random(n) < 1 / (1 + np.exp(-1.5 * x[:, 0]))).astype(np.int64)
        ids = np.array([f"{side}{i}" for i in range(n)])
        FoldArrays(x, y, ids).save(tmp_path / f"{side}.npz")
        files[side] = tmp_path / f"{side}.npz"
    save_fitted(FittedPreprocessor(None, ["a", "b"], ["a", "b"]), tmp_path / "pre.skops")
    files["pre"] = tmp_path / "pre.skops"
    write_json({"task": "classification", "classes": ["no", "yes"]}, tmp_path / "dataset.json")
    files["meta"] = tmp_path / "dataset.json"
    return files


EXP = {
    "task": "classification",
    "model": {"name": "mlp"},
    "baseline": {"enabled": False},
    "data": {"modality": "tabular"},
}


def test_calibrate_step_reads_validation_rows_and_evaluate_applies_it(
    overconfident_fold: dict[str, Path], tmp_path: Path
) -> None:
    f = overconfident_fold
    out = tmp_path / "calibration.json"
    fitted = calibrate_step(EXP, 0, str(f["val"]), str(f["model"]), None, str(f["pre"]),
                            str(f["meta"]), str(out))  # fmt: skip
    temperature = fitted["learners"]["mlp"]["temperature"]
    assert temperature == pytest.approx(4.0, rel=0.25)
    assert fitted["n_val"] == 800
    assert read_json(out)["learners"]["mlp"]["skipped"] is None  # fitted: nothing to explain
    assert (
        read_json(out)["learners"]["mlp"]["val_after"]["nll"]
        < (read_json(out)["learners"]["mlp"]["val_before"]["nll"])
    )
    # Refitting on the same validation side gives the same temperatures.
    again = calibrate_step(EXP, 0, str(f["val"]), str(f["model"]), None, str(f["pre"]),
                           str(f["meta"]), str(tmp_path / "again.json"))  # fmt: skip
    assert again["learners"] == fitted["learners"]

    metrics = evaluate_step(EXP, 0, str(f["test"]), str(f["model"]), None, str(f["pre"]),
                            str(f["meta"]), str(tmp_path / "pred.tsv"), str(tmp_path / "m.json"),
                            calibration=str(out))["mlp"]  # fmt: skip
    assert metrics["ece_calibrated"] < metrics["ece"] / 2
    assert metrics["brier_calibrated"] < metrics["brier"]
    assert metrics["nll_calibrated"] < metrics["nll"]
    table = pd.read_csv(tmp_path / "pred.tsv", sep="\t")
    assert {"prob_no", "prob_yes", "calprob_no", "calprob_yes"} <= set(table.columns)
    assert (table["prob_yes"] > 0.5).eq(table["calprob_yes"] > 0.5).all()  # same decisions


def test_evaluate_without_calibration_reports_nan_for_calibrated_metrics(
    overconfident_fold: dict[str, Path], tmp_path: Path
) -> None:
    f = overconfident_fold
    metrics = evaluate_step(EXP, 0, str(f["test"]), str(f["model"]), None, str(f["pre"]),
                            str(f["meta"]), str(tmp_path / "p.tsv"),
                            str(tmp_path / "m.json"))["mlp"]  # fmt: skip
    assert np.isnan(metrics["ece_calibrated"])
    assert metrics["ece"] > 0.05


def test_temperatures_are_fitted_from_the_validation_side_only() -> None:
    # calibrate_step is handed the validation side alone; the evaluate job then scores the test
    # side with the temperatures it wrote.
    assert "test" not in inspect.signature(calibrate_step).parameters
    script = (ROOT / "workflow" / "scripts" / "evaluate.py").read_text()
    call = script[script.index("calibrate_step(") : script.index("evaluate_step(\n")]
    assert "snakemake.input.val" in call
    assert "test" not in call
    others = (ROOT / "rules").glob("*.smk")
    readers = {p.name for p in others if "test.npz" in p.read_text()}
    # preprocess writes the test sides; embed fits the fold's VAE on the training side and only
    # encodes the held-out samples.
    assert readers == {"evaluate.smk", "preprocess.smk", "embed.smk"}


@pytest.mark.parametrize(
    ("change", "task"),
    [({"calibration": {"enabled": False}}, "classification"), ({}, "regression")],
)
def test_no_temperatures_without_calibration_or_for_regression(
    overconfident_fold: dict[str, Path], tmp_path: Path, change: dict[str, Any], task: str
) -> None:
    f = overconfident_fold
    if task == "regression":
        write_json({"task": "regression", "target_columns": ["t"]}, f["meta"])
    out = tmp_path / "calibration.json"
    written = calibrate_step({**EXP, **change, "task": task}, 0, str(f["val"]), str(f["model"]),
                             None, str(f["pre"]), str(f["meta"]), str(out))  # fmt: skip
    assert written["learners"] == {}
    assert written["enabled"] is False
    assert read_json(out) == written


def test_a_small_validation_side_leaves_the_temperature_at_one() -> None:
    y, p = _overconfident(2000, seed=1)
    fitted, why = temperature_fit(y[:12], p[:12])
    assert why is None  # 12 rows are enough to move the temperature
    assert fitted != 1.0
    assert temperature_fit(y[:12], p[:12], min_rows=20) == (1.0, "too_few_validation_rows")
    assert temperature_fit(y[:20], p[:20], min_rows=20)[1] is None  # the threshold is inclusive
    assert "too_few_validation_rows" in SKIPPED
    labels = (np.random.default_rng(0).random((8, 2)) < 0.5).astype(float)
    assert temperature_fit(labels, np.full((8, 2), 0.6), multilabel=True, min_rows=20) == (
        [1.0, 1.0], ["too_few_validation_rows"] * 2)  # fmt: skip


def test_calibrate_step_skips_a_fold_below_calibration_min_validation(
    overconfident_fold: dict[str, Path], tmp_path: Path
) -> None:
    f = overconfident_fold
    exp = {**EXP, "calibration": {"enabled": True, "min_validation": 1000}}
    written = calibrate_step(exp, 0, str(f["val"]), str(f["model"]), None, str(f["pre"]),
                             str(f["meta"]), str(tmp_path / "c.json"))  # fmt: skip
    rec = written["learners"]["mlp"]
    assert (rec["temperature"], rec["skipped"]) == (1.0, "too_few_validation_rows")
    assert rec["val_after"] == pytest.approx(rec["val_before"])


def test_resampled_calibration_metrics_equal_the_reported_ones() -> None:
    y, p = _overconfident(300, seed=4)
    for multilabel, (truth, proba) in ((False, (y, p)), (True, (p > 0.5, p))):
        fast = resample_calibration_metrics(truth, proba, multilabel)
        assert fast == pytest.approx(calibration_metrics(truth, proba, multilabel))
