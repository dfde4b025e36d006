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

LEARNER_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
# Figures are drawn at most this many inches wide (100 dpi): the page is 1,100 px wide, so a
# wider figure would be shrunk and its labels with it.
MAX_WIDTH = 11.0


def _colour(k: int) -> str:
    return LEARNER_COLOURS[k % len(LEARNER_COLOURS)]


def one_vs_rest_panels(
    oof: pd.DataFrame, classes: Sequence[str], multilabel: bool
) -> list[tuple[str, dict[str, pd.DataFrame]]]:
    """One-vs-rest panels: per class (or target) a title and, per learner, its pooled rows.

    Each learner's frame holds ``truth`` (bool), ``score`` and ``fold``; two classes give one
    panel, the second class against the first.
    """
    learners = list(dict.fromkeys(oof["learner"]))
    if multilabel:
        names = [(t, f"true_{t}", f"prob_{t}", t) for t in classes]
    elif len(classes) == 2:
        names = [(classes[1], None, f"prob_{classes[1]}", f"{classes[1]} vs {classes[0]}")]
    else:
        names = [(c, None, f"prob_{c}", f"{c} vs rest") for c in classes]
    panels = []
    for cls, true_col, score_col, title in names:
        per_learner = {}
        for learner in learners:
            rows = oof[oof["learner"] == learner]
            truth = rows[true_col] == 1 if true_col else rows["y_true"] == cls
            per_learner[learner] = pd.DataFrame(
                {"truth": truth.to_numpy(), "score": rows[score_col].to_numpy(),
                 "fold": rows["fold"].to_numpy()}
            )  # fmt: skip
        panels.append((title, per_learner))
    return panels


def panel_scores(
    panels: Sequence[tuple[str, Mapping[str, pd.DataFrame]]],
) -> dict[str, dict[str, tuple[float, float]]]:
    """AuROC and average precision of every panel's pooled predictions, per learner.

    These are the numbers the curves' legends show; their mean over the classes of a
    multiclass experiment is the metrics table's macro ``pooled`` auROC and auPRC. A learner
    whose panel holds one class only gets NaN.
    """
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for title, per_learner in panels:
        out[title] = {}
        for learner, frame in per_learner.items():
            truth, score = frame["truth"].to_numpy(), frame["score"].to_numpy()
            if truth.min() == truth.max():
                out[title][learner] = (float("nan"), float("nan"))
                continue
            out[title][learner] = (
                float(skm.roc_auc_score(truth, score)),
                float(skm.average_precision_score(truth, score)),
            )
    return out


def _values(ax: Any, lines: Sequence[tuple[str, str]], corner: str) -> None:
    """Write one value per line in its colour in a corner of ``ax`` (bottom line last)."""
    right = corner == "right"
    for k, (text, colour) in enumerate(reversed(lines)):
        ax.text(
            0.97 if right else 0.03, 0.04 + 0.085 * k, text, transform=ax.transAxes,
            ha="right" if right else "left", va="bottom", fontsize="small", color=colour,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
        )  # fmt: skip


def _roc_pr_grid(
    panels: Sequence[tuple[str, Mapping[str, pd.DataFrame]]], path: str | Path, show_folds: bool
) -> None:
    """One ROC and one PR plot per panel, every learner overlaid, PR with its prevalence line.

    One legend for the figure names the learners by colour; each plot lists its values
    (auROC, AP; the prevalence in grey) in the learners' colours, so that long learner names
    never cover the curves of small panels.
    """
    learners = list(dict.fromkeys(k for _, per in panels for k in per))
    pairs_per_row = 1 if len(panels) == 1 else 2
    rows = -(-len(panels) // pairs_per_row)
    width = 4.6 if pairs_per_row == 1 else MAX_WIDTH / 4
    fig, axes = plt.subplots(
        rows, 2 * pairs_per_row, figsize=(2 * pairs_per_row * width, 3.2 * rows + 0.6),
        squeeze=False,
    )  # fmt: skip
    for ax in axes.ravel()[2 * len(panels) :]:
        ax.set_visible(False)
    for k, (title, per_learner) in enumerate(panels):
        roc = axes[k // pairs_per_row, 2 * (k % pairs_per_row)]
        pr = axes[k // pairs_per_row, 2 * (k % pairs_per_row) + 1]
        prevalence = None
        scores = panel_scores([(title, per_learner)])[title]
        roc_values, pr_values = [], []
        roc.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
        for learner, frame in per_learner.items():
            truth, score = frame["truth"].to_numpy(), frame["score"].to_numpy()
            colour = _colour(learners.index(learner))
            if truth.min() == truth.max():
                roc_values.append(("one class: no curve", colour))
                pr_values.append(("one class: no curve", colour))
                continue
            prevalence = float(truth.mean())
            if show_folds:
                for _, part in frame.groupby("fold"):
                    if part["truth"].nunique() == 2:
                        fpr, tpr, _ = skm.roc_curve(part["truth"], part["score"])
                        roc.plot(fpr, tpr, lw=0.7, alpha=0.35, color=colour)
                        prec, rec, _ = skm.precision_recall_curve(part["truth"], part["score"])
                        pr.plot(rec, prec, lw=0.7, alpha=0.35, color=colour)
            auc, ap = scores[learner]
            fpr, tpr, _ = skm.roc_curve(truth, score)
            roc.plot(fpr, tpr, lw=2, color=colour)
            prec, rec, _ = skm.precision_recall_curve(truth, score)
            pr.plot(rec, prec, lw=2, color=colour)
            roc_values.append((f"auROC {auc:.3f}", colour))
            pr_values.append((f"AP {ap:.3f}", colour))
        if prevalence is not None:
            pr.axhline(prevalence, ls="--", color="grey", lw=0.8)
            pr_values.append((f"prevalence {prevalence:.3f}", "dimgrey"))
        _values(roc, roc_values, "right")
        _values(pr, pr_values, "left")
        roc.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1),
                ylim=(0, 1.02), title=f"{title}: ROC")  # fmt: skip
        pr.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02),
               title=f"{title}: PR")  # fmt: skip
        for ax in (roc, pr):
            ax.title.set_fontsize("medium")
    handles = [plt.Line2D([], [], color=_colour(j), lw=2) for j in range(len(learners))]
    names = [f"{learner} (pooled out-of-fold)" for learner in learners]
    if show_folds:
        handles.append(plt.Line2D([], [], color="grey", lw=0.7, alpha=0.6))
        names.append("single folds")
    handles.append(plt.Line2D([], [], color="grey", lw=0.8, ls="--"))
    names.append("chance (ROC) / prevalence (PR)")
    fig.legend(handles, names, loc="upper center", ncol=min(len(names), 3), fontsize="small",
               frameon=False)  # fmt: skip
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / fig.get_figheight()))
    save_figure(fig, path, layout=False)


