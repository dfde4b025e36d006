"""The image modality: from a folder or table of images to fold arrays, baselines and batches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import tifffile
import torch
from PIL import Image

from dlpipe.config import validate_config
from dlpipe.datasets import IMAGE_STORE, ImageDataset, load_dataset
from dlpipe.errors import ConfigError, InputError
from dlpipe.io.files import read_json
from dlpipe.modalities import get_modality
from dlpipe.preprocess import ImageInput
from dlpipe.report.trust import split_guard
from dlpipe.split import fold_indices
from dlpipe.tasks import dataset_folds, get_task

torch.set_num_threads(1)
MODALITY = get_modality("image")


def _images(folder: Path, per_group: int = 3, groups: int = 4, size: int = 12) -> Path:
    """Write 16-bit TIFFs: bright centre (``spot``) or not (``flat``), ``groups`` regions each."""
    rng = np.random.default_rng(0)
    rows = []
    for label in ("flat", "spot"):
        (folder / "imgs" / label).mkdir(parents=True, exist_ok=True)
        for g in range(groups):
            for i in range(per_group):
                pixels = rng.integers(0, 200, (size, size), dtype=np.uint16)
                if label == "spot":
                    pixels[size // 3 : 2 * size // 3, size // 3 : 2 * size // 3] += 2000
                name = f"imgs/{label}/g{g}_{i}.tif"
                tifffile.imwrite(folder / name, pixels)
                rows.append({"path": name, "label": label, "region": f"r{g}", "note": i})
    pd.DataFrame(rows).to_csv(folder / "images.tsv", sep="\t", index=False)
    return folder


def _exp(path: str, **data: Any) -> dict[str, Any]:
    cv = data.pop("cv", {"plan": "group_kfold", "n_splits": 2})
    model = data.pop("model", {})
    config = {
        "experiments": {
            "img": {
                "task": "classification",
                "data": {"modality": "image", "path": path, **data},
                "cv": cv,
                "model": model,
            }
        }
    }
    return validate_config(config)["experiments"]["img"]


def _table_exp(folder: Path, **extra: Any) -> dict[str, Any]:
    return _exp(str(folder / "images.tsv"), label_column="label", group_column="region", **extra)


def test_a_table_prepares_a_store_and_group_folds_keep_regions_whole(tmp_path: Path) -> None:
    _images(tmp_path)
    exp = _table_exp(tmp_path, image_size=16)
    assert exp["model"]["name"] == "smallcnn"
    out = tmp_path / "results"
    out.mkdir()
    data, checksums = MODALITY.prepare("img", exp, out)
    assert list(checksums) == [str(tmp_path / "images.tsv")]
    data.save(out / "dataset.parquet", out / "dataset.json")
    data = load_dataset(out / "dataset.parquet", out / "dataset.json")
    assert isinstance(data, ImageDataset)
    assert data.images.shape == (24, 1, 16, 16)
    assert data.images.dtype == np.uint16
    assert data.meta["resized"] == 24
    assert data.meta["n_groups"] == 4
    assert "note" in data.listing.columns  # the table's extra columns are kept
    folds = dataset_folds(data, exp)
    groups = dict(zip(data.ids, data.groups, strict=True))
    for _, fold in folds.groupby("fold"):
        test = {groups[i] for i in fold.loc[fold["set"] == "test", "id"]}
        rest = {groups[i] for i in fold.loc[fold["set"] != "test", "id"]}
        assert test
        assert not test & rest
    _, _, summary = MODALITY.preprocess_fold(data, fold_indices(folds, 1, data.ids), exp)
    assert summary["groups_on_both_sides"] == 0
    info = read_json(out / "dataset.json")
    assert split_guard(exp, info).endswith("whole groups of region per fold.")
    facts = dict(MODALITY.data_facts(info, exp))
    assert facts["groups"].startswith("4 in column region")
    assert "16 × 16 pixels, 1 channel(s), uint16" in facts["image size"]


def test_fold_arrays_are_scaled_on_the_training_side_and_baseline_reads_them(
    tmp_path: Path,
) -> None:
    _images(tmp_path)
    exp = _exp(str(tmp_path / "imgs"), cv={"plan": "stratified_kfold", "n_splits": 2})
    data, _ = MODALITY.prepare("img", exp, tmp_path)
    assert data.store == tmp_path / IMAGE_STORE
    assert data.meta["form"] == "folder"
    assert data.ids[0] == "flat/g0_0.tif"
    index = fold_indices(dataset_folds(data, exp), 0, data.ids)
    arrays, fitted, summary = MODALITY.preprocess_fold(data, index, exp)
    assert isinstance(fitted, ImageInput)
    assert fitted.dtype == "uint16"
    train = arrays["train"].X
    assert train.dtype == np.float32
    assert train.shape[1:] == (1, 12, 12)
    assert train[:].max() == pytest.approx(1.0)  # the training side's brightest pixel
    assert fitted.scale == float(np.asarray(data.images)[index["train"]].max())
    assert summary["n_model_features"] == 144
    task = get_task("classification")
    baseline = MODALITY.make_baseline(exp, task, "linear").fit(train, arrays["train"].y)
    assert baseline.predict_proba(arrays["test"].X).shape == (len(index["test"]), 2)
    assert MODALITY.baseline_name(exp, task) == "pixels_logistic_regression"


def test_augmentation_touches_training_batches_only() -> None:
    from dlpipe.train import SupervisedModule, augment_images

    torch.manual_seed(0)
    x = torch.rand(64, 1, 8, 8)
    out = augment_images(x)
    assert out.shape == x.shape
    assert not torch.equal(out, x)
    # Flips and rotations move pixels, the gain scales them: sums change by ±10 % at most.
    ratio = out.sum(dim=(1, 2, 3)) / x.sum(dim=(1, 2, 3))
    assert ((ratio > 0.89) & (ratio < 1.11)).all()
    wide = augment_images(torch.rand(4, 3, 8, 6))
    assert wide.shape == (4, 3, 8, 6)
    module = SupervisedModule({"name": "smallcnn", "channels": [4]}, 1, 2, "cross_entropy",
                              augment=True)  # fmt: skip
    seen: list[torch.Tensor] = []
    module._step = lambda batch, name: seen.append(batch[0]) or torch.tensor(0.0)  # type: ignore[method-assign]
    y = torch.zeros(64, dtype=torch.long)
    module.training_step((x, y), 0)
    module.validation_step((x, y), 0)
    assert not torch.equal(seen[0], x)  # training batch augmented
    assert torch.equal(seen[1], x)  # validation batch as it is


def test_bad_images_are_named(tmp_path: Path) -> None:
    _images(tmp_path)
    (tmp_path / "imgs" / "spot" / "g0_0.tif").write_bytes(b"not a tiff at all")
    with pytest.raises(InputError, match=r"g0_0\.tif"):
        MODALITY.describe_data("img", _table_exp(tmp_path))


def test_a_class_smaller_than_the_folds_is_refused(tmp_path: Path) -> None:
    _images(tmp_path, per_group=1, groups=2)
    exp = _exp(str(tmp_path / "imgs"), cv={"plan": "stratified_kfold", "n_splits": 3})
    with pytest.raises(InputError, match="fewer images than the 3 cross-validation folds"):
        MODALITY.describe_data("img", exp)


def test_one_group_is_refused(tmp_path: Path) -> None:
    _images(tmp_path)
    table = pd.read_csv(tmp_path / "images.tsv", sep="\t").assign(region="r0")
    table.to_csv(tmp_path / "images.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match="one group"):
        MODALITY.describe_data("img", _table_exp(tmp_path))


def test_config_rules(tmp_path: Path) -> None:
    _images(tmp_path)
    with pytest.raises(ConfigError, match="group_column"):
        _exp(str(tmp_path / "imgs"), group_column="region")
    with pytest.raises(ConfigError, match="group_kfold needs"):
        _exp(str(tmp_path / "images.tsv"), label_column="label")
    with pytest.raises(ConfigError, match="'mlp' reads features"):
        _table_exp(tmp_path, model={"name": "mlp"})
    line = MODALITY.describe_data("img", _table_exp(tmp_path))
    assert line == "img: 24 images (flat: 12, spot: 12) in 4 groups"


def test_new_images_are_read_like_training_images(tmp_path: Path) -> None:
    from dlpipe.modalities.image import read_new_images

    _images(tmp_path)
    ids, pixels = read_new_images(tmp_path / "imgs", [16, 16])
    assert pixels.shape == (24, 1, 16, 16)
    assert ids[0] == "flat/g0_0.tif"
    ids, pixels = read_new_images(tmp_path / "images.tsv", [12, 12])
    assert ids[0] == "imgs/flat/g0_0.tif"
    assert pixels.dtype == np.uint16
    fitted = ImageInput("uint16", 1, [12, 12], 2000.0)
    assert fitted.transform(pixels).dtype == np.float32
    with pytest.raises(InputError, match="trained on"):
        fitted.transform(pixels[:, :, :8])


def test_prepare_reads_the_store_of_the_image_store_step_unless_an_image_changed(
    tmp_path: Path,
) -> None:
    from dlpipe.steps.image import image_store_step

    _images(tmp_path)
    exp = _table_exp(tmp_path, image_size=16)
    store = tmp_path / "results" / IMAGE_STORE
    image_store_step("img", exp, str(store))
    assert MODALITY.prepare_inputs("img", exp)["store"] == f"results/img/{IMAGE_STORE}"
    written = store.stat().st_mtime_ns
    data, _ = MODALITY.prepare("img", exp, store.parent)
    assert store.stat().st_mtime_ns == written  # read, not decoded again
    assert data.images.shape == (24, 1, 16, 16)
    tifffile.imwrite(tmp_path / "imgs" / "flat" / "g0_0.tif", np.zeros((12, 12), np.uint16))
    data, _ = MODALITY.prepare("img", exp, store.parent)
    assert store.stat().st_mtime_ns != written
    assert data.images[0].max() == 0


def _group_folders(folder: Path, patients: int = 4, per_patient: int = 2) -> Path:
    """Write ``imgs/<class>/<patient>/<i>.png``; patients p0 … are shared by both classes."""
    rng = np.random.default_rng(3)
    for label in ("flat", "spot"):
        for p in range(patients):
            (folder / "imgs" / label / f"p{p}").mkdir(parents=True, exist_ok=True)
            for i in range(per_patient):
                pixels = rng.integers(0, 100, (10, 10), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / "imgs" / label / f"p{p}" / f"{i}.png")
    return folder / "imgs"


def test_group_folders_keep_each_patient_within_one_fold(tmp_path: Path) -> None:
    root = _group_folders(tmp_path)
    exp = _exp(str(root), group_level=1, cv={"plan": "group_kfold", "n_splits": 4})
    assert MODALITY.describe_data("img", exp) == "img: 16 images (flat: 8, spot: 8) in 4 groups"
    out = tmp_path / "results"
    out.mkdir()
    data, _ = MODALITY.prepare("img", exp, out)
    assert data.meta["n_groups"] == 4
    assert data.meta["group_level"] == 1
    folds = dataset_folds(data, exp)
    groups = dict(zip(data.ids, data.groups, strict=True))
    test_fold: dict[str, set[int]] = {}
    for fold, rows in folds.groupby("fold"):
        test = {groups[i] for i in rows.loc[rows["set"] == "test", "id"]}
        rest = {groups[i] for i in rows.loc[rows["set"] != "test", "id"]}
        assert test
        assert not test & rest  # a patient's images of both classes stay together
        for group in test:
            test_fold.setdefault(group, set()).add(int(fold))
    assert sorted(test_fold) == ["p0", "p1", "p2", "p3"]
    assert all(len(f) == 1 for f in test_fold.values())
    data.save(out / "dataset.parquet", out / "dataset.json")
    info = read_json(out / "dataset.json")
    assert split_guard(exp, info).endswith("whole groups of group folders per fold.")
    assert dict(MODALITY.data_facts(info, exp))["groups"].startswith("4 group folders")


def test_group_level_config_rules(tmp_path: Path) -> None:
    root = _group_folders(tmp_path)
    _images(tmp_path)
    with pytest.raises(ConfigError, match=r"data\.group_level: cv\.plan group_kfold"):
        _exp(str(root), cv={"plan": "group_kfold", "n_splits": 2})
    with pytest.raises(ConfigError, match=r"data\.group_level: a table names"):
        _table_exp(tmp_path, group_level=1)
    with pytest.raises(ConfigError, match=r"data\.group_column: data\.path is a folder"):
        _exp(str(root), group_column="region")
    with pytest.raises(ConfigError, match=r"group_level"):
        validate_config(
            {
                "experiments": {
                    "t": {
                        "task": "classification",
                        "data": {"path": str(tmp_path / "images.tsv"), "label_column": "label",
                                 "group_level": 1},
                    }
                }
            }
        )  # fmt: skip
    # A single group folder is named with the key and the fix, before anything is decoded.
    one = tmp_path / "one"
    for label in ("flat", "spot"):
        for i in range(3):
            (one / label / "slide1").mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.zeros((4, 4), np.uint8)).save(one / label / "slide1" / f"{i}.png")
    exp = _exp(str(one), group_level=1, cv={"plan": "stratified_kfold", "n_splits": 2})
    with pytest.raises(InputError, match=r"one group \('slide1'\).*data\.group_level"):
        MODALITY.describe_data("img", exp)
