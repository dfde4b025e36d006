"""Images: PNG and JPEG (Pillow) and TIFF (tifffile) as ``(H, W, C)`` arrays of their own dtype.

:func:`probe_image` reads a file's header only (size, channels, dtype), :func:`read_image` decodes
its pixels, and :func:`check_same_kind` refuses a data set whose images differ in channel count
or bit depth, naming two files that differ. Every error names the file and the fix.

What is kept and what is converted:

- **dtype**: ``uint8`` and ``uint16`` are kept as stored. Floating-point pixels are refused, not
  rescaled: their range (0-1, raw photon counts, background-subtracted values) depends on the
  instrument and the software that wrote them, and any guessed scale would change what the
  model sees between data sets. Rescale them yourself and save 16-bit TIFF. Other integer types
  (``int16``, ``uint32`` …) and 1-bit images are refused the same way, except Pillow's 32-bit
  ``I`` mode of a 16-bit PNG, whose values all fit ``uint16`` and are converted losslessly.
- **channels**: grey images have one channel, colour images three. Transparency (``LA``, ``RGBA``)
  is dropped, being how an image is shown rather than what was measured; palette, CMYK and
  YCbCr images are converted to RGB. A 16-bit colour PNG is refused, since Pillow silently
  reduces it to 8 bits.
- **TIFF axes**: ``YX`` (one channel), ``YXS`` (interleaved samples, e.g. RGB), and a leading
  channel axis, channel-first: one named channels or samples (``CYX``, ``SYX``, as ImageJ, OME
  or planar TIFFs name it) or an unnamed leading axis of at most :data:`MAX_UNNAMED_CHANNELS`
  planes (a multi-page TIFF without metadata). Z-stacks, time series and anything with more
  axes are refused: save one plane per file, or a projection.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dlpipe.errors import InputError

#: Extensions read, lower case, and the reader of each.
EXTENSIONS = {
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".tif": "tiff",
    ".tiff": "tiff",
}
#: Image formats of the field that are not read: named so a folder of them is refused, not skipped.
UNSUPPORTED_IMAGES = (
    ".bmp", ".gif", ".webp", ".jp2", ".j2k", ".svs", ".ndpi", ".scn", ".mrxs", ".czi", ".nd2",
    ".lif", ".lsm", ".oib", ".oif", ".ims", ".dcm", ".nii", ".mha", ".mhd", ".nrrd", ".zarr",
    ".vsi", ".qptiff", ".dib", ".ppm", ".pgm", ".pbm", ".heic", ".exr",
)  # fmt: skip
#: dtypes stored.
DTYPES = ("uint8", "uint16")
#: An unnamed leading TIFF axis of at most this many planes is taken for channels.
MAX_UNNAMED_CHANNELS = 16

_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "png",
    b"\xff\xd8\xff": "jpeg",
    b"II*\x00": "tiff",
    b"MM\x00*": "tiff",
    b"II+\x00": "tiff",  # BigTIFF
    b"MM\x00+": "tiff",
}
_FIX_FLOAT = (
    "dlpipe stores uint8 or uint16 pixels and does not guess a scale for floating-point data: "
    "rescale the images to integers yourself (e.g. np.round(x / x.max() * 65535).astype("
    "np.uint16)) and save them as 16-bit TIFF"
)
#: Pillow modes converted before reading, to the mode kept.
_PIL_CONVERT = {
    "1": "L",
    "LA": "L",
    "La": "L",
    "P": "RGB",
    "PA": "RGB",
    "RGBA": "RGB",
    "RGBa": "RGB",
    "RGBX": "RGB",
    "CMYK": "RGB",
    "YCbCr": "RGB",
    "LAB": "RGB",
    "HSV": "RGB",
}
_PIL_KEPT = {"L": ("uint8", 1), "RGB": ("uint8", 3), "I;16": ("uint16", 1), "I;16B": ("uint16", 1)}
_PIL_KEPT |= {"I;16L": ("uint16", 1), "I;16N": ("uint16", 1), "I": ("uint16", 1)}


@dataclass(frozen=True)
class ImageInfo:
    """What an image file holds, from its header.

    Attributes
    ----------
    path
        The file.
    height, width, channels
        Its size in pixels and its number of channels (after the conversions of this module).
    dtype
        ``uint8`` or ``uint16``.
    """

    path: Path
    height: int
    width: int
    channels: int
    dtype: str


def image_format(path: str | Path) -> str:
    """Return ``png``, ``jpeg`` or ``tiff`` from a file name.

    Raises
    ------
    InputError
        If the extension is not one of :data:`EXTENSIONS`.
    """
    suffix = Path(path).suffix.lower()
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    known = ", ".join(sorted(EXTENSIONS))
    raise InputError(
        f"{path}: unsupported image extension {suffix or '(none)'!r}; dlpipe reads {known}: "
        "convert the image to TIFF (any bit depth) or PNG, or remove it from the data"
    )


def is_image_name(path: str | Path) -> bool:
    """Whether a file name has an extension that :func:`read_image` reads."""
    return Path(path).suffix.lower() in EXTENSIONS


def _sniff(path: Path, fmt: str) -> bytes:
    """Return a file's first bytes; refuse an empty file or one of another format than its name."""
    if not path.exists():
        raise InputError(
            f"{path}: image file not found; check the path (or the table's path column)"
        )
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not an image file")
    try:
        with open(path, "rb") as handle:
            head = handle.read(32)
    except OSError as err:
        raise InputError(
            f"{path}: cannot be read ({err.strerror}); check its permissions"
        ) from None
    if not head:
        raise InputError(f"{path}: the image file is empty (0 bytes); copy it again or remove it")
    actual = next((name for magic, name in _MAGIC.items() if head.startswith(magic)), None)
    if actual is not None and actual != fmt:
        suffix = {"png": ".png", "jpeg": ".jpg", "tiff": ".tif"}[actual]
        raise InputError(
            f"{path}: the file is a {actual.upper()} image but named {path.suffix}; rename it "
            f"to {suffix}"
        )
    if actual is None:
        raise InputError(
            f"{path}: not a {fmt.upper()} image (its first bytes match no PNG, JPEG or TIFF "
            "signature); the file is damaged or of another kind: copy it again or remove it"
        )
    return head


