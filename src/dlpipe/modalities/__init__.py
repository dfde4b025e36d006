"""The kinds of data dlpipe learns from, one module each, and the registry of their names.

Each module holds one :class:`~dlpipe.modalities.base.Modality` object, ``MODALITY``, which
owns everything about that data (see :mod:`dlpipe.modalities.base`). :data:`MODALITIES` is the
registry the config takes ``data.modality`` from: a new modality is one module here, one rule
file for steps of its own, and one line below.

Modules are imported when first asked for, so a config of tables never needs the packages of
sequences (``dlpipe[sequence]``), single cells (``dlpipe[singlecell]``), images
(``dlpipe[image]``) or graphs (``dlpipe[graph]``); the config check names the missing extra
before anything is imported.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping
from typing import Any

from dlpipe.modalities.base import Modality
from dlpipe.tasks import Task

#: Modality name → (module, extras of pyproject its experiments need).
MODALITIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "tabular": ("dlpipe.modalities.tabular", ()),
    "sequence": ("dlpipe.modalities.sequence", ("sequence",)),
    "singlecell": ("dlpipe.modalities.singlecell", ("singlecell",)),
    "image": ("dlpipe.modalities.image", ("image",)),
    "graph": ("dlpipe.modalities.graph", ("graph",)),
}


def modality_names() -> list[str]:
    """Names ``data.modality`` may take."""
    return list(MODALITIES)


def modality_extras(name: str) -> tuple[str, ...]:
    """Extras of pyproject (``dlpipe[...]``) that experiments of a modality need."""
    return MODALITIES[name][1]


@functools.cache
def get_modality(name: str) -> Modality:
    """Return the modality of a name (its module is imported on first use)."""
    return importlib.import_module(MODALITIES[name][0]).MODALITY


def modality_of(exp: Mapping[str, Any]) -> Modality:
    """Return the modality of a validated experiment config."""
    return get_modality(exp["data"]["modality"])


def task_of(exp: Mapping[str, Any]) -> Task:
    """Return the task the data of a validated experiment pose (multi-label: several BEDs)."""
    return modality_of(exp).task(exp)


__all__ = ["MODALITIES", "Modality", "get_modality", "modality_names", "modality_of", "task_of"]
