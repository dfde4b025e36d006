r"""Build the image demo: patches of a fluorescence image, labelled by expert nucleus masks.

Source: the PyPI wheel ``stardist`` 0.9.1, ``stardist/data/images/img2d.tif`` (512 × 512
fluorescence image of nuclei from the 2018 Data Science Bowl, stored as uint16) and
``stardist/data/images/mask2d.tif`` (its annotation: 125 nuclei, one integer label each).

Writes into the output folder (default: this script's folder):

- ``nuclei_dsb2018_image.tif``, ``nuclei_dsb2018_mask.tif``: the two source images, pixel for
  pixel, re-encoded with zlib compression (so the test can check every patch against them);
- ``nuclei_patches/<label>/<region>_y<row>_x<col>.tif``: 32 × 32 uint16 patches, ``nucleus``
  (centred on the rounded centroid of an annotated nucleus) or ``background`` (no annotated
  pixel anywhere in the patch);
- ``nuclei_patches.tsv``: one row per patch: ``path`` (relative to the table), ``label``,
  ``region`` (the group), ``centre_y``, ``centre_x``, ``nucleus_id`` (the mask label, empty for
  background), ``n_nuclei`` (annotated nuclei with a pixel in the patch) and ``sha256``;
- ``nuclei_count_patches/<label>/<region>_y<row>_x<col>.tif`` and ``nuclei_count_patches.tsv``:
  the counting task, 32 × 32 windows centred on a 16-pixel grid (zlib-compressed uint16 TIFF)
  that hold at least one annotated nucleus, ``single`` (one nucleus) or ``crowded`` (two or
  more). A nucleus counts where at least :data:`MIN_PIXELS` of its annotated pixels lie in the
  window; a window that cuts a nucleus to fewer (a sliver at its edge, whose count would be a
  matter of taste) is left out, so every label is unambiguous in the expert's mask. Columns:
  ``path``, ``label``, ``region``, ``centre_y``, ``centre_x``, ``n_nuclei``, ``sha256``.

With ``--mahotas WHEEL`` (``mahotas`` 1.4.18), also the unlabelled images for pretraining, from
another image of another experiment (no pixel of the labelled image among them):
``nuclei_unlabelled/tile_y<row>_x<col>.png`` (listed with their ``top``, ``left`` and
``sha256`` in ``nuclei_unlabelled.tsv``), the non-overlapping 32 × 32 tiles of
``mahotas/demos/data/nuclear.png`` (1,024 × 1,344 fluorescent nuclei, 8-bit; its three channels
are equal, the first is kept) that hold some foreground: at least :data:`MIN_FOREGROUND` of
their pixels above the image's mean + 0.5 standard deviations (a label-free threshold: blank
tiles teach a contrastive objective nothing). Nuclei there are about as large as in the
labelled image (median area 553 vs 440 pixels), so the tiles are not rescaled.

Groups: the image is cut into 4 × 4 regions of 128 × 128 pixels and a patch is kept only if it
lies wholly inside one region, so patches of different regions share no pixel and overlapping
patches always share their region: grouped cross-validation by ``region`` keeps them apart.
In each region, background patches are as many as nucleus patches: from the 32 × 32 windows on
an 8-pixel grid that hold no annotated pixel, evenly spaced in row-major order.

    pip download --no-deps stardist==0.9.1 mahotas==1.4.18   # manylinux cp311 wheels
    python resources/make_image_resources.py stardist-0.9.1-*.whl --mahotas mahotas-1.4.18-*.whl
"""

from __future__ import annotations

import argparse
import hashlib
import io
import logging
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile
from scipy import ndimage

log = logging.getLogger("make_image_resources")

MEMBERS = {
    "image": (
        "stardist/data/images/img2d.tif",
        "f9ccc1571b92c861ff87e28463068b43f61bd47357ed0503f711e5cd1eb97750",
    ),
    "mask": (
        "stardist/data/images/mask2d.tif",
        "59ad5e820b7982ca9d13e946fa6e7f64e2714899e00a2ae6c69aa79aad53d46f",
    ),
}
PATCH, REGION, STRIDE = 32, 128, 8
FOLDER, TABLE = "nuclei_patches", "nuclei_patches.tsv"
#: The counting task: windows on this grid; a nucleus counts with this many pixels in a window.
COUNT_STRIDE, MIN_PIXELS = 16, 40
COUNT_FOLDER, COUNT_TABLE = "nuclei_count_patches", "nuclei_count_patches.tsv"
#: The unlabelled images: mahotas's demo image and the share of foreground a tile needs.
MAHOTAS_MEMBER = (
    "mahotas/demos/data/nuclear.png",
    "c0d3fc389d90a90118b43b585cd5134a560a7fcadb7b46825fc7845321755e27",
)
MIN_FOREGROUND = 0.05
UNLABELLED_FOLDER, UNLABELLED_TABLE = "nuclei_unlabelled", "nuclei_unlabelled.tsv"
SOURCES = {"image": "nuclei_dsb2018_image.tif", "mask": "nuclei_dsb2018_mask.tif"}


