"""The image store: every image decoded once, resized to one size, in one memory-mapped array.

:func:`write_image_store` decodes the images of a listing (:mod:`dlpipe.image_listing`) into
``NAME.npy``, an array of shape ``(N, C, H, W)`` in the images' own dtype (``uint8`` or
``uint16``: a quarter or half of float32), beside ``NAME.json``: ids, labels, groups, dtype,
channels, the size, each image's original size and the sha256 of each source file.
:func:`open_image_store` maps the array back with ``np.load(mmap_mode="r")``, so a batch is a
slice of the page cache, never a decode; normalisation and augmentation happen later, on the
device, per batch. :class:`StoreImages` is one side of a fold: the store's row numbers and the
fitted intensity scale, read and scaled to float32 a batch at a time.

Writes are atomic: both files are written under temporary names in the same folder and renamed
into place only when complete, the JSON last. A store whose JSON is missing is incomplete; an
interrupted write leaves neither file half-written.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlpipe.errors import InputError
from dlpipe.io.files import read_json, sha256, write_json
from dlpipe.io.images import ImageInfo, check_same_kind, probe_image, read_image

#: Images read at a time where a whole side is scanned (the scale's maximum, block means).
CHUNK = 256
#: Version of the store's layout, recorded in its JSON.
STORE_VERSION = 1
RESIZE_METHOD = "bilinear, antialiased (torch.nn.functional.interpolate, antialias=True)"


def sidecar(path: str | Path) -> Path:
    """Return the JSON file that describes the store ``path`` (``X.npy`` → ``X.json``)."""
    return Path(path).with_suffix(".json")


def _size(size: int | Sequence[int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    pair = (size, size) if isinstance(size, int) else tuple(size)
    if len(pair) != 2 or any(not isinstance(s, int) or s < 1 for s in pair):
        raise InputError(f"image size {size!r}: give one positive integer or [height, width]")
    return int(pair[0]), int(pair[1])


def resize_image(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an ``(H, W, C)`` image to ``size`` and return it channels first, ``(C, h, w)``.

    Bilinear interpolation, antialiased when shrinking, by torch's ``interpolate(mode=
    "bilinear", antialias=True)``: the triangle filter widened by the scale factor, as Pillow's
    resize does, so a downscaled image averages all the pixels it covers instead of sampling
    some (aliasing would turn texture into moiré). Torch is a core dependency and this is one
    exact, deterministic call on the CPU; MONAI's ``Resize(anti_aliasing=True)`` instead blurs
    with a Gaussian of heuristic width first and costs a heavy import in the prepare step.
    Values are rounded to the nearest integer and clipped to the dtype's range; an image
    already of the size is copied unchanged.

    Parameters
    ----------
    pixels
        ``uint8`` or ``uint16`` pixels, channels last.
    size
        ``(height, width)`` wanted.

    Returns
    -------
    numpy.ndarray
        ``(C, height, width)`` of the input's dtype.
    """
    chw = np.moveaxis(pixels, -1, 0)
    if pixels.shape[:2] == tuple(size):
        return np.ascontiguousarray(chw)
    import torch  # lazy: torch, ~1 s

    data = torch.from_numpy(np.ascontiguousarray(chw, dtype=np.float32))[None]
    resized = torch.nn.functional.interpolate(
        data, size=tuple(size), mode="bilinear", align_corners=False, antialias=True
    )[0]
    top = float(np.iinfo(pixels.dtype).max)
    return resized.round().clamp(0, top).numpy().astype(pixels.dtype)


def _common_size(infos: list[ImageInfo], where: str) -> tuple[int, int]:
    first = infos[0]
    for info in infos[1:]:
        if (info.height, info.width) != (first.height, first.width):
            raise InputError(
                f"{where}: images differ in size ({first.path} is {first.height} × {first.width}, "
                f"{info.path} is {info.height} × {info.width}) and no size was given; set the "
                "image size (e.g. 224) so dlpipe resizes them all"
            )
    return first.height, first.width


@contextlib.contextmanager
def _temporary(path: Path) -> Any:
    """Yield a temporary name beside ``path``; remove it if it is still there afterwards."""
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield temp
    finally:
        temp.unlink(missing_ok=True)


