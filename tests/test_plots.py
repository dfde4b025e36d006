"""Performance figures: the numbers in their legends agree with the metrics table."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from dlpipe.metrics import classification_metrics
from dlpipe.plots import interpretation, performance

CLASSES = ["B", "NK", "T"]


def _classification_oof(seed: int, classes: list[str], n: int = 240) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for learner, signal in (("mlp", 1.5), ("logistic_regression", 0.5)):
        y = rng.integers(0, len(classes), n)
        proba = rng.dirichlet(np.ones(len(classes)), n)
        proba[np.arange(n), y] += signal * rng.random(n)
        proba /= proba.sum(axis=1, keepdims=True)
        frame = pd.DataFrame(
            {
                "learner": learner,
                "fold": np.arange(n) % 3,
                "y_true": np.asarray(classes)[y],
                "y_pred": np.asarray(classes)[proba.argmax(axis=1)],
            }
        )
        for j, cls in enumerate(classes):
            frame[f"prob_{cls}"] = proba[:, j]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def test_legend_auc_per_class_averages_to_the_tables_macro_auroc() -> None:
    oof = _classification_oof(0, CLASSES)
    panels = performance.one_vs_rest_panels(oof, CLASSES, multilabel=False)
    assert [title for title, _ in panels] == ["B vs rest", "NK vs rest", "T vs rest"]
    scores = performance.panel_scores(panels)
    for learner, rows in oof.groupby("learner"):
        codes = pd.Categorical(rows["y_true"], categories=CLASSES).codes
        table = classification_metrics(codes, rows[[f"prob_{c}" for c in CLASSES]].to_numpy())
        per_class = [scores[title][learner] for title, _ in panels]
        assert np.mean([auc for auc, _ in per_class]) == pytest.approx(table["auroc"])
        assert np.mean([ap for _, ap in per_class]) == pytest.approx(table["auprc"])


def test_binary_panel_is_the_positive_class_and_matches_the_table() -> None:
    oof = _classification_oof(1, ["neg", "pos"])
    panels = performance.one_vs_rest_panels(oof, ["neg", "pos"], multilabel=False)
    assert [title for title, _ in panels] == ["pos vs neg"]
    rows = oof[oof["learner"] == "mlp"]
    codes = (rows["y_true"] == "pos").to_numpy().astype(int)
    table = classification_metrics(codes, rows[["prob_neg", "prob_pos"]].to_numpy())
    auc, ap = performance.panel_scores(panels)["pos vs neg"]["mlp"]
    assert auc == pytest.approx(table["auroc"])
    assert ap == pytest.approx(table["auprc"])


def test_a_panel_with_one_class_scores_nan_and_still_draws(tmp_path: Path) -> None:
    oof = _classification_oof(2, CLASSES)
    oof.loc[oof["learner"] == "mlp", "y_true"] = "B"
    scores = performance.panel_scores(performance.one_vs_rest_panels(oof, CLASSES, False))
    assert np.isnan(scores["NK vs rest"]["mlp"][0])
    assert np.isfinite(scores["NK vs rest"]["logistic_regression"][0])
    performance.roc_pr_curves(oof, CLASSES, tmp_path / "roc.png")
    assert mpimg.imread(tmp_path / "roc.png").shape[1] <= 100 * performance.MAX_WIDTH


def test_shown_targets_are_the_best_and_worst_with_nan_last() -> None:
    r2 = {f"g{i}": i / 10 for i in range(10)}
    r2["g3"] = float("nan")
    best, worst = performance.shown_targets(r2, n_best=2, n_worst=3)
    assert best == ["g9", "g8"]
    assert worst == ["g1", "g0", "g3"]
    few = {"a": 0.1, "b": 0.9}
    assert performance.shown_targets(few, 2, 2) == (["a", "b"], [])


def test_figures_stay_within_the_page_width(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    targets = [f"gene{i}" for i in range(16)]
    frames = []
    for learner in ("mlp", "ridge_regression"):
        frame = pd.DataFrame({"learner": learner, "fold": np.arange(90) % 3})
        for i, target in enumerate(targets):
            truth = rng.normal(size=90)
            frame[f"true_{target}"] = truth
            frame[f"pred_{target}"] = truth * i / 16 + rng.normal(size=90)
        frames.append(frame)
    oof = pd.concat(frames, ignore_index=True)
    performance.regression_scatter(oof, targets, tmp_path / "scatter.png")
    per_target = {
        learner: {t: {"r2": float(rng.random())} for t in targets} for learner in ("a", "b")
    }
    performance.per_target_bars(per_target, tmp_path / "bars.png")
    table = pd.DataFrame(
        [
            {"output": t, "feature": f"f{k}", "ig": rng.random(), "ig_abs": rng.random(),
             "permutation": rng.random(), "permutation_sd": 0.01}
            for t in targets for k in range(12)
        ]
    )  # fmt: skip
    interpretation.feature_bars(table, categorical=False, top=10, path=tmp_path / "imp.png")
    performance.confusion_matrices(
        _classification_oof(3, [f"c{i}" for i in range(9)]),
        [f"c{i}" for i in range(9)],
        tmp_path / "confusion.png",
    )
    for name in ("scatter.png", "bars.png", "imp.png", "confusion.png"):
        height, width = mpimg.imread(tmp_path / name).shape[:2]
        assert width <= 100 * performance.MAX_WIDTH + 1, name
        assert height > 100
