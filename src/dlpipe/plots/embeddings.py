"""Embeddings seen from above: UMAPs of an integration, and of a VAE's latent space."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from dlpipe.cells import EMBEDDINGS, UMAP_KEYS
from dlpipe.plots.canvas import plt, save_figure

if TYPE_CHECKING:
    import anndata as ad


def umap_figure(adata: ad.AnnData, batch_col: str, label_col: str, path: str | Path) -> None:
    """Draw UMAPs of the unintegrated PCA and of scVI by batch, label and transferred label.

    Rows are the embeddings, columns the colourings (scANVI's transferred label only when
    scANVI ran); unlabelled cells are light grey.
    """
    colour_by = [(batch_col, "batch"), (label_col, "label")]
    if "scanvi_prediction" in adata.obs:
        colour_by.append(("scanvi_prediction", "scANVI label transfer"))
    # Unintegrated first, then integrated; known and transferred labels share their colours.
    rows = [(title, UMAP_KEYS[key]) for title, key in reversed(EMBEDDINGS.items())]
    label_names = sorted(adata.obs[label_col].dropna().astype(str).unique())
    fig, axes = plt.subplots(
        len(rows),
        len(colour_by),
        figsize=(4.6 * len(colour_by) + 2.2, 4.2 * len(rows)),
        squeeze=False,
    )
    for j, (column, what) in enumerate(colour_by):
        values = adata.obs[column].astype(object)
        categories = sorted(values.dropna().astype(str).unique())
        if column != batch_col:
            categories = label_names + [c for c in categories if c not in label_names]
        cmap = plt.get_cmap("tab10" if len(categories) <= 10 else "tab20")
        for i, (title, umap_key) in enumerate(rows):
            ax = axes[i, j]
            xy = adata.obsm[umap_key]
            missing = values.isna().to_numpy()
            if missing.any():
                ax.scatter(*xy[missing].T, s=3, c="#d0d0d0", label="unlabelled", rasterized=True)
            for k, cat in enumerate(categories):
                rows_k = (values.astype(str) == cat).to_numpy() & ~missing
                if rows_k.any():
                    ax.scatter(
                        *xy[rows_k].T, s=3, color=cmap(k % cmap.N), label=cat, rasterized=True
                    )
            ax.set_title(f"{title}: {what}", fontsize="medium")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == len(rows) - 1:
                ax.legend(
                    loc="upper left",
                    bbox_to_anchor=(0, -0.02),
                    fontsize="x-small",
                    markerscale=3,
                    ncol=2,
                    frameon=False,
                )
    save_figure(fig, path)


def draw_embedding(
    xy: np.ndarray, side: np.ndarray, colour: pd.Series, title: str, path: str | Path
) -> None:
    """Scatter of a 2-D embedding: colour = class or target, crosses = the fold's test side."""
    fig, ax = plt.subplots(figsize=(6.4, 5))
    test = side == "test"
    marker = {False: ("o", "training and validation side"), True: ("x", "test side")}
    if pd.api.types.is_numeric_dtype(colour):
        for held_out in (False, True):
            rows = test == held_out
            points = ax.scatter(
                *xy[rows].T, c=colour.to_numpy()[rows], cmap="viridis", s=14,
                marker=marker[held_out][0], label=marker[held_out][1],
                vmin=colour.min(), vmax=colour.max(),
            )  # fmt: skip
        fig.colorbar(points, ax=ax, label=title)
    else:
        cmap = plt.get_cmap("tab10")
        for k, cls in enumerate(sorted(colour.astype(str).unique())):
            for held_out in (False, True):
                rows = (colour.astype(str).to_numpy() == cls) & (test == held_out)
                label = f"{cls} ({'test' if held_out else 'train/val'})"
                ax.scatter(*xy[rows].T, s=14, color=cmap(k % 10), marker=marker[held_out][0],
                           label=label)  # fmt: skip
    ax.legend(fontsize="x-small", loc="best")
    ax.set(xticks=[], yticks=[], xlabel="UMAP 1", ylabel="UMAP 2",
           title=f"VAE latent space of fold 0, coloured by {title}")  # fmt: skip
    save_figure(fig, path)
