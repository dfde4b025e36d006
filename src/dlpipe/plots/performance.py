"""How well the models did: ROC/PR, confusion, reliability, training curves, scatter plots.

Also the GC content of sequence windows by class.

Every function takes tidy tables (pooled out-of-fold predictions, histories) and writes one PNG.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from dlpipe.calibrate import expected_calibration_error, reliability_table
from dlpipe.plots.canvas import plt, save_figure


def _binary_scores(rows: pd.DataFrame, classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    positive = classes[1]
    return (rows["y_true"] == positive).to_numpy(), rows[f"prob_{positive}"].to_numpy()


def roc_pr_curves(oof: pd.DataFrame, classes: Sequence[str], path: str | Path) -> None:
    """ROC and precision-recall curves per learner: thin lines per fold, thick pooled.

    For more than two classes the curves are one-vs-rest, micro-averaged over classes.
    """
    learners = list(dict.fromkeys(oof["learner"]))
    fig, axes = plt.subplots(len(learners), 2, figsize=(9, 4 * len(learners)), squeeze=False)
    for row, learner in enumerate(learners):
        rows = oof[oof["learner"] == learner]
        for fold, part in [(f, r) for f, r in rows.groupby("fold")] + [("pooled", rows)]:
            truth, score = _curve_inputs(part, classes)
            if truth.min() == truth.max():
                continue
            pooled = fold == "pooled"
            style = {"lw": 2.2, "color": "black"} if pooled else {"lw": 0.8, "alpha": 0.6}
            fpr, tpr, _ = skm.roc_curve(truth, score)
            auc = skm.auc(fpr, tpr)
            label = f"pooled (AUC {auc:.3f})" if pooled else None
            axes[row, 0].plot(fpr, tpr, label=label, **style)
            prec, rec, _ = skm.precision_recall_curve(truth, score)
            ap = skm.average_precision_score(truth, score)
            axes[row, 1].plot(rec, prec, label=f"pooled (AP {ap:.3f})" if pooled else None, **style)
        axes[row, 0].plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
        axes[row, 0].set(
            xlabel="false positive rate", ylabel="true positive rate", title=f"{learner}: ROC"
        )
        axes[row, 1].set(xlabel="recall", ylabel="precision", title=f"{learner}: PR")
        for ax in axes[row]:
            ax.legend(loc="lower right" if ax is axes[row, 0] else "lower left")
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1.02)
    save_figure(fig, path)


def _curve_inputs(rows: pd.DataFrame, classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    if len(classes) == 2:
        return _binary_scores(rows, classes)
    truth = np.stack([(rows["y_true"] == c).to_numpy() for c in classes], axis=1)
    score = rows[[f"prob_{c}" for c in classes]].to_numpy()
    return truth.ravel(), score.ravel()


def confusion_matrices(oof: pd.DataFrame, classes: Sequence[str], path: str | Path) -> None:
    """Pooled out-of-fold confusion matrix per learner (counts, rows = true class)."""
    learners = list(dict.fromkeys(oof["learner"]))
    size = 2.5 + 0.5 * len(classes)
    fig, axes = plt.subplots(1, len(learners), figsize=(size * len(learners), size), squeeze=False)
    for ax, learner in zip(axes[0], learners, strict=True):
        rows = oof[oof["learner"] == learner]
        cm = skm.confusion_matrix(rows["y_true"], rows["y_pred"], labels=list(classes))
        ax.imshow(cm, cmap="Blues")
        for (i, j), value in np.ndenumerate(cm):
            ax.text(
                j,
                i,
                str(value),
                ha="center",
                va="center",
                color="white" if value > cm.max() / 2 else "black",
            )
        ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
        ax.set_yticks(range(len(classes)), classes)
        ax.set(xlabel="predicted", ylabel="true", title=learner)
    save_figure(fig, path)


def training_curves(histories: Mapping[int, pd.DataFrame], path: str | Path) -> None:
    """Training and validation loss per epoch, one line per fold."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for fold, hist in sorted(histories.items()):
        for ax, col in zip(axes, ("train_loss", "val_loss"), strict=True):
            if col in hist:
                ax.plot(hist["epoch"], hist[col], lw=1, label=f"fold {fold}")
    for ax, title in zip(axes, ("training loss", "validation loss"), strict=True):
        ax.set(xlabel="epoch", ylabel="loss", title=title)
    if len(histories) <= 10:
        axes[1].legend(fontsize="small")
    save_figure(fig, path)


def regression_scatter(
    oof: pd.DataFrame, targets: Sequence[str], path: str | Path, max_targets: int = 8
) -> None:
    """Pooled out-of-fold predicted vs true values, per learner (rows) and target (columns)."""
    learners = list(dict.fromkeys(oof["learner"]))
    shown = list(targets)[:max_targets]
    fig, axes = plt.subplots(
        len(learners), len(shown), figsize=(2.6 * len(shown), 2.6 * len(learners)), squeeze=False
    )
    for i, learner in enumerate(learners):
        rows = oof[oof["learner"] == learner]
        for j, target in enumerate(shown):
            ax = axes[i, j]
            t, p = rows[f"true_{target}"].to_numpy(), rows[f"pred_{target}"].to_numpy()
            ax.scatter(t, p, s=6, alpha=0.6)
            low, high = float(min(t.min(), p.min())), float(max(t.max(), p.max()))
            ax.plot([low, high], [low, high], ls="--", color="grey", lw=0.8)
            r2 = skm.r2_score(t, p) if len(t) > 1 else float("nan")
            ax.set_title(f"{target}\nR² {r2:.2f}", fontsize="small")
            if j == 0:
                ax.set_ylabel(f"{learner}\npredicted")
            if i == len(learners) - 1:
                ax.set_xlabel("true")
    save_figure(fig, path)


