"""The default MLP beside logistic regression on p ≫ n expression tables, in the same folds.

Real data: the shipped ALL arrays (``resources/all_leukaemia.csv.gz``: 128 adult ALL patients ×
the 1,000 most variable probes, RMA log2; resources/README.md). Tasks, each a table written
into a temporary folder and run through the workflow's steps (prepare, split, preprocess,
train, baseline, evaluate; no calibration) with the schema's defaults except the label:

- ``bcr_abl``: BCR/ABL vs NEG (``mol_biol``; 37 vs 74 patients, 1,000 probes);
- ``lineage``: B vs T lineage (95 vs 33 patients, 1,000 probes);
- ``bcr_abl_full``: BCR/ABL vs NEG on all 12,625 probes of the ALL package, when ``--full``
  names that table (build it with ``resources/make_resources.py``'s functions; see
  benchmarks/RESULTS.md).

Every task runs under each requested setting: ``before`` (the defaults before the p ≫ n rule:
no supervised selection, hidden layers [128, 64], dropout 0.3, weight decay 1e-4) and
``defaults`` (the schema's defaults as they are now), or settings of your own given as
``--setting name 'yaml mapping of config sections'``. The table lists auROC and accuracy of the
MLP and of the logistic-regression baseline (mean ± sd over the folds, then the pooled
out-of-fold value), and the features the model saw.

    PYTHONPATH=src .venv/bin/python benchmarks/p_much_larger_than_n.py
    PYTHONPATH=src .venv/bin/python benchmarks/p_much_larger_than_n.py --tasks bcr_abl \\
        --setting small 'model: {hidden_layers: [16]}'
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml

from dlpipe.config import validate_config
from dlpipe.io.files import read_json
from dlpipe.steps.evaluate import evaluate_step
from dlpipe.steps.prepare import prepare_step
from dlpipe.steps.preprocess import preprocess_step
from dlpipe.steps.split import split_step
from dlpipe.steps.train import baseline_step, train_step

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "resources" / "all_leukaemia.csv.gz"
PHENOTYPES = ["sex", "age", "lineage", "mol_biol"]
#: The defaults before the p ≫ n rule, spelled out so they can run beside the new ones.
BEFORE = {
    "preprocess": {"select": "none"},
    "model": {"hidden_layers": [128, 64], "dropout": 0.3},
    "training": {"weight_decay": 0.0001},
}
SETTINGS: dict[str, dict[str, Any]] = {"before": BEFORE, "defaults": {}}


def task_table(task: str, folder: Path, full: Path | None) -> tuple[Path, str]:
    """Write the task's table; return it and its label column."""
    source = full if task == "bcr_abl_full" else TABLE
    table = pd.read_csv(source, dtype={"sample_id": str})
    if task.startswith("bcr_abl"):
        table = table[table["mol_biol"].isin(["BCR/ABL", "NEG"])]
        label = "mol_biol"
    else:
        label = "lineage"
    path = folder / f"{task}.csv"
    table.to_csv(path, index=False)
    return path, label


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra``'s sections laid over it (one level deep)."""
    out = copy.deepcopy(base)
    for section, values in extra.items():
        out.setdefault(section, {}).update(values)
    return out


