"""Graphs: an edge list (and node features) → which missing edges exist (link prediction).

The prepare step reads the edge list (:func:`dlpipe.io.edges.read_edges`: undirected, self
edges and duplicates dropped and counted, an optional score threshold) and checks the node
feature table against it. The split step builds the folds of a link plan
(:mod:`dlpipe.edge_split`): every node pair of every side of every fold, edges and the non-edges
drawn for that fold, with how many of its ends a cold-start fold holds out. Per fold, the only
things "fitted" on the training side are the graph the models propagate over (the training
edges, never a validation or test edge) and the standardisation of node features (on nodes
with a training edge).

The deep model is a graph autoencoder (:class:`dlpipe.models.gnn.LinkGNN`: GCN, GraphSAGE or
GAT layers, an inner-product decoder; a learned embedding per node when no features are given),
trained on the whole graph at once with early stopping on validation auPRC
(:mod:`dlpipe.link_train`). Beside it, in the same folds and on the same training graph:
common neighbours, Adamic–Adar, preferential attachment and a logistic regression on the three
(:mod:`dlpipe.link_heuristics`). The interpret step adds what topology arithmetic cannot show
by one number: metrics by the degree of a pair's proteins (and by unseen ends for cold start),
the top novel pairs of the fold ensemble, and a UMAP of the node embeddings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from dlpipe import extras
from dlpipe.alphabet import LETTERS
from dlpipe.datasets import GraphDataset, pair_ids
from dlpipe.errors import ConfigError, InputError
from dlpipe.io.edges import read_edges, read_node_features
from dlpipe.io.files import sha256
from dlpipe.io.fitted import load_fitted
from dlpipe.modalities.base import Modality
from dlpipe.tasks import Task, get_task

#: The baselines of a graph, in the order of the tables (:data:`dlpipe.link_heuristics.
#: BASELINE_KINDS`, named here without importing scipy when a config is checked).
LINK_BASELINES = (
    "common_neighbours",
    "adamic_adar",
    "preferential_attachment",
    "heuristic_regression",
)
#: Columns of a link plan's fold table besides ``fold``, ``id`` and ``set``.
PAIR_COLUMNS = ("node_a", "node_b", "label", "unseen")
#: File names read as a FASTA of protein sequences when they give ``data.node_features``.
FASTA_SUFFIXES = (".fa", ".fasta", ".faa", ".fa.gz", ".fasta.gz", ".faa.gz")
#: k-mer lengths of the protein composition of a node: amino acids and dipeptides (420 values).
PROTEIN_KS = (1, 2)


def is_fasta(path: str | Path) -> bool:
    """Whether node features given as ``path`` are protein sequences (by the file name)."""
    return str(path).lower().endswith(FASTA_SUFFIXES)


def protein_features(path: str | Path, nodes: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Encode each node's protein sequence as its amino-acid and dipeptide composition.

    The record's name (the header up to the first space) is the node id. The composition is
    that of dlpipe's protein k-mer baseline (:func:`dlpipe.kmers.composition`, X and other
    unknown letters left out), a fixed-length description of a sequence of any length.

    Raises
    ------
    InputError
        For a FASTA that cannot be read, a node named by two records, or graph nodes without a
        record, naming the file.
    """
    from dlpipe.alphabet import encode  # lazy: numba, compiled on first use
    from dlpipe.io.fasta import read_fasta_records  # lazy: pysam (dlpipe[sequence])
    from dlpipe.kmers import composition  # lazy: scikit-learn, 0.7 s

    records = read_fasta_records(path, "data.node_features")
    ids = pd.Index([header.split()[0] for header, _ in records])
    if ids.has_duplicates:
        twice = ids[ids.duplicated()][0]
        raise InputError(f"{path}: protein {twice!r} has two records; give each node one sequence")
    rows = ids.get_indexer([str(n) for n in nodes])
    if (rows < 0).any():
        absent = [str(n) for n, r in zip(nodes, rows, strict=True) if r < 0]
        raise InputError(
            f"{path}: {len(absent)} node(s) of the graph have no sequence, e.g. "
            f"{', '.join(map(repr, absent[:3]))}; add their records (named by node id), or "
            "remove their edges"
        )
    letters = LETTERS["protein"]
    encoded = []
    for r in rows:
        header, sequence = records[r]
        name = header.split()[0]
        if len(sequence) < max(PROTEIN_KS):
            raise InputError(
                f"{path}: protein {name!r} has {len(sequence)} residue(s); a composition of "
                f"dipeptides needs at least {max(PROTEIN_KS)}"
            )
        try:
            encoded.append(encode(sequence.upper(), "protein"))
        except InputError as err:
            raise InputError(f"{path}: protein {name!r}: {err}") from None
    matrix = np.stack([composition(codes[None, :], PROTEIN_KS, 20)[0] for codes in encoded]).astype(
        np.float32
    )
    names = [f"aa_{a}" for a in letters] + [f"dipeptide_{a}{b}" for a in letters for b in letters]
    return matrix, names


