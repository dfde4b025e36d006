"""The image data path: fold sides index the memory-mapped store and are scaled per batch."""

from __future__ import annotations

import itertools
import pickle
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

import dlpipe.pixels as pixels
from dlpipe.datasets import IMAGE_STORE, ImageDataset
from dlpipe.image_listing import list_image_folder
from dlpipe.image_store import StoreImages, write_image_store
from dlpipe.models.checkpoint import raw_outputs
from dlpipe.preprocess import FoldArrays, ImageInput, preprocess_image_fold
from dlpipe.train import (
    SupervisedModule,
    loader_workers,
    make_loader,
    scale_batch,
)

torch.set_num_threads(1)


def _dataset(root: Path, dtype: str = "uint16", n: int = 10, size: int = 8) -> ImageDataset:
    """A store of ``2 n`` images in two classes, of a 12-bit range (16-bit) or the full 8 bits."""
    rng = np.random.default_rng(1)
    top = 4000 if dtype == "uint16" else 255
    for label in ("a", "b"):
        (root / "imgs" / label).mkdir(parents=True)
        for i in range(n):
            image = rng.integers(0, top, (size, size), dtype=dtype, endpoint=True)
            if dtype == "uint16":
                tifffile.imwrite(root / "imgs" / label / f"{i}.tif", image)
            else:
                Image.fromarray(image).save(root / "imgs" / label / f"{i}.png")
    listing = list_image_folder(root / "imgs")
    store = root / IMAGE_STORE
    write_image_store(listing, store)
    table = listing.set_index("id")
    return ImageDataset(listing=table, classes=["a", "b"], store=store)


def _index(n: int) -> dict[str, np.ndarray]:
    order = np.random.default_rng(2).permutation(n)
    half, three_quarters = n // 2, 3 * n // 4
    return {
        "train": order[:half],
        "val": order[half:three_quarters],
        "test": order[three_quarters:],
    }


