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
