"""The configuration schema: shipped as package data, defaults filled in, violations in words.

``schemas/config.schema.yaml`` (JSON Schema 2020-12) is the single source of keys, allowed
values and defaults. The names a registry knows (model families, modalities, tasks) are not
listed in the file: :func:`load_schema` receives them and writes them in as ``enum`` values,
so a registered model of the user's own is as valid a ``model.name`` as a shipped one.

:func:`validate_against_schema` fills the defaults in place and turns the first violation into
one sentence that names the key, the bad value and what is allowed. The rules between keys
that a schema cannot express live with the modality and the task (:mod:`dlpipe.config`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from dlpipe.errors import ConfigError

#: Package data file of the schema (also linked from config/schema/ in the repository).
SCHEMA_FILE = "schemas/config.schema.yaml"


def schema_path() -> Path:
    """Path of the shipped schema file (a plain file inside the installed package)."""
    return Path(str(resources.files("dlpipe").joinpath(SCHEMA_FILE)))


class _StrictLoader(yaml.SafeLoader):
    """Safe YAML that refuses a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue  # merge keys (<<: *defaults) and complex keys: PyYAML's own rules
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} appears twice in one mapping (lines {seen[key]} and {line}); "
                    "YAML would keep only the last. Merge the two blocks into one",
                    key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep)


#: The key by which Snakemake treats a config file as a YTE template (Python code it runs).
YTE_KEY = "__use_yte__"


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

    Raises
    ------
    ConfigError
        If the file is missing, is not valid YAML (naming line and column), repeats a key in
        one mapping, is not a mapping, or is a YTE template (``__use_yte__``).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.load(path.read_text(), Loader=_StrictLoader)  # a SafeLoader: no objects
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = " ".join(filter(None, [err.context, err.problem]))
        raise ConfigError(f"{path}{where}: not valid YAML: {what}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config must be a mapping with an 'experiments' key")
    if YTE_KEY in data:
        raise ConfigError(
            f"{path}: {YTE_KEY} makes Snakemake run this config as a YTE template (Python code "
            "in the config); dlpipe reads configs as plain data only. Write the values out and "
            f"remove {YTE_KEY}"
        )
    return data


def load_schema(enums: Mapping[str, Iterable[str]] | None = None) -> dict[str, Any]:
    """Read the shipped schema and write the registries' names into it.

    Parameters
    ----------
    enums
        ``{"$defs path": names}``, e.g. ``{"model.properties.name": ["mlp", "cnn"]}``: the
        property at that path (below ``$defs``) gets ``enum: names``.

    Returns
    -------
    dict
        A fresh copy of the schema.
    """
    schema = yaml.safe_load(resources.files("dlpipe").joinpath(SCHEMA_FILE).read_text())
    for path, names in (enums or {}).items():
        node = schema["$defs"]
        for part in path.split("."):
            node = node[part]
        node["enum"] = sorted(names)
    return schema


#: Keys of earlier dlpipe versions (section, key) → what replaces them.
RENAMED = {
    ("integration", "method"): (
        "'method' was replaced by 'methods', a list of the integration methods compared, "
        "e.g. methods: [pca, harmony, scvi, scanvi] (scanvi for label transfer)"
    ),
}


def _key_path(parts: Iterator[Any] | list[Any]) -> str:
    return ".".join(str(p) for p in parts) or "<top level>"


def describe(error: jsonschema.ValidationError) -> str:
    """Turn one schema violation into a sentence naming key, value and what is allowed."""
    key = _key_path(list(error.absolute_path))
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    value = error.instance
    if error.validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        extra = sorted(set(value) - set(allowed)) if isinstance(value, Mapping) else []
        section = key.rsplit(".", 1)[-1]
        renamed = [RENAMED[(section, k)] for k in extra if (section, k) in RENAMED]
        if renamed:
            return f"config key {key}: {'; '.join(renamed)}"
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
    if error.validator in ("oneOf", "anyOf") and error.context:
        allowed = sorted(
            {str(v) for sub in error.context for v in (sub.schema.get("enum") or [])}
            | {str(sub.schema["const"]) for sub in error.context if "const" in sub.schema}
        )
        hint = f"; allowed values are {', '.join(allowed)}" if allowed else ""
        # Where the alternatives are not a list of values, the key's description is the fix.
        if schema.get("description"):
            hint += f"; {' '.join(str(schema['description']).split())}"
        return f"config key {key}: {value!r} is not valid{hint}"
    if error.validator == "propertyNames":
        return (
            f"config key {key}: name {error.instance!r} is not allowed; experiment names start "
            "with a letter and hold only letters, digits, '_' and '-'"
        )
    return f"config key {key}: {error.message}"


def resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow a local ``$ref`` (``#/$defs/name``)."""
    if "$ref" in schema:
        return root["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def fill_defaults(instance: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> None:
    """Fill defaults from ``schema`` into ``instance`` recursively (copies, never shared)."""
    schema = resolve(schema, root)
    if not isinstance(instance, dict):
        return
    for key, sub in schema.get("properties", {}).items():
        sub = resolve(sub, root)
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if key in instance:
            fill_defaults(instance[key], sub, root)
    extra = schema.get("additionalProperties")
    if isinstance(extra, Mapping):
        for key, value in instance.items():
            if key not in schema.get("properties", {}):
                fill_defaults(value, extra, root)


def validate_against_schema(config: dict[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """Fill the defaults of ``config`` in place and check it against ``schema``.

    Parameters
    ----------
    config
        The parsed configuration mapping; it is modified in place.
    schema
        The schema of :func:`load_schema`.

    Returns
    -------
    dict
        ``config`` with every default filled in.

    Raises
    ------
    ConfigError
        On the first violation, naming the key, the bad value and the allowed values.
    """
    fill_defaults(config, schema, schema)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError(describe(jsonschema.exceptions.best_match(errors)))
    return config


def for_modality(
    experiment: Mapping[str, Any], modality: str, root: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Copy of an experiment's config without the keys that ``modality`` does not read.

    The schema names the modalities that read a key (``x-modalities``); defaults fill every
    key in every experiment, so a table's config also holds, say,
    ``training.reverse_complement``, which only sequence experiments read.

    Parameters
    ----------
    experiment
        One experiment's config (defaults filled).
    modality
        Its ``data.modality``.
    root
        The schema (default: the shipped one).

    Returns
    -------
    dict
        The keys that apply, nested as in ``experiment``.
    """
    root = root or load_schema()
    return _prune(experiment, root["$defs"]["experiment"], root, modality)


def _prune(value: Any, node: Mapping[str, Any], root: Mapping[str, Any], modality: str) -> Any:
    node = resolve(node, root)
    if not isinstance(value, Mapping):
        return copy.deepcopy(value)
    out = {}
    for key, item in value.items():
        sub = node.get("properties", {}).get(key, {})
        owners = sub.get("x-modalities")  # beside a $ref, so read before resolving it
        if owners and modality not in owners:
            continue
        out[key] = _prune(item, sub, root, modality)
    return out