def _old_sides(data: ImageDataset, index: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The sides as the earlier preprocess step copied them: float32 divided by the scale."""
    images = np.asarray(data.images)
    train = images[np.sort(index["train"])]
    scale = 255.0 if train.dtype == np.uint8 else float(max(int(train.max()), 1))
    return {
        side: (images[rows].astype(np.float32) / np.float32(scale)).astype(np.float32)
        for side, rows in index.items()
    }


def test_fold_sides_hold_rows_of_the_memory_mapped_store(tmp_path: Path) -> None:
    data = _dataset(tmp_path)
    index = _index(20)
    arrays, fitted, summary = preprocess_image_fold(data, index)
    assert isinstance(fitted, ImageInput)
    for side, rows in index.items():
        images = arrays[side].X
        assert isinstance(images, StoreImages)
        assert isinstance(images.pixels, np.memmap)
        assert images.pixel_dtype == np.uint16
        np.testing.assert_array_equal(images.rows, rows)
        assert images.shape == (len(rows), 1, 8, 8)
        assert images.dtype == np.float32
        with pytest.raises(TypeError, match="per batch"):
            np.asarray(images)
    # Pickled for a loader worker: the rows and the scale, never the pixels or the map.
    side = arrays["train"].X
    side[:2]  # the map is open in this process now
    clone = pickle.loads(pickle.dumps(side))
    assert clone._pixels is None
    assert len(pickle.dumps(side)) < 2_000
    np.testing.assert_array_equal(clone[:], side[:])
    # Saved: rows, the scale and the store's path relative to the fold's folder.
    fold = tmp_path / "0"
    fold.mkdir()
    arrays["test"].save(fold / "test.npz")
    with np.load(fold / "test.npz") as saved:
        assert set(saved.files) == {"rows", "scale", "store", "y", "ids"}
        assert str(saved["store"]) == f"../{IMAGE_STORE}"
    back = FoldArrays.load(fold / "test.npz")
    assert isinstance(back.X, StoreImages)
    np.testing.assert_array_equal(back.X[:], arrays["test"].X[:])
    np.testing.assert_array_equal(back.ids, arrays["test"].ids)
    assert summary["pixel_scale"] == fitted.scale


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_scaled_batches_equal_the_copies_the_sides_were_before(tmp_path: Path, dtype: str) -> None:
    data = _dataset(tmp_path, dtype)
    index = _index(20)
    arrays, fitted, _ = preprocess_image_fold(data, index)
    old = _old_sides(data, index)
    brightest = float(np.asarray(data.images)[index["train"]].max())
    assert fitted.scale == (255.0 if dtype == "uint8" else brightest)
    for side, copy in old.items():
        images = arrays[side].X
        np.testing.assert_array_equal(images[:], copy)
        np.testing.assert_array_equal(images[[3, 0, 1]], copy[[3, 0, 1]])
        # On the device, from the stored pixels: the same float32 values.
        on_device = scale_batch(torch.from_numpy(images.raw(slice(None))), images.scale)
        np.testing.assert_array_equal(on_device.numpy(), copy)
    assert fitted.transform(np.asarray(data.images)[index["val"]]).tobytes() == old["val"].tobytes()


def test_every_stored_value_scales_as_numpy_does() -> None:
    values = np.arange(2**16, dtype=np.uint16).reshape(1, 1, 256, 256)
    for scale in (1.0, 255.0, 4095.0, 2213.0, 65535.0):
        host = (values.astype(np.float32) / np.float32(scale)).astype(np.float32)
        np.testing.assert_array_equal(scale_batch(torch.from_numpy(values), scale).numpy(), host)


def test_the_baseline_and_evaluation_read_the_store_in_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _dataset(tmp_path)
    index = _index(20)
    arrays, _, _ = preprocess_image_fold(data, index)
    old = _old_sides(data, index)
    monkeypatch.setattr(pixels, "CHUNK", 3)  # several chunks on a small side
    means = pixels.DownsampledPixels(4).fit(arrays["train"].X)
    whole = pixels.block_means(old["train"], 4)  # the copy, in one piece
    np.testing.assert_array_equal(means.transform(arrays["train"].X), whole)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2))
    np.testing.assert_array_equal(
        raw_outputs(model, arrays["test"].X, batch_size=2),
        raw_outputs(model, old["test"], batch_size=2),
    )


def _batches(loader: torch.utils.data.DataLoader, epochs: int = 3) -> list[torch.Tensor]:
    """Every epoch's batches, read as Lightning reads them: as many as the loader's length."""
    return [x.clone() for _ in range(epochs) for x, _ in itertools.islice(loader, len(loader))]


def test_loader_workers_give_the_batches_of_the_training_process(tmp_path: Path) -> None:
    data = _dataset(tmp_path)
    index = _index(20)
    arrays, _, _ = preprocess_image_fold(data, index)
    side = arrays["train"]
    # 10 rows: batches of 5 fill the epoch, of 4 leave a partial last batch, of 3 a dropped one.
    for batch_size, per_epoch in ((5, 2), (4, 3), (3, 3)):
        alone = make_loader(side.X, side.y, batch_size, shuffle=True, seed=5)
        helped = make_loader(side.X, side.y, batch_size, shuffle=True, seed=5, num_workers=2)
        first, second = _batches(alone), _batches(helped)
        assert first[0].dtype == torch.uint16  # stored pixels travel; scaling is on the device
        assert len(first) == len(second) == 3 * per_epoch
        for a, b in zip(first, second, strict=True):
            assert torch.equal(a, b)
    first = _batches(make_loader(side.X, side.y, 3, shuffle=True, seed=5))
    old = torch.from_numpy(_old_sides(data, index)["train"])
    reference = make_loader(old.numpy(), side.y, 3, shuffle=True, seed=5)
    for raw, (x, _) in zip(first, reference, strict=False):
        assert torch.equal(scale_batch(raw, side.X.scale), x)


def test_loader_workers_resolve_auto_by_device() -> None:
    assert loader_workers({"num_workers": "auto"}, gpu=False, threads=8) == 0
    assert loader_workers({"num_workers": "auto"}, gpu=True, threads=8) == 4
    assert loader_workers({"num_workers": "auto"}, gpu=True, threads=2) == 2
    assert loader_workers({"num_workers": 3}, gpu=False, threads=1) == 3
    assert loader_workers({}, gpu=True, threads=4) == 0


def test_stored_batches_are_scaled_then_augmented_in_training_only() -> None:
    module = SupervisedModule({"name": "smallcnn", "channels": [4]}, 1, 2, "cross_entropy",
                              augment=True)  # fmt: skip
    module.pixel_scale = 4000.0
    raw = torch.randint(0, 4001, (6, 1, 8, 8)).to(torch.uint16)
    y = torch.zeros(6, dtype=torch.long)
    x, _ = module.on_after_batch_transfer((raw, y), 0)
    assert x.dtype == torch.float32
    assert torch.equal(x, raw.to(torch.float32) / 4000.0)
    seen: list[torch.Tensor] = []
    module._step = lambda batch, name: seen.append(batch[0]) or torch.tensor(0.0)  # type: ignore[method-assign]
    torch.manual_seed(0)
    module.training_step((x, y), 0)
    module.validation_step((x, y), 0)
    assert not torch.equal(seen[0], x)
    assert torch.equal(seen[1], x)


def test_training_on_the_store_equals_training_on_the_copies(tmp_path: Path) -> None:
    from dlpipe.tasks import get_task
    from dlpipe.train import fit

    data = _dataset(tmp_path, n=12)
    index = _index(24)
    arrays, _, _ = preprocess_image_fold(data, index)
    old = _old_sides(data, index)
    exp = {
        "seed": 0,
        "model": {"name": "smallcnn", "channels": [4, 8]},
        "training": {
            "max_epochs": 3, "patience": 5, "batch_size": 4, "learning_rate": 1e-3,
            "weight_decay": 0.0, "optimizer": "adam", "class_weights": "none", "device": "cpu",
            "devices": 1, "precision": "32-true", "progress_bar": False, "augment": True,
            "min_validation": 0, "num_workers": 0, "reverse_complement": False,
        },
    }  # fmt: skip
    task = get_task("classification")
    store = {k: a.X for k, a in arrays.items()}
    runs = {}
    for name, sides, workers in (("store", store, 0), ("copies", old, 0), ("workers", store, 2)):
        folder = tmp_path / name
        folder.mkdir()
        module = fit(
            (sides["train"], arrays["train"].y),
            (sides["val"], arrays["val"].y),
            {**exp, "training": {**exp["training"], "num_workers": workers}},
            task,
            2,
            folder / "model.ckpt",
            folder / "history.tsv",
        )
        runs[name] = (raw_outputs(module.model, old["test"]), (folder / "history.tsv").read_text())
    for name in ("store", "workers"):
        np.testing.assert_array_equal(runs[name][0], runs["copies"][0])
        assert runs[name][1] == runs["copies"][1]
