"""Cross-validation of link prediction without leakage: edge k-fold and node-disjoint cold start.

A fold holds positive pairs (edges of the graph) and negative pairs (non-edges) on three sides,
``train``, ``val`` and ``test``. What makes it leak-free:

- The graph a model propagates over (:attr:`LinkFold.message_passing`) is the training
  positives only: a validation or test edge never carries a message, and heuristics such as
  common neighbours are counted on it too.
- Negatives are drawn from the non-edges of the *whole* graph, so no held-out edge is ever
  shown to a model as a negative, and no pair is a negative on two sides.
- Edge k-fold (``edge_kfold``) tests every edge exactly once over the folds; the validation
  edges are carved from each fold's training side.
- Cold start (``cold_start_kfold``) holds out whole proteins: the test nodes and every edge
  touching one leave the training graph. Test pairs are tagged by how many unseen (test)
  endpoints they have, 1 (a new protein against a known one) or 2 (two new proteins), with
  negatives matched to the same mix, since the two are very different tasks. Validation nodes
  are held out the same way; an edge between a validation and a test node belongs to neither
  side (counted in the summary).

Every random choice comes from ``seed`` (0 is a seed like any other) and the fold number, so a
fold can be rebuilt alone, and a rerun gives identical arrays.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from dlpipe.cv import LINK_PLANS
from dlpipe.errors import InputError

SIDES = ("train", "val", "test")
#: Pools of candidate pairs up to this size are listed in full rather than sampled by rejection.
_ENUMERATE = 2_000_000


@dataclass(frozen=True)
class LinkFold:
    """One fold of a link-prediction plan: positive and negative node pairs on three sides.

    Every pair array is ``(n, 2)`` int64 node indices with the smaller index first, rows sorted.
    ``test_pos_unseen`` and ``test_neg_unseen`` give, per test pair, how many of its endpoints
    are test nodes unseen in training (cold start: 1 or 2; edge k-fold: 0). ``test_nodes`` and
    ``val_nodes`` are the nodes a cold-start fold holds out (empty for edge k-fold).
    """

    plan: str
    fold: int
    n_nodes: int
    train_pos: np.ndarray
    val_pos: np.ndarray
    test_pos: np.ndarray
    train_neg: np.ndarray
    val_neg: np.ndarray
    test_neg: np.ndarray
    test_pos_unseen: np.ndarray
    test_neg_unseen: np.ndarray
    test_nodes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    val_nodes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    summary: Mapping[str, int] = field(default_factory=dict)

    @property
    def message_passing(self) -> np.ndarray:
        """Return the edges a model may propagate over: the training positives, nothing else."""
        return self.train_pos

    def pairs(self, side: str) -> tuple[np.ndarray, np.ndarray]:
        """Return the pairs of one side (positives then negatives) and their 0/1 labels."""
        if side not in SIDES:
            raise ValueError(f"side must be one of {SIDES}, not {side!r}")
        pos, neg = getattr(self, f"{side}_pos"), getattr(self, f"{side}_neg")
        labels = np.r_[np.ones(len(pos), np.int8), np.zeros(len(neg), np.int8)]
        return np.concatenate([pos, neg]).reshape(-1, 2), labels

    def unseen(self) -> np.ndarray:
        """Return the unseen-endpoint count of each test pair, in the order of ``pairs("test")``."""
        return np.r_[self.test_pos_unseen, self.test_neg_unseen].astype(np.int8)


def _codes(pairs: np.ndarray, n_nodes: int) -> np.ndarray:
    """Encode canonical pairs ``(i, j)``, ``i < j``, as one int64 each (sortable like the pair)."""
    return pairs[:, 0].astype(np.int64) * n_nodes + pairs[:, 1]


def _decode(codes: np.ndarray, n_nodes: int) -> np.ndarray:
    return np.stack([codes // n_nodes, codes % n_nodes], axis=1).astype(np.int64).reshape(-1, 2)


def _check_edges(edges: np.ndarray, n_nodes: int) -> np.ndarray:
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    if len(edges) and (
        (edges[:, 0] >= edges[:, 1]).any() or edges.min() < 0 or edges.max() >= n_nodes
    ):
        raise ValueError("edges must be node indices below n_nodes with the smaller one first")
    codes = _codes(edges, n_nodes)
    if len(np.unique(codes)) != len(codes):
        raise ValueError("edges must be unique (read them with dlpipe.io.edges.read_edges)")
    return edges


def _in(codes: np.ndarray, sorted_codes: np.ndarray) -> np.ndarray:
    """Membership of ``codes`` in the sorted array ``sorted_codes``."""
    where = np.searchsorted(sorted_codes, codes)
    where[where == len(sorted_codes)] = 0
    return (sorted_codes[where] == codes) if len(sorted_codes) else np.zeros(len(codes), bool)


def _pool_codes(left: np.ndarray, right: np.ndarray | None, n_nodes: int) -> np.ndarray:
    """Every pair of the pool, encoded: within ``left``, or between ``left`` and ``right``."""
    if right is None:
        i, j = np.triu_indices(len(left), k=1)
        a, b = left[i], left[j]
    else:
        a, b = np.repeat(left, len(right)), np.tile(right, len(left))
    return np.minimum(a, b).astype(np.int64) * n_nodes + np.maximum(a, b)


def sample_non_edges(
    rng: np.random.Generator,
    n_nodes: int,
    count: int,
    forbidden: np.ndarray,
    left: np.ndarray,
    right: np.ndarray | None = None,
    what: str = "negative pairs",
) -> np.ndarray:
    """Draw distinct node pairs that are not in ``forbidden``, uniformly from a pool.

    Parameters
    ----------
    rng
        The random generator (its state decides the draw).
    n_nodes
        Number of nodes of the graph (pair codes are ``i * n_nodes + j``).
    count
        Number of pairs to draw.
    forbidden
        Sorted codes of pairs never to draw: every edge of the graph and the negatives of
        other sides.
    left, right
        The pool: pairs within ``left`` (``right`` is ``None``), or between ``left`` and the
        disjoint node set ``right``.
    what
        What the pairs are, for the error message.

    Returns
    -------
    numpy.ndarray
        ``(count, 2)`` canonical pairs, rows sorted.

    Raises
    ------
    InputError
        If the pool holds fewer than ``count`` allowed pairs.
    """
    if count == 0:
        return np.zeros((0, 2), np.int64)
    left = np.asarray(left, dtype=np.int64)
    size = len(left) * (len(left) - 1) // 2 if right is None else len(left) * len(right)
    if size <= _ENUMERATE:
        pool = _pool_codes(left, right, n_nodes)
        pool = pool[~_in(pool, forbidden)]
        if len(pool) < count:
            raise InputError(
                f"only {len(pool)} {what} exist that are not edges, fewer than the {count} "
                "needed (one per positive); the graph is too dense or too small for this plan: "
                "use fewer folds or a larger graph"
            )
        return _decode(np.sort(rng.choice(pool, size=count, replace=False)), n_nodes)
    right_nodes = left if right is None else np.asarray(right, dtype=np.int64)
    taken = np.zeros(0, np.int64)
    while len(taken) < count:
        batch = 2 * (count - len(taken)) + 16
        a = left[rng.integers(0, len(left), batch)]
        b = right_nodes[rng.integers(0, len(right_nodes), batch)]
        codes = np.minimum(a, b) * n_nodes + np.maximum(a, b)
        codes = codes[(a != b) & ~_in(codes, forbidden)]
        codes = np.concatenate([taken, codes])
        # Keep the first draw of a repeated pair, in draw order, so the result is the draw's.
        _, first = np.unique(codes, return_index=True)
        taken = codes[np.sort(first)]
    return _decode(np.sort(taken[:count]), n_nodes)


def _sorted(pairs: np.ndarray, n_nodes: int) -> np.ndarray:
    return _decode(np.sort(_codes(pairs, n_nodes)), n_nodes)


def _sorted_with(
    pairs: np.ndarray, tags: np.ndarray, n_nodes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sort pairs by row, carrying a tag per pair along."""
    order = np.argsort(_codes(pairs, n_nodes), kind="stable")
    return pairs[order].reshape(-1, 2), tags[order].astype(np.int8)


