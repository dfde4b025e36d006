"""What a run needs to be reproduced: package versions, config, input checksums, git commit."""

from __future__ import annotations

import platform
import subprocess
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "dlpipe",
    "torch",
    "lightning",
    "numpy",
    "pandas",
    "scikit-learn",
    "imbalanced-learn",
    "skops",
    "scipy",
    "anndata",
    "pysam",
    "matplotlib",
    "snakemake",
    "scanpy",
    "scvi-tools",
    "scib-metrics",
    "monai",
    "tifffile",
    "pillow",
)


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed version of each package (``not installed`` when absent)."""
    versions = {"python": sys.version.split()[0]}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit(directory: str | Path) -> str | None:
    """Commit of the git checkout holding ``directory`` (``+dirty`` if modified), or ``None``."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=directory,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=directory,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def provenance(
    experiment: str, exp: Mapping[str, Any], checksums: Mapping[str, str], workdir: str | Path
) -> dict[str, Any]:
    """Collect the provenance record of one experiment.

    Parameters
    ----------
    experiment
        Experiment name.
    exp
        Its validated config (defaults filled in).
    checksums
        ``{input path: sha256}``.
    workdir
        Folder whose git commit is recorded.

    Returns
    -------
    dict
        ``experiment``, ``seed``, ``config``, ``inputs``, ``versions``, ``platform`` and
        ``git_commit``.
    """
    return {
        "experiment": experiment,
        "seed": exp["seed"],
        "config": dict(exp),
        "inputs": dict(checksums),
        "versions": package_versions(),
        "platform": f"{platform.system()} {platform.machine()}",
        "git_commit": git_commit(workdir),
    }
