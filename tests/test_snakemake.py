"""The workflow itself: Snakemake on a tiny config, reruns, errors before any job, lint."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from dlpipe.workflow import rebase_paths

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
           "--directory", str(workdir), "--cores", "2", *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=workdir)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a tiny classification and regression table and their config."""
    folder = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 5))
    cls = pd.DataFrame(x, columns=[f"g{i}" for i in range(5)])
    cls.insert(0, "sample", [f"S{i:03d}" for i in range(90)])
    cls["state"] = np.where(x[:, 0] + 0.5 * rng.normal(size=90) > 0.6, "disease", "healthy")
    cls.to_csv(folder / "cls.csv", index=False)
    reg = cls.drop(columns="state")
    reg["t1"] = x[:, 1] * 2 + rng.normal(size=90) * 0.1
    reg["t2"] = x[:, 2] - x[:, 3]
    reg.to_csv(folder / "reg.tsv", sep="\t", index=False)
    cls.drop(columns="state").head(5).to_csv(folder / "new.csv", index=False)  # new samples
    common = {
        "model": {"name": "mlp", "hidden_layers": [8]},
        "training": {"max_epochs": 5, "patience": 2, "progress_bar": False, "device": "cpu"},
        "resources": {"threads": 1},
    }
    config = {
        "experiments": {
            "cls": {"task": "classification", "data": {"path": "cls.csv", "id_column": "sample",
                                                       "label_column": "state"},
                    "preprocess": {"smote": True}, "cv": {"n_splits": 3}, **common},
            "reg": {"task": "regression", "data": {"path": "reg.tsv", "id_column": "sample",
                                                   "target_columns": ["t1", "t2"]},
                    "cv": {"plan": "kfold", "n_splits": 3}, "interpret": {"enabled": False},
                    **common},
        },
        "predict": {"newcls": {"experiment": "cls", "table": "new.csv"}},
    }  # fmt: skip
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return folder


def _digests(folder: Path) -> dict[str, str]:
    files = sorted(folder.glob("results/*/metrics.tsv")) + sorted(
        folder.glob("results/*/*/metrics.json")
    ) + sorted(folder.glob("results/*/oof_predictions.tsv"))  # fmt: skip
    files += sorted(folder.glob("results/*/*/calibration.json"))
    files += sorted(folder.glob("results/*/interpret/feature_importance.tsv"))
    files += [folder / "results/comparison/leaderboard.tsv"]
    files += sorted(folder.glob("results/predictions/*.tsv"))
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.mark.workflow
def test_tiny_config_runs_end_to_end_and_reruns_identically(tiny: Path) -> None:
    run = _snakemake(tiny, "--configfile", "config.yaml", "--quiet")
    assert run.returncode == 0, run.stderr[-3000:]
    results = tiny / "results"
    html = (results / "report.html").read_text()
    assert "data:image/png;base64" in html
    assert 'src="http' not in html
    assert "cls" in html and "reg" in html  # noqa: PT018 - both experiments on one page
    for exp, baseline in (("cls", "logistic_regression"), ("reg", "ridge_regression")):
        metrics = pd.read_csv(results / exp / "metrics.tsv", sep="\t")
        assert set(metrics["learner"]) == {"mlp", baseline}
        assert {"fold_0", "fold_2", "mean", "sd", "ci95_low", "ci95_high", "pooled"} <= set(
            metrics.columns
        )
        oof = pd.read_csv(results / exp / "oof_predictions.tsv", sep="\t")
        assert (oof.groupby("learner")["id"].nunique() == 90).all()
        assert (oof.groupby("learner").size() == 90).all()  # every sample tested once
        for fold in range(3):
            for name in ("model.ckpt", "history.tsv", "predictions.tsv", "metrics.json"):
                assert (results / exp / str(fold) / name).is_file()
        provenance = yaml.safe_load((results / exp / "provenance.json").read_text())
        data = tiny / ("cls.csv" if exp == "cls" else "reg.tsv")
        assert provenance["inputs"][data.name] == hashlib.sha256(data.read_bytes()).hexdigest()
        assert provenance["seed"] == 0
        assert (results / exp / "config.yaml").is_file()
    for rule in ("prepare", "split", "preprocess", "train", "baseline", "evaluate", "aggregate"):
        assert any((tiny / "logs" / rule).rglob("*.log")), rule
    first = _digests(tiny)
    # + calibration (a record without temperatures for the regression), importance, board,
    # predictions
    assert len(first) == 2 + 6 + 2 + 6 + 1 + 1 + 1

    shutil.rmtree(results)
    again = _snakemake(tiny, "--configfile", "config.yaml", "--quiet")
    assert again.returncode == 0, again.stderr[-3000:]
    assert _digests(tiny) == first

    # Nothing to do on a rerun; a changed training setting reruns that experiment only.
    noop = _snakemake(tiny, "--configfile", "config.yaml", "-n")
    assert "Nothing to be done" in noop.stdout + noop.stderr
    config = yaml.safe_load((tiny / "config.yaml").read_text())
    # A new dict: the experiments share one training section (a YAML alias) in config.yaml.
    reg = config["experiments"]["reg"]
    reg["training"] = {**reg["training"], "learning_rate": 0.01}
    (tiny / "changed.yaml").write_text(yaml.safe_dump(config))
    changed = _snakemake(tiny, "--configfile", "changed.yaml", "-n")
    assert changed.returncode == 0, changed.stderr[-3000:]
    # Exactly that experiment's training, what depends on it (its manifest included), the
    # leaderboard and the report.
    assert _planned_jobs(changed.stdout + changed.stderr) == Counter(
        {("train", "reg"): 3, ("evaluate", "reg"): 3, ("aggregate", "reg"): 1,
         ("manifest", "reg"): 1, ("compare", None): 1, ("report", None): 1, ("all", None): 1}
    )  # fmt: skip
    assert "reason: Params have changed since last execution" in changed.stdout
    # (`--list-changes params` of Snakemake 9.27 lists every output with recorded params,
    # changed or not; the dry run's job list is the reliable answer.)


