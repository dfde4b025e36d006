"""Load a trained fold model and compute its raw outputs, without importing Lightning.

Lightning checkpoints hold plain hyperparameters and a state dict; rebuilding the registered
model from them keeps prediction jobs light (Lightning's import alone takes seconds). Only
tensors and plain values are unpickled (``weights_only=True``), and the family the
hyperparameters name is resolved by the registry, which calls nothing but a ``torch.nn.Module``
class; a family named by ``model.class`` is imported, so a checkpoint is only as trustworthy as
the modules it may name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dlpipe.errors import InputError
from dlpipe.models import build_model
from dlpipe.models.pretrained import checkpoint_weights_follow


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint's tensors and plain values (``weights_only=True``) on the CPU.

    Raises
    ------
    InputError
        If the file is missing, truncated, altered or not a checkpoint, naming it and how to
        retrain it (torch's own message may advise unsafe loading, so it is not passed on).
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(f"{path}: missing; rerun the workflow to train it") from None
    except Exception as err:  # noqa: BLE001 - zip, pickle and storage errors of a damaged file
        raise InputError(
            f"{path}: damaged or not a dlpipe checkpoint ({type(err).__name__}); delete it and "
            "rerun the workflow (dlpipe run CONFIG) to retrain this fold"
        ) from None
    if not isinstance(state, dict) or not {"state_dict", "hyper_parameters"} <= set(state):
        raise InputError(
            f"{path}: not a dlpipe checkpoint (no weights and hyperparameters); delete it and "
            "rerun the workflow to retrain this fold"
        )
    return state


def load_model(checkpoint: str | Path, expected: Mapping[str, Any] | None = None) -> nn.Module:
    """Rebuild the model of a dlpipe checkpoint on the CPU, in eval mode.

    Parameters
    ----------
    checkpoint
        A ``model.ckpt`` written by :func:`dlpipe.train.fit`.
    expected
        The experiment's ``model`` section: a checkpoint trained with another is refused (a
        fold model of another experiment put in its place).

    Returns
    -------
    torch.nn.Module
        The registered model family with the best epoch's weights.

    Raises
    ------
    InputError
        If the file is damaged, not a dlpipe checkpoint, of another model, or its weights do
        not fit the model it names.
    """
    state = read_checkpoint(checkpoint)
    hparams = state["hyper_parameters"]
    try:
        config, n_inputs, n_outputs = (
            hparams["model_config"],
            hparams["n_inputs"],
            hparams["n_outputs"],
        )
    except (KeyError, TypeError):
        raise InputError(
            f"{checkpoint}: not a dlpipe checkpoint (no model settings); delete it and rerun the "
            "workflow to retrain this fold"
        ) from None
    if expected is not None and _plain(config) != _plain(expected):
        raise InputError(
            f"{checkpoint}: trained with another model ({_plain(config)}) than the experiment's "
            f"config.yaml names ({_plain(expected)}); the file comes from another experiment. "
            "Delete it and rerun the workflow to retrain this fold"
        )
    with checkpoint_weights_follow():  # pretrained weights: the state dict below replaces them
        model = build_model(config, n_inputs, n_outputs)
    weights = {
        key.removeprefix("model."): value
        for key, value in state["state_dict"].items()
        if key.startswith("model.")
    }
    try:
        model.load_state_dict(weights)
    except RuntimeError:
        raise InputError(
            f"{checkpoint}: its weights do not fit the model it names; delete it and rerun the "
            "workflow to retrain this fold"
        ) from None
    return model.eval()


def _plain(value: Any) -> Any:
    """Return settings as JSON sees them (tuples and lists alike), for comparison and messages."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


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
    """Raw outputs of a model on ``X`` (logits or standardised values), as float64.

    ``X`` is an array or anything that slices like one (a fold side of the image store); it is
    converted a batch at a time, so a side never lies in memory whole.
    """
    model.eval()
    out = [
        model(torch.from_numpy(model_input(X[i : i + batch_size]))).float().numpy()
        for i in range(0, len(X), batch_size)
    ]
    return np.concatenate(out).astype(np.float64)
