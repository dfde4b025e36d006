"""Cross-validation plans built on scikit-learn splitters, with a seeded validation carve.

A plan assigns every sample, in every fold, to ``train``, ``val`` or ``test``. The test sets
come from the scikit-learn splitter the config names; the validation set (for early stopping)
is carved from the training side of each fold, stratified for classification and by group
when groups are given, so the test fold never informs any fitting.

Samples that must never be split apart (``clusters``: genome windows chained by overlaps) are
kept together by every other plan too: k-fold, stratified and hold-out plans then split whole
clusters, with the group-aware splitter of the same kind (``StratifiedGroupKFold`` …).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import (
    GroupKFold,
    GroupShuffleSplit,
    KFold,
    LeaveOneOut,
    RepeatedKFold,
    RepeatedStratifiedKFold,
    StratifiedGroupKFold,
    StratifiedKFold,
    train_test_split,
)

from dlpipe.cv import GROUP_PLANS, PLANS
from dlpipe.errors import InputError


def _test_splits(
    cv: Mapping[str, Any], n: int, labels: np.ndarray | None, groups: np.ndarray | None, seed: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    plan, k = cv["plan"], int(cv["n_splits"])
    index = np.arange(n)
    strat = labels
    if (
        plan
        in (
            "stratified_kfold",
            "kfold",
            "group_kfold",
            "repeated_kfold",
            "repeated_stratified_kfold",
            "chromosome_kfold",
            "bin_kfold",
        )
        and k > n
    ):
        raise InputError(f"cv.n_splits={k} is larger than the number of samples ({n})")
    if plan == "stratified_kfold":
        return StratifiedKFold(k, shuffle=True, random_state=seed).split(index, labels)
    if plan == "kfold":
        return KFold(k, shuffle=True, random_state=seed).split(index)
    if plan == "repeated_kfold":
        return RepeatedKFold(n_splits=k, n_repeats=cv["n_repeats"], random_state=seed).split(index)
    if plan == "repeated_stratified_kfold":
        return RepeatedStratifiedKFold(
            n_splits=k, n_repeats=cv["n_repeats"], random_state=seed
        ).split(index, labels)
    if plan in GROUP_PLANS:
        if groups is None:
            raise InputError(f"cv.plan {plan} needs groups (data.group_column or genomic windows)")
        n_groups = len(np.unique(groups))
        if n_groups < k:
            raise InputError(
                f"cv.plan {plan} with n_splits={k} needs at least {k} groups, but the data "
                f"hold {n_groups}; lower cv.n_splits"
            )
        return GroupKFold(k, shuffle=True, random_state=seed).split(index, groups=groups)
    if plan == "leave_one_out":
        return LeaveOneOut().split(index)
    if plan == "holdout":
        train, test = train_test_split(
            index, test_size=cv["test_size"], random_state=seed, stratify=strat
        )
        return iter([(np.sort(train), np.sort(test))])
    raise InputError(f"unknown cv.plan {plan!r}; choose one of {', '.join(PLANS)}")


def _clustered_splits(
    cv: Mapping[str, Any], n: int, labels: np.ndarray | None, clusters: np.ndarray, seed: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Test splits of a non-group plan over whole clusters (the plan's group-aware twin)."""
    plan, k = cv["plan"], int(cv["n_splits"])
    index = np.arange(n)
    n_clusters = len(np.unique(clusters))
    if plan != "holdout" and n_clusters < k:
        raise InputError(
            f"cv.plan {plan} keeps overlapping windows together, which leaves {n_clusters} "
            f"independent chains, fewer than cv.n_splits={k}; lower n_splits"
        )
    stratified = plan in ("stratified_kfold", "repeated_stratified_kfold")
    repeats = int(cv["n_repeats"]) if plan.startswith("repeated_") else 1
    if plan == "holdout":
        splitter = GroupShuffleSplit(n_splits=1, test_size=cv["test_size"], random_state=seed)
        yield from splitter.split(index, groups=clusters)
        return
    for r in range(repeats):
        if stratified:
            folds = StratifiedGroupKFold(k, shuffle=True, random_state=seed + r)
            yield from folds.split(index, labels, clusters)
        else:
            yield from GroupKFold(k, shuffle=True, random_state=seed + r).split(
                index, groups=clusters
            )


