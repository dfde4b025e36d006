"""A results folder is data: nothing in it runs code, and prediction reads only what was recorded.

Fitted preprocessing and baselines are skops files restricted to dlpipe's types, checkpoints are
read with ``weights_only=True``, and ``manifest.json`` records the sha256 of every file the
workflow wrote, so a file that was replaced, damaged, added or lost is refused by name.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import RESULTS_FOLDS, RESULTS_MLP, seal
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from dlpipe.cli import main
from dlpipe.errors import InputError
from dlpipe.io.files import MANIFEST, read_manifest, sha256, verify_files, write_manifest
from dlpipe.io.fitted import TRUSTED, load_fitted, save_fitted
from dlpipe.learners import FoldModels, predict_new
from dlpipe.models.checkpoint import load_model, read_checkpoint
from dlpipe.preprocess import FittedPreprocessor
from dlpipe.workflow import damaged_checkpoints, set_aside_damaged


class _WritesAFile:
    """A pickle payload: unpickling it calls ``os.system`` and writes ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def _plant_pickle(path: Path, marker: Path) -> None:
    with open(path, "wb") as handle:
        pickle.dump(_WritesAFile(marker), handle)


def _new_table(binary_csv: Path, folder: Path) -> Path:
    path = folder / "new.csv"
    pd.read_csv(binary_csv, dtype={"id": str}).head(5).drop(columns="y").to_csv(path, index=False)
    return path


# --- code never runs -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["preprocessor.skops", "baselines.skops"])
def test_a_planted_pickle_executes_nothing_even_under_a_forged_manifest(
    table_results: Path, tmp_path: Path, name: str
) -> None:
    marker = tmp_path / "ran"
    target = table_results / "1" / name
    _plant_pickle(target, marker)
    # Unsafe loading would have run it: the payload is real.
    assert not marker.exists()
    with pytest.raises(InputError, match=rf"1/{name}: (changed since|not a file of)"):
        verify_files(table_results / MANIFEST, [target])
    # The manifest rewritten to match (a forger's move): the format still refuses the file.
    exp = yaml.safe_load((table_results / "config.yaml").read_text())
    seal(table_results, exp, RESULTS_MLP)
    with pytest.raises(InputError, match=rf"1/{name}: not a dlpipe file of fitted"):
        load_fitted(target)
    assert not marker.exists()


