"""Self-supervised pretraining of a 2-D ResNet backbone on unlabelled images of the domain.

Where no ImageNet weights can be had (nothing is downloaded), dlpipe pretrains the backbone
itself on unlabelled images of the same kind as the target's (``model.pretrain``), saves it as a
state dict in torchvision's layout and lets the fold models start from it through the same
loader as ImageNet weights (:func:`dlpipe.models.pretrained.load_backbone`): fine-tuned or with
``trainable_stages`` frozen, like any pretrained weights.

Objective: SimCLR (Chen et al., ICML 2020), contrastive. Each image is augmented twice; the
backbone's pooled features pass a two-layer projection head, and MONAI's ``ContrastiveLoss``
(normalised temperature-scaled cross-entropy) pulls the two views of one image together and
pushes the other images of the batch away. Why this objective and not an autoencoder: it trains
exactly what the fine-tuned model uses, the global-pooled features of the backbone (a
denoising or masked autoencoder trains a decoder from a 1 × 1 feature map that a 32-pixel image
leaves after a ResNet's five halvings, and spends its capacity on pixel detail the classifier
does not need); it needs no decoder to design per image size; and its invariances are chosen:
the views differ by crop and scale, flips and quarter turns, brightness and contrast, and noise,
so the features learn what stays the same under them (the shapes and arrangement of objects)
and not the acquisition. Its weakness, the need for large batches of negatives, matters less
for a few hundred small images, where 64-256 images per batch fit any device.

Reproducible: :func:`lightning.seed_everything` with the seed (0 included), deterministic
algorithms, a seeded shuffling generator and views drawn from torch's seeded generator, so a
CPU rerun writes the same backbone bit for bit.

Leakage: the pretraining reads only the files listed from ``images`` (returned and recorded
with their checksums); the target experiment's images and labels are never among its inputs,
and the files are refused if one of them is an image of the target (:func:`check_disjoint`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L  # noqa: N812 - the documented alias
import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the documented alias
from monai.losses import ContrastiveLoss
from torch import nn

from dlpipe.errors import ConfigError, InputError
from dlpipe.image_listing import list_unlabelled
from dlpipe.image_store import image_scale, resize_image, scale_pixels
from dlpipe.io.files import sha256
from dlpipe.io.images import check_same_kind, probe_image, read_image
from dlpipe.models.resnet2d import ResNet2D
from dlpipe.train import accelerator_settings, augment_images, make_loader

log = logging.getLogger(__name__)

#: Objectives dlpipe pretrains with (``model.pretrain.objective``).
OBJECTIVES = ("simclr",)
#: The settings of ``model.pretrain`` and their defaults (the config schema repeats them).
DEFAULTS: dict[str, Any] = {
    "images": None,
    "path_column": "path",
    "objective": "simclr",
    "epochs": 30,
    "batch_size": 64,
    "learning_rate": 1e-3,
    "temperature": 0.5,
    "projection_dim": 128,
    "seed": None,
}
#: Crop area of a view, as a share of the image (SimCLR's random resized crop).
CROP_SCALE = (0.5, 1.0)
#: Brightness (gain) and contrast jitter of a view, and the noise added to it.
GAIN, CONTRAST, NOISE = 0.4, 0.4, 0.02


def pretrain_settings(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return ``model.pretrain`` with every default filled in, after checking its values.

    Raises
    ------
    ConfigError
        No ``images``, an unknown objective, or a batch of fewer than two images; the message
        names the key.
    """
    out = {**DEFAULTS, **(settings or {})}
    unknown = sorted(set(out) - set(DEFAULTS))
    if unknown:
        raise ConfigError(
            f"config key model.pretrain: {unknown} are not settings of pretraining; it takes "
            f"{', '.join(DEFAULTS)}"
        )
    if not out["images"]:
        raise ConfigError(
            "config key model.pretrain.images: give a folder of unlabelled images (or a table "
            "of their paths) of the same kind as the experiment's, none of them its own"
        )
    if out["objective"] not in OBJECTIVES:
        raise ConfigError(
            f"config key model.pretrain.objective: {out['objective']!r} is not one of "
            f"{', '.join(OBJECTIVES)}"
        )
    if int(out["batch_size"]) < 2:
        raise ConfigError(
            "config key model.pretrain.batch_size: a contrastive batch needs at least 2 images "
            "(each one's negatives are the others)"
        )
    return out


