"""Resume after SIGKILL (bit-identical on CPU), stale training states, DDP on two CPU processes."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from sklearn.metrics import roc_auc_score

from dlpipe.config import validate_config
from dlpipe.models.checkpoint import load_model, raw_outputs
from dlpipe.steps.evaluate import evaluate_step
from dlpipe.steps.train import train_step
from dlpipe.tasks import get_task
from dlpipe.train import FINGERPRINT, LAST, fingerprint, fit

ROOT = Path(__file__).resolve().parents[1]
#: A noisy two-class problem: 1,200 train, 300 val, 300 test samples of 10 features.
_RNG = np.random.default_rng(7)
X = _RNG.normal(size=(1800, 10)).astype(np.float32)
Y = (X[:, 0] - X[:, 1] + 0.8 * _RNG.normal(size=1800) > 0).astype(np.int64)
TRAIN, VAL, TEST = slice(0, 1200), slice(1200, 1500), slice(1500, 1800)
#: The run is killed in this epoch, after the checkpoint of the epoch before it was written.
KILL_EPOCH = 4


def _exp(**training: Any) -> dict[str, Any]:
    exp = {
        "task": "classification",
        "data": {"path": "unused.csv", "label_column": "y"},
        # Dropout and batch norm draw from torch's generator; shuffling from the loader's.
        "model": {"name": "mlp", "hidden_layers": [32, 16], "dropout": 0.3},
        "training": {
            "max_epochs": 10,
            "patience": 3,
            "batch_size": 32,
            "learning_rate": 0.01,
            "progress_bar": False,
            "device": "cpu",
            **training,
        },
    }
    return validate_config({"experiments": {"e": exp}})["experiments"]["e"]


def _fit(folder: Path, name: str, state_dir: Path | None, **training: Any) -> Path:
    checkpoint = folder / f"{name}.ckpt"
    fit(
        (X[TRAIN], Y[TRAIN]), (X[VAL], Y[VAL]), _exp(**training), get_task("classification"), 2,
        checkpoint, folder / f"{name}.tsv", threads=1, state_dir=state_dir,
    )  # fmt: skip
    return checkpoint


#: Run in a separate process: train with a state folder and SIGKILL itself in the middle of
#: epoch KILL_EPOCH (batch 10), as a node failure or an out-of-memory kill would.
_KILLED_RUN = """
import os, signal, sys
import numpy as np
from dlpipe import train
sys.path.insert(0, {tests!r})
import test_resume as t

def kill_midway(self, trainer, pl_module, batch, batch_idx):
    if trainer.current_epoch == t.KILL_EPOCH and batch_idx == 10:
        os.kill(os.getpid(), signal.SIGKILL)

train.TrainingState.on_train_batch_start = kill_midway
t._fit(t.Path({folder!r}), "killed", t.Path({state!r}))
"""


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted run (temporary state folder) whose outputs a resumed run must equal."""
    folder = tmp_path_factory.mktemp("reference")
    return _fit(folder, "reference", None)


def test_killed_run_resumes_from_its_last_epoch_bit_identically(
    reference: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "state"
    code = _KILLED_RUN.format(tests=str(ROOT / "tests"), folder=str(tmp_path), state=str(state))
    killed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False, cwd=ROOT)  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (tmp_path / "killed.ckpt").exists()
    assert (state / LAST).is_file()
    # The kill came in the middle of epoch KILL_EPOCH: the history stops at the epoch before.
    partial = (state / "history.tsv").read_text().splitlines()
    assert len(partial) == 1 + KILL_EPOCH

    with caplog.at_level(logging.INFO, logger="dlpipe.train"):
        resumed = _fit(tmp_path, "resumed", state)
    assert f"resuming from {state / LAST}" in caplog.text
    assert not state.exists()  # finished: the state folder is removed

    ref_history = reference.with_suffix(".tsv").read_text()
    assert (tmp_path / "resumed.tsv").read_text() == ref_history
    assert len(ref_history.splitlines()) > 2 + KILL_EPOCH  # it ran on past the kill
    ref_state, new_state = load_model(reference).state_dict(), load_model(resumed).state_dict()
    assert all(torch.equal(ref_state[k], new_state[k]) for k in ref_state)
    ref_scores = raw_outputs(load_model(reference), X[TEST])
    np.testing.assert_array_equal(raw_outputs(load_model(resumed), X[TEST]), ref_scores)


def test_state_of_other_settings_is_discarded(
    reference: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / FINGERPRINT).write_text("settings of an earlier run")
    (state / LAST).write_bytes(b"not a checkpoint")
    with caplog.at_level(logging.INFO, logger="dlpipe.train"):
        fresh = _fit(tmp_path, "fresh", state)
    assert "holds a training state of other settings or data" in caplog.text
    assert "resuming" not in caplog.text
    assert (tmp_path / "fresh.tsv").read_text() == reference.with_suffix(".tsv").read_text()
    np.testing.assert_array_equal(
        raw_outputs(load_model(fresh), X[TEST]), raw_outputs(load_model(reference), X[TEST])
    )