def _planned_jobs(dry_run: str) -> Counter[tuple[str, str | None]]:
    """(rule, experiment) of every job a dry run lists."""
    jobs: Counter[tuple[str, str | None]] = Counter()
    rule: str | None = None
    exp: str | None = None
    for line in dry_run.splitlines():
        head = re.match(r"^(?:local)?rule (\w+):", line)
        if head:
            if rule:
                jobs[rule, exp] += 1
            rule, exp = head[1], None
        elif rule and (wildcards := re.search(r"wildcards: .*\bexp=([\w-]+)", line)):
            exp = wildcards[1]
    if rule:
        jobs[rule, exp] += 1
    return jobs


@pytest.mark.workflow
def test_tiny_run_predicts_new_data_reports_trust_and_packs_a_snakemake_report(tiny: Path) -> None:
    run = _snakemake(tiny, "--configfile", "config.yaml", "--quiet")  # no-op after the test above
    assert run.returncode == 0, run.stderr[-3000:]
    results = tiny / "results"
    predictions = pd.read_csv(results / "predictions" / "newcls.tsv", sep="\t")
    assert predictions["id"].tolist() == [f"S{i:03d}" for i in range(5)]
    for col in ("prob_disease", "prob_disease_sd", "prob_healthy", "prob_healthy_sd"):
        assert predictions[col].between(0, 1).all()
    assert (predictions["models"] == 3).all()
    assert predictions["calibrated"].all()
    html = (results / "report.html").read_text()
    sections = ("DOME summary", "Leaderboard", "Calibration", "What the model learned",
                "what was fitted where", "p (corrected t)")  # fmt: skip
    for section in sections:
        assert section in html, section
    # Parameters counted by the interpret step (cls) and by the report itself (reg: no interpret).
    assert html.count("trainable parameters") == 2
    assert not (results / "reg" / "interpret").exists()
    board = pd.read_csv(results / "comparison" / "leaderboard.tsv", sep="\t")
    assert sorted(zip(board["experiment"], board["learner"], strict=True)) == [
        ("cls", "logistic_regression"), ("cls", "mlp"), ("reg", "mlp"), ("reg", "ridge_regression")
    ]  # fmt: skip
    assert board["p_corrected_t"].notna().sum() == 2  # each runner-up against its best
    zipped = _snakemake(tiny, "--configfile", "config.yaml", "--report", "report.zip")
    assert zipped.returncode == 0, zipped.stderr[-3000:]
    with zipfile.ZipFile(tiny / "report.zip") as archive:
        names = {Path(n).name for n in archive.namelist()}
    assert {"reliability.png", "features.png", "leaderboard.tsv", "newcls.tsv"} <= names


