"""The graph modality through its steps: prepare, split, preprocess, train, baselines, evaluate.

Every test runs the workflow's step functions on a small planted graph (two dense communities
joined by few edges) without Snakemake: the files each step writes are the ones the next reads.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dlpipe.config import validate_config
from dlpipe.errors import ConfigError, InputError
from dlpipe.io.fitted import load_fitted
from dlpipe.link_heuristics import BASELINE_KINDS
from dlpipe.modalities import get_modality
from dlpipe.modalities.graph import LINK_BASELINES, LinkSide, fold_pairs, folds_table
from dlpipe.steps.evaluate import calibrate_step, evaluate_step
from dlpipe.steps.interpret import interpret_step
from dlpipe.steps.prepare import prepare_step
from dlpipe.steps.preprocess import preprocess_step
from dlpipe.steps.split import split_step
from dlpipe.steps.train import baseline_step, train_step

SIDES = ("train", "val", "test")


def _planted(folder: Path, n: int = 60, seed: int = 0, features: bool = False) -> dict[str, str]:
    """Two communities of ``n / 2`` nodes, dense inside (p 0.5), sparse between (p 0.02)."""
    rng = np.random.default_rng(seed)
    i, j = np.triu_indices(n, k=1)
    same = (i < n // 2) == (j < n // 2)
    keep = rng.random(len(i)) < np.where(same, 0.5, 0.02)
    names = np.array([f"P{k:03d}" for k in range(n)])
    table = pd.DataFrame({"a": names[i[keep]], "b": names[j[keep]], "score": 900})
    table.loc[::7, "score"] = 100  # below a threshold of 400
    table.to_csv(folder / "edges.tsv", sep="\t", index=False)
    files = {"edges": str(folder / "edges.tsv")}
    if features:
        nodes = pd.DataFrame({"node": names, "f1": (np.arange(n) < n // 2) * 1.0,
                              "f2": rng.normal(size=n)})  # fmt: skip
        nodes.to_csv(folder / "nodes.csv", index=False)
        files["nodes"] = str(folder / "nodes.csv")
    return files


def _config(files: dict[str, str], plan: str = "edge_kfold", **data: Any) -> dict[str, Any]:
    exp = {
        "task": "link_prediction",
        "seed": 0,
        "data": {"modality": "graph", "path": files["edges"], "node_a_column": "a",
                 "node_b_column": "b", "score_column": "score", "min_score": 400, **data},
        "model": {"name": "gnn", "hidden_layers": [16], "embedding_size": 8, "dropout": 0.0},
        "training": {"max_epochs": 60, "patience": 20, "learning_rate": 0.02, "device": "cpu",
                     "progress_bar": False},
        "cv": {"plan": plan, "n_splits": 3, "val_fraction": 0.2},
        "interpret": {"top_pairs": 10},
    }  # fmt: skip
    config = {"experiments": {"g": exp}}
    validate_config(config)
    return config["experiments"]["g"]


def _run(exp: dict[str, Any], root: Path, folds: int = 3, interpret: bool = False) -> Path:
    """Run every step of an experiment into ``root``; return its results folder."""
    res = root / "results" / "g"
    res.mkdir(parents=True, exist_ok=True)
    ds, meta = str(res / "dataset.parquet"), str(res / "dataset.json")
    prepare_step("g", exp, ds, meta, str(res / "provenance.json"), str(root))
    split_step(exp, ds, meta, str(res / "folds.tsv"))
    for fold in range(folds):
        f = res / str(fold)
        f.mkdir(exist_ok=True)
        out = {side: str(f / f"{side}.npz") for side in SIDES}
        out |= {
            "preprocessor": str(f / "preprocessor.skops"),
            "summary": str(f / "preprocess.json"),
        }
        preprocess_step(exp, fold, ds, meta, str(res / "folds.tsv"), out)
        pre = out["preprocessor"]
        train_step(exp, out["train"], out["val"], pre, meta, str(f / "model.ckpt"),
                   str(f / "history.tsv"))  # fmt: skip
        baseline_step(exp, out["train"], pre, meta, str(f / "baselines.skops"))
        calibrate_step(exp, fold, out["val"], str(f / "model.ckpt"), str(f / "baselines.skops"),
                       pre, meta, str(f / "calibration.json"))  # fmt: skip
        evaluate_step(exp, fold, out["test"], str(f / "model.ckpt"), str(f / "baselines.skops"),
                      pre, meta, str(f / "predictions.tsv"), str(f / "metrics.json"))  # fmt: skip
    if interpret:
        interpret_step(
            exp, ds, meta, str(res / "folds.tsv"),
            [str(res / str(k) / "predictions.tsv") for k in range(folds)],
            [str(res / str(k) / "model.ckpt") for k in range(folds)],
            [str(res / str(k) / "preprocessor.skops") for k in range(folds)],
            str(res / "interpret"),
        )  # fmt: skip
    return res


@pytest.fixture(scope="module")
def edge_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    root = tmp_path_factory.mktemp("edge")
    exp = _config(_planted(root))
    return exp, _run(exp, root, interpret=True)


def _pairs(path: Path) -> set[tuple[int, int]]:
    side = LinkSide.load(path)
    return set(map(tuple, side.pairs[side.y == 1].tolist()))


def test_no_test_or_validation_edge_is_in_any_folds_message_passing_graph(edge_run) -> None:
    _, res = edge_run
    tested = set()
    for fold in range(3):
        graph = set(map(tuple, load_fitted(res / str(fold) / "preprocessor.skops")
                        ["message_passing"].tolist()))  # fmt: skip
        test, val = _pairs(res / str(fold) / "test.npz"), _pairs(res / str(fold) / "val.npz")
        assert graph == _pairs(res / str(fold) / "train.npz")
        assert not graph & test
        assert not graph & val
        assert not val & test
        tested |= test
    kept = pd.read_parquet(res / "dataset.parquet")
    assert len(tested) == len(kept)  # edge k-fold tests every edge once


def test_the_gnn_and_the_heuristics_find_the_planted_communities(edge_run) -> None:
    _, res = edge_run
    oof = pd.concat([pd.read_csv(res / str(k) / "predictions.tsv", sep="\t") for k in range(3)])
    # The deep model first, then the baselines (dataset.json keeps them sorted by name).
    assert list(dict.fromkeys(oof["learner"])) == ["gnn", *sorted(LINK_BASELINES)]
    assert set(oof["y_true"]) == {"edge", "non_edge"}
    assert {"score", "unseen", "min_degree", "max_degree"} <= set(oof.columns)
    auroc = pd.DataFrame(
        [pd.read_json(res / str(k) / "metrics.json").loc["auroc"] for k in range(3)]
    ).mean()
    # Half the sampled non-edges lie inside a community (p 0.5): about 0.8 is the ceiling.
    assert auroc["gnn"] > 0.72
    assert auroc["common_neighbours"] > 0.65
    assert auroc["preferential_attachment"] < 0.6  # degrees alike in both communities
    calibration = pd.read_json(res / "0" / "calibration.json", typ="series")
    assert not calibration["enabled"]  # sampled negatives: scores rank, they are not calibrated


def test_reruns_give_identical_files(edge_run, tmp_path: Path) -> None:
    exp, res = edge_run
    again = _run(exp, tmp_path, folds=1)
    for name in ("folds.tsv", "0/train.npz", "0/test.npz", "0/predictions.tsv", "0/history.tsv"):
        assert (again / name).read_bytes() == (res / name).read_bytes(), name


def test_interpretation_ranks_novel_pairs_that_are_not_edges(edge_run) -> None:
    _, res = edge_run
    folder = res / "interpret"
    novel = pd.read_csv(folder / "novel_pairs.tsv", sep="\t")
    edges = pd.read_parquet(res / "dataset.parquet")
    known = set(zip(edges["node_a"], edges["node_b"], strict=True))
    assert len(novel) == 10
    assert not known & set(zip(novel["node_a"], novel["node_b"], strict=True))
    assert (novel["node_a"] < novel["node_b"]).all()
    assert novel["logit_mean"].is_monotonic_decreasing
    assert (novel["models"] >= 1).all()
    # Two communities: the top pairs lie inside one.
    same = (novel["node_a"] < "P030") == (novel["node_b"] < "P030")
    assert same.mean() >= 0.8
    by_degree = pd.read_csv(folder / "by_degree.tsv", sep="\t")
    assert set(by_degree["learner"]) == {"gnn", *LINK_BASELINES}
    assert (folder / "embedding.png").is_file()
    assert not (folder / "by_unseen.tsv").exists()


def test_cold_start_holds_out_whole_nodes_and_counts_unseen_ends(tmp_path: Path) -> None:
    exp = _config(_planted(tmp_path, n=60, features=True), plan="cold_start_kfold",
                  node_features=str(tmp_path / "nodes.csv"))  # fmt: skip
    res = _run(exp, tmp_path, folds=1)
    graph = load_fitted(res / "0" / "preprocessor.skops")
    assert graph["x"].shape == (60, 2)
    test = LinkSide.load(res / "0" / "test.npz")
    trained = set(np.unique(graph["message_passing"]).tolist())
    unseen = np.array([sum(int(v) not in trained for v in pair) for pair in test.pairs])
    assert (test.unseen >= 1).all()
    # Every end a training edge never touched is counted as unseen, and only those.
    assert (unseen[test.unseen == 2] == 2).all()
    predictions = pd.read_csv(res / "0" / "predictions.tsv", sep="\t")
    assert set(predictions["unseen"]) <= {1, 2}


def test_the_fold_table_round_trips_the_link_folds() -> None:
    from dlpipe.edge_split import link_folds

    rng = np.random.default_rng(3)
    i, j = np.triu_indices(60, k=1)
    keep = rng.random(len(i)) < 0.1
    edges = np.stack([i[keep], j[keep]], axis=1)
    nodes = np.array([f"n{k}" for k in range(60)])
    folds = link_folds(edges, 60, "cold_start_kfold", 3, seed=0)
    table = folds_table(folds, nodes)
    for fold in folds:
        sides = fold_pairs(table, fold.fold, nodes)
        for side in SIDES:
            pairs, labels = fold.pairs(side)
            assert np.array_equal(sides[side].pairs, pairs)
            assert np.array_equal(sides[side].y, labels)
        assert np.array_equal(sides["test"].unseen, fold.unseen())


def test_the_config_names_every_heuristic_and_hits_at_k_once() -> None:
    from dlpipe.link_metrics import HITS_AT
    from dlpipe.metrics import LINK_HITS_AT

    assert LINK_BASELINES == BASELINE_KINDS
    assert HITS_AT == LINK_HITS_AT


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"task": "classification"}, "set task: link_prediction"),
        ({"cv": {"plan": "stratified_kfold"}}, "use edge_kfold or cold_start_kfold"),
        ({"data": {"score_column": None}}, "needs data.score_column"),
        ({"data": {"path": None}}, "needs an edge list"),
        ({"data": {"label_column": "x"}}, "graph experiments do not read it"),
        ({"model": {"name": "mlp"}}, "reads features, but this experiment's data are graph"),
    ],
)
def test_bad_graph_configs_are_refused(tmp_path: Path, change: dict, message: str) -> None:
    files = _planted(tmp_path)
    exp = {
        "task": "link_prediction",
        "data": {"modality": "graph", "path": files["edges"], "node_a_column": "a",
                 "node_b_column": "b", "score_column": "score", "min_score": 400},
        "cv": {"plan": "edge_kfold"},
    }  # fmt: skip
    for key, value in change.items():
        exp[key] = {**exp.get(key, {}), **value} if isinstance(value, dict) else value
    with pytest.raises(ConfigError, match=message):
        validate_config({"experiments": {"g": exp}})


def test_a_prediction_job_of_a_graph_is_refused(tmp_path: Path) -> None:
    exp = _config(_planted(tmp_path))
    config = {"experiments": {"g": copy.deepcopy(exp)},
              "predict": {"new": {"experiment": "g", "table": files_table(tmp_path)}}}  # fmt: skip
    with pytest.raises(ConfigError, match="take no prediction job"):
        validate_config(config)


def files_table(folder: Path) -> str:
    (folder / "new.csv").write_text("a,b\nP1,P2\n")
    return str(folder / "new.csv")


def test_bad_graph_inputs_stop_at_prepare_naming_the_file(tmp_path: Path) -> None:
    files = _planted(tmp_path, features=True)
    modality = get_modality("graph")
    nodes = pd.read_csv(files["nodes"]).iloc[1:]  # P000 has no row
    nodes.to_csv(tmp_path / "short.csv", index=False)
    exp = _config(files, node_features=str(tmp_path / "short.csv"))
    with pytest.raises(InputError, match=r"short\.csv: 1 node\(s\) of the graph have no row"):
        modality.describe_data("g", exp)
    exp = _config(files)
    exp["data"]["min_score"] = 10_000  # nothing left
    with pytest.raises(InputError, match=r"edges\.tsv"):
        modality.describe_data("g", exp)
    table = pd.read_csv(files["edges"], sep="\t")
    table["score"] = table["score"].astype(object)
    table.loc[3, "score"] = "high"
    table.to_csv(tmp_path / "text.tsv", sep="\t", index=False)
    exp = _config({"edges": str(tmp_path / "text.tsv")})
    with pytest.raises(InputError, match=r"text\.tsv.*line 5"):
        modality.describe_data("g", exp)
    exp = _config(files, plan="cold_start_kfold")
    exp["cv"]["n_splits"] = 30  # more folds than a sparse planted graph can fill
    with pytest.raises(InputError, match=r"experiments\.g: "):
        modality.describe_data("g", exp)


def test_a_graph_results_folder_is_not_predicted_from(edge_run) -> None:
    from dlpipe.learners import FoldModels

    _, res = edge_run
    (res / "config.yaml").write_text("{}\n")
    with pytest.raises(InputError, match="score pairs of its own graph"):
        FoldModels.from_results(res)


def test_protein_sequences_become_node_features_by_composition(tmp_path: Path) -> None:
    from dlpipe.modalities.graph import protein_features

    files = _planted(tmp_path)
    nodes = sorted(set(pd.read_csv(files["edges"], sep="\t")[["a", "b"]].to_numpy().ravel()))
    # Two communities, two kinds of protein: basic and acidic residues.
    rng = np.random.default_rng(1)
    records = []
    for node in nodes:
        kind = "KRHAG" if node < "P030" else "DEQNS"
        seq = "".join(rng.choice(list(kind), 80)) + "X"
        records.append(f">{node} some description\n{seq}\n")
    (tmp_path / "proteins.faa").write_text("".join(records))
    x, names = protein_features(tmp_path / "proteins.faa", np.array(nodes))
    assert x.shape == (len(nodes), 420)
    assert names[:2] == ["aa_A", "aa_C"]
    assert np.allclose(x[:, :20].sum(axis=1), 1)  # X left out of the composition
    assert x[0, names.index("aa_K")] > x[-1, names.index("aa_K")]
    exp = _config(files, plan="cold_start_kfold", node_features=str(tmp_path / "proteins.faa"))
    res = _run(exp, tmp_path, folds=1)
    assert load_fitted(res / "0" / "preprocessor.skops")["x"].shape == (len(nodes), 420)
    # A protein unseen in training is scored from its sequence: the communities show.
    auroc = pd.read_json(res / "0" / "metrics.json").loc["auroc", "gnn"]
    assert auroc > 0.6
    (tmp_path / "short.faa").write_text("".join(records[1:]))
    with pytest.raises(InputError, match=r"short\.faa: 1 node\(s\) of the graph have no sequence"):
        protein_features(tmp_path / "short.faa", np.array(nodes))


def test_node_ids_that_look_like_numbers_or_hold_a_pipe(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    i, j = np.triu_indices(40, k=1)
    keep = rng.random(len(i)) < 0.3
    names = np.array([f"{k:04d}" for k in range(39)] + ["NA"])  # 0001 stays text; NA is an id
    pd.DataFrame({"a": names[i[keep]], "b": names[j[keep]], "score": 900}).to_csv(
        tmp_path / "edges.tsv", sep="\t", index=False
    )
    exp = _config({"edges": str(tmp_path / "edges.tsv")})
    res = _run(exp, tmp_path, folds=1)
    nodes = json.loads((res / "dataset.json").read_text())["nodes"]
    assert "0001" in nodes
    assert "NA" in nodes
    assert len(LinkSide.load(res / "0" / "test.npz").ids) > 0
    names[3] = "A|B"
    pd.DataFrame({"a": names[i[keep]], "b": names[j[keep]], "score": 900}).to_csv(
        tmp_path / "piped.tsv", sep="\t", index=False
    )
    with pytest.raises(InputError, match="holds '\\|'"):
        get_modality("graph").describe_data("g", _config({"edges": str(tmp_path / "piped.tsv")}))


def test_bad_protein_records_are_named(tmp_path: Path) -> None:
    from dlpipe.modalities.graph import protein_features

    nodes = np.array(["p1", "p2"])
    (tmp_path / "gap.faa").write_text(">p1\nMKV-LL\n>p2\nMKKL\n")
    with pytest.raises(InputError, match=r"gap\.faa: protein 'p1'"):
        protein_features(tmp_path / "gap.faa", nodes)
    (tmp_path / "one.faa").write_text(">p1\nM\n>p2\nMKKL\n")
    with pytest.raises(InputError, match=r"one\.faa: protein 'p1' has 1 residue"):
        protein_features(tmp_path / "one.faa", nodes)
