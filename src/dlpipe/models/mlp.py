"""Multilayer perceptron for tabular data: the classifier and the multi-output regressor.

Each hidden block is Linear → BatchNorm (optional) → activation → Dropout. With ``n_outputs``
classes the output is logits for cross-entropy; with ``n_outputs`` targets it is one value per
target (D-GEX style: many target genes predicted from landmark genes with an MSE loss).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}


class MLP(nn.Module):
    """Feed-forward network with batch norm and dropout.

    Parameters
    ----------
    n_inputs
        Number of input features.
    n_outputs
        Number of classes (classification) or targets (regression).
    hidden_layers
        Width of each hidden layer.
    dropout
        Dropout probability after each hidden layer.
    batch_norm
        Insert batch normalisation before each activation.
    activation
        ``relu``, ``gelu`` or ``silu``.
    """

    #: What the family reads: a float feature matrix.
    inputs = "features"

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int,
        hidden_layers: Sequence[int] = (128, 64),
        dropout: float = 0.3,
        batch_norm: bool = True,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if n_inputs < 1 or n_outputs < 1:
            raise ValueError("an MLP needs at least one input and one output")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}")
        layers: list[nn.Module] = []
        width = n_inputs
        for size in hidden_layers:
            layers.append(nn.Linear(width, size))
            if batch_norm:
                layers.append(nn.BatchNorm1d(size))
            layers.append(_ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Linear(width, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map a ``(batch, n_inputs)`` tensor to ``(batch, n_outputs)`` raw outputs."""
        return self.head(self.trunk(x))
