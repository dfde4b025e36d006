"""DanQ: a convolution that finds motifs followed by a bidirectional LSTM that reads their order.

Quang & Xie's architecture for DNA function prediction, sized by the config: one wide
convolution with max pooling, a BiLSTM over the pooled positions, and a dense head.
"""

from __future__ import annotations

import torch
from torch import nn

from dlpipe.models.blocks import OneHot


class DanQ(nn.Module):
    """Convolution + BiLSTM sequence model.

    Parameters
    ----------
    n_inputs
        Alphabet size.
    n_outputs
        Classes or targets.
    filters, kernel_size, pool
        The motif convolution and its max pooling.
    lstm_units
        Hidden units per LSTM direction.
    hidden
        Width of the dense layer before the head.
    dropout
        Dropout after pooling and after the LSTM.
    unknown
        How N / X is expanded: ``zeros`` or ``uniform``.
    """

    #: What the family reads: ``uint8`` sequence codes, expanded to one-hot inside.
    inputs = "sequence"

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int,
        filters: int = 64,
        kernel_size: int = 19,
        pool: int = 8,
        lstm_units: int = 32,
        hidden: int = 64,
        dropout: float = 0.2,
        unknown: str = "zeros",
    ) -> None:
        super().__init__()
        self.one_hot = OneHot(n_inputs, unknown)
        self.conv = nn.Sequential(
            nn.Conv1d(n_inputs, filters, kernel_size, padding=kernel_size // 2),
            nn.ReLU(),
            nn.MaxPool1d(pool, ceil_mode=True),
            nn.Dropout(dropout),
        )
        self.lstm = nn.LSTM(filters, lstm_units, batch_first=True, bidirectional=True)
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(4 * lstm_units, hidden),
            nn.ReLU(),
            nn.Linear(hidden, n_outputs),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map codes or one-hot sequences to logits."""
        h = self.conv(self.one_hot(x)).transpose(1, 2)  # (batch, positions, filters)
        out, _ = self.lstm(h)
        # Max and mean over positions keep both the strongest and the typical signal.
        return self.head(torch.cat([out.amax(dim=1), out.mean(dim=1)], dim=1))
