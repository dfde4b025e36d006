"""The headless matplotlib every figure is drawn with, and how a figure is saved."""

from __future__ import annotations

from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt

# Fixed metadata keeps PNG bytes identical between reruns.
_PNG_META = {"Software": None}

__all__ = ["plt", "save_figure"]


def save_figure(fig: plt.Figure, path: str | Path, layout: bool = True) -> None:
    """Lay out (unless the caller did), write as PNG (100 dpi, fixed metadata), close."""
    if layout:
        fig.tight_layout()
    fig.savefig(path, dpi=100, metadata=_PNG_META)
    plt.close(fig)