def per_target_bars(per_target: Mapping[str, Mapping[str, Any]], path: str | Path) -> None:
    """Pooled R² per target for every learner, side by side."""
    learners = list(per_target)
    targets = list(next(iter(per_target.values())))
    width = 0.8 / len(learners)
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(targets) * len(learners)), 3.8))
    x = np.arange(len(targets))
    for k, learner in enumerate(learners):
        values = [per_target[learner][t]["r2"] for t in targets]
        ax.bar(x + k * width, values, width, label=learner)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(
        x + width * (len(learners) - 1) / 2, targets, rotation=60, ha="right", fontsize="small"
    )
    ax.set(ylabel="pooled R²", title="out-of-fold R² per target")
    ax.legend()
    save_figure(fig, path)


def gc_histogram(windows: pd.DataFrame, path: str | Path) -> None:
    """GC content of positive and negative windows (negatives are drawn GC-matched)."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    bins = np.linspace(0, 1, 41)
    for label, rows in windows.groupby("label", sort=True):
        ax.hist(rows["gc"], bins=bins, alpha=0.55, label=f"{label} (n={len(rows)})")
    ax.set(xlabel="GC fraction", ylabel="windows", title="GC content of positives and negatives")
    ax.legend()
    save_figure(fig, path)


def multilabel_curves(oof: pd.DataFrame, targets: Sequence[str], path: str | Path) -> None:
    """Pooled out-of-fold ROC and PR curves of every target, one row per learner."""
    learners = list(dict.fromkeys(oof["learner"]))
    fig, axes = plt.subplots(len(learners), 2, figsize=(9, 4 * len(learners)), squeeze=False)
    for row, learner in enumerate(learners):
        rows = oof[oof["learner"] == learner]
        for target in targets:
            truth = rows[f"true_{target}"].to_numpy()
            score = rows[f"prob_{target}"].to_numpy()
            if truth.min() == truth.max():
                continue
            fpr, tpr, _ = skm.roc_curve(truth, score)
            axes[row, 0].plot(fpr, tpr, lw=1.2, label=f"{target} ({skm.auc(fpr, tpr):.3f})")
            prec, rec, _ = skm.precision_recall_curve(truth, score)
            ap = skm.average_precision_score(truth, score)
            axes[row, 1].plot(rec, prec, lw=1.2, label=f"{target} ({ap:.3f})")
        axes[row, 0].plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
        axes[row, 0].set(xlabel="false positive rate", ylabel="true positive rate",
                         title=f"{learner}: ROC per target (AUC)")  # fmt: skip
        axes[row, 1].set(xlabel="recall", ylabel="precision", title=f"{learner}: PR (AP)")
        for ax in axes[row]:
            ax.legend(fontsize="small")
    save_figure(fig, path)


def reliability_diagram(
    oof: pd.DataFrame, task: Any, meta: Mapping[str, Any], path: str | Path
) -> None:
    """Draw the reliability diagram of every learner's pooled out-of-fold probabilities.

    Raw probabilities, and temperature-scaled ones when the predictions hold them. ``task`` is
    the :class:`dlpipe.tasks.Task` of the predictions (it reads their true labels).
    """
    learners = list(dict.fromkeys(oof["learner"]))
    fig, axes = plt.subplots(1, len(learners), figsize=(4.4 * len(learners), 4.2), squeeze=False)
    for ax, learner in zip(axes[0], learners, strict=True):
        rows = oof[oof["learner"] == learner]
        truth = task.truth(rows, meta)
        ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
        for prefix, label, color in (
            ("prob_", "raw", "tab:red"),
            ("calprob_", "temperature-scaled", "tab:blue"),
        ):
            cols = [f"{prefix}{c}" for c in meta["classes"]]
            if not all(c in rows.columns for c in cols):
                continue
            proba = rows[cols].to_numpy()
            table = reliability_table(truth, proba, multilabel=task.multilabel)
            used = table["count"] > 0
            ece = expected_calibration_error(truth, proba, multilabel=task.multilabel)
            ax.plot(
                table["confidence"][used],
                table["accuracy"][used],
                "o-",
                color=color,
                label=f"{label} (ECE {ece:.3f})",
            )
        lowest = 0.5 if task.multilabel else 1.0 / len(meta["classes"])
        ax.set(
            xlim=(lowest - 0.02, 1.01),
            ylim=(0, 1.01),
            xlabel="confidence (top-class probability)",
            ylabel="accuracy",
            title=learner,
        )
        ax.legend(loc="upper left", fontsize="small")
    save_figure(fig, path)
