"""Saliency maps of held-out images: shapes, a planted square, fold models, reruns, config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from dlpipe.config import validate_config
from dlpipe.errors import ConfigError, InputError
from dlpipe.image_saliency import (
    attribution_mass,
    check_test_folds,
    explain_images,
    gradcam_layer,
    image_saliency,
    layer_name,
    saliency_maps,
    select_images,
    target_layer,
)
from dlpipe.models import build_model
from dlpipe.models.smallcnn import SmallCNN
from dlpipe.plots.saliency import display_image, saliency_panels
from dlpipe.preprocess import ImageInput
from dlpipe.report.render import render_section
from dlpipe.report.saliency import image_interpretation, randomisation_verdict

torch.set_num_threads(1)
SIZE = 16


def _cnn(seed: int, outputs: int = 2, channels: int = 1) -> SmallCNN:
    torch.manual_seed(seed)
    return SmallCNN(channels, outputs, channels=(4, 8), residual_units=1).eval()


def _squares(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dim noise; odd images hold a bright 4 × 4 square at a random place (their class)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 0.3, (n, 1, SIZE, SIZE)).astype(np.float32)
    y = np.arange(n) % 2
    masks = np.zeros((n, SIZE, SIZE), dtype=bool)
    for i in range(n):
        r, c = rng.integers(1, SIZE - 5, 2)
        masks[i, r : r + 4, c : c + 4] = True
        if y[i]:
            x[i, 0, r : r + 4, c : c + 4] += 0.6
    return x, y, masks


@pytest.fixture(scope="module")
def square_model() -> SmallCNN:
    """A small CNN trained in seconds to tell images with a bright square from those without."""
    x, y, _ = _squares(160)
    torch.manual_seed(0)
    model = SmallCNN(1, 2, channels=(8, 16), dropout=0.0)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    X, Y = torch.from_numpy(x), torch.from_numpy(y)  # noqa: N806
    generator = torch.Generator().manual_seed(0)
    for _ in range(15):
        order = torch.randperm(len(X), generator=generator)
        for start in range(0, len(X), 32):
            batch = order[start : start + 32]
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(model(X[batch]), Y[batch]).backward()
            optimiser.step()
    return model.eval()


# --- the maps ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "settings", "layer"),
    [
        ("smallcnn", {"channels": [4, 8], "residual_units": 1}, "encoder.1"),
        ("resnet", {"depth": 18}, "backbone.layer4"),
    ],
)
def test_maps_have_the_image_shape_and_are_finite(
    family: str, settings: dict[str, Any], layer: str
) -> None:
    torch.manual_seed(0)
    model = build_model({"name": family, **settings}, 3, 2).eval()
    model.requires_grad_(False)  # frozen weights (trainable_stages) still give maps
    assert layer_name(model, target_layer(model)) == layer
    images = torch.rand(2, 3, 32, 32)
    maps = saliency_maps(model, images, [0, 1], n_steps=4)
    assert maps["ig"].shape == (2, 3, 32, 32)
    assert maps["gradcam"].shape == (2, 32, 32)
    for key in ("ig", "gradcam", "delta", "prob", "output"):
        assert np.isfinite(maps[key]).all(), key
    assert (maps["gradcam"] >= 0).all()  # ReLU, as Grad-CAM defines it
    assert ((maps["prob"] > 0) & (maps["prob"] < 1)).all()


def test_a_model_without_a_named_layer_gets_no_grad_cam() -> None:
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(SIZE * SIZE, 2)).eval()
    assert target_layer(model) is None
    maps = saliency_maps(model, torch.rand(1, 1, SIZE, SIZE), [1], n_steps=4)
    assert maps["ig"].shape == (1, 1, SIZE, SIZE)
    assert not maps["gradcam"].any()


def test_planted_square_draws_the_attribution(square_model: SmallCNN) -> None:
    x, y, masks = _squares(40, seed=1)  # new images, never trained on
    with torch.no_grad():
        assert (square_model(torch.from_numpy(x)).argmax(1).numpy() == y).mean() >= 0.9
    mine = np.flatnonzero(y == 1)
    maps = explain_images(
        {0: square_model}, x[mine], np.zeros(len(mine), dtype=int), np.ones(len(mine), dtype=int)
    )
    area = masks[0].mean()  # 16 of 256 pixels
    ig = attribution_mass(maps["ig"].sum(axis=1), masks[mine])
    cam = attribution_mass(maps["gradcam"], masks[mine])
    assert np.median(ig) > 5 * area, ig
    assert np.median(cam) > 2 * area, cam
    # The randomised model's maps do not concentrate on the square as much.
    assert np.median(attribution_mass(maps["ig_random"], masks[mine])) < np.median(ig)


# --- which model explains which image -----------------------------------------------------------


def test_each_image_is_explained_by_its_own_test_fold() -> None:
    models = {f: _cnn(seed=f) for f in range(3)}
    rng = np.random.default_rng(0)
    pixels = rng.uniform(0, 1, (6, 1, SIZE, SIZE)).astype(np.float32)
    folds = np.array([2, 0, 1, 2, 1, 0])
    maps = explain_images(models, pixels, folds, np.zeros(6, dtype=int), n_steps=4)
    assert (maps["fold_used"] == folds).all()
    with torch.no_grad():
        own = [
            torch.softmax(models[f](torch.from_numpy(pixels[[i]])), 1)[0, 0].item()
            for i, f in enumerate(folds)
        ]
    np.testing.assert_allclose(maps["prob"], own, rtol=1e-5)
    with pytest.raises(InputError, match=r"no model of fold\(s\) \[5\]"):
        explain_images(models, pixels[:1], np.array([5]), np.zeros(1, dtype=int))


def _experiment(n: int = 12, folds: int = 3, seed: int = 0) -> dict[str, Any]:
    """A store of ``n`` 8-bit images, a fold table, fold models and their test predictions."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 1, SIZE, SIZE), dtype=np.uint8)
    ids = np.array([f"img{i:02d}" for i in range(n)])
    labels = np.array(["a", "b"])[np.arange(n) % 2]
    test_fold = np.arange(n) % folds
    table = pd.DataFrame(
        [
            {"fold": f, "id": i, "set": "test" if t == f else "train"}
            for f in range(folds)
            for i, t in zip(ids, test_fold, strict=True)
        ]
    )
    models = {f: _cnn(seed=10 + f) for f in range(folds)}
    scalers = {f: ImageInput("uint8", 1, [SIZE, SIZE], 255.0) for f in range(folds)}
    rows = []
    for i, f in enumerate(test_fold):
        with torch.no_grad():
            x = torch.from_numpy(scalers[f].transform(images[[i]]))
            prob = torch.softmax(models[f](x), 1)[0].numpy()
        rows.append(
            {"id": ids[i], "fold": f, "learner": "smallcnn", "y_true": labels[i],
             "y_pred": "ab"[int(prob.argmax())], "prob_a": prob[0], "prob_b": prob[1]}
        )  # fmt: skip
    exp = {"model": {"name": "smallcnn"}, "interpret": {"n_images": 2, "ig_steps": 4}, "seed": 3}
    return {
        "exp": exp, "classes": ["a", "b"], "ids": ids, "images": images, "folds": table,
        "oof": pd.DataFrame(rows), "models": models, "scalers": scalers, "test_fold": test_fold,
    }  # fmt: skip