def _check_plan(n_splits: int, val_fraction: float, n_items: int, items: str) -> None:
    if n_splits < 2:
        raise InputError(f"cv.n_splits={n_splits}: a k-fold plan needs at least 2 folds")
    if not 0 < val_fraction < 1:
        raise InputError(f"cv.val_fraction={val_fraction} must lie strictly between 0 and 1")
    if n_items < 2 * n_splits:
        raise InputError(
            f"the graph has {n_items} {items}, too few for cv.n_splits={n_splits} (each fold "
            f"needs test, validation and training {items}); lower n_splits"
        )


def _carve(
    n_items: int, fold: int, n_splits: int, seed: int, val_fraction: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.random.Generator]:
    """Split items (edges or nodes) into a fold's sorted train, val and test indices.

    The test groups come from one shuffle by ``seed`` shared by all folds (so they partition
    the items); the validation carve and every later draw of the fold use the generator of
    ``[seed, fold]``, returned, so a fold needs no other fold to be built.
    """
    if not 0 <= fold < n_splits:
        raise ValueError(f"fold {fold} is not one of 0 … {n_splits - 1}")
    order = np.random.default_rng(seed).permutation(n_items)
    test = np.sort(np.array_split(order, n_splits)[fold])
    rng = np.random.default_rng([seed, fold])
    rest = np.setdiff1d(order, test)
    rest = rest[rng.permutation(len(rest))]
    n_val = max(1, round(val_fraction * len(rest)))
    return np.sort(rest[n_val:]), np.sort(rest[:n_val]), test, rng


