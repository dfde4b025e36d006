"""Resume after SIGKILL (bit-identical on CPU), stale training states, DDP over two CPU processes."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from dlpipe.config import validate_config
from dlpipe.inference import load_model, predict
from dlpipe.train import FINGERPRINT, LAST, fit

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
        (X[TRAIN], Y[TRAIN]), (X[VAL], Y[VAL]), _exp(**training), 2, checkpoint,
        folder / f"{name}.tsv", threads=1, state_dir=state_dir,
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
    ref_scores = predict(load_model(reference), X[TEST])
    np.testing.assert_array_equal(predict(load_model(resumed), X[TEST]), ref_scores)


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
        predict(load_model(fresh), X[TEST]), predict(load_model(reference), X[TEST])
    )


def test_unreadable_checkpoint_of_same_settings_starts_again(
    reference: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "state"
    from dlpipe.train import fingerprint

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
    one, two = predict(load_model(reference), X[TEST]), predict(load_model(ddp), X[TEST])
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
