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

from dlpipe.metrics import LOWER_IS_BETTER


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


def leaderboard(
    entries: Sequence[Mapping[str, Any]], metric: str, test_train_ratio: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rank learners on one metric and test every pair over folds.

    Parameters
    ----------
    entries
        ``{"experiment", "learner", "scores"}`` of learners scored on the same folds.
    metric
        The metric ranked (lower is better for errors such as ``mse``).
    test_train_ratio
        ``n_test / n_train`` of the folds.

    Returns
    -------
    leaderboard
        One row per learner, best first: ``rank``, ``experiment``, ``learner``, ``metric``,
        ``mean``, ``sd``, ``folds``, and against the best learner ``difference``,
        ``p_corrected_t`` and ``p_wilcoxon``.
    pairs
        Every pair: ``a``, ``b`` (``experiment/learner``), ``mean_difference`` (a - b), ``t``,
        ``p_corrected_t``, ``p_wilcoxon``.
    """
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    board = pd.DataFrame(
        {
            "experiment": [e["experiment"] for e in entries],
            "learner": [e["learner"] for e in entries],
            "metric": metric,
            "mean": [float(np.nanmean(e["scores"])) for e in entries],
            "sd": [
                float(np.nanstd(e["scores"], ddof=1)) if len(e["scores"]) > 1 else np.nan
                for e in entries
            ],
            "folds": [int(np.isfinite(e["scores"]).sum()) for e in entries],
        }
    )
    order = np.argsort(-sign * board["mean"].to_numpy(), kind="stable")
    board = board.iloc[order].reset_index(drop=True)
    ranked = [entries[i] for i in order]
    board.insert(0, "rank", np.arange(1, len(board) + 1))
    best = ranked[0]["scores"]
    diffs, p_t, p_w = [], [], []
    for entry in ranked:
        same = entry is ranked[0]
        diffs.append(float(np.nanmean(np.asarray(entry["scores"]) - best)))
        p_t.append(
            np.nan
            if same
            else corrected_resampled_ttest(best, entry["scores"], test_train_ratio)[1]
        )
        p_w.append(np.nan if same else wilcoxon_signed_rank(best, entry["scores"]))
    board["difference"], board["p_corrected_t"], board["p_wilcoxon"] = diffs, p_t, p_w
    pairs = []
    for i in range(len(ranked)):
        for j in range(i + 1, len(ranked)):
            a, b = ranked[i], ranked[j]
            t, p = corrected_resampled_ttest(a["scores"], b["scores"], test_train_ratio)
            pairs.append(
                {
                    "a": f"{a['experiment']}/{a['learner']}",
                    "b": f"{b['experiment']}/{b['learner']}",
                    "metric": metric,
                    "mean_difference": float(np.nanmean(np.asarray(a["scores"]) - b["scores"])),
                    "t": t,
                    "p_corrected_t": p,
                    "p_wilcoxon": wilcoxon_signed_rank(a["scores"], b["scores"]),
                }
            )
    columns = ["a", "b", "metric", "mean_difference", "t", "p_corrected_t", "p_wilcoxon"]
    return board, pd.DataFrame(pairs, columns=columns)


def fold_size_ratio(summaries: Sequence[Mapping[str, Any]]) -> float:
    """Mean ``n_test / n_train`` over folds, the training side counting its validation rows."""
    ratios = [s["n_test"] / max(1, s["n_train"] + s["n_val"]) for s in summaries]
    return float(np.mean(ratios)) if ratios else float("nan")
