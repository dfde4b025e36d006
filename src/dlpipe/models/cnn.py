"""Convolutional network for sequences (DeepBind/Basset-like).

A first convolution scans for motifs (its filters can be read as PWMs), further convolution
blocks combine them, global max pooling keeps the strongest match anywhere in the sequence, and
a linear head gives one logit per class or target.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from dlpipe.models.blocks import ConvBlock, OneHot


class SequenceCNN(nn.Module):
    """Motif-scanning CNN over one-hot sequences.

    Parameters
    ----------
    n_inputs
        Alphabet size (one-hot channels).
    n_outputs
        Classes or targets.
    filters
        Channels of each convolution block (the first block's filters are the motif detectors).
    kernel_sizes
        Kernel width of each block (same length as ``filters``).
    pool
        Max-pool width after each block but the last.
    dropout
        Dropout after each block and before the head.
    batch_norm
        Batch normalisation inside the blocks.
    unknown
        How N / X is expanded: ``zeros`` or ``uniform``.
    """

    #: What the family reads: ``uint8`` sequence codes, expanded to one-hot inside.
    inputs = "sequence"

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int,
        filters: Sequence[int] = (64, 64),
        kernel_sizes: Sequence[int] = (15, 7),
        pool: int = 4,
        dropout: float = 0.2,
        batch_norm: bool = True,
        unknown: str = "zeros",
    ) -> None:
        super().__init__()
        if len(filters) != len(kernel_sizes) or not filters:
            raise ValueError("filters and kernel_sizes need the same, non-zero length")
        self.one_hot = OneHot(n_inputs, unknown)
        blocks, width = [], n_inputs
        for i, (f, k) in enumerate(zip(filters, kernel_sizes, strict=True)):
            last = i == len(filters) - 1
            blocks.append(ConvBlock(width, f, k, 1 if last else pool, dropout, batch_norm))
            width = f
        self.trunk = nn.Sequential(*blocks)
        self.head = nn.Linear(width, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map codes ``(batch, length)`` or one-hot ``(batch, channels, length)`` to logits."""
        h = self.trunk(self.one_hot(x))
        return self.head(h.amax(dim=-1))
