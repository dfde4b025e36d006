"""Rule ``compare`` (rules/compare.smk): leaderboards of learners sharing data and folds."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from dlpipe.compare import comparison_key, fold_scores, fold_size_ratio, leaderboard, summary_of
from dlpipe.io.files import read_json, read_predictions
from dlpipe.metrics import at_chance, bootstrap_values, chance_metric, resample_indices
from dlpipe.modalities import task_of
from dlpipe.tasks import get_task

log = logging.getLogger(__name__)


def chance_flag(metrics: pd.DataFrame, learner: str, metric: str) -> bool:
    """Whether a learner's 95 % interval of ``metric`` (its ``metrics.tsv`` row) reaches chance.

    A metric without a fixed chance level (auPRC) is judged by its stand-in (the auROC,
    :func:`dlpipe.metrics.chance_metric`).
    """
    judged = chance_metric(metric)
    row = metrics[(metrics["learner"] == learner) & (metrics["metric"] == judged)]
    if judged is None or row.empty or "ci95_low" not in row:
        return False
    return at_chance(judged, float(row["ci95_low"].iloc[0]))


def compare_step(
    experiments: Mapping[str, Mapping[str, Any]],
    files: Mapping[str, Mapping[str, Any]],
    leaderboard_tsv: str,
    pairs_tsv: str,
) -> pd.DataFrame:
    """Leaderboards of every group of comparable experiments, with paired tests over folds.

    Parameters
    ----------
    experiments
        The experiments' configs by name.
    files
        Per experiment: ``metrics`` (``metrics.tsv``), ``meta`` (``dataset.json``), ``folds``
        (``folds.tsv``), ``summaries`` (the folds' ``preprocess.json``) and ``predictions``
        (``oof_predictions.tsv``, read where the metric is summarised pooled).
    leaderboard_tsv, pairs_tsv
        Outputs.

    Returns
    -------
    pandas.DataFrame
        The leaderboard (all groups), with a ``group`` column.
    """
    groups: dict[str, list[str]] = {}
    for name in experiments:
        key = comparison_key(read_json(files[name]["meta"]), files[name]["folds"])
        groups.setdefault(key, []).append(name)
    boards, pair_tables = [], []
    # Numbered in config order, the order of the report page.
    for number, (_, names) in enumerate(groups.items(), 1):
        metric = task_of(experiments[names[0]]).primary_metric
        entries = []
        summaries = []
        tables = {name: pd.read_csv(files[name]["metrics"], sep="\t") for name in names}
        for name in names:
            metrics = tables[name]
            summaries += [read_json(p) for p in files[name]["summaries"]]
            for learner in dict.fromkeys(metrics["learner"]):
                summary, pooled = summary_of(metrics, learner, metric)
                entries.append(
                    {
                        "experiment": name,
                        "learner": learner,
                        "scores": fold_scores(metrics, learner, metric),
                        "summary": summary,
                        "pooled": pooled,
                    }
                )
        if any(e["summary"] == "pooled" for e in entries):
            _resample(entries, experiments, files, metric)
        ratio = fold_size_ratio(summaries)
        board, pairs = leaderboard(entries, metric, ratio)
        board["at_chance"] = [
            chance_flag(tables[e], lrn, metric)
            for e, lrn in zip(board["experiment"], board["learner"], strict=True)
        ]
        label = f"group {number}: " + ", ".join(names)
        board.insert(0, "group", label)
        board["test_train_ratio"] = ratio
        pairs.insert(0, "group", label)
        boards.append(board)
        pair_tables.append(pairs)
        log.info("%s: %s best on %s", label, board.iloc[0]["learner"], metric)
    table = pd.concat(boards, ignore_index=True)
    table.to_csv(leaderboard_tsv, sep="\t", index=False, float_format="%.6g")
    pairs = [p for p in pair_tables if len(p)] or pair_tables[:1]
    pd.concat(pairs, ignore_index=True).to_csv(
        pairs_tsv, sep="\t", index=False, float_format="%.6g"
    )
    return table


def _resample(
    entries: list[dict[str, Any]],
    experiments: Mapping[str, Mapping[str, Any]],
    files: Mapping[str, Mapping[str, Any]],
    metric: str,
) -> None:
    """Score every learner of a group on the same bootstrap resamples of the held-out rows.

    The experiments of a group share their folds, so their pooled predictions hold the same
    rows (id and fold); each learner's rows are put in one order before resampling, which
    pairs the learners' values resample by resample (``resampled`` of each entry).
    """
    first = entries[0]["experiment"]
    meta = read_json(files[first]["meta"])
    task = get_task(meta["task"])
    tables = {name: read_predictions(files[name]["predictions"]) for name in experiments}
    tables = {
        name: t for name, t in tables.items() if any(e["experiment"] == name for e in entries)
    }
    rows = tables[first]
    keys = rows.loc[rows["learner"] == entries[0]["learner"], ["fold", "id"]]
    keys = keys.astype(str).sort_values(["fold", "id"]).reset_index(drop=True)
    aligned = {}
    for entry in entries:
        table = tables[entry["experiment"]]
        mine = table[table["learner"] == entry["learner"]]
        mine = mine.set_index([mine["fold"].astype(str), mine["id"].astype(str)])
        aligned[id(entry)] = mine.loc[list(zip(keys["fold"], keys["id"], strict=True))]
        aligned[id(entry)] = aligned[id(entry)].reset_index(drop=True)
    seed = int(experiments[first].get("seed", 0))
    for entry in entries:
        frame = aligned[id(entry)]
        values = bootstrap_values(
            task.metric_statistic(frame, meta), resample_indices(len(frame), seed)
        )
        entry["resampled"] = values.get(metric, np.full(0, np.nan))
