"""Training with Lightning: the module, the trainer factory and one call that fits a fold.

Lightning runs the loop, early stopping on the validation loss, checkpointing of the best epoch,
device placement and precision. Reproducibility: :func:`lightning.seed_everything` (seed 0
included), deterministic algorithms, a seeded shuffling generator and no loader workers, so a
CPU rerun is bit-identical.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L  # noqa: N812 - the documented alias
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, Dataset

from dlpipe.inference import load_model, model_input, predict
from dlpipe.models import build_model

log = logging.getLogger(__name__)


class SupervisedModule(L.LightningModule):
    """A registered model with its loss and optimiser (tabular features or sequence codes).

    Parameters
    ----------
    model_config
        The experiment's ``model`` config (``name`` plus hyperparameters).
    n_inputs, n_outputs
        Input features; classes or regression targets.
    task
        ``classification`` (cross-entropy), ``multilabel`` (binary cross-entropy per target)
        or ``regression`` (mean squared error).
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
    """

    def __init__(
        self,
        model_config: Mapping[str, Any],
        n_inputs: int,
        n_outputs: int,
        task: str,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        optimizer: str = "adam",
        class_weights: list[float] | None = None,
        reverse_complement: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        config = dict(model_config)
        self.model = build_model(config.pop("name"), n_inputs, n_outputs, **config)
        weight = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        if task == "classification":
            self.loss = nn.CrossEntropyLoss(weight=weight)
        elif task == "multilabel":
            self.loss = nn.BCEWithLogitsLoss(pos_weight=weight)
        else:
            self.loss = nn.MSELoss()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw model outputs."""
        return self.model(x)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], name: str) -> torch.Tensor:
        x, y = batch
        loss = self.loss(self(x), y)
        self.log(name, loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(x))
        return loss

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        """One optimisation step (on a random strand when reverse-complement is on)."""
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


def reverse_complement_codes(x: torch.Tensor) -> torch.Tensor:
    """Reverse complement of ``(batch, length)`` nucleotide codes (A=0 … T=3; N=4 stays)."""
    return torch.where(x < 4, 3 - x, x).flip(-1)


def positive_weights(y: np.ndarray) -> list[float]:
    """Per-target ``pos_weight`` = negatives / positives of the training labels (1 if none)."""
    pos = y.sum(axis=0)
    neg = len(y) - pos
    return [float(n / p) if p > 0 else 1.0 for n, p in zip(neg, pos, strict=True)]


def balanced_class_weights(y: np.ndarray, n_classes: int) -> list[float]:
    """Inverse-frequency weights ``n / (k * n_c)`` of the training labels (scikit-learn's rule)."""
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(y)
    weights = np.ones(n_classes)
    weights[present] = compute_class_weight("balanced", classes=present, y=y)
    return [float(w) for w in weights]


def accelerator_settings(training: Mapping[str, Any]) -> dict[str, Any]:
    """Map the config's device to Lightning's ``accelerator`` and ``devices``."""
    device = training["device"]
    if device == "cpu":
        return {"accelerator": "cpu", "devices": 1}
    if device == "gpu":
        if not torch.cuda.is_available():
            from dlpipe.errors import ConfigError

            raise ConfigError(
                "training.device is 'gpu' but no CUDA GPU is visible to this job; use 'auto' "
                "to fall back to the CPU, or run where a GPU is available"
            )
        return {"accelerator": "gpu", "devices": int(training["gpus"])}
    return {"accelerator": "auto", "devices": 1}


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


def make_loader(
    X: np.ndarray,  # noqa: N803
    y: np.ndarray,
    batch_size: int,
    shuffle: bool,
    seed: int,
) -> DataLoader:
    """DataLoader over host arrays (sequence codes stay ``uint8``), shuffled by a seeded generator.

    Parameters
    ----------
    X, y
        Inputs (features or ``uint8`` codes) and targets.
    batch_size
        Samples per batch.
    shuffle
        Reshuffle every epoch (training side).
    seed
        Seed of the shuffling generator (0 included).

    Returns
    -------
    torch.utils.data.DataLoader
        Yields ``(x, y)`` batches.
    """
    tensors = BatchTensors(
        torch.from_numpy(model_input(X)), torch.from_numpy(np.ascontiguousarray(y))
    )
    generator = torch.Generator().manual_seed(seed)
    # A last batch of one sample breaks batch norm in training mode; drop it.
    drop_last = shuffle and len(X) % batch_size == 1 and len(X) > batch_size
    return DataLoader(
        tensors,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        drop_last=drop_last,
        num_workers=0,
        collate_fn=_as_batch,
    )