def _run(e: dict[str, Any]) -> dict[str, Any]:
    return image_saliency(
        e["exp"], e["classes"], e["ids"], e["images"], e["folds"], e["oof"], e["models"],
        e["scalers"],
    )  # fmt: skip


def test_the_experiment_explains_images_with_the_model_of_their_test_fold() -> None:
    e = _experiment()
    result = _run(e)
    chosen = result["selected"]
    test = pd.Series(e["test_fold"], index=e["ids"])
    assert len(chosen) >= 2
    assert (chosen["fold_used"] == chosen["id"].map(test)).all()
    assert (chosen["fold"] == chosen["fold_used"]).all()
    # The explaining model gives the probability the evaluation recorded: the same model.
    assert result["facts"]["prob_difference_max"] < 1e-5
    assert result["arrays"]["pixels"].max() <= 1.0  # scaled as the fold scaled them
    assert result["facts"]["gradcam_layer"] == "encoder.1"


def test_an_image_predicted_by_a_fold_that_trained_on_it_is_refused() -> None:
    e = _experiment()
    leaked = e["oof"].assign(fold=(e["oof"]["fold"] + 1) % 3)
    with pytest.raises(InputError, match="did not hold them out"):
        _run({**e, "oof": leaked})
    with pytest.raises(InputError, match="img00"):
        check_test_folds(pd.DataFrame({"id": ["img00"], "fold": [1]}), e["folds"])


def test_selection_takes_confident_correct_and_wrong_images_per_class() -> None:
    oof = pd.DataFrame(
        {
            "id": ["p", "q", "r", "s", "t", "u", "v"],
            "fold": [0, 1, 0, 1, 0, 1, 0],
            "learner": "cnn",
            "y_true": ["a", "a", "a", "a", "b", "b", "b"],
            "y_pred": ["a", "a", "b", "a", "b", "b", "b"],
            "prob_a": [0.9, 0.7, 0.2, 0.9, 0.1, 0.3, 0.05],
            "prob_b": [0.1, 0.3, 0.8, 0.1, 0.9, 0.7, 0.95],
        }
    )
    chosen = select_images(pd.concat([oof, oof.assign(learner="other")]), "cnn", ["a", "b"], 2)
    assert sorted(chosen["id"][:2]) == ["p", "s"]  # tied at 0.9
    assert chosen["id"][2:].tolist() == ["r", "v", "t"]
    assert chosen["kind"].tolist() == ["correct", "correct", "wrong", "correct", "correct"]
    assert chosen["target"].tolist() == [0, 0, 1, 1, 1]  # the predicted class is explained
    np.testing.assert_allclose(chosen["prob"], [0.9, 0.9, 0.8, 0.95, 0.9])
    assert select_images(oof, "cnn", ["a", "b"], 1)["id"][1:].tolist() == ["r", "v"]


