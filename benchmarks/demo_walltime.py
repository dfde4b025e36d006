"""Wall time of the embedded demo (target: under 5 minutes on 2 CPU cores) and of a no-op rerun.

Runs the default config in a temporary folder with a fresh results tree, then the same command
again with nothing left to do (target: under 5 s), and prints Markdown rows for
benchmarks/RESULTS.md with the machine, the wall times and the summed training time from
Snakemake's benchmark files, and per experiment the summed time and CPU time of its jobs that
record a benchmark (on a shared machine the CPU time is the steadier figure).

    .venv/bin/python benchmarks/demo_walltime.py --cores 2 [--keep DIR]
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
#: Rules whose jobs get their own row in the per-experiment table.
DETAILED = ("integrate", "integration_metrics", "embed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="run in this folder and keep its results")
    args = parser.parse_args()
    config = rebase_paths(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()), ROOT)
    for exp in config["experiments"].values():
        exp.setdefault("training", {})["progress_bar"] = False
    with tempfile.TemporaryDirectory(prefix="dlpipe-demo-") as scratch:
        tmp = str(args.keep or scratch)
        Path(tmp).mkdir(parents=True, exist_ok=True)
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
        per_exp = job_times(Path(tmp) / "benchmarks" / "runs", list(config["experiments"]))
    acc = summary.set_index(["learner", "metric"]).loc[("mlp", "accuracy"), "mean"]
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}"
    print("| benchmark | machine | cores | wall time | training jobs (sum) | check |")
    print("|---|---|---|---|---|---|")
    print(
        f"| demo (config/config.yaml) | {machine} | {args.cores} | {wall:.0f} s | "
        f"{len(bench)} jobs, {train_s:.0f} s | MLP accuracy {acc:.3f} |"
    )
    print(f"| no-op rerun of the demo | {machine} | {args.cores} | {noop_wall:.1f} s | 0 jobs | |")
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}\n")
    print("| experiment | jobs with a benchmark | job time (sum) | CPU time (sum) |")
    print("|---|---|---|---|")
    for exp, (n, seconds, cpu) in per_exp.items():
        print(f"| {exp} | {n} | {seconds:.0f} s | {cpu:.0f} s |")


def job_times(runs: Path, experiments: list[str]) -> dict[str, tuple[int, float, float]]:
    """Number of benchmarked jobs, their summed wall time and CPU time, per experiment.

    The jobs of the rules in ``DETAILED`` also get a row of their own (``experiment: rule``).
    """
    groups = {}
    for exp in experiments:
        files = sorted(runs.glob(f"*/{exp}.tsv")) + sorted(runs.glob(f"*/{exp}/*.tsv"))
        groups[exp] = files
        for rule in DETAILED:
            mine = [f for f in files if f.relative_to(runs).parts[0] == rule]
            if mine:
                groups[f"{exp}: {rule}"] = mine
    out = {}
    for name, files in groups.items():
        frames = [pd.read_csv(f, sep="\t").iloc[0] for f in files]
        out[name] = (
            len(frames),
            sum(float(r["s"]) for r in frames),
            sum(float(r["cpu_time"]) for r in frames),
        )
    return out


if __name__ == "__main__":
    main()
