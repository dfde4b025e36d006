"""Residual 1-D convolutional network for sequences.

A stem convolution, then stages of residual blocks (two convolutions with batch norm and an
identity or 1×1 shortcut), each stage but the first halving the length; global average and max
pooling feed a linear head.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from dlpipe.models.blocks import OneHot


class ResidualBlock(nn.Module):
    """Two same-padded convolutions with a shortcut; ``stride`` 2 halves the length."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, dropout: float) -> None:
        super().__init__()
        pad = kernel // 2
        self.body = nn.Sequential(
            nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=pad, bias=False),
            nn.BatchNorm1d(c_out),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Conv1d(c_out, c_out, kernel, padding=pad, bias=False),
            nn.BatchNorm1d(c_out),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv1d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm1d(c_out)
            )
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual update."""
        return self.act(self.body(x) + self.shortcut(x))


class ResNet1D(nn.Module):
    """Residual CNN over one-hot sequences.

    Parameters
    ----------
    n_inputs
        Alphabet size.
    n_outputs
        Classes or targets.
    stem_filters, stem_kernel
        The first convolution.
    stage_filters
        Channels of each stage.
    blocks_per_stage
        Residual blocks per stage.
    kernel_size
        Kernel width inside the blocks.
    dropout
        Dropout inside the blocks.
    unknown
        How N / X is expanded: ``zeros`` or ``uniform``.
    """

    #: What the family reads: ``uint8`` sequence codes, expanded to one-hot inside.
    inputs = "sequence"

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int,
        stem_filters: int = 64,
        stem_kernel: int = 15,
        stage_filters: Sequence[int] = (64, 96, 128),
        blocks_per_stage: int = 1,
        kernel_size: int = 5,
        dropout: float = 0.1,
        unknown: str = "zeros",
    ) -> None:
        super().__init__()
        self.one_hot = OneHot(n_inputs, unknown)
        self.stem = nn.Sequential(
            nn.Conv1d(n_inputs, stem_filters, stem_kernel, padding=stem_kernel // 2, bias=False),
            nn.BatchNorm1d(stem_filters),
            nn.ReLU(),
        )
        blocks, width = [], stem_filters
        for s, channels in enumerate(stage_filters):
            for b in range(blocks_per_stage):
                stride = 2 if (s > 0 and b == 0) else 1
                blocks.append(ResidualBlock(width, channels, kernel_size, stride, dropout))
                width = channels
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(2 * width, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map codes or one-hot sequences to logits."""
        h = self.blocks(self.stem(self.one_hot(x)))
        return self.head(torch.cat([h.mean(dim=-1), h.amax(dim=-1)], dim=1))
