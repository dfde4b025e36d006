"""Image data path: dlpipe's memory-mapped store beside a plain per-epoch decode pipeline.

Writes two real-sized synthetic image sets once to a temporary folder (16-bit single-channel
TIFFs and 8-bit RGB PNGs, each image of a random size between 64 and 256 pixels, as
microscopy crops and slide tiles come) and measures, in one run:

1. images/s over 1, 2 and 3 epochs, one-off costs included:
   - dlpipe: the store is built once (every file decoded and resized into ``images.npy``,
     :func:`dlpipe.image_store.write_image_store`, the prepare step's call); every epoch then
     reads shuffled batches from the memory map through dlpipe's loader
     (:func:`dlpipe.train.make_loader` on a fold side, :class:`dlpipe.image_store.StoreImages`),
     scales them to float32 (:func:`dlpipe.train.scale_batch`) and augments them
     (:func:`dlpipe.train.augment_images`);
   - plain: the pattern users write by hand, a torch ``Dataset`` whose ``__getitem__`` decodes
     the file (tifffile / Pillow), resizes it (the same antialiased bilinear interpolation) and
     scales it to float32, every epoch, through a ``DataLoader`` with the same batch size,
     workers and augmentation;
2. the data path's overhead on a training epoch of the default image model (``smallcnn``):
   the epoch through dlpipe's loader (shuffled stored batches → device → float32 → augment →
   forward, backward, step) against the same epoch on float32 batches already in memory where
   the model runs (the same shuffling, the same augmentation).

    python benchmarks/image_data_path.py                       # default, < 3 min on 2 cores
    python benchmarks/image_data_path.py --images 8000 --size 128 --workers 0 4 --device cuda

Prints Markdown tables for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from dlpipe.image_store import StoreImages, write_image_store
from dlpipe.models import build_model
from dlpipe.train import augment_images, make_loader, scale_batch

BATCH = 32


def write_images(folder: Path, n: int, kind: str, seed: int) -> pd.DataFrame:
    """Write ``n`` images of two classes; return the listing (id, path, label, group)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = "a" if i % 2 else "b"
        h, w = (int(v) for v in rng.integers(64, 257, 2))
        if kind == "tiff16":
            # 12-bit camera range, a bright blob for one class.
            pixels = rng.integers(100, 400, (h, w), dtype=np.uint16)
            if label == "a":
                pixels[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3] += 3000
            path = folder / label / f"{i}.tif"
            path.parent.mkdir(parents=True, exist_ok=True)
            tifffile.imwrite(path, pixels)
        else:
            pixels = rng.integers(0, 200, (h, w, 3), dtype=np.uint8)
            if label == "a":
                pixels[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3, 0] += 55
            path = folder / label / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(path, compress_level=1)
        rows.append({"id": f"{label}/{path.name}", "path": str(path), "label": label})
    listing = pd.DataFrame(rows)
    listing["group"] = listing["id"]
    return listing


class DecodeEveryEpoch(Dataset):
    """The hand-written pattern: decode, resize and scale one file per ``__getitem__``."""

    def __init__(self, paths: list[str], labels: np.ndarray, scale: float, size: int) -> None:
        self.paths, self.labels, self.scale = paths, torch.from_numpy(labels), scale
        self.size = size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        path = self.paths[i]
        if path.endswith(".tif"):
            pixels = tifffile.imread(path)[..., None]
        else:
            pixels = np.asarray(Image.open(path))
        x = torch.from_numpy(np.ascontiguousarray(np.moveaxis(pixels, -1, 0), np.float32))
        x = torch.nn.functional.interpolate(
            x[None],
            size=(self.size, self.size),
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )[0]
        return x / self.scale, self.labels[i]


def plain_loader(
    listing: pd.DataFrame, scale: float, workers: int, seed: int, size: int
) -> DataLoader:
    labels = (listing["label"] == "a").to_numpy().astype(np.int64)
    return DataLoader(
        DecodeEveryEpoch(listing["path"].tolist(), labels, scale, size),
        batch_size=BATCH,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
        num_workers=workers,
        persistent_workers=workers > 0,
    )


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def drain(batches: Iterable, device: str, scale: float | None) -> None:
    """Consume an epoch of batches as training would, up to the model: device, float, augment."""
    for x, y in batches:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if scale is not None:
            x = scale_batch(x, scale)
        augment_images(x)
    if device != "cpu":
        torch.cuda.synchronize()


