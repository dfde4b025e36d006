"""Link-model training: the device argument, and speed-ups that change no bit of the result."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.utils.deterministic
from sklearn.metrics import average_precision_score, roc_auc_score
from torch import nn

from dlpipe.edge_split import edge_kfold
from dlpipe.link_train import fit_link_model, predict_links
from dlpipe.models.gnn import LinkGNN, edge_index


def _two_communities(seed: int = 0) -> np.ndarray:
    """Two dense communities of 25 nodes with a few edges between them."""
    rng = np.random.default_rng(seed)
    i, j = np.triu_indices(50, k=1)
    keep = rng.random(len(i)) < np.where(i // 25 == j // 25, 0.4, 0.02)
    return np.stack([i[keep], j[keep]], axis=1)


FOLD = edge_kfold(_two_communities(), 50, fold=0, n_splits=5, seed=0)


def _model(conv: str = "gcn") -> LinkGNN:
    torch.manual_seed(0)
    return LinkGNN(0, 1, embedding_size=8, conv=conv, hidden_layers=(16,), dropout=0.2, n_nodes=50)


def _fit(model: LinkGNN, **settings: object) -> tuple[LinkGNN, list[dict[str, float]]]:
    return fit_link_model(
        model, None, FOLD.message_passing, *FOLD.pairs("train"), *FOLD.pairs("val"),
        epochs=40, patience=10, seed=3, **settings,
    )  # fmt: skip


def _reference_fit(model: LinkGNN) -> tuple[LinkGNN, list[dict[str, float]]]:
    """The training loop as it was before the device argument and the cached normalisation."""
    torch.manual_seed(3)
    edges = edge_index(FOLD.message_passing, 50)
    (train, train_labels), (val, val_labels) = FOLD.pairs("train"), FOLD.pairs("val")
    pairs, target = torch.as_tensor(train), torch.as_tensor(train_labels, dtype=torch.float32)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    loss_fn = nn.BCEWithLogitsLoss()
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        best, state, waited, history = -1.0, copy.deepcopy(model.state_dict()), 0, []
        for epoch in range(40):
            model.train()
            optimiser.zero_grad()
            loss = loss_fn(model(None, edges, pairs), target)
            loss.backward()
            optimiser.step()
            model.eval()
            with torch.no_grad():
                scores = model(None, edges, torch.as_tensor(val)).numpy()
            auprc = float(average_precision_score(val_labels, scores))
            history.append({"epoch": epoch, "loss": loss.item(), "val_auprc": auprc})
            if auprc > best:
                best, state, waited = auprc, copy.deepcopy(model.state_dict()), 0
            else:
                waited += 1
                if waited >= 10:
                    break
    finally:
        torch.use_deterministic_algorithms(before)
    model.load_state_dict(state)
    return model.eval(), history


@pytest.mark.parametrize("conv", ["gcn", "sage"])
def test_training_on_the_cpu_gives_the_bits_of_the_loop_before(conv: str) -> None:
    reference, reference_history = _reference_fit(_model(conv))
    model, history = _fit(_model(conv), device="cpu")
    default, default_history = _fit(_model(conv))
    assert history == reference_history == default_history
    for name, weights in reference.state_dict().items():
        assert torch.equal(model.state_dict()[name], weights), name
        assert torch.equal(default.state_dict()[name], weights), name
    test = FOLD.pairs("test")[0]
    np.testing.assert_array_equal(
        predict_links(model, None, FOLD.message_passing, test, device="cpu"),
        predict_links(reference, None, FOLD.message_passing, test),
    )


def test_the_model_comes_back_on_the_cpu_with_float64_probabilities() -> None:
    model, _ = _fit(_model(), device="cpu")
    assert all(p.device.type == "cpu" for p in model.parameters())
    scores = predict_links(model, None, FOLD.message_passing, FOLD.pairs("test")[0])
    assert scores.dtype == np.float64
    assert ((scores > 0) & (scores < 1)).all()
    # The GCN layers forgot the training graph: another graph is normalised afresh.
    assert all(not layer.cached and layer._cached_edge_index is None for layer in model.convs)


def test_training_restores_the_memory_fill_setting() -> None:
    before = torch.utils.deterministic.fill_uninitialized_memory
    _fit(_model())
    assert torch.utils.deterministic.fill_uninitialized_memory == before


def test_bad_devices_are_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="device must be a torch device"):
        _fit(_model(), device="gpu0")
    with pytest.raises(ValueError, match="device must be a torch device"):
        predict_links(_model(), None, FOLD.message_passing, FOLD.pairs("test")[0], device="tpu!")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="torch sees no CUDA device"):
            _fit(_model(), device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_on_a_gpu_returns_a_cpu_model_that_scores_as_on_the_gpu() -> None:
    model, history = _fit(_model(), device="cuda")
    assert all(p.device.type == "cpu" for p in model.parameters())
    _, history_again = _fit(_model(), device="cuda")
    assert history == history_again  # rerun on the same GPU: the same result
    test, labels = FOLD.pairs("test")
    on_gpu = predict_links(model, None, FOLD.message_passing, test, device="cuda")
    on_cpu = predict_links(model, None, FOLD.message_passing, test)
    np.testing.assert_allclose(on_gpu, on_cpu, atol=1e-5)
    assert roc_auc_score(labels, on_cpu) > 0.6  # on the CPU: 0.63 to 0.78 over five seeds
