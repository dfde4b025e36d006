"""Metrics of link prediction on one fold: auROC, auPRC, Hits@K, and the same per group of pairs.

Hits@K follows the Open Graph Benchmark: the share of positive pairs scored above the K-th
highest-scoring negative pair (undefined, NaN, with fewer than K negatives). Groups
show where a model works: by the degree of a pair's endpoints in the message-passing graph
(:func:`degree_bins`; a protein with few known interactions is hard), or by the number of
unseen endpoints of a cold-start pair. A metric a group cannot define (one class only) is NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

#: The K of the Hits@K reported by default.
HITS_AT = (20, 50, 100)
#: Lower edges of the degree bins of :func:`degree_bins`.
DEGREE_EDGES = (0, 1, 3, 10)


def hits_at_k(positive: np.ndarray, negative: np.ndarray, k: int) -> float:
    """Return the share of positive scores above the K-th highest negative score.

    Parameters
    ----------
    positive, negative
        Scores of the positive and the negative pairs.
    k
        How many negatives may outrank a positive before it stops counting (K >= 1).

    Returns
    -------
    float
        Hits@K in [0, 1]; NaN without positives, and with fewer than K negatives (any
        score would count: a 1 there would say nothing).
    """
    if k < 1:
        raise ValueError("K of Hits@K must be at least 1")
    positive, negative = np.asarray(positive, float), np.asarray(negative, float)
    if len(positive) == 0:
        return float("nan")
    if len(negative) < k:
        return float("nan")
    threshold = np.partition(negative, len(negative) - k)[len(negative) - k]
    return float(np.mean(positive > threshold))


def link_metrics(
    labels: np.ndarray, scores: np.ndarray, hits_at: Sequence[int] = HITS_AT
) -> dict[str, float]:
    """Return auROC, auPRC and Hits@K of scored pairs, with the counts of each class.

    Parameters
    ----------
    labels
        1 for a positive pair (an edge), 0 for a negative one.
    scores
        Higher: more likely an edge.
    hits_at
        The K of each Hits@K.

    Returns
    -------
    dict
        ``auroc``, ``auprc``, ``hits@K`` … (NaN where a class is missing), ``n_pos``,
        ``n_neg``.
    """
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    both = labels.any() and not labels.all()
    out = {
        "auroc": float(roc_auc_score(labels, scores)) if both else float("nan"),
        "auprc": float(average_precision_score(labels, scores)) if both else float("nan"),
    }
    for k in hits_at:
        hits = hits_at_k(scores[labels], scores[~labels], k) if both else float("nan")
        out[f"hits@{k}"] = hits
    out["n_pos"] = int(labels.sum())
    out["n_neg"] = int((~labels).sum())
    return out


def link_metrics_by(
    labels: np.ndarray,
    scores: np.ndarray,
    groups: np.ndarray,
    name: str = "group",
    hits_at: Sequence[int] = HITS_AT,
) -> pd.DataFrame:
    """Return :func:`link_metrics` for every group of pairs (degree bins, unseen endpoints).

    Parameters
    ----------
    labels, scores
        As for :func:`link_metrics`.
    groups
        The group of each pair.
    name
        Name of the group column.
    hits_at
        The K of each Hits@K.

    Returns
    -------
    pandas.DataFrame
        One row per group (in sorted order): the group, then the metrics and counts.
    """
    labels, scores, groups = np.asarray(labels), np.asarray(scores), np.asarray(groups)
    rows = []
    for group in np.unique(groups):
        at = groups == group
        rows.append({name: group, **link_metrics(labels[at], scores[at], hits_at)})
    return pd.DataFrame(rows)


def degree_bins(
    pairs: np.ndarray,
    message_passing: np.ndarray,
    n_nodes: int,
    edges: Sequence[int] = DEGREE_EDGES,
) -> np.ndarray:
    """Label each pair by the smaller degree of its two nodes in the message-passing graph.

    Parameters
    ----------
    pairs
        ``(n, 2)`` node-index pairs.
    message_passing
        The fold's message-passing edges (its training positives), each once.
    n_nodes
        Number of nodes.
    edges
        Increasing lower edges of the bins, the first 0.

    Returns
    -------
    numpy.ndarray
        Text labels such as ``0``, ``1-2``, ``3-9``, ``>=10`` (for the default edges).
    """
    degree = np.bincount(np.asarray(message_passing).ravel(), minlength=n_nodes)
    return degree_bin_labels(degree[np.asarray(pairs)].min(axis=1), edges)


def degree_bin_labels(degrees: np.ndarray, edges: Sequence[int] = DEGREE_EDGES) -> np.ndarray:
    """Label degrees by bin (``0``, ``1-2``, ``3-9``, ``>=10`` for the default edges).

    Raises
    ------
    ValueError
        If the edges do not increase from 0.
    """
    edges = np.asarray(edges)
    if len(edges) == 0 or edges[0] != 0 or (np.diff(edges) <= 0).any():
        # Otherwise a degree below the first edge would land silently in the last bin.
        raise ValueError(f"degree bin edges {edges.tolist()}: give increasing edges from 0")
    low = np.asarray(degrees)
    uppers = [*edges[1:], None]
    names = [
        f">={lo}" if hi is None else (str(lo) if hi - lo == 1 else f"{lo}-{hi - 1}")
        for lo, hi in zip(edges, uppers, strict=True)
    ]
    return np.asarray(names, dtype=object)[np.searchsorted(edges, low, side="right") - 1]
