"""Several baselines side by side: which ones ``auto`` picks, the position-aware one-hot model,
and learners at chance named beside their numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from dlpipe.alphabet import encode
from dlpipe.config import validate_config
from dlpipe.errors import ConfigError, InputError
from dlpipe.io.fitted import load_fitted, save_fitted
from dlpipe.metrics import at_chance
from dlpipe.modalities import get_modality
from dlpipe.onehot import OneHotPositions, flat_one_hot
from dlpipe.report.trust import chance_note, experiment_verdict
from dlpipe.steps.compare import chance_flag


def _exp(data: dict, baseline: dict | None = None, task: str = "classification") -> dict:
    modality = data.get("modality", "tabular")
    model = "cnn" if modality == "sequence" else "mlp"
    config = {
        "experiments": {
            "e": {
                "task": task,
                "data": data,
                "model": {"name": model},
                "baseline": baseline or {},
                "cv": {"plan": "kfold", "n_splits": 3},
            }
        }
    }
    return validate_config(config)["experiments"]["e"]


GENOME = {"modality": "sequence", "genome": "g.fa", "bed": {"site": "s.bed"},
          "sequence_length": 60}  # fmt: skip
FASTA = {"modality": "sequence", "fasta": "x.fa", "sequence_length": 60}
TABLE = {"path": "t.csv", "label_column": "y"}


def test_flat_one_hot_marks_each_position_and_leaves_unknown_empty() -> None:
    codes = encode(["ACGN", "TTTT"])
    out = flat_one_hot(codes)
    assert out.shape == (2, 16)
    np.testing.assert_array_equal(out[0].reshape(4, 4), [[1, 0, 0, 0], [0, 1, 0, 0],
                                                         [0, 0, 1, 0], [0, 0, 0, 0]])  # fmt: skip
    np.testing.assert_array_equal(out[1].reshape(4, 4)[:, 3], 1)
    assert out.sum() == 7  # N is no letter


def test_onehot_refuses_sequences_of_another_length() -> None:
    enc = OneHotPositions().fit(encode(["ACGT", "TTTT"]))
    with pytest.raises(ValueError, match="fitted on 4 positions"):
        enc.transform(encode(["ACGTA"]))


@pytest.mark.parametrize(
    ("data", "facts", "names"),
    [
        (GENOME, None, ["kmer6_logistic_regression", "onehot_logistic_regression"]),
        (FASTA, {"counts": {"sequences": 9, "cropped": 0, "padded": 0}},
         ["kmer6_logistic_regression", "onehot_logistic_regression"]),
        (FASTA, {"counts": {"sequences": 9, "cropped": 0, "padded": 2}},
         ["kmer6_logistic_regression"]),
        (FASTA, None, ["kmer6_logistic_regression"]),  # lengths unknown before prepare
        ({**FASTA, "alphabet": "protein"}, {"counts": {"sequences": 9, "cropped": 1,
                                                       "padded": 0}},
         ["kmer1_2_logistic_regression"]),
        (TABLE, None, ["logistic_regression"]),
    ],
)  # fmt: skip
def test_auto_picks_the_one_hot_model_only_for_sequences_of_one_length(
    data: dict, facts: dict | None, names: list[str]
) -> None:
    exp = _exp(data)
    modality = get_modality(exp["data"]["modality"])
    plan = modality.baseline_plan(exp, modality.task(exp), facts)
    assert list(plan) == names
    assert modality.learners(exp, modality.task(exp), {"meta": {"baselines": plan}})[1:] == names


def test_a_one_hot_baseline_asked_of_resized_sequences_is_refused() -> None:
    exp = _exp(FASTA, {"models": ["kmer", "onehot"]})
    modality = get_modality("sequence")
    facts = {"counts": {"sequences": 40, "cropped": 3, "padded": 5}}
    with pytest.raises(InputError, match=r"8 of 40 sequences were cropped or padded.*drop onehot"):
        modality.baseline_plan(exp, modality.task(exp), facts)


def test_dlpipe_check_names_the_baselines_and_refuses_a_one_hot_of_resized_sequences(
    tmp_path: Path,
) -> None:
    fasta = tmp_path / "mixed.fa"
    fasta.write_text("".join(f">s{i}|{'ab'[i % 2]}\n{'ACGT' * (10 + i % 3)}\n" for i in range(30)))
    modality = get_modality("sequence")
    line = modality.describe_data("e", _exp({**FASTA, "fasta": str(fasta)}))
    assert "; baselines kmer6_logistic_regression;" in line + ";"  # 40-48 bp: resized to 60
    with pytest.raises(InputError, match=r"mixed\.fa: baseline.models lists onehot"):
        modality.describe_data("e", _exp({**FASTA, "fasta": str(fasta)}, {"models": ["onehot"]}))


@pytest.mark.parametrize(
    ("task", "data", "names"),
    [
        ("classification", TABLE, ["logistic_regression", "random_forest"]),
        ("regression", {"path": "t.csv", "target_columns": ["t"]},
         ["ridge_regression", "random_forest"]),
    ],
)  # fmt: skip
def test_tables_take_several_baselines_each_named(task: str, data: dict, names: list) -> None:
    exp = _exp(data, {"models": ["linear", "random_forest"], "trees": 10}, task)
    modality = get_modality("tabular")
    plan = modality.baseline_plan(exp, modality.task(exp))
    assert list(plan) == names
    forest = modality.make_baseline(exp, modality.task(exp), "random_forest")
    assert (forest.n_estimators, forest.random_state) == (10, 0)
    text = modality.baseline_text(exp, "random_forest")
    assert text == "random forest (10 trees)"


def test_a_baseline_of_another_modality_is_refused_naming_the_allowed_ones() -> None:
    with pytest.raises(ConfigError, match=r"baseline.models: 'kmer' .* linear, random_forest"):
        _exp(TABLE, {"models": ["kmer"]})
    with pytest.raises(ConfigError, match=r"'random_forest' .* kmer, onehot"):
        _exp(GENOME, {"models": ["random_forest"]})


def test_the_baselines_of_a_fold_live_in_one_file_that_reloads(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), np.repeat([0, 1], 20)  # noqa: N806
    exp = _exp(TABLE, {"models": ["linear", "random_forest"], "trees": 10})
    modality = get_modality("tabular")
    task = modality.task(exp)
    models = {
        name: modality.make_baseline(exp, task, kind).fit(X, y)
        for name, kind in modality.baseline_plan(exp, task).items()
    }
    save_fitted(models, tmp_path / "baselines.skops")
    back = load_fitted(tmp_path / "baselines.skops")
    assert list(back) == ["logistic_regression", "random_forest"]
    for name, model in models.items():
        np.testing.assert_array_equal(back[name].predict_proba(X), model.predict_proba(X))


def _positional_task(
    n: int = 300, length: int = 60, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The same motif in every sequence: at position 10 in positives, 40 in negatives.

    Composition (every k-mer count) is the same in both classes; only where the motif lies
    tells them apart.
    """
    rng = np.random.default_rng(seed)
    seqs, labels = [], []
    for i in range(n):
        seq = list(rng.choice(list("ACGT"), length))
        at = 10 if i % 2 else 40
        seq[at : at + 6] = list("TGACGT")
        seqs.append("".join(seq))
        labels.append(i % 2)
    return encode(seqs), np.array(labels)


