"""Link-prediction folds: no held-out edge in the training graph, no negative that is an edge."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlpipe import edge_split
from dlpipe.edge_split import (
    LinkFold,
    cold_start_kfold,
    edge_kfold,
    link_folds,
    read_link_fold,
    sample_non_edges,
    write_link_fold,
)
from dlpipe.errors import InputError

SETTINGS = settings(
    max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
PAIR_ARRAYS = ("train_pos", "val_pos", "test_pos", "train_neg", "val_neg", "test_neg")


def _graph(n: int, p: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    i, j = np.triu_indices(n, k=1)
    keep = rng.random(len(i)) < p
    return np.stack([i[keep], j[keep]], axis=1)


EDGES = _graph(80, 0.08, 1)


def _set(pairs: np.ndarray) -> set[tuple[int, int]]:
    return set(map(tuple, pairs.tolist()))


def _check_leak_free(fold: LinkFold, edges: np.ndarray) -> None:
    graph = _set(edges)
    pos = {side: _set(getattr(fold, f"{side}_pos")) for side in edge_split.SIDES}
    neg = {side: _set(getattr(fold, f"{side}_neg")) for side in edge_split.SIDES}
    # Positives: the graph's edges, on one side each; only training ones carry messages.
    assert pos["train"] | pos["val"] | pos["test"] <= graph
    assert not pos["train"] & pos["val"]
    assert not pos["train"] & pos["test"]
    assert not pos["val"] & pos["test"]
    message = _set(fold.message_passing)
    assert message == pos["train"]
    assert not message & (pos["val"] | pos["test"])
    # Negatives: never an edge of the whole graph, never on two sides, as many as positives.
    for side in edge_split.SIDES:
        assert not neg[side] & graph
        assert len(neg[side]) == len(getattr(fold, f"{side}_neg"))  # no pair drawn twice
        assert len(neg[side]) == len(pos[side])
    assert not neg["train"] & neg["val"]
    assert not neg["train"] & neg["test"]
    assert not neg["val"] & neg["test"]
    for name in PAIR_ARRAYS:
        pairs = getattr(fold, name)
        assert pairs.dtype == np.int64
        assert (pairs[:, 0] < pairs[:, 1]).all(), name
        assert pairs.tolist() == sorted(pairs.tolist()), name


@pytest.mark.parametrize("seed", [0, 3])
def test_edge_kfold_tests_every_edge_once_and_never_propagates_over_held_out_edges(
    seed: int,
) -> None:
    folds = link_folds(EDGES, 80, "edge_kfold", n_splits=5, seed=seed)
    tested = np.concatenate([f.test_pos for f in folds])
    assert sorted(map(tuple, tested.tolist())) == sorted(_set(EDGES))
    for fold in folds:
        _check_leak_free(fold, EDGES)
        assert _set(fold.train_pos) | _set(fold.val_pos) | _set(fold.test_pos) == _set(EDGES)
        assert len(fold.val_pos) == round(0.1 * (len(EDGES) - len(fold.test_pos)))
        assert not fold.unseen().any()


@pytest.mark.parametrize("seed", [0, 3])
def test_cold_start_holds_out_test_nodes_with_all_their_edges(seed: int) -> None:
    folds = link_folds(EDGES, 80, "cold_start_kfold", n_splits=4, seed=seed)
    test_nodes = []
    for fold in folds:
        _check_leak_free(fold, EDGES)
        in_training = set(fold.message_passing.ravel().tolist())
        unseen, val_nodes = set(fold.test_nodes.tolist()), set(fold.val_nodes.tolist())
        test_nodes.append(unseen)
        assert not unseen & in_training
        assert not val_nodes & in_training
        assert not unseen & val_nodes
        # Every test pair has one (new against known) or two unseen endpoints, as tagged; the
        # known endpoint is a training node, never a validation node.
        pairs = fold.pairs("test")[0]
        assert np.isin(pairs, fold.test_nodes).sum(axis=1).tolist() == fold.unseen().tolist()
        assert set(fold.unseen().tolist()) <= {1, 2}
        assert not np.isin(pairs, fold.val_nodes).any()
        # Validation pairs touch a validation node; training negatives only training nodes.
        assert np.isin(fold.pairs("val")[0], fold.val_nodes).any(axis=1).all()
        held_out = np.r_[fold.val_nodes, fold.test_nodes]
        assert not np.isin(fold.pairs("train")[0], held_out).any()
        # Negatives matched to the positives' mix of one and two unseen endpoints.
        assert (
            np.bincount(fold.test_pos_unseen, minlength=3).tolist()
            == np.bincount(fold.test_neg_unseen, minlength=3).tolist()
        )
        # Edges with a test node are all on the test side (bar those to a validation node).
        touching = {e for e in _set(EDGES) if set(e) & unseen and not set(e) & val_nodes}
        assert touching == _set(fold.test_pos)
    # The folds' test nodes partition the nodes: every node is held out exactly once.
    assert sorted(n for t in test_nodes for n in t) == list(range(80))


@pytest.mark.parametrize("plan", edge_split.LINK_PLANS)
def test_a_rerun_gives_identical_folds_and_another_seed_other_folds(plan: str) -> None:
    first = link_folds(EDGES, 80, plan, n_splits=3, seed=0)
    again = link_folds(EDGES, 80, plan, n_splits=3, seed=0)
    other = link_folds(EDGES, 80, plan, n_splits=3, seed=1)
    for a, b, c in zip(first, again, other, strict=True):
        for name in (*PAIR_ARRAYS, "test_pos_unseen", "test_neg_unseen"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert a.summary == b.summary
        assert not np.array_equal(a.test_neg, c.test_neg)
    # A fold built alone (one job per fold) is the fold of the whole plan.
    alone = (edge_kfold if plan == "edge_kfold" else cold_start_kfold)(EDGES, 80, 2, 3, 0)
    np.testing.assert_array_equal(alone.train_neg, first[2].train_neg)


@SETTINGS
@given(
    n=st.integers(12, 40),
    p=st.floats(0.15, 0.5),
    graph_seed=st.integers(0, 2**16),
    seed=st.integers(0, 3),
    plan=st.sampled_from(edge_split.LINK_PLANS),
)
def test_no_random_graph_leaks(n: int, p: float, graph_seed: int, seed: int, plan: str) -> None:
    edges = _graph(n, p, graph_seed)
    try:
        folds = link_folds(edges, n, plan, n_splits=2, seed=seed, val_fraction=0.2)
    except InputError as err:  # too few edges or non-edges: refused, with the fix
        assert "n_splits" in str(err) or "fewer" in str(err)  # noqa: PT017
        return
    for fold in folds:
        _check_leak_free(fold, edges)


def test_rejection_sampling_of_a_large_pool_keeps_the_same_guarantees(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(edge_split, "_ENUMERATE", 0)
    for plan in edge_split.LINK_PLANS:
        for fold in link_folds(EDGES, 80, plan, n_splits=3, seed=0):
            _check_leak_free(fold, EDGES)


def test_sampled_non_edges_avoid_forbidden_pairs_and_stay_in_their_pool() -> None:
    forbidden = np.sort(np.array([0 * 10 + 1, 2 * 10 + 3]))
    within = sample_non_edges(np.random.default_rng(0), 10, 4, forbidden, np.arange(4), None)
    assert _set(within) == {(0, 2), (0, 3), (1, 2), (1, 3)}
    between = sample_non_edges(
        np.random.default_rng(0), 10, 4, forbidden, np.array([0, 1]), np.array([2, 3])
    )
    assert _set(between) == {(0, 2), (0, 3), (1, 2), (1, 3)}
    with pytest.raises(InputError, match="only 0 test pairs exist that are not edges"):
        sample_non_edges(
            np.random.default_rng(0), 10, 1, forbidden, np.array([0, 1]), None, "test pairs"
        )


@pytest.mark.parametrize(
    ("edges", "n", "kwargs", "message"),
    [
        (EDGES[:5], 80, {"n_splits": 5}, "the graph has 5 edges, too few for cv.n_splits=5"),
        (EDGES, 80, {"n_splits": 1}, "needs at least 2 folds"),
        (EDGES, 80, {"val_fraction": 0.0}, "cv.val_fraction=0.0"),
        (np.array(np.triu_indices(8, k=1)).T, 8, {"n_splits": 2}, "fewer than the"),
    ],
)
def test_impossible_plans_are_refused(
    edges: np.ndarray, n: int, kwargs: dict[str, float], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        link_folds(edges, n, "edge_kfold", **kwargs)  # type: ignore[arg-type]


def test_malformed_edges_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="smaller one first"):
        edge_kfold(np.array([[3, 1]] * 20), 5, 0)
    with pytest.raises(ValueError, match="unique"):
        edge_kfold(np.array([[0, 1]] * 20), 5, 0)


@pytest.mark.parametrize("plan", edge_split.LINK_PLANS)
def test_a_written_fold_reads_back_equal(plan: str, tmp_path: Path) -> None:
    fold = link_folds(EDGES, 80, plan, n_splits=3, seed=0)[1]
    write_link_fold(fold, tmp_path / "fold.npz")
    back = read_link_fold(tmp_path / "fold.npz")
    write_link_fold(fold, tmp_path / "again.npz")
    assert (tmp_path / "fold.npz").read_bytes() == (tmp_path / "again.npz").read_bytes()
    assert (back.plan, back.fold, back.n_nodes) == (plan, 1, 80)
    assert back.summary == fold.summary
    for name in (*PAIR_ARRAYS, "test_pos_unseen", "test_neg_unseen", "test_nodes", "val_nodes"):
        np.testing.assert_array_equal(getattr(back, name), getattr(fold, name))
        assert getattr(back, name).dtype == getattr(fold, name).dtype, name


def test_a_damaged_or_foreign_fold_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="cannot be read as a link-prediction fold"):
        read_link_fold(tmp_path / "bad.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    with pytest.raises(InputError, match="not a link-prediction fold"):
        read_link_fold(tmp_path / "other.npz")
    with pytest.raises(InputError, match="cannot be read"):
        read_link_fold(tmp_path / "missing.npz")