def test_predict_refuses_a_tampered_preprocessor_and_runs_none_of_it(
    table_results: Path, binary_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "ran"
    _plant_pickle(table_results / "2" / "preprocessor.skops", marker)
    new = _new_table(binary_csv, tmp_path)
    assert main(["predict", str(table_results), str(new)]) == 1
    err = capsys.readouterr().err
    assert "2/preprocessor.skops: changed since the workflow wrote it" in err
    assert "Traceback" not in err
    assert not marker.exists()


def test_a_skops_file_naming_a_foreign_function_is_refused_before_loading(tmp_path: Path) -> None:
    # A pipeline whose transformer would call os.system: skops records the function by name.
    model = make_pipeline(FunctionTransformer(os.system), LogisticRegression())
    save_fitted(model, tmp_path / "baseline.skops")
    with pytest.raises(InputError, match=r"names types dlpipe never writes \(.*posix.system"):
        load_fitted(tmp_path / "baseline.skops")


def test_fitted_files_round_trip_and_trust_only_dlpipe_types(tmp_path: Path) -> None:
    fitted = FittedPreprocessor(None, ["a", "b"], ["a", "b"])
    save_fitted(fitted, tmp_path / "p.skops")
    back = load_fitted(tmp_path / "p.skops")
    assert isinstance(back, FittedPreprocessor)
    assert back.input_columns == ["a", "b"]
    # Beyond dlpipe's and numpy's: the trees of the random forest (checked on load) and the
    # ANOVA F score of the p >> n feature selection.
    sklearn = {
        "sklearn.tree._tree.Tree",
        "sklearn.feature_selection._univariate_selection.f_classif",
    }
    assert {n for n in TRUSTED if not n.startswith(("dlpipe.", "numpy."))} <= sklearn
    (tmp_path / "cut.skops").write_bytes((tmp_path / "p.skops").read_bytes()[:50])
    with pytest.raises(InputError, match=r"cut.skops: not a dlpipe file of fitted"):
        load_fitted(tmp_path / "cut.skops")


def test_fitted_files_are_the_same_bytes_on_every_run_and_transform_alike(
    table_results: Path, binary_csv: Path
) -> None:
    path = table_results / "0" / "preprocessor.skops"
    fitted = load_fitted(path)
    again = path.with_name("again.skops")
    save_fitted(load_fitted(path), again)  # other objects, other memory addresses
    assert again.read_bytes() == path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    table = pd.read_csv(binary_csv, dtype={"id": str}).drop(columns=["id", "y"]).head(20)
    np.testing.assert_array_equal(load_fitted(again).transform(table), fitted.transform(table))
    baseline = LogisticRegression().fit(fitted.transform(table), [0, 1] * 10)
    save_fitted(baseline, table_results / "b.skops")
    back = load_fitted(table_results / "b.skops")
    np.testing.assert_array_equal(back.coef_, baseline.coef_)


def test_a_checkpoint_holding_code_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    torch.save({"state_dict": {}, "hyper_parameters": _WritesAFile(marker)}, tmp_path / "m.ckpt")
    with pytest.raises(InputError, match=r"m.ckpt: damaged or not a dlpipe checkpoint") as info:
        read_checkpoint(tmp_path / "m.ckpt")
    assert "weights_only" not in str(info.value)  # torch's advice to load unsafely stays out
    assert "rerun the workflow" in str(info.value)
    assert not marker.exists()


# --- damaged checkpoints ---------------------------------------------------------------------


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_a_byte(path: Path) -> None:
    """Alter one byte inside the largest member's data: the zip directory stays readable."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = max(archive.infolist(), key=lambda i: i.file_size)
    local = info.header_offset
    name_length = int.from_bytes(data[local + 26 : local + 28], "little")
    extra_length = int.from_bytes(data[local + 28 : local + 30], "little")
    data[local + 30 + name_length + extra_length + info.file_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage",
    [_truncate, _flip_a_byte, lambda p: p.write_bytes(b""), lambda p: p.write_text("text")],
    ids=["truncated", "flipped_byte", "empty", "text"],
)
def test_a_damaged_checkpoint_names_the_file_and_the_fix(table_results: Path, damage) -> None:
    ckpt = table_results / "0" / "model.ckpt"
    damage(ckpt)
    with pytest.raises(InputError) as info:
        load_model(ckpt)
    message = str(info.value)
    assert message.startswith(f"{ckpt}: ")
    assert "rerun the workflow" in message
    assert "weights_only" not in message
    assert damaged_checkpoints(table_results.parent, ["cls"]) == [ckpt]


def test_damaged_checkpoints_are_set_aside_not_deleted(table_results: Path) -> None:
    assert damaged_checkpoints(table_results.parent, ["cls"]) == []
    ckpt = table_results / "2" / "model.ckpt"
    _flip_a_byte(ckpt)
    content = ckpt.read_bytes()
    moved = set_aside_damaged(table_results.parent, ["cls"])
    assert moved == [table_results / "2" / "model.ckpt.damaged"]
    assert not ckpt.exists()
    assert moved[0].read_bytes() == content
    assert (table_results / "1" / "model.ckpt").is_file()


def test_a_checkpoint_of_another_model_is_refused(table_results: Path) -> None:
    other = {**RESULTS_MLP, "hidden_layers": [8]}
    with pytest.raises(InputError, match=r"0/model.ckpt: trained with another model"):
        load_model(table_results / "0" / "model.ckpt", other)
    assert load_model(table_results / "0" / "model.ckpt", RESULTS_MLP) is not None


# --- the manifest ----------------------------------------------------------------------------


def test_manifest_records_every_file_with_its_sha256(table_results: Path) -> None:
    files = read_manifest(table_results / MANIFEST)
    assert "0/model.ckpt" in files
    assert "2/preprocessor.skops" in files
    assert "config.yaml" in files
    assert files["1/model.ckpt"] == sha256(table_results / "1" / "model.ckpt")
    record = json.loads((table_results / MANIFEST).read_text())
    assert record["format"] == 1


def test_a_missing_or_foreign_manifest_is_refused(table_results: Path) -> None:
    (table_results / MANIFEST).write_text('{"files": []}')
    with pytest.raises(InputError, match=r"manifest.json: not a dlpipe manifest"):
        FoldModels.from_results(table_results)
    (table_results / MANIFEST).unlink()
    with pytest.raises(InputError, match=r"manifest.json: missing: the workflow records"):
        FoldModels.from_results(table_results)


def test_a_fold_model_the_manifest_does_not_record_is_refused(table_results: Path) -> None:
    shutil.copytree(table_results / "0", table_results / "7")
    with pytest.raises(InputError, match=r"7/model.ckpt: a fold model the manifest .* does not"):
        FoldModels.from_results(table_results)


def test_a_swapped_config_is_refused(table_results: Path) -> None:
    config = table_results / "config.yaml"
    config.write_text(config.read_text().replace("hidden_layers:\n  - 4", "hidden_layers:\n  - 8"))
    with pytest.raises(InputError, match=r"config.yaml: changed since the workflow wrote it"):
        FoldModels.from_results(table_results)


def test_a_missing_fold_model_is_refused_unless_allowed(
    table_results: Path,
    binary_csv: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    (table_results / "1" / "model.ckpt").unlink()
    new = _new_table(binary_csv, tmp_path)
    assert main(["predict", str(table_results), str(new)]) == 1
    err = capsys.readouterr().err
    assert "fold model(s) 1 of 3 are missing" in err
    assert "--allow-missing-folds" in err
    out = tmp_path / "out.tsv"
    code = main(["predict", str(table_results), str(new), "--allow-missing-folds", "-o", str(out)])
    assert code == 0
    assert "fold model(s) 1 missing; predicting with 2 of 3 models" in caplog.text
    frame = pd.read_csv(out, sep="\t")
    assert (frame["models"] == RESULTS_FOLDS - 1).all()
    assert (frame["prob_case_sd"] > 0).all()


def test_the_workflow_predict_job_checks_its_files_against_the_manifest(
    table_results: Path, binary_csv: Path, tmp_path: Path
) -> None:
    from dlpipe.steps.predict import predict_step

    exp = yaml.safe_load((table_results / "config.yaml").read_text())
    folds = [table_results / str(k) for k in range(RESULTS_FOLDS)]
    args = (
        exp,
        {"table": str(_new_table(binary_csv, tmp_path))},
        str(table_results / "dataset.json"),
        [str(f / "model.ckpt") for f in folds],
        [str(f / "preprocessor.skops") for f in folds],
        [str(f / "calibration.json") for f in folds],
        str(tmp_path / "p.tsv"),
        str(table_results / MANIFEST),
    )
    assert len(predict_step(*args)) == 5
    shutil.copyfile(folds[0] / "model.ckpt", folds[1] / "model.ckpt")  # two folds, one model
    with pytest.raises(InputError, match=r"1/model.ckpt: changed since the workflow wrote it"):
        predict_step(*args)


def test_write_manifest_needs_the_files_inside_the_folder(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    record = write_manifest(tmp_path, ["a.txt"], tmp_path / MANIFEST)
    assert record["files"] == {"a.txt": sha256(tmp_path / "a.txt")}
    with pytest.raises(InputError, match=r"b.txt: not a file of the experiment"):
        verify_files(tmp_path / MANIFEST, [tmp_path / "b.txt"])
    (tmp_path / "a.txt").unlink()
    with pytest.raises(InputError, match=r"a.txt: missing from the results folder"):
        verify_files(tmp_path / MANIFEST, [tmp_path / "a.txt"])


def test_predict_new_uses_the_recorded_fold_models(table_results: Path, binary_csv: Path) -> None:
    new = _new_table(binary_csv, table_results.parent)
    models = FoldModels.from_results(table_results)
    assert models.model_config == RESULTS_MLP
    out = predict_new(models, {"table": str(new)})
    assert (out["models"] == RESULTS_FOLDS).all()
