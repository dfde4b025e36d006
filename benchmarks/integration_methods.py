"""Integration methods side by side on the demo's cells: one scib-metrics table, wall times.

Runs the demo's single-cell experiment (``pbmc_cell_types`` of config/config.yaml: control and
interferon-β-stimulated PBMCs) through :func:`dlpipe.integration.integrate` with every method
dlpipe offers (PCA, Harmony, ComBat, scVI, scANVI), the demo's settings and seed, in one process;
then scores them with scib-metrics and states the verdict, as the workflow does. Prints Markdown
for benchmarks/RESULTS.md: the machine, each method's wall time, the scib table, the verdict
and scANVI's blind label transfer.

    .venv/bin/python benchmarks/integration_methods.py [--threads 2] [--epochs N --lr X]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import yaml

from dlpipe.cells import METHODS
from dlpipe.config import validate_config
from dlpipe.integration import integrate
from dlpipe.integration_benchmark import integration_verdict, scib_table, shared_labels
from dlpipe.io.h5ad import read_counts
from dlpipe.modalities.singlecell import check_singlecell
from dlpipe.workflow import rebase_paths

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = "pbmc_cell_types"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, help="scVI max_epochs (default: the demo's)")
    parser.add_argument("--lr", type=float, help="scVI learning rate (default: the demo's)")
    args = parser.parse_args()
    config = rebase_paths(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()), ROOT)
    config["experiments"] = {EXPERIMENT: config["experiments"][EXPERIMENT]}
    integration = config["experiments"][EXPERIMENT]["integration"]
    integration.update(methods=list(METHODS), device="cpu")
    if args.epochs:
        integration["max_epochs"] = args.epochs
    if args.lr:
        integration["learning_rate"] = args.lr
    exp = validate_config(config)["experiments"][EXPERIMENT]
    data = exp["data"]
    adata = read_counts(data["path"], data["layer"])
    check_singlecell(adata, exp, EXPERIMENT)
    start = time.perf_counter()
    result = integrate(adata, exp, threads=args.threads)
    total = time.perf_counter() - start
    start = time.perf_counter()
    table = scib_table(result.adata, data["batch_column"], data["label_column"])
    scib_seconds = time.perf_counter() - start
    obs = result.adata.obs
    labelled = obs[data["label_column"]].notna()
    verdict = integration_verdict(
        table,
        exp["integration"]["verdict_margin"],
        int(obs.loc[labelled, data["batch_column"]].nunique()),
        len(shared_labels(obs, data["batch_column"], data["label_column"])),
    )
    cfg = exp["integration"]
    print(f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}; {args.threads} threads; {result.adata.n_obs} cells × "
          f"{result.adata.n_vars} genes; scVI {result.summary['epochs_trained']} of "
          f"{cfg['max_epochs']} epochs at learning rate {cfg['learning_rate']}\n")  # fmt: skip
    print("| method | wall time (s) |\n|---|---|")
    for method, seconds in result.seconds.items():
        print(f"| {METHODS[method][0]} | {seconds:.1f} |")
    print(f"| whole integrate call (genes, methods, UMAPs, Leiden) | {total:.1f} |")
    print(f"| scib-metrics, all methods | {scib_seconds:.1f} |\n")
    shown = table.drop(columns=["type"]).copy()
    numbers = [c for c in shown.columns if c not in ("metric", "cells")]
    shown[numbers] = shown[numbers].map(lambda v: f"{v:.3f}")
    print("| " + " | ".join(shown.columns) + " |")
    print("|" + "---|" * len(shown.columns))
    for row in shown.itertuples(index=False):
        print("| " + " | ".join(map(str, row)) + " |")
    print()
    print(f"Verdict: {verdict['sentence']}")
    for warning in verdict["warnings"]:
        print(f"Warning: {warning}")
    transfer = result.summary["scanvi"]
    check = transfer.get("hidden_check")
    flagged = transfer["dominated"] or "none"
    print(f"\nscANVI: {transfer['n_targets']} cells labelled blind, {transfer['n_unknown']} "
          f"unknown (threshold {transfer['threshold']}); flagged: {flagged}")  # fmt: skip
    if check:
        recall = {k: round(v, 2) for k, v in check["recall_most_probable"].items()}
        print(f"hidden labels: {check['cells']} cells, coverage {check['coverage']:.3f}, accuracy "
              f"of accepted {check['accuracy_accepted']:.3f}, most probable "
              f"{check['accuracy_most_probable']:.3f} (balanced "
              f"{check['balanced_accuracy_most_probable']:.3f}); recall "
              f"{recall}")  # fmt: skip


if __name__ == "__main__":
    main()
