"""Load and validate a dlpipe configuration against its JSON Schema.

The schema (``config/schema/config.schema.yaml``) is the single source of keys, allowed values
and defaults. :func:`validate_config` fills the defaults in place and turns the first schema
violation into one sentence that names the key, the bad value and what is allowed, then checks
the rules a schema cannot express (a classification needs a label column, and so on).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from dlpipe.errors import ConfigError

#: The schema shipped with the workflow (repository layout) and used when none is given.
DEFAULT_SCHEMA = Path(__file__).resolve().parents[2] / "config" / "schema" / "config.schema.yaml"


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with a clear error for a missing or malformed file.

    Parameters
    ----------
    path
        YAML file.

    Returns
    -------
    dict
        The parsed mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config must be a mapping with an 'experiments' key")
    return data


def _key_path(parts: Iterator[Any] | list[Any]) -> str:
    return ".".join(str(p) for p in parts) or "<top level>"


def _describe(error: jsonschema.ValidationError) -> str:
    """Turn one schema violation into a sentence naming key, value and what is allowed."""
    key = _key_path(list(error.absolute_path))
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    value = error.instance
    if error.validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        extra = sorted(set(value) - set(allowed)) if isinstance(value, Mapping) else []
        return (
            f"config key {key}: unknown key(s) {', '.join(map(repr, extra))}; "
            f"allowed keys are {', '.join(allowed)}"
        )
    if error.validator == "required":
        return f"config key {key}: {error.message}; add it to the config"
    if error.validator == "enum":
        return (
            f"config key {key}: {value!r} is not allowed; "
            f"choose one of {', '.join(map(str, schema['enum']))}"
        )
    if error.validator == "oneOf" and error.context:
        allowed = sorted({str(v) for sub in error.context for v in (sub.schema.get("enum") or [])})
        hint = f"; allowed values are {', '.join(allowed)}" if allowed else ""
        return f"config key {key}: {value!r} is not valid{hint}"
    if error.validator == "propertyNames":
        return (
            f"config key {key}: name {error.instance!r} is not allowed; experiment names start "
            "with a letter and hold only letters, digits, '_' and '-'"
        )
    return f"config key {key}: {error.message}"


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow a local ``$ref`` (``#/$defs/name``)."""
    if "$ref" in schema:
        return root["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _fill_defaults(instance: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> None:
    """Fill defaults from ``schema`` into ``instance`` recursively (copies, never shared)."""
    schema = _resolve(schema, root)
    if not isinstance(instance, dict):
        return
    for key, sub in schema.get("properties", {}).items():
        sub = _resolve(sub, root)
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if key in instance:
            _fill_defaults(instance[key], sub, root)
    extra = schema.get("additionalProperties")
    if isinstance(extra, Mapping):
        for key, value in instance.items():
            if key not in schema.get("properties", {}):
                _fill_defaults(value, extra, root)


def load_schema(schema_path: str | Path | None = None) -> dict[str, Any]:
    """Read the configuration schema (the shipped one by default)."""
    return load_yaml(schema_path or DEFAULT_SCHEMA)


def validate_config(
    config: dict[str, Any], schema_path: str | Path | None = None
) -> dict[str, Any]:
    """Validate ``config`` in place, fill its defaults and return it.

    Parameters
    ----------
    config
        The parsed configuration mapping; it is modified in place.
    schema_path
        JSON Schema file; the shipped schema by default.

    Returns
    -------
    dict
        ``config`` with every default filled in.

    Raises
    ------
    ConfigError
        On the first violation, naming the key, the bad value and the allowed values.
    """
    schema = load_schema(schema_path)
    _fill_defaults(config, schema, schema)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        raise ConfigError(_describe(best))
    for name, exp in config["experiments"].items():
        check_experiment(name, exp)
    from dlpipe.predict import check_prediction_jobs

    check_prediction_jobs(config)
    return config


def check_experiment(name: str, exp: Mapping[str, Any]) -> None:
    """Check the rules between keys of one experiment that the schema cannot express.

    Parameters
    ----------
    name
        Experiment name (for messages).
    exp
        The experiment's validated configuration.
    """
    key = f"experiments.{name}"
    _check_model(key, exp["model"])
    if exp["data"]["modality"] == "sequence":
        if exp["embed"]["enabled"]:
            raise ConfigError(
                f"config key {key}.embed.enabled: the VAE embeds tabular features, not sequences"
            )
        _check_sequence_experiment(key, exp)
        return
    if exp["data"]["modality"] == "singlecell":
        _check_singlecell_experiment(key, exp)
        return
    data, cv, pre = exp["data"], exp["cv"], exp["preprocess"]
    task = exp["task"]
    if not data["path"]:
        raise ConfigError(f"config key {key}.data.path: a tabular experiment needs its table")
    for field in ("genome", "bed", "blacklist", "fasta", "labels"):
        if data[field]:
            raise ConfigError(
                f"config key {key}.data.{field}: only sequence experiments use it; set "
                "data.modality: sequence or remove it"
            )
    if exp["model"]["name"] not in TABULAR_MODELS:
        raise ConfigError(
            f"config key {key}.model.name: {exp['model']['name']!r} is a sequence model; "
            f"tabular data take {', '.join(TABULAR_MODELS)}"
        )
    if cv["plan"] in CHROMOSOME_PLANS:
        raise ConfigError(
            f"config key {key}.cv.plan: {cv['plan']!r} needs genomic intervals "
            "(data.modality: sequence)"
        )
    if task == "classification":
        if not data["label_column"]:
            raise ConfigError(
                f"config key {key}.data.label_column: a classification needs the name of the "
                "label column"
            )
        if data["target_columns"]:
            raise ConfigError(
                f"config key {key}.data.target_columns: only regression uses target columns; "
                "for classification set data.label_column"
            )
    else:
        if not data["target_columns"]:
            raise ConfigError(
                f"config key {key}.data.target_columns: a regression needs a list of numeric "
                "target columns"
            )
        if data["label_column"]:
            raise ConfigError(
                f"config key {key}.data.label_column: a regression predicts "
                "data.target_columns; remove label_column or set task: classification"
            )
        if cv["plan"] in ("stratified_kfold", "repeated_stratified_kfold"):
            raise ConfigError(
                f"config key {key}.cv.plan: {cv['plan']!r} stratifies on a class label and does "
                "not apply to regression; use kfold, repeated_kfold, group_kfold, leave_one_out "
                "or holdout"
            )
        if pre["smote"]:
            raise ConfigError(
                f"config key {key}.preprocess.smote: SMOTE oversamples classes and does not "
                "apply to regression; set it to false"
            )
        if exp["training"]["class_weights"] != "none":
            raise ConfigError(
                f"config key {key}.training.class_weights: class weights apply to "
                "classification only; set it to none"
            )
    if cv["plan"] == "group_kfold" and not data["group_column"]:
        raise ConfigError(
            f"config key {key}.data.group_column: cv.plan group_kfold needs the column that "
            "holds the groups"
        )
    if data["layer"] and data["format"] not in ("auto", "h5ad"):
        raise ConfigError(f"config key {key}.data.layer: layers exist in .h5ad files only")
    reserved = [data["id_column"], data["label_column"], data["group_column"]]
    reserved += data["target_columns"] or []
    for col in (data["feature_columns"] or []) + data["categorical_columns"]:
        if col in reserved:
            raise ConfigError(
                f"config key {key}.data: column {col!r} is used both as a feature and as "
                "id/label/target/group; remove it from the feature lists"
            )
    if data["feature_columns"] is not None:
        missing = set(data["categorical_columns"]) - set(data["feature_columns"])
        if missing:
            raise ConfigError(
                f"config key {key}.data.categorical_columns: {sorted(missing)} are not in "
                "data.feature_columns; add them there"
            )


TABULAR_MODELS = ("mlp",)
SEQUENCE_MODELS = ("cnn", "danq", "resnet1d")
#: Hyperparameters of each model family, checked before any job runs. Kept here so the check
#: needs no torch import; tests/test_models.py keeps it equal to the classes' signatures.
MODEL_HYPERPARAMETERS = {
    "mlp": ("hidden_layers", "dropout", "batch_norm", "activation"),
    "cnn": ("filters", "kernel_sizes", "pool", "dropout", "batch_norm", "unknown"),
    "danq": ("filters", "kernel_size", "pool", "lstm_units", "hidden", "dropout", "unknown"),
    "resnet1d": (
        "stem_filters",
        "stem_kernel",
        "stage_filters",
        "blocks_per_stage",
        "kernel_size",
        "dropout",
        "unknown",
    ),
}


def _check_model(key: str, model: Mapping[str, Any]) -> None:
    allowed = MODEL_HYPERPARAMETERS[model["name"]]
    unknown = sorted(set(model) - {"name", *allowed})
    if unknown:
        raise ConfigError(
            f"config key {key}.model: {unknown} are not hyperparameters of {model['name']!r}; "
            f"it takes {', '.join(allowed)}"
        )


CHROMOSOME_PLANS = ("chromosome_kfold", "chromosome_holdout")


def _check_sequence_experiment(key: str, exp: Mapping[str, Any]) -> None:
    data, cv = exp["data"], exp["cv"]
    genomic = bool(data["genome"] or data["bed"])
    if genomic == bool(data["fasta"]) or (genomic and not (data["genome"] and data["bed"])):
        raise ConfigError(
            f"config key {key}.data: a sequence experiment needs either data.genome (reference "
            "FASTA) with data.bed ({target name: BED file of positives}), or data.fasta (a "
            "FASTA of labelled sequences)"
        )
    if data["labels"] and not data["fasta"]:
        raise ConfigError(f"config key {key}.data.labels: labels go with data.fasta")
    for field in ("path", "label_column", "target_columns", "group_column", "layer"):
        if data[field]:
            raise ConfigError(
                f"config key {key}.data.{field}: sequence experiments take their samples from "
                "data.genome and data.bed; remove it"
            )
    if exp["task"] != "classification":
        raise ConfigError(f"config key {key}.task: sequence experiments are classifications")
    if genomic and data["alphabet"] != "dna":
        raise ConfigError(
            f"config key {key}.data.alphabet: genome windows are DNA; other alphabets need a "
            "FASTA of sequences"
        )
    if exp["model"]["name"] not in SEQUENCE_MODELS:
        raise ConfigError(
            f"config key {key}.model.name: {exp['model']['name']!r} is a tabular model; "
            f"sequences take {', '.join(SEQUENCE_MODELS)}"
        )
    if exp["preprocess"]["smote"]:
        raise ConfigError(
            f"config key {key}.preprocess.smote: SMOTE interpolates feature vectors and makes no "
            "sense for one-hot sequences; balance with data.negatives.ratio or "
            "training.class_weights: balanced"
        )
    if cv["plan"] == "group_kfold":
        raise ConfigError(
            f"config key {key}.cv.plan: use chromosome_kfold for sequences (groups are "
            "chromosomes or genomic bins)"
        )
    if cv["plan"] == "chromosome_holdout":
        if not cv["test_chromosomes"] or not cv["val_chromosomes"]:
            raise ConfigError(
                f"config key {key}.cv: chromosome_holdout needs cv.val_chromosomes and "
                "cv.test_chromosomes"
            )
        both = set(cv["test_chromosomes"]) & set(cv["val_chromosomes"])
        if both:
            raise ConfigError(
                f"config key {key}.cv: chromosomes {sorted(both)} are in both "
                "val_chromosomes and test_chromosomes"
            )


def _check_singlecell_experiment(key: str, exp: Mapping[str, Any]) -> None:
    """Check the keys of a ``data.modality: singlecell`` experiment.

    Parameters
    ----------
    key
        ``experiments.<name>`` (for messages).
    exp
        The experiment's validated config.

    Raises
    ------
    ConfigError
        Naming the key at fault and the fix.
    """
    data = exp["data"]
    if not data["path"]:
        raise ConfigError(f"config key {key}.data.path: a singlecell experiment needs its .h5ad")
    if data["format"] not in ("auto", "h5ad") or not str(data["path"]).endswith(".h5ad"):
        raise ConfigError(
            f"config key {key}.data.path: single-cell counts are read from an AnnData .h5ad "
            f"file, not {data['path']!r}"
        )
    if not data["batch_column"]:
        raise ConfigError(
            f"config key {key}.data.batch_column: a singlecell experiment needs the obs column "
            "that names each cell's batch"
        )
    if exp["task"] != "classification" or not data["label_column"]:
        raise ConfigError(
            f"config key {key}.data.label_column: a singlecell experiment classifies cell types; "
            "set task: classification and name the obs column of labels (cells without a label "
            "are integrated but not classified)"
        )
    unused = ("genome", "bed", "blacklist", "fasta", "labels", "target_columns", "feature_columns")
    for field_name in (*unused, "id_column"):
        if data[field_name]:
            raise ConfigError(
                f"config key {key}.data.{field_name}: singlecell experiments take cells from "
                "obs_names and features from the scVI latent space; remove it"
            )
    if data["categorical_columns"] or data["exclude_columns"]:
        raise ConfigError(
            f"config key {key}.data: categorical_columns and exclude_columns do not apply to "
            "singlecell experiments (the features are the latent dimensions); remove them"
        )
    if data["batch_column"] in (data["label_column"], data["group_column"]):
        raise ConfigError(
            f"config key {key}.data.batch_column: {data['batch_column']!r} is also the label or "
            "group column; name the obs column of batches"
        )
    if exp["model"]["name"] != "mlp":
        raise ConfigError(
            f"config key {key}.model.name: cell types are classified on the latent space by a "
            "tabular model; use mlp"
        )
    if exp["cv"]["plan"] in ("chromosome_kfold", "chromosome_holdout", "leave_one_out"):
        raise ConfigError(
            f"config key {key}.cv.plan: {exp['cv']['plan']!r} does not apply to cells; use "
            "stratified_kfold (or group_kfold over donors)"
        )
    if exp["cv"]["plan"] == "group_kfold" and not data["group_column"]:
        raise ConfigError(
            f"config key {key}.data.group_column: cv.plan group_kfold needs the obs column of "
            "groups (donors, samples)"
        )
    n_top = exp["integration"]["n_top_genes"]
    if exp["embed"]["enabled"]:
        raise ConfigError(
            f"config key {key}.embed.enabled: scVI already is the VAE of single-cell counts; "
            "the Gaussian VAE (embed) is for bulk tables"
        )
    if n_top is not None and n_top < exp["integration"]["n_latent"]:
        raise ConfigError(
            f"config key {key}.integration.n_top_genes: {n_top} genes cannot carry a "
            f"{exp['integration']['n_latent']}-dimensional latent space; raise it or set null"
        )


def effective_task(exp: Mapping[str, Any]) -> str:
    """Return the task the data pose: ``multilabel`` for several BEDs, else the config's task."""
    data = exp.get("data", {})
    if data.get("modality") == "sequence" and len(data.get("bed") or {}) > 1:
        return "multilabel"
    return exp["task"]


def normaliser_steps(pre: Mapping[str, Any]) -> list[str]:
    """Return the normalisation steps of a preprocess config as a list (``none`` dropped)."""
    steps = pre["normalise"]
    steps = [steps] if isinstance(steps, str) else list(steps)
    return [s for s in steps if s != "none"]


def n_folds(cv: Mapping[str, Any], n_samples: int) -> int:
    """Return the number of folds a plan yields.

    Parameters
    ----------
    cv
        The experiment's ``cv`` config.
    n_samples
        Number of samples (used by leave-one-out only).

    Returns
    -------
    int
        Number of train/test folds.
    """
    plan = cv["plan"]
    if plan in ("repeated_kfold", "repeated_stratified_kfold"):
        return int(cv["n_splits"]) * int(cv["n_repeats"])
    if plan == "leave_one_out":
        return int(n_samples)
    if plan in ("holdout", "chromosome_holdout"):
        return 1
    return int(cv["n_splits"])
