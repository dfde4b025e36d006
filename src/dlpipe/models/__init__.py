"""Model families, one file each, registered by the name a config uses.

A family is a callable ``(n_inputs, n_outputs, **hyperparameters) -> torch.nn.Module`` that
returns raw outputs (logits for classification, values for regression); losses live in
:mod:`dlpipe.train`.
"""

from __future__ import annotations

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
    return _REGISTRY[name](n_inputs, n_outputs, **hyperparameters)


from dlpipe.models import mlp  # noqa: E402, F401 - registers the family

__all__ = ["available_models", "build_model", "register_model"]
