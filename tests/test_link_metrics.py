"""Link-prediction metrics: Hits@K as the Open Graph Benchmark counts it, groups, degree bins."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dlpipe.link_metrics import degree_bins, hits_at_k, link_metrics, link_metrics_by


def test_hits_at_k_counts_positives_above_the_kth_best_negative() -> None:
    negative = np.array([0.9, 0.5, 0.3, 0.1])
    positive = np.array([0.95, 0.6, 0.5, 0.2])
    assert hits_at_k(positive, negative, 1) == 0.25  # only 0.95 beats 0.9
    assert hits_at_k(positive, negative, 2) == 0.5  # 0.95 and 0.6 beat 0.5; a tie does not
    assert hits_at_k(positive, negative, 4) == 1.0  # all beat 0.1
    assert math.isnan(hits_at_k(positive, negative, 5))  # fewer negatives than K: undefined
    assert math.isnan(hits_at_k(np.array([]), negative, 1))
    with pytest.raises(ValueError, match="at least 1"):
        hits_at_k(positive, negative, 0)


def test_link_metrics_of_a_perfect_and_a_one_class_ranking() -> None:
    labels = np.array([1, 1, 0, 0, 0])
    perfect = link_metrics(labels, np.array([0.9, 0.8, 0.3, 0.2, 0.1]), hits_at=(1, 3))
    assert perfect == {
        "auroc": 1.0, "auprc": 1.0, "hits@1": 1.0, "hits@3": 1.0, "n_pos": 2, "n_neg": 3,
    }  # fmt: skip
    reversed_ = link_metrics(labels, np.array([0.1, 0.2, 0.3, 0.8, 0.9]), hits_at=(1,))
    assert reversed_["auroc"] == 0.0
    assert reversed_["hits@1"] == 0.0
    one_class = link_metrics(np.ones(3), np.array([0.1, 0.2, 0.3]), hits_at=(1,))
    assert all(math.isnan(one_class[k]) for k in ("auroc", "auprc", "hits@1"))
    assert (one_class["n_pos"], one_class["n_neg"]) == (3, 0)


def test_metrics_by_group_take_each_group_alone() -> None:
    labels = np.array([1, 0, 1, 0, 1])
    scores = np.array([0.9, 0.1, 0.2, 0.8, 0.5])
    table = link_metrics_by(labels, scores, np.array([1, 1, 2, 2, 2]), name="unseen")
    assert table["unseen"].tolist() == [1, 2]
    assert table["auroc"].tolist() == [1.0, 0.0]
    assert table["n_pos"].tolist() == [1, 2]


def test_degree_bins_use_the_smaller_degree_in_the_message_passing_graph() -> None:
    # Degrees: node 0: 11 (a hub), nodes 1-11: 1, node 12: 0 (no training edge), 13: 0.
    star = np.array([[0, i] for i in range(1, 12)])
    pairs = np.array([[0, 1], [0, 12], [1, 2], [12, 13]])
    assert degree_bins(pairs, star, 14).tolist() == ["1-2", "0", "1-2", "0"]
    hub_pairs = np.array([[0, 0]])
    assert degree_bins(hub_pairs, star, 14).tolist() == [">=10"]
    three = np.array([[0, 1], [0, 2], [0, 3], [1, 2]])
    assert degree_bins(np.array([[0, 1]]), three, 4).tolist() == ["1-2"]
    assert degree_bins(np.array([[0, 0]]), three, 4).tolist() == ["3-9"]


@pytest.mark.parametrize("edges", [(1, 3), (0, 3, 3), ()])
def test_degree_bins_refuse_edges_that_would_misfile_a_degree(edges: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="increasing edges from 0"):
        degree_bins(np.array([[0, 1]]), np.array([[0, 1]]), 2, edges)
