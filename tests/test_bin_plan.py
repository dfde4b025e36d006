"""Genomes with few chromosomes: dlpipe check refuses what cannot work and names bin_kfold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dlpipe.config import validate_config
from dlpipe.errors import InputError
from dlpipe.genomic import overlap_clusters
from dlpipe.modalities import get_modality
from dlpipe.modalities.sequence import prepare_sequence
from dlpipe.tasks import dataset_folds


def _two_chromosomes(folder: Path) -> tuple[Path, Path]:
    """A 2-chromosome genome (yeast-like) with 120 sites, some of them overlapping."""
    rng = np.random.default_rng(3)
    records, rows = [], []
    for c, size in enumerate((150_000, 120_000)):
        seq = "".join(rng.choice(list("ACGT"), size))
        records.append(f">chr{'IV'[c]}\n" + "\n".join(seq[i : i + 60] for i in range(0, size, 60)))
        for start in rng.choice(np.arange(2_000, size - 2_000, 1_700), 60, replace=False):
            rows.append((f"chr{'IV'[c]}", int(start), int(start) + 30))
    genome = folder / "genome.fa"
    genome.write_text("\n".join(records) + "\n")
    bed = folder / "sites.bed"
    pd.DataFrame(sorted(rows)).to_csv(bed, sep="\t", header=False, index=False)
    return genome, bed


def _exp(genome: Path, bed: Path, **cv: object) -> dict:
    config = {
        "experiments": {
            "yeast": {
                "task": "classification",
                "data": {"modality": "sequence", "genome": str(genome), "bed": {"site": str(bed)},
                         "sequence_length": 200, "bin_size": 10_000},
                "model": {"name": "cnn"},
                "cv": cv,
            }
        }
    }  # fmt: skip
    return validate_config(config)["experiments"]["yeast"]


@pytest.mark.parametrize(
    "cv",
    [
        {"plan": "chromosome_kfold", "n_splits": 3},
        {"plan": "chromosome_kfold", "n_splits": 2},
        {"plan": "chromosome_holdout", "val_chromosomes": ["chrI"], "test_chromosomes": ["chrV"]},
    ],
    ids=["more_folds_than_chromosomes", "no_chromosome_left_to_validate", "holdout_takes_all"],
)
def test_check_refuses_a_chromosome_plan_and_names_bin_kfold(tmp_path: Path, cv: dict) -> None:
    genome, bed = _two_chromosomes(tmp_path)
    with pytest.raises(InputError, match=r"use cv\.plan: bin_kfold") as err:
        get_modality("sequence").describe_data("yeast", _exp(genome, bed, **cv))
    assert "data.bin_size" in str(err.value)


def test_the_advised_bin_plan_works_and_keeps_bins_and_overlaps_whole(tmp_path: Path) -> None:
    genome, bed = _two_chromosomes(tmp_path)
    exp = _exp(genome, bed, plan="bin_kfold", n_splits=3)
    modality = get_modality("sequence")
    assert modality.describe_data("yeast", exp).startswith("yeast: genome of 2 sequence(s)")
    data = prepare_sequence(exp, "yeast")
    assert data.meta["group_by"] == "genomic bins"
    folds = dataset_folds(data, exp)
    windows = data.windows.reset_index()
    clusters = overlap_clusters(windows)
    assert len(np.unique(clusters)) < len(windows)  # the 200-bp windows do overlap
    for fold, rows in folds.groupby("fold"):
        side = rows.set_index("id").loc[windows["sample_id"], "set"].to_numpy()
        for key in (windows["group"].to_numpy(), clusters):
            per_group = pd.Series(side).groupby(key).nunique()
            assert (per_group == 1).all(), fold  # no bin, no overlap chain straddles two sides
    assert sorted(folds["fold"].unique()) == [0, 1, 2]
    assert all(g.split(":")[0] in ("chrI", "chrV") for g in windows["group"])
    assert windows["group"].str.contains(":").all()


def test_chromosomes_needed_leave_two_for_training_and_validation() -> None:
    from dlpipe.modalities.sequence import chromosomes_needed

    assert [chromosomes_needed(k) for k in (2, 3, 5, 10)] == [4, 3, 5, 10]


@pytest.mark.parametrize(
    "cv",
    [
        {"plan": "stratified_kfold", "n_splits": 3},
        {"plan": "kfold", "n_splits": 3},
        {"plan": "repeated_stratified_kfold", "n_splits": 2, "n_repeats": 2},
        {"plan": "holdout", "test_size": 0.25},
    ],
    ids=["stratified", "kfold", "repeated", "holdout"],
)
def test_random_plans_on_genome_windows_split_whole_overlap_chains(
    tmp_path: Path, cv: dict
) -> None:
    genome, bed = _two_chromosomes(tmp_path)
    exp = _exp(genome, bed, **cv)
    data = prepare_sequence(exp, "yeast")
    assert "each kept in one fold" in data.meta["fold_guard"]
    clusters = data.clusters
    assert len(np.unique(clusters)) < len(clusters)
    folds = dataset_folds(data, exp)
    for _, rows in folds.groupby("fold"):
        side = rows.set_index("id").loc[data.ids, "set"].to_numpy()
        assert (pd.Series(side).groupby(clusters).nunique() == 1).all()
        assert {"train", "val", "test"} <= set(side)
    again = dataset_folds(prepare_sequence(exp, "yeast"), exp)
    pd.testing.assert_frame_equal(folds, again)  # seeded: reruns identical
