"""Supervised feature selection for p ≫ n tables: fitted on the training side only, by rule."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_selection import f_classif

from dlpipe.errors import ConfigError
from dlpipe.io.fitted import load_fitted, save_fitted
from dlpipe.modalities.tabular import prepare_tabular
from dlpipe.models import P_MUCH_LARGER_MLP, fold_model
from dlpipe.preprocess import (
    P_MUCH_LARGER_RATIO,
    SELECT_MAX,
    SELECT_MIN,
    preprocess_fold,
    selection_plan,
)
from dlpipe.report.page import selection_text

#: A fixed fold of the 120-row wide table: 80 training rows.
FIXED = {"train": np.arange(0, 80), "val": np.arange(80, 100), "test": np.arange(100, 120)}
N_FEATURES = 900  # 11.25 per training row: p ≫ n for the auto rule


@pytest.fixture
def wide_csv(tmp_path: Path) -> Path:
    """120 rows × 900 noise features; ``g_train`` separates the classes on the training rows
    only, ``g_test`` on the test rows only (its class means are equal on the training rows).
    """
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 60)
    x = rng.normal(size=(120, N_FEATURES))
    frame = pd.DataFrame(x, columns=[f"p{i:03d}" for i in range(N_FEATURES)])
    train = FIXED["train"]
    frame["g_train"] = rng.normal(size=120)
    frame.loc[train, "g_train"] += 4.0 * y[train]
    # Training rows: the same values in both classes (F = 0 exactly); test rows: the label.
    frame["g_test"] = 10.0 * y
    frame.loc[train, "g_test"] = np.repeat(np.arange(40.0), 2)
    frame.insert(0, "id", [f"s{i:03d}" for i in range(120)])
    frame["y"] = np.where(y == 1, "case", "control")
    path = tmp_path / "wide.csv"
    frame.to_csv(path, index=False)
    return path


def _fold(make_exp: Callable[..., dict[str, Any]], path: Path, **pre: Any) -> tuple:
    exp = make_exp(path, preprocess=pre)
    data = prepare_tabular(exp, "e")
    arrays, fitted, summary = preprocess_fold(data, FIXED, exp["preprocess"], exp["seed"])
    return data, arrays, fitted, summary


def test_auto_selects_by_anova_on_the_training_side_only(make_exp: Any, wide_csv: Path) -> None:
    data, arrays, fitted, summary = _fold(make_exp, wide_csv, normalise="none")
    n_numeric = N_FEATURES + 2
    k = min(max(SELECT_MIN, len(FIXED["train"])), SELECT_MAX)
    assert summary["selection"]["method"] == "anova"
    assert (summary["selection"]["k"], summary["selection"]["of"]) == (k, n_numeric)
    assert summary["n_model_features"] == len(fitted.feature_names) == k
    assert "g_train" in fitted.feature_names
    # Informative only on the test side: never selected (F = 0 on the training rows).
    assert "g_test" not in fitted.feature_names
    # Exactly the k best F of the training rows, computed here independently.
    raw = data.features.to_numpy()
    scores, _ = f_classif(raw[FIXED["train"]], data.y[FIXED["train"]])
    best = set(np.asarray(data.feature_columns)[np.argsort(-scores)[:k]])
    assert set(fitted.feature_names) == best
    columns = [data.feature_columns.index(n) for n in fitted.feature_names]
    np.testing.assert_array_equal(arrays["test"].X, raw[FIXED["test"]][:, columns].astype("f4"))


def test_test_rows_cannot_change_the_selection(make_exp: Any, wide_csv: Path) -> None:
    data, before, fitted, _ = _fold(make_exp, wide_csv)
    # Make 30 more noise features perfect predictors on the test side: nothing fitted moves.
    signal = np.repeat(100.0 * data.y[FIXED["test"], None], 30, axis=1)
    data.table.iloc[FIXED["test"], :30] = signal
    exp = make_exp(wide_csv)
    after, refitted, _ = preprocess_fold(data, FIXED, exp["preprocess"], exp["seed"])
    assert refitted.feature_names == fitted.feature_names
    np.testing.assert_array_equal(after["train"].X, before["train"].X)


def test_predict_applies_the_fold_selection(make_exp: Any, wide_csv: Path, tmp_path: Path) -> None:
    data, arrays, fitted, summary = _fold(make_exp, wide_csv)
    save_fitted(fitted, tmp_path / "pre.skops")
    loaded = load_fitted(tmp_path / "pre.skops")  # the trusted types include the F scorer
    new = data.features.iloc[FIXED["test"]].copy()
    out = loaded.transform(new)
    assert out.shape == (len(FIXED["test"]), summary["selection"]["k"])
    np.testing.assert_array_equal(out, arrays["test"].X)
    assert loaded.feature_names == fitted.feature_names


def test_auto_leaves_tables_that_are_not_p_much_larger_than_n_unchanged(
    make_exp: Any, binary_csv: Path
) -> None:
    exp = make_exp(binary_csv)
    data = prepare_tabular(exp, "e")
    index = {"train": np.arange(0, 80), "val": np.arange(80, 100), "test": np.arange(100, 120)}
    auto = preprocess_fold(data, index, exp["preprocess"], 0)
    none = preprocess_fold(data, index, {**exp["preprocess"], "select": "none"}, 0)
    assert auto[2]["selection"]["method"] == "none"
    assert "not p ≫ n" in auto[2]["selection"]["reason"]
    assert "select" not in auto[1].features.named_transformers_["numeric"].named_steps
    for side in ("train", "val", "test"):
        np.testing.assert_array_equal(auto[0][side].X, none[0][side].X)


@pytest.mark.parametrize(
    ("select", "task", "n_numeric", "n_train", "k"),
    [
        ("auto", "classification", P_MUCH_LARGER_RATIO * 50, 50, 50),  # at the threshold
        ("auto", "classification", P_MUCH_LARGER_RATIO * 50 - 1, 50, None),  # just below
        ("auto", "classification", 12625, 75, 75),
        ("auto", "classification", 20000, 10, SELECT_MIN),  # floor
        ("auto", "classification", 50000, 1000, SELECT_MAX),  # ceiling
        ("auto", "regression", 12625, 75, None),  # no classes to rank by
        ("none", "classification", 12625, 75, None),
        ("anova", "classification", 30, 400, 30),  # forced, never more than there are
    ],
)
def test_selection_rule(select: str, task: str, n_numeric: int, n_train: int, k: Any) -> None:
    pre = {"select": select, "select_k": "auto", "top_k_features": None}
    assert selection_plan(pre, task, n_numeric, n_train).k == k


def test_select_k_and_top_k_bound_the_selection() -> None:
    pre = {"select": "auto", "select_k": 7, "top_k_features": None}
    assert selection_plan(pre, "classification", 5000, 40).k == 7
    # top_k_features comes first: 300 of 5000 for 40 rows is no longer p ≫ n.
    pre = {"select": "auto", "select_k": "auto", "top_k_features": 300}
    assert selection_plan(pre, "classification", 5000, 40).k is None


@pytest.mark.parametrize(
    ("pre", "match"),
    [
        ({"select": "lasso"}, r"preprocess\.select"),
        ({"select_k": 0}, r"preprocess\.select_k"),
        ({"select_k": "all"}, r"preprocess\.select_k"),
    ],
)
def test_bad_selection_settings_are_refused_naming_the_key(
    make_exp: Any, binary_csv: Path, pre: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        make_exp(binary_csv, preprocess=pre)


def test_anova_selection_of_a_regression_is_refused(make_exp: Any, regression_csv: Path) -> None:
    with pytest.raises(ConfigError, match=r"preprocess\.select: 'anova'.*regression"):
        make_exp(regression_csv, task="regression", preprocess={"select": "anova"})


def test_report_says_what_selection_did() -> None:
    plan = {"method": "anova", "k": 75, "of": 12625, "reason": "auto: p ≫ n"}
    text = selection_text([{"selection": plan}, {"selection": {**plan, "k": 76}}])
    assert text.startswith("Feature selection: 75–76 of 12625 numeric features kept per fold")
    assert "ANOVA F on the training side only, in every fold" in text
    assert "baseline reads the same selected features" in text
    none = {"method": "none", "k": None, "of": 30, "reason": "auto: not p ≫ n"}
    assert selection_text([{"selection": none}]) == "Feature selection: none (auto: not p ≫ n)."
    assert selection_text([{}]) == ""


# --- the MLP of a p ≫ n fold ----------------------------------------------------------------


def test_p_much_larger_folds_give_an_unset_mlp_the_narrow_defaults(
    make_exp: Any, wide_csv: Path, binary_csv: Path
) -> None:
    _, _, wide, summary = _fold(make_exp, wide_csv)
    assert summary["selection"]["p_much_larger"] is True
    mlp = {"name": "mlp"}
    assert fold_model(mlp, wide.selection) == {"name": "mlp", **P_MUCH_LARGER_MLP}
    # A key the config sets is kept; other families and other folds are left alone.
    assert fold_model({"name": "mlp", "dropout": 0.1}, wide.selection)["dropout"] == 0.1
    assert fold_model({"name": "cnn"}, wide.selection) == {"name": "cnn"}
    _, _, narrow, _ = _fold(make_exp, binary_csv)
    assert narrow.selection["p_much_larger"] is False
    assert fold_model(mlp, narrow.selection) == mlp
    assert fold_model(mlp, None) == mlp  # preprocessors written before the rule


def test_report_names_the_p_much_larger_mlp_defaults() -> None:
    plan = {"method": "anova", "k": 75, "of": 12625, "reason": "auto", "p_much_larger": True}
    text = selection_text([{"selection": plan}], {"name": "mlp", "dropout": 0.2})
    assert text.endswith(
        "The MLP took the p ≫ n defaults hidden_layers [32] (not set in the config)."
    )
    assert "MLP took" not in selection_text(
        [{"selection": plan}], {"name": "mlp", **P_MUCH_LARGER_MLP}
    )
