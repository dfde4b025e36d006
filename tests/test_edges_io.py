"""The edge-list and node-feature readers: what they keep, what they count, what they refuse."""

from __future__ import annotations

import gzip
import string
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlpipe.errors import InputError
from dlpipe.io.edges import read_edges, read_node_features

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
_ID = st.text(string.ascii_letters + string.digits + "._", min_size=1, max_size=4)
_ROW = st.tuples(_ID, _ID, st.integers(0, 1000))


def _tmp(name: str, data: bytes) -> Path:
    path = Path(tempfile.mkdtemp(prefix="dlpipe-edges-")) / name
    path.write_bytes(data)
    return path


def _read(path: Path, **kwargs: Any) -> tuple[Any, str | None]:
    """``(graph, None)``, or ``(None, message)`` when the reader raises :class:`InputError`."""
    try:
        return read_edges(path, **kwargs), None
    except InputError as err:
        return None, str(err)


def _write(tmp_path: Path, text: str, name: str = "e.tsv") -> Path:
    path = tmp_path / name
    data = text.encode()
    path.write_bytes(gzip.compress(data, mtime=0) if name.endswith(".gz") else data)
    return path


@SETTINGS
@given(
    rows=st.lists(_ROW, min_size=1, max_size=40),
    threshold=st.sampled_from([None, 0, 300, 999]),
    sep=st.sampled_from([",", "\t"]),
    compressed=st.booleans(),
)
def test_an_edge_list_reads_back_as_its_canonical_graph_with_every_row_counted(
    rows: list[tuple[str, str, int]], threshold: int | None, sep: str, compressed: bool
) -> None:
    text = "".join(f"{a}{sep}{b}{sep}{s}\n" for a, b, s in rows)
    name = ("e.csv" if sep == "," else "e.tsv") + (".gz" if compressed else "")
    data = f"node_a{sep}node_b{sep}score\n{text}".encode()
    path = _tmp(name, gzip.compress(data, mtime=0) if compressed else data)
    kept = [(a, b, s) for a, b, s in rows if threshold is None or s >= threshold]
    best: dict[tuple[str, str], int] = {}
    for a, b, s in kept:
        if a != b:
            key = (min(a, b), max(a, b))
            best[key] = max(best.get(key, s), s)
    graph, message = _read(path, score_column="score", min_score=threshold, min_edges=1)
    if message is not None:
        assert not best  # refused only when no edge is left
        assert message.startswith(str(path))
        return
    got = {
        (graph.nodes[i], graph.nodes[j]): w
        for (i, j), w in zip(graph.edges, graph.weight, strict=True)
    }
    assert got == best  # the highest score of a repeated pair is kept
    assert (graph.edges[:, 0] < graph.edges[:, 1]).all()
    assert list(map(tuple, graph.edges)) == sorted(set(map(tuple, graph.edges)))
    assert list(graph.nodes) == sorted({n for pair in best for n in pair})
    s = graph.summary
    assert s["rows"] == len(rows)
    assert s["rows"] == s["below_threshold"] + s["self_edges"] + s["duplicate_edges"] + s["edges"]
    assert s["self_edges"] == sum(a == b for a, b, _ in kept)
    assert s["nodes_dropped"] == len({n for a, b, _ in rows for n in (a, b)}) - s["nodes"]


@SETTINGS
@given(data=st.binary(max_size=300), name=st.sampled_from(["e.csv", "e.tsv", "e.tsv.gz"]))
def test_any_bytes_named_as_an_edge_list_give_a_graph_or_an_input_error(
    data: bytes, name: str
) -> None:
    path = _tmp(name, b"node_a,node_b\n" + data if name == "e.csv" else data)
    graph, message = _read(path, min_edges=1)
    if message is not None:
        assert message.startswith(str(path))
        return
    assert graph.n_edges >= 1
    assert (graph.edges[:, 0] < graph.edges[:, 1]).all()


def test_a_directed_edge_list_keeps_both_directions(tmp_path: Path) -> None:
    path = _write(tmp_path, "node_a\tnode_b\nx\ty\ny\tx\nx\ty\n")
    graph = read_edges(path, directed=True, min_edges=1)
    assert graph.edges.tolist() == [[0, 1], [1, 0]]
    assert graph.summary["duplicate_edges"] == 1
    undirected = read_edges(path, min_edges=1)
    assert undirected.edges.tolist() == [[0, 1]]
    assert undirected.summary["duplicate_edges"] == 2


