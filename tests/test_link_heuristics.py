"""Link heuristics: hand-checked on a small graph, equal to networkx's, fitted without leakage."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from dlpipe.edge_split import edge_kfold
from dlpipe.link_heuristics import (
    HEURISTICS,
    REGRESSION,
    adjacency,
    heuristic_baselines,
    heuristic_scores,
)

#: 0-1, 0-2, 1-2 (a triangle), 2-3, 3-4 (a tail); node 5 has no edge.
SMALL = np.array([[0, 1], [0, 2], [1, 2], [2, 3], [3, 4]])


@pytest.mark.parametrize(
    ("pair", "common", "adamic_adar", "preferential"),
    [
        ((0, 3), 1, 1 / math.log(3), 2 * 2),  # shared neighbour 2 (degree 3)
        ((1, 3), 1, 1 / math.log(3), 2 * 2),
        ((2, 4), 1, 1 / math.log(2), 3 * 1),  # shared neighbour 3 (degree 2)
        ((0, 4), 0, 0.0, 2 * 1),
        ((4, 5), 0, 0.0, 0),
        ((0, 1), 1, 1 / math.log(3), 1 * 1),  # an edge: its own edge leaves both degrees
    ],
)
def test_heuristics_of_a_small_graph_match_hand_counts(
    pair: tuple[int, int], common: int, adamic_adar: float, preferential: int
) -> None:
    scores = heuristic_scores(adjacency(SMALL, 6), np.array([pair]))
    assert scores["common_neighbours"].tolist() == [common]
    assert scores["adamic_adar"][0] == pytest.approx(adamic_adar, rel=1e-12)
    assert scores["preferential_attachment"].tolist() == [preferential]


def _networkx(graph: nx.Graph, pairs: list[tuple[int, int]]) -> dict[str, list[float]]:
    return {
        "common_neighbours": [len(list(nx.common_neighbors(graph, u, v))) for u, v in pairs],
        "adamic_adar": [s for _, _, s in nx.adamic_adar_index(graph, pairs)],
        "preferential_attachment": [s for _, _, s in nx.preferential_attachment(graph, pairs)],
    }


def test_heuristics_equal_networkx_on_non_edges_and_on_edges_left_out() -> None:
    rng = np.random.default_rng(0)
    n = 120
    graph = nx.gnm_random_graph(n, 600, seed=1)
    graph.add_nodes_from(range(n))
    edges = np.array(sorted(graph.edges()))
    adj = adjacency(edges, n)
    non_edges = [
        (int(u), int(v))
        for u, v in rng.integers(0, n, (400, 2))
        if u != v and not graph.has_edge(int(u), int(v))
    ]
    ours = heuristic_scores(adj, np.array(non_edges))
    theirs = _networkx(graph, non_edges)
    for name in HEURISTICS:
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-12, err_msg=name)
    # An edge is scored as networkx scores it on the graph without that edge.
    for u, v in edges[rng.choice(len(edges), 40, replace=False)].tolist():
        without = graph.copy()
        without.remove_edge(u, v)
        ours = heuristic_scores(adj, np.array([[u, v]]))
        theirs = _networkx(without, [(u, v)])
        for name in HEURISTICS:
            np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-12, err_msg=name)


def _communities(seed: int = 0) -> np.ndarray:
    """Four dense communities of 20 nodes with a few edges between them."""
    rng = np.random.default_rng(seed)
    i, j = np.triu_indices(80, k=1)
    same = i // 20 == j // 20
    keep = rng.random(len(i)) < np.where(same, 0.5, 0.01)
    return np.stack([i[keep], j[keep]], axis=1)


def test_baselines_score_held_out_edges_above_negatives_and_rerun_identically() -> None:
    edges = _communities()
    fold = edge_kfold(edges, 80, fold=0, n_splits=5, seed=0)
    train_pairs, train_labels = fold.pairs("train")
    test_pairs, test_labels = fold.pairs("test")
    scores = heuristic_baselines(
        fold.message_passing, 80, train_pairs, train_labels, test_pairs, seed=0
    )
    assert set(scores) == {*HEURISTICS, REGRESSION}
    for name in ("common_neighbours", "adamic_adar", REGRESSION):
        assert roc_auc_score(test_labels, scores[name]) > 0.8, name
    assert ((scores[REGRESSION] > 0) & (scores[REGRESSION] < 1)).all()
    again = heuristic_baselines(
        fold.message_passing, 80, train_pairs, train_labels, test_pairs, seed=0
    )
    for name, values in scores.items():
        np.testing.assert_array_equal(values, again[name])


def test_held_out_edges_never_count_as_neighbours() -> None:
    # A pair whose only shared neighbour is reached through a held-out edge shares none.
    edges = np.array([[0, 2], [1, 2], [0, 3]])
    message_passing = edges[:2]
    scores = heuristic_scores(adjacency(message_passing, 4), np.array([[1, 3], [0, 1]]))
    assert scores["common_neighbours"].tolist() == [0, 1]
    assert scores["preferential_attachment"].tolist() == [0, 1]