def read_sources(wheel: Path) -> tuple[np.ndarray, np.ndarray]:
    """Return the image and the mask from a stardist 0.9.1 wheel, after checking their sha256.

    Every platform's wheel carries the same two files; their checksums, not the wheel's, are
    checked.
    """
    arrays = []
    with zipfile.ZipFile(wheel) as archive:
        for member, expected in MEMBERS.values():
            data = archive.read(member)
            if hashlib.sha256(data).hexdigest() != expected:
                raise ValueError(f"{wheel}: {member} is not the file of stardist 0.9.1 (sha256)")
            arrays.append(tifffile.imread(io.BytesIO(data)))
    image, mask = arrays
    if image.shape != (512, 512) or mask.shape != image.shape or image.dtype != np.uint16:
        raise ValueError(f"unexpected images: {image.shape} {image.dtype}, mask {mask.shape}")
    return image, mask


def _inside(y: int, x: int) -> bool:
    """Whether the patch centred at (y, x) lies wholly inside one region."""
    half = PATCH // 2
    return all(half <= v % REGION <= REGION - half for v in (y, x))


def patches(mask: np.ndarray) -> list[dict[str, object]]:
    """Return the patch centres and labels (without pixels), in region then label order."""
    half = PATCH // 2
    labels = np.unique(mask)
    labels = labels[labels > 0]
    centres = ndimage.center_of_mass(mask > 0, mask, labels)
    rows: list[dict[str, object]] = []
    for ry in range(mask.shape[0] // REGION):
        for rx in range(mask.shape[1] // REGION):
            region = f"r{ry}c{rx}"
            nuclei = []
            for label, (cy, cx) in zip(labels, centres, strict=True):
                y, x = round(cy), round(cx)
                if y // REGION == ry and x // REGION == rx and _inside(y, x):
                    nuclei.append((y, x, int(label)))
            empty = [
                (y, x, 0)
                for y in range(ry * REGION + half, (ry + 1) * REGION - half + 1, STRIDE)
                for x in range(rx * REGION + half, (rx + 1) * REGION - half + 1, STRIDE)
                if not mask[y - half : y + half, x - half : x + half].any()
            ]
            if len(empty) < len(nuclei):
                raise ValueError(f"{region}: {len(empty)} background windows for {len(nuclei)}")
            picks = np.linspace(0, len(empty) - 1, len(nuclei)).round().astype(int)
            background = [empty[i] for i in picks] if nuclei else []
            for name, chosen in (("nucleus", sorted(nuclei)), ("background", background)):
                for y, x, label in chosen:
                    window = mask[y - half : y + half, x - half : x + half]
                    rows.append(
                        {
                            "path": f"{FOLDER}/{name}/{region}_y{y:03d}_x{x:03d}.tif",
                            "label": name,
                            "region": region,
                            "centre_y": y,
                            "centre_x": x,
                            "nucleus_id": str(label) if label else "",
                            "n_nuclei": len(np.setdiff1d(np.unique(window), [0])),
                        }
                    )
    return rows


def count_patches(mask: np.ndarray) -> list[dict[str, object]]:
    """Return the windows of the counting task (without pixels), in region then row-major order."""
    half = PATCH // 2
    rows: list[dict[str, object]] = []
    for ry in range(mask.shape[0] // REGION):
        for rx in range(mask.shape[1] // REGION):
            region = f"r{ry}c{rx}"
            for y in range(ry * REGION + half, (ry + 1) * REGION - half + 1, COUNT_STRIDE):
                for x in range(rx * REGION + half, (rx + 1) * REGION - half + 1, COUNT_STRIDE):
                    window = mask[y - half : y + half, x - half : x + half]
                    _, pixels = np.unique(window[window > 0], return_counts=True)
                    if not len(pixels) or (pixels < MIN_PIXELS).any():
                        continue  # no nucleus, or a sliver whose count is ambiguous
                    name = "single" if len(pixels) == 1 else "crowded"
                    rows.append(
                        {
                            "path": f"{COUNT_FOLDER}/{name}/{region}_y{y:03d}_x{x:03d}.tif",
                            "label": name,
                            "region": region,
                            "centre_y": y,
                            "centre_x": x,
                            "n_nuclei": len(pixels),
                        }
                    )
    return rows


def read_unlabelled(wheel: Path) -> np.ndarray:
    """Return the first channel of mahotas's ``nuclear.png`` (8-bit), after checking its sha256."""
    from PIL import Image

    member, expected = MAHOTAS_MEMBER
    with zipfile.ZipFile(wheel) as archive:
        data = archive.read(member)
    if hashlib.sha256(data).hexdigest() != expected:
        raise ValueError(f"{wheel}: {member} is not the file of mahotas 1.4.18 (sha256)")
    pixels = np.asarray(Image.open(io.BytesIO(data)))
    if pixels.shape != (1024, 1344, 3) or not (pixels == pixels[..., :1]).all():
        raise ValueError(f"unexpected nuclear.png: {pixels.shape}, channels not equal")
    return np.ascontiguousarray(pixels[..., 0])


def write_unlabelled(image: np.ndarray, outdir: Path) -> pd.DataFrame:
    """Write the foreground tiles of ``image`` as 8-bit PNGs and their table; return the table."""
    from PIL import Image

    threshold = image.mean() + 0.5 * image.std()
    folder = outdir / UNLABELLED_FOLDER
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rows = []
    for y in range(0, image.shape[0] - PATCH + 1, PATCH):
        for x in range(0, image.shape[1] - PATCH + 1, PATCH):
            tile = image[y : y + PATCH, x : x + PATCH]
            if (tile > threshold).mean() < MIN_FOREGROUND:
                continue
            name = f"{UNLABELLED_FOLDER}/tile_y{y:04d}_x{x:04d}.png"
            # No metadata chunks: reruns give the same bytes.
            Image.fromarray(tile).save(outdir / name, format="PNG", compress_level=9)
            digest = hashlib.sha256((outdir / name).read_bytes()).hexdigest()
            rows.append({"path": name, "top": y, "left": x, "sha256": digest})
    table = pd.DataFrame(rows)
    table.to_csv(outdir / UNLABELLED_TABLE, sep="\t", index=False, lineterminator="\n")
    return table


def _write_tiff(path: Path, pixels: np.ndarray, compress: bool = False) -> None:
    # No description, date or software tags: reruns give the same bytes.
    tifffile.imwrite(
        path,
        pixels,
        photometric="minisblack",
        metadata=None,
        software=False,
        compression="zlib" if compress else None,
    )


def write(image: np.ndarray, mask: np.ndarray, outdir: Path) -> pd.DataFrame:
    """Write the sources, the patches and the table into ``outdir``; return the table."""
    half = PATCH // 2
    for key, pixels in (("image", image), ("mask", mask)):
        _write_tiff(outdir / SOURCES[key], pixels, compress=True)
    rows = patches(mask)
    shutil.rmtree(outdir / FOLDER, ignore_errors=True)  # no patch of an earlier run stays
    for row in rows:
        y, x = int(row["centre_y"]), int(row["centre_x"])  # type: ignore[call-overload]
        path = outdir / str(row["path"])
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_tiff(path, image[y - half : y + half, x - half : x + half])
        row["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    table = pd.DataFrame(rows)
    table.to_csv(outdir / TABLE, sep="\t", index=False, lineterminator="\n")
    return table


def write_counts(image: np.ndarray, mask: np.ndarray, outdir: Path) -> pd.DataFrame:
    """Write the counting task's windows and table into ``outdir``; return the table."""
    half = PATCH // 2
    rows = count_patches(mask)
    shutil.rmtree(outdir / COUNT_FOLDER, ignore_errors=True)
    for row in rows:
        y, x = int(row["centre_y"]), int(row["centre_x"])  # type: ignore[call-overload]
        path = outdir / str(row["path"])
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_tiff(path, image[y - half : y + half, x - half : x + half], compress=True)
        row["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    table = pd.DataFrame(rows)
    table.to_csv(outdir / COUNT_TABLE, sep="\t", index=False, lineterminator="\n")
    return table


def main() -> None:
    """Build the files from the stardist wheel."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("wheel", type=Path, help="stardist-0.9.1 wheel")
    parser.add_argument("--mahotas", type=Path, help="mahotas-1.4.18 wheel (unlabelled tiles)")
    parser.add_argument("-o", "--outdir", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    image, mask = read_sources(args.wheel)
    table = write(image, mask, args.outdir)
    counts = table.groupby(["region", "label"]).size().unstack(fill_value=0)
    log.info("%d patches in %d regions:\n%s", len(table), table["region"].nunique(), counts)
    table = write_counts(image, mask, args.outdir)
    counts = table.groupby(["region", "label"]).size().unstack(fill_value=0)
    log.info("counting task: %d windows:\n%s", len(table), counts)
    if args.mahotas:
        tiles = write_unlabelled(read_unlabelled(args.mahotas), args.outdir)
        log.info("%d unlabelled tiles in %s", len(tiles), args.outdir / UNLABELLED_FOLDER)


if __name__ == "__main__":
    main()
