"""Fold-wise preprocessing: everything is fitted on training rows, SMOTE touches training only."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dlpipe.datasets import TabularDataset
from dlpipe.errors import ConfigError, InputError
from dlpipe.modalities.tabular import prepare_tabular
from dlpipe.preprocess import FoldArrays, apply_smote, preprocess_fold
from dlpipe.split import fold_indices, make_folds
from dlpipe.tasks import get_task

Prepared = tuple[TabularDataset, dict[str, np.ndarray], dict[str, Any]]

#: A fixed, hand-made fold of the 120-row fixture tables.
FIXED = {"train": np.arange(0, 80), "val": np.arange(80, 100), "test": np.arange(100, 120)}


def _prepare(
    make_exp: Callable[..., dict[str, Any]], path: Path, index: dict | None = None, **sections: Any
) -> Prepared:
    exp = make_exp(path, **sections)
    data = prepare_tabular(exp, "e")
    if index is None:
        labels = get_task(exp["task"]).stratify(data.y)
        folds = make_folds(data.ids, exp["cv"], exp["seed"], labels=labels)
        index = fold_indices(folds, 0, data.ids)
    return data, index, exp


def _run(prepared: Prepared, **pre: Any) -> tuple[dict[str, FoldArrays], Any, dict[str, Any]]:
    data, index, exp = prepared
    return preprocess_fold(data, index, {**exp["preprocess"], **pre}, exp["seed"])


def _scaler(fitted: Any) -> Any:
    return fitted.features.named_transformers_["numeric"].named_steps["zscore"]


# --- z-score: statistics of the training side only --------------------------------------------


def test_zscore_statistics_come_from_training_rows(make_exp: Any, binary_csv: Path) -> None:
    prepared = _prepare(make_exp, binary_csv)
    data, index, _ = prepared
    # Shift the test rows far away: a scaler fitted on all rows would move with them.
    data.table.iloc[index["test"], :6] += 50.0
    arrays, fitted, summary = _run(prepared)
    raw = data.features.to_numpy()
    train_raw = raw[index["train"]]
    scaler = _scaler(fitted)
    np.testing.assert_allclose(scaler.mean_, train_raw.mean(axis=0))
    np.testing.assert_allclose(scaler.scale_, train_raw.std(axis=0))
    np.testing.assert_allclose(arrays["train"].X.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(arrays["train"].X.std(axis=0), 1.0, atol=1e-4)
    expected_test = (raw[index["test"]] - train_raw.mean(axis=0)) / train_raw.std(axis=0)
    np.testing.assert_allclose(arrays["test"].X, expected_test, rtol=1e-5, atol=1e-5)
    assert (arrays["test"].X.mean(axis=0) > 10).all()  # not re-centred on the test rows
    assert arrays["train"].X.dtype == np.float32
    assert fitted.feature_names == [f"f{i}" for i in range(6)]
    assert summary["n_train"] == len(index["train"])
    assert summary["n_test"] == len(index["test"]) == 24
    assert summary["n_input_features"] == summary["n_model_features"] == 6
    assert summary["train_class_counts"] == {
        "case": int((data.y[index["train"]] == 0).sum()),
        "control": int((data.y[index["train"]] == 1).sum()),
    }


def test_changing_test_rows_changes_nothing_fitted(make_exp: Any, binary_csv: Path) -> None:
    prepared = _prepare(make_exp, binary_csv)
    data, index, _ = prepared
    before, fitted_before, _ = _run(prepared)
    data.table.iloc[index["test"], :6] = np.random.default_rng(9).normal(100, 30, (24, 6))
    data.table.iloc[index["val"], :6] *= -3.0
    after, fitted_after, _ = _run(prepared)
    np.testing.assert_array_equal(after["train"].X, before["train"].X)
    np.testing.assert_array_equal(after["train"].y, before["train"].y)
    np.testing.assert_array_equal(_scaler(fitted_after).mean_, _scaler(fitted_before).mean_)
    np.testing.assert_array_equal(_scaler(fitted_after).scale_, _scaler(fitted_before).scale_)
    assert not np.allclose(after["test"].X, before["test"].X)
    assert not np.allclose(after["val"].X, before["val"].X)


def test_fitted_preprocessor_transforms_new_rows_like_the_test_side(
    make_exp: Any, binary_csv: Path
) -> None:
    prepared = _prepare(make_exp, binary_csv)
    data, index, _ = prepared
    arrays, fitted, _ = _run(prepared)
    assert fitted.input_columns == [f"f{i}" for i in range(6)]
    new = data.table.iloc[index["test"]].copy()
    np.testing.assert_array_equal(fitted.transform(new), arrays["test"].X)
    np.testing.assert_array_equal(arrays["test"].ids, data.ids[index["test"]])
    np.testing.assert_array_equal(arrays["test"].y, data.y[index["test"]])


# --- SMOTE: training side only -------------------------------------------------------------------


def test_smote_adds_rows_to_training_side_only(make_exp: Any, imbalanced_csv: Path) -> None:
    prepared = _prepare(make_exp, imbalanced_csv)
    data, index, _ = prepared
    plain, _, _ = _run(prepared, smote=False)
    smoted, _, summary = _run(prepared, smote=True)
    for side in ("val", "test"):
        np.testing.assert_array_equal(smoted[side].X, plain[side].X)
        np.testing.assert_array_equal(smoted[side].y, plain[side].y)
        np.testing.assert_array_equal(smoted[side].ids, plain[side].ids)
    n_train = len(index["train"])
    np.testing.assert_array_equal(smoted["train"].X[:n_train], plain["train"].X)
    np.testing.assert_array_equal(smoted["train"].ids[:n_train], data.ids[index["train"]])
    synthetic = smoted["train"].ids[n_train:]
    before = summary["train_class_counts"]
    assert before["control"] > 3 * before["case"]
    assert summary["n_smote_samples"] == before["control"] - before["case"] == len(synthetic)
    assert synthetic.tolist() == [f"smote_{i}" for i in range(len(synthetic))]
    assert not set(synthetic) & set(data.ids)
    assert not set(smoted["train"].ids) & set(data.ids[index["test"]])
    assert not set(smoted["train"].ids) & set(data.ids[index["val"]])
    counts = np.bincount(smoted["train"].y)
    assert counts[0] == counts[1] == before["control"]
    assert summary["train_class_counts_after_smote"] == {
        "case": before["control"],
        "control": before["control"],
    }
    # Synthetic rows are new minority points, not copies of validation or test rows.
    held_out = np.vstack([plain["val"].X, plain["test"].X])
    distance = np.abs(smoted["train"].X[n_train:, None, :] - held_out[None]).sum(axis=2)
    assert distance.min() > 1e-6


def test_smote_is_reproducible_under_a_seed() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 4)).astype(np.float32)
    y = np.r_[np.zeros(24, int), np.ones(6, int)]
    a = apply_smote(x, y, 5, seed=0)
    b = apply_smote(x, y, 5, seed=0)
    c = apply_smote(x, y, 5, seed=1)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])
    np.testing.assert_array_equal(a[1], np.r_[y, np.ones(18, int)])


def test_smote_refuses_a_class_with_one_training_sample() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(21, 3)).astype(np.float32)
    y = np.r_[np.zeros(20, int), [1]]
    with pytest.raises(InputError, match="class code 1 has 1 on the training side"):
        apply_smote(x, y, k_neighbors=5, seed=0)


def test_smote_lowers_k_for_a_class_of_three() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(23, 3)).astype(np.float32)
    y = np.r_[np.zeros(20, int), np.ones(3, int)]
    x_res, y_res = apply_smote(x, y, k_neighbors=5, seed=0)  # k=5 > 2 neighbours available
    assert x_res.shape == (40, 3)
    assert np.bincount(y_res).tolist() == [20, 20]
    np.testing.assert_array_equal(x_res[:23], x)
    # Each synthetic point lies on a segment between two of the three minority points.
    minority = x[20:].astype(np.float64)
    for point in x_res[23:].astype(np.float64):
        on_segment = False
        for i in range(3):
            for j in range(3):
                if i == j:
                    continue
                d = minority[j] - minority[i]
                lam = float(np.dot(point - minority[i], d) / np.dot(d, d))
                if -1e-5 <= lam <= 1 + 1e-5 and np.allclose(
                    minority[i] + lam * d, point, atol=1e-5
                ):
                    on_segment = True
        assert on_segment


# --- categorical columns and imputation ---------------------------------------------------------


def test_unseen_category_gives_an_all_zero_row(make_exp: Any, categorical_csv: Path) -> None:
    prepared = _prepare(
        make_exp,
        categorical_csv,
        index=FIXED,
        data={"categorical_columns": ["tissue"]},
        preprocess={"normalise": "none"},
    )
    data, index, _ = prepared
    data.table.iloc[index["test"][:5], data.table.columns.get_loc("tissue")] = "brain"
    arrays, fitted, summary = _run(prepared)
    assert fitted.feature_names[6:] == ["tissue_kidney", "tissue_liver", "tissue_lung"]
    assert summary["n_model_features"] == 9
    onehot = arrays["test"].X[:, 6:]
    np.testing.assert_array_equal(onehot[:5], 0.0)  # "brain" was never seen in training
    np.testing.assert_array_equal(onehot[5:].sum(axis=1), 1.0)
    tissue = data.table["tissue"].to_numpy()[index["test"][5:]]
    chosen = np.array(["kidney", "liver", "lung"])[onehot[5:].argmax(axis=1)]
    np.testing.assert_array_equal(chosen, tissue)


def test_imputation_uses_the_training_median(make_exp: Any, categorical_csv: Path) -> None:
    index = {"train": np.arange(0, 80), "val": np.arange(80, 100), "test": np.r_[17, 100:119]}
    index["train"] = index["train"][index["train"] != 17]
    prepared = _prepare(
        make_exp,
        categorical_csv,
        index=index,
        data={"categorical_columns": ["tissue"]},
        preprocess={"normalise": "none"},
    )
    data, _, _ = prepared
    # Outliers on the val/test side would move a median fitted on all rows.
    data.table.iloc[index["test"][1:], 1] = 1e6
    arrays, fitted, _ = _run(prepared)
    raw = data.features[[f"f{i}" for i in range(6)]].to_numpy()
    train_median = np.nanmedian(raw[index["train"]], axis=0)
    imputer = fitted.features.named_transformers_["numeric"].named_steps["impute"]
    np.testing.assert_allclose(imputer.statistics_, train_median)
    # Row 3 (train) and row 17 (first test row) miss f0; row 40 (train) misses f4.
    position_3 = int(np.flatnonzero(index["train"] == 3)[0])
    position_40 = int(np.flatnonzero(index["train"] == 40)[0])
    assert arrays["train"].X[position_3, 0] == pytest.approx(train_median[0], rel=1e-6)
    assert arrays["train"].X[position_40, 4] == pytest.approx(train_median[4], rel=1e-6)
    assert arrays["test"].X[0, 0] == pytest.approx(train_median[0], rel=1e-6)
    assert not np.isnan(arrays["train"].X).any()
    assert not np.isnan(arrays["test"].X).any()


def _with_missing_tissue(make_exp: Any, categorical_csv: Path) -> Prepared:
    frame = pd.read_csv(categorical_csv, dtype={"id": str})
    frame.loc[[0, 5], "tissue"] = np.nan  # row 0 would be liver, row 5 kidney
    frame.to_csv(categorical_csv, index=False)
    return _prepare(
        make_exp,
        categorical_csv,
        index=FIXED,
        data={"categorical_columns": ["tissue"]},
        preprocess={"normalise": "none"},
    )


def test_missing_category_is_imputed_with_the_most_frequent(
    make_exp: Any, categorical_csv: Path
) -> None:
    prepared = _with_missing_tissue(make_exp, categorical_csv)
    arrays, fitted, _ = _run(prepared)
    assert fitted.feature_names[6:] == ["tissue_kidney", "tissue_liver", "tissue_lung"]
    # On rows 0..79 without rows 0 and 5 the most frequent tissue is lung (27 vs 26, 25).
    np.testing.assert_array_equal(arrays["train"].X[[0, 5], 6:], [[0, 0, 1], [0, 0, 1]])


def test_missing_category_after_dataset_round_trip_is_imputed(
    make_exp: Any, categorical_csv: Path, tmp_path: Path
) -> None:
    data, index, exp = _with_missing_tissue(make_exp, categorical_csv)
    data.save(tmp_path / "d.parquet", tmp_path / "d.json")
    loaded = TabularDataset.load(tmp_path / "d.parquet", tmp_path / "d.json")
    arrays, fitted, _ = preprocess_fold(loaded, index, exp["preprocess"], 0)
    assert fitted.feature_names[6:] == ["tissue_kidney", "tissue_liver", "tissue_lung"]
    np.testing.assert_array_equal(arrays["train"].X[[0, 5], 6:], [[0, 0, 1], [0, 0, 1]])


def test_smote_with_a_categorical_column_runs(make_exp: Any, categorical_csv: Path) -> None:
    prepared = _prepare(
        make_exp, categorical_csv, index=FIXED, data={"categorical_columns": ["tissue"]}
    )
    data, index, _ = prepared
    data.table.iloc[index["train"][:30], data.table.columns.get_loc("y")] = "control"
    arrays, _, summary = _run(prepared, smote=True)
    counts = summary["train_class_counts_after_smote"]
    assert counts["case"] == counts["control"]
    assert set(np.unique(arrays["train"].X[:, 6:])) <= {0.0, 1.0}


def test_smote_synthetic_rows_have_exactly_one_category(
    make_exp: Any, categorical_csv: Path
) -> None:
    prepared = _prepare(
        make_exp, categorical_csv, index=FIXED, data={"categorical_columns": ["tissue"]}
    )
    data, index, _ = prepared
    data.table.iloc[index["train"][:30], data.table.columns.get_loc("y")] = "control"
    arrays, _, _ = _run(prepared, smote=True)
    np.testing.assert_array_equal(arrays["train"].X[80:, 6:].sum(axis=1), 1.0)


# --- feature selection and normalisers ----------------------------------------------------------


def test_top_k_keeps_the_most_variable_training_features(make_exp: Any, binary_csv: Path) -> None:
    prepared = _prepare(
        make_exp, binary_csv, index=FIXED, preprocess={"top_k_features": 2, "normalise": "none"}
    )
    data, index, _ = prepared
    data.table.iloc[index["train"], 3] *= 10.0  # f3: most variable in training
    data.table.iloc[index["train"], 5] *= 5.0  # f5: second
    data.table.iloc[index["test"], 1] *= 1000.0  # f1: huge variance on the test side only
    arrays, fitted, summary = _run(prepared)
    assert fitted.feature_names == ["f3", "f5"]
    assert summary["n_model_features"] == 2
    raw = data.features.to_numpy(dtype=np.float32)
    np.testing.assert_array_equal(arrays["train"].X, raw[index["train"]][:, [3, 5]])
    np.testing.assert_array_equal(arrays["test"].X, raw[index["test"]][:, [3, 5]])


def test_variance_threshold_drops_constant_training_features(
    make_exp: Any, binary_csv: Path
) -> None:
    prepared = _prepare(make_exp, binary_csv, index=FIXED, preprocess={"normalise": "none"})
    data, index, _ = prepared
    data.table.iloc[index["train"], 2] = 4.0  # constant on the training side only
    _, fitted, _ = _run(prepared)
    assert fitted.feature_names == ["f0", "f1", "f3", "f4", "f5"]


def test_variance_threshold_removing_every_feature_is_an_input_error(
    make_exp: Any, binary_csv: Path
) -> None:
    prepared = _prepare(make_exp, binary_csv, index=FIXED, preprocess={"variance_threshold": 50.0})
    with pytest.raises(InputError, match=r"preprocess\.variance_threshold"):
        _run(prepared)


def test_repeated_normaliser_is_a_config_error(make_exp: Any, binary_csv: Path) -> None:
    with pytest.raises(ConfigError, match=r"preprocess\.normalise"):
        make_exp(binary_csv, preprocess={"normalise": ["zscore", "zscore"]})


def test_log1p_refuses_negative_training_data(make_exp: Any, binary_csv: Path) -> None:
    prepared = _prepare(make_exp, binary_csv, index=FIXED, preprocess={"normalise": ["log1p"]})
    with pytest.raises(InputError, match=r"'log1p' needs non-negative values .* use normalise"):
        _run(prepared)


def test_log1p_transforms_non_negative_data(make_exp: Any, binary_csv: Path) -> None:
    prepared = _prepare(make_exp, binary_csv, index=FIXED, preprocess={"normalise": ["log1p"]})
    data, index, _ = prepared
    data.table.iloc[:, :6] = data.table.iloc[:, :6].abs()
    arrays, _, _ = _run(prepared)
    expected = np.log1p(data.features.to_numpy()[index["test"]])
    np.testing.assert_allclose(arrays["test"].X, expected, rtol=1e-6)


def _counts_csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(4)
    counts = rng.poisson(rng.uniform(1, 200, size=8), size=(120, 8)) * rng.integers(1, 5, (120, 1))
    frame = pd.DataFrame(counts, columns=[f"gene{i}" for i in range(8)])
    frame.insert(0, "id", [f"c{i}" for i in range(120)])
    frame["y"] = ["a", "b"] * 60
    path = tmp_path / "counts.csv"
    frame.to_csv(path, index=False)
    return path


def test_cpm_log1p_rows_sum_to_a_million(make_exp: Any, tmp_path: Path) -> None:
    prepared = _prepare(
        make_exp, _counts_csv(tmp_path), index=FIXED, preprocess={"normalise": ["cpm_log1p"]}
    )
    data, index, _ = prepared
    arrays, _, _ = _run(prepared)
    for side in ("train", "val", "test"):
        totals = np.expm1(arrays[side].X.astype(np.float64)).sum(axis=1)
        np.testing.assert_allclose(totals, 1e6, rtol=1e-4)
    raw = data.features.to_numpy()[index["test"][0]]
    np.testing.assert_allclose(arrays["test"].X[0], np.log1p(raw / raw.sum() * 1e6), rtol=1e-6)


def test_cpm_log1p_then_zscore_is_centred_on_training_rows(make_exp: Any, tmp_path: Path) -> None:
    prepared = _prepare(
        make_exp,
        _counts_csv(tmp_path),
        index=FIXED,
        preprocess={"normalise": ["cpm_log1p", "zscore"]},
    )
    arrays, _, _ = _run(prepared)
    np.testing.assert_allclose(arrays["train"].X.mean(axis=0), 0.0, atol=1e-5)
    assert np.abs(arrays["test"].X.mean(axis=0)).max() > 1e-3


def test_regression_targets_are_scaled_with_training_statistics(
    make_exp: Any, regression_csv: Path
) -> None:
    index = {"train": np.arange(0, 70), "val": np.arange(70, 85), "test": np.arange(85, 100)}
    prepared = _prepare(make_exp, regression_csv, task="regression", index=index)
    data, _, _ = prepared
    arrays, fitted, summary = _run(prepared)
    assert "train_class_counts" not in summary
    y_train = data.y[index["train"]]
    np.testing.assert_allclose(fitted.target_mean, y_train.mean(axis=0))
    np.testing.assert_allclose(fitted.target_scale, y_train.std(axis=0))
    scaled = fitted.scale_targets(y_train)
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(fitted.unscale_targets(scaled), y_train, rtol=1e-5)
    np.testing.assert_array_equal(arrays["test"].y, data.y[index["test"]])  # stored unscaled
    _, unscaled, _ = _run(prepared, scale_targets=False)
    assert unscaled.target_mean is None
    np.testing.assert_array_equal(unscaled.scale_targets(y_train), y_train.astype(np.float32))


# --- FoldArrays ---------------------------------------------------------------------------------


def test_fold_arrays_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arrays = FoldArrays(
        X=rng.normal(size=(5, 3)).astype(np.float32),
        y=np.array([0, 1, 1, 0, 2]),
        ids=np.array(["007", "010", "1e3", "smote_0", "x"], dtype=object),
    )
    arrays.save(tmp_path / "side.npz")
    back = FoldArrays.load(tmp_path / "side.npz")
    np.testing.assert_array_equal(back.X, arrays.X)
    assert back.X.dtype == np.float32
    np.testing.assert_array_equal(back.y, arrays.y)
    assert back.y.dtype == arrays.y.dtype
    assert back.ids.tolist() == ["007", "010", "1e3", "smote_0", "x"]
    regression = FoldArrays(X=arrays.X, y=rng.normal(size=(5, 2)), ids=np.array(list("abcde")))
    regression.save(tmp_path / "reg.npz")
    np.testing.assert_array_equal(FoldArrays.load(tmp_path / "reg.npz").y, regression.y)
