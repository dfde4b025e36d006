"""Figures of link prediction: the nodes' embeddings of a fold model, laid out by UMAP."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from dlpipe.plots.canvas import save_figure


def embedding_map(embeddings: np.ndarray, degree: np.ndarray, path: str | Path, seed: int) -> None:
    """Draw node embeddings in two dimensions by UMAP, each node coloured by its degree.

    Parameters
    ----------
    embeddings
        ``(n_nodes, d)`` embeddings of one fold model.
    degree
        Each node's degree in the input graph (the colour, on a log scale).
    path
        Where to write the PNG.
    seed
        Seed of UMAP (one thread, so the layout is the same on every run).
    """
    import umap  # lazy: numba compiles on first use, 5 s

    points = umap.UMAP(n_components=2, random_state=seed, n_jobs=1).fit_transform(embeddings)
    fig, ax = plt.subplots(figsize=(6, 5))
    order = np.argsort(degree)  # hubs drawn last, on top
    art = ax.scatter(
        points[order, 0],
        points[order, 1],
        c=np.log10(np.maximum(degree[order], 1)),
        s=4,
        cmap="viridis",
        linewidths=0,
    )
    fig.colorbar(art, ax=ax, label="log10 degree")
    ax.set(xlabel="UMAP 1", ylabel="UMAP 2", title="node embeddings of fold 0's GNN")
    ax.set_xticks([])
    ax.set_yticks([])
    save_figure(fig, path)