def test_unreadable_checkpoint_of_same_settings_starts_again(
    reference: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "state"
    stamp = fingerprint(_exp(), 2, (X[TRAIN], Y[TRAIN], X[VAL], Y[VAL]))
    state.mkdir()
    (state / FINGERPRINT).write_text(stamp)
    (state / LAST).write_bytes(b"truncated")
    with caplog.at_level(logging.INFO, logger="dlpipe.train"):
        _fit(tmp_path, "again", state)
    assert "cannot be read" in caplog.text
    assert (tmp_path / "again.tsv").read_text() == reference.with_suffix(".tsv").read_text()


def test_ddp_on_two_cpu_processes_matches_one_process(reference: Path, tmp_path: Path) -> None:
    """Two gloo processes train the same model to within a stated tolerance of one process.

    DDP does not give identical numbers: each process draws its half of every batch through
    a DistributedSampler (another shuffle of the same samples), batch-norm statistics are per
    process, and gradients are averaged in another order. The global batch is kept (16 per
    process), so the optimisation is the same in expectation: test auROC within 0.03 and
    accuracy within 0.05 of the single process, on a set both learn to about 0.85 auROC.
    """
    ddp = _fit(tmp_path, "ddp", tmp_path / "state", devices=2)
    one, two = raw_outputs(load_model(reference), X[TEST]), raw_outputs(load_model(ddp), X[TEST])
    assert not np.array_equal(one, two)  # really another run
    auc_one = roc_auc_score(Y[TEST], one[:, 1] - one[:, 0])
    auc_two = roc_auc_score(Y[TEST], two[:, 1] - two[:, 0])
    assert auc_one > 0.8
    assert abs(auc_one - auc_two) <= 0.03
    acc_one = (one.argmax(axis=1) == Y[TEST]).mean()
    acc_two = (two.argmax(axis=1) == Y[TEST]).mean()
    assert abs(acc_one - acc_two) <= 0.05
    history = (tmp_path / "ddp.tsv").read_text().splitlines()
    assert history[0] == "epoch\ttrain_loss\tval_loss"
    assert len(history) > 2
    assert not (tmp_path / "state").exists()


def _job_processes(group: int, marker: str) -> list[int]:
    """Pids in process group ``group`` whose command line contains ``marker``."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        if int(fields[2]) == group and marker in cmdline:
            pids.append(int(stat.parent.name))
    return pids


@pytest.mark.workflow
def test_workflow_resumes_a_training_job_killed_with_sigkill(tmp_path: Path) -> None:
    """SIGKILL the training job of a real Snakemake run; --rerun-incomplete resumes it."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2000, 12))
    table = pd.DataFrame(x, columns=[f"g{i}" for i in range(12)])
    table.insert(0, "sample", [f"S{i:04d}" for i in range(2000)])
    table["state"] = np.where(x[:, 0] - x[:, 1] + rng.normal(size=2000) > 0, "case", "control")
    table.to_csv(tmp_path / "t.csv", index=False)
    config = {"experiments": {"e": {
        "task": "classification",
        "data": {"path": "t.csv", "id_column": "sample", "label_column": "state"},
        "model": {"name": "mlp", "hidden_layers": [32], "dropout": 0.2},
        "training": {"max_epochs": 40, "patience": 40, "batch_size": 16, "device": "cpu",
                     "progress_bar": False},
        "resources": {"threads": 1},
        "baseline": {"enabled": False},
        "cv": {"plan": "holdout"},
    }}}  # fmt: skip
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    target = "results/e/0/metrics.json"
    cmd = [sys.executable, "-m", "snakemake", target, "--snakefile", str(ROOT / "Snakefile"),
           "--cores", "1", "--directory", str(tmp_path), "--configfile", "c.yaml"]  # fmt: skip
    run = subprocess.Popen(cmd, cwd=tmp_path, start_new_session=True, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    state = tmp_path / "results" / "e" / "0" / "train_state"
    deadline = time.monotonic() + 300
    while not ((state / "history.tsv").is_file() and (state / LAST).is_file()
               and len((state / "history.tsv").read_text().splitlines()) > 3):  # fmt: skip
        assert run.poll() is None, run.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "training did not reach epoch 3 in time"
        time.sleep(0.2)
    jobs = _job_processes(run.pid, "train.py")
    assert jobs, "no training job process found"
    for pid in jobs:
        os.kill(pid, signal.SIGKILL)
    output = run.communicate(timeout=120)[0]
    assert run.returncode != 0
    assert "Error in rule train" in output
    assert not (tmp_path / "results" / "e" / "0" / "model.ckpt").exists()
    epochs_done = len((state / "history.tsv").read_text().splitlines()) - 1
    assert 3 <= epochs_done < 40

    again = subprocess.run([*cmd, "--rerun-incomplete"], cwd=tmp_path, capture_output=True,
                           text=True, check=False)  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    log = (tmp_path / "logs" / "train" / "e" / "0.log").read_text()
    assert f"resuming from {Path('results/e/0/train_state') / LAST}" in log
    assert not state.exists()

    # The same step, uninterrupted, in this process: identical history and metrics.
    fold = tmp_path / "results" / "e" / "0"
    exp = validate_config(config)["experiments"]["e"]
    ref = tmp_path / "ref"
    ref.mkdir()
    train_step(exp, str(fold / "train.npz"), str(fold / "val.npz"),
               str(fold / "preprocessor.skops"), str(tmp_path / "results/e/dataset.json"),
               str(ref / "model.ckpt"), str(ref / "history.tsv"), threads=1)  # fmt: skip
    evaluate_step(exp, 0, str(fold / "test.npz"), str(ref / "model.ckpt"), None,
                  str(fold / "preprocessor.skops"), str(tmp_path / "results/e/dataset.json"),
                  str(ref / "predictions.tsv"), str(ref / "metrics.json"),
                  str(fold / "calibration.json"))  # fmt: skip
    assert (fold / "history.tsv").read_text() == (ref / "history.tsv").read_text()
    assert (fold / "metrics.json").read_text() == (ref / "metrics.json").read_text()
    assert (fold / "predictions.tsv").read_text() == (ref / "predictions.tsv").read_text()
