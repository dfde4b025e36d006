"""The integrate rule beside scvi-tools called directly: wall time and peak memory.

Runs, alternately and ``--repeats`` times each, on the demo's single-cell data and settings
(``pbmc_cell_types`` of config/config.yaml):

1. dlpipe: ``snakemake results/pbmc_cell_types/integrated.h5ad`` in a fresh folder (the
   integrate job alone: counts, batch and label checks, gene selection, scVI, scANVI, PCA,
   UMAPs, Leiden, saved models and .h5ad). Its time is the job's own time from Snakemake's
   benchmark file; Snakemake's start-up and DAG building are reported beside it.
2. direct: the same steps written against scanpy and scvi-tools by hand (this file, ``--direct``)
   with the same settings and seed, in a fresh Python process.

Peak memory is the largest resident set of the process tree (``wait4``'s ``ru_maxrss``), the
same measurement for both. Prints a Markdown table for benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/singlecell_integrate.py --repeats 2
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from dlpipe.config import validate_config
from dlpipe.workflow import rebase_paths

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = "pbmc_cell_types"


def demo_experiment() -> dict[str, Any]:
    """The demo's single-cell experiment, validated, with paths from the repository root."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["experiments"] = {EXPERIMENT: config["experiments"][EXPERIMENT]}
    config = rebase_paths(config, ROOT)
    config["experiments"][EXPERIMENT]["integration"]["device"] = "cpu"
    config["experiments"][EXPERIMENT]["training"]["progress_bar"] = False
    return validate_config(config)


