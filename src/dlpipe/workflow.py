"""What the Snakefile needs when it builds the job graph (cheap: no data is loaded).

The input functions of ``rules/common.smk`` ask these about an experiment: which files are its
inputs (checked to exist before any job), how many folds it has, which extra files its report
sections read, which jobs it needs and in which order they are best scheduled. The answers come
from the experiment's modality and task. Checking the demo config this way loads pandas (which
Snakemake has loaded already), pysam and scipy's sparse matrices, and no torch, scikit-learn,
matplotlib or anndata (tests/test_imports.py).
"""

from __future__ import annotations

import copy
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dlpipe.cv import n_folds
from dlpipe.errors import InputError
from dlpipe.image_listing import list_unlabelled
from dlpipe.io.tables import read_table
from dlpipe.modalities import get_modality, modality_of, task_of
from dlpipe.models import PRETRAIN_SUMMARY, PRETRAINED_BACKBONE

#: Keys of a prediction job that name files.
PREDICTION_FILE_KEYS = ("table", "fasta", "bed", "genome")


def data_inputs(exp: Mapping[str, Any]) -> dict[str, str]:
    """Map the input files an experiment names: ``{key under data: path}``, in a fixed order.

    BED files appear as ``bed.<target>``. The order is the order of the prepare job's inputs.
    """
    return get_modality(exp["data"].get("modality", "tabular")).input_files(exp)


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
        folders = get_modality(exp["data"].get("modality", "tabular")).folder_keys
        files = {
            key: path
            for key, path in files.items()
            if not (key.removeprefix("data.") in folders and Path(path).is_dir())
        }
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
        check_pretrain_images(name, exp)
    for name, job in config.get("predict", {}).items():
        for key in PREDICTION_FILE_KEYS:
            if job.get(key) and not Path(job[key]).is_file():
                raise InputError(
                    f"config key predict.{name}.{key}: file {job[key]!r} not found (relative "
                    f"paths start at {Path.cwd()})"
                )


def check_pretrain_images(name: str, exp: Mapping[str, Any]) -> None:
    """Fail before any job runs if ``model.pretrain`` lists no images, or fewer than a batch.

    Only the files are listed (a folder's, or a table's path column); the pretrain job checks
    and decodes them.
    """
    settings = exp["model"].get("pretrain")
    if not settings:
        return
    key = f"experiments.{name}.model.pretrain"
    files = list_unlabelled(settings["images"], settings["path_column"], f"{key}.images")
    if len(files) < int(settings["batch_size"]):
        raise InputError(
            f"config key {key}.batch_size: {settings['batch_size']} is more than the "
            f"{len(files)} unlabelled images of {settings['images']}; give more images or a "
            "smaller batch_size"
        )


def damaged_checkpoints(results: str | Path, experiments: Iterable[str]) -> list[Path]:
    """Fold checkpoints of ``results/EXP/N/model.ckpt`` that are not intact zip archives.

    A checkpoint is a zip archive with a CRC per member, so truncation or altered bytes are
    found without loading torch. The workflow sets such files aside (see
    :func:`set_aside_damaged`) so that Snakemake retrains the fold instead of evaluating it.
    """
    damaged = []
    for name in experiments:
        for path in sorted(Path(results, name).glob("[0-9]*/model.ckpt")):
            try:
                with zipfile.ZipFile(path) as archive:
                    if archive.testzip() is None:
                        continue
            except (zipfile.BadZipFile, OSError, EOFError, ValueError):
                pass
            damaged.append(path)
    return damaged


def set_aside_damaged(results: str | Path, experiments: Iterable[str]) -> list[Path]:
    """Rename damaged fold checkpoints to ``model.ckpt.damaged``; return their new paths.

    Renamed rather than deleted, so nothing is lost; the missing ``model.ckpt`` makes the
    next run retrain that fold (and redo what depends on it).
    """
    moved = []
    for path in damaged_checkpoints(results, experiments):
        target = path.with_name(path.name + ".damaged")
        path.replace(target)
        moved.append(target)
    return moved


#: Set by ``dlpipe run`` for the Snakefile when it has dealt with damaged checkpoints itself.
DAMAGED_ENV = "DLPIPE_DAMAGED_CHECKPOINTS_HANDLED"


def damaged_warnings(results: str | Path, experiments: Iterable[str]) -> list[str]:
    """Lines telling a user of plain Snakemake which fold checkpoints are damaged, and the fix.

    Snakemake does not rerun a job whose output is damaged, nor one whose output is missing
    while what depends on it exists; ``--forcerun`` does (and ``dlpipe run`` adds it).
    """
    return [
        f"dlpipe: {path} is damaged (truncated or altered since training); retrain its fold with "
        f"--forcerun {path}, or run the workflow with dlpipe run, which does so"
        for path in damaged_checkpoints(results, experiments)
    ]