def _carve_validation(
    train: np.ndarray,
    labels: np.ndarray | None,
    groups: np.ndarray | None,
    fraction: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Split a fold's training side into fit and validation indices."""
    if len(train) < 2:
        raise InputError("a fold's training side has fewer than 2 samples; use fewer folds")
    if groups is not None and len(np.unique(groups[train])) < 2:
        raise InputError(
            "a fold's training side holds a single group, so no validation group can be carved "
            "from it without sharing that group; use data with more groups or lower cv.n_splits "
            "(group plans need at least n_splits + 1 groups)"
        )
    if groups is not None:
        splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
        fit, val = next(splitter.split(train, groups=groups[train]))
        return np.sort(train[fit]), np.sort(train[val])
    strat = None
    if labels is not None:
        _, counts = np.unique(labels[train], return_counts=True)
        n_val = int(np.ceil(fraction * len(train)))
        # Stratify only where every class can appear on both sides.
        if counts.min() >= 2 and n_val >= len(counts) and len(train) - n_val >= len(counts):
            strat = labels[train]
    fit, val = train_test_split(train, test_size=fraction, random_state=seed, stratify=strat)
    return np.sort(fit), np.sort(val)


def make_folds(
    ids: np.ndarray,
    cv: Mapping[str, Any],
    seed: int,
    labels: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    chromosomes: np.ndarray | None = None,
    clusters: np.ndarray | None = None,
) -> pd.DataFrame:
    """Assign every sample of every fold to train, val or test.

    Parameters
    ----------
    ids
        Unique sample ids.
    cv
        The experiment's ``cv`` config (plan, n_splits, n_repeats, test_size, val_fraction).
    seed
        Seed of every random choice (0 is a seed like any other).
    labels
        Labels to stratify on (the task's :meth:`dlpipe.tasks.Task.stratify`: class codes, or
        "positive for any target"); ``None`` splits without stratification (regression).
    groups
        Group ids; samples of one group never straddle train and test (group plans).
    chromosomes
        Chromosome of every sample (``chromosome_holdout``).
    clusters
        Samples that may never be split apart (overlapping genome windows): a non-group plan
        then splits whole clusters, and validation is carved from whole clusters.

    Returns
    -------
    pandas.DataFrame
        Long table with columns ``fold``, ``id``, ``set`` (one row per sample and fold),
        sorted by fold then original sample order.
    """
    ids = np.asarray(ids).astype(str)
    if labels is not None:
        labels = np.asarray(labels)
        if len(ids) != len(labels):
            raise ValueError("ids and labels differ in length")
    if cv["plan"] == "chromosome_holdout":
        if chromosomes is None:
            raise InputError("cv.plan chromosome_holdout needs genomic windows")
        chrom = np.asarray(chromosomes).astype(str)
        role = np.where(
            np.isin(chrom, cv["test_chromosomes"]),
            "test",
            np.where(np.isin(chrom, cv["val_chromosomes"]), "val", "train"),
        )
        return pd.DataFrame({"fold": 0, "id": ids, "set": role.astype(object)})
    grouped = cv["plan"] in GROUP_PLANS
    chained = not grouped and clusters is not None and len(np.unique(clusters)) < len(ids)
    if chained:
        splits = _clustered_splits(cv, len(ids), labels, np.asarray(clusters), seed)
    else:
        splits = _test_splits(cv, len(ids), labels, groups, seed)
    frames = []
    for fold, (train, test) in enumerate(splits):
        fit, val = _carve_validation(
            np.asarray(train),
            labels,
            groups if grouped else (np.asarray(clusters) if chained else None),
            cv["val_fraction"],
            seed + fold,
        )
        if labels is not None and len(np.unique(labels[fit])) < 2:
            raise InputError(
                f"cv.plan {cv['plan']}: the training side of fold {fold} holds one class only "
                f"({labels[fit][0]!r} in the task's codes), so no classifier can be fitted; "
                "the groups this plan keeps whole (chromosomes, bins, groups) each hold few "
                "classes: use more groups or fewer folds"
            )
        role = np.empty(len(ids), dtype=object)
        role[fit], role[val], role[test] = "train", "val", "test"
        frames.append(pd.DataFrame({"fold": fold, "id": ids, "set": role}))
    return pd.concat(frames, ignore_index=True)


def fold_indices(folds: pd.DataFrame, fold: int, ids: np.ndarray) -> dict[str, np.ndarray]:
    """Return the positions in ``ids`` of the train, val and test samples of one fold."""
    table = folds[folds["fold"] == fold]
    if table.empty:
        raise InputError(f"fold {fold} is not in the fold table")
    position = pd.Series(np.arange(len(ids)), index=pd.Index(ids))
    return {
        name: position.loc[table.loc[table["set"] == name, "id"].astype(str)].to_numpy()
        for name in ("train", "val", "test")
    }


def write_folds(folds: pd.DataFrame, path: str) -> None:
    """Write a fold table as TSV."""
    folds.to_csv(path, sep="\t", index=False)


def read_folds(path: str) -> pd.DataFrame:
    """Read a fold table written by :func:`write_folds` (ids kept as strings).

    Ids and node ids are text exactly as written: ``01005`` stays, ``NA`` is an id, not missing.
    """
    text = {"id": str, "set": str, "node_a": str, "node_b": str}
    return pd.read_csv(path, sep="\t", dtype={"fold": int, **text}, na_filter=False)
