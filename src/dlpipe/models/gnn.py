"""Graph autoencoder for link prediction: a GCN, GraphSAGE or GAT encoder, inner-product decoder.

The encoder propagates node features over the message-passing edges (a fold's training edges
only) to one embedding per node; a pair's logit is the inner product of its two embeddings
(Kipf & Welling's graph autoencoder). The whole graph is encoded at once (full batch), which
suits interaction networks of thousands to a few hundred thousand nodes.

A graph without node features (``n_inputs = 0``) gets a learned embedding per node as input
(``n_nodes`` rows): a node without a training edge is in no training pair, so its row learns
nothing from the data (weight decay only shrinks it), which is what a cold-start protein
honestly is to such a model.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.utils.deterministic
from torch import nn
from torch_geometric.nn import GATConv, GCNConv, SAGEConv
from torch_geometric.utils import to_undirected

CONVOLUTIONS = ("gcn", "sage", "gat")


def edge_index(edges: torch.Tensor | Sequence[Sequence[int]], n_nodes: int) -> torch.Tensor:
    """Return the ``(2, 2m)`` edge index of undirected edges given once each as ``(m, 2)`` pairs."""
    pairs = torch.as_tensor(edges, dtype=torch.long).reshape(-1, 2)
    return to_undirected(pairs.t().contiguous(), num_nodes=n_nodes)


@contextmanager
def deterministic() -> Iterator[None]:
    """Run with torch's deterministic algorithms (and restore the setting after).

    The scatter-sums of message passing are summed in thread order otherwise: two runs on the
    same CPU differed by 1e-5 on the STRING demo. Training, scoring and the embeddings the
    interpretation draws all run inside it.
    """
    before = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    fill = torch.utils.deterministic.fill_uninitialized_memory
    # warn_only: an operation without a deterministic kernel (on some GPUs) warns, not fails.
    torch.use_deterministic_algorithms(True, warn_only=True)
    # Deterministic mode also fills every new uninitialised tensor with NaN, a guard against
    # kernels that read memory before writing it. It changes no result of a correct kernel
    # (tests/test_link_train.py) but costs some 120 fills an epoch, so it is off here.
    torch.utils.deterministic.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=warn_only)
        torch.utils.deterministic.fill_uninitialized_memory = fill


class LinkGNN(nn.Module):
    """Encoder of node embeddings by graph convolutions, with an inner-product pair decoder.

    Parameters
    ----------
    n_inputs
        Number of node features; 0 for a graph without them (see ``n_nodes``).
    n_outputs
        Scores per node pair: 1 (the inner product of the two embeddings).
    embedding_size
        Size of the node embedding the decoder compares.
    conv
        ``gcn`` (GCNConv), ``sage`` (SAGEConv, mean aggregation) or ``gat`` (GATConv).
    hidden_layers
        Width of each hidden convolution (before the output one).
    dropout
        Dropout on the input of every convolution.
    heads
        Attention heads of each hidden GAT layer (their outputs are concatenated).
    n_nodes
        Number of nodes, for the learned input embedding of a graph without node features.
    """

    #: What the family reads: node features and the edges of a graph.
    inputs = "graph"

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int = 1,
        embedding_size: int = 32,
        conv: str = "gcn",
        hidden_layers: Sequence[int] = (64,),
        dropout: float = 0.2,
        heads: int = 4,
        n_nodes: int | None = None,
    ) -> None:
        super().__init__()
        if conv not in CONVOLUTIONS:
            raise ValueError(f"conv must be one of {CONVOLUTIONS}, not {conv!r}")
        if n_outputs != 1:
            raise ValueError("a link-prediction model gives one score per node pair")
        if embedding_size < 1:
            raise ValueError("the node embedding needs at least one dimension")
        self.embedding: nn.Embedding | None = None
        width = n_inputs
        if n_inputs == 0:
            if not n_nodes:
                raise ValueError("a graph without node features needs n_nodes (learned inputs)")
            width = hidden_layers[0] if hidden_layers else embedding_size
            self.embedding = nn.Embedding(n_nodes, width)
        sizes = [*hidden_layers, embedding_size]
        self.convs = nn.ModuleList()
        for i, size in enumerate(sizes):
            last = i == len(sizes) - 1
            if conv == "gcn":
                layer: nn.Module = GCNConv(width, size)
            elif conv == "sage":
                layer = SAGEConv(width, size)
            else:
                per_head = size if last else max(1, size // heads)
                layer = GATConv(width, per_head, heads=1 if last else heads)
                size = per_head * (1 if last else heads)
            self.convs.append(layer)
            width = size
        self.dropout = nn.Dropout(dropout)

    def encode(self, x: torch.Tensor | None, edges: torch.Tensor) -> torch.Tensor:
        """Return the ``(n_nodes, embedding_size)`` node embeddings.

        Parameters
        ----------
        x
            ``(n_nodes, n_inputs)`` node features, or ``None`` for the learned inputs.
        edges
            ``(2, e)`` edge index of the message-passing graph, both directions
            (:func:`edge_index`).
        """
        if self.embedding is not None:
            h = self.embedding.weight
        elif x is None:
            raise ValueError("this model reads node features: give x")
        else:
            h = x
        for i, layer in enumerate(self.convs):
            h = layer(self.dropout(h), edges)
            if i < len(self.convs) - 1:
                h = torch.relu(h)
        return h

    @contextmanager
    def fixed_graph(self) -> Iterator[None]:
        """Normalise the graph once for every GCN layer while the block runs, then forget it.

        A GCN layer recomputes its symmetric normalisation of the edges (self loops, degrees)
        on every call. Training calls the encoder twice an epoch on the same message-passing
        graph, so inside this block each layer keeps the first result and reuses it. Only one
        graph may be encoded inside the block; the cache is dropped on leaving it. The values
        are those an uncached call computes, bit for bit.
        """
        layers = [layer for layer in self.convs if isinstance(layer, GCNConv)]
        for layer in layers:
            layer.cached, layer._cached_edge_index = True, None
        try:
            yield
        finally:
            for layer in layers:
                layer.cached, layer._cached_edge_index = False, None

    @staticmethod
    def decode(z: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        """Return the logit of each ``(n, 2)`` node pair: the inner product of its embeddings."""
        return (z[pairs[:, 0]] * z[pairs[:, 1]]).sum(dim=-1)

    def forward(
        self, x: torch.Tensor | None, edges: torch.Tensor, pairs: torch.Tensor
    ) -> torch.Tensor:
        """Return the logits of ``pairs`` after encoding the graph ``edges``."""
        return self.decode(self.encode(x, edges), pairs)
