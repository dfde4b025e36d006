"""Remote storage: inputs read from and results written to S3 (a local moto server)."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BUCKET, PREFIX = "dlpipe-test", "run"
#: Credentials of the local test server (moto accepts any).
KEY, SECRET = "dlpipe-test-key", "dlpipe-test-secret"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[tuple[Any, str]]:
    """A moto S3 server on a free loopback port with an empty bucket: (client, endpoint)."""
    boto3 = pytest.importorskip("boto3")
    from botocore.exceptions import ConnectionClosedError, EndpointConnectionError

    server_bin = Path(sys.executable).parent / "moto_server"
    if not server_bin.exists():
        pytest.skip("moto_server is not installed next to this Python (pip install '.[dev]')")
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with (tmp_path / "moto.log").open("w") as log:
        server = subprocess.Popen([str(server_bin), "-H", "127.0.0.1", "-p", str(port)],
                                  stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=KEY,
                              aws_secret_access_key=SECRET, region_name="us-east-1")  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                client.create_bucket(Bucket=BUCKET)
                break
            except (EndpointConnectionError, ConnectionClosedError):  # still starting
                assert server.poll() is None, (tmp_path / "moto.log").read_text()
                assert time.monotonic() < deadline, "moto server did not start"
                time.sleep(0.2)
        yield client, endpoint
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.mark.workflow
def test_workflow_reads_inputs_from_and_writes_results_to_s3(
    s3: tuple[Any, str], tmp_path: Path
) -> None:
    client, endpoint = s3
    rng = np.random.default_rng(5)
    x = rng.normal(size=(80, 4))
    table = pd.DataFrame(x, columns=["g0", "g1", "g2", "g3"])
    table.insert(0, "sample", [f"S{i:02d}" for i in range(80)])
    table["state"] = np.where(x[:, 0] + 0.3 * rng.normal(size=80) > 0, "case", "control")
    client.put_object(Bucket=BUCKET, Key=f"{PREFIX}/data/cls.csv",
                      Body=table.to_csv(index=False).encode())  # fmt: skip
    config = {"experiments": {"cls": {
        "task": "classification",
        "data": {"path": "data/cls.csv", "id_column": "sample", "label_column": "state"},
        "model": {"name": "mlp", "hidden_layers": [8]},
        "training": {"max_epochs": 3, "patience": 2, "device": "cpu", "progress_bar": False},
        "resources": {"threads": 1},
        "baseline": {"enabled": False},
        "cv": {"plan": "holdout"},  # one fold: few jobs
    }}}  # fmt: skip
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
           "--directory", str(tmp_path), "--cores", "2", "--configfile", "config.yaml",
           "--default-storage-provider", "s3", "--default-storage-prefix", f"s3://{BUCKET}/{PREFIX}",
           "--storage-s3-endpoint-url", endpoint, "--storage-s3-access-key", KEY,
           "--storage-s3-secret-key", SECRET]  # fmt: skip
    run = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr[-4000:]

    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/results/")
    keys = {item["Key"].removeprefix(f"{PREFIX}/") for item in listed.get("Contents", [])}
    assert {"results/cls/0/model.ckpt", "results/cls/0/metrics.json", "results/cls/metrics.tsv",
            "results/cls/oof_predictions.tsv", "results/report.html",
            "results/cls/figures/roc_pr.png"} <= keys  # fmt: skip

    def table(key: str) -> pd.DataFrame:
        body = client.get_object(Bucket=BUCKET, Key=f"{PREFIX}/results/cls/{key}")["Body"]
        return pd.read_csv(io.BytesIO(body.read()), sep="\t")

    metrics = table("metrics.tsv").set_index(["learner", "metric"])
    assert 0 <= metrics.loc[("mlp", "auroc"), "fold_0"] <= 1
    assert {"fold_0", "mean", "pooled"} <= set(metrics.columns)
    # Every test sample of the holdout split has its out-of-fold prediction.
    folds = table("folds.tsv")
    test_ids = set(folds.loc[folds["set"] == "test", "id"])
    assert len(test_ids) == 16
    assert set(table("oof_predictions.tsv")["id"]) == test_ids
    # The input was never in the working folder: the job read the staged copy from S3.
    assert not (tmp_path / "data").exists()
    provenance = client.get_object(Bucket=BUCKET, Key=f"{PREFIX}/results/cls/provenance.json")
    assert "cls.csv" in provenance["Body"].read().decode()
