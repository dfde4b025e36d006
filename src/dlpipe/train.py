"""Training with Lightning: the module, the trainer factory and one call that fits a fold.

Lightning runs the loop, early stopping on the validation loss, checkpointing of the best epoch,
device placement, precision and DDP over several devices. Reproducibility:
:func:`lightning.seed_everything` (seed 0 included), deterministic algorithms and a seeded
shuffling generator, so a CPU rerun is bit-identical.

Batches: arrays in memory (features, sequence codes) are gathered a batch at a time in the
training process. Images stay in their memory-mapped store (:class:`dlpipe.image_store.
StoreImages`): a batch is gathered there as ``uint8``/``uint16``, moved to the device and
scaled to float32 there (:func:`scale_batch`), by ``training.num_workers`` loader processes
that map the store themselves. The shuffling order is drawn in the training process and the
workers draw nothing random, so batches do not depend on the number of workers.

Resume: with a ``state_dir``, every epoch ends with a checkpoint there (``last.ckpt``) that holds,
besides what Lightning restores (weights, optimiser, epoch, early-stopping and checkpoint
callbacks), the history so far and the random state (torch's generator, the training loader's
shuffling generator). A job killed mid-way and started again on the same inputs and settings
continues from that epoch and ends bit-identical to an uninterrupted CPU run.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L  # noqa: N812 - the documented alias
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.plugins.environments import LightningEnvironment
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler

from dlpipe.alphabet import alphabet_size
from dlpipe.errors import ConfigError
from dlpipe.image_store import StoreImages
from dlpipe.models import build_model
from dlpipe.models.checkpoint import model_input

log = logging.getLogger(__name__)

#: Losses by name (a task's :attr:`dlpipe.tasks.Task.loss`), given the optional class weights.
LOSSES = {
    "cross_entropy": lambda weight: nn.CrossEntropyLoss(weight=weight),
    "binary_cross_entropy": lambda weight: nn.BCEWithLogitsLoss(pos_weight=weight),
    "mse": lambda weight: nn.MSELoss(),
}


class SupervisedModule(L.LightningModule):
    """A registered model with its loss and optimiser (tabular features or sequence codes).

    Parameters
    ----------
    model_config
        The experiment's ``model`` config (``name`` plus hyperparameters).
    n_inputs, n_outputs
        Input features; classes or regression targets.
    loss
        A key of :data:`LOSSES`: ``cross_entropy`` (classes), ``binary_cross_entropy`` (one
        per target) or ``mse`` (regression).
    learning_rate, weight_decay
        Optimiser settings.
    optimizer
        ``adam`` or ``adamw``.
    class_weights
        Per-class weights of the cross-entropy (per-target ``pos_weight`` for multilabel), or
        ``None``.
    reverse_complement
        Replace each training batch, with probability 1/2, by its reverse complement (the
        inputs must be nucleotide codes).
    augment
        Augment each training batch of images (:func:`augment_images`); validation batches
        and every later use of the model see the images as they are.
    """

    def __init__(
        self,
        model_config: Mapping[str, Any],
        n_inputs: int,
        n_outputs: int,
        loss: str,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        optimizer: str = "adam",
        class_weights: list[float] | None = None,
        reverse_complement: bool = False,
        augment: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = build_model(model_config, n_inputs, n_outputs)
        weight = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        self.loss = LOSSES[loss](weight)
        #: Set by :func:`fit` for images read from the store: the loaders then yield stored
        #: pixels, scaled to float32 on the device by :meth:`on_after_batch_transfer`.
        self.pixel_scale: float | None = None

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Scale a batch of stored pixels to float32 where it now lies (on the device)."""
        if self.pixel_scale is None:
            return batch
        x, y = batch
        return scale_batch(x, self.pixel_scale), y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw model outputs."""
        return self.model(x)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], name: str) -> torch.Tensor:
        x, y = batch
        loss = self.loss(self(x), y)
        # sync_dist: under DDP every process sees the loss over all devices, so early stopping
        # and checkpointing decide alike (a no-op on one device).
        self.log(
            name,
            loss,
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            batch_size=len(x),
            sync_dist=True,
        )
        return loss

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        """One optimisation step (on a random strand, or augmented images, when asked for)."""
        if getattr(self.hparams, "augment", False):
            x, y = batch
            batch = (augment_images(x), y)
        if self.hparams.reverse_complement:
            x, y = batch
            # One coin per batch, drawn from torch's seeded generator: reruns stay identical.
            if torch.rand(()) < 0.5:
                x = reverse_complement_codes(x)
            batch = (x, y)
        return self._step(batch, "train_loss")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        """Log the validation loss (drives early stopping and checkpointing)."""
        return self._step(batch, "val_loss")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Adam or AdamW with the configured weight decay."""
        cls = torch.optim.AdamW if self.hparams.optimizer == "adamw" else torch.optim.Adam
        return cls(
            self.parameters(), lr=self.hparams.learning_rate, weight_decay=self.hparams.weight_decay
        )


