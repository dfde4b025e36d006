"""What the models learned: attribution and motif logos, feature-importance bars.

Sequence logos are drawn with logomaker: attribution logos show each position's contribution
on its observed base; motif logos show information content (bits), the learned motif beside its
significant TOMTOM match, aligned at the matched offset and strand (a motif without one is
marked "no significant match", and no candidate logo is drawn).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlpipe.interpret import ism_contributions, position_contributions
from dlpipe.motifs import information_content, reverse_complement
from dlpipe.plots.canvas import plt, save_figure

BASES = list("ACGT")


def _logo(ax: Any, matrix: pd.DataFrame, title: str = "") -> None:
    import logomaker  # lazy: dlpipe[motifs]; tables draw feature bars, no logos

    logomaker.Logo(matrix, ax=ax, color_scheme="classic", show_spines=False)
    ax.set_title(title, fontsize="small", loc="left")
    ax.tick_params(labelsize="x-small")


def attribution_logos(
    arrays: Mapping[str, Mapping[str, np.ndarray]],
    path: str | Path,
    n_shown: int = 2,
    window: int = 60,
    letters: str = "ACGT",
) -> None:
    """Integrated-gradient and in-silico-mutagenesis logos of the top sequences of each class.

    Heights are each position's contribution drawn on its observed base (negative below 0).
    Each logo shows the ``window`` positions around the sequence's largest contribution;
    ``letters`` name the one-hot channels.
    """
    panels = []
    for cls, a in arrays.items():
        for i in range(min(n_shown, len(a["ids"]))):
            onehot = a["onehot"][i]  # (4, length)
            ig = position_contributions(a["ig"][[i]])[0]
            ism = ism_contributions(a["ism"][[i]], a["onehot"][[i]])[0]
            length = len(ig)
            lo = int(np.clip(np.abs(ig).argmax() - window // 2, 0, max(0, length - window)))
            hi = min(length, lo + window)
            for name, values in (("integrated gradients", ig), ("in-silico mutagenesis", ism)):
                matrix = pd.DataFrame((onehot.T * values[:, None])[lo:hi], columns=list(letters))
                matrix.index = np.arange(lo, hi)
                panels.append((f"{cls}: {a['ids'][i]} — {name}", matrix))
    if not panels:
        empty = pd.DataFrame(np.zeros((1, len(letters))), columns=list(letters))
        panels.append(("no sequence explained", empty))
    fig, axes = plt.subplots(len(panels), 1, figsize=(12, 1.5 * len(panels)), squeeze=False)
    for ax, (title, matrix) in zip(axes[:, 0], panels, strict=True):
        _logo(ax, matrix, title)
        ax.set_ylabel("contribution", fontsize="x-small")
    save_figure(fig, path)


def _bits(ppm: np.ndarray, start: int = 0) -> pd.DataFrame:
    frame = pd.DataFrame(ppm * information_content(ppm)[:, None], columns=BASES)
    frame.index = np.arange(start, start + len(frame))
    return frame


def motif_logos(
    motifs: Sequence[Any],
    table: pd.DataFrame,
    database: Mapping[str, Any],
    path: str | Path,
) -> None:
    """Each learned motif (information content) beside its significant match, aligned.

    Parameters
    ----------
    motifs
        The learned :class:`dlpipe.io.jaspar.Motif` objects, in the order of ``table``.
    table
        ``motifs.tsv`` rows (``motif``, ``match_id``, ``match_offset``, ``match_strand``,
        ``match_e``, ``match_q``, ``best_q``); ``match_id`` is empty where no match is
        significant.
    database
        Matched motifs by id.
    path
        Output PNG.
    """
    n = max(1, len(motifs))
    fig, axes = plt.subplots(n, 2, figsize=(11, 1.9 * n), squeeze=False)
    if not motifs:
        axes[0, 0].set_title("no motif found")
    rows = table.set_index("motif") if len(table) else table
    for i, motif in enumerate(motifs):
        row = rows.loc[motif.id] if motif.id in rows.index else None
        what = f"{motif.id} ({motif.source}, {motif.n_sites} sites)"
        if np.isfinite(motif.info.get("influence", np.nan)):
            what += f", influence {motif.info['influence']:.2f}"
        _logo(axes[i, 0], _bits(motif.ppm), what)
        axes[i, 0].set_ylim(0, 2)
        ax = axes[i, 1]
        ax.axis("off")
        if row is None or "best_q" not in row:
            continue
        if pd.isna(row["match_id"]) or row["match_id"] not in database:
            ax.text(
                0.0,
                0.5,
                f"no significant match (best candidate q = {row['best_q']:.2g}, not significant)",
                fontsize="small",
                va="center",
            )
            continue
        ax.axis("on")
        target = database[row["match_id"]]
        # The match in the query's coordinates: the query's first column sits at position
        # match_offset of the matched strand of the target.
        ppm = reverse_complement(target.ppm) if row["match_strand"] == "-" else target.ppm
        positions = np.arange(len(ppm)) - int(row["match_offset"])
        # Only the matched stretch (and three columns either side) is drawn.
        shown = (positions >= -3) & (positions < motif.length + 3)
        ppm, start = ppm[shown], int(positions[shown][0])
        _logo(
            ax,
            _bits(ppm, start),
            f"match {target.id} {target.name} ({row['match_strand']} strand): "
            f"E = {row['match_e']:.2g}, q = {row['match_q']:.2g}",
        )
        ax.set_ylim(0, 2)
        for a in (axes[i, 0], ax):
            a.set_xlim(min(0, start) - 0.5, max(motif.length, start + len(ppm)) - 0.5)
    save_figure(fig, path)


def feature_bars(table: pd.DataFrame, categorical: bool, top: int, path: str | Path) -> None:
    """Top features per class (or target) by integrated gradients, and by permutation importance.

    Classes (``categorical``): mean attribution to the class's log-probability over the
    held-out rows of that class; targets: mean absolute attribution. At most six outputs are
    drawn (the first six; the title says so when there are more), three panels a row so that
    feature names stay legible.
    """
    all_outputs = list(dict.fromkeys(table["output"]))
    outputs = all_outputs[:6]
    n = len(outputs) + 1
    ncols = min(n, 3)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(3.6 * ncols, nrows * (0.24 * top + 1.2)), squeeze=False
    )
    panels = list(axes.ravel())
    for ax in panels[n:]:
        ax.set_visible(False)
    key = "ig" if categorical else "ig_abs"
    for ax, output in zip(panels, outputs, strict=False):
        rows = table[table["output"] == output]
        rows = rows.sort_values(key, ascending=False).head(top)[::-1]
        ax.barh(rows["feature"], rows[key], color="tab:blue")
        ax.set_title(f"{output}: integrated gradients", fontsize="medium")
        ax.tick_params(labelsize="small")
    perm = table.drop_duplicates("feature").sort_values("permutation", ascending=False).head(top)
    ax = panels[n - 1]
    ax.barh(
        perm["feature"][::-1],
        perm["permutation"][::-1],
        xerr=perm["permutation_sd"][::-1].fillna(0),
        color="tab:orange",
    )
    ax.set_title("permutation importance\n(score drop)", fontsize="medium")
    ax.tick_params(labelsize="small")
    if len(all_outputs) > len(outputs):
        kind = "classes" if categorical else "targets"
        fig.suptitle(
            f"integrated gradients of the first {len(outputs)} of {len(all_outputs)} {kind}",
            fontsize="medium",
        )
    save_figure(fig, path)
