"""The image store: decoded once, memory-mapped, resized with antialiasing, written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
from PIL import Image

import dlpipe.image_store as image_store
from dlpipe.errors import InputError
from dlpipe.image_listing import list_image_folder, list_image_table
from dlpipe.image_store import open_image_store, resize_image, sidecar, write_image_store
from dlpipe.io.files import sha256


def _images(root: Path, dtype: str = "uint16", sizes: tuple[int, ...] = (20, 24)) -> Path:
    rng = np.random.default_rng(0)
    top = np.iinfo(dtype).max
    for label in ("a", "b"):
        for i, size in enumerate(sizes * 2):
            pixels = rng.integers(0, top, (size, size + 2), dtype=dtype, endpoint=True)
            (root / label).mkdir(parents=True, exist_ok=True)
            tifffile.imwrite(root / label / f"{i}.tif", pixels)
    return root


def test_the_store_is_memory_mapped_and_rereads_identical(tmp_path: Path) -> None:
    listing = list_image_folder(_images(tmp_path / "data", sizes=(16,)))
    out = tmp_path / "store" / "images.npy"
    meta = write_image_store(listing, out)
    store = open_image_store(out)
    assert isinstance(store.images, np.memmap)
    assert store.images.shape == (4, 1, 16, 18)
    assert store.images.dtype == np.uint16
    assert meta["resize"] == "none"
    for row, path in enumerate(listing["path"]):
        np.testing.assert_array_equal(store.images[row, 0], tifffile.imread(path))
    assert store.ids == listing["id"].tolist()
    assert store.labels == ["a", "a", "b", "b"]
    assert store.meta["sha256"] == [sha256(p) for p in listing["path"]]
    assert store.meta["original_sizes"] == [[16, 18]] * 4
    batch = store.batch([3, 0])
    assert not isinstance(batch, np.memmap)
    np.testing.assert_array_equal(batch, np.asarray(store.images)[[3, 0]])


def test_a_rerun_writes_identical_bytes(tmp_path: Path) -> None:
    listing = list_image_folder(_images(tmp_path / "data"))
    first, second = tmp_path / "1" / "s.npy", tmp_path / "2" / "s.npy"
    write_image_store(listing, first, size=12)
    write_image_store(listing, second, size=12)
    assert first.read_bytes() == second.read_bytes()
    assert sidecar(first).read_bytes() == sidecar(second).read_bytes()
    assert not [p.name for p in first.parent.iterdir() if "tmp" in p.name]


def test_resizing_is_antialiased_bilinear_and_keeps_the_dtype(tmp_path: Path) -> None:
    # A one-pixel checkerboard shrunk by 4 is flat grey when antialiased, not black and white.
    board = ((np.indices((32, 32)).sum(axis=0) % 2) * 255).astype(np.uint8)[..., None]
    small = resize_image(board, (8, 8))
    assert small.shape == (1, 8, 8)
    assert small.dtype == np.uint8
    assert np.abs(small.astype(int) - 128).max() <= 2
    # Same filter as Pillow's bilinear resize (which also widens the kernel when shrinking).
    y, x = np.mgrid[0:40, 0:30]
    smooth = ((y * 5 + x * 3) % 251).astype(np.uint8)
    pillow = np.asarray(Image.fromarray(smooth).resize((10, 13), Image.Resampling.BILINEAR))
    ours = resize_image(smooth[..., None], (13, 10))[0]
    assert np.abs(ours.astype(int) - pillow).max() <= 1
    # uint16 stays within range; a same-size image is copied exactly.
    deep = np.full((9, 9, 2), 65535, np.uint16)
    assert resize_image(deep, (4, 4)).max() == 65535
    np.testing.assert_array_equal(resize_image(deep, (9, 9)), np.moveaxis(deep, -1, 0))


def test_images_of_several_sizes_need_a_size(tmp_path: Path) -> None:
    listing = list_image_folder(_images(tmp_path / "data", sizes=(20, 24)))
    with pytest.raises(InputError, match=r"differ in size .* set the image size"):
        write_image_store(listing, tmp_path / "s.npy")
    meta = write_image_store(listing, tmp_path / "s.npy", size=[10, 12])
    assert meta["shape"] == [8, 1, 10, 12]
    assert meta["original_sizes"][:2] == [[20, 22], [24, 26]]
    assert "antialias" in meta["resize"]


def test_a_failed_write_leaves_no_partial_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _images(tmp_path / "data", sizes=(16,))
    listing = list_image_folder(data)
    out = tmp_path / "s.npy"
    write_image_store(listing, out)
    before = out.read_bytes(), sidecar(out).read_bytes()
    # A file damaged after listing: the decode fails half-way through the write.
    Path(listing["path"].iloc[2]).write_bytes(Path(listing["path"].iloc[2]).read_bytes()[:200])
    with pytest.raises(InputError, match=r"b/0.tif: unreadable or damaged"):
        write_image_store(listing, out)
    assert (out.read_bytes(), sidecar(out).read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "s.json", "s.npy"]

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    fresh = tmp_path / "new" / "s.npy"
    monkeypatch.setattr(image_store, "write_json", broken)
    with pytest.raises(OSError, match="No space"):
        write_image_store(listing.iloc[:2], fresh)
    assert list(fresh.parent.iterdir()) == []


def test_an_incomplete_or_mismatched_store_is_refused(tmp_path: Path) -> None:
    listing = list_image_folder(_images(tmp_path / "data", sizes=(16,)))
    out = tmp_path / "s.npy"
    write_image_store(listing, out)
    np.save(out, np.zeros((2, 1, 4, 4), np.uint16))
    with pytest.raises(InputError, match=r"does not match s\.json"):
        open_image_store(out)
    sidecar(out).unlink()
    with pytest.raises(InputError, match="incomplete or missing"):
        open_image_store(out)
    with pytest.raises(InputError, match="ids repeat"):
        write_image_store(pd.concat([listing, listing]), out)


def test_the_shipped_nuclei_patches_load_and_agree_with_the_expert_masks(tmp_path: Path) -> None:
    resources = Path(__file__).resolve().parents[1] / "resources"
    listing = list_image_table(resources / "nuclei_patches.tsv", group_column="region", n_splits=5)
    assert listing["label"].value_counts().to_dict() == {"nucleus": 68, "background": 68}
    assert listing["group"].nunique() == 16
    folder = list_image_folder(resources / "nuclei_patches", n_splits=5)
    assert sorted(folder["path"]) == sorted(listing["path"])
    write_image_store(listing, tmp_path / "nuclei.npy")
    store = open_image_store(tmp_path / "nuclei.npy")
    assert store.images.shape == (136, 1, 32, 32)
    assert store.images.dtype == np.uint16
    image = tifffile.imread(resources / "nuclei_dsb2018_image.tif")
    mask = tifffile.imread(resources / "nuclei_dsb2018_mask.tif")
    assert len(np.setdiff1d(np.unique(mask), [0])) == 125
    for row, patch in zip(listing.itertuples(), store.images, strict=True):
        y, x = int(row.centre_y), int(row.centre_x)
        np.testing.assert_array_equal(patch[0], image[y - 16 : y + 16, x - 16 : x + 16])
        window = mask[y - 16 : y + 16, x - 16 : x + 16]
        assert row.n_nuclei == len(np.setdiff1d(np.unique(window), [0]))
        # Patches lie wholly inside their 128-pixel region: no pixel is shared across groups.
        assert row.group == f"r{(y - 16) // 128}c{(x - 16) // 128}"
        assert (y + 15) // 128 == (y - 16) // 128
        assert (x + 15) // 128 == (x - 16) // 128
        if row.label == "background":
            assert not window.any()
        else:  # centred on the rounded centroid of the annotated nucleus it names
            cy, cx = np.argwhere(mask == int(row.nucleus_id)).mean(axis=0)
            assert (round(cy), round(cx)) == (y, x)


def test_the_shipped_counting_windows_follow_from_the_expert_mask() -> None:
    resources = Path(__file__).resolve().parents[1] / "resources"
    table = pd.read_csv(resources / "nuclei_count_patches.tsv", sep="\t")
    assert table["label"].value_counts().to_dict() == {"single": 254, "crowded": 142}
    assert table["region"].nunique() == 16
    image = tifffile.imread(resources / "nuclei_dsb2018_image.tif")
    mask = tifffile.imread(resources / "nuclei_dsb2018_mask.tif")
    for row in table.itertuples():
        y, x = int(row.centre_y), int(row.centre_x)
        np.testing.assert_array_equal(
            tifffile.imread(resources / row.path), image[y - 16 : y + 16, x - 16 : x + 16]
        )
        window = mask[y - 16 : y + 16, x - 16 : x + 16]
        _, pixels = np.unique(window[window > 0], return_counts=True)
        assert pixels.min() >= 40  # no sliver of a nucleus: the count is unambiguous
        assert row.n_nuclei == len(pixels)
        assert row.label == ("single" if len(pixels) == 1 else "crowded")
        assert row.region == f"r{(y - 16) // 128}c{(x - 16) // 128}"
        assert (y + 15) // 128 == (y - 16) // 128
        assert (x + 15) // 128 == (x - 16) // 128
    # The unlabelled tiles come from another image: none equals a labelled window.
    tiles = pd.read_csv(resources / "nuclei_unlabelled.tsv", sep="\t")
    assert len(tiles) == 434
    assert not set(tiles["sha256"]) & set(table["sha256"])
