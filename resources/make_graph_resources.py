#!/usr/bin/env python
"""Build the graph demo: a human protein–protein interaction network from STRING.

Source: the Debian package ``r-bioc-stringdb`` 2.10.1 (Bioconductor ``STRINGdb``), file
``usr/lib/R/site-library/STRINGdb/data/interactions_example.rda``: a data frame
``interactions_example`` of 70,000 human STRING interactions (``proteinA``, ``proteinB``: STRING
protein identifiers ``9606.ENSP…``; ``score``: the combined score on STRING's 0–1 scale).
It is read with the Python package ``rdata`` (no R needed) after its sha256 is checked.

Writes into the output folder (default: this script's folder) ``string_human_ppi.tsv.gz``: the
interactions with a combined score of at least 0.4 (STRING's "medium confidence", 400 on its
0–1000 scale), one undirected edge per line, tab-separated with a header:

- ``protein_a``, ``protein_b``: the two STRING identifiers, ``protein_a < protein_b``
  (code-point order);
- ``combined_score``: the score on STRING's integer 0–1000 scale (``round(1000 × score)``;
  every kept edge has 400 or more).

Rows are sorted by ``protein_a`` then ``protein_b``; the gzip header holds no file name and no
time stamp, so reruns give the same bytes. Duplicate pairs (in either direction) would keep their
highest score and self pairs would be dropped; both are counted and logged (the source holds
none).

    apt-get download r-bioc-stringdb          # r-bioc-stringdb_2.10.1-1_all.deb
    python resources/make_graph_resources.py r-bioc-stringdb_2.10.1-1_all.deb
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import logging
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import rdata
from make_resources import read_deb_file

log = logging.getLogger("make_graph_resources")

MEMBER = "usr/lib/R/site-library/STRINGdb/data/interactions_example.rda"
MEMBER_SHA256 = "531e5560b7c560154385d3f0cd2fe2b263fdfa149a677743c045e6f97e65ea35"
#: STRING's "medium confidence" cut-off, on its 0–1 scale.
MIN_SCORE = 0.4
OUTPUT = "string_human_ppi.tsv.gz"


def read_interactions(source: Path) -> pd.DataFrame:
    """Return ``interactions_example`` from the .deb (or its .rda), after checking the sha256."""
    data = read_deb_file(source, MEMBER) if source.suffix == ".deb" else source.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != MEMBER_SHA256:
        raise ValueError(f"{source}: {MEMBER} has sha256 {digest}, not that of STRINGdb 2.10.1")
    with tempfile.TemporaryDirectory() as tmp:
        rda = Path(tmp) / "interactions_example.rda"
        rda.write_bytes(data)
        frame = rdata.read_rda(rda)["interactions_example"]
    if list(frame.columns) != ["proteinA", "proteinB", "score"]:
        raise ValueError(f"unexpected columns {list(frame.columns)}")
    return frame


def edge_table(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Keep the medium-confidence edges, undirected and sorted; return them and the counts."""
    a = frame["proteinA"].astype(str).to_numpy()
    b = frame["proteinB"].astype(str).to_numpy()
    score = frame["score"].to_numpy(dtype=np.float64)
    counts = {
        "source_edges": len(frame),
        "source_nodes": len(np.union1d(a, b)),
        "self_edges": int((a == b).sum()),
    }
    keep = (a != b) & (score >= MIN_SCORE)
    edges = pd.DataFrame(
        {
            "protein_a": np.minimum(a, b)[keep],
            "protein_b": np.maximum(a, b)[keep],
            # Integer 0–1000 as in STRING's own files; >= 0.4 rounds to >= 400.
            "combined_score": np.rint(score[keep] * 1000).astype(np.int64),
        }
    )
    edges = edges.sort_values(
        ["protein_a", "protein_b", "combined_score"], ascending=[True, True, False]
    )
    duplicated = edges.duplicated(["protein_a", "protein_b"])
    counts["duplicate_edges"] = int(duplicated.sum())
    edges = edges[~duplicated].reset_index(drop=True)
    counts["edges"] = len(edges)
    counts["nodes"] = len(np.union1d(edges["protein_a"], edges["protein_b"]))
    return edges, counts


def write_gzip_tsv(frame: pd.DataFrame, path: Path) -> None:
    """Write a table as gzip-compressed TSV with the same bytes on every rerun."""
    text = frame.to_csv(sep="\t", index=False, lineterminator="\n")
    with (
        path.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz,
    ):
        gz.write(text.encode("utf-8"))


def main() -> None:
    """Build the edge list from the r-bioc-stringdb package."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path, help="r-bioc-stringdb_2.10.1-1_all.deb or its .rda")
    parser.add_argument("-o", "--outdir", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    edges, counts = edge_table(read_interactions(args.source))
    path = args.outdir / OUTPUT
    write_gzip_tsv(edges, path)
    data = path.read_bytes()
    log.info("%s", ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    log.info("wrote %s: %d bytes, sha256 %s", path, len(data), hashlib.sha256(data).hexdigest())
    degree = pd.concat([edges["protein_a"], edges["protein_b"]]).value_counts()
    log.info(
        "degree: median %d, max %d; scores %d–%d",
        degree.median(),
        degree.max(),
        edges["combined_score"].min(),
        edges["combined_score"].max(),
    )


if __name__ == "__main__":
    main()
