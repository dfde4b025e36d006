"""Model families, one file each, registered by the name a config uses.

A family is a ``torch.nn.Module`` class called as ``(n_inputs, n_outputs, **hyperparameters)``;
its modules return raw outputs (logits for classification, values for regression). Losses live
in :mod:`dlpipe.train`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from dlpipe.errors import ConfigError

ModelFactory = Callable[..., nn.Module]
_REGISTRY: dict[str, ModelFactory] = {}


def register_model(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Register a model factory under ``name`` (decorator)."""

    def decorate(factory: ModelFactory) -> ModelFactory:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = factory
        return factory

    return decorate


def available_models() -> list[str]:
    """Names of the registered model families."""
    return sorted(_REGISTRY)


def build_model(name: str, n_inputs: int, n_outputs: int, **hyperparameters: Any) -> nn.Module:
    """Instantiate a registered model.

    Parameters
    ----------
    name
        Registered family name (``model.name`` in the config).
    n_inputs, n_outputs
        Input features; outputs (classes, or regression targets).
    **hyperparameters
        Family-specific settings from the ``model`` config.

    Returns
    -------
    torch.nn.Module
        The untrained model.
    """
    if name not in _REGISTRY:
        raise ConfigError(
            f"config key model.name: {name!r} is not a registered model; choose one of "
            f"{', '.join(available_models())}"
        )
    allowed = hyperparameter_names(name)
    unknown = sorted(set(hyperparameters) - set(allowed))
    if unknown:
        raise ConfigError(
            f"config key model: {unknown} are not hyperparameters of {name!r}; it takes "
            f"{', '.join(allowed)}"
        )
    return _REGISTRY[name](n_inputs, n_outputs, **hyperparameters)


def hyperparameter_names(name: str) -> list[str]:
    """Keyword arguments a model family accepts besides ``n_inputs`` and ``n_outputs``."""
    params = inspect.signature(_REGISTRY[name]).parameters
    return [p for p in params if p not in ("n_inputs", "n_outputs", "self")]


from dlpipe.models import cnn, danq, mlp, resnet1d  # noqa: E402, F401 - register the families

__all__ = ["available_models", "build_model", "hyperparameter_names", "register_model"]
