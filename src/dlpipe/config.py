"""Validate a dlpipe configuration: the schema, then the rules of each modality, task and model.

:func:`validate_config` is what the Snakefile and ``dlpipe check`` run before anything else. It
writes the registries' names (tasks, modalities, model families) into the shipped schema, fills
every default, and turns the first violation into one sentence naming the key and the fix. Then
each experiment is checked by its modality (:mod:`dlpipe.modalities`), its task
(:mod:`dlpipe.tasks`) and its model family (:func:`dlpipe.models.check_model`), the optional
dependencies it needs are looked for (:mod:`dlpipe.extras`), and the ``predict`` jobs are
checked against their experiments.

Nothing here reads data or imports torch: the Snakefile runs it when it builds the job graph.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dlpipe import extras
from dlpipe.errors import ConfigError
from dlpipe.modalities import get_modality, modality_extras, modality_names, modality_of
from dlpipe.models import (
    PRETRAINED_BACKBONE,
    available_models,
    check_model,
    hyperparameter_names,
)
from dlpipe.schema import fill_defaults, load_schema, resolve, validate_against_schema
from dlpipe.tasks import selectable_tasks


def config_schema() -> dict[str, Any]:
    """Return the shipped schema with the registries' task, modality and model names in it."""
    schema = load_schema(
        {
            "experiment.properties.task": selectable_tasks(),
            "data.properties.modality": modality_names(),
        }
    )
    # A registered family's name, unless model.class names a class (name is then free).
    schema["$defs"]["model"]["if"] = {"not": {"required": ["class"]}}
    schema["$defs"]["model"]["then"] = {"properties": {"name": {"enum": available_models()}}}
    return schema


def validate_config(config: dict[str, Any]) -> dict[str, Any]:
    """Validate ``config`` in place, fill its defaults and return it.

    Parameters
    ----------
    config
        The parsed configuration mapping; it is modified in place.

    Returns
    -------
    dict
        ``config`` with every default filled in (the model family of each experiment too).

    Raises
    ------
    ConfigError
        On the first violation, naming the key, the bad value and the fix.
    """
    schema = config_schema()
    validate_against_schema(config, schema)
    for name, exp in config["experiments"].items():
        check_experiment(name, exp)
        _check_data_keys(name, exp, schema)
    check_prediction_jobs(config)
    return config


def _check_data_keys(name: str, exp: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    """Refuse a ``data`` key set by an experiment of a modality that does not read it.

    The schema names the modalities that read a key (``x-modalities``); a key of another
    modality that differs from its default would otherwise be ignored without a word.
    """
    kind = exp["data"]["modality"]
    for key, spec in schema["$defs"]["data"]["properties"].items():
        owners = spec.get("x-modalities")
        if not owners or kind in owners:
            continue
        default = copy.deepcopy(resolve(spec, schema).get("default"))
        fill_defaults(default, resolve(spec, schema), schema)
        if exp["data"].get(key) != default:
            raise ConfigError(
                f"config key experiments.{name}.data.{key}: {kind} experiments do not read it "
                f"(only {' and '.join(owners)} experiments do); remove it"
            )


def check_experiment(name: str, exp: dict[str, Any]) -> None:
    """Check one schema-valid experiment and name its model family if the config did not.

    Parameters
    ----------
    name
        Experiment name (for messages).
    exp
        The experiment's config, defaults filled; ``model.name`` is set in place.
    """
    key = f"experiments.{name}"
    kind = exp["data"]["modality"]
    for extra in modality_extras(kind):
        extras.require(extra, f"{key}.data.modality", f"{kind} experiments")
    modality = get_modality(kind)
    model = exp["model"]
    if not model.get("name"):
        target = model.get("class")
        model["name"] = target.rpartition(":")[2] if target else modality.default_model
    modality.check_config(key, exp)
    task = modality.task(exp)
    task.check_config(key, exp)
    check_model(f"{key}.model", model, modality.inputs)
    if model.get("pretrain"):
        check_pretrain(name, exp)
    modality.check_baselines(key, exp)
    names = {modality.baseline_name(exp, task, kind) for kind in modality.baseline_kinds}
    if exp["baseline"]["enabled"] and model["name"] in names:
        raise ConfigError(
            f"config key {key}.model.name: {model['name']!r} is the name of the baseline; name "
            "the model otherwise"
        )
    if exp["interpret"]["enabled"]:
        for extra in modality.interpret_extras:
            extras.require(extra, f"{key}.interpret.enabled", f"interpretations of {kind} data")
    if exp["embed"]["enabled"]:
        extras.require("embed", f"{key}.embed.enabled", "VAE embeddings (for their UMAP)")


def check_pretrain(name: str, exp: dict[str, Any]) -> None:
    """Check ``model.pretrain`` and point ``model.weights`` at the backbone it will write.

    Pretraining makes the backbone of a family that loads pretrained ``weights`` (``resnet``);
    weights given as well would be two starting points for one model. The images must exist
    (their contents are checked by the job, before any training).

    Raises
    ------
    ConfigError
        Naming the key and the fix.
    """
    key = f"experiments.{name}.model"
    model = exp["model"]
    backbone = PRETRAINED_BACKBONE.format(exp=name)
    if exp["data"]["modality"] != "image" or "weights" not in hyperparameter_names(model):
        raise ConfigError(
            f"config key {key}.pretrain: pretraining makes the backbone of an image model that "
            f"loads pretrained weights; {model['name']!r} does not. Set model.name: resnet, or "
            "remove model.pretrain"
        )
    if model.get("weights") not in (None, backbone):
        raise ConfigError(
            f"config key {key}.weights: the backbone comes from model.pretrain (written to "
            f"{backbone}); remove model.weights, or model.pretrain to start from those weights"
        )
    images = Path(model["pretrain"]["images"])
    if not images.exists():
        raise ConfigError(
            f"config key {key}.pretrain.images: {images} does not exist; give a folder of "
            "unlabelled images or a table of their paths"
        )
    model["weights"] = backbone


def check_prediction_jobs(config: Mapping[str, Any]) -> None:
    """Config rules of the ``predict`` section that the schema cannot express.

    Each job names an existing experiment and exactly one input that suits its modality (a
    table for tabular experiments; FASTA, or BED with its genome, for sequence experiments).
    """
    for name, job in (config.get("predict") or {}).items():
        key = f"predict.{name}"
        exp = config["experiments"].get(job["experiment"])
        if exp is None:
            raise ConfigError(
                f"config key {key}.experiment: {job['experiment']!r} is not an experiment of "
                f"this config; choose one of {', '.join(config['experiments'])}"
            )
        modality = modality_of(exp)
        given = [k for k in ("table", "fasta", "bed") if job.get(k)]
        if not modality.prediction_inputs:
            modality.check_prediction_job(key, job, "")  # says why, if it can
            raise ConfigError(
                f"config key {key}.experiment: {job['experiment']!r} is a {modality.name} "
                "experiment, which dlpipe cannot predict new samples of"
            )
        if len(given) != 1:
            raise ConfigError(
                f"config key {key}: give exactly one input (table, fasta or bed), not "
                f"{given or 'none'}"
            )
        if given[0] not in modality.prediction_inputs:
            raise ConfigError(
                f"config key {key}.{given[0]}: {job['experiment']!r} is a {modality.name} "
                f"experiment; give {modality.prediction_inputs_text}"
            )
        modality.check_prediction_job(key, job, given[0])