@pytest.mark.workflow
def test_a_damaged_checkpoint_is_retrained_and_results_of_other_configs_are_named(
    tiny: Path,
) -> None:
    run = _snakemake(tiny, "--configfile", "config.yaml", "--quiet")  # no-op after the tests above
    assert run.returncode == 0, run.stderr[-3000:]
    results = tiny / "results"
    before = _digests(tiny)
    manifest = yaml.safe_load((results / "cls" / "manifest.json").read_text())["files"]
    assert {"config.yaml", "dataset.json", "1/model.ckpt", "1/preprocessor.skops",
            "1/baselines.skops", "1/calibration.json"} <= set(manifest)  # fmt: skip
    ckpt = results / "cls" / "1" / "model.ckpt"
    intact = ckpt.read_bytes()
    ckpt.write_bytes(intact[: len(intact) // 2])
    predict = subprocess.run(
        [str(BIN / "dlpipe"), "predict", "results/cls", "new.csv"],
        cwd=tiny, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert predict.returncode == 1
    assert predict.stderr.startswith(
        "dlpipe error: results/cls/1/model.ckpt: changed since the workflow wrote it"
    ), predict.stderr
    # Plain Snakemake (which would rerun nothing: what depends on the file exists) is told how
    # to retrain it; dlpipe run plans the retraining (dry run) and then does it.
    plain = _snakemake(tiny, "--configfile", "config.yaml", "-n")
    assert plain.returncode == 0
    assert (
        "dlpipe: results/cls/1/model.ckpt is damaged (truncated or altered since training); "
        "retrain its fold with --forcerun results/cls/1/model.ckpt"
    ) in plain.stderr

    def dlpipe_run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [str(BIN / "dlpipe"), "run", "config.yaml", "--cores", "2", *args]
        return subprocess.run(command, cwd=tiny, capture_output=True, text=True, check=False)

    dry = dlpipe_run("-n")
    assert "results/cls/1/model.ckpt is damaged; a run sets it aside" in dry.stderr
    assert _planned_jobs(dry.stdout + dry.stderr)["train", "cls"] == 1
    assert ckpt.is_file()  # a dry run changes nothing
    rerun = dlpipe_run()
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "results/cls/1/model.ckpt is damaged; set aside as model.ckpt.damaged" in rerun.stderr
    assert "Traceback" not in rerun.stderr
    jobs = _planned_jobs(rerun.stderr)
    assert jobs["train", "cls"] == 1
    assert jobs["evaluate", "cls"] == 1
    # Retrained, not re-evaluated: the same model (training is deterministic), the same numbers.
    assert ckpt.read_bytes() == intact
    assert _digests(tiny) == before
    assert (ckpt.parent / "model.ckpt.damaged").stat().st_size == len(intact) // 2

    # A config of the regression alone: the report covers it and names the other experiment.
    config = yaml.safe_load((tiny / "config.yaml").read_text())
    del config["experiments"]["cls"], config["predict"]
    (tiny / "reg_only.yaml").write_text(yaml.safe_dump(config))
    only = _snakemake(tiny, "--configfile", "reg_only.yaml", "--quiet")
    assert only.returncode == 0, only.stderr[-3000:]
    html = (results / "report.html").read_text()
    assert "This report covers the 1 experiment(s) of its config: reg." in html
    assert "the results folder also holds 1 experiment(s) of another config (cls)" in html
    assert (results / "cls" / "metrics.tsv").is_file()  # kept
    board = pd.read_csv(results / "comparison" / "leaderboard.tsv", sep="\t")
    assert set(board["experiment"]) == {"reg"}
    restored = _snakemake(tiny, "--configfile", "config.yaml", "--quiet")
    assert restored.returncode == 0, restored.stderr[-3000:]
    assert "Not included" not in (results / "report.html").read_text()


@pytest.mark.workflow
def test_dlpipe_run_checks_everything_before_handing_over_to_snakemake(tiny: Path) -> None:
    def dlpipe(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "dlpipe"), *args], cwd=tiny, capture_output=True,
                              text=True, check=False)  # fmt: skip

    version = dlpipe("--version")
    assert version.stdout.strip().startswith("dlpipe ")
    text = (tiny / "config.yaml").read_text()
    cases = {
        "syntax.yaml": (text + "  bad: [1, 2\n", ", column 1: not valid YAML"),
        "twice.yaml": (text + "predict: {}\n", "key 'predict' appears twice in one mapping"),
        "yte.yaml": ("__use_yte__: true\n" + text, "__use_yte__ makes Snakemake run this config"),
    }
    for name, (content, message) in cases.items():
        (tiny / name).write_text(content)
        run = dlpipe("run", name, "-n")
        assert run.returncode == 1, name
        assert run.stderr.startswith(f"dlpipe error: {name}"), run.stderr
        assert message in run.stderr, run.stderr
        assert "Traceback" not in run.stderr
        assert "running:" not in run.stderr  # never handed over
    missing = dlpipe("run", "absent.yaml")
    assert missing.stderr == "dlpipe error: absent.yaml: config file not found\n"
    # Plain Snakemake keeps the last of two equal keys; the Snakefile reads the file again.
    twice = _snakemake(tiny, "--configfile", "twice.yaml", "-n")
    assert twice.returncode != 0
    assert f"dlpipe error: {tiny / 'twice.yaml'}, line " in twice.stderr
    assert "appears twice" in twice.stderr
    ok = dlpipe("run", "config.yaml", "-n")
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert "config and data are valid" in ok.stderr
    assert "--configfile config.yaml --cores all -n" in ok.stderr
    assert "Nothing to be done" in ok.stdout + ok.stderr


@pytest.mark.workflow
def test_bad_data_stops_before_training_and_leaves_no_partial_outputs(tmp_path: Path) -> None:
    (tmp_path / "dup.csv").write_text("id,g,label\nA,1,x\nB,2,y\nA,3,x\nC,4,y\nD,5,x\nE,6,y\n")
    config = {"experiments": {"bad": {"task": "classification", "cv": {"n_splits": 2},
                                      "data": {"path": "dup.csv", "id_column": "id",
                                               "label_column": "label"}}}}  # fmt: skip
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    run = _snakemake(tmp_path, "--configfile", "c.yaml")
    assert run.returncode != 0
    assert "dlpipe error: dup.csv: sample ids in column 'id' are not unique: ['A']" in run.stderr
    assert "torch" not in run.stderr
    assert not (tmp_path / "results" / "bad" / "dataset.parquet").exists()
    assert not list((tmp_path / "results").rglob("model.ckpt"))


@pytest.mark.workflow
def test_invalid_config_and_missing_file_stop_before_any_job(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("id,g,label\nA,1,x\nB,2,y\n")
    data = {"path": "x.csv", "label_column": "label"}
    config = {
        "experiments": {"e": {"task": "classification", "cv": {"plan": "bogus"}, "data": data}}
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    run = _snakemake(tmp_path, "--configfile", "c.yaml")
    assert run.returncode != 0
    assert "experiments.e.cv.plan: 'bogus' is not allowed; choose one of" in run.stderr
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "results").exists()
    config["experiments"]["e"]["cv"]["plan"] = "kfold"
    config["experiments"]["e"]["data"]["path"] = "missing.csv"
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    run = _snakemake(tmp_path, "--configfile", "c.yaml")
    assert run.returncode != 0
    assert "experiments.e.data.path: file 'missing.csv' not found" in run.stderr


@pytest.mark.workflow
def test_dry_run_of_the_demo_lists_the_chain(tmp_path: Path) -> None:
    # In a folder of its own, so that the demo's results of `make demo` in the repository
    # ("Nothing to be done") cannot hide the chain.
    config = rebase_paths(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()), ROOT)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    run = _snakemake(tmp_path, "-n", "--quiet", "rules", "--configfile", "config.yaml")
    assert run.returncode == 0, run.stderr
    for rule in ("integrate", "integration_metrics", "prepare", "split", "preprocess",
                 "train", "baseline", "evaluate", "aggregate", "interpret", "compare",
                 "report"):  # fmt: skip
        assert re.search(rf"\b{rule}\b", run.stdout + run.stderr), rule


@pytest.mark.workflow
def test_dry_run_pretrains_once_before_the_folds_that_fine_tune(tmp_path: Path) -> None:
    example = yaml.safe_load((ROOT / "config" / "examples" / "nuclei_pretrained.yaml").read_text())
    config = rebase_paths(example, ROOT)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    run = _snakemake(tmp_path, "-n", "--configfile", "config.yaml")
    assert run.returncode == 0, run.stderr[-3000:]
    jobs = _planned_jobs(run.stdout + run.stderr)
    assert jobs["pretrain", "count_finetuned"] == 1
    assert jobs["pretrain", "count_scratch"] == 0
    assert jobs["train", "count_finetuned"] == jobs["train", "count_scratch"] == 8
    # Every fine-tuning fold waits for the backbone; no from-scratch fold reads it.
    trains = re.findall(r"rule train:\n    input: ([^\n]+)", run.stdout + run.stderr)
    assert len(trains) == 16
    backbone = "results/count_finetuned/pretrain/backbone.pt"
    assert sum(backbone in line for line in trains) == 8
    assert all("pretrain" not in line for line in trains if "count_scratch" in line)


def test_lint_and_format() -> None:
    lint = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint", "--directory", str(ROOT),
         "--snakefile", str(ROOT / "Snakefile")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert lint.returncode == 0, lint.stdout + lint.stderr
    snakefmt = BIN / "snakefmt"
    if not snakefmt.exists():
        pytest.skip("snakefmt is not installed next to this Python (pip install '.[dev]')")
    fmt = subprocess.run([str(snakefmt), "--check", "."], cwd=ROOT, capture_output=True,
                         text=True, check=False)  # fmt: skip
    assert fmt.returncode == 0, fmt.stderr
