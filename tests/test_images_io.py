"""Image readers and listings: PNG/JPEG/TIFF round trips, bad files named, folders and tables."""

from __future__ import annotations

import logging
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from dlpipe.errors import InputError
from dlpipe.image_listing import list_image_folder, list_image_table
from dlpipe.io.images import check_same_kind, probe_image, read_image

SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _tmp(name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix="dlpipe-img-")) / name


def _write(path: Path, pixels: np.ndarray, **tiff: object) -> Path:
    """Write ``(H, W, C)`` pixels with the format's usual writer (PIL for PNG/JPEG)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix in (".tif", ".tiff"):
        data = pixels[..., 0] if pixels.shape[-1] == 1 else pixels
        tifffile.imwrite(path, data, **tiff)
    else:
        Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(path)
    return path


def _attempt(path: Path) -> tuple[np.ndarray | None, str | None]:
    """Read an image: its pixels, or the message of the InputError it raised."""
    try:
        return read_image(path), None
    except InputError as err:
        return None, str(err)


def _message(call: object, *args: object) -> str:
    with pytest.raises(InputError) as err:
        call(*args)  # type: ignore[operator]
    return str(err.value)


# --- readers: round trips ---------------------------------------------------------------------

_CASES = [
    (".png", "uint8", 1),
    (".png", "uint8", 3),
    (".png", "uint16", 1),
    (".tif", "uint8", 1),
    (".tif", "uint8", 3),
    (".tif", "uint16", 1),
    (".tif", "uint16", 3),
    (".tiff", "uint16", 2),
]


@SETTINGS
@given(case=st.sampled_from(_CASES), data=st.data())
def test_lossless_images_read_back_unchanged(
    case: tuple[str, str, int], data: st.DataObject
) -> None:
    suffix, dtype, channels = case
    shape = (data.draw(st.integers(1, 24)), data.draw(st.integers(1, 24)), channels)
    pixels = data.draw(arrays(dtype, shape))
    extra = {"photometric": "rgb"} if channels == 3 else {}
    if channels == 2:  # channels last would be read as pages: write channel-first, named
        path = _tmp("a" + suffix)
        tifffile.imwrite(path, np.moveaxis(pixels, -1, 0), metadata={"axes": "CYX"})
    else:
        path = _write(_tmp("a" + suffix), pixels, **extra)
    back = read_image(path)
    assert back.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back, pixels)
    info = probe_image(path)
    assert (info.height, info.width, info.channels, info.dtype) == (*shape, dtype)


@pytest.mark.parametrize("channels", [1, 3])
def test_jpeg_reads_as_uint8_of_its_size(tmp_path: Path, channels: int) -> None:
    y, x = np.mgrid[0:32, 0:40]
    plane = ((y * 4 + x * 3) % 256).astype(np.uint8)
    pixels = np.stack([plane] * channels, axis=-1)
    back = read_image(_write(tmp_path / "a.jpg", pixels))
    assert back.shape == (32, 40, channels)
    assert back.dtype == np.uint8
    assert np.abs(back.astype(int) - pixels).mean() < 8  # lossy, but close


@pytest.mark.parametrize("layout", ["planar_rgb", "imagej", "unnamed"])
def test_channel_first_tiffs_come_back_channels_last(tmp_path: Path, layout: str) -> None:
    pixels = np.arange(3 * 5 * 7, dtype=np.uint16).reshape(3, 5, 7) * 300
    path = tmp_path / "c.tif"
    if layout == "planar_rgb":
        tifffile.imwrite(path, pixels, photometric="rgb", planarconfig="separate")
    elif layout == "imagej":
        tifffile.imwrite(path, pixels, imagej=True, metadata={"axes": "CYX"})
    else:
        tifffile.imwrite(path, pixels, photometric="minisblack")
    np.testing.assert_array_equal(read_image(path), np.moveaxis(pixels, 0, -1))


def test_transparency_is_dropped_and_palettes_become_rgb(tmp_path: Path) -> None:
    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255
    assert read_image(_write(tmp_path / "a.png", rgba)).shape == (4, 5, 3)
    palette = Image.fromarray(rgba[..., :3]).convert("P", palette=Image.Palette.ADAPTIVE)
    palette.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_image(tmp_path / "p.png"), rgba[..., :3])


# --- readers: bad files -----------------------------------------------------------------------


def _png_16bit_rgb(path: Path) -> Path:
    """A valid 16-bit RGB PNG, written by hand (Pillow cannot write one)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    rows = b"".join(b"\x00" + b"\x12\x34" * 3 * 2 for _ in range(2))
    header = struct.pack(">IIBBBBB", 2, 2, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
    return path


@pytest.mark.filterwarnings("ignore:.*writing zero-size array")
def test_bad_image_files_are_named_with_the_fix(tmp_path: Path) -> None:
    good = _write(tmp_path / "good.png", np.zeros((4, 4, 1), np.uint8))
    cases: dict[str, tuple[Path, str]] = {}
    cases["corrupt"] = (tmp_path / "corrupt.png", "unreadable or damaged")
    cases["corrupt"][0].write_bytes(good.read_bytes()[:30])
    cases["garbage"] = (tmp_path / "garbage.tif", "first bytes match no")
    cases["garbage"][0].write_bytes(b"this is not an image at all")
    cases["empty"] = (tmp_path / "empty.jpg", "empty (0 bytes)")
    cases["empty"][0].write_bytes(b"")
    cases["extension"] = (tmp_path / "scan.bmp", "unsupported image extension")
    cases["extension"][0].write_bytes(b"BM")
    cases["misnamed"] = (tmp_path / "misnamed.tif", "a PNG image but named .tif; rename it to .png")
    cases["misnamed"][0].write_bytes(good.read_bytes())
    cases["float"] = (tmp_path / "float.tif", "floating-point pixels (float32)")
    tifffile.imwrite(cases["float"][0], np.zeros((4, 4), np.float32))
    cases["int16"] = (tmp_path / "signed.tif", "pixels of type int16")
    tifffile.imwrite(cases["int16"][0], np.zeros((4, 4), np.int16))
    cases["stack"] = (tmp_path / "stack.tif", "axes ZYX")
    tifffile.imwrite(cases["stack"][0], np.zeros((5, 4, 4), np.uint8), metadata={"axes": "ZYX"})
    cases["zero"] = (tmp_path / "zero.tif", "zero size")
    tifffile.imwrite(cases["zero"][0], np.zeros((0, 4), np.uint8))
    cases["rgb16png"] = (_png_16bit_rgb(tmp_path / "rgb16.png"), "16-bit colour PNG")
    cases["missing"] = (tmp_path / "missing.png", "not found")
    for name, (path, expected) in cases.items():
        for reader in (probe_image, read_image):
            if name == "corrupt" and reader is probe_image:
                continue  # a cut PNG can have an intact header: the decode finds it
            message = _message(reader, path)
            assert message.startswith(str(path)), (name, message)
            assert expected in message, (name, message)


@SETTINGS
@given(data=st.binary(max_size=400), name=st.sampled_from(["x.png", "x.jpg", "x.tif"]))
def test_any_bytes_named_as_an_image_give_an_image_or_an_input_error(
    data: bytes, name: str
) -> None:
    path = _tmp(name)
    path.write_bytes(data)
    pixels, message = _attempt(path)
    if message is not None:
        assert message.startswith(str(path))
    else:
        assert pixels is not None
        assert pixels.ndim == 3
        assert pixels.dtype in (np.uint8, np.uint16)


@SETTINGS
@given(name=st.sampled_from(["x.png", "x.jpg", "x.tif"]), cut=st.floats(0.0, 0.99))
def test_a_truncated_image_is_an_input_error_or_reads(name: str, cut: float) -> None:
    pixels = np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    whole = _write(_tmp(name), pixels, photometric="rgb")
    path = _tmp(name)
    path.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * cut)])
    back, message = _attempt(path)
    if message is not None:
        assert message.startswith(str(path))
    else:
        assert back is not None
        assert back.shape == pixels.shape