def run_measured(cmd: list[str], cwd: str | Path) -> tuple[float, float]:
    """Run a command; return its wall time (s) and the peak RSS of its process tree (MB)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{cmd[:4]} failed:\n{stderr[-3000:]}")
    return wall, usage.ru_maxrss / 1024


def dlpipe_run(config: dict[str, Any]) -> dict[str, float]:
    """The integrate rule through Snakemake in a fresh folder."""
    with tempfile.TemporaryDirectory(prefix="dlpipe-integrate-") as tmp:
        (Path(tmp) / "config.yaml").write_text(yaml.safe_dump(config))
        cmd = [
            sys.executable, "-m", "snakemake", f"results/{EXPERIMENT}/integrated.h5ad",
            "--snakefile", str(ROOT / "Snakefile"), "--directory", tmp,
            "--configfile", "config.yaml", "--cores", "1", "--quiet",
        ]  # fmt: skip
        wall, rss = run_measured(cmd, tmp)
        bench = Path(tmp) / "benchmarks" / "runs" / "integrate" / f"{EXPERIMENT}.tsv"
        job = float(pd.read_csv(bench, sep="\t")["s"].iloc[0])
    return {"job_s": job, "snakemake_s": wall, "rss_mb": rss}


def direct_run(config_path: Path) -> dict[str, float]:
    """The same integration written against scanpy and scvi-tools, in a fresh process."""
    with tempfile.TemporaryDirectory(prefix="direct-integrate-") as tmp:
        cmd = [sys.executable, __file__, "--direct", str(config_path), tmp]
        wall, rss = run_measured(cmd, tmp)
    return {"job_s": wall, "rss_mb": rss}


def direct(config_path: str, outdir: str) -> None:
    """Integrate with scanpy and scvi-tools only (what a user would write by hand)."""
    import anndata as ad
    import scanpy as sc
    import scvi
    import torch

    exp = yaml.safe_load(Path(config_path).read_text())["experiments"][EXPERIMENT]
    data, cfg, seed = exp["data"], exp["integration"], exp["seed"]
    torch.set_num_threads(1)
    scvi.settings.seed = seed
    adata = ad.read_h5ad(data["path"])
    if cfg["n_top_genes"] is not None:
        sc.pp.highly_variable_genes(
            adata, n_top_genes=cfg["n_top_genes"], flavor="seurat_v3",
            batch_key=data["batch_column"], subset=True,
        )  # fmt: skip
    adata.layers["counts"] = adata.X.copy()
    scvi.model.SCVI.setup_anndata(adata, layer="counts", batch_key=data["batch_column"])
    model = scvi.model.SCVI(
        adata, n_latent=cfg["n_latent"], n_layers=cfg["n_layers"], n_hidden=cfg["n_hidden"],
        dropout_rate=cfg["dropout_rate"], gene_likelihood=cfg["gene_likelihood"],
    )  # fmt: skip
    train = {"batch_size": cfg["batch_size"], "accelerator": "cpu", "devices": 1,
             "enable_progress_bar": False}  # fmt: skip
    model.train(max_epochs=cfg["max_epochs"], early_stopping=cfg["early_stopping"],
                early_stopping_patience=cfg["patience"], plan_kwargs={"lr": cfg["learning_rate"]},
                **train)  # fmt: skip
    adata.obsm["X_scVI"] = model.get_latent_representation()
    methods = cfg.get("methods", ["pca", "scvi"])
    if "scanvi" in methods:
        labels = adata.obs[data["label_column"]].astype(object)
        hidden = adata.obs[data["batch_column"]].isin(cfg.get("hide_labels", []))
        adata.obs["labels"] = labels.where(labels.notna() & ~hidden, "Unknown").astype("category")
        scanvi = scvi.model.SCANVI.from_scvi_model(model, "Unknown", labels_key="labels")
        scanvi.train(max_epochs=cfg["scanvi_max_epochs"], **train)
        proba = scanvi.predict(soft=True)
        adata.obs["prediction"] = proba.idxmax(axis=1)
        adata.obs["probability"] = proba.max(axis=1)
        adata.obsm["X_scANVI"] = scanvi.get_latent_representation()
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    sc.tl.pca(adata, n_comps=cfg["n_pcs"], svd_solver="arpack", random_state=seed)
    if "harmony" in methods:
        import harmonypy  # scanpy 1.11's harmony_integrate transposes harmonypy 2's output

        out = harmonypy.run_harmony(adata.obsm["X_pca"], adata.obs, data["batch_column"],
                                    random_state=seed, verbose=False, ncores=1)  # fmt: skip
        adata.obsm["X_pca_harmony"] = out.Z_corr
    for key in ("X_pca", "X_pca_harmony", "X_scANVI"):
        if key in adata.obsm:
            sc.pp.neighbors(adata, n_neighbors=cfg["n_neighbors"], use_rep=key,
                            random_state=seed)  # fmt: skip
            sc.tl.umap(adata, random_state=seed)
            adata.obsm[f"X_umap_{key}"] = adata.obsm.pop("X_umap")
    sc.pp.neighbors(adata, n_neighbors=cfg["n_neighbors"], use_rep="X_scVI", random_state=seed)
    sc.tl.umap(adata, random_state=seed)
    sc.tl.leiden(adata, resolution=cfg["leiden_resolution"], random_state=seed,
                 flavor="igraph", n_iterations=2, directed=False)  # fmt: skip
    model.save(Path(outdir) / "scvi", overwrite=True)
    if "scanvi" in methods:
        scanvi.save(Path(outdir) / "scanvi", overwrite=True)
    for key in [k for k in adata.uns if k.startswith("_scvi")]:
        del adata.uns[key]
    adata.write_h5ad(Path(outdir) / "integrated.h5ad", compression="gzip")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--direct", nargs=2, metavar=("CONFIG", "OUTDIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.direct:
        direct(*args.direct)
        return
    config = demo_experiment()
    runs: dict[str, list[dict[str, float]]] = {"dlpipe": [], "direct": []}
    with tempfile.TemporaryDirectory() as tmp:
        config_path = Path(tmp) / "config.yaml"
        config_path.write_text(yaml.safe_dump(config))
        for _ in range(args.repeats):  # alternate, so both see the same machine load
            runs["dlpipe"].append(dlpipe_run(config))
            runs["direct"].append(direct_run(config_path))
    median = {
        name: {key: statistics.median(r[key] for r in rows) for key in rows[0]}
        for name, rows in runs.items()
    }
    cfg = config["experiments"][EXPERIMENT]["integration"]
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    load = os.getloadavg()[0]
    print(f"Machine: {machine}; load average at the end {load:.1f}. Settings: scVI "
          f"{cfg['max_epochs']} epochs, scANVI {cfg['scanvi_max_epochs']}, 1 thread; median of "
          f"{args.repeats} alternating runs.\n")  # fmt: skip
    print("| measurement | dlpipe integrate rule | scvi-tools + scanpy directly | ratio |")
    print("|---|---|---|---|")
    ours, theirs = median["dlpipe"], median["direct"]
    print(f"| wall time of the job (s) | {ours['job_s']:.1f} | {theirs['job_s']:.1f} | "
          f"{ours['job_s'] / theirs['job_s']:.3f} |")  # fmt: skip
    print(f"| peak resident memory (MB) | {ours['rss_mb']:.0f} | {theirs['rss_mb']:.0f} | "
          f"{ours['rss_mb'] / theirs['rss_mb']:.3f} |")  # fmt: skip
    print(f"| Snakemake start-up + DAG + job (s) | {ours['snakemake_s']:.1f} | – | – |")
    for name, rows in runs.items():
        print(f"\n{name} runs: " + "; ".join(
            f"{r['job_s']:.1f} s, {r['rss_mb']:.0f} MB" for r in rows))  # fmt: skip


if __name__ == "__main__":
    main()
