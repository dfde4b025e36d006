"""Metrics equal scikit-learn / scipy on fixed inputs; fold summaries and confidence intervals."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn import metrics as skm

from dlpipe.metrics import (
    CLASSIFICATION_METRICS,
    classification_metrics,
    confidence_interval,
    metric_bounds,
    pooled_summary,
    regression_metrics,
    softmax,
    summarise_folds,
)
from dlpipe.tasks import get_task

# Ten samples, binary: probability of class 1 per sample (fixed by hand).
Y_BIN = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 0])
P1 = np.array([0.1, 0.4, 0.35, 0.8, 0.7, 0.9, 0.2, 0.65, 0.55, 0.3])
PROBA_BIN = np.column_stack([1 - P1, P1])


def test_binary_metrics_on_a_hand_made_example() -> None:
    out = classification_metrics(Y_BIN, PROBA_BIN)
    # Predictions: [0,0,0,1,1,1,0,1,1,0] -> TP 4, FN 1, FP 1, TN 4.
    assert out["n"] == 10
    assert out["accuracy"] == pytest.approx(0.8)
    assert out["precision"] == pytest.approx(0.8)
    assert out["recall"] == pytest.approx(0.8)
    assert out["f1"] == pytest.approx(0.8)
    assert out["mcc"] == pytest.approx(0.6)
    assert out["confusion_matrix"] == [[4, 1], [1, 4]]
    # 18 of the 25 (positive, negative) pairs are ranked correctly.
    assert out["auroc"] == pytest.approx(18 / 25)
    assert set(CLASSIFICATION_METRICS) <= set(out)


def test_binary_metrics_equal_scikit_learn() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    p1 = np.clip(0.3 * y + 0.7 * rng.random(200), 0, 1)
    proba = np.column_stack([1 - p1, p1])
    pred = (p1 > 0.5).astype(int)
    out = classification_metrics(y, proba)
    assert out["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert out["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert out["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert out["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert out["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert out["mcc"] == pytest.approx(skm.matthews_corrcoef(y, pred))
    assert out["auroc"] == pytest.approx(skm.roc_auc_score(y, p1))
    assert out["auprc"] == pytest.approx(skm.average_precision_score(y, p1))
    assert out["confusion_matrix"] == skm.confusion_matrix(y, pred).tolist()
    assert all(isinstance(out[m], float) for m in CLASSIFICATION_METRICS)


def test_three_class_metrics_are_macro_averages() -> None:
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 150)
    proba = rng.dirichlet([1, 1, 1], 150) + 0.5 * np.eye(3)[y]
    proba /= proba.sum(axis=1, keepdims=True)
    pred = proba.argmax(axis=1)
    out = classification_metrics(y, proba)
    assert out["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert out["precision"] == pytest.approx(skm.precision_score(y, pred, average="macro"))
    assert out["recall"] == pytest.approx(skm.recall_score(y, pred, average="macro"))
    assert out["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert out["mcc"] == pytest.approx(skm.matthews_corrcoef(y, pred))
    assert out["auroc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"))
    onehot = np.eye(3)[y]
    assert out["auprc"] == pytest.approx(
        skm.average_precision_score(onehot, proba, average="macro")
    )
    assert np.array(out["confusion_matrix"]).shape == (3, 3)
    assert np.array(out["confusion_matrix"]).sum() == 150


def test_class_absent_from_a_fold_counts_as_zero_in_the_macro_f1() -> None:
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.3, 0.6, 0.1]])
    out = classification_metrics(y, proba)
    pred = proba.argmax(axis=1)
    assert out["f1"] == pytest.approx(
        skm.f1_score(y, pred, labels=[0, 1, 2], average="macro", zero_division=0)
    )
    assert out["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [0, 0, 0]]
    # auROC averages the classes that are present with both outcomes (0 and 1).
    expected = np.mean([skm.roc_auc_score(y == c, proba[:, c]) for c in (0, 1)])
    assert out["auroc"] == pytest.approx(expected)


def test_single_class_fold_gives_nan_auc_not_zero() -> None:
    out = classification_metrics(np.zeros(5, int), np.tile([0.8, 0.2], (5, 1)))
    assert math.isnan(out["auroc"])
    assert math.isnan(out["auprc"])
    assert out["accuracy"] == 1.0
    assert out["confusion_matrix"] == [[5, 0], [0, 0]]
    multi = classification_metrics(np.full(4, 2), np.tile([0.1, 0.2, 0.7], (4, 1)))
    assert math.isnan(multi["auroc"])
    assert multi["accuracy"] == 1.0


def test_softmax_rows_sum_to_one_and_is_stable() -> None:
    logits = np.array([[1.0, 2.0, 3.0], [1000.0, 1000.0, -1000.0]])
    out = softmax(logits)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    np.testing.assert_allclose(out[0], np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum())
    np.testing.assert_allclose(out[1], [0.5, 0.5, 0.0])


def test_regression_metrics_per_target_match_scikit_learn_and_scipy() -> None:
    rng = np.random.default_rng(5)
    y = rng.normal(size=(60, 2)) * [1.0, 10.0]
    pred = y + rng.normal(scale=[0.5, 2.0], size=(60, 2))
    out = regression_metrics(y, pred, ["g1", "g2"])
    assert out["n"] == 60
    assert list(out["per_target"]) == ["g1", "g2"]
    for j, name in enumerate(["g1", "g2"]):
        target = out["per_target"][name]
        assert target["r2"] == pytest.approx(skm.r2_score(y[:, j], pred[:, j]))
        assert target["pearson"] == pytest.approx(stats.pearsonr(y[:, j], pred[:, j])[0])
        assert target["mse"] == pytest.approx(skm.mean_squared_error(y[:, j], pred[:, j]))
        assert target["mae"] == pytest.approx(skm.mean_absolute_error(y[:, j], pred[:, j]))
    assert out["r2"] == pytest.approx(skm.r2_score(y, pred))  # uniform average over targets
    assert out["mse"] == pytest.approx(skm.mean_squared_error(y, pred))
    assert out["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert out["pearson"] == pytest.approx(
        np.mean([stats.pearsonr(y[:, j], pred[:, j])[0] for j in range(2)])
    )


def test_regression_metrics_of_a_single_target_vector() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    out = regression_metrics(y, np.array([1.5, 2.0, 2.5, 4.0]), ["t"])
    assert out["mse"] == pytest.approx(0.125)
    assert out["mae"] == pytest.approx(0.25)
    assert out["r2"] == pytest.approx(1 - 0.5 / 5.0)


def test_constant_prediction_or_target_gives_nan_not_an_error() -> None:
    y = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]])
    pred = np.array([[2.0, 4.0], [2.0, 5.0], [2.0, 6.0]])
    out = regression_metrics(y, pred, ["a", "b"])
    assert math.isnan(out["per_target"]["a"]["pearson"])  # constant prediction
    assert math.isnan(out["per_target"]["b"]["pearson"])  # constant target
    assert math.isnan(out["per_target"]["b"]["r2"])
    assert out["per_target"]["a"]["r2"] == pytest.approx(0.0)
    assert out["per_target"]["b"]["mse"] == pytest.approx(2 / 3)
    assert out["r2"] == pytest.approx(0.0)  # mean over the defined values only
    assert math.isnan(out["pearson"])  # undefined for every target


def test_target_means_skip_undefined_targets() -> None:
    y = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0], [4.0, 5.0]])
    pred = np.array([[1.2, 5.0], [1.9, 5.0], [3.3, 5.0], [3.8, 5.0]])
    out = regression_metrics(y, pred, ["a", "b"])
    assert out["pearson"] == pytest.approx(stats.pearsonr(y[:, 0], pred[:, 0])[0])
    assert out["r2"] == pytest.approx(skm.r2_score(y[:, 0], pred[:, 0]))
    assert out["mse"] == pytest.approx(skm.mean_squared_error(y[:, 0], pred[:, 0]) / 2)


def test_confidence_interval_is_the_student_t_interval() -> None:
    values = [0.8, 0.85, 0.9, 0.82, 0.88]
    low, high = confidence_interval(values)
    ref = stats.t.interval(0.95, df=4, loc=np.mean(values), scale=stats.sem(values))
    assert low == pytest.approx(ref[0])
    assert high == pytest.approx(ref[1])
    low90, high90 = confidence_interval(values, level=0.9)
    ref90 = stats.t.interval(0.9, df=4, loc=np.mean(values), scale=stats.sem(values))
    assert (low90, high90) == pytest.approx(ref90)
    assert low < low90 < high90 < high


@pytest.mark.parametrize(
    ("metric", "values"),
    [
        ("accuracy", [0.935, 0.963, 0.960]),
        ("accuracy", [1.0, 0.98, 0.99]),  # a perfect fold
        ("auroc", [1.0, 1.0, 0.5]),
        ("ece", [0.017, 0.019, 0.002]),  # the t-interval would go below 0
        ("ece_calibrated", [0.0, 0.01, 0.03]),
        ("brier", [0.05, 0.03, 0.09]),
        ("mcc", [0.9, 0.99, -0.2]),
        ("pearson", [0.99, 0.95, 0.2]),
        ("nll", [0.24, 0.14, 0.0]),
        ("mse", [0.1, 3.0, 0.5]),
        ("r2", [0.9, 0.5, -0.2]),
    ],
)
def test_bounded_intervals_stay_in_the_metrics_range(metric: str, values: list[float]) -> None:
    low_bound, high_bound = metric_bounds(metric)
    low, high = confidence_interval(values, bounds=(low_bound, high_bound))
    assert low_bound <= low <= high <= high_bound
    # The plain t-interval leaves the range in several of these cases; this one never does, and
    # it is the t-interval of the transformed values mapped back.
    if np.isfinite(low_bound) and np.isfinite(high_bound):
        u = (np.array(values) - low_bound) / (high_bound - low_bound)
        if ((u > 0) & (u < 1)).all():
            z = np.log(u / (1 - u))
            ref = stats.t.interval(0.95, df=len(z) - 1, loc=z.mean(), scale=stats.sem(z))
            expect = low_bound + (high_bound - low_bound) / (1 + np.exp(-np.array(ref)))
            assert (low, high) == pytest.approx(tuple(expect))


def test_bounded_interval_edge_cases() -> None:
    # Every fold perfect: no spread, the interval is the value.
    assert confidence_interval([1.0, 1.0, 1.0], bounds=(0.0, 1.0)) == (1.0, 1.0)
    # A perfect fold is placed half the next fold's distance inside the bound: [1, .98, .99]
    # behaves as [.995, .98, .99] on the logit scale.
    assert confidence_interval([1.0, 0.98, 0.99], bounds=(0.0, 1.0)) == pytest.approx(
        confidence_interval([0.995, 0.98, 0.99], bounds=(0.0, 1.0)))  # fmt: skip
    # Unknown metrics keep the plain t-interval.
    assert metric_bounds("something") == (-np.inf, np.inf)
    assert metric_bounds("nll_calibrated") == (0.0, np.inf)


def test_confidence_interval_ignores_nan_and_needs_two_values() -> None:
    with_nan = confidence_interval([0.8, float("nan"), 0.9, None, 0.85])
    assert with_nan == pytest.approx(confidence_interval([0.8, 0.9, 0.85]))
    assert all(math.isnan(v) for v in confidence_interval([0.7]))
    assert all(math.isnan(v) for v in confidence_interval([]))


def test_summarise_folds_mean_sd_ci_and_pooled() -> None:
    per_fold = {
        0: {"mlp": {"accuracy": 0.8, "auroc": 0.90}, "logreg": {"accuracy": 0.70, "auroc": 0.8}},
        1: {"mlp": {"accuracy": 0.9, "auroc": float("nan")}, "logreg": {"accuracy": 0.75}},
        2: {"mlp": {"accuracy": 1.0, "auroc": 0.96}, "logreg": {"accuracy": 0.80, "auroc": 0.9}},
    }
    pooled = {"mlp": {"accuracy": 0.91, "auroc": 0.93}}
    table = summarise_folds(per_fold, ["accuracy", "auroc"], pooled=pooled)
    assert table[["learner", "metric"]].values.tolist() == [
        ["mlp", "accuracy"], ["mlp", "auroc"], ["logreg", "accuracy"], ["logreg", "auroc"],
    ]  # fmt: skip
    assert list(table.columns) == [
        "learner", "metric", "fold_0", "fold_1", "fold_2", "mean", "sd", "ci95_low",
        "ci95_high", "folds_used", "pooled", "summary",
    ]  # fmt: skip
    mlp_acc = table.iloc[0]
    assert mlp_acc["mean"] == pytest.approx(0.9)
    assert mlp_acc["sd"] == pytest.approx(0.1)
    low, high = confidence_interval([0.8, 0.9, 1.0], bounds=(0.0, 1.0))
    assert (mlp_acc["ci95_low"], mlp_acc["ci95_high"]) == pytest.approx((low, high))
    assert 0.0 < low < 0.9 < high < 1.0  # on the logit scale: inside the range
    assert mlp_acc["pooled"] == 0.91
    mlp_auc = table.iloc[1]
    assert math.isnan(mlp_auc["fold_1"])
    assert mlp_auc["mean"] == pytest.approx(0.93)  # NaN folds left out, and counted
    assert (mlp_acc["folds_used"], mlp_auc["folds_used"]) == (3, 2)
    assert mlp_auc["sd"] == pytest.approx(np.std([0.9, 0.96], ddof=1))
    logreg_auc = table.iloc[3]
    assert math.isnan(logreg_auc["fold_1"])  # a metric missing from a fold is NaN
    assert logreg_auc["mean"] == pytest.approx(0.85)
    assert math.isnan(logreg_auc["pooled"])  # no pooled entry for this learner


def test_summarise_folds_learner_order_and_single_fold() -> None:
    per_fold = {0: {"a": {"mse": 2.0}, "b": {"mse": 3.0}}}
    table = summarise_folds(per_fold, ["mse"], learners=["b", "a"])
    assert table["learner"].tolist() == ["b", "a"]
    assert table["mean"].tolist() == [3.0, 2.0]
    assert table["sd"].isna().all()
    assert table["ci95_low"].isna().all()
    assert table["pooled"].isna().all()  # none given: the one fold is the summary
    assert (table["summary"] == "folds").all()


def test_a_one_class_fold_has_no_precision_recall_f1_or_mcc() -> None:
    # A leave-one-out fold: one row, one class. 0/1 by construction, so NaN, not a value.
    out = classification_metrics(np.array([0]), np.array([[0.7, 0.3]]))
    assert out["accuracy"] == 1.0
    for metric in ("precision", "recall", "f1", "mcc", "auroc", "auprc"):
        assert math.isnan(out[metric]), metric


@pytest.mark.parametrize("k", [2, 3])
def test_resampled_metrics_equal_the_reported_ones(k: int) -> None:
    task = get_task("classification")
    meta = {"classes": [f"c{i}" for i in range(k)]}
    rng = np.random.default_rng(k)
    y = rng.integers(0, k, 80)
    proba = rng.dirichlet(np.ones(k), 80)
    proba[np.arange(80), y] += 0.4
    proba = np.round(proba / proba.sum(axis=1, keepdims=True), 1)  # ties in the scores
    proba = proba / proba.sum(axis=1, keepdims=True)
    frame = task.prediction_table(np.arange(80), 0, "m", y, proba, meta, proba**2)
    statistic = task.metric_statistic(frame, meta)
    for rows in (np.arange(80), rng.integers(0, 80, 80), np.flatnonzero(y == 0)):
        fast, slow = statistic(rows), task.table_metrics(frame.iloc[rows], meta)
        for metric, value in fast.items():
            assert value == pytest.approx(slow[metric], nan_ok=True), metric


def test_pooled_summary_where_folds_cannot_be_summarised() -> None:
    assert pooled_summary([1.0, 0.0, 1.0], test_sizes=[1, 1, 1])  # leave-one-out
    assert pooled_summary([0.8])  # a holdout: one fold
    assert pooled_summary([0.8, np.nan, np.nan, np.nan])  # most folds without a value
    assert not pooled_summary([0.8, np.nan, 0.9])
    assert not pooled_summary([0.8, 0.9], test_sizes=[30, 30])


def _loo_run(n: int = 30, seed: int = 0) -> tuple[pd.DataFrame, dict, dict]:
    """Leave-one-out predictions of two learners: a good one and a coin."""
    task = get_task("classification")
    meta = {"classes": ["no", "yes"]}
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    good = np.clip(0.3 + 0.4 * y + rng.normal(scale=0.25, size=n), 0.01, 0.99)
    coin = rng.random(n)
    tables, per_fold = [], {}
    for fold in range(n):
        per_fold[fold] = {}
        for learner, p1 in (("mlp", good), ("logreg", coin)):
            proba = np.array([[1 - p1[fold], p1[fold]]])
            table = task.prediction_table(np.array([f"s{fold}"]), fold, learner,
                                          y[[fold]], proba, meta)  # fmt: skip
            per_fold[fold][learner] = task.table_metrics(table, meta)
            tables.append(table)
    oof = pd.concat(tables, ignore_index=True)
    return oof, per_fold, meta


def test_leave_one_out_summary_is_pooled_with_bounded_intervals() -> None:
    task = get_task("classification")
    oof, per_fold, meta = _loo_run()
    pooled = {lrn: task.table_metrics(rows, meta) for lrn, rows in oof.groupby("learner")}
    intervals = {lrn: task.pooled_intervals(rows, meta, 0) for lrn, rows in oof.groupby("learner")}
    table = summarise_folds(per_fold, task.metric_names, pooled, ["mlp", "logreg"], intervals)
    assert (table["summary"] == "pooled").all()  # every metric: one-row test sides
    assert table["mean"].isna().all()  # no mean ± sd of 0/1 or undefined fold values
    assert table["sd"].isna().all()
    auroc = table[(table["learner"] == "mlp") & (table["metric"] == "auroc")].iloc[0]
    assert auroc["folds_used"] == 0
    assert auroc["pooled"] == pytest.approx(pooled["mlp"]["auroc"])
    assert 0.5 < auroc["ci95_low"] < auroc["pooled"] <= auroc["ci95_high"] <= 1.0
    accuracy = table[(table["learner"] == "mlp") & (table["metric"] == "accuracy")].iloc[0]
    assert accuracy["folds_used"] == 30  # per-fold values kept where they exist
    for _, row in table[table["pooled"].notna()].iterrows():  # none calibrated here
        low, high = metric_bounds(row["metric"])
        assert low <= row["ci95_low"] <= row["ci95_high"] <= high, row["metric"]
        assert row["ci95_low"] <= row["pooled"] <= row["ci95_high"], row["metric"]
