"""Report section of a link-prediction experiment: where the learners work, and what is new.

Reads the interpret step's tables (:meth:`dlpipe.modalities.graph.GraphModality.interpret`):
metrics by the degree of a pair's nodes and, for cold start, by its unseen ends; the top novel
pairs of the GNN's fold models; the UMAP of fold 0's node embeddings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from dlpipe.io.files import read_json
from dlpipe.report.render import anchor, fmt, image, section, table

#: Listed novel pairs whose mean logits differ by less than this are called a tie.
TIE_SPREAD = 0.05
#: The metrics shown per group of held-out pairs.
_SHOWN = ("auroc", "auprc", "hits@100")


def grouped_table(frame: pd.DataFrame, label: str) -> dict[str, Any]:
    """One row per group, per learner its auROC, auPRC and Hits@100 (counts beside)."""
    learners = list(dict.fromkeys(frame["learner"]))
    first = frame[frame["learner"] == learners[0]]
    rows = []
    for group in dict.fromkeys(frame["group"]):
        counts = first[first["group"] == group]
        row: dict[str, Any] = {
            label: group,
            "edges": int(counts["n_pos"].sum()),
            "non-edges": int(counts["n_neg"].sum()),
        }
        for learner in learners:
            rec = frame[(frame["learner"] == learner) & (frame["group"] == group)]
            for metric in _SHOWN:
                value = float(rec[metric].iloc[0]) if len(rec) else float("nan")
                row[f"{learner} {metric}"] = fmt(value)
        rows.append(row)
    return table(pd.DataFrame(rows))


def graph_interpretation(folder: Path, name: str) -> dict[str, Any] | None:
    """Metrics by degree and unseen ends, the top novel pairs and the embedding UMAP."""
    if not (folder / "novel_pairs.tsv").is_file():
        return None
    summary = read_json(folder / "summary.json")
    by_degree = pd.read_csv(folder / "by_degree.tsv", sep="\t", dtype={"group": str})
    by_unseen = None
    if (folder / "by_unseen.tsv").is_file():
        by_unseen = pd.read_csv(folder / "by_unseen.tsv", sep="\t", dtype={"group": str})
    novel = pd.read_csv(folder / "novel_pairs.tsv", sep="\t", dtype={"node_a": str, "node_b": str})
    shown = novel.assign(
        logit_mean=[fmt(v, 2) for v in novel["logit_mean"]],
        probability_mean=[fmt(v, 4) for v in novel["probability_mean"]],
        probability_sd=[fmt(v, 4) for v in novel["probability_sd"]],
    ).rename(
        columns={
            "logit_mean": "mean logit",
            "probability_mean": "mean p",
            "probability_sd": "sd of p",
            "models": "fold models",
            "degree_a": "degree a",
            "degree_b": "degree b",
            "common_neighbours": "shared neighbours",
        }
    )
    caption = (
        "Node embeddings of fold 0's GNN in two dimensions (UMAP), the proteins with a training "
        "edge in that fold, each coloured by its degree in the input graph. Nearby proteins get "
        "high pair scores; a layout that follows degree alone means the model mostly learned "
        "how connected a protein is."
    )
    spread = ""
    if len(novel) > 1:
        high, low = float(novel["logit_mean"].max()), float(novel["logit_mean"].min())
        spread = f"The listed mean logits span {fmt(low, 2)} to {fmt(high, 2)}"
        if high - low < TIE_SPREAD:
            spread += (
                ": the models do not tell these pairs apart, so their order is no ranking "
                "(a tie at the top)"
            )
        spread += "."
    figure = None
    if (folder / "embedding.png").is_file():
        figure = image(folder / "embedding.png", "node embeddings", caption)
    return section(
        "graph.html.j2",
        "Where the learners work, and what is new",
        anchor(name, "learned"),
        by_degree=grouped_table(by_degree, "smaller degree of the pair"),
        by_unseen=grouped_table(by_unseen, "unseen ends") if by_unseen is not None else None,
        novel=table(shown) if len(shown) else None,
        n_novel=int(summary["novel_pairs"]),
        closing=int(summary["novel_pairs_closing_triangles"]),
        spread=spread,
        fold_models=int(summary["fold_models"]),
        figure=figure,
    )
