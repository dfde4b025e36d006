"""Self-supervised pretraining of an image backbone: loss, reruns, loading, leakage, bad config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import tifffile
import torch
from PIL import Image

from dlpipe import pretrain as pretrain_module
from dlpipe.config import validate_config
from dlpipe.errors import ConfigError, InputError
from dlpipe.models import build_model
from dlpipe.pretrain import check_disjoint, pretrain, pretrain_backbone, pretrain_settings
from dlpipe.report.files import ExperimentFiles
from dlpipe.report.trust import pretraining_verdict, weights_text
from dlpipe.steps.image import pretrain_step
from dlpipe.workflow import check_inputs, extra_report_files, pretrain_images, pretrain_inputs

torch.set_num_threads(1)
CPU = {"device": "cpu", "devices": 1, "precision": "32-true", "progress_bar": False}


def _blobs(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    """Float images ``(n, 1, size, size)``: dim noise with one to three bright discs each."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = (rng.random((n, 1, size, size)) * 0.1).astype(np.float32)
    for image in out:
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.integers(4, size - 4, 2)
            image[0][(yy - cy) ** 2 + (xx - cx) ** 2 < rng.integers(6, 30)] += 0.6
    return out


def _unlabelled(folder: Path, n: int = 16) -> Path:
    """Write ``n`` 8-bit PNG tiles into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(_blobs(n, seed=1)):
        Image.fromarray((image[0].clip(0, 1) * 255).astype(np.uint8)).save(folder / f"t{i:02d}.png")
    return folder


def _target(folder: Path) -> Path:
    """Write a labelled 16-bit image table (2 classes, 4 regions) into ``folder``."""
    rows = []
    (folder / "imgs").mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(_blobs(16, seed=2)):
        name = f"imgs/x{i:02d}.tif"
        tifffile.imwrite(folder / name, (image[0] * 1000).astype(np.uint16))
        rows.append({"path": name, "label": "ab"[i % 2], "region": f"r{i % 4}"})
    pd.DataFrame(rows).to_csv(folder / "images.tsv", sep="\t", index=False)
    return folder / "images.tsv"


def _exp(table: Path, model: dict[str, Any], name: str = "img") -> dict[str, Any]:
    config = {
        "experiments": {
            name: {
                "task": "classification",
                "data": {
                    "modality": "image",
                    "path": str(table),
                    "label_column": "label",
                    "group_column": "region",
                },
                "cv": {"plan": "group_kfold", "n_splits": 2},
                "model": model,
                "training": {"device": "cpu"},
            }
        }
    }
    return validate_config(config)["experiments"][name]


def test_pretraining_lowers_its_loss() -> None:
    settings = pretrain_settings({"images": "unused", "epochs": 4, "batch_size": 12})
    state, losses = pretrain_backbone(_blobs(24), settings, {"depth": 18}, CPU, seed=0)
    assert len(losses) == 4
    assert np.mean(losses[-2:]) < losses[0]
    assert not any(k.startswith("fc.") for k in state)  # torchvision layout, no head


def test_pretraining_reruns_bit_identical_with_its_seed() -> None:
    pixels = _blobs(16)
    settings = pretrain_settings({"images": "unused", "epochs": 2, "batch_size": 8})
    state, losses = pretrain_backbone(pixels, settings, {"depth": 18}, CPU, seed=0)
    again, losses_again = pretrain_backbone(pixels, settings, {"depth": 18}, CPU, seed=0)
    assert losses_again == losses
    assert state.keys() == again.keys()
    assert all(torch.equal(state[k], again[k]) for k in state)
    other, _ = pretrain_backbone(pixels, settings, {"depth": 18}, CPU, seed=1)
    assert not torch.equal(state["conv1.weight"], other["conv1.weight"])


def test_saved_backbone_loads_into_the_target_model(tmp_path: Path) -> None:
    images = _unlabelled(tmp_path / "tiles")
    settings = {"images": str(images), "epochs": 1, "batch_size": 8}
    out, summary = tmp_path / "pre" / "backbone.pt", tmp_path / "pre" / "summary.json"
    written = pretrain(settings, {"name": "resnet"}, CPU, 0, out, summary)
    assert written["n_images"] == 16
    assert written["objective"] == "simclr"
    assert written["image_size"] == [32, 32]
    assert len(written["loss"]) == 1
    saved = torch.load(out, weights_only=True)
    model = build_model("resnet", 1, 2, weights=str(out), trainable_stages=1)
    target = model.backbone.state_dict()
    assert set(saved) == set(target)
    assert all(torch.equal(saved[k], target[k]) for k in saved)
    assert model.weights_record is not None
    assert model.weights_record.tensors == len(saved)
    assert not model.backbone.layer3[0].conv1.weight.requires_grad  # freeze policy applies
    assert model.backbone.layer4[0].conv1.weight.requires_grad


def test_the_pretrain_step_opens_only_the_unlabelled_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = _target(tmp_path / "target")
    images = _unlabelled(tmp_path / "tiles")
    model = {"name": "resnet", "pretrain": {"images": str(images), "epochs": 1, "batch_size": 8}}
    exp = _exp(table, model)
    assert exp["model"]["weights"] == "results/img/pretrain/backbone.pt"
    opened: list[Path] = []
    for name in ("read_image", "probe_image"):
        real = getattr(pretrain_module, name)

        def spy(path: Any, real: Any = real) -> Any:
            opened.append(Path(path).resolve())
            return real(path)

        monkeypatch.setattr(pretrain_module, name, spy)
    summary = pretrain_step(
        "img", exp, str(tmp_path / "out" / "backbone.pt"), str(tmp_path / "out" / "summary.json")
    )
    assert summary["n_images"] == 16
    assert set(opened) == {p.resolve() for p in images.iterdir()}
    assert not any((tmp_path / "target").resolve() in p.parents for p in opened)
    # The images of the experiment itself are refused as unlabelled images.
    own = sorted((tmp_path / "target" / "imgs").iterdir())
    with pytest.raises(InputError, match=r"model.pretrain.images: .* image of the experiment"):
        check_disjoint(own[:2], [table, *own])
    with pytest.raises(InputError, match="image of the experiment"):
        check_disjoint(own[:1], [tmp_path / "target"])


def test_bad_pretraining_settings_are_named(tmp_path: Path) -> None:
    table = _target(tmp_path / "target")
    images = _unlabelled(tmp_path / "tiles", n=4)
    with pytest.raises(ConfigError, match=r"model\.pretrain\.images: .*missing.* does not exist"):
        _exp(table, {"name": "resnet", "pretrain": {"images": str(tmp_path / "missing")}})
    with pytest.raises(ConfigError, match="objective"):
        _exp(table, {"name": "resnet", "pretrain": {"images": str(images), "objective": "mae"}})
    with pytest.raises(ConfigError, match=r"model.pretrain.objective: 'mae'"):
        pretrain_settings({"images": "x", "objective": "mae"})
    with pytest.raises(ConfigError, match=r"model.pretrain.images: give a folder"):
        pretrain_settings({})
    with pytest.raises(ConfigError, match=r"model\.pretrain: .*'smallcnn' does not"):
        _exp(table, {"name": "smallcnn", "pretrain": {"images": str(images)}})
    with pytest.raises(ConfigError, match=r"model\.weights: the backbone comes from"):
        _exp(table, {"name": "resnet", "weights": "imagenet", "pretrain": {"images": str(images)}})
    exp = _exp(table, {"name": "resnet", "pretrain": {"images": str(images), "batch_size": 8}})
    # Before any job runs (the Snakefile's input check), and in the job itself.
    with pytest.raises(
        InputError, match=r"experiments\.img\.model\.pretrain\.batch_size: 8 is more than the 4"
    ):
        check_inputs({"experiments": {"img": exp}})
    out = tmp_path / "out" / "backbone.pt"
    with pytest.raises(InputError, match=r"model.pretrain.batch_size: 8 is more than the 4"):
        pretrain_step("img", exp, str(out), str(tmp_path / "out" / "summary.json"))
    assert not out.exists()  # refused before any training, nothing written
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match=r"model.pretrain.images: .* holds no images"):
        pretrain({"images": str(empty)}, {}, CPU, 0, out, tmp_path / "s.json")
    exp["model"]["pretrain"]["images"] = str(empty)
    with pytest.raises(
        InputError, match=r"experiments\.img\.model\.pretrain\.images: .* no images"
    ):
        check_inputs({"experiments": {"img": exp}})


def test_the_workflow_and_the_report_name_the_pretrained_backbone(tmp_path: Path) -> None:
    table = _target(tmp_path / "target")
    images = _unlabelled(tmp_path / "tiles", n=4)
    tuned = _exp(table, {"name": "resnet", "pretrain": {"images": str(images)}}, "tuned")
    scratch = _exp(table, {"name": "resnet"}, "scratch")
    assert pretrain_inputs("tuned", tuned) == {"backbone": "results/tuned/pretrain/backbone.pt"}
    assert pretrain_inputs("scratch", scratch) == {}
    assert pretrain_images(tuned) == [str(images)]
    assert extra_report_files("tuned", tuned)["tuned_pretrain"] == (
        "results/tuned/pretrain/summary.json"
    )
    summary = tmp_path / "summary.json"
    summary.write_text(
        '{"n_images": 434, "source": "tiles", "objective": "simclr", "epochs": 50, '
        '"loss": [4.1, 3.2], "seconds": 90, "backbone_sha256": "ab12cd34ef567890"}'
    )
    text = weights_text(tuned, {"pretrain": str(summary)})
    assert text is not None
    assert "pretrained by dlpipe on 434 unlabelled images" in text
    assert "objective simclr" in text
    assert "every layer fine-tuned" in text
    assert weights_text(scratch, {}) == (
        "random initialisation: trained from scratch (no pretrained weights)"
    )
    assert weights_text({"model": {"name": "smallcnn"}}, {}) is None

    def files(name: str, cfg: dict[str, Any]) -> ExperimentFiles:
        return ExperimentFiles(name, cfg, "", "", "", [])

    board = pd.DataFrame(
        {
            "group": "g",
            "rank": [1, 2, 3, 4],
            "experiment": ["tuned", "scratch", "tuned", "scratch"],
            "learner": ["resnet", "resnet", "pixels_lr", "pixels_lr"],
            "metric": "auroc",
            "mean": [0.95, 0.90, 0.85, 0.85],
            "folds": 8,
        }
    )
    pairs = pd.DataFrame(
        [{"a": "tuned/resnet", "b": "scratch/resnet", "mean_difference": 0.05, "t": 2.0,
          "p_corrected_t": 0.08}]
    )  # fmt: skip
    both = [files("tuned", tuned), files("scratch", scratch)]
    verdict = pretraining_verdict("tuned", both, board, pairs)
    assert verdict is not None
    assert verdict.startswith("Pretraining: fine-tuning did not significantly beat training")
    assert "0.950 vs scratch/resnet from scratch 0.900" in verdict
    assert "p = 0.08" in verdict
    assert "pixels_lr" in verdict
    pairs.loc[0, "p_corrected_t"] = 0.01
    assert "fine-tuning beat training from scratch" in str(
        pretraining_verdict("tuned", both, board, pairs)
    )
    assert pretraining_verdict("scratch", both, board, pairs) is None
    alone = pretraining_verdict("tuned", both[:1], board, pairs)
    assert alone is not None
    assert "whether pretraining helped is not known" in alone
    # Scratch ahead but not significantly: no hint of a lead for fine-tuning.
    pairs.loc[0, ["mean_difference", "p_corrected_t"]] = [-0.05, 0.3]
    tie = str(pretraining_verdict("tuned", both, board, pairs))
    assert "no significant difference between fine-tuning and training from scratch" in tie
    # Pooled summaries have no test over folds: the paired bootstrap's p, or "not tested".
    pairs.loc[0, ["t", "p_corrected_t"]] = [np.nan, np.nan]
    assert "not tested" in str(pretraining_verdict("tuned", both, board, pairs))
    pairs["p_bootstrap"] = 0.02
    pooled = str(pretraining_verdict("tuned", both, board, pairs))
    assert "paired bootstrap p = 0.02" in pooled
    assert "fine-tuning did worse than training from scratch" in pooled
    # A counterpart trained otherwise: the settings apart are named.
    other = files(
        "scratch", {**scratch, "training": {**scratch.get("training", {}), "max_epochs": 3}}
    )
    named = str(pretraining_verdict("tuned", [both[0], other], board, pairs))
    assert "also differ in training.max_epochs" in named