def test_mixed_channels_or_bit_depths_name_two_files(tmp_path: Path) -> None:
    grey = probe_image(_write(tmp_path / "grey.png", np.zeros((4, 4, 1), np.uint8)))
    rgb = probe_image(_write(tmp_path / "rgb.png", np.zeros((4, 4, 3), np.uint8)))
    deep = probe_image(_write(tmp_path / "deep.tif", np.zeros((4, 4, 1), np.uint16)))
    message = _message(check_same_kind, [grey, rgb], "folder X")
    assert "channel count" in message
    assert "grey.png" in message
    assert "rgb.png" in message
    message = _message(check_same_kind, [grey, deep], "folder X")
    assert "bit depth" in message
    assert "uint8" in message
    assert "deep.tif" in message
    assert check_same_kind([grey, grey]) == grey


# --- listings: class folders ------------------------------------------------------------------


def _folder(root: Path, counts: dict[str, int], suffix: str = ".png") -> Path:
    for label, n in counts.items():
        for i in range(n):
            _write(root / label / f"{label}_{i}{suffix}", np.full((6, 5, 1), i, np.uint8))
    return root


def test_a_class_folder_lists_every_image_and_skips_hidden_and_other_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = _folder(tmp_path / "data", {"tumour": 3, "normal": 4})
    (root / "normal" / ".DS_Store").write_bytes(b"\x00\x01")
    (root / "normal" / "._normal_0.png").write_bytes(b"\x00\x05\x16\x07")  # AppleDouble
    (root / "tumour" / "notes.txt").write_text("scanned 2024\n")
    (root / ".hidden_class").mkdir()
    (root / "README.md").write_text("slides\n")
    with caplog.at_level(logging.INFO, logger="dlpipe.image_listing"):
        listing = list_image_folder(root, n_splits=3)
    assert list(listing.columns) == ["id", "path", "label", "group"]
    assert listing["label"].value_counts().to_dict() == {"normal": 4, "tumour": 3}
    assert listing["id"].iloc[0] == "normal/normal_0.png"
    assert (listing["group"] == listing["id"]).all()
    assert all(Path(p).is_file() for p in listing["path"])
    assert "skipped 2 hidden files" in caplog.text
    assert "skipped 1 files that are not images (tumour/notes.txt)" in caplog.text


