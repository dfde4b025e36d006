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
    seen = [np.ones(n, bool), np.ones(n, bool), np.arange(n) >= 5]  # model 3 held out 0-4
    edges = np.array([(a, b) for a, b in itertools.combinations(range(n), 2) if rng.random() < 0.2])
    known = set(map(tuple, edges.tolist()))
    expected = []
    for a, b in itertools.combinations(range(n), 2):
        if (a, b) in known:
            continue
        voters = [z for z, ok in zip(embeddings, seen, strict=True) if ok[a] and ok[b]]
        expected.append((-np.mean([z[a] @ z[b] for z in voters]), a, b, len(voters)))
    expected.sort()
    got = novel_pairs(embeddings, edges, top=15, seen=seen, min_models=1)
    assert list(zip(got["a"], got["b"], strict=True)) == [(a, b) for _, a, b, _ in expected[:15]]
    assert np.allclose(got["logit"], [-m for m, _, _, _ in expected[:15]])
    assert got["models"].tolist() == [k for _, _, _, k in expected[:15]]
    assert (got["sd"] >= 0).all()
    assert got["mean"].between(0, 1).all()


def test_a_pair_no_model_saw_both_ends_of_is_not_ranked() -> None:
    z = np.eye(4)
    seen = [np.array([True, True, True, False])]
    got = novel_pairs([z], np.array([[0, 1]]), top=10, seen=seen)
    assert 3 not in set(got["a"]) | set(got["b"])
    assert len(got) == 2  # (0, 2) and (1, 2)
    # Three models, one of which held out node 3: a pair with node 3 has 2 of 3 votes (a
    # majority); with node 3 held out by two models, it has 1 and is not ranked.
    three = [np.ones(4, bool), np.ones(4, bool), np.array([True, True, True, False])]
    assert 3 in set(novel_pairs([z, z, z], np.array([[0, 1]]), top=10, seen=three)["b"])
    three[1] = three[2]
    assert 3 not in set(novel_pairs([z, z, z], np.array([[0, 1]]), top=10, seen=three)["b"])


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


@pytest.mark.parametrize(("low", "tie"), [(9.88, True), (7.0, False)])
def test_the_report_calls_near_equal_novel_pairs_a_tie(tmp_path, low: float, tie: bool) -> None:
    from dlpipe.io.files import write_json
    from dlpipe.report.graph import graph_interpretation

    write_json({"novel_pairs": 2, "novel_pairs_closing_triangles": 0, "fold_models": 5},
               tmp_path / "summary.json")  # fmt: skip
    grouped = pd.DataFrame({"learner": ["gnn"], "group": ["0"], "auroc": [0.5], "auprc": [0.5],
                            "hits@100": [np.nan], "n_pos": [1], "n_neg": [1]})  # fmt: skip
    grouped.to_csv(tmp_path / "by_degree.tsv", sep="\t", index=False)
    pd.DataFrame({"rank": [1, 2], "node_a": ["A", "A"], "node_b": ["B", "C"],
                  "logit_mean": [9.9, low], "probability_mean": [0.99, 0.98],
                  "probability_sd": [0.0, 0.0], "models": [5, 5],
                  "degree_a": [1, 1], "degree_b": [1, 2], "common_neighbours": [0, 0]}).to_csv(
        tmp_path / "novel_pairs.tsv", sep="\t", index=False)  # fmt: skip
    section = graph_interpretation(tmp_path, "g")
    assert ("order is no ranking" in section["spread"]) == tie
    assert section["by_unseen"] is None


def test_a_learner_ranked_on_auprc_is_called_at_chance_by_its_auroc() -> None:
    from dlpipe.report.trust import chance_note
    from dlpipe.steps.compare import chance_flag

    metrics = pd.DataFrame({
        "learner": ["gnn", "gnn", "cn", "cn"], "metric": ["auprc", "auroc"] * 2,
        "ci95_low": [0.49, 0.49, 0.90, 0.91], "ci95_high": [0.51, 0.51, 0.95, 0.96],
    })  # fmt: skip
    assert chance_note(metrics, "gnn", "auprc").startswith("at chance: its auroc interval")
    assert chance_note(metrics, "cn", "auprc") == ""
    assert chance_flag(metrics, "gnn", "auprc")
    assert not chance_flag(metrics, "cn", "auprc")


def test_small_p_values_are_never_shown_as_zero() -> None:
    from dlpipe.report.render import fmt_p

    assert fmt_p(6.6e-5) == "6.6e-05"
    assert fmt_p(0.0312) == "0.0312"
    assert fmt_p(0.0) == "0.0000"
    assert fmt_p(float("nan")) == "–"
