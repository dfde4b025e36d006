"""Rule ``interpret`` (rules/interpret.smk): what the deep model learned, per experiment."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dlpipe.datasets import load_dataset
from dlpipe.io.files import read_json, write_json
from dlpipe.modalities import modality_of
from dlpipe.split import read_folds
from dlpipe.tasks import get_task

log = logging.getLogger(__name__)


def interpret_step(
    exp: Mapping[str, Any],
    dataset: str,
    meta: str,
    folds_tsv: str,
    predictions: Sequence[str],
    checkpoints: Sequence[str],
    preprocessors: Sequence[str],
    outdir: str,
    threads: int = 1,
) -> dict[str, Any]:
    """Explain an experiment's deep model and write tables and figures into ``outdir``.

    The modality decides what is explained and how (:meth:`dlpipe.modalities.base.Modality.
    interpret`): sequences pick the top-scoring held-out sequences from the folds' test
    ``predictions`` and find motifs; images map the most confident correct and wrong held-out
    images of each class, picked from the same predictions, with their own test fold's model;
    tables explain each fold's test rows (``folds_tsv``) with that fold's model. All write
    ``summary.json`` with the model's parameter count.
    """
    import torch  # lazy: 1.2 s

    from dlpipe.models.checkpoint import parameter_count  # lazy: torch, 1.2 s

    torch.set_num_threads(max(1, threads))
    torch.manual_seed(int(exp["seed"]))
    start = time.perf_counter()
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    info = read_json(meta)
    data = load_dataset(dataset, meta)
    summary: dict[str, Any] = {
        "modality": info.get("modality", "tabular"),
        "task": info["task"],
        "n_parameters": parameter_count(checkpoints[0]),
    }
    summary.update(
        modality_of(exp).interpret(
            exp,
            get_task(info["task"]),
            data,
            info,
            read_folds(folds_tsv),
            list(predictions),
            {_fold(p): p for p in checkpoints},
            {_fold(p): p for p in preprocessors},
            out,
        )
    )
    write_json(summary, out / "summary.json")
    log.info("interpretation written to %s in %.1f s", out, time.perf_counter() - start)
    return summary


def _fold(path: str) -> int:
    """Fold number of a per-fold file (``results/EXP/FOLD/file``)."""
    return int(Path(path).parent.name)