def test_the_one_hot_model_sees_a_positional_signal_the_kmer_bag_cannot() -> None:
    codes, y = _positional_task()
    exp = _exp(GENOME)
    modality = get_modality("sequence")
    task = modality.task(exp)
    folds = StratifiedKFold(3, shuffle=True, random_state=0)
    auroc = {}
    for name, kind in modality.baseline_plan(exp, task).items():
        model = modality.make_baseline(exp, task, kind)
        proba = cross_val_predict(model, codes, y, cv=folds, method="predict_proba")[:, 1]
        auroc[name] = roc_auc_score(y, proba)
    assert auroc["onehot_logistic_regression"] > 0.95
    assert auroc["kmer6_logistic_regression"] < 0.65


def _metrics(rows: list[tuple[str, float, float, float]], metric: str = "auroc") -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"learner": lrn, "metric": metric, "mean": m, "ci95_low": lo, "ci95_high": hi}
            for lrn, m, lo, hi in rows
        ]
    )


def test_chance_is_where_the_interval_reaches_it() -> None:
    assert [at_chance("auroc", v) for v in (0.49, 0.5, 0.51)] == [True, True, False]
    assert [at_chance("r2", v) for v in (-0.2, 0.05)] == [True, False]
    assert not at_chance("auprc", 0.1)  # chance depends on the prevalence
    assert not at_chance("auroc", float("nan"))
    metrics = _metrics([("cnn", 0.95, 0.92, 0.97), ("kmer6_logistic_regression", 0.52, 0.46, 0.58)])
    assert chance_flag(metrics, "kmer6_logistic_regression", "auroc")
    assert not chance_flag(metrics, "cnn", "auroc")
    assert chance_note(metrics, "kmer6_logistic_regression", "auroc") == (
        "at chance: its auroc interval [0.460, 0.580] reaches 0.5"
    )


def test_the_verdict_ranks_the_deep_model_and_names_a_baseline_at_chance() -> None:
    metrics = _metrics(
        [
            ("cnn", 0.80, 0.75, 0.85),
            ("kmer6_logistic_regression", 0.51, 0.45, 0.57),
            ("onehot_logistic_regression", 0.95, 0.93, 0.97),
        ]
    )
    board = pd.DataFrame(
        {
            "experiment": "e",
            "rank": [1, 2, 3],
            "learner": ["onehot_logistic_regression", "cnn", "kmer6_logistic_regression"],
            "metric": "auroc",
            "mean": [0.95, 0.80, 0.51],
            "folds": 5,
        }
    )
    text = experiment_verdict("e", metrics, board, None)
    assert text.startswith("e: onehot_logistic_regression leads cnn")
    assert "ranks" not in text  # the deep model is one of the two compared
    assert text.endswith(
        "kmer6_logistic_regression is at chance: its auroc interval [0.450, 0.570] reaches 0.5."
    )
    last = board.assign(learner=["onehot_logistic_regression", "kmer6_logistic_regression", "cnn"])
    text = experiment_verdict("e", metrics, last, None)
    assert "The deep model cnn ranks 3 of 3 (auroc 0.510)." in text


def test_a_random_forest_with_a_tree_pointing_outside_itself_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), np.repeat([0, 1], 20)  # noqa: N806
    exp = _exp(TABLE, {"models": ["random_forest"], "trees": 10})
    modality = get_modality("tabular")
    forest = modality.make_baseline(exp, modality.task(exp), "random_forest").fit(X, y)
    save_fitted({"random_forest": forest}, tmp_path / "good.skops")
    assert load_fitted(tmp_path / "good.skops")["random_forest"].n_estimators == 10
    tree = forest.estimators_[3].tree_
    state = tree.__getstate__()
    nodes = state["nodes"].copy()
    nodes["left_child"][0] = 10_000  # past the end of the node array
    tree.__setstate__({**state, "nodes": nodes})
    save_fitted({"random_forest": forest}, tmp_path / "bad.skops")
    with pytest.raises(InputError, match=r"bad\.skops: holds a malformed decision tree"):
        load_fitted(tmp_path / "bad.skops")
