"""Cross-validation plans: their names, how many folds they give, what they need of the data.

Light on purpose (no scikit-learn): the Snakefile counts folds when it builds the job graph.
:mod:`dlpipe.split` assigns the samples with scikit-learn's splitters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PLANS = (
    "stratified_kfold",
    "kfold",
    "group_kfold",
    "repeated_kfold",
    "repeated_stratified_kfold",
    "leave_one_out",
    "holdout",
    "chromosome_kfold",
    "chromosome_holdout",
    "bin_kfold",
    "edge_kfold",
    "cold_start_kfold",
)
#: Plans of link prediction: they split the edges (or the nodes) of a graph, not samples.
LINK_PLANS = ("edge_kfold", "cold_start_kfold")
#: Plans whose test folds are whole groups.
GROUP_PLANS = ("group_kfold", "chromosome_kfold", "bin_kfold")
#: Plans that need genomic coordinates.
CHROMOSOME_PLANS = ("chromosome_kfold", "chromosome_holdout", "bin_kfold")
#: Plans that stratify on a class label.
STRATIFIED_PLANS = ("stratified_kfold", "repeated_stratified_kfold")

_PLAN_TEXT = {
    "stratified_kfold": "stratified {n_splits}-fold",
    "kfold": "{n_splits}-fold",
    "group_kfold": "group {n_splits}-fold",
    "repeated_kfold": "{n_splits}-fold repeated {n_repeats}×",
    "repeated_stratified_kfold": "stratified {n_splits}-fold repeated {n_repeats}×",
    "leave_one_out": "leave-one-out",
    "holdout": "hold-out test set of {test_size:.0%}",
    "chromosome_kfold": "{n_splits}-fold over chromosomes (genomic bins for a one-sequence genome)",
    "chromosome_holdout": "chromosome hold-out (validation {val_chromosomes}, test "
    "{test_chromosomes})",
    "bin_kfold": "{n_splits}-fold over genomic bins (whole bins of data.bin_size bp, "
    "windows across a bin edge kept together)",
    "edge_kfold": "{n_splits}-fold over the edges (each fold's validation and test edges "
    "removed from the graph its models propagate over)",
    "cold_start_kfold": "{n_splits}-fold over the nodes, cold start (test proteins and every "
    "edge touching them held out)",
}


def plan_text(cv: Mapping[str, Any]) -> str:
    """Describe a plan in words (``stratified 5-fold``), for the report."""
    return _PLAN_TEXT[cv["plan"]].format(**cv)


def n_folds(cv: Mapping[str, Any], n_samples: int) -> int:
    """Return the number of folds a plan yields.

    Parameters
    ----------
    cv
        The experiment's ``cv`` config.
    n_samples
        Number of samples (used by leave-one-out only).

    Returns
    -------
    int
        Number of train/test folds.
    """
    plan = cv["plan"]
    if plan in ("repeated_kfold", "repeated_stratified_kfold"):
        return int(cv["n_splits"]) * int(cv["n_repeats"])
    if plan == "leave_one_out":
        return int(n_samples)
    if plan in ("holdout", "chromosome_holdout"):
        return 1
    return int(cv["n_splits"])


def min_class_size(cv: Mapping[str, Any]) -> int:
    """Smallest class size a CV plan can stratify (each class in every test fold)."""
    plan = cv["plan"]
    if plan in STRATIFIED_PLANS:
        return int(cv["n_splits"])
    if plan == "holdout":
        return 2
    return 1
