"""What a workflow user reads first stays true to the code: config guide, catalog, licence."""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path

import pandas as pd
import pytest
import yaml

from dlpipe.config import config_schema
from dlpipe.modalities import modality_names
from dlpipe.models import available_models

ROOT = Path(__file__).resolve().parents[1]
CONFIG_README = (ROOT / "config" / "README.md").read_text()
#: Sections of an experiment whose every key the config guide names.
SECTIONS = ("experiment", "data", "negatives", "training", "preprocess", "cv", "baseline",
            "resources", "integration", "embed", "calibration", "interpret",
            "prediction", "pretrain")  # fmt: skip


@pytest.mark.parametrize("section", SECTIONS)
def test_config_guide_names_every_key_of_the_schema(section: str) -> None:
    keys = config_schema()["$defs"][section]["properties"]
    missing = [k for k in keys if not re.search(rf"`{re.escape(k)}`", CONFIG_README)]
    assert not missing, f"config/README.md does not explain {section} keys {missing}"


def test_config_guide_names_every_registered_model_and_modality() -> None:
    for name in [*available_models(), *modality_names()]:
        assert f"`{name}`" in CONFIG_README or f"**{name}**" in CONFIG_README, name


def test_repository_schema_is_the_shipped_one() -> None:
    linked = ROOT / "config" / "schema" / "config.schema.yaml"
    shipped = ROOT / "src" / "dlpipe" / "schemas" / "config.schema.yaml"
    assert linked.resolve() == shipped.resolve()


def test_workflow_catalog_metadata_is_complete() -> None:
    meta = yaml.safe_load((ROOT / ".snakemake-workflow-catalog.yml").read_text())
    usage = meta["usage"]
    assert usage["mandatory-flags"]["flags"]
    assert usage["mandatory-flags"]["desc"]
    stack = usage["software-stack-deployment"]
    assert set(stack) == {"conda", "singularity", "singularity+conda"}
    assert any(stack.values())
    assert usage["report"] is True
    assert (ROOT / "config" / "config.yaml").is_file()
    assert (ROOT / "config" / "README.md").is_file()


def test_licence_file_matches_pyproject() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]["text"]
    licence = (ROOT / "LICENSE").read_text()
    assert declared == "MIT"
    assert licence.startswith("MIT License")
    assert "Permission is hereby granted, free of charge" in licence


def test_every_shipped_data_file_has_its_size_and_checksum_in_the_resources_guide() -> None:
    guide = (ROOT / "resources" / "README.md").read_text()
    rows = re.findall(r"^\| `([^`]+)` \|.*\| ([\d,]+) \| `([0-9a-f]{64})` \|$", guide, re.M)
    listed = {name: (int(size.replace(",", "")), digest) for name, size, digest in rows}
    shipped = {
        p.name
        for p in (ROOT / "resources").iterdir()
        if p.is_file() and p.suffix not in (".py", ".md") and not p.name.endswith((".fai", ".gzi"))
    }
    assert shipped == set(listed)
    for name, (size, digest) in listed.items():
        data = (ROOT / "resources" / name).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (size, digest), name
    # A folder of many files (image patches) is covered by the table of the same name, listed
    # above, whose sha256 column holds the digest of each file.
    for folder in (p for p in (ROOT / "resources").iterdir() if p.is_dir()):
        if folder.name == "__pycache__":
            continue
        assert f"{folder.name}.tsv" in listed, folder.name
        table = pd.read_csv(ROOT / "resources" / f"{folder.name}.tsv", sep="\t")
        digests = dict(zip(table["path"], table["sha256"], strict=True))
        files = {
            p.relative_to(folder.parent).as_posix(): p for p in folder.rglob("*") if p.is_file()
        }
        assert set(files) == set(digests), folder.name
        for name, path in files.items():
            assert hashlib.sha256(path.read_bytes()).hexdigest() == digests[name], name
