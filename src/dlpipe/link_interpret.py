"""What a link-prediction experiment shows beyond one number per learner.

- Metrics by group of held-out pairs (:func:`grouped_link_metrics`, fold by fold, then
  averaged): by the smaller degree of a pair's two nodes in its fold's training graph (a
  protein with few known interactions is where topology says least), and for cold start by
  the number of unseen ends.
- The top novel pairs (:func:`novel_pairs`): node pairs that are not edges of the input graph,
  ranked by the mean logit of the fold models that saw both nodes, each model encoding its own
  training graph. They are hypotheses for follow-up: the negatives the models were trained
  against are a sample of the non-edges, so a probability is relative to that sampling, and a
  non-edge of an interaction database is often an untested pair rather than a known
  non-interaction.
- The node embeddings of a fold model (:func:`node_embeddings`), drawn by UMAP.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from dlpipe.link_metrics import degree_bin_labels, link_metrics
from dlpipe.models.gnn import LinkGNN, deterministic, edge_index

#: Scores held at once per fold model when ranking every pair (a block of rows × all nodes).
_BLOCK_SCORES = 4_000_000


def grouped_link_metrics(oof: pd.DataFrame, column: str) -> pd.DataFrame:
    """Return auROC, auPRC and Hits@K of held-out pairs per learner and group, fold by fold.

    Each fold's pairs are scored by that fold's models, whose scores need not share a scale
    (a heuristic regression refitted per fold gives every tied pair a different constant), so
    a group's metrics are computed within each fold and averaged over the folds that define
    them, never on pairs pooled across folds.

    Parameters
    ----------
    oof
        Out-of-fold predictions of a link-prediction experiment (``learner``, ``fold``,
        ``y_true``, ``score`` and ``column``).
    column
        ``min_degree`` (grouped into degree bins) or ``unseen`` (unseen ends of a cold-start
        pair).

    Returns
    -------
    pandas.DataFrame
        One row per learner and group: ``learner``, ``group``, the metrics (means over folds;
        NaN where no fold holds both classes), ``n_pos`` and ``n_neg`` (over all folds) and
        ``folds`` (how many folds define the auROC).
    """
    values = oof[column].to_numpy()
    groups = degree_bin_labels(values) if column == "min_degree" else values
    frame = oof.assign(_group=groups)
    # Groups in the order of their values (degree bins by their lower edge).
    order = frame.assign(_value=values).groupby("_group")["_value"].min().sort_values()
    rank = {g: i for i, g in enumerate(order.index)}
    rows = []
    for learner, of_learner in frame.groupby("learner", sort=False):
        for group, part in sorted(of_learner.groupby("_group"), key=lambda item: rank[item[0]]):
            per_fold = pd.DataFrame(
                [
                    link_metrics((rows_["y_true"] == "edge").to_numpy(), rows_["score"])
                    for _, rows_ in part.groupby("fold")
                ]
            )
            means = per_fold.drop(columns=["n_pos", "n_neg"]).mean(skipna=True)
            rows.append(
                {
                    "learner": learner,
                    "group": group,
                    **means.to_dict(),
                    "n_pos": int(per_fold["n_pos"].sum()),
                    "n_neg": int(per_fold["n_neg"].sum()),
                    "folds": int(per_fold["auroc"].notna().sum()),
                }
            )
    return pd.DataFrame(rows)


@torch.no_grad()
def node_embeddings(
    model: LinkGNN, x: np.ndarray | None, message_passing: np.ndarray, n_nodes: int
) -> np.ndarray:
    """Return the ``(n_nodes, embedding_size)`` embeddings a model gives its fold's graph."""
    model.eval()
    features = None if x is None else torch.as_tensor(np.asarray(x), dtype=torch.float32)
    with deterministic():
        z = model.encode(features, edge_index(message_passing, n_nodes))
    return z.numpy().astype(np.float64)


def _sigmoid(logit: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logit))