def roc_pr_curves(oof: pd.DataFrame, classes: Sequence[str], path: str | Path) -> None:
    """ROC and precision-recall curves, every learner overlaid on the same axes.

    Two classes: one ROC and one PR plot, a thick line for the pooled out-of-fold predictions
    of each learner and thin lines for its folds. More classes: one pair per class, one
    class against the rest, pooled lines only; the metrics table's auROC and auPRC are the
    macro mean of these per-class values (per fold, and over pooled predictions in its
    ``pooled`` column). PR plots carry the prevalence line (a random classifier's precision).
    """
    panels = one_vs_rest_panels(oof, classes, multilabel=False)
    _roc_pr_grid(panels, path, show_folds=len(classes) == 2)


def link_curves(oof: pd.DataFrame, path: str | Path) -> None:
    """ROC and precision-recall curves of node pairs' scores, edges against sampled non-edges.

    Thick lines: each learner's pooled out-of-fold pairs; thin lines: its folds. The PR plot's
    prevalence line is the sampled share of edges, not the density of the network.
    """
    per_learner = {
        learner: pd.DataFrame(
            {
                "truth": (rows["y_true"] == "edge").to_numpy(),
                "score": rows["score"].to_numpy(),
                "fold": rows["fold"].to_numpy(),
            }
        )
        for learner, rows in oof.groupby("learner", sort=False)
    }
    _roc_pr_grid([("edge vs non-edge", per_learner)], path, show_folds=True)


def multilabel_curves(oof: pd.DataFrame, targets: Sequence[str], path: str | Path) -> None:
    """One ROC and one PR plot per target, every learner overlaid, pooled out-of-fold."""
    _roc_pr_grid(one_vs_rest_panels(oof, targets, multilabel=True), path, show_folds=False)


