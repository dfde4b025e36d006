"""Records of a results folder: JSON written so reruns are byte-identical, and file checksums."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlpipe.errors import InputError


def sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Return the SHA-256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_json(obj: Any, path: str | Path) -> None:
    """Write ``obj`` as sorted, indented JSON (NaN written as null) so reruns are byte-identical."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not np.isfinite(value):
            return None
        return value

    Path(path).write_text(json.dumps(clean(obj), indent=2, sort_keys=True) + "\n")


def read_json(path: str | Path) -> Any:
    """Read a JSON file written by :func:`write_json`.

    Raises
    ------
    InputError
        If the file is not valid JSON (naming file, line and column).
    """
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise InputError(
            f"{path}, line {err.lineno}, column {err.colno}: not valid JSON ({err.msg}); the file "
            "is damaged: delete it and rerun the workflow to rewrite it"
        ) from None


def read_predictions(path: str | Path) -> pd.DataFrame:
    """Read a predictions TSV of the evaluate step (ids and labels kept as text)."""
    return pd.read_csv(path, sep="\t", dtype={"id": str, "y_true": str, "y_pred": str})


#: The record of the files of a trained experiment (``results/EXP/manifest.json``).
MANIFEST = "manifest.json"


def write_manifest(folder: str | Path, names: list[str], out: str | Path) -> dict[str, Any]:
    """Record the sha256 of files of an experiment's results folder.

    Parameters
    ----------
    folder
        The experiment's results folder (``results/EXP``).
    names
        The files, relative to ``folder`` (``config.yaml``, ``0/model.ckpt`` …).
    out
        Where to write the manifest.

    Returns
    -------
    dict
        What was written: ``{"format": 1, "files": {name: sha256}}``.
    """
    folder = Path(folder)
    record = {"format": 1, "files": {name: sha256(folder / name) for name in sorted(names)}}
    write_json(record, out)
    return record


def read_manifest(path: str | Path) -> dict[str, str]:
    """Read the ``{file: sha256}`` of a manifest written by :func:`write_manifest`.

    Raises
    ------
    InputError
        If the file is missing or is not a dlpipe manifest.
    """
    if not Path(path).is_file():
        raise InputError(
            f"{path}: missing: the workflow records the files of an experiment there, and "
            "prediction reads only recorded files. Rerun the workflow (dlpipe run CONFIG) to "
            "write it"
        )
    record = read_json(path)
    files = record.get("files") if isinstance(record, dict) else None
    valid = (
        isinstance(files, dict)
        and record.get("format") == 1
        and all(isinstance(k, str) and isinstance(v, str) for k, v in files.items())
    )
    if not valid:
        raise InputError(f"{path}: not a dlpipe manifest; rerun the workflow to rewrite it")
    return dict(files)


def verify_files(manifest: str | Path, paths: list[str | Path]) -> None:
    """Check that files of a results folder are the ones its manifest records.

    Parameters
    ----------
    manifest
        ``results/EXP/manifest.json``; names in it are relative to its folder.
    paths
        The files about to be read, inside that folder.

    Raises
    ------
    InputError
        Naming the first file that is missing, not in the manifest (foreign), or changed since
        the workflow wrote it.
    """
    folder = Path(manifest).parent.resolve()
    recorded = read_manifest(manifest)
    for path in paths:
        path = Path(path)
        try:
            name = path.resolve().relative_to(folder).as_posix()
        except ValueError:
            name = None
        if name not in recorded:
            raise InputError(
                f"{path}: not a file of the experiment its manifest ({manifest}) records; dlpipe "
                "reads only the files the workflow wrote. Remove it, or rerun the workflow"
            )
        if not path.is_file():
            raise InputError(
                f"{path}: missing from the results folder (the manifest records it); rerun the "
                "workflow to rewrite it"
            )
        if sha256(path) != recorded[name]:
            raise InputError(
                f"{path}: changed since the workflow wrote it (its sha256 differs from "
                f"{manifest}); the file is damaged or was replaced, so it is not read. Delete it "
                "and rerun the workflow to rewrite it"
            )
