"""Training time of the demo's models on a given accelerator and precision (CPU vs GPU).

Prepares fold 0 of each demo experiment once (prepare, split, preprocess), then trains its
model with every requested setting for the same number of epochs (early stopping off, so each
setting does the same work) and prints a Markdown table: seconds per run and per epoch, the
speed-up over the first setting and the test metric of the trained model (so a faster setting
that learns worse shows). A one-epoch warm-up per setting (CUDA context, kernel selection) is
not timed.

    .venv/bin/python benchmarks/gpu_training.py                        # cpu:32-true gpu:bf16-mixed
    .venv/bin/python benchmarks/gpu_training.py --runs cpu:32-true --epochs 5
    .venv/bin/python benchmarks/gpu_training.py --runs cpu:32-true gpu:32-true gpu:bf16-mixed

The GPU settings need a CUDA build of torch and a visible GPU.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from dlpipe.config import validate_config
from dlpipe.steps.evaluate import evaluate_step
from dlpipe.steps.prepare import prepare_step
from dlpipe.steps.preprocess import preprocess_step
from dlpipe.steps.split import split_step
from dlpipe.steps.train import train_step
from dlpipe.workflow import rebase_paths

ROOT = Path(__file__).resolve().parents[1]
#: The metric reported per task (the first learner of metrics.json is the deep model).
METRIC = {"classification": "auroc", "regression": "r2"}


def prepare_fold(name: str, exp: dict[str, Any], folder: Path) -> dict[str, str]:
    """Run prepare, split and preprocess of fold 0; return the files training needs."""
    out = folder / name
    out.mkdir(parents=True)
    files = {
        k: str(out / f"{k}.{ext}")
        for k, ext in (
            ("dataset", "parquet"),
            ("meta", "json"),
            ("provenance", "json"),
            ("folds", "tsv"),
            ("train", "npz"),
            ("val", "npz"),
            ("test", "npz"),
            ("preprocessor", "skops"),
            ("summary", "json"),
        )
    }
    prepare_step(name, exp, files["dataset"], files["meta"], files["provenance"], str(ROOT))
    split_step(exp, files["dataset"], files["meta"], files["folds"])
    preprocess_step(exp, 0, files["dataset"], files["meta"], files["folds"], files)
    return files


def time_training(
    exp: dict[str, Any],
    files: dict[str, str],
    device: str,
    precision: str,
    epochs: int,
    threads: int,
    folder: Path,
) -> tuple[float, float]:
    """Seconds to train ``epochs`` epochs with this setting, and the test metric reached."""
    exp = copy.deepcopy(exp)
    exp["training"].update(device=device, precision=precision, progress_bar=False)
    exp["baseline"]["enabled"] = False  # the deep model only
    model, history = str(folder / "model.ckpt"), str(folder / "history.tsv")
    args = (files["train"], files["val"], files["preprocessor"], files["meta"], model, history)
    exp["training"].update(max_epochs=1, patience=1)
    train_step(exp, *args, threads=threads)  # warm-up, not timed
    exp["training"].update(max_epochs=epochs, patience=epochs)
    if device == "gpu":
        torch.cuda.synchronize()
    start = time.perf_counter()
    train_step(exp, *args, threads=threads)
    if device == "gpu":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    metrics = evaluate_step(
        exp,
        0,
        files["test"],
        model,
        None,
        files["preprocessor"],
        files["meta"],
        str(folder / "pred.tsv"),
        str(folder / "m.json"),
    )
    learner = exp["model"]["name"]
    return seconds, float(metrics[learner][METRIC[exp["task"]]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs",
        nargs="+",
        default=["cpu:32-true", "gpu:bf16-mixed"],
        help="device:precision settings, the first is the reference",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs per run (default: each experiment's max_epochs)",
    )
    parser.add_argument("--experiments", nargs="*", default=None)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    runs = [tuple(run.split(":", 1)) for run in args.runs]
    if any(device == "gpu" for device, _ in runs) and not torch.cuda.is_available():
        parser.error("a gpu setting needs a visible CUDA GPU and a CUDA build of torch")

    config = rebase_paths(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()), ROOT)
    config = validate_config(config)
    names = args.experiments or list(config["experiments"])
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, {gpu}, torch {torch.__version__}"
    rows = []
    with tempfile.TemporaryDirectory(prefix="dlpipe-gpu-bench-") as tmp:
        for name in names:
            exp = config["experiments"][name]
            epochs = args.epochs or int(exp["training"]["max_epochs"])
            files = prepare_fold(name, exp, Path(tmp) / "data")
            reference = None
            for device, precision in runs:
                folder = Path(tmp) / "runs" / name / f"{device}-{precision}"
                folder.mkdir(parents=True)
                seconds, metric = time_training(
                    exp, files, device, precision, epochs, args.threads, folder
                )
                reference = reference or seconds
                rows.append(
                    (
                        name,
                        exp["model"]["name"],
                        device,
                        precision,
                        epochs,
                        seconds,
                        reference / seconds,
                        f"{METRIC[exp['task']]} {metric:.3f}",
                    )
                )
    print(f"Machine: {machine}; {args.threads} CPU threads; fold 0 of each experiment.\n")
    print(
        "| experiment | model | device | precision | epochs | train time | per epoch "
        "| speed-up | test metric |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, model, device, precision, epochs, seconds, speedup, metric in rows:
        print(
            f"| {name} | {model} | {device} | {precision} | {epochs} | {seconds:.1f} s | "
            f"{1000 * seconds / epochs:.0f} ms | {speedup:.2f}x | {metric} |"
        )


if __name__ == "__main__":
    main()
