"""How dlpipe's GCN training scales: its epoch against plain PyTorch Geometric, and a big graph.

Part 1, overhead: on fold 0 of edge k-fold of the shipped STRING network
(``resources/string_human_ppi.tsv.gz``, 16,876 edges, 6,378 proteins), the GCN autoencoder of
``benchmarks/graph_link_prediction.py`` (learned 128-wide node inputs, GCNConv 128 → 128 → 64,
dropout 0.2, inner-product decoder, Adam 0.01, binary cross-entropy on the fold's training
pairs) is trained three ways, in alternating rounds:

- ``dlpipe``: :func:`dlpipe.link_train.fit_link_model` (deterministic, validation auPRC and
  early-stopping bookkeeping after every epoch; patience = epochs, so no run stops early);
- ``plain PyG``: the same layers, written with ``GCNConv`` directly, a bare training loop;
- ``plain PyG + validation``: that loop, scoring the validation pairs after each epoch as
  dlpipe does, to show what the validation costs by itself.

It prints the median seconds per epoch of each (the first epoch of every run left out) and the
ratio to plain PyG. dlpipe's epochs are timed between successive training forward calls.

Part 2, a graph of more than a million edges: no real network of that size ships in a package
this machine can reach, so the graph is *generated*: a degree-corrected stochastic block model
(heavy-tailed node propensities, 80 % of the edges inside 300 blocks), 150,000 nodes and
1,200,000 edges by default, seeded. Fold 0 of edge k-fold is trained full-batch with the same
GCN in a child process, whose peak resident memory (``ru_maxrss``) is that of the training
alone, and the test pairs are scored. Mini-batches of sampled neighbourhoods are not offered:
PyG's ``LinkNeighborLoader`` needs ``pyg-lib`` or ``torch-sparse``, and the script says whether
they are installed.

    PYTHONPATH=src .venv/bin/python benchmarks/graph_scale.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch_geometric
import torch_geometric.typing
from sklearn.metrics import average_precision_score, roc_auc_score
from torch import nn
from torch_geometric.nn import GCNConv

from dlpipe.edge_split import LinkFold, edge_kfold
from dlpipe.io.edges import read_edges
from dlpipe.link_train import fit_link_model, predict_links
from dlpipe.models.gnn import LinkGNN, edge_index

ROOT = Path(__file__).resolve().parents[1]
EDGES = ROOT / "resources" / "string_human_ppi.tsv.gz"
HIDDEN, OUT, DROPOUT, LR = 128, 64, 0.2, 0.01
#: What times an epoch: wall time, or the training thread's CPU time (``--cpu-time``).
CLOCK = {"clock": time.perf_counter}


class PlainGCN(nn.Module):
    """The plain PyG model: learned inputs, two GCNConv layers, inner-product decoder."""

    def __init__(self, n_nodes: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(n_nodes, HIDDEN)
        self.conv1 = GCNConv(HIDDEN, HIDDEN)
        self.conv2 = GCNConv(HIDDEN, OUT)
        self.dropout = nn.Dropout(DROPOUT)

    def forward(self, edges: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv1(self.dropout(self.embedding.weight), edges))
        z = self.conv2(self.dropout(h), edges)
        return (z[pairs[:, 0]] * z[pairs[:, 1]]).sum(dim=-1)


def plain_epochs(fold: LinkFold, epochs: int, validate: bool, seed: int) -> list[float]:
    """Train the plain PyG model; return the seconds of each epoch."""
    torch.manual_seed(seed)
    model = PlainGCN(fold.n_nodes)
    edges = edge_index(fold.message_passing, fold.n_nodes)
    train_pairs, train_labels = fold.pairs("train")
    val_pairs, val_labels = fold.pairs("val")
    pairs, target = torch.as_tensor(train_pairs), torch.as_tensor(train_labels).float()
    val = torch.as_tensor(val_pairs)
    optimiser = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.BCEWithLogitsLoss()
    seconds = []
    for _ in range(epochs):
        start = CLOCK["clock"]()
        model.train()
        optimiser.zero_grad()
        loss = loss_fn(model(edges, pairs), target)
        loss.backward()
        optimiser.step()
        if validate:
            model.eval()
            with torch.no_grad():
                average_precision_score(val_labels, model(edges, val).numpy())
        seconds.append(CLOCK["clock"]() - start)
    return seconds


def dlpipe_model(n_nodes: int) -> LinkGNN:
    """Return dlpipe's GCN autoencoder of the same sizes."""
    return LinkGNN(
        0,
        1,
        embedding_size=OUT,
        conv="gcn",
        hidden_layers=(HIDDEN,),
        dropout=DROPOUT,
        n_nodes=n_nodes,
    )


