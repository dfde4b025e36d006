"""Small residual CNN for images, trained from scratch: the baseline beside transfer learning.

The encoder of MONAI's ``Classifier``: stages of MONAI ``ResidualUnit`` blocks (convolutions
with batch norm and PReLU, a shortcut), each halving the image; global average pooling (so any
image size works, where MONAI's ``Classifier`` fixes one) and a dropout + linear head. With
0.4 million parameters by default (a ResNet-18 has 11 million) it suits a few hundred images,
the from-scratch comparison for a fine-tuned ResNet.

Input: float images ``(batch, channels, height, width)`` scaled to [0, 1] per channel (the same
input as :class:`dlpipe.models.resnet2d.ResNet2D`); the first block's batch norm standardises.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.blocks import Convolution, ResidualUnit
from torch import nn


class SmallCNN(nn.Module):
    """Residual CNN over 2-D images with global average pooling.

    Parameters
    ----------
    n_inputs
        Image channels.
    n_outputs
        Classes or targets.
    channels
        Channels of each stage; each stage halves height and width.
    residual_units
        Convolutions per residual unit; 0 for plain convolutions without shortcut.
    kernel_size
        Kernel size of the convolutions.
    dropout
        Dropout before the linear head.
    """

    #: What the family reads: float images ``(batch, channels, height, width)`` in [0, 1].
    inputs = "image"

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int,
        channels: Sequence[int] = (16, 32, 64, 128),
        residual_units: int = 2,
        kernel_size: int = 3,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if n_inputs < 1 or n_outputs < 1 or not channels:
            raise ValueError("a CNN needs input channels, outputs and at least one stage")
        stages: list[nn.Module] = []
        width = n_inputs
        for c in channels:
            common = {"spatial_dims": 2, "in_channels": width, "out_channels": c, "strides": 2}
            common |= {"kernel_size": kernel_size, "act": "PRELU", "norm": "BATCH"}
            if residual_units > 0:
                stages.append(ResidualUnit(subunits=residual_units, **common))
            else:
                stages.append(Convolution(**common))
            width = c
        self.encoder = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, n_outputs))

    def saliency_layer(self) -> nn.Module:
        """Return the last convolutional stage, whose feature maps Grad-CAM weighs."""
        return self.encoder[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map images ``(batch, channels, height, width)`` to ``(batch, n_outputs)``."""
        return self.head(self.encoder(x).mean(dim=(-2, -1)))