def _damaged(path: Path, err: Exception) -> InputError:
    reason = " ".join(str(err).split()) or type(err).__name__
    return InputError(
        f"{path}: unreadable or damaged image ({reason}); open it in an image viewer, copy or "
        "export it again, or remove it from the data"
    )


def _check_size(path: Path, height: int, width: int) -> None:
    if height <= 0 or width <= 0:
        raise InputError(
            f"{path}: the image has zero size ({height} × {width} pixels); remove it or export "
            "it again"
        )


def _png_16bit_colour(head: bytes) -> bool:
    """Whether a PNG's header says 16 bits per sample in colour (Pillow reads it as 8-bit)."""
    # IHDR: 8-byte signature, length, 'IHDR', width, height, bit depth, colour type.
    if len(head) < 26 or head[12:16] != b"IHDR":
        return False
    depth, colour = struct.unpack(">BB", head[24:26])
    return depth == 16 and colour in (2, 6)


def _pil_mode(path: Path, mode: str) -> tuple[str, int]:
    mode = _PIL_CONVERT.get(mode, mode)
    if mode == "F":
        raise InputError(f"{path}: floating-point pixels (Pillow mode F); {_FIX_FLOAT}")
    if mode not in _PIL_KEPT:
        raise InputError(
            f"{path}: pixel mode {mode!r} is not read; save the image as 8-bit grey or RGB, or "
            "as 16-bit grey"
        )
    return _PIL_KEPT[mode]


def _probe_pil(path: Path, head: bytes) -> ImageInfo:
    from PIL import Image, UnidentifiedImageError  # lazy: Pillow, ~50 ms

    if head.startswith(b"\x89PNG") and _png_16bit_colour(head):
        raise InputError(
            f"{path}: a 16-bit colour PNG, which Pillow would reduce to 8 bits per channel; "
            "save it as 16-bit TIFF (e.g. tifffile.imwrite) or as 8-bit PNG"
        )
    try:
        with Image.open(path) as image:
            dtype, channels = _pil_mode(path, image.mode)
            width, height = image.size
    except InputError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise _damaged(path, err) from None
    _check_size(path, height, width)
    return ImageInfo(path, height, width, channels, dtype)


def _read_pil(path: Path, info: ImageInfo) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError  # lazy: Pillow, ~50 ms

    try:
        with Image.open(path) as image:
            image.load()  # a truncated file fails here, not at open
            mode = _PIL_CONVERT.get(image.mode, image.mode)
            pixels = np.asarray(image if mode == image.mode else image.convert(mode))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise _damaged(path, err) from None
    if mode == "I":  # Pillow's 32-bit integers of a 16-bit PNG
        if pixels.size and (pixels.min() < 0 or pixels.max() > np.iinfo(np.uint16).max):
            raise InputError(
                f"{path}: 32-bit integer pixels outside 0-65535; save the image as 16-bit TIFF"
            )
    pixels = pixels.astype(info.dtype, copy=False)
    return pixels.reshape(info.height, info.width, info.channels)


def _tiff_layout(path: Path, axes: str, shape: tuple[int, ...]) -> tuple[int, int, int, bool]:
    """Return ``(height, width, channels, channel_first)`` of a TIFF series, refusing stacks."""
    if axes == "YX":
        return shape[0], shape[1], 1, False
    if axes == "YXS":
        return shape[0], shape[1], shape[2], False
    if len(axes) == 3 and axes.endswith("YX"):
        lead = axes[0]
        if lead in "CS" or (lead in "QI" and shape[0] <= MAX_UNNAMED_CHANNELS):
            return shape[1], shape[2], shape[0], True
    described = " × ".join(f"{a}={n}" for a, n in zip(axes, shape, strict=True))
    raise InputError(
        f"{path}: a TIFF of axes {axes} ({described}), not one 2-D image: dlpipe reads YX, "
        f"YXS (e.g. RGB) or channels first (CYX, or up to {MAX_UNNAMED_CHANNELS} unnamed "
        "pages); save one plane per file, or a projection, or name the channel axis in the "
        "file's metadata (tifffile.imwrite(..., metadata={'axes': 'CYX'}))"
    )


