"""dlpipe installed as a library, the way the README's container recipe installs it.

The recipe's ``pip install`` runs in a fresh virtual environment on a copy of the checkout
(``COPY . /opt/dlpipe``): pip builds the wheel and installs it, not editable. From another
folder, ``dlpipe check`` then validates a config and its data, and a tiny workflow runs with
the workflow files alone (no ``src/`` beside them), so every file dlpipe reads at run time
must come from the installed package.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _recipe() -> tuple[str, list[str]]:
    """The README's Dockerfile: where it copies the checkout, and its pip install command."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```dockerfile\n(.*?)```", readme, re.DOTALL)
    assert block, "the README has no ```dockerfile block"
    copy = re.search(r"^COPY \. (\S+)$", block[1], re.MULTILINE)
    run = re.search(r"^RUN (pip install .+)$", block[1], re.MULTILINE)
    assert copy, block[1]
    assert run, block[1]
    return copy[1], shlex.split(run[1])


def _checkout_copy(target: Path) -> None:
    """Copy the checkout's files as `COPY .` would (tracked and new files, nothing ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    for name in listed:
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


@pytest.mark.install
def test_recipe_installs_a_dlpipe_that_checks_and_runs_from_another_folder(
    tmp_path: Path,
) -> None:
    where, command = _recipe()
    assert command[:2] == ["pip", "install"]
    checkout = tmp_path / "checkout"
    _checkout_copy(checkout)
    venv = tmp_path / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", str(venv)], check=True)
    bin_dir = venv / "bin"
    # The recipe's arguments with the copy in place of its folder; pip's cache is kept (the
    # recipe's --no-cache-dir only keeps the image small).
    args = [a.replace(where, str(checkout)) for a in command[2:] if a != "--no-cache-dir"]
    install = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", *args],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]

    code = "import dlpipe, dlpipe.schema as s; print(dlpipe.__file__); print(s.schema_path())"
    where_is = subprocess.run(
        [str(bin_dir / "python"), "-c", code],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    ).stdout.split()  # fmt: skip
    site = str(venv / "lib")
    assert where_is[0].startswith(site), f"dlpipe imported from {where_is[0]}, not the install"
    assert where_is[1].startswith(site)
    assert Path(where_is[1]).is_file()

    work = tmp_path / "elsewhere"
    work.mkdir()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4))
    table = pd.DataFrame(x, columns=[f"g{i}" for i in range(4)])
    table.insert(0, "sample", [f"S{i:02d}" for i in range(60)])
    table["state"] = np.where(x[:, 0] > 0, "disease", "healthy")
    table.to_csv(work / "samples.csv", index=False)
    config = {
        "experiments": {
            "tiny": {
                "task": "classification",
                "data": {"path": "samples.csv", "id_column": "sample", "label_column": "state"},
                "model": {"hidden_layers": [8]},
                "training": {"max_epochs": 3, "progress_bar": False, "device": "cpu"},
                "cv": {"n_splits": 2},
                "interpret": {"enabled": False},
                "resources": {"threads": 1},
            }
        }
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    check = subprocess.run(
        [str(bin_dir / "dlpipe"), "check", "config.yaml"],
        cwd=work, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr
    assert "tiny: 60 samples" in check.stdout
    assert "config and data are valid" in check.stdout

    # The workflow files alone, as a user who keeps them apart from the installed library.
    flow = tmp_path / "workflow-only"
    flow.mkdir()
    for name in ("Snakefile", "rules", "workflow", "envs", "config"):
        source = checkout / name
        copy = shutil.copytree if source.is_dir() else shutil.copy2
        copy(source, flow / name)
    assert not (flow / "src").exists()
    run = subprocess.run(
        [str(bin_dir / "snakemake"), "--snakefile", str(flow / "Snakefile"), "--directory",
         str(work), "--configfile", "config.yaml", "--cores", "2", "--quiet"],
        cwd=work, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    metrics = pd.read_csv(work / "results" / "tiny" / "metrics.tsv", sep="\t")
    assert set(metrics["learner"]) == {"mlp", "logistic_regression"}
    assert (work / "results" / "report.html").stat().st_size > 10_000
