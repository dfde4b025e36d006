"""The demo on a real single-node SLURM cluster through profiles/slurm, against a local run.

tests/slurm/run_slurm_test.sh starts the cluster (munge, slurmctld, slurmd with two fake GPUs),
runs this module with DLPIPE_SLURM_DIR set and its client wrappers first on PATH, and stops
the daemons afterwards. Without that variable the module is skipped.

The demo's three table and sequence experiments run lighter (2 folds, at most 4 epochs: the
whole file runs twice within CI's time), and every training job asks SLURM for a GPU
(``resources.gpu: 1``) while
training itself stays on the CPU (``device: auto`` finds no CUDA), so the metrics of the SLURM
run must equal those of the local run byte for byte.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from dlpipe.workflow import rebase_paths

ROOT = Path(__file__).resolve().parents[1]
SLURM_DIR = os.environ.get("DLPIPE_SLURM_DIR")

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(not SLURM_DIR, reason="needs the cluster of tests/slurm/run_slurm_test.sh"),
]


def _demo_config() -> dict[str, Any]:
    config = rebase_paths(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()), ROOT)
    # The three table and sequence experiments: the single-cell one adds scVI and scib-metrics
    # jobs, minutes of CI time twice over, and nothing that the scheduler treats differently.
    config["experiments"] = {
        name: exp
        for name, exp in config["experiments"].items()
        if exp["data"].get("modality") != "singlecell"
    }
    for exp in config["experiments"].values():
        training = exp.setdefault("training", {})
        training.update(max_epochs=min(training.get("max_epochs", 200), 4), patience=2,
                        progress_bar=False)  # fmt: skip
        exp.setdefault("cv", {})["n_splits"] = 2
        # Ask the scheduler for a GPU; device auto trains on the CPU where CUDA is absent.
        exp.setdefault("resources", {})["gpu"] = 1
    return config


def _site_profile(folder: Path) -> Path:
    """profiles/slurm with what a site changes: its partition, no account, squeue for status.

    This cluster runs no accounting (so no sacct and no accounts); MinJobAge is 600 s, which
    squeue needs. Status checks start after 3 s instead of 20 s to keep the test short.
    """
    profile = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    profile["default-resources"]["slurm_partition"] = "dlpipe"
    del profile["default-resources"]["slurm_account"]
    profile.update({"slurm-status-command": "squeue", "slurm-init-seconds-before-status-checks": 3,
                    "slurm-keep-successful-logs": True, "latency-wait": 5})  # fmt: skip
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder


def _snakemake(workdir: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
           "--directory", str(workdir), "--configfile", str(config), *args]  # fmt: skip
    workdir.mkdir(exist_ok=True)
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, check=False)


def _results(folder: Path) -> dict[str, str]:
    patterns = ("metrics.tsv", "*/metrics.json", "oof_predictions.tsv", "*/history.tsv")
    files = [p for pattern in patterns for p in folder.glob(f"results/*/{pattern}")]
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(files)}


def test_demo_on_slurm_submits_gpu_training_and_equals_local_run(tmp_path: Path) -> None:
    assert SLURM_DIR is not None
    cluster = Path(SLURM_DIR)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(_demo_config()))

    local = _snakemake(tmp_path / "local", config, "--cores", "2", "--quiet")
    assert local.returncode == 0, local.stderr[-3000:]

    profile = _site_profile(tmp_path / "profile")
    slurm = _snakemake(tmp_path / "slurm", config, "--profile", str(profile), "--verbose")
    # Kept beside the cluster's own logs: run_slurm_test.sh shows the training submissions.
    (cluster / "snakemake.log").write_text(slurm.stdout + slurm.stderr)
    assert slurm.returncode == 0, (slurm.stdout + slurm.stderr)[-4000:]

    calls = re.findall(r"sbatch call: (.*)", slurm.stdout + slurm.stderr)
    train = [c for c in calls if "--comment rule_train_" in c]
    assert len(train) == 3 * 2, calls
    assert all(" --gpus=1" in c and " -p dlpipe" in c for c in train)
    others = [c for c in calls if c not in train]
    assert others
    assert not any("--gpus" in c for c in others)  # only training asks for GPUs

    # SLURM's own record: six jobs held one fake GPU each.
    jobs = subprocess.run(["scontrol", "show", "job", "-o"], capture_output=True, text=True,
                          check=True).stdout.splitlines()  # fmt: skip
    gpu_jobs = [j for j in jobs if "TresPerJob=gres:gpu:1" in j and "rule_train_" in j]
    assert len(gpu_jobs) == 6
    assert all("JobState=COMPLETED" in j for j in gpu_jobs)
    # Inside the jobs: SLURM set CUDA_VISIBLE_DEVICES, and training fell back to the CPU.
    for log in (tmp_path / "slurm" / "logs" / "train").rglob("*.log"):
        assert re.search(r"training on auto x 1 \(CUDA_VISIBLE_DEVICES=[01]\)", log.read_text())
    for log in (tmp_path / "local" / "logs" / "train").rglob("*.log"):
        assert "CUDA_VISIBLE_DEVICES=unset" in log.read_text()

    local_results, slurm_results = _results(tmp_path / "local"), _results(tmp_path / "slurm")
    assert len(local_results) == 3 + 3 * 2 + 3 + 3 * 2
    assert slurm_results == local_results
