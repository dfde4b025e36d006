"""Model families, one file each, and the registry the config takes its model names from.

A family is a ``torch.nn.Module`` class called as ``Class(n_inputs, n_outputs, **hyperparameters)``
that returns raw outputs (logits for classification, values for regression; losses live with the
task, :mod:`dlpipe.tasks`). Its class attribute ``inputs`` says what it reads: ``features`` (a
float matrix: tables, latent spaces), ``sequence`` (``uint8`` codes of shape ``(batch,
length)``, expanded to one-hot inside the model, see :class:`dlpipe.models.blocks.OneHot`) or
``image`` (floats of shape ``(batch, channels, height, width)`` scaled to [0, 1]; ``n_inputs``
is the number of channels).

Where families come from, in this order:

- :data:`BUILTIN`: the shipped families, by name;
- the entry point group ``dlpipe.models`` of installed packages (``name = "package.module:Class"``
  in a package's ``pyproject.toml``): a family of your own under a name of your choosing;
- ``model.class: package.module:Class`` in a config: a class of your own without a package;
- :func:`register_model`: a class registered in the running process (notebooks, tests).

Nothing here imports torch: names come from the tables above, and the hyperparameters and
``inputs`` of a family are read from its class's source file (its ``__init__`` signature), so the
Snakefile checks every model of a config before any job at no import cost. A class whose source
cannot be read that way (compiled, generated, or inheriting ``__init__``) is imported instead.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from dlpipe.errors import ConfigError

#: The shipped families: config name → ``module:Class``.
BUILTIN: dict[str, str] = {
    "mlp": "dlpipe.models.mlp:MLP",
    "cnn": "dlpipe.models.cnn:SequenceCNN",
    "danq": "dlpipe.models.danq:DanQ",
    "resnet1d": "dlpipe.models.resnet1d:ResNet1D",
    "resnet": "dlpipe.models.resnet2d:ResNet2D",
    "smallcnn": "dlpipe.models.smallcnn:SmallCNN",
    "gnn": "dlpipe.models.gnn:LinkGNN",
}
#: Entry point group through which installed packages register families.
ENTRY_POINT_GROUP = "dlpipe.models"
#: What a family can read.
INPUT_KINDS = ("features", "sequence", "image", "graph")
#: Arguments every family takes first; the rest are hyperparameters.
_FIXED = ("self", "n_inputs", "n_outputs")
#: Keys of a ``model`` section that the workflow reads, not the family: ``pretrain`` (a job
#: that makes the backbone ``weights`` the family then loads, :mod:`dlpipe.pretrain`).
WORKFLOW_KEYS = ("pretrain",)
#: Where the ``pretrain`` job of an experiment writes the backbone its fold models load, and
#: the summary of that pretraining (the report reads it).
PRETRAINED_BACKBONE = "results/{exp}/pretrain/backbone.pt"
PRETRAIN_SUMMARY = "results/{exp}/pretrain/summary.json"

_REGISTERED: dict[str, type] = {}

#: MLP hyperparameters of p ≫ n folds where the config sets none: a narrow, heavily dropped-out
#: layer (on the ALL arrays it matched logistic regression where [128, 64] fell behind).
P_MUCH_LARGER_MLP: dict[str, Any] = {"hidden_layers": [32], "dropout": 0.5}


@dataclass(frozen=True)
class Outline:
    """What the config may say of a family: its hyperparameters and what it reads."""

    hyperparameters: tuple[str, ...]
    any_keyword: bool
    inputs: str


def register_model(name: str) -> Callable[[type], type]:
    """Register a class under ``name`` in this process (decorator).

    The Snakemake jobs are other processes: a family they train must come from an installed
    package's entry point or be named by ``model.class`` in the config.
    """

    def decorate(cls: type) -> type:
        if name in _REGISTERED or name in _entry_points() or name in BUILTIN:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTERED[name] = cls
        return cls

    return decorate


@functools.cache
def _entry_points() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_models() -> list[str]:
    """Names of the registered families (shipped, installed packages', this process')."""
    return sorted({*BUILTIN, *_entry_points(), *_REGISTERED})


def _target(model: Mapping[str, Any]) -> str | type:
    """``module:Class`` (or the class itself) a model config names."""
    if model.get("class"):
        return str(model["class"])
    name = model.get("name")
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name in BUILTIN:
        return BUILTIN[name]
    if name in _entry_points():
        return _entry_points()[name]
    raise ConfigError(
        f"config key model.name: {name!r} is not a registered model; choose one of "
        f"{', '.join(available_models())}, or name a class of your own in model.class"
    )


def model_class(model: Mapping[str, Any] | str) -> type:
    """Import and return the class a model config (or family name) names."""
    target = _target({"name": model} if isinstance(model, str) else model)
    if isinstance(target, type):
        return target
    module, _, attr = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except Exception as err:  # noqa: BLE001 - whatever a user's module raises while imported
        raise ConfigError(
            f"config key model.class: {target!r} cannot be imported ({err}); the module must "
            "be importable where the jobs run (installed, or on PYTHONPATH)"
        ) from None
    from torch import nn  # lazy: 1.2 s; a class's import has loaded it anyway

    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        # Only a module is ever called: a name from a config or a checkpoint cannot run
        # another callable (subprocess.Popen, os.system …) with its arguments.
        raise ConfigError(f"config key model.class: {target!r} is not a torch.nn.Module class")
    return cls


#: Base classes written in a way the source can be trusted for (nothing else is inherited).
_PLAIN_BASES = ("nn.Module", "torch.nn.Module", "Module")


def _outline_from_source(target: str) -> Outline | None:
    """Read ``__init__`` and ``inputs`` of a class from its source file; ``None`` if unsure.

    Only the plain case is read: one undecorated top-level class of that name whose only base
    is ``nn.Module``, with its own undecorated ``__init__`` and a literal ``inputs`` (or none).
    Anything else (inheritance from another class, decorators, a name defined twice, a file
    that does not parse) is left to the import.
    """
    module, _, attr = target.partition(":")
    try:
        # Imports the module's parent packages (their __init__), not the module itself.
        spec = find_spec(module)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            return None
        tree = ast.parse(Path(spec.origin).read_text())
    except (ImportError, ValueError, SyntaxError, OSError):
        return None
    named = [n for n in tree.body if getattr(n, "name", None) == attr]
    if len(named) != 1 or not isinstance(named[0], ast.ClassDef):
        return None
    cls = named[0]
    if cls.decorator_list or [ast.unparse(b) for b in cls.bases] not in ([b] for b in _PLAIN_BASES):
        return None
    inits = [n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"]
    if len(inits) != 1 or inits[0].decorator_list:
        return None
    args = inits[0].args
    names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
    inputs = "features"
    for node in cls.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == "inputs" for t in targets):
            value = getattr(node, "value", None)
            if not isinstance(value, ast.Constant):
                return None
            inputs = str(value.value)
    return Outline(tuple(n for n in names if n not in _FIXED), args.kwarg is not None, inputs)


def _outline_from_class(cls: type) -> Outline:
    params = inspect.signature(cls).parameters.values()
    names = tuple(p.name for p in params if p.name not in _FIXED and p.kind not in (p.VAR_KEYWORD,))
    any_keyword = any(p.kind is p.VAR_KEYWORD for p in params)
    return Outline(names, any_keyword, str(getattr(cls, "inputs", "features")))


def outline(model: Mapping[str, Any] | str) -> Outline:
    """Hyperparameters and input kind of the family a model config (or name) names."""
    target = _target({"name": model} if isinstance(model, str) else model)
    found = None if isinstance(target, type) else _outline_from_source(target)
    return found or _outline_from_class(model_class(model))


def _reads(name: str) -> str | None:
    """Return what a registered family reads, or ``None`` when it cannot be resolved here."""
    try:
        return outline(name).inputs
    except ConfigError:
        return None


def hyperparameter_names(model: Mapping[str, Any] | str) -> list[str]:
    """Keyword arguments a family accepts besides ``n_inputs`` and ``n_outputs``."""
    return list(outline(model).hyperparameters)


def check_model(key: str, model: Mapping[str, Any], inputs: str) -> None:
    """Check a model config: a known family reading ``inputs``, with known hyperparameters.

    Parameters
    ----------
    key
        The config key of the section (``experiments.NAME.model``), for messages.
    model
        The ``model`` config (``name`` and/or ``class``, and hyperparameters).
    inputs
        What the experiment's data give the model: ``features``, ``sequence`` or ``image``.

    Raises
    ------
    ConfigError
        Unknown family, a family that reads other inputs, or unknown hyperparameters.
    """
    try:
        found = outline(model)
    except ConfigError as err:
        raise ConfigError(f"{str(err).replace('config key model', f'config key {key}')}") from None
    label = model.get("class") or model.get("name")
    if found.inputs not in INPUT_KINDS:
        raise ConfigError(
            f"config key {key}: {label!r} declares inputs = {found.inputs!r}; a family reads "
            f"{', '.join(INPUT_KINDS[:-1])} or {INPUT_KINDS[-1]}"
        )
    if found.inputs != inputs:
        fitting = [m for m in available_models() if _reads(m) == inputs]
        raise ConfigError(
            f"config key {key}.name: {label!r} reads {found.inputs}, but this experiment's data "
            f"are {inputs}; use one of {', '.join(fitting)}"
        )
    unknown = sorted(set(model) - {"name", "class", *WORKFLOW_KEYS, *found.hyperparameters})
    if unknown and not found.any_keyword:
        raise ConfigError(
            f"config key {key}: {unknown} are not hyperparameters of {label!r}; it takes "
            f"{', '.join(found.hyperparameters) or 'none'}"
        )


def build_model(
    model: Mapping[str, Any] | str, n_inputs: int, n_outputs: int, **hyperparameters: Any
) -> Any:
    """Instantiate a family.

    Parameters
    ----------
    model
        A family name, or a ``model`` config (``name`` and/or ``class``, hyperparameters).
    n_inputs, n_outputs
        Input features (or alphabet size); outputs (classes, or regression targets).
    **hyperparameters
        Family-specific settings (added to those of a ``model`` config).

    Returns
    -------
    torch.nn.Module
        The untrained model.
    """
    config = {"name": model} if isinstance(model, str) else dict(model)
    config.update(hyperparameters)
    cls = model_class(config)
    found = _outline_from_class(cls)
    settings = {k: v for k, v in config.items() if k not in ("name", "class", *WORKFLOW_KEYS)}
    unknown = sorted(set(settings) - set(found.hyperparameters))
    if unknown and not found.any_keyword:
        raise ConfigError(
            f"config key model: {unknown} are not hyperparameters of "
            f"{config.get('class') or config.get('name')!r}; it takes "
            f"{', '.join(found.hyperparameters)}"
        )
    return cls(n_inputs, n_outputs, **settings)


def fold_model(model: Mapping[str, Any], selection: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return the model config a fold trains: p ≫ n defaults filled in for an MLP.

    Where the fold's preprocessing found the fold p ≫ n
    (:func:`dlpipe.preprocess.selection_plan`), an ``mlp`` takes :data:`P_MUCH_LARGER_MLP` for
    each of those hyperparameters the config does not set; any other fold, family or set key is
    left as it is.

    Parameters
    ----------
    model
        The experiment's ``model`` config (``name`` filled in).
    selection
        The fold's selection record (``FittedPreprocessor.selection``; ``None`` for folds
        preprocessed otherwise).

    Returns
    -------
    dict
        The model config to build.
    """
    wide = bool((selection or {}).get("p_much_larger"))
    if model.get("name") != "mlp" or model.get("class") or not wide:
        return dict(model)
    return {**P_MUCH_LARGER_MLP, **model}


__all__ = [
    "BUILTIN",
    "PRETRAINED_BACKBONE",
    "PRETRAIN_SUMMARY",
    "P_MUCH_LARGER_MLP",
    "WORKFLOW_KEYS",
    "available_models",
    "build_model",
    "check_model",
    "fold_model",
    "hyperparameter_names",
    "model_class",
    "outline",
    "register_model",
]
