"""The Gaussian VAE and its workflow step: shapes, ELBO, learning, reproducibility, outputs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from dlpipe.config import validate_config
from dlpipe.datasets import TabularDataset
from dlpipe.embed import fit_vae, load_vae, posterior_means, reconstruction_error
from dlpipe.errors import ConfigError
from dlpipe.io.files import read_json, write_json
from dlpipe.models.vae import GaussianVAE
from dlpipe.preprocess import FoldArrays
from dlpipe.steps.embed import embed_step, embedding_summary_step


def _low_rank(n: int, n_features: int = 30, rank: int = 3, seed: int = 0) -> np.ndarray:
    """Rows on a ``rank``-dimensional linear subspace plus 5 % noise, z-scored (float32)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, rank)) @ rng.normal(size=(rank, n_features))
    x += 0.05 * x.std() * rng.normal(size=x.shape)
    return ((x - x.mean(axis=0)) / x.std(axis=0)).astype(np.float32)


def _exp(**embed: Any) -> dict[str, Any]:
    settings = {"enabled": True, "n_latent": 3, "hidden_layers": [32], "max_epochs": 60,
                "patience": 60, "batch_size": 32, "learning_rate": 0.01, **embed}  # fmt: skip
    exp = {"task": "regression", "data": {"path": "x.csv", "target_columns": ["t"]},
           "cv": {"plan": "kfold"}, "embed": settings,
           "training": {"device": "cpu", "progress_bar": False}}  # fmt: skip
    return validate_config({"experiments": {"e": exp}})["experiments"]["e"]