def test_ties_are_broken_by_the_seed_alone() -> None:
    oof = pd.DataFrame({"id": [f"i{k:02d}" for k in range(20)], "fold": np.arange(20) % 4,
                        "learner": "cnn", "y_true": "a", "y_pred": "a", "prob_a": 1.0,
                        "prob_b": 0.0})  # fmt: skip
    picks = {s: select_images(oof, "cnn", ["a", "b"], 3, seed=s)["id"].tolist() for s in range(4)}
    assert select_images(oof[::-1], "cnn", ["a", "b"], 3, seed=0)["id"].tolist() == picks[0]
    assert len({tuple(p) for p in picks.values()}) > 1  # the seed, not the names, decides


def test_reruns_are_identical() -> None:
    e = _experiment()
    first, second = _run(e), _run(e)
    for key, value in first["arrays"].items():
        assert np.array_equal(value, second["arrays"][key]), key
    pd.testing.assert_frame_equal(first["selected"], second["selected"])


# --- config, figure, report ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "experiments.e.interpret.n_images: 0 is less than the minimum of 1"),
        (21, "experiments.e.interpret.n_images: 21 is greater than the maximum of 20"),
        ("two", "experiments.e.interpret.n_images: 'two' is not of type 'integer'"),
    ],
)
def test_bad_n_images_is_refused_naming_the_key(value: Any, expected: str) -> None:
    exp = {
        "task": "classification",
        "data": {"modality": "image", "path": "images.tsv", "label_column": "label"},
        "interpret": {"n_images": value},
    }
    with pytest.raises(ConfigError) as err:
        validate_config({"experiments": {"e": exp}})
    assert expected in str(err.value)


def test_n_images_defaults_to_two_for_images() -> None:
    exp = {"task": "classification", "data": {"modality": "image", "path": "images.tsv",
                                              "label_column": "label"}}  # fmt: skip
    config = validate_config({"experiments": {"e": exp}})
    assert config["experiments"]["e"]["interpret"]["n_images"] == 2


@pytest.mark.parametrize("channels", [1, 2, 3, 5])
def test_display_image_stretches_every_channel_count(channels: int) -> None:
    rng = np.random.default_rng(0)
    dim = rng.uniform(0, 0.05, (channels, 8, 8))  # 16-bit microscopy after the fold's scale
    shown = display_image(dim)
    assert shown.shape == (8, 8, 3)
    assert shown.min() >= 0
    assert shown.max() == pytest.approx(1.0)


def _written(tmp_path: Path) -> Path:
    e = _experiment()
    result = _run(e)
    arrays = result["arrays"]
    result["selected"].to_csv(tmp_path / "saliency.tsv", sep="\t", index=False)
    saliency_panels(
        result["selected"], arrays["pixels"], arrays["ig"], arrays["gradcam"],
        tmp_path / "saliency.png",
    )  # fmt: skip
    import json  # lazy: only this helper writes the summary

    (tmp_path / "summary.json").write_text(json.dumps(result["facts"]))
    return tmp_path


def test_the_report_section_shows_the_maps_with_numbers(tmp_path: Path) -> None:
    folder = _written(tmp_path)
    assert (folder / "saliency.png").read_bytes()[:4] == b"\x89PNG"
    html = render_section(image_interpretation(folder, "img"))
    assert 'alt="saliency maps"' in html
    assert "each by the model of its own test fold" in html
    assert "Integrated gradients: median ρ = " in html
    assert "Grad-CAM of encoder.1" in html
    assert "they do not show which biological feature it uses" in html
    assert image_interpretation(tmp_path / "absent", "img") is None


def test_randomisation_verdict_follows_the_numbers() -> None:
    spread = {"min": 0.1, "max": 0.9, "n": 4}
    assert "read them with care" in randomisation_verdict("IG", {**spread, "median": 0.6})
    assert "change partly" in randomisation_verdict("IG", {**spread, "median": 0.3})
    assert "as maps of what the model learned must" in randomisation_verdict(
        "IG", {**spread, "median": 0.05}
    )
    assert "no rank correlation" in randomisation_verdict("IG", {"median": None})
    # Anti-correlated maps follow the image as much as correlated ones.
    flipped = {**spread, "median": -0.8, "median_abs": 0.8}
    assert "read them with care" in randomisation_verdict("Grad-CAM", flipped)


def test_grad_cam_is_not_drawn_from_feature_maps_too_coarse_to_localise() -> None:
    torch.manual_seed(0)
    model = build_model({"name": "resnet", "depth": 18}, 1, 2).eval()
    layer, reason = gradcam_layer(model, (1, 32, 32))  # five halvings: 1 × 1 maps
    assert layer is None
    assert reason is not None
    assert "1 × 1" in reason
    assert "32 × 32" in reason
    maps = saliency_maps(model, torch.rand(2, 1, 32, 32), [0, 1], n_steps=4)
    assert not maps["gradcam"].any()  # no flat map passed off as an answer
    assert np.isfinite(maps["ig"]).all()
    layer, reason = gradcam_layer(model, (1, 128, 128))  # 4 × 4 maps: drawn
    assert layer is model.backbone.layer4
    assert reason is None
