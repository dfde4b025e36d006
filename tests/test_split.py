"""Cross-validation plans: coverage, disjoint sides, stratification, groups, seeds, fold tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dlpipe.cv import n_folds
from dlpipe.errors import InputError
from dlpipe.split import fold_indices, make_folds, read_folds, write_folds
from dlpipe.tasks import get_task

N = 60
IDS = np.array([f"s{i:02d}" for i in range(N)])
#: 42 of class 0, 18 of class 1 (30 %), shuffled with a fixed seed.
Y = np.random.default_rng(7).permutation(np.r_[np.zeros(42, int), np.ones(18, int)])
#: 12 groups of 5 consecutive samples.
GROUPS = np.repeat([f"patient{i}" for i in range(12)], 5)


def _cv(**overrides: Any) -> dict[str, Any]:
    return {
        "plan": "stratified_kfold",
        "n_splits": 5,
        "n_repeats": 2,
        "test_size": 0.2,
        "val_fraction": 0.2,
        **overrides,
    }


def _folds(
    seed: int = 0, task: str = "classification", y: np.ndarray = Y, **cv: Any
) -> pd.DataFrame:
    groups = GROUPS if cv.get("plan") == "group_kfold" else None
    return make_folds(IDS, _cv(**cv), seed, labels=get_task(task).stratify(y), groups=groups)


def _sides(fold: pd.DataFrame) -> dict[str, set[str]]:
    return {s: set(fold.loc[fold["set"] == s, "id"]) for s in ("train", "val", "test")}


@pytest.mark.parametrize("plan", ["stratified_kfold", "kfold", "group_kfold"])
def test_every_sample_is_tested_exactly_once(plan: str) -> None:
    folds = _folds(plan=plan)
    assert list(folds.columns) == ["fold", "id", "set"]
    assert len(folds) == 5 * N  # one row per sample and fold
    assert sorted(folds["fold"].unique()) == [0, 1, 2, 3, 4]
    test = folds[folds["set"] == "test"]
    assert test["id"].value_counts().to_dict() == dict.fromkeys(IDS, 1)
    assert set(folds["set"]) == {"train", "val", "test"}


@pytest.mark.parametrize(
    "plan",
    ["stratified_kfold", "kfold", "group_kfold", "repeated_kfold", "holdout", "leave_one_out"],
)
def test_sides_are_disjoint_and_cover_all_samples(plan: str) -> None:
    folds = _folds(plan=plan)
    for _, fold in folds.groupby("fold"):
        sides = _sides(fold)
        assert not sides["train"] & sides["val"]
        assert not sides["train"] & sides["test"]
        assert not sides["val"] & sides["test"]
        assert sides["train"] | sides["val"] | sides["test"] == set(IDS)
        assert len(sides["val"]) > 0
        assert len(sides["train"]) > len(sides["val"])


@pytest.mark.parametrize("plan", ["stratified_kfold", "repeated_stratified_kfold"])
def test_stratification_keeps_class_proportions_in_each_test_fold(plan: str) -> None:
    folds = _folds(plan=plan)
    label = dict(zip(IDS, Y, strict=True))
    for _, fold in folds.groupby("fold"):
        test = fold.loc[fold["set"] == "test", "id"].map(label)
        assert len(test) == 12
        assert abs(int(test.sum()) - 12 * 0.3) <= 1  # 3.6 expected cases of 12
        val = fold.loc[fold["set"] == "val", "id"].map(label)
        assert abs(int(val.sum()) - len(val) * 0.3) <= 1  # the validation carve is stratified too


def test_holdout_has_one_fold_of_test_size() -> None:
    folds = _folds(plan="holdout", test_size=0.25)
    assert folds["fold"].unique().tolist() == [0]
    counts = folds["set"].value_counts()
    assert counts["test"] == 15  # 25 % of 60
    assert counts["val"] == 9  # ceil(20 % of 45)
    assert counts["train"] == 36
    label = dict(zip(IDS, Y, strict=True))
    assert folds.loc[folds["set"] == "test", "id"].map(label).sum() in (4, 5)  # 30 % of 15


def test_leave_one_out_gives_one_fold_per_sample() -> None:
    folds = _folds(plan="leave_one_out")
    assert folds["fold"].nunique() == N
    test = folds[folds["set"] == "test"]
    assert test.groupby("fold").size().eq(1).all()
    assert test["id"].tolist() == IDS.tolist()  # fold i tests sample i


def test_repeated_plans_give_splits_times_repeats_folds() -> None:
    for plan in ("repeated_stratified_kfold", "repeated_kfold"):
        folds = _folds(plan=plan, n_splits=3, n_repeats=4)
        assert folds["fold"].nunique() == 12
        test = folds[folds["set"] == "test"]
        assert test["id"].value_counts().eq(4).all()  # once per repeat
        for repeat in range(4):
            block = test[test["fold"].between(3 * repeat, 3 * repeat + 2)]
            assert sorted(block["id"]) == sorted(IDS)
        # Repeats shuffle differently.
        first = set(test.loc[test["fold"] == 0, "id"])
        assert all(set(test.loc[test["fold"] == f, "id"]) != first for f in (3, 6, 9))


@pytest.mark.parametrize(
    ("plan", "expected"),
    [
        ("stratified_kfold", 5),
        ("kfold", 5),
        ("group_kfold", 5),
        ("repeated_kfold", 10),
        ("repeated_stratified_kfold", 10),
        ("leave_one_out", N),
        ("holdout", 1),
    ],
)
def test_n_folds_matches_the_fold_table(plan: str, expected: int) -> None:
    assert n_folds(_cv(plan=plan), N) == expected
    assert _folds(plan=plan)["fold"].nunique() == expected


def test_chromosome_plan_fold_counts() -> None:
    assert n_folds(_cv(plan="chromosome_holdout"), 500) == 1
    assert n_folds(_cv(plan="chromosome_kfold", n_splits=4), 500) == 4


def test_group_kfold_keeps_each_group_on_one_side() -> None:
    folds = _folds(plan="group_kfold")
    group_of = dict(zip(IDS, GROUPS, strict=True))
    tested = set()
    for _, fold in folds.groupby("fold"):
        sides_per_group = fold.assign(group=fold["id"].map(group_of)).groupby("group")["set"]
        assert sides_per_group.nunique().eq(1).all()  # never in two of train / val / test
        test_groups = set(fold.loc[fold["set"] == "test", "id"].map(group_of))
        assert not test_groups & tested
        tested |= test_groups
        assert len(set(fold.loc[fold["set"] == "val", "id"].map(group_of))) >= 1
    assert tested == set(GROUPS)


def test_group_kfold_never_splits_a_group_between_train_and_val() -> None:
    y = np.array([0, 1] * 10)
    groups = np.repeat(["a", "b"], 10)
    ids = np.array([f"s{i}" for i in range(20)])
    try:
        folds = make_folds(ids, _cv(plan="group_kfold", n_splits=2), 0, labels=y, groups=groups)
    except InputError:
        return  # refusing is acceptable too
    group_of = dict(zip(ids, groups, strict=True))
    for _, fold in folds.groupby("fold"):
        sides = fold.assign(group=fold["id"].map(group_of)).groupby("group")["set"].nunique()
        assert sides.eq(1).all()


def test_group_kfold_errors() -> None:
    with pytest.raises(InputError, match="needs groups"):
        make_folds(IDS, _cv(plan="group_kfold"), 0, labels=Y, groups=None)
    few = np.repeat(["a", "b", "c"], 20)
    with pytest.raises(InputError, match="needs at least 5 groups, but the data hold 3"):
        make_folds(IDS, _cv(plan="group_kfold"), 0, labels=Y, groups=few)


def test_more_splits_than_samples_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"cv.n_splits=61 is larger than the number of samples"):
        _folds(plan="kfold", n_splits=61)


@pytest.mark.parametrize(
    "plan", ["stratified_kfold", "kfold", "group_kfold", "repeated_stratified_kfold", "holdout"]
)
def test_same_seed_gives_the_same_table(plan: str) -> None:
    pd.testing.assert_frame_equal(_folds(seed=3, plan=plan), _folds(seed=3, plan=plan))


@pytest.mark.parametrize(
    "plan",
    ["stratified_kfold", "kfold", "group_kfold", "repeated_kfold", "holdout", "leave_one_out"],
)
def test_seed_zero_and_seed_one_differ(plan: str) -> None:
    zero, one = _folds(seed=0, plan=plan), _folds(seed=1, plan=plan)
    assert (zero["set"] != one["set"]).sum() > 0
    assert not zero.equals(one)  # 0 is a seed like any other, not "no seed"
    assert not _folds(seed=1, plan=plan).equals(_folds(seed=2, plan=plan))


def test_regression_folds_with_a_target_matrix() -> None:
    y = np.random.default_rng(0).normal(size=(N, 2))
    folds = _folds(task="regression", y=y, plan="kfold")
    assert folds[folds["set"] == "test"]["id"].value_counts().eq(1).all()
    counts = folds.groupby(["fold", "set"]).size().unstack()
    assert counts["test"].tolist() == [12] * 5
    assert counts["val"].tolist() == [10] * 5  # ceil(20 % of 48)
    assert get_task("regression").stratify(y) is None  # a regression is not stratified
    with pytest.raises(ValueError, match="ids and labels differ in length"):
        make_folds(IDS, _cv(plan="kfold"), 0, labels=Y[:-1])


def test_fold_indices_give_positions_of_each_side() -> None:
    folds = _folds(plan="kfold")
    index = fold_indices(folds, 2, IDS)
    fold = folds[folds["fold"] == 2]
    for side in ("train", "val", "test"):
        assert IDS[index[side]].tolist() == fold.loc[fold["set"] == side, "id"].tolist()
    assert sorted(np.concatenate(list(index.values())).tolist()) == list(range(N))
    with pytest.raises(InputError, match="fold 9 is not in the fold table"):
        fold_indices(folds, 9, IDS)


def test_fold_table_round_trip_keeps_text_ids(tmp_path: Path) -> None:
    ids = np.array(["007", "010", "1e3", "0.50", "TRUE", "s1"])
    labels = np.array([0, 1, 0, 1, 0, 1])
    folds = make_folds(ids, _cv(plan="kfold", n_splits=2), 0, labels=labels)
    path = tmp_path / "folds.tsv"
    write_folds(folds, str(path))
    assert path.read_text().splitlines()[0] == "fold\tid\tset"
    back = read_folds(str(path))
    pd.testing.assert_frame_equal(back, folds, check_dtype=False)
    assert back["id"].tolist()[:6] == ["007", "010", "1e3", "0.50", "TRUE", "s1"]
    assert back["fold"].dtype == np.int64
    index = fold_indices(back, 0, ids)
    assert len(index["train"]) + len(index["val"]) + len(index["test"]) == 6


def test_a_training_side_with_one_class_is_named_before_any_fit() -> None:
    ids = np.array([f"s{i}" for i in range(24)])
    groups = np.repeat(["a", "b", "c", "d"], 6)
    labels = np.repeat([0, 1, 0, 1], 6)  # each group holds one class: a, c only 0
    cv = {"plan": "group_kfold", "n_splits": 2, "val_fraction": 0.3}
    with pytest.raises(InputError, match=r"the training side of fold \d holds one class only"):
        make_folds(ids, cv, 0, labels=labels, groups=groups)