def node_features(
    path: str | Path, nodes: np.ndarray, id_column: str
) -> tuple[np.ndarray, list[str]]:
    """Read node features: a table keyed by node id, or a FASTA of the nodes' proteins."""
    if is_fasta(path):
        return protein_features(path, nodes)
    return read_node_features(path, nodes, id_column)


@dataclass
class LinkSide:
    """One side of a link-prediction fold: node pairs, their labels, their unseen ends.

    ``X`` is ``pairs`` so that code reading a side's rows (``len``, ids) sees the pairs.
    """

    ids: np.ndarray
    pairs: np.ndarray
    y: np.ndarray
    unseen: np.ndarray

    @property
    def X(self) -> np.ndarray:  # noqa: N802 - a side's model input, as FoldArrays.X
        """The ``(n, 2)`` node-index pairs."""
        return self.pairs

    def save(self, path: str | Path) -> None:
        """Write the side as ``.npz`` (the same bytes on every run)."""
        np.savez_compressed(
            path, ids=self.ids.astype(str), pairs=self.pairs, y=self.y, unseen=self.unseen
        )

    @classmethod
    def load(cls, path: str | Path) -> LinkSide:
        """Read a side written by :meth:`save`."""
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls(data["ids"], data["pairs"], data["y"], data["unseen"])
        except (OSError, KeyError, ValueError) as err:
            raise InputError(
                f"{path}: not a side of a link-prediction fold ({err}); rerun the preprocess "
                "step to write it again"
            ) from None


