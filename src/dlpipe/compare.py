"""Model comparison over cross-validation folds: a leaderboard with paired tests.

Learners that were scored on the same test folds of the same data (the deep model and its
baseline, or several experiments on one data set with one CV plan) are paired fold by fold.
Two tests of the per-fold differences are reported:

- the corrected resampled t-test of Nadeau & Bengio (2003): the variance of the mean difference
  is inflated by ``1/k + n_test/n_train`` instead of ``1/k``, because the training sets of the
  folds overlap and the fold scores are not independent (the plain paired t-test is badly
  anti-conservative here; Bouckaert & Frank 2004);
- the Wilcoxon signed-rank test (scipy), which assumes no distribution but cannot reach
  p < 0.05 with fewer than six folds (its smallest two-sided p-value with five folds is 0.0625).

Where the primary metric is summarised on the pooled out-of-fold predictions instead
(:func:`dlpipe.metrics.pooled_summary`: leave-one-out, a holdout), the learners are ranked on
their pooled values and tested with a paired bootstrap over samples (Efron & Tibshirani 1993):
both learners are scored on the same resamples of the shared held-out rows, and the two-sided
p-value is twice the share of resampled differences on the far side of zero.

Experiments are comparable when their fold tables (ids and assignment), task, classes or
targets and input data checksums agree.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from dlpipe.metrics import LOWER_IS_BETTER, paired_bootstrap_p, percentile_interval

#: The paired test of learners ranked on pooled values, for the report.
POOLED_TEST = (
    "paired bootstrap over samples: both learners scored on the same resamples of the pooled "
    "held-out rows; two-sided p = twice the share of resampled differences beyond zero"
)


def corrected_resampled_ttest(
    a: Sequence[float], b: Sequence[float], test_train_ratio: float
) -> tuple[float, float]:
    """Nadeau-Bengio corrected resampled t-test of paired fold scores.

    Parameters
    ----------
    a, b
        Scores of two learners on the same ``k`` folds.
    test_train_ratio
        ``n_test / n_train`` of the folds (mean over folds).

    Returns
    -------
    tuple of float
        ``(t, two-sided p)``. Identical scores give ``(0, 1)``; fewer than two folds give NaN.
    """
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    d = d[np.isfinite(d)]
    k = len(d)
    if k < 2:
        return float("nan"), float("nan")
    mean, var = d.mean(), d.var(ddof=1)
    if var == 0:
        # Every fold differs by the same amount: no spread to test against.
        return (0.0, 1.0) if mean == 0 else (float(np.sign(mean) * np.inf), 0.0)
    t = mean / np.sqrt((1.0 / k + test_train_ratio) * var)
    return float(t), float(2 * stats.t.sf(abs(t), k - 1))


def wilcoxon_signed_rank(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired fold scores (1 when all are equal)."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    d = d[np.isfinite(d)]
    if len(d) == 0 or np.all(d == 0):
        return 1.0 if len(d) else float("nan")
    return float(stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


def comparison_key(meta: Mapping[str, Any], folds_tsv: str | Path) -> str:
    """Return what two experiments must share to be paired: folds, task, labels, checksums."""
    info = meta["meta"]
    checksums = {k: v for k, v in info.items() if "sha256" in k}
    labels = meta.get("classes") or meta.get("target_columns")
    payload = json.dumps([meta["task"], labels, checksums], sort_keys=True).encode()
    digest = hashlib.sha256(payload)
    digest.update(Path(folds_tsv).read_bytes())
    return digest.hexdigest()[:12]


def fold_scores(metrics: pd.DataFrame, learner: str, metric: str) -> np.ndarray:
    """Per-fold values of one learner's metric from an experiment's ``metrics.tsv``."""
    row = metrics[(metrics["learner"] == learner) & (metrics["metric"] == metric)]
    cols = sorted(
        (c for c in metrics.columns if c.startswith("fold_")), key=lambda c: int(c.split("_")[1])
    )
    return row[cols].to_numpy(dtype=np.float64)[0]


def summary_of(metrics: pd.DataFrame, learner: str, metric: str) -> tuple[str, float]:
    """Return how metrics.tsv summarises a metric (folds or pooled), and its pooled value."""
    row = metrics[(metrics["learner"] == learner) & (metrics["metric"] == metric)].iloc[0]
    return str(row.get("summary", "folds")), float(row.get("pooled", np.nan))


def _pair(a: Mapping[str, Any], b: Mapping[str, Any], pooled: bool, ratio: float) -> dict:
    """Compare two learners: over folds, or on the same bootstrap resamples of pooled rows."""
    if pooled:
        d = np.asarray(a["resampled"]) - np.asarray(b["resampled"])
        low, high = percentile_interval(d)
        return {
            "mean_difference": a["pooled"] - b["pooled"],
            "t": np.nan,
            "p_corrected_t": np.nan,
            "p_wilcoxon": np.nan,
            "p_bootstrap": paired_bootstrap_p(a["resampled"], b["resampled"]),
            "ci95_low": low,
            "ci95_high": high,
        }
    t, p = corrected_resampled_ttest(a["scores"], b["scores"], ratio)
    return {
        "mean_difference": float(np.nanmean(np.asarray(a["scores"]) - b["scores"])),
        "t": t,
        "p_corrected_t": p,
        "p_wilcoxon": wilcoxon_signed_rank(a["scores"], b["scores"]),
        "p_bootstrap": np.nan,
        "ci95_low": np.nan,
        "ci95_high": np.nan,
    }


def leaderboard(
    entries: Sequence[Mapping[str, Any]], metric: str, test_train_ratio: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rank learners on one metric and test every pair, over folds or on pooled predictions.

    Parameters
    ----------
    entries
        ``{"experiment", "learner", "scores"}`` of learners scored on the same folds; where the
        metric is summarised pooled also ``summary`` (``"pooled"``), ``pooled`` (the value) and
        ``resampled`` (its values on the same bootstrap resamples of the shared held-out rows).
    metric
        The metric ranked (lower is better for errors such as ``mse``).
    test_train_ratio
        ``n_test / n_train`` of the folds.

    Returns
    -------
    leaderboard
        One row per learner, best first: ``rank``, ``experiment``, ``learner``, ``metric``,
        ``mean``, ``sd``, ``folds``, and against the best learner ``difference``,
        ``p_corrected_t`` and ``p_wilcoxon`` (over folds), ``p_bootstrap`` (pooled); then
        ``summary`` (``folds``: ranked on the mean over folds; ``pooled``: on ``pooled``, the
        value on the pooled predictions, with no mean over folds) and ``pooled``.
    pairs
        Every pair: ``a``, ``b`` (``experiment/learner``), ``mean_difference`` (a - b), ``t``,
        ``p_corrected_t``, ``p_wilcoxon``, ``p_bootstrap``, and for pooled values the
        bootstrap 95 % interval of the difference (``ci95_low``, ``ci95_high``).
    """
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    pooled = any(e.get("summary") == "pooled" for e in entries)
    means = [np.nan if pooled else float(np.nanmean(e["scores"])) for e in entries]
    board = pd.DataFrame(
        {
            "experiment": [e["experiment"] for e in entries],
            "learner": [e["learner"] for e in entries],
            "metric": metric,
            "mean": means,
            "sd": [
                np.nan if pooled or len(e["scores"]) < 2 else float(np.nanstd(e["scores"], ddof=1))
                for e in entries
            ],
            "folds": [int(np.isfinite(e["scores"]).sum()) for e in entries],
        }
    )
    values = [float(e.get("pooled", np.nan)) for e in entries] if pooled else means
    order = np.argsort(-sign * np.asarray(values), kind="stable")
    board = board.iloc[order].reset_index(drop=True)
    ranked = [entries[i] for i in order]
    board.insert(0, "rank", np.arange(1, len(board) + 1))
    tests = [_pair(ranked[0], e, pooled, test_train_ratio) for e in ranked]
    board["difference"] = [0.0 - t["mean_difference"] for t in tests]
    for key in ("p_corrected_t", "p_wilcoxon", "p_bootstrap"):
        board[key] = [np.nan] + [t[key] for t in tests[1:]]
    board["summary"] = "pooled" if pooled else "folds"
    board["pooled"] = [float(e.get("pooled", np.nan)) for e in ranked]
    pairs = []
    for i in range(len(ranked)):
        for j in range(i + 1, len(ranked)):
            a, b = ranked[i], ranked[j]
            pairs.append(
                {
                    "a": f"{a['experiment']}/{a['learner']}",
                    "b": f"{b['experiment']}/{b['learner']}",
                    "metric": metric,
                    **_pair(a, b, pooled, test_train_ratio),
                }
            )
    columns = [
        "a", "b", "metric", "mean_difference", "t", "p_corrected_t", "p_wilcoxon", "p_bootstrap",
        "ci95_low", "ci95_high",
    ]  # fmt: skip
    return board, pd.DataFrame(pairs, columns=columns)


def fold_size_ratio(summaries: Sequence[Mapping[str, Any]]) -> float:
    """Mean ``n_test / n_train`` over folds, the training side counting its validation rows."""
    ratios = [s["n_test"] / max(1, s["n_train"] + s["n_val"]) for s in summaries]
    return float(np.mean(ratios)) if ratios else float("nan")
