"""Rules ``embed`` and ``embedding`` (rules/embed.smk): fold VAEs, their errors and UMAP."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from dlpipe.datasets import load_dataset
from dlpipe.io.files import read_json, write_json
from dlpipe.preprocess import FoldArrays
from dlpipe.tasks import get_task

log = logging.getLogger(__name__)


def embed_step(
    exp: Mapping[str, Any],
    fold: int,
    inputs: Mapping[str, str],
    outputs: Mapping[str, str],
    threads: int = 1,
) -> dict[str, dict[str, float]]:
    """Fit one fold's VAE, embed every sample and score the reconstruction of each side.

    Parameters
    ----------
    exp
        The experiment's config.
    fold
        Fold number.
    inputs
        ``train``, ``val``, ``test``: the fold's preprocessed ``.npz`` files; ``summary``: its
        ``preprocess.json`` (whose ``n_train`` tells SMOTE rows from samples).
    outputs
        ``model``, ``history``, ``embedding`` (TSV), ``reconstruction`` (JSON) paths.
    threads
        CPU threads for torch.

    Returns
    -------
    dict
        Reconstruction error per side.
    """
    from dlpipe.embed import (  # lazy: Lightning, 4 s
        SIDES,
        fit_vae,
        posterior_means,
        reconstruction_error,
    )

    arrays = {side: FoldArrays.load(inputs[side]) for side in SIDES}
    n_train = int(read_json(inputs["summary"])["n_train"])
    # SMOTE appends its synthetic rows after the real training rows.
    arrays["train"] = FoldArrays(
        arrays["train"].X[:n_train], arrays["train"].y[:n_train], arrays["train"].ids[:n_train]
    )
    vae = fit_vae(
        arrays["train"].X, arrays["val"].X, exp, outputs["model"], outputs["history"], threads
    )
    beta = float(exp["embed"]["beta"])
    scores = {side: reconstruction_error(vae, arr.X, beta) for side, arr in arrays.items()}
    frames = []
    for side, arr in arrays.items():
        latent = posterior_means(vae, arr.X)
        frame = pd.DataFrame(latent, columns=[f"z{i + 1}" for i in range(latent.shape[1])])
        frame.insert(0, "side", side)
        frame.insert(0, "id", arr.ids)
        frames.append(frame)
    pd.concat(frames).to_csv(outputs["embedding"], sep="\t", index=False, float_format="%.6g")
    write_json({"fold": fold, **scores}, outputs["reconstruction"])
    log.info("fold %d test reconstruction: %s", fold, scores["test"])
    return scores


def embedding_summary_step(
    exp: Mapping[str, Any],
    reconstruction_files: Sequence[str],
    embedding_tsv: str,
    dataset: str,
    meta: str,
    reconstruction_tsv: str,
    umap_png: str,
) -> pd.DataFrame:
    """Tabulate reconstruction errors over folds and draw the UMAP of one fold's embedding.

    Parameters
    ----------
    exp
        The experiment's config (``seed``).
    reconstruction_files
        Every fold's ``reconstruction.json``.
    embedding_tsv
        The embedding of the fold drawn (fold 0).
    dataset, meta
        The experiment's dataset (labels or targets colour the points).
    reconstruction_tsv, umap_png
        Outputs.

    Returns
    -------
    pandas.DataFrame
        The reconstruction table.
    """
    from dlpipe.embed import reconstruction_table, umap_coordinates  # lazy: Lightning, scanpy
    from dlpipe.plots.embeddings import draw_embedding  # lazy: matplotlib, 0.4 s

    table = reconstruction_table([read_json(p) for p in reconstruction_files])
    table.to_csv(reconstruction_tsv, sep="\t", index=False, float_format="%.6g")
    embedding = pd.read_csv(embedding_tsv, sep="\t", dtype={"id": str})
    data = load_dataset(dataset, meta)
    if get_task(data.task).categorical:
        colour = pd.Series(np.asarray(data.classes)[data.y], index=data.ids)
        title = f"class ({data.target_columns[0]})"
    else:
        colour = pd.Series(data.y[:, 0], index=data.ids)
        title = data.target_columns[0]
    latent = embedding.filter(regex=r"^z\d+$").to_numpy()
    xy = umap_coordinates(latent, int(exp["seed"]))
    draw_embedding(xy, embedding["side"].to_numpy(), colour.loc[embedding["id"]], title, umap_png)
    return table