def test_group_folders_inside_class_folders(tmp_path: Path) -> None:
    for label in ("a", "b"):
        for patient in ("p1", "p2", "p3"):
            _write(tmp_path / label / patient / "x.png", np.zeros((3, 3, 1), np.uint8))
    listing = list_image_folder(tmp_path, n_splits=3, group_level=1)
    assert sorted(set(listing["group"])) == ["p1", "p2", "p3"]
    # A patient's folder under two classes is one patient: one group, kept whole by the split.
    assert listing.groupby("group")["label"].nunique().to_dict() == {"p1": 2, "p2": 2, "p3": 2}


_GROUP_NAMES = ["p1", "P1", "p 2", "0", "NA", "None", "x.y", "patient-07", "Zürich"]


@SETTINGS
@given(
    images=st.lists(
        st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(_GROUP_NAMES), st.integers(0, 3)),
        min_size=2,
        max_size=12,
        unique=True,
    ),
    deeper=st.booleans(),
)
def test_group_folder_names_are_taken_literally(
    images: list[tuple[str, str, int]], deeper: bool
) -> None:
    assume(len({group for _, group, _ in images}) > 1)
    root = _tmp("g")
    expected = {}
    for label, group, i in images:
        # Images may lie deeper than the group folder (a slide's tiles); the group stays.
        relative = f"{label}/{group}/{'tiles/' if deeper else ''}{i}.png"
        _write(root / relative, np.zeros((2, 2, 1), np.uint8))
        expected[relative] = group
    listing = list_image_folder(root, group_level=1)
    assert dict(zip(listing["id"], listing["group"], strict=True)) == expected
    assert dict(zip(listing["id"], listing["label"], strict=True)) == {
        k: k.split("/")[0] for k in expected
    }