def check_disjoint(files: Sequence[Path], forbidden: Sequence[str | Path]) -> None:
    """Refuse unlabelled images that are, or lie in a folder of, the target experiment's images.

    Compared by resolved path only: the target's images are never opened here.

    Parameters
    ----------
    files
        The unlabelled images.
    forbidden
        The target's image files, and the folder of a target given as a folder.

    Raises
    ------
    InputError
        Naming the first such file and the key.
    """
    banned = [Path(p).resolve() for p in forbidden]
    for file in files:
        path = file.resolve()
        if any(path == b or b in path.parents for b in banned):
            raise InputError(
                f"config key model.pretrain.images: {file} is an image of the experiment itself; "
                "pretrain on other images, or its test folds would be seen before they are scored"
            )


def load_unlabelled(
    files: Sequence[Path], size: Sequence[int] | None, where: str
) -> tuple[np.ndarray, list[int]]:
    """Decode the images as float32 ``(N, C, H, W)`` in [0, 1], resized to ``size``.

    8-bit images are divided by 255, 16-bit ones by the brightest pixel of the set (the same
    scales as a fold's images).

    Parameters
    ----------
    files
        The unlabelled images (one channel count and bit depth).
    size
        ``[height, width]`` to resize to (the target's ``data.image_size``); ``None``: the size
        of the first image.
    where
        What the files are, for messages.

    Returns
    -------
    tuple
        The pixels and their ``[height, width]``.
    """
    info = check_same_kind((probe_image(p) for p in files), where)
    target = tuple(int(v) for v in size) if size is not None else read_image(files[0]).shape[:2]
    pixels = np.stack([resize_image(read_image(p), target) for p in files])  # (N, C, H, W)
    scale = image_scale(pixels)  # the rule of a fold's training side
    log.info("%d unlabelled images (%s), scaled by %g", len(files), info, scale)
    return scale_pixels(pixels, scale), [int(v) for v in target]


def simclr_views(x: torch.Tensor) -> torch.Tensor:
    """Return one random view of each image of a ``(batch, C, H, W)`` batch in [0, 1].

    A random resized crop (area :data:`CROP_SCALE` of the image, aspect 3/4-4/3, bilinear),
    flips and quarter turns (:func:`dlpipe.train.augment_images`), a brightness gain and a
    contrast change around the image's mean (each in 1 ± :data:`GAIN`, :data:`CONTRAST`) and
    Gaussian noise (sd :data:`NOISE`). Every draw comes from torch's seeded generator.
    """
    n = len(x)
    area = torch.empty(n).uniform_(*CROP_SCALE)
    ratio = torch.exp(torch.empty(n).uniform_(np.log(3 / 4), np.log(4 / 3)))
    sx = torch.sqrt(area * ratio).clamp(max=1.0)
    sy = torch.sqrt(area / ratio).clamp(max=1.0)
    tx = (1 - sx) * (2 * torch.rand(n) - 1)
    ty = (1 - sy) * (2 * torch.rand(n) - 1)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = sx, tx, sy, ty
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
    out = augment_images(F.grid_sample(x, grid, mode="bilinear", align_corners=False))
    gain = 1 + GAIN * (2 * torch.rand(n, 1, 1, 1) - 1)
    contrast = 1 + CONTRAST * (2 * torch.rand(n, 1, 1, 1) - 1)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    out = (mean + (out - mean) * contrast.to(x)) * gain.to(x)
    return (out + NOISE * torch.randn(out.shape).to(x)).clamp(min=0)