def scale_batch(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Return stored ``uint8``/``uint16`` pixels as float32 divided by ``scale``, on their device.

    The same float32 values as :func:`dlpipe.image_store.scale_pixels` on the host (an exact
    IEEE division either way), so training and evaluation read the images alike.
    """
    return x.to(torch.float32) / scale


#: Largest relative change of an image's intensity by :func:`augment_images`.
INTENSITY_JITTER = 0.1


def augment_images(x: torch.Tensor) -> torch.Tensor:
    """Randomly flip, rotate by multiples of 90° and rescale the intensity of each image.

    Every image of a ``(batch, C, H, W)`` batch gets its own draw, from torch's seeded
    generator (so CPU reruns are identical): a horizontal flip (p = 1/2), a rotation by
    0/90/180/270° (square images; 0/180° otherwise) and a gain in 1 ± :data:`INTENSITY_JITTER`.
    The gain is multiplicative, so dark 16-bit microscopy is not drowned by an offset. Applied
    on the device, to training batches only.
    """
    n = len(x)
    flip = torch.rand(n, device=x.device) < 0.5
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
    turns = torch.randint(0, 4, (n,), device=x.device)
    if x.shape[-1] != x.shape[-2]:
        turns = turns - turns % 2  # a quarter turn would change the shape
    out = x.clone()
    for k in (1, 2, 3):
        chosen = turns == k
        if chosen.any():
            out[chosen] = torch.rot90(x[chosen], k, dims=(-2, -1))
    gain = 1 + INTENSITY_JITTER * (2 * torch.rand(n, device=x.device) - 1)
    return out * gain.view(-1, 1, 1, 1).to(out.dtype)


def reverse_complement_codes(x: torch.Tensor) -> torch.Tensor:
    """Reverse complement of ``(batch, length)`` nucleotide codes (A=0 … T=3; N=4 stays)."""
    return torch.where(x < 4, 3 - x, x).flip(-1)


def accelerator_settings(training: Mapping[str, Any]) -> dict[str, Any]:
    """Map the config's device and devices to Lightning's accelerator, devices and strategy.

    ``device: auto`` trains on ``devices`` GPUs where CUDA is visible and falls back to one CPU
    process elsewhere. More than one device trains with DDP in processes forked by the job
    (NCCL on GPUs, gloo on CPUs), so the job's one task starts its own ranks wherever it runs;
    forking needs no re-import of the Snakemake script and no pickling of the data. CUDA is
    not initialised before the fork: importing Lightning makes ``torch.cuda.is_available``
    ask NVML instead of the CUDA driver.
    """
    device, devices = training["device"], int(training["devices"])
    if device == "gpu" and not torch.cuda.is_available():
        raise ConfigError(
            "training.device is 'gpu' but no CUDA GPU is visible to this job; use 'auto' "
            "to fall back to the CPU, or run where a GPU is available"
        )
    if device == "auto" and devices > 1:
        device = "gpu" if torch.cuda.is_available() else "cpu"
        devices = devices if device == "gpu" else 1
    settings: dict[str, Any] = {
        "accelerator": {"cpu": "cpu", "gpu": "gpu"}.get(device, "auto"),
        "devices": devices,
    }
    if devices > 1:
        settings["strategy"] = "ddp_fork"
    return settings


class BatchTensors(Dataset):
    """Tensors indexed a whole batch at a time: one gather per batch, no per-sample Python.

    The DataLoader hands :meth:`__getitems__` the batch's indices (from its seeded sampler, or
    Lightning's distributed one), so batches and their order are those of a per-sample
    dataset; only the cost of building them changes.
    """

    def __init__(self, *tensors: torch.Tensor) -> None:
        if not tensors or any(len(t) != len(tensors[0]) for t in tensors):
            raise ValueError("BatchTensors needs tensors of the same length")
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        return tuple(t[index] for t in self.tensors)

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, ...]:
        rows = torch.as_tensor(indices, dtype=torch.long)
        return tuple(t.index_select(0, rows) for t in self.tensors)


def _as_batch(batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """Collate function for :class:`BatchTensors`: the batch is already built."""
    return batch


class StoreBatches(Dataset):
    """Batches of stored pixels and their targets, gathered from the image store by index.

    Like :class:`BatchTensors`, one gather per batch (:meth:`__getitems__`), in the sampler's
    order. Pixels come as stored (``uint8``/``uint16``, a quarter or half of float32 to move);
    the module scales them on the device. Pickled for a loader worker, it carries the row
    numbers only; the worker maps the store itself.
    """

    def __init__(self, images: StoreImages, y: np.ndarray) -> None:
        if len(images) != len(y):
            raise ValueError("StoreBatches needs images and targets of the same length")
        self.images = images
        self.y = torch.from_numpy(np.ascontiguousarray(y))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(self.images.raw([index])[0]), self.y[index]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        pixels = torch.from_numpy(self.images.raw(indices))
        return pixels, self.y.index_select(0, torch.as_tensor(indices, dtype=torch.long))


class WorkerLoader(DataLoader):
    """A DataLoader whose persistent workers leave the shuffling order of a loader without.

    Each epoch a loader without workers starts a fresh iterator, which draws a base seed from
    the shuffling generator before the epoch's permutation; persistent workers keep their
    iterator, and their base seed, from the first epoch on. Drawing that seed again each later
    epoch keeps the generator's sequence, and so every epoch's batches, the same for any
    number of workers (and a resumed run's restored generator valid for both).
    """

    def __iter__(self) -> Any:
        if self.persistent_workers and self.num_workers > 0 and self._iterator is not None:
            torch.empty((), dtype=torch.int64).random_(generator=self.generator)
        return super().__iter__()


class WorkerOrder(RandomSampler):
    """The shuffling of a loader without workers, for a loader with them.

    :class:`~torch.utils.data.RandomSampler` draws one permutation per epoch, and another,
    unused, when its iterator runs out; a loader without workers read as Lightning reads it (as
    many batches as its length) runs it out only to fill a last, partial batch, while workers'
    prefetching always does. This sampler draws that trailing permutation exactly when a loader
    without workers would, so the shuffling generator, and every later epoch's order, stays the
    same with any number of workers.
    """

    def __init__(
        self, data: Dataset, generator: torch.Generator, batch_size: int, drop_last: bool
    ) -> None:
        super().__init__(data, generator=generator)
        self.batch_size, self.drop_last = batch_size, drop_last

    def __iter__(self) -> Any:
        n = len(self.data_source)
        yield from torch.randperm(n, generator=self.generator).tolist()
        if n % self.batch_size and not self.drop_last:
            torch.randperm(n, generator=self.generator)


def _seed_worker(seed: int, worker_id: int) -> None:
    """Seed a loader worker's generators from the run's seed and its number."""
    # Workers draw nothing random today; seeded, a transform added later stays reproducible.
    torch.manual_seed(seed + worker_id)
    np.random.seed((seed + worker_id) % 2**32)  # noqa: NPY002 - the legacy global generator


def loader_workers(training: Mapping[str, Any], gpu: bool, threads: int) -> int:
    """Resolve ``training.num_workers``: ``auto`` is 0 on the CPU, up to 4 beside a GPU.

    On the CPU the training threads are busy with the model, and a batch gathered from the
    page cache costs little next to its forward and backward pass, so workers would only
    compete for cores; beside a GPU they prepare the next batches while it computes.
    """
    workers = training.get("num_workers", 0)
    if workers != "auto":
        return int(workers)
    return min(4, max(1, threads)) if gpu else 0


def make_loader(
    X: np.ndarray | StoreImages,  # noqa: N803
    y: np.ndarray,
    batch_size: int,
    shuffle: bool,
    seed: int,
    num_workers: int = 0,
    pin_memory: bool = False,
    drop_last: bool | None = None,
) -> DataLoader:
    """DataLoader over host arrays or the image store, shuffled by a seeded generator.

    Parameters
    ----------
    X, y
        Inputs (features, ``uint8`` sequence codes, or a fold side of the image store, whose
        batches come as stored pixels) and targets.
    batch_size
        Samples per batch.
    shuffle
        Reshuffle every epoch (training side).
    seed
        Seed of the shuffling generator (0 included) and of the workers.
    num_workers
        Loader processes gathering batches from the image store (arrays in memory are always
        gathered in this process: a worker would only copy them).
    pin_memory
        Page-locked batches, for a faster copy to a GPU.
    drop_last
        Drop the last, smaller batch; ``None``: only a shuffled last batch of one sample, which
        breaks batch norm in training mode.

    Returns
    -------
    torch.utils.data.DataLoader
        Yields ``(x, y)`` batches.
    """
    if isinstance(X, StoreImages):
        dataset: Dataset = StoreBatches(X, y)
    else:
        dataset = BatchTensors(
            torch.from_numpy(model_input(X)), torch.from_numpy(np.ascontiguousarray(y))
        )
        num_workers = 0
    generator = torch.Generator().manual_seed(seed)
    if drop_last is None:  # a last batch of one sample breaks batch norm in training mode
        drop_last = shuffle and len(X) % batch_size == 1 and len(X) > batch_size
    order: dict[str, Any] = {"shuffle": shuffle}
    workers: dict[str, Any] = {}
    kind = DataLoader
    if num_workers > 0:
        kind = WorkerLoader
        if shuffle:
            order = {"sampler": WorkerOrder(dataset, generator, batch_size, drop_last)}
        workers = {
            "worker_init_fn": functools.partial(_seed_worker, seed),
            # Kept between epochs: a worker maps the store once, not once per epoch.
            "persistent_workers": True,
        }
    return kind(
        dataset,
        batch_size=batch_size,
        generator=generator,
        drop_last=drop_last,
        num_workers=num_workers,
        collate_fn=_as_batch,
        pin_memory=pin_memory,
        **order,
        **workers,
    )


def _n_inputs(X: np.ndarray, exp: Mapping[str, Any]) -> int:  # noqa: N803
    """Input channels: the alphabet size for sequence codes, image channels, or features."""
    if X.dtype == np.uint8 and X.ndim == 2:
        return alphabet_size(exp.get("data", {}).get("alphabet", "dna"))
    return int(X.shape[1])


def fit(
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    exp: Mapping[str, Any],
    task: Any,
    n_outputs: int,
    checkpoint: str | Path,
    history: str | Path,
    threads: int = 1,
    state_dir: str | Path | None = None,
) -> SupervisedModule:
    """Train one fold's model and write its best checkpoint and per-epoch history.

    Parameters
    ----------
    train, val
        ``(X, y)`` of the training and validation sides (already preprocessed; regression
        targets already standardised). Images are fold sides of the store
        (:class:`dlpipe.image_store.StoreImages`), scaled per batch on the device.
    exp
        The experiment's validated config (``model``, ``training``, ``task``, ``seed``, and for
        sequences ``data.alphabet``). Sequence inputs are ``uint8`` codes.
    task
        The :class:`dlpipe.tasks.Task` of the data: the loss, the targets' dtype and the
        weights of ``training.class_weights: balanced``.
    n_outputs
        Number of classes or targets.
    checkpoint
        Where to write the best-epoch Lightning checkpoint.
    history
        Where to write the per-epoch TSV (epoch, train_loss, val_loss).
    threads
        CPU threads for torch (shared by the processes of a DDP run).
    state_dir
        Folder kept between attempts for the resumable checkpoints; a run finding one of the
        same settings and data there continues from its last epoch, and removes it when done.
        ``None`` trains in a temporary folder (no resume).

    Returns
    -------
    SupervisedModule
        The model with the weights of the best validation epoch, in eval mode.
    """
    seed, training = int(exp["seed"]), exp["training"]
    L.seed_everything(seed, workers=True, verbose=False)
    X_train, y_train = train[0], task.training_targets(train[1])  # noqa: N806
    X_val, y_val = val[0], task.training_targets(val[1])  # noqa: N806
    weights = None
    if training["class_weights"] == "balanced":
        weights = task.balanced_weights(y_train, n_outputs)
    module = SupervisedModule(
        exp["model"],
        n_inputs=_n_inputs(X_train, exp),
        n_outputs=n_outputs,
        loss=task.loss,
        learning_rate=training["learning_rate"],
        weight_decay=training["weight_decay"],
        optimizer=training["optimizer"],
        class_weights=weights,
        reverse_complement=bool(
            training["reverse_complement"] is True  # "auto" is resolved per data set before
            and X_train.dtype == np.uint8
            and exp.get("data", {}).get("alphabet", "dna") in ("dna", "rna")
        ),
        augment=bool(training.get("augment") is True and X_train.ndim == 4),
    )
    if isinstance(X_train, StoreImages):
        module.pixel_scale = X_train.scale
    stamp = None
    if state_dir is not None:
        stamp = fingerprint(exp, n_outputs, (X_train, y_train, X_val, y_val))
    fit_module(
        module,
        (X_train, y_train),
        (X_val, y_val),
        training,
        seed,
        checkpoint,
        history,
        threads=threads,
        state_dir=state_dir,
        stamp=stamp,
    )
    module = SupervisedModule.load_from_checkpoint(checkpoint, map_location="cpu")
    module.eval()
    return module


def fit_module(
    module: L.LightningModule,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    training: Mapping[str, Any],
    seed: int,
    checkpoint: str | Path,
    history: str | Path,
    threads: int = 1,
    state_dir: str | Path | None = None,
    stamp: str | None = None,
) -> None:
    """Fit a Lightning module with early stopping on ``val_loss``; keep its best epoch.

    The loop shared by the supervised models and the VAE: device placement, deterministic
    batches, the best-epoch checkpoint, the per-epoch history and resumable training state.

    Parameters
    ----------
    module
        A module that logs ``train_loss`` and ``val_loss`` once per epoch.
    train, val
        ``(X, y)`` of the training and validation sides.
    training
        ``max_epochs``, ``patience``, ``batch_size``, ``precision``, ``progress_bar``,
        ``device``, ``devices``, ``num_workers`` (image store sides; see
        :func:`loader_workers`), and optionally ``min_validation``: with fewer validation rows
        the module trains ``max_epochs`` epochs without early stopping and keeps its last
        epoch (a validation loss over a handful of rows would pick the epoch by chance); the
        history then has an ``early_stopping`` column saying why.
    seed
        Seed of the training loader's shuffling.
    checkpoint
        Where to copy the best-epoch checkpoint.
    history
        Where to write the per-epoch TSV (epoch, train_loss, val_loss).
    threads
        CPU threads for torch (shared by the processes of a DDP run).
    state_dir, stamp
        Folder kept between attempts for the resumable checkpoints and the :func:`fingerprint`
        of this run; a run finding a state of the same fingerprint there continues from its
        last epoch, and removes the folder when done. ``state_dir=None`` trains in a temporary
        folder (no resume).
    """
    if state_dir is not None and stamp is None:
        raise ValueError("a resumable run (state_dir) needs the fingerprint of its settings")
    X_train, y_train = train  # noqa: N806
    X_val, y_val = val  # noqa: N806
    settings = accelerator_settings(training)
    # batch_size is the global batch: DDP splits it over the devices, so adding devices does not
    # change the optimisation settings.
    batch_size = max(1, min(int(training["batch_size"]), len(X_train)) // settings["devices"])
    log.info(
        "training on %s x %d (CUDA_VISIBLE_DEVICES=%s)",
        settings["accelerator"],
        settings["devices"],
        os.environ.get("CUDA_VISIBLE_DEVICES", "unset"),
    )
    with contextlib.ExitStack() as stack:
        if state_dir is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dlpipe-train-")))
            resume = None
        else:
            folder = Path(state_dir)
            resume = resume_checkpoint(folder, str(stamp))
        # The VAE (dlpipe.embed) sets no threshold.
        min_rows = int(training.get("min_validation", 0))
        note = None
        if len(X_val) < min_rows:
            note = f"skipped: {len(X_val)} validation rows < training.min_validation {min_rows}"
            log.info("early stopping %s; training %d epochs", note, training["max_epochs"])
        stopper = EarlyStopping(monitor="val_loss", mode="min", patience=training["patience"])
        # Two checkpoints: the best epoch (the model the step returns) and the latest epoch
        # (what a killed job resumes from). The latest comes second so it holds the best's state.
        best = ModelCheckpoint(
            dirpath=folder,
            filename=BEST.removesuffix(".ckpt"),
            monitor="val_loss",
            mode="min",
            save_top_k=1,
            enable_version_counter=False,
        )
        latest = ModelCheckpoint(
            dirpath=folder, filename=LAST.removesuffix(".ckpt"), enable_version_counter=False
        )
        gpu = settings["accelerator"] == "gpu" or (
            settings["accelerator"] == "auto" and torch.cuda.is_available()
        )
        loader = functools.partial(
            make_loader,
            batch_size=batch_size,
            seed=seed,
            num_workers=loader_workers(training, gpu, threads),
            pin_memory=gpu,
        )
        train_loader = loader(X_train, y_train, shuffle=True)
        state = TrainingState(
            folder / HISTORY,
            max(1, threads // settings["devices"]),
            getattr(train_loader, "generator", None),
            note,
        )
        trainer = L.Trainer(
            max_epochs=training["max_epochs"],
            precision=training["precision"],
            deterministic=True,
            # Without early stopping the last epoch is the model kept, not the best one.
            callbacks=[state, latest] if note else [stopper, state, best, latest],
            logger=False,
            enable_progress_bar=training["progress_bar"],
            enable_model_summary=False,
            default_root_dir=folder,
            # DDP ranks are started here, also inside a SLURM job (which would otherwise make
            # Lightning expect one SLURM task per device).
            plugins=[LightningEnvironment()] if settings["devices"] > 1 else None,
            **settings,
        )
        if resume is not None:
            log.info("resuming from %s", resume)
        trainer.fit(
            module,
            train_loader,
            loader(X_val, y_val, shuffle=False),
            ckpt_path=resume,
            weights_only=True,
        )
        shutil.copyfile(folder / (LAST if note else BEST), checkpoint)
        shutil.copyfile(folder / HISTORY, history)
        if state_dir is not None:
            shutil.rmtree(folder)  # finished: nothing left to resume
    table = pd.read_csv(history, sep="\t")
    if note:
        log.info("kept the last epoch, %d", len(table) - 1)
    else:
        log.info(
            "best epoch %d, val_loss %.6f", table["val_loss"].idxmin(), table["val_loss"].min()
        )


#: Files in a fold's training-state folder.
BEST, LAST, HISTORY, FINGERPRINT = "best.ckpt", "last.ckpt", "history.tsv", "fingerprint.txt"


def fingerprint(exp: Mapping[str, Any], n_outputs: int, arrays: tuple[np.ndarray, ...]) -> str:
    """Digest of everything a training run depends on: settings, data and library versions.

    A saved training state is resumed only under the same digest, so a checkpoint of other
    settings or other data is never continued.
    """
    digest = hashlib.sha256()
    settings = {
        # Version of what a checkpoint holds: a state of an older layout is never resumed.
        "format": 2,
        "exp": exp,
        "n_outputs": n_outputs,
        "torch": torch.__version__,
        "lightning": L.__version__,
    }
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for array in arrays:
        if isinstance(array, StoreImages):
            # The store's sidecar names every source file's sha256 and the size; the rows and
            # the scale say which images and how they are read: no need to hash the pixels.
            digest.update(Path(array.store).with_suffix(".json").read_bytes())
            digest.update(array.rows.tobytes())
            digest.update(repr(array.scale).encode())
            continue
        digest.update(str((array.dtype, array.shape)).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def resume_checkpoint(folder: Path, stamp: str) -> Path | None:
    """Return the checkpoint to resume from in ``folder``, or clear the folder for a fresh start.

    Parameters
    ----------
    folder
        The fold's training-state folder (created if missing).
    stamp
        :func:`fingerprint` of the run about to start.

    Returns
    -------
    Path or None
        ``last.ckpt`` when it was written under the same fingerprint and can be read.
    """
    last, stamp_file = folder / LAST, folder / FINGERPRINT
    if last.is_file() and stamp_file.is_file() and stamp_file.read_text() == stamp:
        try:
            torch.load(last, map_location="cpu", weights_only=True, mmap=True)
            return last
        except (RuntimeError, OSError, EOFError) as error:
            log.warning("%s cannot be read (%s); training starts again", last, error)
    elif folder.is_dir() and any(folder.iterdir()):
        log.info("%s holds a training state of other settings or data; starting again", folder)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    stamp_file.write_text(stamp)
    return None


class TrainingState(Callback):
    """History rows and the random state a resumed run needs, kept in every checkpoint.

    Lightning's checkpoints restore weights, optimiser, epoch and the early-stopping and
    checkpoint callbacks. This callback adds the per-epoch history and the random state drawn
    during training: torch's generator (dropout, the reverse-complement coin), the CUDA
    generators in use and the training loader's shuffling generator. numpy and ``random`` are
    not drawn from while fitting. It also sets torch's CPU threads in every training process
    (DDP processes start fresh).

    Parameters
    ----------
    history
        TSV rewritten at the end of every epoch (epoch, train_loss, val_loss).
    threads
        CPU threads per training process.
    generator
        The training loader's shuffling generator (``None`` when it has none).
    note
        Why early stopping was skipped (an ``early_stopping`` column of the history), if it was.
    """

    def __init__(
        self,
        history: Path,
        threads: int,
        generator: torch.Generator | None,
        note: str | None = None,
    ) -> None:
        self.history = history
        self.threads = threads
        self.generator = generator
        self.note = note
        self.rows: list[dict[str, float]] = []

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Set the CPU threads of this process."""
        torch.set_num_threads(self.threads)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Add the epoch's losses to the history (written by the first process)."""
        metrics = trainer.callback_metrics
        row = {"epoch": trainer.current_epoch}
        row.update({k: float(metrics[k]) for k in ("train_loss", "val_loss") if k in metrics})
        self.rows.append(row)
        if trainer.is_global_zero:
            write_history(self.rows, self.history, self.note)

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Store the history and the random state as they are at the end of this epoch."""
        rng: dict[str, Any] = {"torch": torch.get_rng_state()}
        if self.generator is not None:
            rng["loader"] = self.generator.get_state()
        if torch.cuda.is_initialized():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        checkpoint["dlpipe"] = {"history": list(self.rows), "rng": rng}

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Take back the history and the random state.

        This runs before the loop builds the first epoch's batch iterator, which draws from the
        loader's generator; the sanity-check validation in between keeps torch's generator.
        """
        state = checkpoint.get("dlpipe")
        if state is None:
            return
        self.rows = list(state["history"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        if self.generator is not None and "loader" in rng:
            self.generator.set_state(rng["loader"])
        if "cuda" in rng and torch.cuda.is_initialized():
            torch.cuda.set_rng_state_all(rng["cuda"])

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Stop at once when the run was killed after early stopping fired, before the copy."""
        stopper = trainer.early_stopping_callback
        if stopper is not None and stopper.wait_count >= stopper.patience:
            trainer.should_stop = True


__all__ = [
    "LOSSES",
    "BatchTensors",
    "StoreBatches",
    "SupervisedModule",
    "fit",
    "fit_module",
    "make_loader",
]


def write_history(
    rows: list[dict[str, float]], history: str | Path, note: str | None = None
) -> None:
    """Write one row per epoch: epoch, train_loss, val_loss (6 significant digits).

    ``note``: why early stopping was skipped, in an ``early_stopping`` column (absent otherwise).
    """
    table = pd.DataFrame(rows, columns=["epoch", "train_loss", "val_loss"])
    if note:
        table["early_stopping"] = note
    table.to_csv(history, sep="\t", index=False, float_format="%.6g")