def test_deeper_group_levels_name_the_path_of_folders(tmp_path: Path) -> None:
    for label in ("a", "b"):
        for patient, slide in (("p1", "s1"), ("p1", "s2"), ("p2", "s1")):
            _write(tmp_path / label / patient / slide / "t.png", np.zeros((3, 3, 1), np.uint8))
    listing = list_image_folder(tmp_path, n_splits=3, group_level=2)
    # Slide s1 of patient p1 is not slide s1 of patient p2.
    assert sorted(set(listing["group"])) == ["p1/s1", "p1/s2", "p2/s1"]


def test_bad_group_folders_are_named(tmp_path: Path) -> None:
    flat = _folder(tmp_path / "flat", {"a": 2, "b": 2})
    message = _message(list_image_folder, flat, None, 1)
    assert "data.group_level 1" in message
    assert "a/a_0.png" in message or "b/b_0.png" in message
    assert "ROOT/<class>/<group>/<image>" in message

    mixed = tmp_path / "mixed"
    for label in ("a", "b"):
        for patient in ("p1", "p2"):
            _write(mixed / label / patient / "x.png", np.zeros((3, 3, 1), np.uint8))
    _write(mixed / "b" / "stray.png", np.zeros((3, 3, 1), np.uint8))
    message = _message(list_image_folder, mixed, None, 1)
    assert "b/stray.png" in message
    assert "lies directly in its class folder" in message

    one = tmp_path / "one"
    for label in ("a", "b"):
        for i in range(3):
            _write(one / label / "slide1" / f"{i}.png", np.zeros((3, 3, 1), np.uint8))
    message = _message(list_image_folder, one, None, 1)
    assert "one group ('slide1')" in message
    assert "data.group_level" in message
    assert "ROOT/<class>/<group>/<image>" in message

    two = tmp_path / "two"
    for label in ("a", "b"):
        for patient in ("p1", "p2"):
            for i in range(2):
                _write(two / label / patient / f"{i}.png", np.zeros((3, 3, 1), np.uint8))
    message = _message(list_image_folder, two, 3, 1)
    assert "2 group folders for 3 cross-validation folds" in message
    assert "group_level 0" in _message(list_image_folder, two, None, 0)


def test_bad_class_folders_are_named(tmp_path: Path) -> None:
    root = _folder(tmp_path / "d", {"a": 3, "b": 3})
    (root / "empty_class").mkdir()
    (root / "empty_class" / "notes.txt").write_text("x")
    message = _message(list_image_folder, root)
    assert "empty_class" in message
    assert "holds no image" in message

    root = _folder(tmp_path / "few", {"a": 5, "b": 2})
    message = _message(list_image_folder, root, 3)
    assert "fewer images than the 3 cross-validation folds" in message
    assert "'b' 2" in message

    root = _folder(tmp_path / "czi", {"a": 2, "b": 2})
    (root / "a" / "scan.czi").write_bytes(b"ZISRAWFILE")
    assert "scan.czi" in _message(list_image_folder, root)

    root = _folder(tmp_path / "loose", {"a": 2, "b": 2})
    _write(root / "stray.png", np.zeros((3, 3, 1), np.uint8))
    assert "outside the class sub-folders (stray.png)" in _message(list_image_folder, root)

    root = _folder(tmp_path / "mixed", {"a": 2, "b": 2})
    _write(root / "b" / "colour.png", np.zeros((6, 5, 3), np.uint8))
    message = _message(list_image_folder, root)
    assert "channel count" in message
    assert "colour.png" in message

    assert "not found" in _message(list_image_folder, tmp_path / "nowhere")
    (tmp_path / "noclass").mkdir()
    assert "no class sub-folders" in _message(list_image_folder, tmp_path / "noclass")


