"""What the report shows of one experiment: the files the workflow wrote for it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ExperimentFiles:
    """The files of one experiment that the report shows."""

    name: str
    config: Mapping[str, Any]
    dataset_meta: str
    provenance: str
    metrics: str
    preprocess_summaries: Sequence[str]
    figures: Sequence[str] = field(default_factory=list)
    #: Extra sections by place (``top``, ``after_data``, ``after_metrics``): dicts of plain data
    #: naming their template (:func:`dlpipe.report.render.section`); see dlpipe.report.latent.
    sections: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    #: Further facts: ``histories``, ``calibrations`` (lists of files), ``interpret`` (folder),
    #: ``n_parameters`` (of the deep model, when no interpretation counted them), ``pretrain``
    #: (the summary of the pretraining its backbone came from).
    extras: Mapping[str, Any] = field(default_factory=dict)
