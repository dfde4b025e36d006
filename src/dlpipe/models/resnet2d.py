"""2-D ResNet (18, 34, 50) for images, with transfer learning from pretrained weights.

The backbone is MONAI's ``ResNet`` built in torchvision's layout (7×7 stride-2 stem, max pool,
four residual stages, 1×1 convolution + batch-norm shortcuts), so ImageNet weights saved by
torchvision load without renaming (:mod:`dlpipe.models.pretrained`). The task gets a new head,
batch norm → dropout → linear, as in the field's transfer-learning recipe; ``trainable_stages``
freezes the pretrained stem and the early stages and fine-tunes the last ones with the head.

Input: float images ``(batch, channels, height, width)`` scaled to [0, 1] per channel (8-bit
values / 255, 16-bit / 65535 or a percentile scaling of microscopy). With ``input_norm:
imagenet`` (the default) the model standardises them with ImageNet's channel means and standard
deviations, the statistics pretrained weights expect: RGB as is, one channel with the mean of the
three, other channel counts with R, G, B repeated (as their stem filters are, see
:func:`dlpipe.models.pretrained.adapt_input_conv`). ``input_norm: none`` leaves the input as is,
for data standardised upstream. Any image size of 32 pixels or more works (global pooling).
"""

from __future__ import annotations

from dataclasses import replace

import torch
from monai.networks.nets import ResNet
from torch import nn

from dlpipe.errors import ConfigError
from dlpipe.models.pretrained import (
    WeightsRecord,
    load_backbone,
    resolve_weights,
    weights_follow,
)

#: Block type and blocks per stage of each depth (torchvision's and MONAI's ResNets).
_ARCHITECTURES = {
    18: ("basic", [2, 2, 2, 2]),
    34: ("basic", [3, 4, 6, 3]),
    50: ("bottleneck", [3, 4, 6, 3]),
}
#: ImageNet channel means and standard deviations (RGB), those torchvision's weights were fitted on.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: The residual stages, in order; ``trainable_stages`` counts them from the end.
STAGES = ("layer1", "layer2", "layer3", "layer4")


def imagenet_statistics(channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the ImageNet means and standard deviations for ``channels`` input channels.

    One channel takes the mean of the RGB values; other counts repeat R, G, B in turn.
    """
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    if channels == 1:
        return mean.mean().view(1), std.mean().view(1)
    index = torch.arange(channels) % 3
    return mean[index], std[index]


class ResNet2D(nn.Module):
    """ResNet over 2-D images with a new head and an optional frozen pretrained backbone.

    Parameters
    ----------
    n_inputs
        Image channels (1 for grey microscopy, 3 for RGB, or any other count).
    n_outputs
        Classes or targets.
    depth
        18, 34 or 50.
    weights
        ``null`` (random initialisation), a path to a weights file (torchvision or MONAI ResNet
        state dict, or a dlpipe checkpoint of this family), or ``imagenet`` / ``resnet18`` …:
        torchvision's ImageNet weights in the torch hub cache (``$TORCH_HOME/hub/checkpoints``),
        never downloaded. A stem trained on RGB is adapted to ``n_inputs`` channels.
    trainable_stages
        ``null``: every layer trains. ``N`` (0-4): only the last ``N`` residual stages and the
        head train; the stem and the earlier stages are frozen, batch-norm statistics included.
        Needs ``weights`` (frozen random layers learn nothing).
    dropout
        Dropout before the head's linear layer.
    head_batch_norm
        Batch-normalise the pooled features before the head's dropout and linear layer.
    input_norm
        ``imagenet``: standardise the [0, 1] input with ImageNet statistics inside the model;
        ``none``: use the input as given.
    """

    #: What the family reads: float images ``(batch, channels, height, width)`` in [0, 1].
    inputs = "image"

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int,
        depth: int = 18,
        weights: str | None = None,
        trainable_stages: int | None = None,
        dropout: float = 0.2,
        head_batch_norm: bool = True,
        input_norm: str = "imagenet",
    ) -> None:
        super().__init__()
        if depth not in _ARCHITECTURES:
            raise ConfigError(f"config key model.depth: {depth} is not one of 18, 34, 50")
        if input_norm not in ("imagenet", "none"):
            raise ConfigError(
                f"config key model.input_norm: {input_norm!r} is not imagenet or none"
            )
        if trainable_stages is not None and not 0 <= trainable_stages <= len(STAGES):
            raise ConfigError(
                f"config key model.trainable_stages: {trainable_stages} is not null or 0-4"
            )
        if trainable_stages is not None and weights is None:
            raise ConfigError(
                "config key model.trainable_stages: freezing layers of a randomly initialised "
                "network keeps them random; give model.weights or set trainable_stages: null"
            )
        if n_inputs < 1 or n_outputs < 1:
            raise ValueError("a ResNet needs at least one input channel and one output")
        block, layers = _ARCHITECTURES[depth]
        self.backbone = ResNet(
            block,
            layers,
            [64, 128, 256, 512],
            spatial_dims=2,
            n_input_channels=n_inputs,
            conv1_t_size=7,
            conv1_t_stride=2,
            shortcut_type="B",
            bias_downsample=False,
            feed_forward=False,
        )
        width = 512 * (4 if block == "bottleneck" else 1)
        self.head = nn.Sequential(
            nn.BatchNorm1d(width) if head_batch_norm else nn.Identity(),
            nn.Dropout(dropout),
            nn.Linear(width, n_outputs),
        )
        mean, std = imagenet_statistics(n_inputs)
        # Derived from the hyperparameters, so kept out of the state dict.
        self.register_buffer("mean", mean.view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, -1, 1, 1), persistent=False)
        self.standardise = input_norm == "imagenet"
        #: What came from ``weights`` (``None`` without), for the report.
        self.weights_record: WeightsRecord | None = None
        # Rebuilt from a checkpoint, the weights are an initialisation its state dict replaces.
        if weights is not None and not weights_follow():
            path = resolve_weights(weights, depth)
            record = load_backbone(self.backbone, path, f"ResNet-{depth}")
            self.weights_record = replace(record, initialised=("head",))
        #: Backbone layers kept as the weights give them.
        self.frozen: tuple[str, ...] = ()
        if trainable_stages is not None:
            self.frozen = ("conv1", "bn1", *STAGES[: len(STAGES) - trainable_stages])
            for name in self.frozen:
                getattr(self.backbone, name).requires_grad_(False)

    def train(self, mode: bool = True) -> ResNet2D:
        """Set training mode; frozen layers stay in eval mode, their batch-norm statistics fixed."""
        super().train(mode)
        for name in self.frozen:
            getattr(self.backbone, name).eval()
        return self

    def saliency_layer(self) -> nn.Module:
        """Return the last residual stage (``layer4``), whose feature maps Grad-CAM weighs."""
        return self.backbone.layer4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map images ``(batch, channels, height, width)`` in [0, 1] to ``(batch, n_outputs)``."""
        if self.standardise:
            x = (x - self.mean) / self.std
        return self.head(self.backbone(x))