# --- listings: tables -------------------------------------------------------------------------


def _table(root: Path, rows: list[dict[str, str]], name: str = "images.tsv") -> Path:
    for row in rows:
        if not (root / row["path"]).exists():
            _write(root / row["path"], np.zeros((4, 4, 1), np.uint16))
    path = root / name
    pd.DataFrame(rows).to_csv(path, sep="\t" if name.endswith(".tsv") else ",", index=False)
    return path


def _rows(n: int = 8, groups: int = 4) -> list[dict[str, str]]:
    return [
        {
            "path": f"img/s{i % groups}/{i}.tif",
            "label": "ab"[i % 2],
            "slide": f"s{i % groups}",
            "stain": "HE",
        }
        for i in range(n)
    ]


def test_a_table_lists_paths_relative_to_itself_with_groups_and_extra_columns(
    tmp_path: Path,
) -> None:
    table = _table(tmp_path, _rows())
    listing = list_image_table(table, group_column="slide", n_splits=3)
    assert list(listing.columns) == ["id", "path", "label", "group", "stain"]
    assert listing["id"].iloc[3] == "img/s3/3.tif"
    assert listing["path"].iloc[3] == str(tmp_path / "img/s3/3.tif")
    assert listing["group"].tolist() == [f"s{i % 4}" for i in range(8)]
    no_groups = list_image_table(_table(tmp_path, _rows(), "t.csv"))
    assert (no_groups["group"] == no_groups["id"]).all()


@SETTINGS
@given(
    labels=st.lists(st.sampled_from(["NA", "None", "tumour", "0", "x y"]), min_size=4, max_size=12),
    sep=st.sampled_from([",", "\t"]),
)
def test_table_labels_and_groups_are_taken_literally(labels: list[str], sep: str) -> None:
    root = _tmp("t")
    rows = [
        {"path": f"{i}.png", "label": lab, "plate": f"0{i % 3}"} for i, lab in enumerate(labels)
    ]
    for row in rows:
        _write(root / row["path"], np.zeros((2, 2, 1), np.uint8))
    table = root / ("t.csv" if sep == "," else "t.tsv")
    pd.DataFrame(rows).to_csv(table, sep=sep, index=False)
    listing = list_image_table(table, group_column="plate")
    assert listing["label"].tolist() == labels
    assert listing["group"].tolist() == [f"0{i % 3}" for i in range(len(labels))]


def test_bad_tables_are_named_with_lines(tmp_path: Path) -> None:
    rows = _rows()
    table = _table(tmp_path, rows)
    (tmp_path / "img/s1/5.tif").unlink()
    message = _message(list_image_table, table)
    assert "not found (img/s1/5.tif; line 7)" in message

    rows[5]["path"] = rows[1]["path"]
    message = _message(list_image_table, _table(tmp_path, rows, "dup.tsv"))
    assert "listed more than once (line 3, line 7" in message

    one_group = [dict(r, slide="s0") for r in _rows()]
    message = _message(
        list_image_table, _table(tmp_path, one_group, "g.tsv"), "label", "path", "slide"
    )
    assert "one group ('s0')" in message
    message = _message(
        list_image_table, _table(tmp_path, _rows(12), "f.tsv"), "label", "path", "slide", None, 5
    )
    assert "4 groups for 5 cross-validation folds" in message
    message = _message(list_image_table, _table(tmp_path, _rows(), "c.tsv"), "class")
    assert "line 1: no column 'class'" in message

    empty = _rows()
    empty[2]["label"] = ""
    assert "empty 'label' on line 4" in _message(list_image_table, _table(tmp_path, empty, "e.tsv"))