def test_vae_shapes_and_posterior_mean_in_eval_mode() -> None:
    torch.manual_seed(0)
    vae = GaussianVAE(12, n_latent=4, hidden_layers=[16, 8])
    x = torch.randn(5, 12)
    vae.train()
    out = vae(x)
    assert out.recon.shape == (5, 12)
    assert out.mu.shape == out.logvar.shape == out.z.shape == (5, 4)
    assert not torch.equal(out.z, out.mu)  # a sample in training mode
    vae.eval()
    out = vae(x)
    assert torch.equal(out.z, out.mu)
    # The decoder mirrors the encoder: 12 → 16 → 8 → 2·4 and 4 → 8 → 16 → 12.
    widths = [m.out_features for m in vae.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [16, 8, 8, 8, 16, 12]


def test_elbo_terms_have_their_closed_form_values() -> None:
    vae = GaussianVAE(6, n_latent=2, hidden_layers=[4])
    x = torch.randn(3, 6)
    zeros = torch.zeros(3, 2)
    out = vae(x)._replace(recon=x.clone(), mu=zeros, logvar=zeros)
    terms = vae.elbo_terms(x, out)
    assert float(terms.kl) == pytest.approx(0.0, abs=1e-7)  # posterior = prior
    # Perfect reconstruction with unit variance: 0.5 log(2π) per feature.
    assert float(terms.nll) == pytest.approx(6 * 0.5 * math.log(2 * math.pi), rel=1e-6)
    shifted = out._replace(mu=torch.ones(3, 2))
    # KL(N(1, 1) || N(0, 1)) = 1/2 per dimension.
    assert float(vae.elbo_terms(x, shifted, beta=2.0).kl) == pytest.approx(1.0)
    assert float(vae.elbo_terms(x, shifted, beta=2.0).loss) == pytest.approx(
        float(terms.nll) + 2.0 * 1.0, rel=1e-6
    )


def test_invalid_vae_arguments() -> None:
    with pytest.raises(ValueError, match="at least one input feature and one latent"):
        GaussianVAE(0, 2)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("vae")
    x = _low_rank(300)
    train, val, test = x[:200], x[200:250], x[250:]
    vae = fit_vae(train, val, _exp(), folder / "vae.ckpt", folder / "history.tsv")
    return {"vae": vae, "folder": folder, "train": train, "val": val, "test": test}


def test_vae_learns_low_rank_structure_and_generalises(fitted: dict[str, Any]) -> None:
    test = reconstruction_error(fitted["vae"], fitted["test"])
    assert test["n"] == 50
    assert test["r2"] > 0.8  # three latent dimensions explain a rank-3 signal
    history = pd.read_csv(fitted["folder"] / "history.tsv", sep="\t")
    assert list(history.columns) == ["epoch", "train_loss", "val_loss"]
    assert history["val_loss"].min() < history["val_loss"].iloc[0]


def test_same_seed_gives_the_same_embedding(fitted: dict[str, Any], tmp_path: Path) -> None:
    again = fit_vae(fitted["train"], fitted["val"], _exp(), tmp_path / "v.ckpt", tmp_path / "h")
    np.testing.assert_array_equal(
        posterior_means(again, fitted["test"]), posterior_means(fitted["vae"], fitted["test"])
    )
    reloaded = load_vae(fitted["folder"] / "vae.ckpt")
    np.testing.assert_array_equal(
        posterior_means(reloaded, fitted["test"]), posterior_means(fitted["vae"], fitted["test"])
    )
    other = fit_vae(fitted["train"], fitted["val"], {**_exp(), "seed": 1}, tmp_path / "o.ckpt",
                    tmp_path / "o")  # fmt: skip
    assert not np.allclose(
        posterior_means(other, fitted["test"]), posterior_means(fitted["vae"], fitted["test"])
    )


def _fold(folder: Path, x: np.ndarray, n_smote: int) -> dict[str, str]:
    """A fold's npz files: 40 training rows (+ ``n_smote`` synthetic ones), 10 val, 10 test."""
    ids = np.array([f"s{i:02d}" for i in range(len(x))])
    y = (x[:, 0] > 0).astype(np.int64)
    smote = x[:n_smote] + 0.01
    sides = {
        "train": FoldArrays(np.vstack([x[:40], smote]), np.r_[y[:40], y[:n_smote]],
                            np.r_[ids[:40], [f"smote_{i}" for i in range(n_smote)]]),
        "val": FoldArrays(x[40:50], y[40:50], ids[40:50]),
        "test": FoldArrays(x[50:60], y[50:60], ids[50:60]),
    }  # fmt: skip
    paths = {}
    for side, arrays in sides.items():
        paths[side] = str(folder / f"{side}.npz")
        arrays.save(paths[side])
    paths["summary"] = str(folder / "preprocess.json")
    write_json({"n_train": 40, "n_smote_samples": n_smote}, paths["summary"])
    return paths


def test_embed_step_embeds_every_sample_once_and_leaves_smote_rows_out(tmp_path: Path) -> None:
    inputs = _fold(tmp_path, _low_rank(60, n_features=8), n_smote=6)
    outputs = {name: str(tmp_path / name) for name in ("model", "history", "embedding",
                                                       "reconstruction")}  # fmt: skip
    exp = _exp(n_latent=2, max_epochs=5)
    scores = embed_step(exp, 3, inputs, outputs)
    embedding = pd.read_csv(outputs["embedding"], sep="\t")
    assert list(embedding.columns) == ["id", "side", "z1", "z2"]
    assert sorted(embedding["id"]) == [f"s{i:02d}" for i in range(60)]
    assert embedding.groupby("side").size().to_dict() == {"test": 10, "train": 40, "val": 10}
    assert np.isfinite(embedding[["z1", "z2"]].to_numpy()).all()
    record = read_json(outputs["reconstruction"])
    assert record["fold"] == 3
    assert {side: record[side]["n"] for side in ("train", "val", "test")} == {
        "train": 40, "val": 10, "test": 10}  # fmt: skip
    assert record["test"]["mse"] == pytest.approx(scores["test"]["mse"])
    # The test side is encoded by the saved model exactly as written.
    test = FoldArrays.load(inputs["test"])
    written = embedding.set_index("id").loc[test.ids.astype(str), ["z1", "z2"]].to_numpy()
    np.testing.assert_allclose(
        written, posterior_means(load_vae(outputs["model"]), test.X), rtol=1e-5
    )


def test_embedding_summary_tables_folds_and_draws_the_umap(tmp_path: Path) -> None:
    x = _low_rank(60, n_features=8)
    index = pd.Index([f"s{i:02d}" for i in range(60)], name="sample_id")
    table = pd.DataFrame(x, columns=[f"g{i}" for i in range(8)], index=index)
    table["state"] = np.where(x[:, 0] > 0, "high", "low")
    dataset = TabularDataset(table, "classification", [f"g{i}" for i in range(8)], [], ["state"],
                             classes=["high", "low"])  # fmt: skip
    dataset.save(tmp_path / "dataset.parquet", tmp_path / "dataset.json")
    files = []
    for fold in range(2):
        folder = tmp_path / str(fold)
        folder.mkdir()
        outputs = {name: str(folder / name) for name in ("model", "history", "embedding",
                                                         "reconstruction")}  # fmt: skip
        embed_step(_exp(n_latent=2, max_epochs=3), fold, _fold(folder, x, 0), outputs)
        files.append(outputs["reconstruction"])
    summary = embedding_summary_step(
        _exp(), files, str(tmp_path / "0" / "embedding"), str(tmp_path / "dataset.parquet"),
        str(tmp_path / "dataset.json"), str(tmp_path / "reconstruction.tsv"),
        str(tmp_path / "umap.png"),
    )  # fmt: skip
    assert list(summary[["fold", "side"]].itertuples(index=False, name=None)) == [
        (0, "train"), (0, "val"), (0, "test"), (1, "train"), (1, "val"), (1, "test")]  # fmt: skip
    assert pd.read_csv(tmp_path / "reconstruction.tsv", sep="\t").shape == (6, 6)
    assert (tmp_path / "umap.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"modality": "sequence", "genome": "g.fa", "bed": {"t": "t.bed"}}, "not sequences"),
        (
            {"modality": "singlecell", "path": "c.h5ad", "batch_column": "b", "label_column": "y"},
            "scVI already is the VAE",
        ),
    ],
)
def test_embed_is_for_tables(data: dict[str, Any], message: str) -> None:
    exp = {"task": "classification", "data": data, "embed": {"enabled": True}}
    with pytest.raises(ConfigError, match=message):
        validate_config({"experiments": {"e": exp}})
