"""Wall time of the embedded demo (target: under 5 minutes on 2 CPU cores) and of a no-op rerun.

Runs the default config in a temporary folder with a fresh results tree, then the same command
again with nothing left to do (target: under 5 s), and prints Markdown rows for
benchmarks/RESULTS.md with the machine, the wall times and the summed training time from
Snakemake's benchmark files.

    .venv/bin/python benchmarks/demo_walltime.py --cores 2
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from dlpipe.workflow import rebase_paths

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    config = rebase_paths(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()), ROOT)
    for exp in config["experiments"].values():
        exp.setdefault("training", {})["progress_bar"] = False
    with tempfile.TemporaryDirectory(prefix="dlpipe-demo-") as tmp:
        cfg = Path(tmp) / "config.yaml"
        cfg.write_text(yaml.safe_dump(config))
        cmd = [
            sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
            "--directory", tmp, "--configfile", str(cfg), "--cores", str(args.cores), "--quiet",
        ]  # fmt: skip
        start = time.perf_counter()
        subprocess.run(cmd, check=True)
        wall = time.perf_counter() - start
        start = time.perf_counter()
        noop = subprocess.run(cmd, check=True, capture_output=True, text=True)
        noop_wall = time.perf_counter() - start
        assert "Nothing to be done" in noop.stdout + noop.stderr
        bench = sorted((Path(tmp) / "benchmarks" / "runs" / "train").rglob("*.tsv"))
        train_s = sum(pd.read_csv(p, sep="\t")["s"].iloc[0] for p in bench)
        summary = pd.read_csv(Path(tmp) / "results" / "breast_cancer" / "metrics.tsv", sep="\t")
    acc = summary.set_index(["learner", "metric"]).loc[("mlp", "accuracy"), "mean"]
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}"
    print("| benchmark | machine | cores | wall time | training jobs (sum) | check |")
    print("|---|---|---|---|---|---|")
    print(
        f"| demo (config/config.yaml) | {machine} | {args.cores} | {wall:.0f} s | "
        f"{len(bench)} jobs, {train_s:.0f} s | MLP accuracy {acc:.3f} |"
    )
    print(f"| no-op rerun of the demo | {machine} | {args.cores} | {noop_wall:.1f} s | 0 jobs | |")


if __name__ == "__main__":
    main()
