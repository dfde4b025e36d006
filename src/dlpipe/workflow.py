"""Helpers the Snakefile needs when it builds the job graph (cheap: no data is loaded).

Checks here run before any job: every input file named by the config must exist, and a
leave-one-out plan needs the number of samples to know its folds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

# Imported when Snakemake builds the job graph: keep it free of numpy, pandas and scikit-learn.
from dlpipe.config import n_folds
from dlpipe.errors import InputError


def check_inputs(config: Mapping[str, Any]) -> None:
    """Fail before any job runs if an experiment's data file is missing.

    Parameters
    ----------
    config
        The validated configuration.

    Raises
    ------
    InputError
        Naming the experiment's config key and the missing path.
    """
    for name, exp in config["experiments"].items():
        files = {f"data.{key}": path for key, path in data_inputs(exp).items()}
        files.update(
            {
                f"interpret.motif_files[{i}]": path
                for i, path in enumerate(exp["interpret"]["motif_files"])
            }
        )
        for key, path in files.items():
            if not Path(path).is_file():
                raise InputError(
                    f"config key experiments.{name}.{key}: file {str(path)!r} not found "
                    f"(relative paths start at {Path.cwd()}); fix the path or run from the "
                    "folder it is relative to"
                )
    for name, job in config.get("predict", {}).items():
        for key in ("table", "fasta", "bed", "genome"):
            if job.get(key) and not Path(job[key]).is_file():
                raise InputError(
                    f"config key predict.{name}.{key}: file {job[key]!r} not found (relative "
                    f"paths start at {Path.cwd()})"
                )


#: Keys of an experiment's ``data`` section that name input files (``bed`` maps targets to files).
DATA_FILE_KEYS = ("path", "genome", "blacklist", "fasta", "labels")


def data_inputs(exp: Mapping[str, Any]) -> dict[str, str]:
    """Map the input files an experiment names: ``{key under data: path}``, in a fixed order.

    BED files appear as ``bed.<target>``. The order is the order of the prepare job's inputs.
    """
    data = exp["data"]
    files = {key: data[key] for key in DATA_FILE_KEYS if data[key]}
    files.update({f"bed.{target}": path for target, path in (data["bed"] or {}).items()})
    return files


def with_local_inputs(exp: Mapping[str, Any], local: Sequence[str]) -> dict[str, Any]:
    """Copy of ``exp`` whose data paths are the job's local copies of its inputs.

    With a remote default storage (S3, GCS), Snakemake stages the inputs at local paths that
    differ from the config's; ``local`` lists them in the order of :func:`data_inputs`.
    """
    import copy

    out = copy.deepcopy(dict(exp))
    for key, path in zip(data_inputs(exp), local, strict=True):
        head, _, target = key.partition(".")
        if target:
            out["data"][head][target] = str(path)
        else:
            out["data"][head] = str(path)
    return out


def rebase_paths(config: Mapping[str, Any], root: str | Path) -> dict[str, Any]:
    """Copy of a config whose relative data paths start at ``root`` (to run it from elsewhere)."""
    import copy

    out = copy.deepcopy(dict(config))
    for exp in out["experiments"].values():
        data = exp["data"]
        for key in DATA_FILE_KEYS:
            if data.get(key):
                data[key] = str(Path(root) / data[key])
        if data.get("bed"):
            data["bed"] = {t: str(Path(root) / p) for t, p in data["bed"].items()}
        motif_files = exp.get("interpret", {}).get("motif_files")
        if motif_files:
            exp["interpret"]["motif_files"] = [str(Path(root) / p) for p in motif_files]
    for job in out.get("predict", {}).values():
        for key in ("table", "fasta", "bed", "genome"):
            if job.get(key):
                job[key] = str(Path(root) / job[key])
    return out


def fold_count(exp: Mapping[str, Any]) -> int:
    """Return the number of folds of an experiment (leave-one-out counts table rows)."""
    n_samples = 0
    if exp["cv"]["plan"] == "leave_one_out":
        from dlpipe.io import read_table

        n_samples = len(
            read_table(exp["data"]["path"], exp["data"]["format"], exp["data"]["layer"])
        )
    return n_folds(exp["cv"], n_samples)


def experiment_sections(exp: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """Pick the named sections of an experiment's config (``a.b`` picks a sub-key)."""
    out: dict[str, Any] = {}
    for name in names:
        head, _, sub = name.partition(".")
        if sub:
            out.setdefault(head, {})[sub] = exp[head][sub]
        else:
            out[head] = exp[head]
    return out


def prediction_files(job: Mapping[str, Any]) -> list[str]:
    """Return the input files of a prediction job (rule inputs, existence check)."""
    return [job[k] for k in ("table", "fasta", "bed", "genome") if job.get(k)]


def extra_report_files(name: str, exp: Mapping[str, Any]) -> dict[str, str]:
    """Name the files of an experiment's extra sections, keyed as the report rule's inputs."""
    files = {}
    if exp["data"]["modality"] == "singlecell":
        files[f"{name}_integration"] = f"results/{name}/integration/summary.json"
        files[f"{name}_scib"] = f"results/{name}/integration/scib.tsv"
        files[f"{name}_umap"] = f"results/{name}/integration/umap.png"
    if exp["embed"]["enabled"]:
        files[f"{name}_reconstruction"] = f"results/{name}/embedding/reconstruction.tsv"
        files[f"{name}_embedding_umap"] = f"results/{name}/embedding/umap.png"
    return files
