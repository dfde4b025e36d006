"""envs/ stays in step with pyproject, and every rule declares its environment and log."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {
    "torch": "pytorch",
    "matplotlib": "matplotlib-base",
    "snakemake": "snakemake-minimal",
}


def _split(requirement: str) -> tuple[str, str]:
    match = re.match(r"^\s*([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*(.*)$", requirement)
    assert match, requirement
    return match[1].lower(), match[3].replace(" ", "")


def test_conda_environment_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {CONDA_NAMES.get(n, n): spec for n, spec in map(_split, project["dependencies"])}
    env = yaml.safe_load((ROOT / "envs" / "dlpipe.yaml").read_text())
    conda = dict(_split(d) for d in env["dependencies"] if isinstance(d, str))
    assert conda.pop("python") == ">=3.11"
    assert project["requires-python"] == ">=3.11"
    assert conda == wanted


def test_every_rule_has_conda_env_and_log_and_heavy_rules_a_benchmark() -> None:
    rules = {}
    for path in sorted((ROOT / "rules").glob("*.smk")):
        for block in re.split(r"^rule ", path.read_text(), flags=re.MULTILINE)[1:]:
            name = block.split(":", 1)[0].strip()
            rules[name] = block
    assert {"prepare", "split", "preprocess", "train", "baseline", "evaluate", "aggregate",
            "report"} <= set(rules)  # fmt: skip
    for name, block in rules.items():
        assert "log:" in block, name
        env = re.search(r'conda:\s*\n\s*"([^"]+)"', block)
        assert env, name
        assert (ROOT / "rules" / env[1]).resolve().is_file(), name
    for name in ("prepare", "preprocess", "train", "baseline", "evaluate"):
        assert "benchmark:" in rules[name], name