def rebase_paths(config: Mapping[str, Any], root: str | Path) -> dict[str, Any]:
    """Copy of a config whose relative data paths start at ``root`` (to run it from elsewhere)."""
    out = copy.deepcopy(dict(config))
    for name, exp in out["experiments"].items():
        modality = get_modality(exp["data"].get("modality", "tabular"))
        files = [Path(root) / path for path in modality.input_files(exp).values()]
        out["experiments"][name] = exp = modality.with_inputs(exp, files)
        motif_files = exp.get("interpret", {}).get("motif_files")
        if motif_files:
            exp["interpret"]["motif_files"] = [str(Path(root) / p) for p in motif_files]
        pretrain = (exp.get("model") or {}).get("pretrain")
        if pretrain and pretrain.get("images"):
            pretrain["images"] = str(Path(root) / pretrain["images"])
    for job in out.get("predict", {}).values():
        for key in PREDICTION_FILE_KEYS:
            if job.get(key):
                job[key] = str(Path(root) / job[key])
    return out


def fold_count(exp: Mapping[str, Any]) -> int:
    """Return the number of folds of an experiment (leave-one-out counts table rows)."""
    n_samples = 0
    if exp["cv"]["plan"] == "leave_one_out":
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
    return [job[k] for k in PREDICTION_FILE_KEYS if job.get(k)]


def chain_priority(exp: Mapping[str, Any]) -> int:
    """Scheduling priority of an experiment's per-fold jobs (its modality's)."""
    return modality_of(exp).priority


def prepare_inputs(name: str, exp: Mapping[str, Any]) -> dict[str, str]:
    """Files of earlier jobs the prepare job reads (single cells: the integrated ``.h5ad``)."""
    return modality_of(exp).prepare_inputs(name, exp)


def preprocess_inputs(name: str, exp: Mapping[str, Any]) -> dict[str, str]:
    """Files besides the dataset that the preprocess jobs read (images: the image store)."""
    return modality_of(exp).preprocess_inputs(name, exp)


def fold_inputs(name: str, exp: Mapping[str, Any]) -> dict[str, str]:
    """Files besides a fold's own that its train, baseline and evaluate jobs read (the store)."""
    return modality_of(exp).fold_inputs(name, exp)


def calibrated(exp: Mapping[str, Any]) -> bool:
    """Whether an experiment's classifiers get a temperature fitted on validation sides."""
    return bool(exp["calibration"]["enabled"]) and task_of(exp).probabilistic


def interpret_reads_predictions(exp: Mapping[str, Any]) -> bool:
    """Whether the interpretation picks what it explains from the folds' test predictions."""
    return modality_of(exp).interpret_reads_predictions


def pretrain_inputs(name: str, exp: Mapping[str, Any]) -> dict[str, str]:
    """Name the backbone a fold's training starts from: ``{"backbone": path}``, or nothing."""
    if not exp["model"].get("pretrain"):
        return {}
    return {"backbone": PRETRAINED_BACKBONE.format(exp=name)}


def pretrain_images(exp: Mapping[str, Any]) -> list[str]:
    """List the unlabelled images of ``model.pretrain``: its folder, or its table and files."""
    settings = exp["model"].get("pretrain") or {}
    if not settings:
        return []
    images = Path(settings["images"])
    if not images.is_file():
        return [str(images)]
    column = settings.get("path_column", "path")
    table = read_table(images, exact_columns=[column])
    if column not in table.columns:
        return [str(images)]  # the job says which column is missing
    paths = [Path(p) if Path(p).is_absolute() else images.parent / p for p in table[column]]
    return [str(images), *(str(p) for p in paths)]


def extra_report_files(name: str, exp: Mapping[str, Any]) -> dict[str, str]:
    """Name the files of an experiment's extra sections, keyed as the report rule's inputs."""
    files = dict(modality_of(exp).report_files(name, exp))
    if exp["model"].get("pretrain"):
        files[f"{name}_pretrain"] = PRETRAIN_SUMMARY.format(exp=name)
    if exp["embed"]["enabled"]:
        files[f"{name}_reconstruction"] = f"results/{name}/embedding/reconstruction.tsv"
        files[f"{name}_embedding_umap"] = f"results/{name}/embedding/umap.png"
    return files
