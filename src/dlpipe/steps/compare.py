"""Rule ``compare`` (rules/compare.smk): leaderboards of learners sharing data and folds."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd

from dlpipe.compare import comparison_key, fold_scores, fold_size_ratio, leaderboard
from dlpipe.io.files import read_json
from dlpipe.metrics import at_chance
from dlpipe.modalities import task_of

log = logging.getLogger(__name__)


def chance_flag(metrics: pd.DataFrame, learner: str, metric: str) -> bool:
    """Whether a learner's 95 % interval of ``metric`` (its ``metrics.tsv`` row) reaches chance."""
    row = metrics[(metrics["learner"] == learner) & (metrics["metric"] == metric)]
    if row.empty or "ci95_low" not in row:
        return False
    return at_chance(metric, float(row["ci95_low"].iloc[0]))


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
        (``folds.tsv``) and ``summaries`` (the folds' ``preprocess.json``).
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
        for name in names:
            metrics = pd.read_csv(files[name]["metrics"], sep="\t")
            summaries += [read_json(p) for p in files[name]["summaries"]]
            for learner in dict.fromkeys(metrics["learner"]):
                entries.append(
                    {
                        "experiment": name,
                        "learner": learner,
                        "scores": fold_scores(metrics, learner, metric),
                    }
                )
        ratio = fold_size_ratio(summaries)
        board, pairs = leaderboard(entries, metric, ratio)
        board["at_chance"] = [
            chance_flag(pd.read_csv(files[e]["metrics"], sep="\t"), lrn, metric)
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