def _n_inputs(X: np.ndarray, exp: Mapping[str, Any]) -> int:  # noqa: N803
    """Input channels: the alphabet size for sequence codes, the feature count otherwise."""
    if X.dtype == np.uint8:
        from dlpipe.encode import alphabet_size

        return alphabet_size(exp.get("data", {}).get("alphabet", "dna"))
    return int(X.shape[1])


def prepare_targets(y: np.ndarray, task: str) -> np.ndarray:
    """Class codes as int64, regression targets as a float32 matrix."""
    if task == "classification":
        return np.asarray(y, dtype=np.int64)
    y = np.asarray(y, dtype=np.float32)  # multilabel 0/1 matrix or regression targets
    return y.reshape(len(y), -1)


def fit(
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    exp: Mapping[str, Any],
    n_outputs: int,
    checkpoint: str | Path,
    history: str | Path,
    threads: int = 1,
) -> SupervisedModule:
    """Train one fold's model and write its best checkpoint and per-epoch history.

    Parameters
    ----------
    train, val
        ``(X, y)`` of the training and validation sides (already preprocessed; regression
        targets already standardised).
    exp
        The experiment's validated config (``model``, ``training``, ``task``, ``seed``, and for
        sequences ``data.alphabet``). Sequence inputs are ``uint8`` codes.
    n_outputs
        Number of classes or targets.
    checkpoint
        Where to write the best-epoch Lightning checkpoint.
    history
        Where to write the per-epoch TSV (epoch, train_loss, val_loss).
    threads
        CPU threads for torch.

    Returns
    -------
    SupervisedModule
        The model with the weights of the best validation epoch, in eval mode.
    """
    seed, training, task = int(exp["seed"]), exp["training"], exp["task"]
    torch.set_num_threads(max(1, threads))
    L.seed_everything(seed, workers=True, verbose=False)
    X_train, y_train = train[0], prepare_targets(train[1], task)  # noqa: N806
    X_val, y_val = val[0], prepare_targets(val[1], task)  # noqa: N806
    weights = None
    if task == "classification" and training["class_weights"] == "balanced":
        weights = balanced_class_weights(y_train, n_outputs)
    elif task == "multilabel" and training["class_weights"] == "balanced":
        weights = positive_weights(y_train)
    module = SupervisedModule(
        exp["model"],
        n_inputs=_n_inputs(X_train, exp),
        n_outputs=n_outputs,
        task=task,
        learning_rate=training["learning_rate"],
        weight_decay=training["weight_decay"],
        optimizer=training["optimizer"],
        class_weights=weights,
        reverse_complement=bool(
            training["reverse_complement"]
            and X_train.dtype == np.uint8
            and exp.get("data", {}).get("alphabet", "dna") in ("dna", "rna")
        ),
    )
    batch_size = min(int(training["batch_size"]), len(X_train))
    with tempfile.TemporaryDirectory(prefix="dlpipe-train-") as tmp:
        stopper = EarlyStopping(monitor="val_loss", mode="min", patience=training["patience"])
        best = ModelCheckpoint(
            dirpath=tmp, filename="best", monitor="val_loss", mode="min", save_top_k=1
        )
        trainer = L.Trainer(
            max_epochs=training["max_epochs"],
            precision=training["precision"],
            deterministic=True,
            callbacks=[stopper, best],
            logger=CSVLogger(tmp, name="", version=""),
            enable_progress_bar=training["progress_bar"],
            enable_model_summary=False,
            log_every_n_steps=1,
            default_root_dir=tmp,
            **accelerator_settings(training),
        )
        trainer.fit(
            module,
            make_loader(X_train, y_train, batch_size, shuffle=True, seed=seed),
            make_loader(X_val, y_val, batch_size, shuffle=False, seed=seed),
        )
        log.info(
            "best epoch val_loss %.6f (%s)", float(best.best_model_score), best.best_model_path
        )
        shutil.copyfile(best.best_model_path, checkpoint)
        write_history(Path(tmp) / "metrics.csv", history)
    module = SupervisedModule.load_from_checkpoint(checkpoint, map_location="cpu")
    module.eval()
    return module


__all__ = ["BatchTensors", "SupervisedModule", "fit", "load_model", "make_loader", "predict"]


def write_history(metrics_csv: str | Path, history: str | Path) -> None:
    """Condense Lightning's CSV log to one row per epoch: epoch, train_loss, val_loss."""
    frame = pd.read_csv(metrics_csv)
    cols = [c for c in ("train_loss", "val_loss") if c in frame.columns]
    table = frame.groupby("epoch")[cols].first().reset_index()
    table.to_csv(history, sep="\t", index=False, float_format="%.6g")
