"""The report's opening verdict: one sentence per experiment, generated from the numbers."""

from __future__ import annotations

import pandas as pd
import pytest
from scipy import stats

from dlpipe.report.trust import experiment_verdict

METRICS = pd.DataFrame({"learner": ["cnn", "kmer"], "metric": ["auroc", "auroc"]})


def _board(best: float, second: float, folds: int = 4) -> pd.DataFrame:
    return pd.DataFrame({
        "group": "group 1: crp", "rank": [1, 2], "experiment": "crp", "learner": ["cnn", "kmer"],
        "metric": "auroc", "mean": [best, second], "sd": 0.02, "folds": folds,
    })  # fmt: skip


def _pairs(difference: float, t: float, p: float) -> pd.DataFrame:
    return pd.DataFrame({"group": ["group 1: crp"], "a": ["crp/cnn"], "b": ["crp/kmer"],
                         "metric": ["auroc"], "mean_difference": [difference], "t": [t],
                         "p_corrected_t": [p], "p_wilcoxon": [0.125]})  # fmt: skip


def test_a_significant_winner_is_named_with_margin_interval_and_p() -> None:
    text = experiment_verdict("crp", METRICS, _board(0.884, 0.756), _pairs(0.128, 3.596, 0.0369))
    half = stats.t.ppf(0.975, 3) * 0.128 / 3.596
    assert text == (
        "crp: cnn beats kmer (auroc 0.884 vs 0.756; difference 0.128 "
        f"[{0.128 - half:.3f}, {0.128 + half:.3f}], corrected t-test p = 0.0369 over 4 folds)."
    )


def test_no_significant_difference_is_said_as_such() -> None:
    text = experiment_verdict("crp", METRICS, _board(0.968, 0.960, 3),
                              _pairs(-0.0074, -1.26, 0.336))  # fmt: skip
    assert text.startswith("crp: no significant difference between cnn and kmer (auroc 0.968")
    assert "corrected t-test p = 0.336 over 3 folds" in text
    assert "beats" not in text


@pytest.mark.parametrize(
    ("board", "pairs", "expected"),
    [
        (None, None, "crp: cnn, kmer scored; no paired comparison was run."),
        (_board(0.9, 0.8).iloc[:1], None, "crp: cnn auroc 0.900; no other learner to compare."),
        (_board(0.9, 0.8), None, "crp: cnn leads kmer (auroc 0.900 vs 0.800); not tested."),
    ],
)
def test_missing_comparisons_are_not_dressed_up(
    board: pd.DataFrame | None, pairs: pd.DataFrame | None, expected: str
) -> None:
    assert experiment_verdict("crp", METRICS, board, pairs) == expected
