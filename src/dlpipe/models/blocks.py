"""Building blocks shared by the sequence model families."""

from __future__ import annotations

import torch
from torch import nn


class OneHot(nn.Module):
    """Expand ``uint8`` sequence codes to a float one-hot tensor on the model's device.

    Codes ``0..channels-1`` become unit vectors; the unknown code (N or X, ``channels``) becomes
    zeros or a uniform ``1/channels`` vector. A floating-point input is taken to be one-hot
    already (``(batch, channels, length)``), which attribution methods use.

    Parameters
    ----------
    channels
        Alphabet size (4 for DNA/RNA, 20 for protein).
    unknown
        ``zeros`` or ``uniform``.
    """

    def __init__(self, channels: int = 4, unknown: str = "zeros") -> None:
        super().__init__()
        if unknown not in ("zeros", "uniform"):
            raise ValueError("unknown must be 'zeros' or 'uniform'")
        self.register_buffer(
            "symbols",
            torch.arange(channels, dtype=torch.uint8).view(1, channels, 1),
            persistent=False,
        )
        self.channels = channels
        self.uniform = unknown == "uniform"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(batch, length)`` codes to ``(batch, channels, length)`` floats."""
        if x.is_floating_point():
            return x
        # A comparison against the symbol codes beats a table gather (no int64 index tensor).
        out = (x.unsqueeze(1) == self.symbols).float()
        if self.uniform:
            out = out + (x == self.channels).unsqueeze(1).float() / self.channels
        return out


class ConvBlock(nn.Module):
    """Conv1d → BatchNorm → ReLU → MaxPool → Dropout."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, pool: int, dropout: float, batch_norm: bool
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2)]
        if batch_norm:
            layers.append(nn.BatchNorm1d(c_out))
        layers.append(nn.ReLU())
        if pool > 1:
            layers.append(nn.MaxPool1d(pool, ceil_mode=True))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``(batch, channels, length)``."""
        return self.net(x)
