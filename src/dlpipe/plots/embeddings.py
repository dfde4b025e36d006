"""Embeddings seen from above: UMAPs of an integration, and of a VAE's latent space."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from dlpipe.cells import (
    METHODS,
    PROBABILITY,
    TRANSFERRED,
    UNKNOWN,
    methods_of,
    umap_key,
)
from dlpipe.plots.canvas import plt, save_figure

if TYPE_CHECKING:
    import anndata as ad


def umap_figure(adata: ad.AnnData, batch_col: str, label_col: str, path: str | Path) -> None:
    """Draw the UMAP of every integration method by batch, label and transferred label.

    Rows are the methods (unintegrated PCA first), columns the colourings (scANVI's transferred
    label only when scANVI ran: grey for cells whose label it saw, black for ``unknown``);
    unlabelled cells are light grey.
    """
    colour_by = [(batch_col, "batch"), (label_col, "label")]
    if TRANSFERRED in adata.obs:
        colour_by.append((TRANSFERRED, "scANVI label transfer"))
    rows = [(METHODS[m][0], umap_key(m)) for m in METHODS if m in methods_of(adata)]
    label_names = sorted(adata.obs[label_col].dropna().astype(str).unique())
    fig, axes = plt.subplots(
        len(rows),
        len(colour_by),
        figsize=(4.2 * len(colour_by) + 2.2, 3.9 * len(rows)),
        squeeze=False,
    )
    for j, (column, what) in enumerate(colour_by):
        values = adata.obs[column].astype(object)
        categories = sorted(values.dropna().astype(str).unique())
        if column != batch_col:
            categories = label_names + [
                c for c in categories if c not in label_names and c != UNKNOWN
            ]
        cmap = plt.get_cmap("tab10" if len(categories) <= 10 else "tab20")
        grey = "label seen by scANVI" if column == TRANSFERRED else "unlabelled"
        for i, (title, key) in enumerate(rows):
            ax = axes[i, j]
            xy = adata.obsm[key]
            missing = values.isna().to_numpy()
            if missing.any():
                ax.scatter(*xy[missing].T, s=3, c="#d0d0d0", label=grey, rasterized=True)
            for k, cat in enumerate(categories):
                rows_k = (values.astype(str) == cat).to_numpy() & ~missing
                if rows_k.any():
                    ax.scatter(
                        *xy[rows_k].T, s=3, color=cmap(k % cmap.N), label=cat, rasterized=True
                    )
            unknown = (values.astype(str) == UNKNOWN).to_numpy() & ~missing
            if column == TRANSFERRED and unknown.any():
                ax.scatter(*xy[unknown].T, s=4, c="black", label=UNKNOWN, rasterized=True)
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


def transfer_figure(
    obs: pd.DataFrame, batch_col: str, label_col: str, threshold: float, path: str | Path
) -> None:
    """Draw scANVI's confidence per batch and the composition of the transferred labels.

    Left: histogram of the most probable label's probability for each batch's transferred
    cells, with the acceptance threshold. Right: per batch, the share of each transferred label
    (``unknown`` in black) beside the composition of the labels scANVI was trained on.
    """
    targets = obs[TRANSFERRED].notna().to_numpy()
    batches = obs[batch_col].astype(str)
    reference = obs.loc[~targets, label_col].dropna().astype(str)
    labels = sorted(set(reference) | set(obs.loc[targets, TRANSFERRED].astype(str)) - {UNKNOWN})
    cmap = plt.get_cmap("tab10" if len(labels) <= 10 else "tab20")
    colours = {c: cmap(k % cmap.N) for k, c in enumerate(labels)} | {UNKNOWN: "black"}
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2), width_ratios=[1, 1.3])
    bins = np.linspace(0, 1, 21)
    for batch in sorted(set(batches[targets])):
        rows = targets & (batches == batch).to_numpy()
        left.hist(obs.loc[rows, PROBABILITY], bins=bins, histtype="step", linewidth=1.5,
                  label=f"{batch} ({int(rows.sum())} cells)")  # fmt: skip
    left.axvline(threshold, color="grey", linestyle="--", label=f"threshold {threshold:g}")
    left.set(xlabel="probability of the most probable label", ylabel="cells", xlim=(0, 1),
             title="scANVI confidence of transferred labels")  # fmt: skip
    left.legend(fontsize="small")
    bars = [("reference (labels seen)", reference)] + [
        (f"{b}: transferred", obs.loc[targets & (batches == b).to_numpy(), TRANSFERRED].astype(str))
        for b in sorted(set(batches[targets]))
    ]
    for y, (_, values) in enumerate(bars):
        shares = values.value_counts(normalize=True)
        start = 0.0
        for label in [*labels, UNKNOWN]:
            width = float(shares.get(label, 0.0))
            if width:
                right.barh(y, width, left=start, color=colours[label], edgecolor="white")
                start += width
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[c]) for c in [*labels, UNKNOWN]]
    right.legend(handles, [*labels, UNKNOWN], fontsize="x-small", loc="center left",
                 bbox_to_anchor=(1.01, 0.5), frameon=False)  # fmt: skip
    right.set_yticks(range(len(bars)), [name for name, _ in bars])
    right.invert_yaxis()
    right.set(xlim=(0, 1), xlabel="share of cells", title="labels per batch")
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
