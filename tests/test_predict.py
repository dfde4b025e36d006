"""Prediction on new data with k fold models: tables, FASTA, BED; the dlpipe predict command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import RESULTS_FOLDS, RESULTS_MLP, RESULTS_TEMPERATURES, seal

from dlpipe.alphabet import encode
from dlpipe.calibrate import apply_temperature
from dlpipe.cli import main
from dlpipe.config import validate_config
from dlpipe.errors import ConfigError, InputError
from dlpipe.genomic import fit_length
from dlpipe.io.files import write_json
from dlpipe.io.fitted import load_fitted, save_fitted
from dlpipe.io.tables import input_kind
from dlpipe.learners import FoldModels, combine_folds, predict_new
from dlpipe.metrics import softmax
from dlpipe.modalities.tabular import prepare_tabular
from dlpipe.models import build_model
from dlpipe.models.checkpoint import load_model, raw_outputs
from dlpipe.preprocess import SequenceInput, preprocess_fold
from dlpipe.split import fold_indices, make_folds
from dlpipe.tasks import get_task

K = RESULTS_FOLDS
TEMPERATURES = RESULTS_TEMPERATURES
MLP = RESULTS_MLP


def test_combine_folds_gives_mean_and_sample_sd() -> None:
    scores = [np.full((4, 2), v) for v in (0.2, 0.4, 0.9)]
    mean, sd = combine_folds(scores)
    assert mean.shape == sd.shape == (4, 2)
    np.testing.assert_allclose(mean, 0.5)
    np.testing.assert_allclose(sd, np.std([0.2, 0.4, 0.9], ddof=1))
    _, single = combine_folds(scores[:1])
    assert (single == 0).all()


def test_input_kind_from_the_file_name() -> None:
    assert input_kind("a.fa.gz") == "fasta"
    assert input_kind("peaks.narrowPeak") == "bed"
    assert input_kind("x.bed") == "bed"
    assert input_kind("new.csv") == "table"


def _new_table(binary_csv: Path, path: Path) -> pd.DataFrame:
    new = pd.read_csv(binary_csv, dtype={"id": str}).head(7).drop(columns="y")
    new.to_csv(path, index=False)
    return new


def test_predict_a_table_with_k_models(table_results: Path, binary_csv: Path) -> None:
    new = _new_table(binary_csv, table_results.parent / "new.csv")
    models = FoldModels.from_results(table_results)
    assert len(models.checkpoints) == K
    assert [t["mlp"] for t in models.temperatures] == list(TEMPERATURES)
    out = predict_new(models, {"table": str(table_results.parent / "new.csv")})
    assert out.shape == (7, 1 + 4 + 3)
    assert out["id"].tolist() == new["id"].tolist()
    assert list(out.columns) == ["id", "prob_case", "prob_case_sd", "prob_control",
                                 "prob_control_sd", "y_pred", "models", "calibrated"]  # fmt: skip
    # Each model: its own preprocessor, its own temperature; then mean and sd over models.
    per_model = []
    for k in range(K):
        fitted = load_fitted(table_results / str(k) / "preprocessor.skops")
        raw = softmax(raw_outputs(load_model(table_results / str(k) / "model.ckpt"),
                                  fitted.transform(new)))  # fmt: skip
        per_model.append(apply_temperature(raw, TEMPERATURES[k]))
    stack = np.stack(per_model)
    np.testing.assert_allclose(out["prob_case"], stack[:, :, 0].mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(out["prob_case_sd"], stack[:, :, 0].std(axis=0, ddof=1), rtol=1e-6)
    np.testing.assert_allclose(out["prob_case"] + out["prob_control"], 1.0)
    assert (out["prob_case_sd"] > 0).all()
    assert (out["models"] == K).all()
    assert out["calibrated"].all()


def test_damaged_or_partial_calibration_records(table_results: Path) -> None:
    record = table_results / "1" / "calibration.json"
    record.write_text('{"learners": {"mlp": {"temperature": 2.0}')  # cut short
    with pytest.raises(InputError, match=r"1/calibration.json: changed since the workflow"):
        FoldModels.from_results(table_results)
    # Damaged before the manifest was written: the record itself is checked.
    exp = yaml.safe_load((table_results / "config.yaml").read_text())
    seal(table_results, exp, MLP)
    with pytest.raises(InputError, match=r"1/calibration.json, line 1, column \d+: not valid JSON"):
        FoldModels.from_results(table_results)
    for content, message in (
        ({"learners": {"mlp": {"temperature": 0.0}}}, "learners.mlp.temperature is 0.0, not a"),
        ({"fold": 1}, "not a dlpipe calibration record"),
    ):
        write_json(content, record)
        seal(table_results, exp, MLP)
        with pytest.raises(InputError, match=message):
            FoldModels.from_results(table_results)
    # A fold whose record the manifest does not hold: no fold model is calibrated, rather
    # than some of them.
    record.unlink()
    seal(table_results, exp, MLP)
    models = FoldModels.from_results(table_results)
    assert models.temperatures == []
    assert len(models.checkpoints) == K


def test_a_table_without_a_training_column_is_refused(
    table_results: Path, binary_csv: Path
) -> None:
    new = _new_table(binary_csv, table_results.parent / "new.csv").drop(columns=["f2", "f4"])
    new.to_csv(table_results.parent / "short.csv", index=False)
    with pytest.raises(InputError, match=r"short.csv: 2 feature column\(s\).*\['f2', 'f4'\]"):
        predict_new(FoldModels.from_results(table_results),
                    {"table": str(table_results.parent / "short.csv")})  # fmt: skip


@pytest.fixture
def sequence_results(tmp_path: Path, write_checkpoint) -> Path:
    """results/seq of a sequence experiment: k small CNNs on 20-bp windows, no calibration."""
    folder = tmp_path / "results" / "seq"
    folder.mkdir(parents=True)
    meta = {"modality": "sequence", "task": "classification", "classes": ["background", "site"],
            "alphabet": "dna", "length": 20, "meta": {}}  # fmt: skip
    write_json(meta, folder / "dataset.json")
    exp = {"data": {"modality": "sequence", "use_summit": True}, "task": "classification"}
    for k in range(K):
        (folder / str(k)).mkdir()
        torch.manual_seed(k)
        model = build_model("cnn", 4, 2, filters=[4], kernel_sizes=[5], pool=1, batch_norm=False)
        write_checkpoint(folder / str(k) / "model.ckpt", model, "cnn", 4, 2, filters=[4],
                         kernel_sizes=[5], pool=1, batch_norm=False)  # fmt: skip
        save_fitted(SequenceInput("dna", 20), folder / str(k) / "preprocessor.skops")
    cnn = {"name": "cnn", "filters": [4], "kernel_sizes": [5], "pool": 1, "batch_norm": False}
    return seal(folder, exp, cnn)


def test_predict_a_fasta_crops_and_pads_to_the_model_length(
    sequence_results: Path, tmp_path: Path
) -> None:
    fasta = tmp_path / "new.fa"
    fasta.write_text(
        ">short first\nACGTACGT\n>long\n" + "ACGT" * 10 + "\n>exact\n" + "G" * 20 + "\n"
    )
    out = predict_new(FoldModels.from_results(sequence_results), {"fasta": str(fasta)})
    assert out["id"].tolist() == ["short", "long", "exact"]
    assert out.shape == (3, 1 + 4 + 3)
    assert not out["calibrated"].any()
    codes = encode([fit_length("ACGTACGT", 20), fit_length("ACGT" * 10, 20), "G" * 20])
    probs = np.stack([softmax(raw_outputs(load_model(sequence_results / str(k) / "model.ckpt"),
                                          codes)) for k in range(K)])  # fmt: skip
    np.testing.assert_allclose(out["prob_site"], probs[:, :, 1].mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(out["prob_site_sd"], probs[:, :, 1].std(axis=0, ddof=1), rtol=1e-6)


def test_predict_bed_intervals_of_a_genome(sequence_results: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    genome = tmp_path / "genome.fa"
    genome.write_text(">chrA\n" + "".join(rng.choice(list("ACGT"), 300)) + "\n")
    bed = tmp_path / "new.bed"
    bed.write_text("chrA\t10\t40\tfirst\nchrA\t100\t110\tsecond\nchrA\t285\t300\tend\n")
    out = predict_new(FoldModels.from_results(sequence_results),
                      {"bed": str(bed), "genome": str(genome)})  # fmt: skip
    assert out["id"].tolist() == ["chrA:15-35", "chrA:95-115", "chrA:282-302"]
    assert out["name"].tolist() == ["first", "second", "end"]
    assert out["prob_site"].between(0, 1).all()
    with pytest.raises(InputError, match="needs its reference genome"):
        predict_new(FoldModels.from_results(sequence_results), {"bed": str(bed)})
    with pytest.raises(InputError, match="sequence experiment predicts FASTA or BED"):
        predict_new(FoldModels.from_results(sequence_results), {"table": str(bed)})


def test_dlpipe_predict_command_on_a_new_fasta_and_a_new_table(
    sequence_results: Path, table_results: Path, binary_csv: Path, tmp_path: Path
) -> None:
    fasta = tmp_path / "new.fasta"
    fasta.write_text(">s1\n" + "ACGTT" * 4 + "\n>s2\n" + "TTTTAAAACCCCGGGGACGT\n")
    out = tmp_path / "seq.tsv"
    assert main(["predict", str(sequence_results), str(fasta), "-o", str(out)]) == 0
    table = pd.read_csv(out, sep="\t")
    assert table.shape == (2, 8)
    assert {"prob_site", "prob_site_sd", "y_pred"} <= set(table.columns)

    _new_table(binary_csv, tmp_path / "new.csv")
    cmd = [
        sys.executable,
        "-m",
        "dlpipe.cli",
        "predict",
        str(table_results),
        str(tmp_path / "new.csv"),
    ]
    run = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    assert lines[0].split("\t")[:3] == ["id", "prob_case", "prob_case_sd"]
    assert len(lines) == 1 + 7

    missing = main(["predict", str(tmp_path / "nowhere"), str(fasta)])
    assert missing == 1


def _config(predict: dict) -> dict:
    return {
        "experiments": {
            "seq": {"task": "classification",
                    "data": {"modality": "sequence", "genome": "g.fa", "bed": {"a": "a.bed"}},
                    "model": {"name": "cnn"}, "cv": {"plan": "chromosome_kfold"}},
        },
        "predict": predict,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("job", "message"),
    [
        ({"experiment": "nope", "fasta": "x.fa"}, r"predict.j.experiment: 'nope' is not an"),
        ({"experiment": "seq"}, r"predict.j: give exactly one input"),
        ({"experiment": "seq", "table": "t.csv"}, r"predict.j.table: 'seq' is a sequence"),
        ({"experiment": "seq", "bed": "b.bed"}, r"predict.j.genome: bed input needs"),
    ],
)
def test_prediction_jobs_are_checked_with_the_config(job: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate_config(_config({"j": job}))


def test_prediction_job_config_is_valid() -> None:
    config = validate_config(_config({"j": {"experiment": "seq", "fasta": "new.fa"}}))
    assert config["predict"]["j"]["bed"] is None


def test_regression_predictions_are_on_the_original_scale(
    tmp_path: Path,
    make_exp,
    regression_csv: Path,
    write_checkpoint,
) -> None:
    exp = make_exp(regression_csv, "regression", cv={"plan": "kfold", "n_splits": 2})
    data = prepare_tabular(exp)
    folder = tmp_path / "reg"
    folder.mkdir()
    data.save(folder / "dataset.parquet", folder / "dataset.json")
    folds = make_folds(data.ids, exp["cv"], 0, labels=get_task(data.task).stratify(data.y))
    fitted = {}
    for k in range(2):
        _, fitted[k], _ = preprocess_fold(
            data, fold_indices(folds, k, data.ids), exp["preprocess"], 0
        )
        (folder / str(k)).mkdir()
        save_fitted(fitted[k], folder / str(k) / "preprocessor.skops")
        model = build_model("mlp", 5, 2, hidden_layers=[], batch_norm=False)
        with torch.no_grad():  # predicts 0 (the training mean) for both standardised targets
            model.head.weight.zero_()
            model.head.bias.zero_()
        write_checkpoint(folder / str(k) / "model.ckpt", model, "mlp", 5, 2, hidden_layers=[],
                         batch_norm=False)  # fmt: skip
    seal(folder, exp, {"name": "mlp", "hidden_layers": [], "batch_norm": False})
    new = pd.read_csv(regression_csv).drop(columns=["t1", "t2"]).head(4)
    new.to_csv(tmp_path / "new.tsv", sep="\t", index=False)
    out = predict_new(FoldModels.from_results(folder), {"table": str(tmp_path / "new.tsv")})
    assert list(out.columns) == ["id", "pred_t1", "pred_t1_sd", "pred_t2", "pred_t2_sd", "models"]
    means = np.array([fitted[k].target_mean for k in range(2)])
    np.testing.assert_allclose(out["pred_t1"], means[:, 0].mean())
    np.testing.assert_allclose(out["pred_t1_sd"], means[:, 0].std(ddof=1))
    assert out["id"].tolist() == ["r0", "r1", "r2", "r3"]
