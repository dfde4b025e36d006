"""Rules ``image_store`` and ``pretrain`` (rules/image.smk): images decoded once; a backbone."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dlpipe.image_listing import table_image_files
from dlpipe.io.tables import read_table
from dlpipe.modalities import modality_of
from dlpipe.modalities.image import store_images

log = logging.getLogger(__name__)


def image_store_step(
    name: str, exp: Mapping[str, Any], store: str, inputs: Sequence[str] | None = None
) -> dict[str, Any]:
    """List and check an experiment's images and decode them into ``store`` (``images.npy``).

    Parameters
    ----------
    name
        Experiment name.
    exp
        Its validated config (``data``, ``cv``).
    store
        The ``.npy`` to write; its JSON sidecar goes beside it.
    inputs
        The job's local copy of ``data.path``, when it differs from the config's.

    Returns
    -------
    dict
        The store's sidecar.
    """
    if inputs is not None:
        exp = modality_of(exp).with_inputs(exp, inputs)
    written = store_images(exp, store, name)
    log.info("%s: %d images of %s stored as %s", name, len(written["ids"]), written["size"], store)
    return written


def target_images(exp: Mapping[str, Any]) -> list[Path]:
    """List the experiment's own image files (by path; none is opened), or its folder."""
    data = exp["data"]
    path = Path(data["path"])
    if path.is_dir():
        return [path]
    column = data.get("path_column") or "path"
    table = read_table(path, exact_columns=[column])
    if column not in table.columns:
        return [path]
    return [path, *table_image_files(path, table[column].astype(str).tolist(), "data.path")]


def pretrain_step(
    name: str,
    exp: Mapping[str, Any],
    backbone: str,
    summary: str,
    threads: int = 1,
) -> dict[str, Any]:
    """Pretrain the backbone of an image experiment on its ``model.pretrain.images``.

    Parameters
    ----------
    name
        Experiment name.
    exp
        Its validated config (``seed``, ``model``, ``training``, ``data``).
    backbone
        The state dict to write (``results/EXP/pretrain/backbone.pt``).
    summary
        The JSON summary to write beside it.
    threads
        CPU threads for torch.

    Returns
    -------
    dict
        The summary (:func:`dlpipe.pretrain.pretrain`).
    """
    from dlpipe.pretrain import pretrain  # lazy: Lightning and MONAI, 4 s

    model = exp["model"]
    log.info("%s: pretraining the backbone on %s", name, model["pretrain"]["images"])
    return pretrain(
        model["pretrain"],
        model,
        exp["training"],
        int(exp["seed"]),
        backbone,
        summary,
        image_size=exp["data"].get("image_size"),
        forbidden=target_images(exp),
        threads=threads,
    )
