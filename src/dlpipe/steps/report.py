"""Rule ``report`` (rules/report.smk): the HTML report of every experiment."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dlpipe.io.files import read_json
from dlpipe.modalities import modality_of, task_of
from dlpipe.report.files import ExperimentFiles
from dlpipe.report.latent import extra_sections
from dlpipe.report.page import build_report
from dlpipe.tasks import figure_names

log = logging.getLogger(__name__)


def report_step(
    experiments: Mapping[str, Mapping[str, Any]],
    files: Mapping[str, Any],
    title: str,
    out_html: str,
) -> None:
    """Write the HTML report.

    ``files`` holds ``{exp}_meta``, ``_provenance``, ``_metrics``, ``_figures`` (folder) and
    ``_summaries`` (list) for every experiment, ``_histories``, ``_calibrations``,
    ``_interpret`` and ``_pretrain`` (the pretraining summary) where they exist, ``_models``
    (fold 0's checkpoint, whose parameters are counted when no interpretation did), and the
    files of its extra sections
    (:func:`dlpipe.workflow.extra_report_files`).
    """
    entries = []
    for name, exp in experiments.items():
        figures = Path(files[f"{name}_figures"])
        meta = read_json(files[f"{name}_meta"])
        names = figure_names(task_of(exp), modality_of(exp).figures(meta))
        extras = {
            key: files[f"{name}_{key}"]
            for key in ("histories", "calibrations", "interpret", "pretrain")
            if f"{name}_{key}" in files
        }
        if f"{name}_models" in files:
            from dlpipe.models.checkpoint import parameter_count  # lazy: torch, 1.2 s

            extras["n_parameters"] = parameter_count(files[f"{name}_models"][0])
        entries.append(
            ExperimentFiles(
                name=name,
                config=exp,
                dataset_meta=files[f"{name}_meta"],
                provenance=files[f"{name}_provenance"],
                metrics=files[f"{name}_metrics"],
                preprocess_summaries=list(files[f"{name}_summaries"]),
                figures=[str(figures / f) for f in names],
                sections=extra_sections(name, exp, files),
                extras=extras,
            )
        )
    comparison = None
    if "comparison_leaderboard" in files:
        comparison = {
            "leaderboard": files["comparison_leaderboard"],
            "pairs": files["comparison_pairs"],
        }
    others = other_experiments(Path(out_html).parent, experiments)
    if others:
        log.warning(
            "%s also holds results of experiments this config does not run (%s); the report "
            "names them as not included",
            Path(out_html).parent,
            ", ".join(others),
        )
    build_report(entries, title, out_html, comparison, others)


def other_experiments(results: Path, experiments: Mapping[str, Any]) -> list[str]:
    """Experiments with results in ``results`` (a ``dataset.json``) that the config does not run."""
    if not results.is_dir():
        return []
    return sorted(
        p.name
        for p in results.iterdir()
        if p.name not in experiments and (p / "dataset.json").is_file()
    )