def test_node_ids_are_text(tmp_path: Path) -> None:
    path = _write(tmp_path, "node_a,node_b\n01005,1005\n", "e.csv")
    assert read_edges(path, min_edges=1).nodes.tolist() == ["01005", "1005"]


@pytest.mark.parametrize(
    ("text", "kwargs", "expected"),
    [
        ("a\tb\nx\ty\n", {}, "line 1: no column 'node_a', 'node_b' in the edge list"),
        ("", {}, "the file is empty"),
        ("node_a\tnode_b\n", {}, "no data rows"),
        (
            "node_a\tnode_b\tscore\nx\ty\t0.5\nx\tz\thigh\n",
            {"score_column": "score"},
            "line 3: score column 'score' 'high' is not a number",
        ),
        (
            "node_a\tnode_b\tscore\nx\ty\t0.5\n\nx\tz\t\n",
            {"score_column": "score"},
            "line 4: score column 'score' is empty",
        ),
        ("node_a\tnode_b\nx\ty\n\ty\n", {}, "line 3: node id 'node_a' is empty"),
        ("node_a\tnode_b\nx\ty\nx\tx\ny\tx\n", {"min_edges": 2}, "1 edge(s) left of 3 row(s)"),
        ("node_a\tnode_b\nx\ty\n", {"min_score": 1.0}, "needs the column that holds the scores"),
        ("node_a\tnode_b\nx\ty\tz\n", {}, "line 2 has 3 fields but the header (line 1) has 2"),
    ],
)
def test_bad_edge_lists_are_refused_naming_file_line_and_fix(
    tmp_path: Path, text: str, kwargs: dict[str, object], expected: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as info:
        read_edges(path, **{"min_edges": 1, **kwargs})  # type: ignore[arg-type]
    assert str(info.value).startswith(str(path))
    assert expected in str(info.value)


def test_too_few_edges_says_what_was_dropped(tmp_path: Path) -> None:
    path = _write(tmp_path, "node_a,node_b,s\nx,y,1\nx,x,5\ny,z,0\n", "e.csv.gz")
    dropped = r"1 below threshold, 1 self edges dropped\); .*at least 3"
    with pytest.raises(InputError, match=dropped):
        read_edges(path, score_column="s", min_score=0.5, min_edges=3)


def test_node_features_follow_the_graph_node_order(tmp_path: Path) -> None:
    path = _write(tmp_path, "node\tf1\tf2\nz\t5\t6\nx\t1\t2\ny\t3\t4\nextra\t0\t0\n")
    matrix, names = read_node_features(path, np.array(["x", "y", "z"]))
    assert names == ["f1", "f2"]
    assert matrix.dtype == np.float32
    assert matrix.tolist() == [[1, 2], [3, 4], [5, 6]]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("id\tf\nx\t1\n", "no node id column 'node'"),
        ("node\tf\nx\t1\nx\t2\ny\t3\n", "line 3: node 'x' has a second row"),
        ("node\tf\nx\t1\n", "1 node(s) of the graph have no row of features, e.g. 'y'"),
        ("node\tf\nx\t1\ny\tlow\n", "feature column(s) ['f'] are not numeric"),
        ("node\tf\tg\nx\t1\t2\ny\t\t3\n", "line 3: feature 'f' of node 'y' is missing"),
        ("node\nx\ny\n", "no feature column besides the ids"),
    ],
)
def test_bad_node_features_are_refused(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as info:
        read_node_features(path, np.array(["x", "y"]))
    assert str(info.value).startswith(str(path))
    assert expected in str(info.value)


def test_the_shipped_string_network_reads_as_its_guide_says() -> None:
    graph = read_edges(
        ROOT / "resources" / "string_human_ppi.tsv.gz",
        "protein_a",
        "protein_b",
        score_column="combined_score",
        min_score=400,
    )
    assert (graph.n_nodes, graph.n_edges) == (6378, 16876)
    assert graph.summary["duplicate_edges"] == graph.summary["self_edges"] == 0
    assert graph.weight is not None
    assert graph.weight.min() >= 400
    assert graph.weight.max() <= 1000
    assert all(n.startswith("9606.ENSP") for n in graph.nodes)
