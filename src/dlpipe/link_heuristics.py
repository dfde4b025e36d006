"""Link-prediction baselines: neighbourhood heuristics and a logistic regression on them.

Every score is counted on the fold's message-passing graph (its training edges) only, and each
pair is scored as if it were not an edge: a training positive's own edge is left out of its
degrees (common neighbours and Adamic–Adar never count it), so a pair fitted on looks to the
regression as a held-out pair does. Vectorised with sparse matrices (networkx loops over pairs
in Python); the tests check every score against networkx's ``common_neighbors``,
``adamic_adar_index`` and ``preferential_attachment``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

HEURISTICS = ("common_neighbours", "adamic_adar", "preferential_attachment")
#: Name of the logistic regression on the three heuristics.
REGRESSION = "heuristic_regression"


def adjacency(edges: np.ndarray, n_nodes: int) -> sp.csr_matrix:
    """Return the symmetric 0/1 adjacency matrix of an undirected graph.

    Parameters
    ----------
    edges
        ``(m, 2)`` node-index pairs (each edge once; the message-passing graph of a fold).
    n_nodes
        Number of nodes (nodes without an edge get an empty row).

    Returns
    -------
    scipy.sparse.csr_matrix
        ``n_nodes × n_nodes`` float64, ones at both ``(a, b)`` and ``(b, a)``.
    """
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    rows = np.r_[edges[:, 0], edges[:, 1]]
    cols = np.r_[edges[:, 1], edges[:, 0]]
    adj = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_nodes, n_nodes))
    adj.sum_duplicates()
    adj.data[:] = 1.0  # a repeated edge is one edge
    return adj


def heuristic_scores(adj: sp.csr_matrix, pairs: np.ndarray) -> dict[str, np.ndarray]:
    """Score node pairs by common neighbours, Adamic–Adar and preferential attachment.

    Parameters
    ----------
    adj
        Adjacency matrix of the message-passing graph (:func:`adjacency`).
    pairs
        ``(n, 2)`` node-index pairs to score (two different nodes each).

    Returns
    -------
    dict
        ``{name: (n,) float64 scores}`` for the names of :data:`HEURISTICS`: the number of
        shared neighbours; the sum over them of ``1 / log(degree)``; the product of the two
        degrees, where a pair that is itself an edge of ``adj`` does not count that edge.
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    u, v = pairs[:, 0], pairs[:, 1]
    degree = np.asarray(adj.sum(axis=1)).ravel()
    # A shared neighbour has degree >= 2, so its log is positive.
    inverse_log = np.zeros_like(degree)
    hub = degree > 1
    inverse_log[hub] = 1.0 / np.log(degree[hub])
    shared = adj[u].multiply(adj[v]).tocsr()  # row k: the common neighbours of pair k
    own_edge = np.asarray(adj[u, v]).ravel()
    return {
        "common_neighbours": np.asarray(shared.sum(axis=1)).ravel(),
        "adamic_adar": shared @ inverse_log,
        "preferential_attachment": (degree[u] - own_edge) * (degree[v] - own_edge),
    }


def heuristic_matrix(adj: sp.csr_matrix, pairs: np.ndarray) -> np.ndarray:
    """Return the :data:`HEURISTICS` scores of pairs as an ``(n, 3)`` feature matrix."""
    scores = heuristic_scores(adj, pairs)
    return np.column_stack([scores[name] for name in HEURISTICS])


def heuristic_regression(seed: int = 0) -> Pipeline:
    """Return an unfitted logistic regression on log-scaled heuristic scores.

    Heuristic scores are heavy-tailed (hubs), so each is taken as ``log(1 + score)`` and
    standardised before the regression.
    """
    return make_pipeline(
        FunctionTransformer(np.log1p, feature_names_out="one-to-one"),
        StandardScaler(),
        LogisticRegression(max_iter=1000, random_state=seed),
    )


def heuristic_baselines(
    message_passing: np.ndarray,
    n_nodes: int,
    fit_pairs: np.ndarray,
    fit_labels: np.ndarray,
    score_pairs: np.ndarray,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Score pairs with every heuristic and with a logistic regression fitted on them.

    Parameters
    ----------
    message_passing
        The fold's message-passing edges (its training positives).
    n_nodes
        Number of nodes.
    fit_pairs, fit_labels
        Pairs the regression is fitted on and their 0/1 labels (the fold's training side).
    score_pairs
        Pairs to score (the fold's validation or test side).
    seed
        Seed of the regression.

    Returns
    -------
    dict
        ``{name: (n,) scores of score_pairs}``, the three :data:`HEURISTICS` (higher: more
        likely an edge) and :data:`REGRESSION` (a probability).
    """
    fitted = fit_link_baselines(
        BASELINE_KINDS, message_passing, n_nodes, fit_pairs, fit_labels, seed
    )
    adj = adjacency(message_passing, n_nodes)
    return {kind: link_baseline_scores(model, adj, score_pairs) for kind, model in fitted.items()}


#: Baseline kinds of a graph experiment: the heuristics, then the regression on them.
BASELINE_KINDS = (*HEURISTICS, REGRESSION)

_TEXT = {
    "common_neighbours": "common neighbours (the number of neighbours two proteins share)",
    "adamic_adar": "Adamic–Adar (shared neighbours, each weighted by 1 / log of its degree)",
    "preferential_attachment": "preferential attachment (the product of the two degrees)",
    REGRESSION: "logistic regression on log(1 + score) of the three heuristics",
}


def heuristic_text(kind: str) -> str:
    """Describe a baseline kind in words; every one is counted on the training edges only."""
    return f"{_TEXT[kind]}, counted on the fold's training edges"


def fit_link_baselines(
    kinds: list[str] | tuple[str, ...],
    message_passing: np.ndarray,
    n_nodes: int,
    pairs: np.ndarray,
    labels: np.ndarray,
    seed: int = 0,
) -> dict[str, Pipeline | str]:
    """Fit the baselines of a fold: the regression on the training pairs; heuristics need none.

    Returns
    -------
    dict
        ``{kind: fitted}``: the fitted :func:`heuristic_regression`, or a heuristic's own name
        (it is counted, not fitted).
    """
    fitted: dict[str, Pipeline | str] = {}
    adj = adjacency(message_passing, n_nodes) if REGRESSION in kinds else None
    for kind in kinds:
        if kind == REGRESSION:
            fitted[kind] = heuristic_regression(seed).fit(heuristic_matrix(adj, pairs), labels)
        elif kind in HEURISTICS:
            fitted[kind] = kind
        else:
            raise ValueError(f"unknown link baseline {kind!r}; use some of {BASELINE_KINDS}")
    return fitted


def link_baseline_scores(
    fitted: Pipeline | str, adj: sp.csr_matrix, pairs: np.ndarray
) -> np.ndarray:
    """Score pairs with a baseline of :func:`fit_link_baselines` (higher: likelier an edge).

    ``adj`` is the fold's training graph (:func:`adjacency` of its message-passing edges).
    """
    if isinstance(fitted, str):
        return heuristic_scores(adj, pairs)[fitted].astype(np.float64)
    return fitted.predict_proba(heuristic_matrix(adj, pairs))[:, 1].astype(np.float64)
