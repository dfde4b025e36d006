"""envs/dlpipe.yaml stays in step with pyproject, and every rule declares env, log, benchmark."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ENV_FILE = ROOT / "envs" / "dlpipe.yaml"
#: PyPI name → conda-forge name where they differ.
CONDA_NAME = {
    "torch": "pytorch",
    "matplotlib": "matplotlib-base",
    "snakemake": "snakemake-minimal",
    "igraph": "python-igraph",
    "torch_geometric": "pytorch_geometric",
}
RULES = ("prepare", "split", "preprocess", "train", "baseline", "evaluate", "aggregate", "report",
         "integrate", "integration_metrics", "embed", "embedding", "interpret",
         "compare", "predict", "manifest", "label_transfer", "image_store", "pretrain")  # fmt: skip
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9_.-]*)\s*(?:\[[^\]]*\])?\s*(.*?)\s*$")


def _split(requirement: str) -> tuple[str, str]:
    """``name[extras] >= 1, <2`` → (``name``, ``>=1,<2``): lower-case name, no whitespace."""
    match = _REQUIREMENT.match(requirement)
    assert match, f"cannot parse requirement {requirement!r}"
    return match[1].lower(), re.sub(r"\s+", "", match[2])


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


#: Extras of pyproject that the rules need (cluster and dev are for the machine running them).
RULE_EXTRAS = ("sequence", "singlecell", "motifs", "embed", "image", "graph", "workflow")


def _requirements() -> list[str]:
    """Everything the rules import: the dependencies and the rules' extras."""
    project = _pyproject()
    extras = [r for e in RULE_EXTRAS for r in project["optional-dependencies"][e]]
    return project["dependencies"] + extras


def _pypi() -> dict[str, str]:
    """Runtime dependencies of pyproject under their conda names."""
    pairs = map(_split, _requirements())
    return {CONDA_NAME.get(name, name): spec for name, spec in pairs}


def _conda() -> dict[str, str]:
    env = yaml.safe_load(ENV_FILE.read_text())
    deps = env["dependencies"]
    assert all(isinstance(d, str) for d in deps), "pip sections are not expected in the env"
    return dict(map(_split, deps))


def test_split_normalises_extras_and_whitespace() -> None:
    assert _split("snakemake[reports] >= 9, <10") == ("snakemake", ">=9,<10")
    assert _split("pytorch >=2.4") == ("pytorch", ">=2.4")
    assert _split("PyYAML>=6") == ("pyyaml", ">=6")


def test_environment_uses_conda_forge_and_bioconda() -> None:
    env = yaml.safe_load(ENV_FILE.read_text())
    assert env["channels"][:2] == ["conda-forge", "bioconda"]
    assert len(env["dependencies"]) == len(set(_conda())), "a package is listed twice"


@pytest.mark.parametrize("requirement", _requirements())
def test_runtime_dependency_has_conda_counterpart_with_same_bounds(requirement: str) -> None:
    name, spec = _split(requirement)
    conda = _conda()
    conda_name = CONDA_NAME.get(name, name)
    assert conda_name in conda, f"{requirement!r} has no {conda_name!r} in {ENV_FILE.name}"
    assert conda[conda_name] == spec, (
        f"{conda_name}: pyproject says {spec!r}, {ENV_FILE.name} says {conda[conda_name]!r}"
    )


def test_every_conda_package_is_a_runtime_dependency() -> None:
    extra = sorted(set(_conda()) - set(_pypi()) - {"python"})
    assert extra == [], f"{ENV_FILE.name} lists packages pyproject does not depend on: {extra}"


def test_conda_python_matches_requires_python() -> None:
    assert _conda()["python"] == re.sub(r"\s+", "", _pyproject()["requires-python"])


def _rules() -> dict[str, dict[str, str]]:
    """Rule → directive → its text (the ``rules/*.smk`` files, plus ``file`` for the file)."""
    rules: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    directive = None
    for path in sorted((ROOT / "rules").glob("*.smk")):
        for line in path.read_text().splitlines():
            head = re.match(r"^rule (\w+):", line)
            if head:
                current = rules.setdefault(head[1], {"file": str(path)})
                directive = None
            elif current is not None and (key := re.match(r"^    (\w+):\s*(.*)$", line)):
                directive = key[1]
                current[directive] = key[2]
            elif current is not None and directive and line.startswith("        "):
                current[directive] += "\n" + line.strip()
            elif line and not line.startswith(" "):
                current, directive = None, None
    return rules


def test_rules_folder_defines_the_workflow_rules() -> None:
    assert sorted(_rules()) == sorted(RULES)


@pytest.mark.parametrize("rule", RULES)
def test_rule_has_existing_conda_env_and_log(rule: str) -> None:
    directives = _rules()[rule]
    assert "conda" in directives, f"rule {rule} has no conda: directive"
    env = re.search(r'"([^"]+)"', directives["conda"])
    assert env, f"rule {rule}: conda: should name a file, not {directives['conda']!r}"
    target = (Path(directives["file"]).parent / env[1]).resolve()
    assert target.is_file(), f"rule {rule}: conda env {env[1]} not found"
    assert target.parent == ROOT / "envs"
    assert "log" in directives, f"rule {rule} has no log: directive"
    assert re.search(r'"logs/[^"]+\.log"', directives["log"]), directives["log"]


@pytest.mark.parametrize("rule", ["train", "baseline", "embed"])
def test_heavy_rules_record_a_benchmark(rule: str) -> None:
    directives = _rules()[rule]
    assert "benchmark" in directives, f"rule {rule} has no benchmark: directive"
    assert f'"benchmarks/runs/{rule}/{{exp}}/{{fold}}.tsv"' in directives["benchmark"]


@pytest.mark.parametrize("rule", ["integrate", "integration_metrics"])
def test_single_cell_rules_record_a_benchmark(rule: str) -> None:
    assert f'"benchmarks/runs/{rule}/{{exp}}.tsv"' in _rules()[rule].get("benchmark", "")


@pytest.mark.parametrize("rule", ["train", "embed", "integrate", "pretrain"])
def test_gpu_rules_carry_a_gpu_resource(rule: str) -> None:
    assert "gpu=" in _rules()[rule]["resources"]