def dlpipe_epochs(
    fold: LinkFold, epochs: int, seed: int, patience: int | None = None
) -> tuple[list[float], LinkGNN, list[dict[str, float]]]:
    """Train with fit_link_model; return the seconds of each epoch, the model and its history."""
    torch.manual_seed(seed)
    model = dlpipe_model(fold.n_nodes)
    stamps: list[float] = []
    hook = model.register_forward_pre_hook(
        lambda module, _: stamps.append(CLOCK["clock"]()) if module.training else None
    )
    model, history = fit_link_model(
        model, None, fold.message_passing, *fold.pairs("train"), *fold.pairs("val"),
        epochs=epochs, learning_rate=LR, patience=patience or epochs, seed=seed,
    )  # fmt: skip
    stamps.append(CLOCK["clock"]())
    hook.remove()
    return list(np.diff(stamps)), model, history


def overhead(args: argparse.Namespace) -> None:
    """Part 1: dlpipe's epoch against the plain PyG loop on the STRING graph."""
    graph = read_edges(EDGES, "protein_a", "protein_b", "combined_score", min_score=400)
    fold = edge_kfold(graph.edges, graph.n_nodes, fold=0, n_splits=5, seed=args.seed)
    print(
        f"\n## Part 1: STRING fold 0: {graph.n_nodes} nodes, {len(fold.train_pos)} message-passing "
        f"edges, {len(fold.pairs('train')[0])} training pairs, {len(fold.pairs('val')[0])} "
        f"validation pairs; {args.rounds} rounds × {args.epochs} epochs each; "
        f"{'CPU time of one thread' if args.cpu_time else 'wall time'}\n"
    )
    times: dict[str, list[float]] = {"dlpipe": [], "plain PyG": [], "plain PyG + validation": []}
    for round_ in range(args.rounds):
        # The first epoch of each run (allocations, caches) is left out.
        times["dlpipe"] += dlpipe_epochs(fold, args.epochs, args.seed + round_)[0][1:]
        times["plain PyG"] += plain_epochs(fold, args.epochs, False, args.seed + round_)[1:]
        times["plain PyG + validation"] += plain_epochs(
            fold, args.epochs, True, args.seed + round_
        )[1:]
        medians = (
            f"{k} {statistics.median(v[1 - args.epochs :]) * 1e3:.1f} ms" for k, v in times.items()
        )
        print(f"round {round_}: " + ", ".join(medians))
    plain = statistics.median(times["plain PyG"])
    print("\n| implementation | epochs timed | median s / epoch | IQR | ratio to plain PyG |")
    print("|---|---|---|---|---|")
    for name, values in times.items():
        q1, _, q3 = statistics.quantiles(values, n=4)
        median = statistics.median(values)
        print(
            f"| {name} | {len(values)} | {median:.4f} | {q1:.4f}–{q3:.4f} | {median / plain:.2f} |"
        )


