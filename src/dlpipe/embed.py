"""A Gaussian VAE beside the supervised models: per-fold embeddings and reconstruction error.

For an experiment with ``embed.enabled``, each fold fits a
:class:`~dlpipe.models.vae.GaussianVAE` with Lightning on the preprocessed features of its
training side (SMOTE rows left out: they are not samples), with early stopping on its
validation side; the test side is only encoded and scored. Every sample of the data set is then
embedded by that fold's VAE (posterior means), and the reconstruction error is reported for each
side, so the test-side error tells how well the VAE generalises to samples it never saw.

Embeddings of different folds are different coordinate systems: use one fold's file, never a
mix of folds.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anndata as ad
import lightning as L  # noqa: N812 - the documented alias
import numpy as np
import pandas as pd
import torch

from dlpipe.models.checkpoint import read_checkpoint
from dlpipe.models.vae import GaussianVAE
from dlpipe.train import fit_module

log = logging.getLogger(__name__)

SIDES = ("train", "val", "test")


class VAEModule(L.LightningModule):
    """A :class:`GaussianVAE` with its negative-ELBO loss and Adam.

    Parameters
    ----------
    n_inputs
        Number of features.
    n_latent, hidden_layers, dropout, batch_norm
        Architecture (see :class:`GaussianVAE`).
    beta
        Weight of the KL term.
    learning_rate, weight_decay
        Adam settings.
    """

    def __init__(
        self,
        n_inputs: int,
        n_latent: int,
        hidden_layers: Sequence[int],
        dropout: float,
        batch_norm: bool,
        beta: float = 1.0,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.vae = GaussianVAE(n_inputs, n_latent, list(hidden_layers), dropout, batch_norm)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], name: str) -> torch.Tensor:
        x, _ = batch
        terms = self.vae.elbo_terms(x, self.vae(x), self.hparams.beta)
        self.log(name, terms.loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(x))
        return terms.loss

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        """One optimisation step on the negative ELBO."""
        return self._step(batch, "train_loss")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        """Log the validation negative ELBO (drives early stopping and checkpointing)."""
        return self._step(batch, "val_loss")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Adam with the configured weight decay."""
        return torch.optim.Adam(
            self.parameters(), lr=self.hparams.learning_rate, weight_decay=self.hparams.weight_decay
        )


def fit_vae(
    train: np.ndarray,
    val: np.ndarray,
    exp: Mapping[str, Any],
    checkpoint: str | Path,
    history: str | Path,
    threads: int = 1,
) -> GaussianVAE:
    """Fit a fold's VAE on its training rows, early-stopped on its validation rows.

    Parameters
    ----------
    train, val
        Preprocessed feature matrices.
    exp
        The experiment's config (``seed``, ``embed``; ``training`` for device and precision).
    checkpoint
        Where to write the best-epoch checkpoint.
    history
        Where to write the per-epoch losses.
    threads
        CPU threads for torch.

    Returns
    -------
    GaussianVAE
        The best epoch's VAE, on the CPU, in eval mode.
    """
    cfg, seed = exp["embed"], int(exp["seed"])
    L.seed_everything(seed, workers=True, verbose=False)
    module = VAEModule(
        n_inputs=train.shape[1],
        n_latent=cfg["n_latent"],
        hidden_layers=cfg["hidden_layers"],
        dropout=cfg["dropout"],
        batch_norm=cfg["batch_norm"],
        beta=cfg["beta"],
        learning_rate=cfg["learning_rate"],
        weight_decay=cfg["weight_decay"],
    )
    settings = {
        **exp["training"],
        "max_epochs": cfg["max_epochs"],
        "patience": cfg["patience"],
        "batch_size": cfg["batch_size"],
    }
    # The autoencoder's target is its input: the loaders yield (x, x).
    fit_module(module, (train, train), (val, val), settings, seed, checkpoint, history, threads)
    return load_vae(checkpoint)


def load_vae(checkpoint: str | Path) -> GaussianVAE:
    """Rebuild the VAE of a checkpoint written by :func:`fit_vae` (CPU, eval mode)."""
    state = read_checkpoint(checkpoint)
    hp = state["hyper_parameters"]
    vae = GaussianVAE(
        hp["n_inputs"], hp["n_latent"], list(hp["hidden_layers"]), hp["dropout"], hp["batch_norm"]
    )
    vae.load_state_dict(
        {k.removeprefix("vae."): v for k, v in state["state_dict"].items() if k.startswith("vae.")}
    )
    return vae.eval()


@torch.no_grad()
def posterior_means(
    vae: GaussianVAE,
    X: np.ndarray,  # noqa: N803
    batch_size: int = 1024,
) -> np.ndarray:
    """Posterior means ``(n, n_latent)`` of the rows of ``X``."""
    vae.eval()
    tensor = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    parts = [vae.encode(tensor[i : i + batch_size])[0] for i in range(0, len(tensor), batch_size)]
    return torch.cat(parts).numpy().astype(np.float64)


@torch.no_grad()
def reconstruction_error(
    vae: GaussianVAE,
    X: np.ndarray,  # noqa: N803
    beta: float = 1.0,
) -> dict[str, float]:
    """How well the VAE reconstructs ``X`` from the posterior means.

    Returns
    -------
    dict
        ``mse`` (mean squared error per entry), ``r2`` (1 − SSE / SST around this side's
        feature means, pooled over features), ``neg_elbo`` (per sample) and ``n``.
    """
    vae.eval()
    x = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    out = vae(x)
    recon = out.recon.double().numpy()
    truth = np.asarray(X, dtype=np.float64)
    sse = float(((truth - recon) ** 2).sum())
    sst = float(((truth - truth.mean(axis=0)) ** 2).sum())
    return {
        "n": len(truth),
        "mse": sse / truth.size,
        "r2": 1.0 - sse / sst if sst > 0 else float("nan"),
        "neg_elbo": float(vae.elbo_terms(x, out, beta).loss),
    }


def reconstruction_table(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Reconstruction error per fold and side (``fold``, ``side``, ``n``, ``mse``, ``r2``, …).

    ``records`` are the folds' ``reconstruction.json`` contents.
    """
    rows = []
    for record in records:
        for side in SIDES:
            rows.append({"fold": record["fold"], "side": side, **record[side]})
    return pd.DataFrame(rows).sort_values(["fold", "side"], key=_side_order).reset_index(drop=True)


def _side_order(column: pd.Series) -> pd.Series:
    return column.map(SIDES.index) if column.name == "side" else column


def umap_coordinates(latent: np.ndarray, seed: int, n_neighbors: int = 15) -> np.ndarray:
    """2-D UMAP (scanpy) of latent points."""
    import scanpy as sc  # lazy: dlpipe[embed]; the fold jobs fit the VAE without it

    adata = ad.AnnData(np.asarray(latent, dtype=np.float32))
    sc.pp.neighbors(adata, n_neighbors=min(n_neighbors, len(latent) - 1), use_rep="X")
    sc.tl.umap(adata, random_state=seed)
    return np.asarray(adata.obsm["X_umap"])