class _Negatives:
    """Negatives of one fold, drawn side by side so that no pair serves two sides."""

    def __init__(self, edges: np.ndarray, n_nodes: int, rng: np.random.Generator) -> None:
        self.n_nodes, self.rng = n_nodes, rng
        self.forbidden = np.sort(_codes(edges, n_nodes))

    def draw(self, count: int, left: np.ndarray, right: np.ndarray | None, what: str) -> np.ndarray:
        pairs = sample_non_edges(self.rng, self.n_nodes, count, self.forbidden, left, right, what)
        self.forbidden = np.sort(np.r_[self.forbidden, _codes(pairs, self.n_nodes)])
        return pairs


def edge_kfold(
    edges: np.ndarray,
    n_nodes: int,
    fold: int,
    n_splits: int = 5,
    seed: int = 0,
    val_fraction: float = 0.1,
    negatives_per_positive: int = 1,
) -> LinkFold:
    """Build one fold of edge k-fold: every edge is a test edge in exactly one fold.

    Parameters
    ----------
    edges
        ``(m, 2)`` unique node-index pairs, smaller index first (:attr:`EdgeList.edges`).
    n_nodes
        Number of nodes.
    fold
        Which fold, ``0 … n_splits - 1``.
    n_splits
        Number of folds.
    seed
        Seed of the edge shuffle (shared by all folds) and of the fold's own draws.
    val_fraction
        Share of the fold's non-test edges held out for validation (early stopping).
    negatives_per_positive
        Negative pairs per positive pair on every side.

    Returns
    -------
    LinkFold
        The fold; its message-passing graph is its training edges.

    Raises
    ------
    InputError
        If the graph has too few edges for the plan, or too few non-edges for the negatives.
    """
    edges = _check_edges(edges, n_nodes)
    _check_plan(n_splits, val_fraction, len(edges), "edges")
    train_at, val_at, test_at, rng = _carve(len(edges), fold, n_splits, seed, val_fraction)
    pos = {
        side: _sorted(edges[at], n_nodes)
        for side, at in zip(SIDES, (train_at, val_at, test_at), strict=True)
    }
    everyone = np.arange(n_nodes)
    negatives = _Negatives(edges, n_nodes, rng)
    neg = {
        side: negatives.draw(negatives_per_positive * len(pos[side]), everyone, None, "node pairs")
        for side in ("test", "val", "train")
    }
    touched = np.zeros(n_nodes, bool)
    touched[pos["train"].ravel()] = True
    return _link_fold(
        "edge_kfold",
        fold,
        n_nodes,
        pos,
        neg,
        np.zeros(len(pos["test"]), np.int8),
        np.zeros(len(neg["test"]), np.int8),
        {"nodes_without_training_edge": int(n_nodes - touched.sum())},
    )