def planted_graph(
    n_nodes: int, n_edges: int, n_blocks: int = 300, within: float = 0.8, seed: int = 0
) -> np.ndarray:
    """Return ``(m, 2)`` unique edges of a degree-corrected stochastic block model, smaller first.

    Each node gets a block and a Pareto-tailed propensity; an edge's endpoints are drawn by
    propensity, both from one block with probability ``within``, else from the whole graph.
    Nodes that drew no edge are dropped and the rest renumbered.
    """
    rng = np.random.default_rng(seed)
    block = rng.integers(0, n_blocks, n_nodes)
    weight = rng.pareto(2.0, n_nodes) + 1.0
    order = np.argsort(block, kind="stable")
    cumulative = np.cumsum(weight[order])
    ends = cumulative[np.searchsorted(block[order], np.arange(n_blocks), side="right") - 1]
    starts = np.r_[0.0, ends[:-1]]
    codes = np.zeros(0, np.int64)
    while len(codes) < n_edges:  # draw more until there are enough distinct edges
        draws = int((n_edges - len(codes)) * 1.15) + 1000
        at = np.searchsorted(cumulative, rng.random(draws) * ends[-1], side="right")
        first = order[np.minimum(at, n_nodes - 1)]
        b = block[first]
        u = np.where(
            rng.random(draws) < within,
            starts[b] + rng.random(draws) * (ends[b] - starts[b]),
            rng.random(draws) * ends[-1],
        )
        second = order[np.minimum(np.searchsorted(cumulative, u, side="right"), n_nodes - 1)]
        lo, hi = np.minimum(first, second), np.maximum(first, second)
        codes = np.union1d(codes, (lo * n_nodes + hi)[lo != hi])
    codes = np.sort(rng.choice(codes, n_edges, replace=False))
    edges = np.stack([codes // n_nodes, codes % n_nodes], axis=1)
    _, renumbered = np.unique(edges, return_inverse=True)
    return renumbered.reshape(-1, 2).astype(np.int64)


def rss_mb() -> float:
    """Return this process's peak resident memory so far, MB (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def large_child(args: argparse.Namespace) -> None:
    """Part 2 in a child process: build the big graph and fold, train full-batch, print JSON."""
    start = time.perf_counter()
    edges = planted_graph(args.nodes, args.edges, seed=args.seed)
    n_nodes = int(edges.max()) + 1
    generate_s = time.perf_counter() - start
    start = time.perf_counter()
    fold = edge_kfold(edges, n_nodes, fold=0, n_splits=5, seed=args.seed)
    fold_s = time.perf_counter() - start
    del edges
    before_mb = rss_mb()
    start = time.perf_counter()
    seconds, model, history = dlpipe_epochs(fold, args.large_epochs, args.seed, patience=10)
    fit_s = time.perf_counter() - start
    train_mb = rss_mb()
    test_pairs, test_labels = fold.pairs("test")
    start = time.perf_counter()
    scores = predict_links(model, None, fold.message_passing, test_pairs)
    predict_s = time.perf_counter() - start
    print(
        json.dumps(
            {
                "nodes": n_nodes,
                "edges": len(fold.train_pos) + len(fold.val_pos) + len(fold.test_pos),
                "message_passing": len(fold.train_pos),
                "train_pairs": len(fold.pairs("train")[0]),
                "generate_s": generate_s,
                "fold_s": fold_s,
                "epochs": len(history),
                "epoch_s": seconds,
                "fit_s": fit_s,
                "predict_s": predict_s,
                "rss_before_mb": before_mb,
                "rss_peak_train_mb": train_mb,
                "rss_peak_mb": rss_mb(),
                "best_val_auprc": max(h["val_auprc"] for h in history),
                "test_auroc": roc_auc_score(test_labels, scores),
                "test_auprc": average_precision_score(test_labels, scores),
            }
        )
    )


def large(args: argparse.Namespace) -> None:
    """Part 2: run the big graph in a child process and print its figures."""
    command = [sys.executable, __file__, "--child", *sys.argv[1:]]
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    r = json.loads(done.stdout.strip().splitlines()[-1])
    epochs = r["epoch_s"][1:] or r["epoch_s"]
    print(
        f"\n## Part 2: generated degree-corrected block model, {r['nodes']:,} nodes, "
        f"{r['edges']:,} edges (generated in {r['generate_s']:.1f} s; edge k-fold fold 0 built "
        f"in {r['fold_s']:.1f} s: {r['message_passing']:,} message-passing edges, "
        f"{r['train_pairs']:,} training pairs)\n"
    )
    print("| mode | epochs run | median s / epoch | fit total s | predict test s | "
          "peak RSS before training MB | peak RSS after training MB |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    print(
        f"| full batch | {r['epochs']} | {statistics.median(epochs):.2f} | {r['fit_s']:.1f} | "
        f"{r['predict_s']:.1f} | {r['rss_before_mb']:,.0f} | {r['rss_peak_train_mb']:,.0f} |"
    )
    sampling = torch_geometric.typing.WITH_PYG_LIB or torch_geometric.typing.WITH_TORCH_SPARSE
    print(
        "| mini-batch, sampled neighbours | not run: dlpipe has no such mode; PyG's "
        f"LinkNeighborLoader needs pyg-lib or torch-sparse (installed here: {sampling}) "
        "| | | | | |"
    )
    print(
        f"\nfirst epoch {r['epoch_s'][0]:.2f} s; best validation auPRC "
        f"{r['best_val_auprc']:.3f}; test auROC {r['test_auroc']:.3f}, "
        f"auPRC {r['test_auprc']:.3f}"
    )


def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds of part 1")
    parser.add_argument("--epochs", type=int, default=25, help="epochs of each part-1 run")
    parser.add_argument("--nodes", type=int, default=150_000, help="of the generated graph")
    parser.add_argument("--edges", type=int, default=1_200_000, help="of the generated graph")
    parser.add_argument("--large-epochs", type=int, default=30)
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="part 1 on one thread, timed by its CPU time (less disturbed by other jobs)",
    )
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        large_child(args)
        return
    print(
        f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), PyG {torch_geometric.__version__}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    if not args.skip_overhead:
        threads = torch.get_num_threads()
        if args.cpu_time:
            torch.set_num_threads(1)
            CLOCK["clock"] = time.thread_time
        overhead(args)
        torch.set_num_threads(threads)
        CLOCK["clock"] = time.perf_counter
    if not args.skip_large:
        large(args)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
