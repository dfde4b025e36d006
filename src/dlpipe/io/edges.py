"""Edge lists (CSV/TSV, plain or gzip) and node feature tables of a graph, checked by line.

:func:`read_edges` returns the graph as integer edges over sorted node ids, with a summary of
what was dropped on the way (rows below the score threshold, self edges, duplicate edges), so
the report can say how the input became the graph that was learned from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dlpipe.errors import InputError
from dlpipe.io.tables import read_table, row_location

#: Fewest edges a graph must keep for link prediction to have anything to hold out.
MIN_EDGES = 10


@dataclass(frozen=True)
class EdgeList:
    """A graph read from an edge list.

    Attributes
    ----------
    nodes
        Node ids (text), sorted; a node's index is its position here.
    edges
        ``(m, 2)`` int64 node indices, one row per edge, sorted by row. Undirected graphs hold
        each edge once with ``edges[:, 0] < edges[:, 1]``.
    weight
        The score of each edge (float64), or ``None`` when no score column was read.
    directed
        Whether ``(a, b)`` and ``(b, a)`` are different edges.
    summary
        Counts of the reading: ``rows`` (data rows of the file), ``below_threshold``,
        ``self_edges``, ``duplicate_edges`` (rows repeating an edge already kept, either
        direction when undirected), ``edges``, ``nodes``, and ``nodes_dropped`` (ids of the
        file whose every row fell below the threshold or was a self edge: not in the graph).
    """

    nodes: np.ndarray
    edges: np.ndarray
    weight: np.ndarray | None
    directed: bool = False
    summary: Mapping[str, int] = field(default_factory=dict)

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.nodes)

    @property
    def n_edges(self) -> int:
        """Number of edges."""
        return len(self.edges)


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _scores(path: Path, values: pd.Series, column: str) -> np.ndarray:
    """Return a score column as float64, naming the first line that is not a finite number."""
    numeric = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(numeric)
    if bad.any():
        i = _first(bad)
        raw = values.iloc[i]
        what = "is empty" if pd.isna(raw) or str(raw).strip() == "" else f"{raw!r} is not a number"
        raise InputError(
            f"{path}, {row_location(path, i)}: score column {column!r} {what}; every edge needs a "
            "finite numeric score (fix the line, or read the file without a score column)"
        )
    return numeric


def read_edges(
    path: str | Path,
    a_column: str = "node_a",
    b_column: str = "node_b",
    score_column: str | None = None,
    min_score: float | None = None,
    directed: bool = False,
    min_edges: int = MIN_EDGES,
) -> EdgeList:
    """Read and check an edge list: one edge per row, two node-id columns, an optional score.

    Rows scoring below ``min_score`` are dropped first; then self edges (a node linked to
    itself); then rows repeating an edge already kept (for an undirected graph ``b, a`` repeats
    ``a, b``), keeping the highest score. Each is counted in :attr:`EdgeList.summary`.

    Parameters
    ----------
    path
        CSV or TSV file (``.csv``, ``.tsv``, optionally ``.gz``) or Parquet, with a header.
    a_column, b_column
        Columns holding the two node ids of each edge (read as text: ``01005`` stays).
    score_column
        Column holding each edge's score or weight (optional).
    min_score
        Keep edges scoring at least this (needs ``score_column``); ``None`` keeps all.
    directed
        Keep ``(a, b)`` and ``(b, a)`` apart; by default edges are undirected.
    min_edges
        Fewest edges the graph must keep.

    Returns
    -------
    EdgeList
        The graph over the sorted node ids, and the counts of the reading.

    Raises
    ------
    InputError
        For a missing, empty or malformed file, a missing column, an empty node id, a score that
        is not a finite number, or fewer than ``min_edges`` edges left, naming file and line.
    """
    path = Path(path)
    if min_score is not None and score_column is None:
        raise InputError(
            f"{path}: a score threshold ({min_score}) needs the column that holds the scores; "
            "name the score column, or drop the threshold"
        )
    wanted = [a_column, b_column] + ([score_column] if score_column else [])
    table = read_table(path, exact_columns=[a_column, b_column])
    missing = [c for c in wanted if c not in table.columns]
    if missing:
        shown = ", ".join(repr(c) for c in table.columns[:8])
        raise InputError(
            f"{path}, line 1: no column {', '.join(repr(c) for c in missing)} in the edge list, "
            f"whose columns are {shown}{' …' if table.shape[1] > 8 else ''}; name the columns "
            "that hold the two nodes of each edge (and the score), or rename them in the file"
        )
    for column in (a_column, b_column):
        ids = table[column]
        empty = (ids.isna() | (ids.astype(str).str.strip() == "")).to_numpy()
        if empty.any():
            raise InputError(
                f"{path}, {row_location(path, _first(empty))}: node id {column!r} is empty; "
                "every edge needs both node ids"
            )
    a = table[a_column].astype(str).to_numpy()
    b = table[b_column].astype(str).to_numpy()
    score = _scores(path, table[score_column], score_column) if score_column else None
    summary = {"rows": len(table)}
    keep = np.ones(len(table), dtype=bool)
    if min_score is not None and score is not None:
        keep = score >= min_score
    summary["below_threshold"] = int((~keep).sum())
    self_edge = keep & (a == b)
    summary["self_edges"] = int(self_edge.sum())
    keep &= ~self_edge
    all_ids = np.union1d(a, b)
    a, b = a[keep], b[keep]
    score = score[keep] if score is not None else None
    if not directed:
        a, b = np.where(a <= b, a, b), np.where(a <= b, b, a)
    nodes = np.union1d(a, b)
    # Node indices follow id order, so a < b as text gives index a < index b.
    pairs = np.stack([np.searchsorted(nodes, a), np.searchsorted(nodes, b)], axis=1)
    pairs = pairs.astype(np.int64).reshape(-1, 2)
    # Highest score first within a pair, so the kept copy is the best-scoring one.
    order = np.lexsort((-score if score is not None else np.zeros(len(pairs)), *pairs.T[::-1]))
    pairs = pairs[order]
    first = np.ones(len(pairs), dtype=bool)
    first[1:] = np.any(pairs[1:] != pairs[:-1], axis=1)
    summary["duplicate_edges"] = int((~first).sum())
    edges = pairs[first]
    weight = score[order][first] if score is not None else None
    summary["edges"] = len(edges)
    summary["nodes"] = len(nodes)
    summary["nodes_dropped"] = len(all_ids) - len(nodes)
    if len(edges) < min_edges:
        dropped = ", ".join(
            f"{summary[k]} {k.replace('_', ' ')}"
            for k in ("below_threshold", "self_edges", "duplicate_edges")
            if summary[k]
        )
        raise InputError(
            f"{path}: {len(edges)} edge(s) left of {summary['rows']} row(s)"
            f"{f' ({dropped} dropped)' if dropped else ''}; link prediction needs at least "
            f"{min_edges}. Lower the score threshold or give a larger edge list"
        )
    nodes = nodes.astype(str)
    return EdgeList(nodes=nodes, edges=edges, weight=weight, directed=directed, summary=summary)


def read_node_features(
    path: str | Path, nodes: np.ndarray, id_column: str = "node"
) -> tuple[np.ndarray, list[str]]:
    """Read a table of numeric node features keyed by node id, in the order of ``nodes``.

    Parameters
    ----------
    path
        CSV, TSV (optionally ``.gz``) or Parquet table: one row per node.
    nodes
        The graph's node ids (:attr:`EdgeList.nodes`); rows of other ids are ignored.
    id_column
        Column holding the node ids (read as text).

    Returns
    -------
    tuple of (numpy.ndarray, list of str)
        ``(n_nodes, n_features)`` float32 features, and the feature names.

    Raises
    ------
    InputError
        For a missing id column, an id listed twice, a graph node without a row, or a feature
        that is not numeric, naming file and line or column.
    """
    path = Path(path)
    table = read_table(path, exact_columns=[id_column], key="data.node_features")
    if id_column not in table.columns:
        raise InputError(
            f"{path}, line 1: no node id column {id_column!r} in the node feature table; name "
            "the column that holds the node ids"
        )
    ids = table[id_column].astype(str)
    repeated = ids.duplicated().to_numpy()
    if repeated.any():
        i = _first(repeated)
        raise InputError(
            f"{path}, {row_location(path, i)}: node {ids.iloc[i]!r} has a second row; give each "
            "node one row of features"
        )
    features = table.drop(columns=[id_column])
    if features.shape[1] == 0:
        raise InputError(f"{path}: the node feature table has no feature column besides the ids")
    text = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if text:
        raise InputError(
            f"{path}: feature column(s) {text[:5]} are not numeric; node features must be "
            "numbers (encode categories as numbers first, or drop the columns)"
        )
    names = [str(n) for n in nodes]
    rows = pd.Index(ids).get_indexer(names)
    if (rows < 0).any():
        absent = [n for n, r in zip(names, rows, strict=True) if r < 0]
        raise InputError(
            f"{path}: {len(absent)} node(s) of the graph have no row of features, e.g. "
            f"{', '.join(map(repr, absent[:3]))}; add their rows, or remove their edges"
        )
    matrix = features.to_numpy(dtype=np.float32)[rows]
    bad = ~np.isfinite(matrix)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise InputError(
            f"{path}, {row_location(path, int(rows[r]))}: feature {features.columns[c]!r} of "
            f"node {names[r]!r} is missing or not finite; fill it in (every node needs every "
            "feature)"
        )
    return matrix, [str(c) for c in features.columns]
