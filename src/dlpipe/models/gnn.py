"""Graph autoencoder for link prediction: a GCN, GraphSAGE or GAT encoder, inner-product decoder.

The encoder propagates node features over the message-passing edges (a fold's training edges
only) to one embedding per node; a pair's logit is the inner product of its two embeddings
(Kipf & Welling's graph autoencoder). The whole graph is encoded at once (full batch), which
suits interaction networks of thousands to a few hundred thousand nodes.

A graph without node features (``n_inputs = 0``) gets a learned embedding per node as input
(``n_nodes`` rows): a node without a training edge then keeps its random start, which is what
a cold-start protein honestly is to such a model.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn
from torch_geometric.nn import GATConv, GCNConv, SAGEConv
from torch_geometric.utils import to_undirected

CONVOLUTIONS = ("gcn", "sage", "gat")


def edge_index(edges: torch.Tensor | Sequence[Sequence[int]], n_nodes: int) -> torch.Tensor:
    """Return the ``(2, 2m)`` edge index of undirected edges given once each as ``(m, 2)`` pairs."""
    pairs = torch.as_tensor(edges, dtype=torch.long).reshape(-1, 2)
    return to_undirected(pairs.t().contiguous(), num_nodes=n_nodes)


class LinkGNN(nn.Module):
    """Encoder of node embeddings by graph convolutions, with an inner-product pair decoder.

    Parameters
    ----------
    n_inputs
        Number of node features; 0 for a graph without them (see ``n_nodes``).
    n_outputs
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
        n_outputs: int = 32,
        conv: str = "gcn",
        hidden_layers: Sequence[int] = (64,),
        dropout: float = 0.2,
        heads: int = 4,
        n_nodes: int | None = None,
    ) -> None:
        super().__init__()
        if conv not in CONVOLUTIONS:
            raise ValueError(f"conv must be one of {CONVOLUTIONS}, not {conv!r}")
        if n_outputs < 1:
            raise ValueError("the node embedding needs at least one dimension")
        self.embedding: nn.Embedding | None = None
        width = n_inputs
        if n_inputs == 0:
            if not n_nodes:
                raise ValueError("a graph without node features needs n_nodes (learned inputs)")
            width = hidden_layers[0] if hidden_layers else n_outputs
            self.embedding = nn.Embedding(n_nodes, width)
        sizes = [*hidden_layers, n_outputs]
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
        """Return the ``(n_nodes, n_outputs)`` node embeddings.

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
