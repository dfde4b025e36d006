"""Optional parts: a config that needs a missing extra stops before any job, naming the extra."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from dlpipe import extras
from dlpipe.config import validate_config
from dlpipe.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
#: Distribution name on PyPI → module name it installs, where they differ.
MODULE_OF = {
    "scvi-tools": "scvi",
    "umap-learn": "umap",
    "scib-metrics": "scib_metrics",
    "scikit-misc": "skmisc",
    "biopython": "Bio",
    "pillow": "PIL",
}


def _hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make ``modules`` look uninstalled to :mod:`dlpipe.extras`."""
    real = extras.find_spec
    monkeypatch.setattr(extras, "find_spec", lambda name: None if name in modules else real(name))


def test_extras_name_the_modules_of_pyproject() -> None:
    optional = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for extra, modules in extras.EXTRAS.items():
        names = [re.split(r"[\[<>=!~ ]", req)[0] for req in optional[extra]]
        assert [MODULE_OF.get(n, n) for n in names] == list(modules), extra


def test_sequence_experiment_without_the_sequence_extra_names_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _hide(monkeypatch, "pysam")
    config = {"experiments": {"crp": {"task": "classification", "data": {
        "modality": "sequence", "genome": "g.fa", "bed": {"crp": "crp.bed"}}}}}  # fmt: skip
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    message = str(err.value)
    assert message.startswith("config key experiments.crp.data.modality: sequence experiments")
    assert "pysam not installed" in message
    assert "pip install 'dlpipe[sequence]'" in message


def test_singlecell_experiment_without_scvi_names_the_singlecell_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _hide(monkeypatch, "scvi", "scib_metrics")
    config = {"experiments": {"pbmc": {"task": "classification", "data": {
        "modality": "singlecell", "path": "cells.h5ad", "batch_column": "batch",
        "label_column": "cell_type"}}}}  # fmt: skip
    expected = r"scvi, scib_metrics not installed.*dlpipe\[singlecell\]"
    with pytest.raises(ConfigError, match=expected):
        validate_config(config)


def test_sequence_interpretation_needs_the_motifs_extra_only_when_enabled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _hide(monkeypatch, "pyjaspar")

    def config(enabled: bool) -> dict:
        data = {"modality": "sequence", "genome": "g.fa", "bed": {"crp": "crp.bed"}}
        exp = {"task": "classification", "data": data, "interpret": {"enabled": enabled}}
        return {"experiments": {"crp": exp}}

    expected = r"experiments.crp.interpret.enabled: .*pyjaspar not installed.*dlpipe\[motifs\]"
    with pytest.raises(ConfigError, match=expected):
        validate_config(config(True))
    validate_config(config(False))  # sequences without interpretation need no motif search


def test_a_table_is_interpreted_with_the_core_install(
    monkeypatch: pytest.MonkeyPatch, binary_csv: Path
) -> None:
    _hide(monkeypatch, *extras.EXTRAS["motifs"], *extras.EXTRAS["singlecell"])
    data = {"path": str(binary_csv), "id_column": "id", "label_column": "y"}
    validate_config({"experiments": {"e": {"task": "classification", "data": data}}})


def test_the_vae_embedding_needs_the_embed_extra(
    monkeypatch: pytest.MonkeyPatch, regression_csv: Path
) -> None:
    _hide(monkeypatch, "scanpy")
    data = {"path": str(regression_csv), "id_column": "id", "target_columns": ["t1", "t2"]}
    exp = {"task": "regression", "data": data, "cv": {"plan": "kfold"}, "embed": {"enabled": True}}
    with pytest.raises(ConfigError, match=r"experiments.e.embed.enabled: .*dlpipe\[embed\]"):
        validate_config({"experiments": {"e": exp}})


def test_nothing_is_missing_in_the_development_install() -> None:
    assert {extra: extras.missing(extra) for extra in extras.EXTRAS} == {
        extra: [] for extra in extras.EXTRAS
    }