def _link_fold(
    plan: str,
    fold: int,
    n_nodes: int,
    pos: dict[str, np.ndarray],
    neg: dict[str, np.ndarray],
    pos_unseen: np.ndarray,
    neg_unseen: np.ndarray,
    facts: dict[str, int],
    **node_sets: np.ndarray,
) -> LinkFold:
    """Assemble a fold from its sides; its summary counts every side's pairs, then ``facts``."""
    summary = {
        f"{side}_{kind}": len(d[side]) for side in SIDES for kind, d in (("pos", pos), ("neg", neg))
    }
    return LinkFold(
        plan=plan,
        fold=fold,
        n_nodes=n_nodes,
        **{f"{side}_pos": pos[side] for side in SIDES},
        **{f"{side}_neg": neg[side] for side in SIDES},
        test_pos_unseen=pos_unseen,
        test_neg_unseen=neg_unseen,
        summary={**summary, **facts},
        **node_sets,
    )


def cold_start_kfold(
    edges: np.ndarray,
    n_nodes: int,
    fold: int,
    n_splits: int = 5,
    seed: int = 0,
    val_fraction: float = 0.1,
    negatives_per_positive: int = 1,
) -> LinkFold:
    """Build one fold of node-disjoint (cold-start) k-fold: test nodes and all their edges held out.

    The nodes are shuffled and cut into ``n_splits`` groups; fold ``fold`` tests the pairs
    touching its group. Validation nodes are carved from the other nodes the same way; the
    training graph keeps only edges between the remaining (training) nodes.

    Parameters
    ----------
    edges
        ``(m, 2)`` unique node-index pairs, smaller index first (:attr:`EdgeList.edges`).
    n_nodes
        Number of nodes.
    fold
        Which fold, ``0 … n_splits - 1``.
    n_splits
        Number of folds (node groups).
    seed
        Seed of the node shuffle (shared by all folds) and of the fold's own draws.
    val_fraction
        Share of the fold's non-test nodes held out for validation.
    negatives_per_positive
        Negative pairs per positive pair on every side, matched to the positives' kind (test:
        one or two unseen endpoints; validation: one or two validation nodes).

    Returns
    -------
    LinkFold
        The fold, with the unseen-endpoint count of every test pair.

    Raises
    ------
    InputError
        If the graph has too few nodes for the plan, a fold keeps no training edge, or too few
        non-edges exist for the negatives.
    """
    edges = _check_edges(edges, n_nodes)
    _check_plan(n_splits, val_fraction, n_nodes, "nodes")
    train_nodes, val_nodes, test_nodes, rng = _carve(n_nodes, fold, n_splits, seed, val_fraction)
    role = np.zeros(n_nodes, np.int8)  # 0 train, 1 val, 2 test
    role[val_nodes], role[test_nodes] = 1, 2
    ends = role[edges]
    n_test_ends = (ends == 2).sum(axis=1)
    n_val_ends = (ends == 1).sum(axis=1)
    in_test = n_test_ends > 0
    in_val = (n_val_ends > 0) & ~in_test
    between = in_test & (n_val_ends > 0)  # a validation node against a test node: neither side
    in_test &= ~between
    train = ~in_test & ~in_val & ~between
    if not train.any():
        raise InputError(
            f"cold-start fold {fold}: no edge joins two training nodes; the graph is too sparse "
            "for a node-disjoint plan with this many folds: lower cv.n_splits"
        )
    if not in_val.any():
        raise InputError(
            f"cold-start fold {fold}: no edge touches a validation node, so early stopping "
            "would have nothing to score; raise cv.val_fraction or lower cv.n_splits"
        )
    test_pos, test_unseen = _sorted_with(edges[in_test], n_test_ends[in_test], n_nodes)
    pos = {
        "train": _sorted(edges[train], n_nodes),
        "val": _sorted(edges[in_val], n_nodes),
        "test": test_pos,
    }
    val_two = n_val_ends[in_val] == 2
    negatives = _Negatives(edges, n_nodes, rng)
    k = negatives_per_positive
    test_neg = [
        negatives.draw(
            k * int((test_unseen == 1).sum()), test_nodes, train_nodes, "test–training node pairs"
        ),
        negatives.draw(k * int((test_unseen == 2).sum()), test_nodes, None, "test–test node pairs"),
    ]
    val_neg = [
        negatives.draw(
            k * int((~val_two).sum()), val_nodes, train_nodes, "validation–training node pairs"
        ),
        negatives.draw(k * int(val_two.sum()), val_nodes, None, "validation–validation node pairs"),
    ]
    train_neg = negatives.draw(k * len(pos["train"]), train_nodes, None, "training node pairs")
    test_neg_pairs, test_neg_unseen = _sorted_with(
        np.concatenate(test_neg), np.repeat([1, 2], [len(test_neg[0]), len(test_neg[1])]), n_nodes
    )
    neg = {
        "train": train_neg,
        "val": _sorted(np.concatenate(val_neg), n_nodes),
        "test": test_neg_pairs,
    }
    facts = dict(
        test_nodes=len(test_nodes),
        val_nodes=len(val_nodes),
        train_nodes=len(train_nodes),
        train_nodes_without_training_edge=int(
            len(train_nodes) - len(np.unique(pos["train"].ravel()))
        ),
        test_pos_one_unseen=int((test_unseen == 1).sum()),
        test_pos_two_unseen=int((test_unseen == 2).sum()),
        val_test_edges_dropped=int(between.sum()),
    )
    return _link_fold(
        "cold_start_kfold",
        fold,
        n_nodes,
        pos,
        neg,
        test_unseen,
        test_neg_unseen,
        facts,
        test_nodes=test_nodes.astype(np.int64),
        val_nodes=val_nodes.astype(np.int64),
    )