def folds_table(folds: list[Any], nodes: np.ndarray) -> pd.DataFrame:
    """Tabulate link folds: one row per pair per fold (``fold``, ``id``, ``set``, pair columns)."""
    frames = []
    for fold in folds:
        for side in ("train", "val", "test"):
            pairs, labels = fold.pairs(side)
            unseen = fold.unseen() if side == "test" else np.zeros(len(pairs), np.int8)
            frames.append(
                pd.DataFrame(
                    {
                        "fold": fold.fold,
                        "id": pair_ids(nodes, pairs),
                        "set": side,
                        "node_a": np.asarray(nodes, dtype=object)[pairs[:, 0]],
                        "node_b": np.asarray(nodes, dtype=object)[pairs[:, 1]],
                        "label": labels.astype(np.int8),
                        "unseen": unseen,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def fold_pairs(folds: pd.DataFrame, fold: int, nodes: np.ndarray) -> dict[str, LinkSide]:
    """Read the three sides of one fold from the split step's table.

    Raises
    ------
    InputError
        If the fold is absent, the table is not a link plan's, or it names unknown nodes.
    """
    missing = [c for c in PAIR_COLUMNS if c not in folds.columns]
    if missing:
        raise InputError(
            f"the fold table has no {', '.join(missing)} column: it is not a link plan's; rerun "
            "the split step"
        )
    table = folds[folds["fold"] == fold]
    if table.empty:
        raise InputError(f"fold {fold} is not in the fold table")
    index = pd.Index(np.asarray(nodes, dtype=str))
    sides = {}
    for side in ("train", "val", "test"):
        rows = table[table["set"] == side]
        pairs = (
            np.stack(
                [
                    index.get_indexer(rows["node_a"].astype(str)),
                    index.get_indexer(rows["node_b"].astype(str)),
                ],
                axis=1,
            )
            .astype(np.int64)
            .reshape(-1, 2)
        )
        if (pairs < 0).any():
            raise InputError(
                f"fold {fold}: the fold table names nodes the dataset does not hold; rerun the "
                "split step"
            )
        sides[side] = LinkSide(
            rows["id"].to_numpy(dtype=str),
            pairs,
            rows["label"].to_numpy(dtype=np.int8),
            rows["unseen"].to_numpy(dtype=np.int8),
        )
    return sides


def standardise_nodes(
    x: np.ndarray | None, fit_nodes: np.ndarray
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Standardise node features with the mean and scale of ``fit_nodes`` (training nodes)."""
    if x is None:
        return None, {}
    fit = x[np.asarray(fit_nodes, dtype=np.int64)]
    mean = fit.mean(axis=0)
    scale = fit.std(axis=0)
    scale[scale == 0] = 1.0  # a constant feature stays 0, not NaN
    return ((x - mean) / scale).astype(np.float32), {"mean": mean, "scale": scale}


def link_device(setting: str) -> str:
    """Return the torch device of ``training.device`` (``auto``: a visible GPU, else the CPU).

    Raises
    ------
    InputError
        For ``gpu`` without a visible GPU.
    """
    import torch  # lazy: 1.2 s

    if setting == "cpu":
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    if setting == "gpu":
        raise InputError(
            "training.device is gpu but this job sees no GPU; ask the scheduler for one "
            "(resources.gpu) or set training.device: auto"
        )
    return "cpu"


class GraphModality(Modality):
    """An undirected network whose missing edges a GNN and neighbourhood heuristics predict."""

    name = "graph"
    inputs = "graph"
    default_model = "gnn"
    file_keys = ("path", "node_features")
    interpretation = "graph"
    prediction_inputs: ClassVar[tuple[str, ...]] = ()
    prediction_inputs_text = "nothing: the report lists the top novel pairs the fold models predict"
    interpret_reads_predictions = True
    scores_learners = True
    baseline_kinds = LINK_BASELINES
    fitted_sentence = (
        "Everything fitted (the graph propagated over, node-feature scaling, the GNN's weights, "
        "the heuristic regression, early stopping) saw the training side of its fold only; "
        "each test fold was scored once."
    )

    # --- configuration ----------------------------------------------------------------------

    def task(self, exp: Mapping[str, Any]) -> Task:
        """Link prediction, whatever else ``task`` names (:meth:`check_config` refuses it)."""
        return get_task("link_prediction")

    def check_config(self, key: str, exp: Mapping[str, Any]) -> None:
        """Require an edge list, link prediction (its task checks the plan), a score column."""
        data = exp["data"]
        if not data["path"]:
            raise ConfigError(
                f"config key {key}.data.path: a graph experiment needs an edge list (a table "
                "with one edge per row)"
            )
        if exp["task"] != "link_prediction":
            raise ConfigError(
                f"config key {key}.task: graph experiments predict links; set task: link_prediction"
            )
        training = exp["training"]
        for setting, allowed, why in (
            ("optimizer", "adam", "the GNN trains with Adam"),
            ("devices", 1, "the GNN trains on one device (the whole graph at once)"),
            ("precision", "32-true", "the GNN trains in 32-bit floats"),
        ):
            if training[setting] != allowed:
                raise ConfigError(
                    f"config key {key}.training.{setting}: {why}; set it to {allowed} or remove it"
                )
        if data["node_features"] and is_fasta(data["node_features"]):
            extras.require("sequence", f"{key}.data.node_features", "protein sequences")
        if data["min_score"] is not None and not data["score_column"]:
            raise ConfigError(
                f"config key {key}.data.min_score: a score threshold needs data.score_column, "
                "the column that holds the scores"
            )

    def check_prediction_job(self, key: str, job: Mapping[str, Any], given: str) -> None:
        """Refuse prediction jobs: new pairs are scored by the report's novel-pair table."""
        raise ConfigError(
            f"config key {key}: graph experiments take no prediction job; the report lists the "
            "top novel pairs of the fold models (interpret.enabled)"
        )

    # --- data -------------------------------------------------------------------------------

    def _read(self, exp: Mapping[str, Any]) -> tuple[Any, np.ndarray | None, list[str]]:
        data = exp["data"]
        graph = read_edges(
            data["path"],
            data["node_a_column"],
            data["node_b_column"],
            data["score_column"],
            data["min_score"],
        )
        piped = [str(n) for n in graph.nodes if "|" in str(n)]
        if piped:
            raise InputError(
                f"{data['path']}: node id {piped[0]!r} holds '|', which dlpipe uses to join the "
                f"two node ids of a pair ({len(piped)} such ids); rename those nodes"
            )
        if not data["node_features"]:
            return graph, None, []
        x, names = node_features(data["node_features"], graph.nodes, data["node_id_column"])
        return graph, x, names

    def prepare(
        self, name: str, exp: Mapping[str, Any], folder: Path, integrated: str | None = None
    ) -> tuple[GraphDataset, dict[str, Any]]:
        """Read and check the edge list and node features; check the folds can be made."""
        data = exp["data"]
        graph, _, names = self._read(exp)
        checksums = {data["path"]: sha256(data["path"])}
        meta: dict[str, Any] = {
            "source": data["path"],
            "sha256": checksums[data["path"]],
            "n_samples": graph.n_edges,
            "n_nodes": graph.n_nodes,
            "n_edges": graph.n_edges,
            "reading": dict(graph.summary),
            "score_column": data["score_column"],
            "min_score": data["min_score"],
            "node_features": data["node_features"],
            "node_id_column": data["node_id_column"],
            "n_features": len(names),
            "feature_names": names,
        }
        if data["node_features"]:
            checksums[data["node_features"]] = sha256(data["node_features"])
            meta["node_features_sha256"] = checksums[data["node_features"]]
        degree = np.bincount(graph.edges.ravel(), minlength=graph.n_nodes)
        meta["degree"] = {
            "median": float(np.median(degree)),
            "max": int(degree.max()),
            "mean": float(degree.mean()),
        }
        dataset = GraphDataset(graph.nodes, graph.edges, graph.weight, meta)
        self.check_split(name, dataset, exp)
        return dataset, checksums

    def describe_data(self, name: str, exp: Mapping[str, Any]) -> str:
        """Read the graph as the prepare step does, check the folds; count nodes and edges."""
        graph, _, names = self._read(exp)
        dataset = GraphDataset(graph.nodes, graph.edges, graph.weight, {})
        self.check_split(name, dataset, exp)
        features = f", {len(names)} node features" if names else ""
        return f"{name}: {graph.n_edges} edges over {graph.n_nodes} nodes{features}"

    def folds(self, data: Any, exp: Mapping[str, Any]) -> pd.DataFrame:
        """Every pair of every side of every fold of the link plan (edges and drawn non-edges)."""
        from dlpipe.edge_split import link_folds  # lazy: the Snakefile imports modalities

        cv = exp["cv"]
        folds = link_folds(
            data.edges,
            data.n_nodes,
            cv["plan"],
            int(cv["n_splits"]),
            int(exp["seed"]),
            float(cv["val_fraction"]),
            int(cv["negative_ratio"]),
        )
        return folds_table(folds, data.nodes)

    def fold_sides(
        self, data: Any, folds: pd.DataFrame, fold: int, exp: Mapping[str, Any]
    ) -> tuple[dict[str, Any], Any, dict[str, Any]]:
        """Fix the fold's message-passing graph (its training edges) and scale node features.

        Reads only the dataset and the fold table: the preprocess job gets no ``data`` or
        ``cv`` settings (their effects are in those files).
        """
        sides = fold_pairs(folds, fold, data.nodes)
        train = sides["train"]
        message_passing = train.pairs[train.y == 1]
        touched = np.unique(message_passing.ravel())
        x = None
        if data.meta.get("node_features"):
            path = data.meta["node_features"]
            if sha256(path) != data.meta["node_features_sha256"]:
                raise InputError(
                    f"{path}: changed since the prepare step read it; rerun the workflow so "
                    "that every step reads the same node features"
                )
            x, _ = node_features(path, data.nodes, data.meta["node_id_column"])
        x, scaling = standardise_nodes(x, touched)
        fitted = {
            "message_passing": message_passing,
            "n_nodes": int(data.n_nodes),
            "x": x,
            "feature_names": list(data.meta.get("feature_names", [])),
            **{f"feature_{k}": v for k, v in scaling.items()},
        }
        test = sides["test"]
        summary = {
            "fold": fold,
            "n_train": len(train.ids),
            "n_val": len(sides["val"].ids),
            "n_test": len(test.ids),
            "n_model_features": len(fitted["feature_names"]),
            "train_class_counts": {
                "edge": int((train.y == 1).sum()),
                "non_edge": int((train.y == 0).sum()),
            },
            "message_passing_edges": len(message_passing),
            "nodes_without_training_edge": int(data.n_nodes - len(touched)),
            "test_edges": int((test.y == 1).sum()),
            "test_pairs_one_unseen": int((test.unseen == 1).sum()),
            "test_pairs_two_unseen": int((test.unseen == 2).sum()),
        }
        return sides, fitted, summary

    def preprocess_inputs(self, name: str, exp: Mapping[str, Any]) -> dict[str, str]:
        """Name the node features, which each fold's preprocess job reads and standardises."""
        path = exp["data"]["node_features"]
        return {"node_features": path} if path else {}

    def load_side(self, path: str) -> LinkSide:
        """Read one side of a link-prediction fold."""
        return LinkSide.load(path)

    # --- learners ---------------------------------------------------------------------------

    def auto_baselines(self, exp: Mapping[str, Any], facts: Mapping[str, Any] | None) -> list[str]:
        """Every heuristic and the regression on them."""
        return list(LINK_BASELINES)

    def baseline_name(self, exp: Mapping[str, Any], task: Task, kind: str = "linear") -> str:
        """Name a heuristic as itself."""
        return kind

    def train_fold(
        self,
        exp: Mapping[str, Any],
        info: Mapping[str, Any],
        train: str,
        val: str,
        preprocessor: str,
        checkpoint: str,
        history: str,
        threads: int = 1,
        state_dir: str | None = None,
    ) -> None:
        """Train the GNN on the fold's graph; keep the epoch with the best validation auPRC."""
        import torch  # lazy: 1.2 s

        from dlpipe.link_train import fit_link_model  # lazy: PyTorch Geometric, 2 s
        from dlpipe.models import build_model

        torch.set_num_threads(max(1, threads))
        fitted = load_fitted(preprocessor)
        tr, va = LinkSide.load(train), LinkSide.load(val)
        n_nodes, x = int(fitted["n_nodes"]), fitted["x"]
        n_inputs = 0 if x is None else int(x.shape[1])
        config = {**exp["model"], "n_nodes": n_nodes}
        seed = int(exp["seed"])
        torch.manual_seed(seed)
        model = build_model(config, n_inputs, 1)
        training = exp["training"]
        model, rows = fit_link_model(
            model,
            x,
            fitted["message_passing"],
            tr.pairs,
            tr.y,
            va.pairs,
            va.y,
            epochs=int(training["max_epochs"]),
            learning_rate=float(training["learning_rate"]),
            weight_decay=float(training["weight_decay"]),
            patience=int(training["patience"]),
            seed=seed,
            device=link_device(training["device"]),
        )
        state = {
            "hyper_parameters": {"model_config": config, "n_inputs": n_inputs, "n_outputs": 1},
            "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
        }
        torch.save(state, checkpoint)
        table = pd.DataFrame(rows).rename(columns={"loss": "train_loss"})
        table.to_csv(history, sep="\t", index=False, float_format="%.6g")

    def fit_baselines(
        self, exp: Mapping[str, Any], info: Mapping[str, Any], train: str, preprocessor: str
    ) -> dict[str, Any]:
        """Fit the regression on the heuristics of the training pairs; heuristics need none."""
        from dlpipe.link_heuristics import fit_link_baselines  # lazy: scikit-learn, 0.7 s

        task = get_task(info["task"])
        kinds = list(self.baselines_of(exp, task, info).values())
        fitted = load_fitted(preprocessor)
        tr = LinkSide.load(train)
        return fit_link_baselines(
            kinds,
            fitted["message_passing"],
            int(fitted["n_nodes"]),
            tr.pairs,
            tr.y,
            int(exp["seed"]),
        )

    def side_scores(
        self,
        exp: Mapping[str, Any],
        task: Task,
        info: Mapping[str, Any],
        learner: str,
        path: str,
        side: Any,
        fitted: Any,
    ) -> np.ndarray:
        """Score a side's pairs on the fold's training graph (the GNN, or a heuristic)."""
        if learner == exp["model"]["name"]:
            from dlpipe.link_train import predict_links  # lazy: PyTorch Geometric, 2 s
            from dlpipe.models.checkpoint import load_model  # lazy: torch, 1.2 s

            return predict_links(
                load_model(path), fitted["x"], fitted["message_passing"], side.pairs
            ).reshape(-1, 1)
        from dlpipe.link_heuristics import adjacency, link_baseline_scores  # lazy: sklearn, 0.7 s

        adj = adjacency(fitted["message_passing"], int(fitted["n_nodes"]))
        return link_baseline_scores(load_fitted(path)[learner], adj, side.pairs).reshape(-1, 1)

    def prediction_extras(self, table: pd.DataFrame, side: Any, fitted: Any) -> pd.DataFrame:
        """Add a pair's unseen ends (cold start) and its ends' degrees in the training graph."""
        degree = np.bincount(
            np.asarray(fitted["message_passing"]).ravel(), minlength=int(fitted["n_nodes"])
        )
        ends = degree[side.pairs]
        table["unseen"] = side.unseen
        table["min_degree"] = ends.min(axis=1)
        table["max_degree"] = ends.max(axis=1)
        return table

    # --- figures, interpretation, report ----------------------------------------------------

    def interpret(
        self,
        exp: Mapping[str, Any],
        task: Task,
        data: Any,
        meta: Mapping[str, Any],
        folds: Any,
        predictions: Any,
        checkpoints: Mapping[int, str],
        preprocessors: Mapping[int, str],
        out: Path,
    ) -> dict[str, Any]:
        """Metrics by degree (and unseen ends), the top novel pairs, a UMAP of the embeddings.

        Tables: ``by_degree.tsv`` and, for cold start, ``by_unseen.tsv`` (every learner, within
        folds then averaged); ``novel_pairs.tsv`` (pairs that are not edges of the input graph,
        ranked by the mean logit of the GNN fold models that saw both nodes). Figure:
        ``embedding.png`` (fold 0's embeddings of the nodes with a training edge, by UMAP,
        coloured by degree).
        """
        from dlpipe import link_interpret  # lazy: torch and PyTorch Geometric, 2 s
        from dlpipe.io.files import read_predictions
        from dlpipe.models.checkpoint import load_model  # lazy: torch, 1.2 s
        from dlpipe.plots.graph import embedding_map  # lazy: matplotlib and umap, 3 s

        oof = pd.concat([read_predictions(p) for p in predictions], ignore_index=True)
        by_degree = link_interpret.grouped_link_metrics(oof, "min_degree")
        by_degree.to_csv(out / "by_degree.tsv", sep="\t", index=False, float_format="%.6g")
        written = ["by_degree.tsv"]
        if (oof["unseen"] > 0).any():  # a cold-start plan (the job is given no cv settings)
            by_unseen = link_interpret.grouped_link_metrics(oof, "unseen")
            by_unseen.to_csv(out / "by_unseen.tsv", sep="\t", index=False, float_format="%.6g")
            written.append("by_unseen.tsv")
        embeddings, seen = [], []
        for fold in sorted(checkpoints):
            fitted = load_fitted(preprocessors[fold])
            trained = np.zeros(data.n_nodes, bool)
            trained[np.asarray(fitted["message_passing"]).ravel()] = True
            seen.append(trained)
            embeddings.append(
                link_interpret.node_embeddings(
                    load_model(checkpoints[fold]),
                    fitted["x"],
                    fitted["message_passing"],
                    int(fitted["n_nodes"]),
                )
            )
        top = int(exp["interpret"]["top_pairs"])
        novel = link_interpret.novel_pairs(embeddings, data.edges, top, seen)
        degree = np.bincount(data.edges.ravel(), minlength=data.n_nodes)
        from dlpipe.link_heuristics import adjacency, heuristic_scores  # lazy: scipy

        pairs = novel[["a", "b"]].to_numpy()
        shared = heuristic_scores(adjacency(data.edges, data.n_nodes), pairs)["common_neighbours"]
        table = pd.DataFrame(
            {
                "rank": np.arange(1, len(novel) + 1),
                "node_a": data.nodes[novel["a"]],
                "node_b": data.nodes[novel["b"]],
                "logit_mean": novel["logit"],
                "probability_mean": novel["mean"],
                "probability_sd": novel["sd"],
                "models": novel["models"],
                "degree_a": degree[novel["a"]],
                "degree_b": degree[novel["b"]],
                "common_neighbours": shared.astype(int),
            }
        )
        table.to_csv(out / "novel_pairs.tsv", sep="\t", index=False, float_format="%.6g")
        # Fold 0's nodes with a training edge: the others' embeddings the data never shaped.
        embedding_map(
            embeddings[0][seen[0]], degree[seen[0]], out / "embedding.png", int(exp["seed"])
        )
        return {
            "tables": [*written, "novel_pairs.tsv"],
            "figures": ["embedding.png"],
            "novel_pairs": len(table),
            "novel_pairs_closing_triangles": int((table["common_neighbours"] > 0).sum()),
            "fold_models": len(embeddings),
            "embedding_nodes": int(seen[0].sum()),
            "embedding_size": int(embeddings[0].shape[1]),
        }

    def data_facts(self, meta: Mapping[str, Any], exp: Mapping[str, Any]) -> list[tuple[str, Any]]:
        """Source, checksum, nodes, edges, what the reading dropped, degrees, node features."""
        m = meta["meta"]
        reading = m["reading"]
        kept = f"{m['n_edges']} undirected edges"
        if m.get("min_score") is not None:
            kept += f" with {m['score_column']} ≥ {m['min_score']:g}"
        dropped = (
            f"{reading.get('below_threshold', 0)} below the threshold, "
            f"{reading.get('self_edges', 0)} self edges, "
            f"{reading.get('duplicate_edges', 0)} duplicates (either direction)"
        )
        features = "none: the GNN learns an embedding per node from the topology alone"
        if m.get("n_features"):
            source = m["node_features"]
            if is_fasta(source):
                source = f"the amino-acid and dipeptide composition of the proteins in {source}"
            features = (
                f"{m['n_features']} per node from {source} (standardised on each fold's "
                "training nodes)"
            )
        d = m["degree"]
        return [
            ("source", m["source"]),
            ("sha256", m["sha256"][:16] + "…"),
            ("nodes", m["n_nodes"]),
            ("edges", kept),
            ("rows dropped", dropped),
            ("degree", f"median {d['median']:g}, mean {d['mean']:.1f}, max {d['max']}"),
            ("node features", features),
            ("task", "link prediction: edges against non-edges drawn per fold"),
        ]

    def preprocessing_text(self, exp: Mapping[str, Any]) -> str | None:
        """Say what each fold fixes on its training side."""
        cv = exp["cv"]
        return (
            "Per fold, the graph every learner propagates over or counts on is the fold's "
            "training edges only: no validation or test edge carries a message or adds to a "
            f"common-neighbour count. {cv['negative_ratio']} non-edge(s) per edge are drawn on "
            "every side from the non-edges of the whole graph, never one pair on two sides. "
            "Node features, if any, are standardised on the nodes with a training edge."
        )

    def optimisation_text(self, exp: Mapping[str, Any]) -> str:
        """Adam on the whole graph per step; early stopping on the validation auPRC."""
        train = exp["training"]
        return (
            f"adam lr {train['learning_rate']}, weight decay {train['weight_decay']}, the whole "
            f"graph in every step, up to {train['max_epochs']} epochs, patience "
            f"{train['patience']} on the validation auPRC"
        )

    def fitted_text(self, exp: Mapping[str, Any]) -> str:
        """Say what was fitted on each fold's training side, for the DOME summary."""
        return (
            "the message-passing graph (training edges), node-feature scaling, GNN weights and "
            "the heuristic regression: training side of each fold"
        )

    def model_inputs_text(self, meta: Mapping[str, Any], summaries: Any) -> str:
        """Say what the GNN reads."""
        n = meta["meta"].get("n_features") or 0
        inputs = f"{n} node features" if n else "a learned embedding per node"
        return f"{inputs} and the fold's training edges; scores node pairs"

    def explained_text(self) -> str:
        """How the interpretation explains the model, for the DOME summary."""
        return "; shown by degree of the pairs' nodes, top novel pairs and an embedding UMAP"


MODALITY = GraphModality()
