"""Rule ``image_store`` (rules/image.smk): an image experiment's images, decoded once."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

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