def link_folds(
    edges: np.ndarray,
    n_nodes: int,
    plan: str = "edge_kfold",
    n_splits: int = 5,
    seed: int = 0,
    val_fraction: float = 0.1,
    negatives_per_positive: int = 1,
) -> list[LinkFold]:
    """Build every fold of a link-prediction plan (``edge_kfold`` or ``cold_start_kfold``).

    See :func:`edge_kfold` and :func:`cold_start_kfold` for the parameters.
    """
    if plan not in LINK_PLANS:
        raise InputError(f"unknown link-prediction cv.plan {plan!r}; choose one of {LINK_PLANS}")
    build = edge_kfold if plan == "edge_kfold" else cold_start_kfold
    return [
        build(edges, n_nodes, fold, n_splits, seed, val_fraction, negatives_per_positive)
        for fold in range(n_splits)
    ]


#: Arrays of a :class:`LinkFold`, as stored by :func:`write_link_fold`.
_ARRAYS = (
    "train_pos", "val_pos", "test_pos", "train_neg", "val_neg", "test_neg",
    "test_pos_unseen", "test_neg_unseen", "test_nodes", "val_nodes",
)  # fmt: skip


def write_link_fold(fold: LinkFold, path: str | Path) -> None:
    """Write a fold as one ``.npz`` file (its arrays, and plan, fold, nodes, summary as JSON)."""
    header = {"plan": fold.plan, "fold": fold.fold, "n_nodes": fold.n_nodes}
    header["summary"] = dict(fold.summary)
    arrays = {name: getattr(fold, name) for name in _ARRAYS}
    # numpy dates every member of the archive 1980-01-01: a rerun writes the same bytes.
    np.savez_compressed(path, header=np.array(json.dumps(header, sort_keys=True)), **arrays)


def read_link_fold(path: str | Path) -> LinkFold:
    """Read a fold written by :func:`write_link_fold`.

    Raises
    ------
    InputError
        If the file is missing, not an ``.npz`` archive, or lacks an array of a fold.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [name for name in ("header", *_ARRAYS) if name not in data.files]
            if missing:
                raise InputError(
                    f"{path}: not a link-prediction fold (no {', '.join(missing)}); rerun the "
                    "split step to rewrite it"
                )
            header = json.loads(str(data["header"]))
            arrays = {name: data[name] for name in _ARRAYS}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise InputError(
            f"{path}: cannot be read as a link-prediction fold ({err}); rerun the split step to "
            "rewrite it"
        ) from None
    known = {f.name for f in fields(LinkFold)}
    return LinkFold(**{k: v for k, v in header.items() if k in known}, **arrays)
