"""The tabular backbone: config validation, folds, leak-free preprocessing, metrics, training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn import metrics as skm

from dlpipe.config import validate_config
from dlpipe.dataset import prepare_tabular
from dlpipe.errors import ConfigError, InputError
from dlpipe.evaluate import (
    classification_metrics,
    confidence_interval,
    regression_metrics,
    summarise_folds,
)
from dlpipe.preprocess import apply_smote, preprocess_fold
from dlpipe.split import fold_indices, make_folds, n_folds, read_folds, write_folds


def _table(tmp_path: Path, n: int = 120, minority: float = 0.5, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < minority).astype(int)
    x = rng.normal(size=(n, 5)) + y[:, None] * 1.5
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(5)])
    frame.insert(0, "id", [f"{i:03d}" for i in range(n)])
    frame["label"] = np.where(y == 1, "case", "control")
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return path


def _exp(path: Path, **sections: object) -> dict:
    exp = {"task": "classification", "data": {"path": str(path), "id_column": "id",
                                              "label_column": "label"}}  # fmt: skip
    for key, value in sections.items():
        exp[key] = value
    return validate_config({"experiments": {"e": exp}})["experiments"]["e"]


# --- config -----------------------------------------------------------------------------------


def test_defaults_are_filled_and_seed_zero_is_kept(tmp_path: Path) -> None:
    exp = _exp(tmp_path / "x.csv", seed=0)
    assert exp["seed"] == 0
    assert exp["training"]["max_epochs"] == 200
    assert exp["cv"]["plan"] == "stratified_kfold"
    assert exp["preprocess"]["normalise"] == ["zscore"]


def test_defaults_are_not_shared_between_experiments(tmp_path: Path) -> None:
    data = {"path": "x.csv", "label_column": "y"}
    config = validate_config({"experiments": {
        "a": {"task": "classification", "data": dict(data)},
        "b": {"task": "classification", "data": dict(data)},
    }})  # fmt: skip
    config["experiments"]["a"]["preprocess"]["normalise"].append("quantile")
    config["experiments"]["a"]["training"]["max_epochs"] = 3
    assert config["experiments"]["b"]["preprocess"]["normalise"] == ["zscore"]
    assert config["experiments"]["b"]["training"]["max_epochs"] == 200


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"model": {"name": "foo"}}, r"experiments\.e\.model\.name: 'foo' is not allowed; "
                                     r"choose one of mlp, cnn"),
        ({"cv": {"plan": "bogus"}}, r"experiments\.e\.cv\.plan: 'bogus'.*stratified_kfold"),
        ({"training": {"epochs": 3}}, r"experiments\.e\.training: unknown key\(s\) 'epochs'; "
                                      r"allowed keys are .*max_epochs"),
        ({"seed": -1}, r"experiments\.e\.seed"),
        ({"preprocess": {"normalise": ["zscore", "tpm"]}},
         r"normalise\.1: 'tpm' is not allowed; choose one of none, log1p"),
    ],
)  # fmt: skip
def test_invalid_values_name_key_value_and_choices(patch: dict, message: str) -> None:
    exp = {"task": "classification", "data": {"path": "x.csv", "label_column": "y"}, **patch}
    with pytest.raises(ConfigError, match=message):
        validate_config({"experiments": {"e": exp}})


@pytest.mark.parametrize(
    ("exp", "message"),
    [
        ({"task": "classification", "data": {"path": "x.csv"}}, "label_column"),
        ({"task": "regression", "data": {"path": "x.csv", "target_columns": ["a"]},
          "cv": {"plan": "stratified_kfold"}}, "does not apply to regression"),
        ({"task": "regression", "data": {"path": "x.csv", "target_columns": ["a"]},
          "cv": {"plan": "kfold"}, "preprocess": {"smote": True}}, "SMOTE"),
        ({"task": "classification", "data": {"path": "x.csv", "label_column": "y"},
          "cv": {"plan": "group_kfold"}}, "group_column"),
    ],
)  # fmt: skip
def test_inconsistent_settings_are_rejected(exp: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate_config({"experiments": {"e": exp}})


# --- folds -----------------------------------------------------------------------------------


def _folds(y: np.ndarray, seed: int = 0, **cv: object) -> pd.DataFrame:
    cfg = {"plan": "stratified_kfold", "n_splits": 5, "n_repeats": 2, "test_size": 0.25,
           "val_fraction": 0.2, **cv}  # fmt: skip
    ids = np.array([f"s{i}" for i in range(len(y))])
    return make_folds(ids, y, cfg, "classification", seed, cv.get("groups"))  # type: ignore[arg-type]


def test_every_sample_is_tested_once_and_sides_are_disjoint() -> None:
    y = np.array([0] * 70 + [1] * 30)
    folds = _folds(y)
    test = folds[folds["set"] == "test"]
    assert sorted(test["id"]) == sorted(f"s{i}" for i in range(100))
    for _, fold in folds.groupby("fold"):
        sides = {s: set(fold.loc[fold["set"] == s, "id"]) for s in ("train", "val", "test")}
        assert not sides["train"] & sides["val"]
        assert not sides["train"] & sides["test"]
        assert not sides["val"] & sides["test"]
        n_case = fold.loc[fold["set"] == "test", "id"].str[1:].astype(int).ge(70).sum()
        assert abs(n_case - 6) <= 1  # stratified: 30 % of 20


def test_folds_are_stable_under_a_seed_and_change_with_it() -> None:
    y = np.random.default_rng(0).integers(0, 2, 80)
    pd.testing.assert_frame_equal(_folds(y, seed=0), _folds(y, seed=0))
    assert not _folds(y, seed=0).equals(_folds(y, seed=1))  # seed 0 is a seed, not "none"


def test_group_folds_keep_groups_together() -> None:
    y = np.random.default_rng(1).integers(0, 2, 90)
    groups = np.repeat([f"patient{i}" for i in range(15)], 6)
    folds = _folds(y, plan="group_kfold", groups=groups)
    group_of = dict(zip([f"s{i}" for i in range(90)], groups, strict=True))
    for _, fold in folds.groupby("fold"):
        side = fold.assign(group=fold["id"].map(group_of)).groupby("group")["set"].nunique()
        assert (side == 1).all()


@pytest.mark.parametrize(
    ("plan", "expected"),
    [("leave_one_out", 30), ("holdout", 1), ("repeated_stratified_kfold", 10), ("kfold", 5)],
)
def test_number_of_folds(plan: str, expected: int) -> None:
    y = np.array([0, 1] * 15)
    folds = _folds(y, plan=plan)
    assert folds["fold"].nunique() == expected
    assert n_folds({"plan": plan, "n_splits": 5, "n_repeats": 2}, 30) == expected
    if plan == "holdout":
        assert (folds["set"] == "test").sum() == 8  # 25 % of 30, rounded up


def test_fold_table_round_trip_keeps_text_ids(tmp_path: Path) -> None:
    folds = pd.DataFrame({"fold": [0, 0], "id": ["007", "010"], "set": ["train", "test"]})
    write_folds(folds, str(tmp_path / "f.tsv"))
    back = read_folds(str(tmp_path / "f.tsv"))
    assert list(back["id"]) == ["007", "010"]


# --- preprocessing: fitted on the training side only -------------------------------------------


def _fold(tmp_path: Path, **pre: object) -> tuple:
    exp = _exp(_table(tmp_path, minority=0.25), preprocess=pre)
    data = prepare_tabular(exp, "e")
    folds = make_folds(data.ids, data.y, exp["cv"], "classification", 0)
    index = fold_indices(folds, 0, data.ids)
    return data, index, exp


def test_scaler_statistics_come_from_training_rows_only(tmp_path: Path) -> None:
    data, index, exp = _fold(tmp_path)
    arrays, fitted, _ = preprocess_fold(data, index, exp["preprocess"], 0)
    scaler = fitted.features.named_transformers_["numeric"].named_steps["zscore"]
    train = data.features.iloc[index["train"]].to_numpy()
    np.testing.assert_allclose(scaler.mean_, train.mean(axis=0))
    np.testing.assert_allclose(arrays["train"].X.mean(axis=0), 0, atol=1e-5)
    # Changing test rows changes nothing that was fitted.
    shifted = data.table.copy()
    shifted.iloc[index["test"], :5] += 100.0
    data.table = shifted
    arrays2, _, _ = preprocess_fold(data, index, exp["preprocess"], 0)
    np.testing.assert_array_equal(arrays2["train"].X, arrays["train"].X)
    assert not np.allclose(arrays2["test"].X, arrays["test"].X)


def test_smote_touches_the_training_side_only(tmp_path: Path) -> None:
    data, index, exp = _fold(tmp_path, smote=True)
    plain, _, _ = preprocess_fold(data, index, {**exp["preprocess"], "smote": False}, 0)
    arrays, _, summary = preprocess_fold(data, index, exp["preprocess"], 0)
    for side in ("val", "test"):
        np.testing.assert_array_equal(arrays[side].X, plain[side].X)
        np.testing.assert_array_equal(arrays[side].ids, plain[side].ids)
    n_train = len(index["train"])
    np.testing.assert_array_equal(arrays["train"].X[:n_train], plain["train"].X)
    synthetic = arrays["train"].ids[n_train:]
    assert len(synthetic) == summary["n_smote_samples"] > 0
    assert all(i.startswith("smote_") for i in synthetic)
    assert not set(synthetic) & set(data.ids)
    after = summary["train_class_counts_after_smote"]
    assert after["case"] == after["control"]


def test_smote_adapts_k_and_refuses_single_sample_classes() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(23, 3)).astype(np.float32)
    y = np.array([0] * 20 + [1] * 3)
    _, y_res = apply_smote(x, y, k_neighbors=5, seed=0)  # k lowered to 2
    assert (y_res == 1).sum() == 20
    with pytest.raises(InputError, match="at least 2 training samples per class"):
        apply_smote(x[:21], y[:21], k_neighbors=5, seed=0)


def test_unseen_categories_and_imputation_use_training_rows(tmp_path: Path) -> None:
    frame = pd.DataFrame({
        "id": [f"s{i}" for i in range(12)],
        "tissue": ["liver", "lung"] * 5 + ["brain", "brain"],
        "x": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 100.0, 100.0],
        "label": ["a", "b"] * 6,
    })  # fmt: skip
    path = tmp_path / "cat.csv"
    frame.to_csv(path, index=False)
    exp = _exp(path, preprocess={"normalise": "none"})
    exp["data"]["categorical_columns"] = ["tissue"]
    data = prepare_tabular(exp, "e")
    index = {"train": np.arange(8), "val": np.arange(8, 10), "test": np.arange(10, 12)}
    arrays, fitted, _ = preprocess_fold(data, index, exp["preprocess"], 0)
    assert fitted.feature_names == ["x", "tissue_liver", "tissue_lung"]
    np.testing.assert_array_equal(arrays["test"].X[:, 1:], 0)  # "brain" never seen in training
    assert arrays["train"].X[2, 0] == np.median([1, 2, 4, 5, 6, 7, 8])  # training median


def test_top_k_keeps_the_most_variable_training_features(tmp_path: Path) -> None:
    data, index, exp = _fold(tmp_path, top_k_features=2, normalise="none")
    data.table["f3"] *= 10
    data.table["f1"] *= 5
    _, fitted, _ = preprocess_fold(data, index, exp["preprocess"], 0)
    assert fitted.feature_names == ["f1", "f3"]


def test_log1p_refuses_negative_values(tmp_path: Path) -> None:
    data, index, exp = _fold(tmp_path, normalise=["log1p"])
    with pytest.raises(InputError, match="non-negative"):
        preprocess_fold(data, index, exp["preprocess"], 0)


# --- metrics ----------------------------------------------------------------------------------


def test_classification_metrics_equal_scikit_learn() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    p1 = np.clip(y * 0.3 + rng.random(200) * 0.7, 0, 1)
    proba = np.column_stack([1 - p1, p1])
    out = classification_metrics(y, proba)
    pred = proba.argmax(axis=1)
    assert out["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert out["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert out["mcc"] == pytest.approx(skm.matthews_corrcoef(y, pred))
    assert out["auroc"] == pytest.approx(skm.roc_auc_score(y, p1))
    assert out["auprc"] == pytest.approx(skm.average_precision_score(y, p1))
    assert out["confusion_matrix"] == skm.confusion_matrix(y, pred).tolist()


def test_multiclass_metrics_are_macro_and_undefined_auc_is_nan() -> None:
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 150)
    proba = rng.dirichlet([1, 1, 1], 150) + np.eye(3)[y] * 0.5
    proba /= proba.sum(axis=1, keepdims=True)
    out = classification_metrics(y, proba)
    assert out["f1"] == pytest.approx(skm.f1_score(y, proba.argmax(1), average="macro"))
    assert out["auroc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"))
    single = classification_metrics(np.zeros(5, int), np.tile([0.8, 0.2], (5, 1)))
    assert np.isnan(single["auroc"])
    assert single["accuracy"] == 1.0


def test_regression_metrics_per_target_and_averaged() -> None:
    rng = np.random.default_rng(5)
    y = rng.normal(size=(60, 2))
    pred = y + rng.normal(scale=0.5, size=(60, 2))
    out = regression_metrics(y, pred, ["g1", "g2"])
    r2 = [skm.r2_score(y[:, j], pred[:, j]) for j in range(2)]
    assert out["per_target"]["g2"]["r2"] == pytest.approx(r2[1])
    assert out["r2"] == pytest.approx(np.mean(r2))
    assert out["pearson"] == pytest.approx(
        np.mean([stats.pearsonr(y[:, j], pred[:, j]).statistic for j in range(2)])
    )
    assert out["mse"] == pytest.approx(skm.mean_squared_error(y, pred))


def test_confidence_interval_is_the_student_t_interval() -> None:
    values = [0.8, 0.85, 0.9, 0.82, 0.88]
    low, high = confidence_interval(values)
    ref = stats.t.interval(0.95, 4, loc=np.mean(values), scale=stats.sem(values))
    assert (low, high) == pytest.approx(ref)
    table = summarise_folds(
        {f: {"mlp": {"accuracy": v}} for f, v in enumerate(values)}, ["accuracy"]
    )
    row = table.iloc[0]
    assert row["mean"] == pytest.approx(np.mean(values))
    assert row["sd"] == pytest.approx(np.std(values, ddof=1))
    assert row["ci95_high"] <= 1.0


# --- training ---------------------------------------------------------------------------------


def _train(tmp_path: Path, seed: int, name: str) -> tuple[np.ndarray, str]:
    from dlpipe.train import fit, predict

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    exp = _exp(tmp_path / "x.csv", seed=seed, model={"name": "mlp", "hidden_layers": [16]},
               training={"max_epochs": 40, "patience": 8, "progress_bar": False,
                         "device": "cpu", "batch_size": 32, "learning_rate": 0.01})  # fmt: skip
    model = fit((x[:120], y[:120]), (x[120:160], y[120:160]), exp, 2,
                tmp_path / f"{name}.ckpt", tmp_path / f"{name}.tsv")  # fmt: skip
    scores = predict(model, x[160:])
    assert (scores.argmax(axis=1) == y[160:]).mean() > 0.9
    return scores, (tmp_path / f"{name}.tsv").read_text()


def test_training_is_bit_identical_under_a_seed(tmp_path: Path) -> None:
    first, history = _train(tmp_path, 0, "a")
    second, history2 = _train(tmp_path, 0, "b")
    other, _ = _train(tmp_path, 1, "c")
    np.testing.assert_array_equal(first, second)
    assert history == history2
    assert not np.array_equal(first, other)
    table = pd.read_csv(tmp_path / "a.tsv", sep="\t")
    assert list(table.columns) == ["epoch", "train_loss", "val_loss"]
    assert table["val_loss"].iloc[-1] < table["val_loss"].iloc[0]