def run(
    task: str, setting: dict[str, Any], path: Path, label: str, folder: Path, seed: int
) -> dict[str, Any]:
    """Run every fold of one task under one setting; return per-fold metrics and features."""
    exp = merge(
        {
            "task": "classification",
            "seed": seed,
            "data": {
                "path": str(path),
                "id_column": "sample_id",
                "label_column": label,
                "exclude_columns": [c for c in PHENOTYPES if c != label],
            },
            "training": {"progress_bar": False, "device": "cpu"},
            "calibration": {"enabled": False},
        },
        setting,
    )
    exp = validate_config({"experiments": {task: exp}})["experiments"][task]
    folder.mkdir(parents=True)
    f = {
        k: str(folder / f"{k}.{ext}")
        for k, ext in (("dataset", "parquet"), ("meta", "json"), ("provenance", "json"))
    }
    f["folds"] = str(folder / "folds.tsv")
    prepare_step(task, exp, f["dataset"], f["meta"], f["provenance"], str(ROOT))
    folds = split_step(exp, f["dataset"], f["meta"], f["folds"])
    learners: dict[str, list[dict[str, Any]]] = {}
    features = []
    for fold in sorted(folds["fold"].unique()):
        d = {k: str(folder / f"{fold}.{k}.npz") for k in ("train", "val", "test")}
        d["pre"] = d["preprocessor"] = str(folder / f"{fold}.skops")
        d["summary"] = str(folder / f"{fold}.summary.json")
        summary = preprocess_step(exp, int(fold), f["dataset"], f["meta"], f["folds"], d)
        features.append(summary["n_model_features"])
        model, base = str(folder / f"{fold}.ckpt"), str(folder / f"{fold}.baselines.skops")
        train_step(
            exp, d["train"], d["val"], d["pre"], f["meta"], model, str(folder / f"{fold}.hist")
        )
        baseline_step(exp, d["train"], d["pre"], f["meta"], base)
        metrics = evaluate_step(
            exp, int(fold), d["test"], model, base, d["pre"], f["meta"],
            str(folder / f"{fold}.pred"), str(folder / f"{fold}.metrics"),
        )  # fmt: skip
        for learner, values in metrics.items():
            learners.setdefault(learner, []).append(values)
    pooled = {}
    frames = pd.concat(pd.read_csv(p, sep="\t") for p in sorted(folder.glob("*.pred")))
    meta = read_json(f["meta"])
    from dlpipe.tasks import get_task  # lazy: after the steps, as the aggregate step does

    task_obj = get_task(meta["task"])
    for learner, rows in frames.groupby("learner"):
        pooled[learner] = task_obj.table_metrics(rows, meta)
    return {"folds": learners, "pooled": pooled, "features": features, "model": exp["model"]}


def cell(values: list[float], pooled: float) -> str:
    """``mean ± sd (pooled)`` of per-fold values."""
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f} ({pooled:.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["bcr_abl", "lineage"])
    parser.add_argument("--settings", nargs="*", default=["before", "defaults"])
    parser.add_argument(
        "--setting",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "YAML"),
        help="a setting of your own: config sections laid over the defaults",
    )
    parser.add_argument("--full", type=Path, help="the 12,625-probe ALL table (bcr_abl_full)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name, text in args.setting:
        SETTINGS[name] = yaml.safe_load(text)
        if name not in args.settings:
            args.settings.append(name)
    if "bcr_abl_full" in args.tasks and args.full is None:
        parser.error("task bcr_abl_full needs --full (the 12,625-probe table)")
    torch.set_num_threads(1)
    logging.disable(logging.WARNING)
    machine = (
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"torch {torch.__version__}; 1 torch thread"
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="dlpipe-pn-") as tmp:
        for task in args.tasks:
            path, label = task_table(task, Path(tmp), args.full)
            for name in args.settings:
                start = time.perf_counter()
                out = run(task, SETTINGS[name], path, label, Path(tmp) / task / name, args.seed)
                seconds = time.perf_counter() - start
                mlp, lr = list(out["folds"])
                n_in = pd.read_csv(path, nrows=0).shape[1] - 1 - len(PHENOTYPES)
                rows.append(
                    [task, name, f"{int(np.median(out['features']))} of {n_in}"]
                    + [
                        cell(
                            [m[metric] for m in out["folds"][learner]],
                            out["pooled"][learner][metric],
                        )
                        for learner in (mlp, lr)
                        for metric in ("auroc", "accuracy")
                    ]
                    + [f"{seconds:.0f} s"]
                )
    print(f"Machine: {machine}; seed {args.seed}; folds: the schema's default plan.\n")
    print(
        "| task | setting | features (median per fold) | MLP auROC | MLP accuracy "
        "| logistic auROC | logistic accuracy | wall time |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