def novel_pairs(
    embeddings: Sequence[np.ndarray],
    edges: np.ndarray,
    top: int = 50,
    seen: Sequence[np.ndarray] | None = None,
    min_models: int | None = None,
) -> pd.DataFrame:
    """Rank the node pairs that are not edges by the fold models' mean logit.

    A model scores a pair by the inner product of its two embeddings (the logit). A model
    whose fold held out one of the two nodes (no training edge: an embedding the data never
    shaped) does not vote on the pair, and a pair fewer than ``min_models`` models voted on is
    not ranked: one model's extreme logit for two proteins it saw through one edge each is not
    the ensemble's judgement. Pairs are ranked on the mean logit, not the mean probability,
    which saturates at 1 and would make strong pairs look tied.

    Parameters
    ----------
    embeddings
        Per fold model, ``(n_nodes, d)`` node embeddings (:func:`node_embeddings`).
    edges
        ``(m, 2)`` every edge of the input graph (smaller index first): never listed.
    top
        How many pairs to return.
    seen
        Per fold model, a boolean mask of the nodes with a training edge in its fold; ``None``:
        every model saw every node.
    min_models
        Fewest voting models a ranked pair needs (default: a majority of the models).

    Returns
    -------
    pandas.DataFrame
        ``a``, ``b`` (node indices, ``a < b``), ``logit`` (mean over the models that saw both
        nodes), ``mean`` and ``sd`` of their probabilities, and ``models`` (how many voted),
        best first; equal logits ordered by the node indices.
    """
    if not embeddings:
        raise ValueError("no fold model to rank pairs with")
    n = len(embeddings[0])
    needed = len(embeddings) // 2 + 1 if min_models is None else int(min_models)
    masks = (
        [np.ones(n, bool) for _ in embeddings]
        if seen is None
        else [np.asarray(m, bool) for m in seen]
    )
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    known = np.sort(edges[:, 0] * n + edges[:, 1])
    best_codes, best_logits = np.zeros(0, np.int64), np.zeros(0)
    block = max(1, _BLOCK_SCORES // n)
    for start in range(0, n, block):
        rows = np.arange(start, min(n, start + block))
        total = np.zeros((len(rows), n))
        votes = np.zeros((len(rows), n))
        for z, ok in zip(embeddings, masks, strict=True):
            both = ok[rows][:, None] & ok[None, :]
            total += np.where(both, z[rows] @ z.T, 0.0)
            votes += both
        with np.errstate(invalid="ignore", divide="ignore"):
            logit = np.where(votes >= max(needed, 1), total / np.maximum(votes, 1), -np.inf)
        # Only pairs (i, j) with i < j, and none that is an edge of the input graph.
        logit[np.arange(n)[None, :] <= rows[:, None]] = -np.inf
        lo, hi = np.searchsorted(known, [rows[0] * n, (rows[-1] + 1) * n])
        inside = known[lo:hi]
        logit[inside // n - start, inside % n] = -np.inf
        flat = logit.ravel()
        finite = np.isfinite(flat)
        if not finite.any():
            continue
        keep = min(top, int(finite.sum()))
        threshold = np.partition(flat[finite], len(flat[finite]) - keep)[len(flat[finite]) - keep]
        chosen = np.flatnonzero(flat >= threshold)  # every pair tied at the threshold, too
        codes = rows[chosen // n] * n + chosen % n
        best_codes = np.r_[best_codes, codes]
        best_logits = np.r_[best_logits, flat[chosen]]
        order = np.lexsort((best_codes, -best_logits))[:top]
        best_codes, best_logits = best_codes[order], best_logits[order]
    a, b = best_codes // n, best_codes % n
    voted = np.stack([m[a] & m[b] for m in masks])
    probs = np.stack([_sigmoid(np.sum(z[a] * z[b], axis=1)) for z in embeddings])
    probs = np.where(voted, probs, np.nan)
    return pd.DataFrame(
        {
            "a": a,
            "b": b,
            "logit": best_logits,
            "mean": np.nanmean(probs, axis=0) if len(a) else np.zeros(0),
            "sd": np.nanstd(probs, axis=0) if len(a) else np.zeros(0),
            "models": voted.sum(axis=0),
        }
    )