def write_image_store(
    listing: pd.DataFrame, path: str | Path, size: int | Sequence[int] | None = None
) -> dict[str, Any]:
    """Decode every image of a listing once into a memory-mappable ``.npy`` with a JSON sidecar.

    Parameters
    ----------
    listing
        Columns ``id``, ``path``, ``label``, ``group`` (see :mod:`dlpipe.image_listing`).
    path
        The ``.npy`` file to write; the sidecar is the same name with ``.json``.
    size
        ``(height, width)`` or one integer for square images; every image is resized to it
        (see :func:`resize_image`). ``None`` keeps the images' size, which they must then share.

    Returns
    -------
    dict
        The sidecar's content.

    Raises
    ------
    InputError
        If an image is unreadable, the images differ in channels, bit depth or (without
        ``size``) size, or the ids repeat.
    """
    path = Path(path)
    if path.suffix != ".npy":
        raise InputError(f"{path}: the image store is a .npy file; name it NAME.npy")
    if listing.empty:
        raise InputError(f"{path}: no images to store (the listing is empty)")
    ids = listing["id"].astype(str).tolist()
    if len(set(ids)) != len(ids):
        repeated = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise InputError(f"{path}: image ids repeat ({repeated}); give every image its own id")
    where = f"the images of {path.name}"
    infos = [probe_image(p) for p in listing["path"]]
    kind = check_same_kind(infos, where)
    shape_hw = _size(size) or _common_size(infos, where)
    shape = (len(infos), kind.channels, *shape_hw)
    meta = {
        "format": "dlpipe image store",
        "version": STORE_VERSION,
        "shape": list(shape),
        "dtype": kind.dtype,
        "channels": kind.channels,
        "size": list(shape_hw),
        "resize": RESIZE_METHOD if size is not None else "none",
        "ids": ids,
        "labels": listing["label"].astype(str).tolist(),
        "groups": listing["group"].astype(str).tolist(),
        "paths": listing["path"].astype(str).tolist(),
        "original_sizes": [[i.height, i.width] for i in infos],
        "sha256": [],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with _temporary(path) as temp_array, _temporary(sidecar(path)) as temp_json:
        # Written image by image into the mapped file: memory stays at one image, not the set.
        array = np.lib.format.open_memmap(temp_array, mode="w+", dtype=kind.dtype, shape=shape)
        try:
            for row, info in enumerate(infos):
                meta["sha256"].append(sha256(info.path))
                array[row] = resize_image(read_image(info.path), shape_hw)
            array.flush()
        finally:
            del array
        write_json(meta, temp_json)
        # The JSON marks a complete store: remove the old one first, rename it in last.
        sidecar(path).unlink(missing_ok=True)
        os.replace(temp_array, path)
        os.replace(temp_json, sidecar(path))
    return meta


@dataclass
class ImageStore:
    """A memory-mapped image store and its description.

    Attributes
    ----------
    images
        ``(N, C, H, W)`` read-only memory map of ``uint8`` or ``uint16``.
    meta
        The sidecar: ``ids``, ``labels``, ``groups``, ``dtype``, ``channels``, ``size``,
        ``original_sizes``, ``sha256`` of each source file …
    """

    images: np.ndarray
    meta: dict[str, Any]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def ids(self) -> list[str]:
        """Image ids, in the store's order."""
        return list(self.meta["ids"])

    @property
    def labels(self) -> list[str]:
        """Class labels, in the store's order."""
        return list(self.meta["labels"])

    @property
    def groups(self) -> list[str]:
        """Groups (patient, slide, plate; or the id), in the store's order."""
        return list(self.meta["groups"])

    def batch(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Return the images at ``indices`` as an in-memory ``(B, C, H, W)`` array (no decoding)."""
        return np.asarray(self.images[np.asarray(indices, dtype=np.intp)])


def open_image_store(path: str | Path) -> ImageStore:
    """Map an image store written by :func:`write_image_store`.

    Parameters
    ----------
    path
        The ``.npy`` file.

    Returns
    -------
    ImageStore
        The memory-mapped images and their sidecar.

    Raises
    ------
    InputError
        If either file is missing (an incomplete write) or they disagree.
    """
    path = Path(path)
    if not path.is_file() or not sidecar(path).is_file():
        raise InputError(
            f"{path}: image store incomplete or missing (it needs {path.name} and "
            f"{sidecar(path).name}); rerun the prepare step to write it"
        )
    meta = read_json(sidecar(path))
    try:
        images = np.load(path, mmap_mode="r")
    except ValueError as err:
        raise InputError(
            f"{path}: not a readable .npy array ({err}); rerun the prepare step"
        ) from None
    if list(images.shape) != meta.get("shape") or images.dtype.name != meta.get("dtype"):
        raise InputError(
            f"{path}: the array ({images.shape}, {images.dtype}) does not match "
            f"{sidecar(path).name} ({meta.get('shape')}, {meta.get('dtype')}); rerun the prepare "
            "step to rewrite both"
        )
    return ImageStore(images, meta)


def scale_pixels(pixels: np.ndarray, scale: float) -> np.ndarray:
    """Return ``uint8``/``uint16`` pixels as float32 divided by ``scale`` (1.0: the scale's value).

    The one conversion of stored pixels to model inputs (a fold's sides, new images); the
    training loader does the same on the device (:func:`dlpipe.train.scale_batch`), with the
    same float32 values.
    """
    return (np.asarray(pixels).astype(np.float32) / np.float32(scale)).astype(np.float32)


def chunks(n: int, size: int = CHUNK) -> list[slice]:
    """Return consecutive slices of at most ``size`` covering ``range(n)``."""
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


def image_scale(pixels: np.ndarray, rows: np.ndarray | None = None) -> float:
    """Return the pixel value scaled to 1.0: 255 for ``uint8``, the brightest pixel for ``uint16``.

    Parameters
    ----------
    pixels
        Images (the store's memory map, or an array).
    rows
        The training side's rows of ``pixels`` (never validation or test rows); ``None``: all.
        They are read a chunk at a time, in store order, so memory stays at one chunk.
    """
    if pixels.dtype == np.uint8:
        return 255.0
    rows = np.arange(len(pixels)) if rows is None else np.sort(np.asarray(rows, dtype=np.intp))
    top = 0
    for part in chunks(len(rows)):
        top = max(top, int(np.max(pixels[rows[part]])))
    return float(max(top, 1))


class StoreImages:
    """One side of a fold: rows of a memory-mapped image store, scaled to float32 per batch.

    It stands where other modalities hold their fold's ``(n, features)`` array: ``len``,
    ``shape``, ``ndim`` and ``dtype`` are those of the scaled images, and ``side[key]`` (a
    slice, or an array or list of positions) returns the float32 images at those positions,
    read from the store then. Only the row numbers are held, so memory stays at one batch
    however large the set; converting the whole side at once (``numpy.asarray``) is refused.
    The memory map is opened on first use in each process and left out when the object is
    pickled, so loader workers map the file themselves.

    Parameters
    ----------
    store
        The store's ``.npy`` file.
    rows
        Row of each of the side's images in the store, in the side's order.
    scale
        Pixel value that becomes 1.0 (fitted on the fold's training side).
    """

    ndim = 4
    dtype = np.dtype(np.float32)

    def __init__(self, store: str | Path, rows: Sequence[int] | np.ndarray, scale: float) -> None:
        self.store = Path(store)
        self.rows = np.asarray(rows, dtype=np.int64)
        self.scale = float(scale)
        self._pixels: np.ndarray | None = None

    @property
    def pixels(self) -> np.ndarray:
        """The whole store, ``(N, C, H, W)``, memory-mapped read-only in this process."""
        if self._pixels is None:
            try:
                self._pixels = np.load(self.store, mmap_mode="r")
            except (OSError, ValueError) as err:
                raise InputError(
                    f"{self.store}: the image store of this fold cannot be read ({err}); rerun "
                    "the image_store and preprocess steps"
                ) from None
            if len(self.rows) and int(self.rows.max()) >= self._pixels.shape[0]:
                raise InputError(
                    f"{self.store}: holds {self._pixels.shape[0]} images, but this fold reads "
                    f"row {int(self.rows.max())}; rerun the preprocess step on this store"
                )
        return self._pixels

    @property
    def shape(self) -> tuple[int, ...]:
        """``(n, C, H, W)`` of the side."""
        return (len(self.rows), *self.pixels.shape[1:])

    @property
    def pixel_dtype(self) -> np.dtype:
        """The stored dtype (``uint8`` or ``uint16``)."""
        return self.pixels.dtype

    def __len__(self) -> int:
        return len(self.rows)

    def raw(self, key: slice | Sequence[int] | np.ndarray) -> np.ndarray:
        """Return the stored pixels at positions ``key`` of the side, as they are in the store."""
        rows = self.rows[key] if isinstance(key, slice) else self.rows[np.asarray(key, np.intp)]
        return np.asarray(self.pixels[rows])

    def __getitem__(self, key: slice | Sequence[int] | np.ndarray) -> np.ndarray:
        return scale_pixels(self.raw(key), self.scale)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        # A float32 copy of a whole side is what this class exists to avoid: fail loudly.
        raise TypeError(
            "the images of a fold side are read per batch: index them (side[i:j]) rather than "
            "converting the whole side to one array"
        )

    def __getstate__(self) -> dict[str, Any]:
        return {"store": self.store, "rows": self.rows, "scale": self.scale}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["store"], state["rows"], state["scale"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"StoreImages({self.store}, {len(self.rows)} rows, scale {self.scale:g})"