def throughput(
    out: list[str], folder: Path, n: int, kind: str, workers: list[int], device: str, size: int
) -> StoreImages:
    """Images/s of dlpipe's path and of the plain pipeline, 1–3 epochs; return the store side."""
    listing = write_images(folder / kind, n, kind, seed=len(kind))
    store = folder / f"{kind}.npy"
    build = timed(lambda: write_image_store(listing, store, size))
    pixels = np.load(store, mmap_mode="r")
    scale = 255.0 if pixels.dtype == np.uint8 else float(pixels.max())
    side = StoreImages(store, np.arange(n), scale)
    labels = (listing["label"] == "a").to_numpy().astype(np.int64)
    shape = f"{n} × {pixels.shape[1]}-channel {pixels.dtype.name} ({kind}, 64–256 px → {size})"
    out.append(f"\n### {shape}\n")
    out.append(f"Store build (decode + resize every file once, write images.npy): {build:.2f} s "
               f"({n / build:,.0f} images/s); images.npy {store.stat().st_size / 1e6:.1f} MB, "
               f"source files {sum(Path(p).stat().st_size for p in listing['path']) / 1e6:.1f} MB"
               "\n")  # fmt: skip
    out.append("| pipeline | workers | epoch 1 | epoch 2 | epoch 3 | images/s, 1 epoch | "
               "images/s, 2 epochs | images/s, 3 epochs | images/s, fastest epoch alone |"
               )  # fmt: skip
    out.append("|---|---|---|---|---|---|---|---|---|")
    for w in workers:
        loaders = {
            "dlpipe (store once; memmap → batch → float → augment)": (
                make_loader(side, labels, BATCH, shuffle=True, seed=0, num_workers=w),
                scale,
                build,
            ),
            "plain (decode + resize + float every epoch → augment)": (
                plain_loader(listing, scale, w, seed=0, size=size),
                None,
                0.0,
            ),
        }
        for name, (loader, pixel_scale, once) in loaders.items():
            epoch = functools.partial(drain, loader, device, pixel_scale)
            epochs = [timed(epoch) for _ in range(3)]
            rates = [(k + 1) * n / (once + sum(epochs[: k + 1])) for k in range(3)]
            out.append(
                f"| {name} | {w} | "
                + " | ".join(f"{t:.2f} s" for t in epochs)
                + " | "
                + " | ".join(f"{r:,.0f}" for r in rates)
                + f" | {n / min(epochs):,.0f} |"
            )
            del loader, epoch
    return side


def epoch_overhead(out: list[str], side: StoreImages, device: str, repeats: int) -> None:
    """smallcnn epoch through dlpipe's loader vs on float batches already in memory."""
    n = len(side)
    labels = np.arange(n, dtype=np.int64) % 2
    channels = side.shape[1]
    in_memory = torch.from_numpy(side[:]).to(device)  # the baseline: scaled, where it runs
    y_dev = torch.from_numpy(labels).to(device)
    loss_fn = torch.nn.CrossEntropyLoss()
    torch.manual_seed(0)
    model = build_model({"name": "smallcnn"}, channels, 2).to(device)
    opt = torch.optim.Adam(model.parameters())

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        opt.zero_grad()
        loss_fn(model(augment_images(x)), y).backward()
        opt.step()

    def memory_epoch() -> None:
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(0)).to(device)
        for i in range(0, n, BATCH):
            rows = perm[i : i + BATCH]
            step(in_memory[rows], y_dev[rows])
        if device != "cpu":
            torch.cuda.synchronize()

    def loader_epoch(loader: DataLoader) -> None:
        for x, y in loader:
            # As Lightning does: the batch moves to the device, then on_after_batch_transfer.
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            step(scale_batch(x, side.scale), y)
        if device != "cpu":
            torch.cuda.synchronize()

    workers = 0 if device == "cpu" else 4  # training.num_workers: auto
    loader = make_loader(side, labels, BATCH, shuffle=True, seed=0, num_workers=workers,
                         pin_memory=device != "cpu")  # fmt: skip
    memory_epoch()  # warm-up (allocator, kernels, the page cache)
    loader_epoch(loader)
    # Alternated, so that drift in the machine's load hits both alike; the best of each kept.
    times: dict[str, list[float]] = {"memory": [], "dlpipe": []}
    for _ in range(repeats):
        times["memory"].append(timed(memory_epoch))
        times["dlpipe"].append(timed(lambda: loader_epoch(loader)))
    base, piped = min(times["memory"]), min(times["dlpipe"])
    what = f"smallcnn epoch, {n} × {tuple(side.shape[1:])}, batch {BATCH}, {device}"
    out.append("\n| measurement | implementation | result |")
    out.append("|---|---|---|")
    out.append(f"| {what} | float32 batches already in {device} memory | {base:.2f} s |")
    path = f"memmap → loader, {workers} workers → {device} → float32 → augment"
    out.append(f"| {what} | dlpipe data path ({path}) | "
               f"{piped:.2f} s ({100 * (piped / base - 1):+.1f} %) |")  # fmt: skip
    out.append(f"\nAll epochs (s): in memory {', '.join(f'{t:.2f}' for t in times['memory'])}; "
               f"dlpipe {', '.join(f'{t:.2f}' for t in times['dlpipe'])}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1500, help="images per set (default 1500)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2],
                        help="loader workers to compare (default 0 2)")  # fmt: skip
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--size", type=int, default=64, help="side the images are resized to")
    parser.add_argument("--repeats", type=int, default=4, help="training epochs timed per path")
    parser.add_argument("--folder", help="where to write the images (default: a temporary one)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    folder = Path(args.folder or tempfile.mkdtemp(prefix="dlpipe-image-bench-"))
    started = time.perf_counter()
    out: list[str] = []
    try:
        side = throughput(out, folder, args.images, "tiff16", args.workers, args.device, args.size)
        throughput(out, folder, args.images, "png8", args.workers, args.device, args.size)
        epoch_overhead(out, side, args.device, args.repeats)
    finally:
        if not args.folder:
            shutil.rmtree(folder, ignore_errors=True)
    cpu = platform.processor() or platform.machine()
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        model = cpu
    gpu = f", {torch.cuda.get_device_name()}" if args.device != "cpu" else ""
    print(f"Machine: {model} ({cpu}), {os.cpu_count()} CPUs{gpu}, Python "
          f"{platform.python_version()}, torch {torch.__version__}; {args.threads} torch "
          f"thread(s); whole run {time.perf_counter() - started:.0f} s")  # fmt: skip
    print("\n".join(out))


if __name__ == "__main__":
    main()
