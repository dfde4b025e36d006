"""Reading every supported table format into the same dataset."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from dlpipe.cli import main
from dlpipe.config import validate_config
from dlpipe.datasets import TabularDataset
from dlpipe.errors import InputError
from dlpipe.io.files import sha256
from dlpipe.io.tables import infer_format, read_table
from dlpipe.modalities.tabular import prepare_tabular


def _frame(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.poisson(5, size=(n, 4)).astype(float), columns=list("abcd"))
    frame.insert(0, "sample", [f"s{i:03d}" for i in range(n)])
    frame["label"] = np.where(np.arange(n) % 2 == 0, "x", "y")
    return frame


def _exp(path: Path, **data: object) -> dict:
    spec = {"path": str(path), "label_column": "label", **data}
    config = {"experiments": {"e": {"task": "classification", "data": spec}}}
    return validate_config(config)["experiments"]["e"]


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("t.csv", "csv"), ("t.csv.gz", "csv"), ("t.tsv", "tsv"), ("t.txt.gz", "tsv"),
     ("t.parquet", "parquet"), ("t.h5ad", "h5ad")],
)  # fmt: skip
def test_infer_format(name: str, fmt: str) -> None:
    assert infer_format(name) == fmt


def test_unknown_suffix_is_a_clear_error() -> None:
    with pytest.raises(InputError, match=r"data\.format"):
        infer_format("table.xlsx")


@pytest.mark.parametrize("suffix", [".csv", ".tsv.gz", ".parquet"])
def test_text_and_parquet_give_the_same_dataset(tmp_path: Path, suffix: str) -> None:
    frame = _frame()
    path = tmp_path / f"t{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, sep="," if suffix == ".csv" else "\t", index=False)
    data = prepare_tabular(_exp(path, id_column="sample"), "e")
    assert list(data.ids[:2]) == ["s000", "s001"]
    assert data.feature_columns == list("abcd")
    np.testing.assert_array_equal(data.features.to_numpy(), frame[list("abcd")].to_numpy())
    assert data.classes == ["x", "y"]
    assert data.meta["sha256"] == sha256(path)


def test_h5ad_features_from_x_or_layer_and_labels_from_obs(tmp_path: Path) -> None:
    frame = _frame()
    counts = sp.csr_matrix(frame[list("abcd")].to_numpy())
    adata = ad.AnnData(
        X=np.log1p(counts.toarray()),
        obs=pd.DataFrame({"label": frame["label"].to_numpy()}, index=frame["sample"].to_numpy()),
        var=pd.DataFrame(index=["g1", "g2", "g3", "g4"]),
        layers={"counts": counts},
    )
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    data = prepare_tabular(_exp(path, layer="counts"), "e")
    assert list(data.ids[:3]) == ["s000", "s001", "s002"]  # obs_names become ids
    assert data.feature_columns == ["g1", "g2", "g3", "g4"]
    np.testing.assert_array_equal(data.features.to_numpy(), counts.toarray())
    with pytest.raises(InputError, match="layer 'spliced' not found; available layers: counts"):
        read_table(path, layer="spliced")


def test_dataset_save_load_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    _frame().to_csv(path, index=False)
    data = prepare_tabular(_exp(path, id_column="sample"), "e")
    data.save(tmp_path / "d.parquet", tmp_path / "d.json")
    back = TabularDataset.load(tmp_path / "d.parquet", tmp_path / "d.json")
    pd.testing.assert_frame_equal(back.table, data.table)
    np.testing.assert_array_equal(back.y, data.y)
    assert back.classes == data.classes


def test_dlpipe_check_validates_config_and_data(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = tmp_path / "t.csv"
    _frame().to_csv(path, index=False)
    config = tmp_path / "c.yaml"
    config.write_text(
        f"experiments:\n  e:\n    task: classification\n    data:\n      path: {path}\n"
        "      id_column: sample\n      label_column: label\n"
    )
    assert main(["check", str(config)]) == 0
    assert "e: 40 samples (x: 20, y: 20)" in capsys.readouterr().out
    _frame().assign(sample="same").to_csv(path, index=False)
    assert main(["check", str(config)]) == 1
    assert "dlpipe error:" in capsys.readouterr().err