def _tiff_dtype(path: Path, dtype: np.dtype) -> str:
    if dtype.name in DTYPES:
        return dtype.name
    if dtype.kind == "f":
        raise InputError(f"{path}: floating-point pixels ({dtype.name}); {_FIX_FLOAT}")
    raise InputError(
        f"{path}: pixels of type {dtype.name}; dlpipe stores uint8 or uint16: convert the image "
        "to 8- or 16-bit unsigned integers and save it again"
    )


def _probe_tiff(path: Path) -> tuple[ImageInfo, bool]:
    import tifffile  # lazy: tifffile, ~100 ms

    try:
        with tifffile.TiffFile(path) as tiff:
            header = _tiff_header(tiff)
    except InputError:
        raise
    except Exception as err:  # noqa: BLE001 - tifffile raises many error types on bad files
        raise _damaged(path, err) from None
    return _tiff_info(path, *header)


def _tiff_header(tiff: Any) -> tuple[str, tuple[int, ...], np.dtype]:
    """Axes, shape and dtype of the first series of an open ``tifffile.TiffFile``."""
    series = tiff.series[0]
    return series.axes, tuple(series.shape), np.dtype(series.dtype)


def _tiff_info(
    path: Path, axes: str, shape: tuple[int, ...], dtype: np.dtype
) -> tuple[ImageInfo, bool]:
    """Check a TIFF's header; return its info and whether its channels come first."""
    if 0 in shape:
        raise InputError(
            f"{path}: the image has zero size (shape {shape}); remove it or export it again"
        )
    height, width, channels, first = _tiff_layout(path, axes, shape)
    _check_size(path, height, width)
    return ImageInfo(path, height, width, channels, _tiff_dtype(path, dtype)), first


def probe_image(path: str | Path) -> ImageInfo:
    """Read an image file's header: its size, channel count and dtype, without its pixels.

    Parameters
    ----------
    path
        A PNG, JPEG or TIFF file.

    Returns
    -------
    ImageInfo
        Height, width, channels and dtype as :func:`read_image` will return them.

    Raises
    ------
    InputError
        If the file is missing, empty, of an unsupported extension or pixel type, not the format
        its name says, a stack rather than one image, or unreadable.
    """
    path = Path(path)
    fmt = image_format(path)
    head = _sniff(path, fmt)
    if fmt == "tiff":
        return _probe_tiff(path)[0]
    return _probe_pil(path, head)


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file into an ``(H, W, C)`` array of dtype ``uint8`` or ``uint16``.

    Parameters
    ----------
    path
        A PNG, JPEG or TIFF file (see the module's notes for what is converted).

    Returns
    -------
    numpy.ndarray
        The pixels, channels last, of the file's own bit depth.

    Raises
    ------
    InputError
        As :func:`probe_image`, and if the pixel data are truncated or damaged.
    """
    path = Path(path)
    fmt = image_format(path)
    head = _sniff(path, fmt)
    if fmt != "tiff":
        return _read_pil(path, _probe_pil(path, head))
    import tifffile  # lazy: tifffile, ~100 ms

    # One opening for the header and the pixels: the store's build reads thousands of files.
    try:
        with tifffile.TiffFile(path) as tiff:
            info, first = _tiff_info(path, *_tiff_header(tiff))
            pixels = tiff.asarray(series=0)
    except InputError:
        raise
    except Exception as err:  # noqa: BLE001 - tifffile and its codecs raise many error types
        raise _damaged(path, err) from None
    if first:
        pixels = np.moveaxis(pixels, 0, -1)
    return np.ascontiguousarray(pixels.reshape(info.height, info.width, info.channels))


def check_same_kind(infos: Iterable[ImageInfo], where: str = "the data set") -> ImageInfo:
    """Refuse images that differ in channel count or bit depth, naming two that differ.

    Parameters
    ----------
    infos
        The images' headers (from :func:`probe_image`).
    where
        What the images are, for the message (a folder or a table).

    Returns
    -------
    ImageInfo
        The first image's header, whose channels and dtype all share.

    Raises
    ------
    InputError
        If there are no images, or two of them differ in channels or dtype.
    """
    first: ImageInfo | None = None
    for info in infos:
        if first is None:
            first = info
            continue
        if info.channels != first.channels:
            raise InputError(
                f"{where}: images differ in channel count: {first.path} has {first.channels}, "
                f"{info.path} has {info.channels}; save every image with the same channels "
                "(e.g. all grey or all RGB)"
            )
        if info.dtype != first.dtype:
            raise InputError(
                f"{where}: images differ in bit depth: {first.path} is {first.dtype}, "
                f"{info.path} is {info.dtype}; save every image at one bit depth (8 or 16 bit)"
            )
    if first is None:
        raise InputError(f"{where}: holds no images")
    return first
