"""Leaderboard and paired tests over folds; grouping of experiments that share folds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dlpipe.compare import (
    corrected_resampled_ttest,
    fold_size_ratio,
    leaderboard,
    wilcoxon_signed_rank,
)
from dlpipe.io.files import write_json
from dlpipe.metrics import paired_bootstrap_p
from dlpipe.steps.compare import compare_step

SEPARATED_A = [0.91, 0.93, 0.90, 0.92, 0.94]
SEPARATED_B = [0.71, 0.74, 0.70, 0.73, 0.72]


def test_clearly_separated_folds_give_p_below_005() -> None:
    t, p = corrected_resampled_ttest(SEPARATED_A, SEPARATED_B, test_train_ratio=0.25)
    assert t > 0
    assert p < 0.05
    assert wilcoxon_signed_rank(SEPARATED_A, SEPARATED_B) == pytest.approx(0.0625)  # k=5 floor
    ten_a, ten_b = SEPARATED_A * 2, SEPARATED_B * 2
    assert wilcoxon_signed_rank(ten_a, ten_b) < 0.05


def test_identical_scores_give_p_one() -> None:
    assert corrected_resampled_ttest(SEPARATED_A, SEPARATED_A, 0.25) == (0.0, 1.0)
    assert wilcoxon_signed_rank(SEPARATED_A, SEPARATED_A) == 1.0


def test_correction_inflates_the_variance_by_nadeau_bengio() -> None:
    a = np.array([0.80, 0.82, 0.79, 0.85, 0.81])
    b = np.array([0.78, 0.80, 0.80, 0.81, 0.79])
    d = a - b
    t, p = corrected_resampled_ttest(a, b, 0.25)
    expected_t = d.mean() / np.sqrt((1 / 5 + 0.25) * d.var(ddof=1))
    assert t == pytest.approx(expected_t)
    assert p == pytest.approx(2 * stats.t.sf(abs(expected_t), 4))
    naive = stats.ttest_rel(a, b).pvalue
    assert p > naive  # the correction is more conservative than the plain paired t-test


def test_leaderboard_ranks_and_tests_against_the_best() -> None:
    entries = [
        {"experiment": "e", "learner": "weak", "scores": np.array(SEPARATED_B)},
        {"experiment": "e", "learner": "strong", "scores": np.array(SEPARATED_A)},
    ]
    board, pairs = leaderboard(entries, "auroc", 0.25)
    assert board["learner"].tolist() == ["strong", "weak"]
    assert board["rank"].tolist() == [1, 2]
    assert np.isnan(board.loc[0, "p_corrected_t"])
    assert board.loc[1, "p_corrected_t"] < 0.05
    assert board.loc[1, "difference"] == pytest.approx(np.mean(SEPARATED_B) - np.mean(SEPARATED_A))
    assert len(pairs) == 1
    # Errors rank the other way round.
    board, _ = leaderboard(entries, "mse", 0.25)
    assert board["learner"].tolist() == ["weak", "strong"]


def _experiment(folder: Path, name: str, folds: str, scores: dict[str, list[float]]) -> dict:
    (folder / name).mkdir()
    rows = [{"learner": lrn, "metric": "auroc", **{f"fold_{i}": v for i, v in enumerate(s)}}
            for lrn, s in scores.items()]  # fmt: skip
    pd.DataFrame(rows).to_csv(folder / name / "metrics.tsv", sep="\t", index=False)
    (folder / name / "folds.tsv").write_text(folds)
    write_json({"task": "classification", "classes": ["a", "b"],
                "meta": {"sha256": "abc"}}, folder / name / "dataset.json")  # fmt: skip
    summaries = []
    for i in range(len(next(iter(scores.values())))):
        path = folder / name / f"pre{i}.json"
        write_json({"n_train": 60, "n_val": 20, "n_test": 20}, path)
        summaries.append(str(path))
    return {
        "metrics": str(folder / name / "metrics.tsv"),
        "meta": str(folder / name / "dataset.json"),
        "folds": str(folder / name / "folds.tsv"),
        "summaries": summaries,
    }


def test_compare_step_groups_experiments_by_shared_folds(tmp_path: Path) -> None:
    same = "fold\tid\tset\n0\ta\ttest\n1\tb\ttest\n"
    other = "fold\tid\tset\n0\tb\ttest\n1\ta\ttest\n"
    files = {
        "cnn": _experiment(tmp_path, "cnn", same, {"cnn": SEPARATED_A, "kmer": SEPARATED_B}),
        "danq": _experiment(tmp_path, "danq", same, {"danq": [0.8] * 5, "kmer": SEPARATED_B}),
        "moved": _experiment(tmp_path, "moved", other, {"mlp": [0.6] * 5}),
    }
    exps = {name: {"task": "classification", "data": {"modality": "tabular"}} for name in files}
    board = compare_step(exps, files, str(tmp_path / "board.tsv"), str(tmp_path / "pairs.tsv"))
    groups = board.groupby("group", sort=False)["learner"].apply(list).to_dict()
    assert groups == {"group 1: cnn, danq": ["cnn", "danq", "kmer", "kmer"],
                      "group 2: moved": ["mlp"]}  # fmt: skip
    assert board["test_train_ratio"].iloc[0] == pytest.approx(fold_size_ratio(
        [{"n_train": 60, "n_val": 20, "n_test": 20}]))  # fmt: skip
    pairs = pd.read_csv(tmp_path / "pairs.tsv", sep="\t")
    assert len(pairs) == 6  # four learners in group 1, none to pair in group 2
    cnn_vs_kmer = pairs[(pairs["a"] == "cnn/cnn") & (pairs["b"] == "cnn/kmer")].iloc[0]
    assert cnn_vs_kmer["p_corrected_t"] < 0.05


def test_paired_bootstrap_p() -> None:
    rng = np.random.default_rng(0)
    same = rng.normal(size=1000)
    assert paired_bootstrap_p(same, same) == 1.0
    assert paired_bootstrap_p(same + 1.0, same) == 0.0  # every resample on one side
    assert 0.2 < paired_bootstrap_p(rng.normal(size=1000), rng.normal(size=1000)) <= 1.0


def test_leaderboard_ranks_pooled_values_with_a_paired_bootstrap() -> None:
    # Leave-one-out: fold values undefined; the learners are ranked on their pooled values.
    rng = np.random.default_rng(1)
    undefined = np.full(30, np.nan)
    common = rng.normal(scale=0.02, size=1000)
    entries = [
        {"experiment": "e", "learner": "coin", "scores": undefined, "summary": "pooled",
         "pooled": 0.52, "resampled": 0.52 + common + rng.normal(scale=0.05, size=1000)},
        {"experiment": "e", "learner": "mlp", "scores": undefined, "summary": "pooled",
         "pooled": 0.91, "resampled": 0.91 + common + rng.normal(scale=0.02, size=1000)},
    ]  # fmt: skip
    board, pairs = leaderboard(entries, "auroc", 1 / 29)
    assert board["learner"].tolist() == ["mlp", "coin"]
    assert (board["summary"] == "pooled").all()
    assert board["mean"].isna().all()  # no mean over undefined folds
    assert board.loc[1, "difference"] == pytest.approx(0.52 - 0.91)
    assert board.loc[1, "p_bootstrap"] < 0.01
    assert np.isnan(board.loc[1, "p_corrected_t"])
    pair = pairs.iloc[0]
    assert (pair["a"], pair["b"]) == ("e/mlp", "e/coin")
    assert 0.2 < pair["ci95_low"] < 0.39 < pair["ci95_high"] < 0.6
