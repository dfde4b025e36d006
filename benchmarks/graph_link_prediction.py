"""Link prediction on the shipped STRING network: folds, heuristic baselines and a GCN, timed.

Real data: ``resources/string_human_ppi.tsv.gz`` (16,876 human STRING interactions with a
combined score of at least 400 over 6,378 proteins; resources/README.md). For each plan
(``edge_kfold``: every edge tested once; ``cold_start_kfold``: whole proteins held out) the
script builds the folds, scores each fold's test pairs with common neighbours, Adamic–Adar,
preferential attachment and the logistic regression on them (fitted on the training side), and,
with ``--gnn-folds N``, trains the default GCN autoencoder on the first N folds. It prints the
time of each stage, auROC / auPRC / Hits@100 as mean ± sd over folds, and the auROC by degree
bin (edge k-fold) or by unseen endpoints (cold start), pooled over the test pairs of the folds
every method scored.

    PYTHONPATH=src .venv/bin/python benchmarks/graph_link_prediction.py --gnn-folds 1
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from dlpipe.edge_split import LINK_PLANS, LinkFold, link_folds
from dlpipe.io.edges import EdgeList, read_edges
from dlpipe.link_heuristics import heuristic_baselines
from dlpipe.link_metrics import degree_bins, link_metrics, link_metrics_by
from dlpipe.link_train import fit_link_model, predict_links
from dlpipe.models.gnn import LinkGNN

ROOT = Path(__file__).resolve().parents[1]
EDGES = ROOT / "resources" / "string_human_ppi.tsv.gz"


def gcn_scores(fold: LinkFold, seed: int, epochs: int) -> tuple[np.ndarray, float, int]:
    """Train the GCN autoencoder on a fold; return test scores, seconds and epochs run."""
    torch.manual_seed(seed)
    model = LinkGNN(
        0, 1, embedding_size=64, conv="gcn", hidden_layers=(128,), dropout=0.2, n_nodes=fold.n_nodes
    )
    start = time.perf_counter()
    model, history = fit_link_model(
        model, None, fold.message_passing, *fold.pairs("train"), *fold.pairs("val"),
        epochs=epochs, patience=20, seed=seed,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    scores = predict_links(model, None, fold.message_passing, fold.pairs("test")[0])
    return scores, seconds, len(history)


def run_plan(plan: str, graph: EdgeList, args: argparse.Namespace) -> None:
    """Build the plan's folds, score them, print the tables."""
    start = time.perf_counter()
    folds = link_folds(graph.edges, graph.n_nodes, plan, args.folds, args.seed)
    split_s = time.perf_counter() - start
    rows, pooled, heuristic_s = [], [], 0.0
    for fold in folds:
        test_pairs, labels = fold.pairs("test")
        start = time.perf_counter()
        scores = heuristic_baselines(
            fold.message_passing, fold.n_nodes, *fold.pairs("train"), test_pairs, args.seed
        )
        heuristic_s += time.perf_counter() - start
        if fold.fold < args.gnn_folds:
            scores["gcn"], seconds, epochs = gcn_scores(fold, args.seed, args.epochs)
            print(f"  {plan} fold {fold.fold}: GCN {epochs} epochs in {seconds:.1f} s")
        groups = (
            degree_bins(test_pairs, fold.message_passing, fold.n_nodes)
            if plan == "edge_kfold"
            else fold.unseen()
        )
        for method, values in scores.items():
            rows.append({"fold": fold.fold, "method": method, **link_metrics(labels, values)})
            # Groups pool the folds that every method scored (the GCN may run on fewer).
            if fold.fold < (args.gnn_folds or args.folds):
                pooled.append(
                    pd.DataFrame({"method": method, "y": labels, "s": values, "g": groups})
                )
    print(f"\n### {plan}: {args.folds} folds, seed {args.seed}")
    print(f"splits {split_s:.2f} s for all folds; heuristics + regression {heuristic_s:.2f} s\n")
    print(f"fold 0: {dict(folds[0].summary)}\n")
    table = pd.DataFrame(rows)
    summary = table.groupby("method", sort=False)[["auroc", "auprc", "hits@100"]].agg(
        lambda v: f"{v.mean():.3f} ± {v.std(ddof=1):.3f}" if len(v) > 1 else f"{v.iloc[0]:.3f}"
    )
    summary["folds"] = table.groupby("method", sort=False).size()
    print(summary.to_markdown())
    frame = pd.concat(pooled, ignore_index=True)
    name = "degree (smaller, training graph)" if plan == "edge_kfold" else "unseen endpoints"
    by = []
    for method, part in frame.groupby("method", sort=False):
        groups = link_metrics_by(part["y"], part["s"], part["g"], name=name, hits_at=())
        by.append(groups.assign(method=method))
    wide = pd.concat(by).pivot_table(index=name, columns="method", values="auroc", sort=False)
    counts = pd.concat(by).groupby(name, sort=False)[["n_pos", "n_neg"]].first()
    scored = args.gnn_folds or args.folds
    print(f"\nauROC by {name}, test pairs of the first {scored} fold(s) pooled\n")
    print(wide.join(counts).round(3).to_markdown())


def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--plans", nargs="+", default=list(LINK_PLANS), choices=LINK_PLANS)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gnn-folds", type=int, default=0, help="train the GCN on this many")
    parser.add_argument("--epochs", type=int, default=200)
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}")
    start = time.perf_counter()
    graph = read_edges(EDGES, "protein_a", "protein_b", "combined_score", min_score=400)
    print(
        f"read {graph.n_nodes} nodes, {graph.n_edges} edges in {time.perf_counter() - start:.2f} s"
    )
    print(f"reading summary: {dict(graph.summary)}")
    for plan in args.plans:
        run_plan(plan, graph, args)


if __name__ == "__main__":
    main()
