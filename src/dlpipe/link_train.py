"""Full-batch training of a link-prediction model with early stopping on validation auPRC.

One step encodes the whole message-passing graph (the fold's training edges) and scores the
training pairs (positives and the fold's fixed negatives) with binary cross-entropy. After
each epoch the validation pairs, which no message ever crosses, are scored; the weights of the
epoch with the best validation auPRC are kept. The test side is never seen here.

Runs use torch's deterministic algorithms, so a rerun on the same CPU gives the same bits. A
plain loop rather than Lightning: one full-graph step per epoch has no batches or checkpoints
for Lightning to manage; ``device`` moves the model and the tensors to a GPU where there is one.

Mini-batches of sampled neighbourhoods (PyG's ``LinkNeighborLoader``) are not offered: PyG
samples neighbours only through its compiled extensions ``pyg-lib`` or ``torch-sparse``, and
PyPI has no wheel of either for torch 2.13. Full batch reaches far: an epoch on a graph of 1.2
million edges and 150,000 nodes took 6 s and 3.4 GB on two CPU cores (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from sklearn.metrics import average_precision_score
from torch import nn

from dlpipe.models.gnn import LinkGNN, deterministic, edge_index


def _tensor(
    array: np.ndarray | None, dtype: torch.dtype, device: torch.device
) -> torch.Tensor | None:
    return None if array is None else torch.as_tensor(np.asarray(array), dtype=dtype).to(device)


def _device(device: str | torch.device) -> torch.device:
    """Return the torch device named, refusing a name torch doesn't know or a missing GPU."""
    try:
        where = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(
            f"device must be a torch device such as 'cpu' or 'cuda:0', not {device!r}"
        ) from error
    if where.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no CUDA device here")
    return where


def _n_nodes(model: LinkGNN, x: np.ndarray | None) -> int:
    if model.embedding is not None:
        return int(model.embedding.num_embeddings)
    if x is None:
        raise ValueError("this model reads node features: give x")
    return len(x)


def fit_link_model(
    model: LinkGNN,
    x: np.ndarray | None,
    message_passing: np.ndarray,
    train_pairs: np.ndarray,
    train_labels: np.ndarray,
    val_pairs: np.ndarray,
    val_labels: np.ndarray,
    epochs: int = 200,
    learning_rate: float = 0.01,
    weight_decay: float = 0.0,
    patience: int = 20,
    seed: int = 0,
    device: str = "cpu",
) -> tuple[LinkGNN, list[dict[str, Any]]]:
    """Train a link-prediction model on one fold; keep the epoch with the best validation auPRC.

    Parameters
    ----------
    model
        The model to train (its weights are changed in place and set to the best epoch's).
    x
        ``(n_nodes, n_features)`` node features, or ``None`` for a model with learned inputs.
    message_passing
        ``(m, 2)`` edges the model propagates over: the fold's training positives only.
    train_pairs, train_labels
        Pairs fitted on (the fold's training side) and their 0/1 labels.
    val_pairs, val_labels
        Pairs of the early stopping (the fold's validation side) and their 0/1 labels.
    epochs
        Most epochs (one full-graph step each).
    learning_rate, weight_decay
        Of the Adam optimiser.
    patience
        Epochs without a better validation auPRC before stopping.
    seed
        Seed of dropout (the caller seeds the initial weights when building the model).
    device
        Torch device to train on (``"cpu"``, ``"cuda"``, ``"cuda:1"``): the model, features,
        edges and pairs move there. The same seed gives the same bits again on the same device,
        not across devices.

    Returns
    -------
    tuple of (LinkGNN, list of dict)
        The model at its best epoch, on the CPU, and the history: ``epoch``, ``loss``,
        ``val_auprc``.

    Raises
    ------
    ValueError
        If ``device`` is no torch device, or a CUDA device that this machine lacks.
    """
    where = _device(device)
    torch.manual_seed(seed)
    model.to(where)
    edges = edge_index(message_passing, _n_nodes(model, x)).to(where)
    features = _tensor(x, torch.float32, where)
    pairs = torch.as_tensor(train_pairs, dtype=torch.long).to(where)
    target = torch.as_tensor(train_labels, dtype=torch.float32).to(where)
    val = torch.as_tensor(val_pairs, dtype=torch.long).to(where)
    optimiser = torch.optim.Adam(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    loss_fn = nn.BCEWithLogitsLoss()
    # Every call encodes the same graph: the GCN normalisation is computed once, not twice an
    # epoch.
    with deterministic(), model.fixed_graph():
        best, best_state, waited, history = -1.0, copy.deepcopy(model.state_dict()), 0, []
        for epoch in range(epochs):
            model.train()
            optimiser.zero_grad()
            loss = loss_fn(model(features, edges, pairs), target)
            loss.backward()
            optimiser.step()
            model.eval()
            with torch.no_grad():
                scores = model(features, edges, val).cpu().numpy()
            auprc = float(average_precision_score(val_labels, scores))
            history.append({"epoch": epoch, "loss": loss.item(), "val_auprc": auprc})
            if auprc > best:
                best, best_state, waited = auprc, copy.deepcopy(model.state_dict()), 0
            else:
                waited += 1
                if waited >= patience:
                    break
    model.load_state_dict(best_state)
    model.cpu()
    model.eval()
    return model, history


def predict_links(
    model: LinkGNN,
    x: np.ndarray | None,
    message_passing: np.ndarray,
    pairs: np.ndarray,
    device: str = "cpu",
) -> np.ndarray:
    """Return the probability that each pair is an edge, encoding the message-passing graph.

    Parameters
    ----------
    model
        A trained model (:func:`fit_link_model`).
    x
        ``(n_nodes, n_features)`` node features, or ``None`` for a model with learned inputs.
    message_passing
        ``(m, 2)`` edges the model propagates over (the fold's training positives).
    pairs
        ``(n, 2)`` node pairs to score.
    device
        Torch device to encode the graph on; the model is back on the CPU afterwards.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` float64 probabilities.

    Raises
    ------
    ValueError
        If ``device`` is no torch device, or a CUDA device that this machine lacks.
    """
    where = _device(device)
    model.to(where)
    model.eval()
    try:
        with torch.inference_mode(), deterministic():
            logits = model(
                _tensor(x, torch.float32, where),
                edge_index(message_passing, _n_nodes(model, x)).to(where),
                torch.as_tensor(pairs, dtype=torch.long).to(where),
            )
        return torch.sigmoid(logits).cpu().numpy().astype(np.float64)
    finally:
        model.cpu()