class ContrastiveModule(L.LightningModule):
    """A ResNet backbone with a projection head, trained with the SimCLR loss.

    Parameters
    ----------
    channels
        Image channels.
    depth
        ResNet depth (18, 34, 50), as the target model's.
    input_norm
        The target model's ``input_norm``: pretraining sees the input as fine-tuning will.
    projection_dim
        Width of the projection head's output (discarded after pretraining).
    learning_rate, temperature
        Adam's learning rate; the temperature of the contrastive loss.
    """

    def __init__(
        self,
        channels: int,
        depth: int = 18,
        input_norm: str = "imagenet",
        projection_dim: int = 128,
        learning_rate: float = 1e-3,
        temperature: float = 0.5,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        # The fold model's own class, so the backbone and its input scaling are the same.
        self.net = ResNet2D(channels, 1, depth=depth, input_norm=input_norm)
        width = self.net.head[-1].in_features
        self.projector = nn.Sequential(
            nn.Linear(width, width), nn.ReLU(), nn.Linear(width, projection_dim)
        )
        self.loss = ContrastiveLoss(temperature=temperature)
        #: Mean training loss of each epoch.
        self.losses: list[float] = []
        self._epoch: list[float] = []

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Projected features of images in [0, 1]."""
        if self.net.standardise:
            x = (x - self.net.mean) / self.net.std
        return self.projector(self.net.backbone(x))

    def training_step(self, batch: tuple[torch.Tensor, ...], _: int) -> torch.Tensor:
        """Return the contrastive loss between two random views of each image of the batch."""
        x = batch[0]
        loss = self.loss(self.embed(simclr_views(x)), self.embed(simclr_views(x)))
        self._epoch.append(float(loss.detach()))
        return loss

    def on_train_epoch_end(self) -> None:
        """Record the epoch's mean loss."""
        self.losses.append(float(np.mean(self._epoch)))
        self._epoch = []
        log.info("pretraining epoch %d: loss %.4f", len(self.losses) - 1, self.losses[-1])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Adam."""
        return torch.optim.Adam(self.parameters(), lr=self.hparams.learning_rate)


def pretrain_backbone(
    pixels: np.ndarray,
    settings: Mapping[str, Any],
    model: Mapping[str, Any],
    training: Mapping[str, Any],
    seed: int,
    threads: int = 1,
) -> tuple[dict[str, torch.Tensor], list[float]]:
    """Pretrain a ResNet backbone on unlabelled images; return its state dict and loss curve.

    Parameters
    ----------
    pixels
        Float32 images ``(N, C, H, W)`` in [0, 1].
    settings
        ``model.pretrain`` with defaults filled (:func:`pretrain_settings`).
    model
        The target's ``model`` config (``depth``, ``input_norm``).
    training
        The target's ``training`` config (``device``, ``precision``, ``progress_bar``).
    seed
        Seed of the initialisation, the batches and the views (0 included).
    threads
        CPU threads for torch.

    Returns
    -------
    tuple
        The backbone's state dict in torchvision's layout (no ``fc``; what
        :func:`dlpipe.models.pretrained.load_backbone` reads) and the mean loss of each epoch.

    Raises
    ------
    InputError
        If there are fewer images than ``batch_size``.
    """
    batch = int(settings["batch_size"])
    if len(pixels) < batch:
        raise InputError(
            f"config key model.pretrain.batch_size: {batch} is more than the {len(pixels)} "
            "unlabelled images; give more images or a smaller batch_size"
        )
    torch.set_num_threads(max(1, threads))
    L.seed_everything(seed, workers=True, verbose=False)
    module = ContrastiveModule(
        channels=int(pixels.shape[1]),
        depth=int(model.get("depth", 18)),
        input_norm=str(model.get("input_norm", "imagenet")),
        projection_dim=int(settings["projection_dim"]),
        learning_rate=float(settings["learning_rate"]),
        temperature=float(settings["temperature"]),
    )
    # Full batches only: the last, smaller one would change the task (fewer negatives).
    loader = make_loader(
        pixels, np.zeros(len(pixels), np.int64), batch, shuffle=True, seed=seed, drop_last=True
    )
    device = accelerator_settings({**training, "devices": 1})
    with tempfile.TemporaryDirectory(prefix="dlpipe-pretrain-") as folder:
        trainer = L.Trainer(
            max_epochs=int(settings["epochs"]),
            precision=training.get("precision", "32-true"),
            deterministic=True,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=bool(training.get("progress_bar", False)),
            enable_model_summary=False,
            default_root_dir=folder,
            **device,
        )
        trainer.fit(module, loader)
    state = {k: v.detach().cpu().clone() for k, v in module.net.backbone.state_dict().items()}
    return state, list(module.losses)


def pretrain(
    settings: Mapping[str, Any] | None,
    model: Mapping[str, Any],
    training: Mapping[str, Any],
    seed: int,
    out_backbone: str | Path,
    out_summary: str | Path,
    image_size: int | Sequence[int] | None = None,
    forbidden: Sequence[str | Path] = (),
    threads: int = 1,
) -> dict[str, Any]:
    """Pretrain on ``model.pretrain.images`` and write the backbone and a JSON summary.

    Parameters
    ----------
    settings
        The ``model.pretrain`` section (defaults are filled here).
    model, training
        The target experiment's ``model`` and ``training`` sections.
    seed
        The experiment's seed, used where ``model.pretrain.seed`` is not set.
    out_backbone
        Where to write the state dict (``torch.save``; tensors only).
    out_summary
        Where to write the summary: objective, images and their checksum, loss per epoch,
        seconds, the backbone's sha256.
    image_size
        The target's ``data.image_size``; the unlabelled images are resized to it (``None``:
        they keep their own, common, size).
    forbidden
        The target experiment's image files (or its folder); an unlabelled image among them is
        refused (:func:`check_disjoint`, by path: they are not opened).
    threads
        CPU threads for torch.

    Returns
    -------
    dict
        The summary.
    """
    settings = pretrain_settings(settings)
    start = time.perf_counter()
    files = list_unlabelled(settings["images"], settings["path_column"])
    check_disjoint(files, forbidden)
    size = [image_size, image_size] if isinstance(image_size, int) else image_size
    pixels, used_size = load_unlabelled(files, size, str(settings["images"]))
    run_seed = int(seed if settings["seed"] is None else settings["seed"])
    state, losses = pretrain_backbone(pixels, settings, model, training, run_seed, threads)
    Path(out_backbone).parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, out_backbone)
    digest = hashlib.sha256(json.dumps([sha256(p) for p in files]).encode()).hexdigest()
    summary = {
        "objective": settings["objective"],
        "source": str(settings["images"]),
        "n_images": len(files),
        "images_sha256": digest,
        "image_size": used_size,
        "channels": int(pixels.shape[1]),
        "depth": int(model.get("depth", 18)),
        "epochs": int(settings["epochs"]),
        "batch_size": int(settings["batch_size"]),
        "learning_rate": float(settings["learning_rate"]),
        "temperature": float(settings["temperature"]),
        "seed": run_seed,
        "loss": losses,
        "seconds": round(time.perf_counter() - start, 1),
        "backbone": str(out_backbone),
        "backbone_sha256": sha256(out_backbone),
    }
    Path(out_summary).write_text(json.dumps(summary, indent=2) + "\n")
    log.info(
        "pretrained %s on %d images for %d epochs: loss %.4f -> %.4f (%.0f s)",
        settings["objective"],
        len(files),
        len(losses),
        losses[0] if losses else float("nan"),
        losses[-1] if losses else float("nan"),
        summary["seconds"],
    )
    return summary


__all__ = [
    "DEFAULTS",
    "OBJECTIVES",
    "ContrastiveModule",
    "check_disjoint",
    "load_unlabelled",
    "pretrain",
    "pretrain_backbone",
    "pretrain_settings",
    "simclr_views",
]