def confusion_matrices(oof: pd.DataFrame, classes: Sequence[str], path: str | Path) -> None:
    """Pooled out-of-fold confusion matrix per learner (counts, rows = true class)."""
    learners = list(dict.fromkeys(oof["learner"]))
    size = 2.5 + 0.5 * len(classes)
    ncols = max(1, min(len(learners), int(MAX_WIDTH // size)))
    nrows = -(-len(learners) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax in axes.ravel()[len(learners) :]:
        ax.set_visible(False)
    for ax, learner in zip(axes.ravel(), learners, strict=False):
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
    """Training and validation loss per epoch, one line per fold.

    Link prediction stops early on the validation auPRC and records it instead of a
    validation loss: the right panel then shows it.
    """
    val = "val_loss"
    if any("val_loss" not in h and "val_auprc" in h for h in histories.values()):
        val = "val_auprc"
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=val == "val_loss")
    for fold, hist in sorted(histories.items()):
        for ax, col in zip(axes, ("train_loss", val), strict=True):
            if col in hist:
                ax.plot(hist["epoch"], hist[col], lw=1, label=f"fold {fold}")
    right = ("validation loss", "loss") if val == "val_loss" else ("validation auPRC", "auPRC")
    for ax, (title, ylabel) in zip(axes, (("training loss", "loss"), right), strict=True):
        ax.set(xlabel="epoch", ylabel=ylabel, title=title)
    if len(histories) <= 10:
        axes[1].legend(fontsize="small")
    save_figure(fig, path)


def shown_targets(
    r2: Mapping[str, float], n_best: int = 4, n_worst: int = 4
) -> tuple[list[str], list[str]]:
    """Pick the ``n_best`` and ``n_worst`` targets by R² (all of them, as best, when few).

    Targets without a finite R² count as worst. Ties keep the targets' order.
    """
    names = list(r2)
    if len(names) <= n_best + n_worst:
        return names, []
    key = {t: (r2[t] if np.isfinite(r2[t]) else -np.inf) for t in names}
    ranked = sorted(names, key=lambda t: -key[t])
    return ranked[:n_best], ranked[-n_worst:]


def regression_scatter(
    oof: pd.DataFrame, targets: Sequence[str], path: str | Path, n_best: int = 4, n_worst: int = 4
) -> None:
    """Pooled out-of-fold predicted against true values of the best and worst targets.

    With more than ``n_best + n_worst`` targets, the targets shown are the best and worst by
    the first learner's (the deep model's) pooled R²; the other learners are drawn on the same
    targets, one row each, so a row compares learners target by target.
    """
    learners = list(dict.fromkeys(oof["learner"]))
    first = oof[oof["learner"] == learners[0]]
    r2 = {t: _r2(first[f"true_{t}"], first[f"pred_{t}"]) for t in targets}
    best, worst = shown_targets(r2, n_best, n_worst)
    shown = [(t, "best") for t in best] + [(t, "worst") for t in worst]
    ncols = min(len(shown), 4)
    blocks = -(-len(shown) // ncols)
    fig, axes = plt.subplots(
        blocks * len(learners), ncols, figsize=(MAX_WIDTH, 2.9 * blocks * len(learners)),
        squeeze=False,
    )  # fmt: skip
    for ax in axes.ravel():
        ax.set_visible(False)
    for i, learner in enumerate(learners):
        rows = oof[oof["learner"] == learner]
        for k, (target, rank) in enumerate(shown):
            ax = axes[(k // ncols) * len(learners) + i, k % ncols]
            ax.set_visible(True)
            t, p = rows[f"true_{target}"].to_numpy(), rows[f"pred_{target}"].to_numpy()
            ax.scatter(t, p, s=6, alpha=0.6, color=_colour(i))
            low, high = float(min(t.min(), p.min())), float(max(t.max(), p.max()))
            ax.plot([low, high], [low, high], ls="--", color="grey", lw=0.8)
            tag = f" ({rank})" if worst else ""
            ax.set_title(f"{learner}\n{target}{tag}: R² {_r2(t, p):.2f}", fontsize="small")
            ax.set_xlabel("true", fontsize="small")
            ax.set_ylabel("predicted", fontsize="small")
            ax.tick_params(labelsize="small")
    if worst:
        fig.suptitle(
            f"the {len(best)} best and {len(worst)} worst of {len(r2)} targets by "
            f"{learners[0]}'s pooled R² (every target: the R² chart)",
            fontsize="medium",
        )
    save_figure(fig, path)


def _r2(true: Any, pred: Any) -> float:
    t, p = np.asarray(true, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    return float(skm.r2_score(t, p)) if len(t) > 1 else float("nan")


def per_target_bars(per_target: Mapping[str, Mapping[str, Any]], path: str | Path) -> None:
    """Pooled R² per target for every learner, side by side, targets sorted by the first's R².

    Horizontal bars, so every target's name stays legible however many there are.
    """
    learners = list(per_target)
    first = per_target[learners[0]]
    targets = sorted(first, key=lambda t: -np.nan_to_num(first[t]["r2"], nan=-np.inf))
    height = 0.8 / len(learners)
    fig, ax = plt.subplots(figsize=(7.5, 1.4 + 0.17 * len(targets) * len(learners)))
    y = np.arange(len(targets))
    for k, learner in enumerate(learners):
        values = [per_target[learner][t]["r2"] for t in targets]
        ax.barh(y + k * height, values, height, label=learner, color=_colour(k))
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(y + height * (len(learners) - 1) / 2, targets)
    ax.invert_yaxis()
    ax.set(xlabel="pooled out-of-fold R²", title="R² per target (sorted by the first learner)")
    ax.legend(fontsize="small", loc="lower right")
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


def reliability_diagram(
    oof: pd.DataFrame, task: Any, meta: Mapping[str, Any], path: str | Path
) -> None:
    """Draw the reliability diagram of every learner's pooled out-of-fold probabilities.

    Raw probabilities, and temperature-scaled ones when the predictions hold them. The ECE in
    the legend is computed over the pooled predictions (the metrics table's ``pooled``
    column), not the mean over folds. ``task`` is
    the :class:`dlpipe.tasks.Task` of the predictions (it reads their true labels).
    """
    learners = list(dict.fromkeys(oof["learner"]))
    ncols = min(len(learners), int(MAX_WIDTH // 4.4))
    nrows = -(-len(learners) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.4 * ncols, 4.2 * nrows), squeeze=False)
    for ax in axes.ravel()[len(learners) :]:
        ax.set_visible(False)
    for ax, learner in zip(axes.ravel(), learners, strict=False):
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
                label=f"{label} (pooled ECE {ece:.3f})",
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
