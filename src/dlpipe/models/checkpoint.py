"""Load a trained fold model and compute its raw outputs, without importing Lightning.

Lightning checkpoints hold plain hyperparameters and a state dict; rebuilding the registered
model from them keeps prediction jobs light (Lightning's import alone takes seconds). Only
tensors and plain values are unpickled (``weights_only=True``), and the family the
hyperparameters name is resolved by the registry, which calls nothing but a ``torch.nn.Module``
class; a family named by ``model.class`` is imported, so a checkpoint is only as trustworthy as
the modules it may name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from dlpipe.models import build_model


def load_model(checkpoint: str | Path) -> nn.Module:
    """Rebuild the model of a dlpipe checkpoint on the CPU, in eval mode.

    Parameters
    ----------
    checkpoint
        A ``model.ckpt`` written by :func:`dlpipe.train.fit`.

    Returns
    -------
    torch.nn.Module
        The registered model family with the best epoch's weights.
    """
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    hparams = state["hyper_parameters"]
    model = build_model(hparams["model_config"], hparams["n_inputs"], hparams["n_outputs"])
    weights = {
        key.removeprefix("model."): value
        for key, value in state["state_dict"].items()
        if key.startswith("model.")
    }
    model.load_state_dict(weights)
    return model.eval()


def parameter_count(checkpoint: str | Path) -> int:
    """Trainable parameters of a fold model (every fold has the same architecture)."""
    return int(sum(p.numel() for p in load_model(checkpoint).parameters() if p.requires_grad))


def model_input(X: np.ndarray) -> np.ndarray:  # noqa: N803
    """Sequence codes stay ``uint8`` (expanded on the device); features become float32."""
    if X.dtype == np.uint8:
        return np.ascontiguousarray(X)
    return np.ascontiguousarray(X, dtype=np.float32)


@torch.no_grad()
def raw_outputs(model: nn.Module, X: np.ndarray, batch_size: int = 1024) -> np.ndarray:  # noqa: N803
    """Raw outputs of a model on ``X`` (logits or standardised values), as float64."""
    model.eval()
    tensor = torch.from_numpy(model_input(X))
    out = [
        model(tensor[i : i + batch_size]).float().numpy() for i in range(0, len(tensor), batch_size)
    ]
    return np.concatenate(out).astype(np.float64)
