"""Saliency panels of held-out images: the image, integrated gradients, Grad-CAM.

Each explained image gets three panels: the image contrast-stretched for display, the
integrated gradients summed over channels (red: evidence for the explained class, blue:
against) and the Grad-CAM map, both overlaid on the image in grey. Every map is scaled on its
own (integrated gradients to the 99th percentile of their magnitude, clipped beyond; Grad-CAM
to its largest value), so panels compare where, not how much.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dlpipe.plots.canvas import plt, save_figure

#: Percentiles of each channel mapped to black and white for display (16-bit microscopy rarely
#: fills its range; a few hot pixels would otherwise darken the rest).
STRETCH = (0.5, 99.5)
#: Opacity of a map over its image.
ALPHA = 0.6


def display_image(pixels: np.ndarray) -> np.ndarray:
    """Return ``(C, H, W)`` pixels as a displayable ``(H, W, 3)`` image in [0, 1].

    Each channel is stretched between its 0.5th and 99.5th percentiles. One channel is grey;
    two are a green/magenta composite (first channel green); three are RGB; more are shown as
    their maximum projection in grey.
    """
    pixels = np.asarray(pixels, dtype=np.float64)
    low, high = np.percentile(pixels, STRETCH, axis=(1, 2), keepdims=True)
    scaled = np.clip((pixels - low) / np.maximum(high - low, 1e-12), 0, 1)
    channels = len(scaled)
    if channels == 2:
        first, second = scaled
        return np.stack([second, first, second], axis=-1)
    if channels == 3:
        return np.moveaxis(scaled, 0, -1)
    grey = scaled.max(axis=0)
    return np.stack([grey] * 3, axis=-1)


def _title(row: pd.Series) -> str:
    mark = "" if row["kind"] == "correct" else " (wrong)"
    return (
        f"true {row['label']}, predicted {row['predicted']}{mark}\n"
        f"p = {row['prob']:.2f}, held out by fold {row['fold']}"
    )


def saliency_panels(
    table: pd.DataFrame,
    pixels: np.ndarray,
    ig: np.ndarray,
    gradcam: np.ndarray | None,
    path: str | Path,
) -> None:
    """Draw image, integrated gradients and Grad-CAM of each explained image into ``path``.

    Parameters
    ----------
    table
        One row per image: ``label``, ``predicted``, ``kind``, ``prob`` (the predicted class's
        probability), ``fold`` (the held-out fold whose model explained it).
    pixels
        ``(n, C, H, W)`` images as the model read them.
    ig
        ``(n, C, H, W)`` integrated gradients of the predicted class.
    gradcam
        ``(n, H, W)`` Grad-CAM maps, or ``None`` where the model names no layer for them.
    path
        PNG to write.
    """
    n = len(table)
    columns = 3 if gradcam is not None else 2
    blocks = 1 if n <= 8 else 2 if n <= 24 else 3  # images side by side
    rows = max(1, -(-n // blocks))
    fig, axes = plt.subplots(
        rows, columns * blocks, figsize=(2.1 * columns * blocks, 2.3 * rows), squeeze=False
    )
    for ax in axes.flat:
        ax.axis("off")
    if n == 0:
        axes[0, 0].text(0.5, 0.5, "no held-out images to explain", ha="center", va="center")
    for i, (_, row) in enumerate(table.reset_index(drop=True).iterrows()):
        r, c = i % rows, (i // rows) * columns
        shown = display_image(pixels[i])
        grey = shown.mean(axis=-1)
        axes[r, c].imshow(shown, interpolation="nearest")
        axes[r, c].set_title(_title(row), fontsize="x-small", loc="left")
        signed = ig[i].sum(axis=0)
        top = float(np.percentile(np.abs(signed), 99)) or 1.0
        axes[r, c + 1].imshow(grey, cmap="gray", interpolation="nearest")
        axes[r, c + 1].imshow(
            signed, cmap="RdBu_r", vmin=-top, vmax=top, alpha=ALPHA, interpolation="nearest"
        )
        axes[r, c + 1].set_title("integrated gradients", fontsize="x-small")
        if gradcam is not None:
            cam = gradcam[i]
            axes[r, c + 2].imshow(grey, cmap="gray", interpolation="nearest")
            axes[r, c + 2].imshow(
                cam, cmap="inferno", vmin=0, vmax=float(cam.max()) or 1.0, alpha=ALPHA
            )
            axes[r, c + 2].set_title("Grad-CAM", fontsize="x-small")
    save_figure(fig, path)
