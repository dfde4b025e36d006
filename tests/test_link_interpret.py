"""Link-prediction interpretation: novel pairs ranked without edges, metrics by group per fold."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from dlpipe.link_interpret import grouped_link_metrics, novel_pairs


def test_novel_pairs_match_a_brute_force_ranking_of_every_non_edge() -> None:
    rng = np.random.default_rng(0)
    n = 30
    embeddings = [rng.normal(size=(n, 4)) for _ in range(3)]
    edges = np.array([(a, b) for a, b in itertools.combinations(range(n), 2) if rng.random() < 0.2])
    known = set(map(tuple, edges.tolist()))
    expected = []
    for a, b in itertools.combinations(range(n), 2):
        if (a, b) in known:
            continue
        p = [1 / (1 + np.exp(-z[a] @ z[b])) for z in embeddings]
        expected.append((-np.mean(p), a, b))
    expected.sort()
    got = novel_pairs(embeddings, edges, top=15)
    assert list(zip(got["a"], got["b"], strict=True)) == [(a, b) for _, a, b in expected[:15]]
    assert np.allclose(got["mean"], [-m for m, _, _ in expected[:15]])
    assert (got["sd"] >= 0).all()


def test_novel_pairs_never_list_an_edge_or_a_self_pair_even_when_top_exceeds_them() -> None:
    z = np.eye(4)
    edges = np.array([[0, 1], [0, 2], [0, 3], [1, 2], [1, 3]])
    got = novel_pairs([z], edges, top=10)
    assert list(zip(got["a"], got["b"], strict=True)) == [(2, 3)]
    with pytest.raises(ValueError, match="no fold model"):
        novel_pairs([], edges)


def test_grouped_metrics_are_computed_within_folds_never_across_them() -> None:
    # Per fold a learner ties every pair at its own constant: no fold ranks anything, so every
    # group must read 0.5 — pooled across folds, the constants would fake a ranking.
    rows = []
    for fold, constant in ((0, 0.2), (1, 0.8)):
        truth = ["edge"] * 10 + ["non_edge"] * 10
        score = [constant] * 10 + [constant] * 10
        if fold == 1:
            truth = ["edge"] * 15 + ["non_edge"] * 5
        rows.append(pd.DataFrame({"learner": "flat", "fold": fold, "y_true": truth,
                                  "score": score, "unseen": 1, "min_degree": 4}))  # fmt: skip
    frame = pd.concat(rows)
    table = grouped_link_metrics(frame, "min_degree")
    assert table["group"].tolist() == ["3-9"]
    assert table["auroc"].iloc[0] == 0.5
    assert table["folds"].iloc[0] == 2
    assert table["n_pos"].iloc[0] == 25
    assert np.isnan(table["hits@20"].iloc[0])  # fewer than 20 non-edges per fold
