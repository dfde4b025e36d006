"""Graph autoencoders for link prediction: they learn a planted structure, rerun identically."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from dlpipe.edge_split import edge_kfold
from dlpipe.link_train import fit_link_model, predict_links
from dlpipe.models.gnn import LinkGNN, edge_index


def _communities(seed: int = 0) -> np.ndarray:
    """Four dense communities of 20 nodes with a few edges between them."""
    rng = np.random.default_rng(seed)
    i, j = np.triu_indices(80, k=1)
    keep = rng.random(len(i)) < np.where(i // 20 == j // 20, 0.5, 0.01)
    return np.stack([i[keep], j[keep]], axis=1)


FOLD = edge_kfold(_communities(), 80, fold=0, n_splits=5, seed=0)


def _train(conv: str, x: np.ndarray | None = None) -> tuple[np.ndarray, list[dict[str, float]]]:
    torch.manual_seed(0)
    n_inputs = 0 if x is None else x.shape[1]
    model = LinkGNN(
        n_inputs, 1, embedding_size=16, conv=conv, hidden_layers=(32,), dropout=0.1, n_nodes=80
    )
    model, history = fit_link_model(
        model, x, FOLD.message_passing, *FOLD.pairs("train"), *FOLD.pairs("val"),
        epochs=100, patience=20, seed=0,
    )  # fmt: skip
    scores = predict_links(model, x, FOLD.message_passing, FOLD.pairs("test")[0])
    # The kept weights are those of the best validation epoch.
    val = predict_links(model, x, FOLD.message_passing, FOLD.pairs("val")[0])
    best = max(h["val_auprc"] for h in history)
    assert average_precision_score(FOLD.pairs("val")[1], val) == pytest.approx(best, abs=1e-6)
    return scores, history


@pytest.mark.parametrize(("conv", "floor"), [("gcn", 0.8), ("sage", 0.75), ("gat", 0.75)])
def test_each_encoder_finds_planted_communities_far_above_chance(conv: str, floor: float) -> None:
    scores, history = _train(conv)
    assert ((scores > 0) & (scores < 1)).all()
    assert roc_auc_score(FOLD.pairs("test")[1], scores) > floor
    assert len(history) < 100  # stopped early on validation auPRC


def test_training_reruns_bit_identically_on_the_cpu() -> None:
    before = torch.are_deterministic_algorithms_enabled()  # an earlier test may have set it
    first, history = _train("gcn")
    again, history_again = _train("gcn")
    np.testing.assert_array_equal(first, again)
    assert history == history_again
    assert torch.are_deterministic_algorithms_enabled() == before  # the setting is restored


def test_training_restores_the_deterministic_setting_it_found() -> None:
    before = torch.are_deterministic_algorithms_enabled()
    try:
        for setting in (False, True):
            torch.use_deterministic_algorithms(setting)
            _train("gcn")
            assert torch.are_deterministic_algorithms_enabled() == setting
    finally:
        torch.use_deterministic_algorithms(before)


def test_node_features_are_read_when_given() -> None:
    # Noisy community indicators as features: the model reads them and does well.
    rng = np.random.default_rng(1)
    x = np.eye(4, dtype=np.float32)[np.arange(80) // 20] + rng.normal(0, 0.3, (80, 4))
    scores, _ = _train("gcn", x.astype(np.float32))
    assert roc_auc_score(FOLD.pairs("test")[1], scores) > 0.8


def test_the_edge_index_holds_both_directions_and_the_decoder_is_symmetric() -> None:
    index = edge_index(np.array([[0, 1], [1, 2]]), 3)
    assert sorted(map(tuple, index.t().tolist())) == [(0, 1), (1, 0), (1, 2), (2, 1)]
    z = torch.randn(3, 4)
    pairs = torch.tensor([[0, 2], [2, 0]])
    logits = LinkGNN.decode(z, pairs)
    assert logits[0] == logits[1]


def test_bad_model_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="conv must be one of"):
        LinkGNN(4, 1, conv="gin")
    with pytest.raises(ValueError, match="needs n_nodes"):
        LinkGNN(0, 1)


def test_a_fixed_graph_is_normalised_once_with_the_same_bits_and_forgotten_after() -> None:
    torch.manual_seed(0)
    model = LinkGNN(0, 1, embedding_size=8, conv="gcn", hidden_layers=(16,), n_nodes=80).eval()
    edges = edge_index(FOLD.message_passing, 80)
    plain = model.encode(None, edges)
    with model.fixed_graph():
        first = model.encode(None, edges)
        assert all(layer._cached_edge_index is not None for layer in model.convs)
        again = model.encode(None, edges)
    assert torch.equal(plain, first)
    assert torch.equal(plain, again)
    assert all(not layer.cached and layer._cached_edge_index is None for layer in model.convs)
    # Other graphs are normalised afresh after the block.
    assert not torch.equal(model.encode(None, edges[:, :10]), plain)
