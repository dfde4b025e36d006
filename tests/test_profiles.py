"""Resource hints from input sizes, GPU requests, and the execution profiles."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from dlpipe.config import validate_config
from dlpipe.resources import MEMORY_MB, RUNTIME_MIN, gpu_request, memory_mb, runtime_min
from dlpipe.workflow import fold_count, rebase_paths

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ROOT / "profiles"


def _exp(training: dict[str, Any] | None = None, **resources: Any) -> dict[str, Any]:
    exp = {"task": "classification", "data": {"path": "x.csv", "label_column": "y"},
           "training": training or {}, "resources": resources}  # fmt: skip
    return validate_config({"experiments": {"e": exp}})["experiments"]["e"]


def test_memory_grows_with_input_size_and_attempt() -> None:
    fixed, per_mb = MEMORY_MB["preprocess"]
    assert memory_mb("preprocess", 0) == fixed
    assert memory_mb("preprocess", 100) == fixed + 100 * per_mb
    assert memory_mb("preprocess", 100, attempt=3) == 3 * (fixed + 100 * per_mb)
    assert memory_mb("train", 0.5) == MEMORY_MB["train"][0] + 4  # rounded up to whole MB
    # A value from the config replaces the estimate; retries still scale it.
    assert memory_mb("train", 10_000, attempt=2, override=6000) == 12_000


def test_runtime_grows_with_input_size_and_attempt() -> None:
    fixed, per_mb = RUNTIME_MIN["prepare"]
    assert runtime_min("prepare", 0) == fixed
    assert runtime_min("prepare", 50, attempt=2) == 2 * (fixed + 50 * per_mb)
    assert set(RUNTIME_MIN) == set(MEMORY_MB) - {"train"}  # training: resources.runtime


def test_gpu_request_follows_device_unless_set() -> None:
    assert gpu_request(_exp()) == 0  # auto: never waits for a GPU on a CPU-only cluster
    assert gpu_request(_exp({"device": "gpu"})) == 1
    assert gpu_request(_exp({"device": "gpu", "devices": 4})) == 4
    assert gpu_request(_exp({"device": "cpu", "devices": 2})) == 0
    assert gpu_request(_exp({"device": "auto"}, gpu=1)) == 1  # ask, use it if given
    assert gpu_request(_exp({"device": "gpu", "devices": 2}, gpu=0)) == 0


def test_schema_defaults_leave_memory_and_gpu_to_the_hints() -> None:
    resources = _exp()["resources"]
    assert resources == {"threads": 2, "mem_mb": None, "runtime": 60, "gpu": None}
    assert _exp()["training"]["devices"] == 1


def _profile(name: str) -> dict[str, Any]:
    return yaml.safe_load((PROFILES / name / "config.yaml").read_text())


def test_profiles_name_their_executor_and_site_keys() -> None:
    assert set(p.name for p in PROFILES.iterdir()) == {"local", "slurm", "kubernetes",
                                                       "googlebatch"}  # fmt: skip
    slurm = _profile("slurm")
    assert slurm["executor"] == "slurm"
    assert slurm["retries"] >= 1
    assert {"slurm_partition", "slurm_account"} <= set(slurm["default-resources"])
    kubernetes = _profile("kubernetes")
    assert kubernetes["executor"] == "kubernetes"
    # Kubernetes needs a manufacturer next to `gpu`; Google Batch reads nvidia_gpu only.
    assert kubernetes["set-resources"]["train"]["gpu_manufacturer"] == "nvidia"
    google = _profile("googlebatch")
    assert google["executor"] == "googlebatch"
    assert google["set-resources"]["train"]["nvidia_gpu"] >= 1
    for cloud in (kubernetes, google):
        assert cloud["default-storage-provider"] in ("s3", "gcs")
        assert cloud["default-storage-prefix"].split("://")[0] in ("s3", "gs")
        assert cloud["container-image"]


def _dry_run(profile: str, folder: Path) -> str:
    """Dry run of the demo config in an empty ``folder`` (results in the checkout do not count)."""
    config = rebase_paths(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()), ROOT)
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--profile", str(PROFILES / profile),
         "--snakefile", str(ROOT / "Snakefile"), "--directory", str(folder),
         "--configfile", str(folder / "config.yaml")],
        capture_output=True, text=True, check=False, cwd=folder,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout + run.stderr


@pytest.mark.workflow
def test_slurm_profile_dry_run_gives_jobs_size_derived_resources(tmp_path: Path) -> None:
    out = _dry_run("slurm", tmp_path)
    jobs = out.split("\nrule ")
    prepare = next(j for j in jobs if j.startswith("prepare:") and "exp=breast_cancer" in j)
    size_mb = (ROOT / "resources" / "breast_cancer.csv.gz").stat().st_size / 1024**2
    assert f"mem_mb={memory_mb('prepare', size_mb)}," in prepare
    assert f"runtime={runtime_min('prepare', size_mb)}" in prepare
    assert "slurm_partition=CHANGE_ME_partition" in prepare
    train = [j for j in jobs if j.startswith("train:")]
    demo = validate_config(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()))
    assert len(train) == sum(fold_count(exp) for exp in demo["experiments"].values())
    # The demo trains with device auto: its jobs ask for no GPU; memory waits for the inputs.
    assert all(re.search(r"\bgpu=0\b", j) and "mem_mb=<TBD>" in j for j in train)
