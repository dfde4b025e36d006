"""Resource hints for the workflow's jobs: memory and run time from the size of their inputs.

Schedulers (SLURM, Kubernetes, Google Batch) place a job by what it asks for, so a job should ask
for about what it uses: too little and it is killed, too much and it waits for a node it does
not need. Each step's memory is a fixed part (the Python process with its libraries) plus a
multiple of its input size (the arrays it builds from them). The fixed parts hold 2–4 times the
resident memory measured on small data (``max_rss`` in ``benchmarks/runs/``: 200–250 MB for
prepare, split, preprocess and baseline, 390 MB for evaluate, 510 MB for training); the
factors allow for compressed tables growing about tenfold when parsed and for the copies each
step makes. A retry on a cluster (``--retries``) multiplies memory and run time by the attempt
number, so an underestimate costs one resubmission.

The rules call these through the input functions of ``rules/common.smk``; a training job's
``resources`` config section overrides the hint.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

#: Per step: (fixed MB, MB per MB of input). Tables and genomes arrive compressed and grow
#: about tenfold when parsed; training holds torch and Lightning (about 1 GB resident) and its
#: tensors, gradients and optimiser state.
MEMORY_MB: dict[str, tuple[int, float]] = {
    "prepare": (1000, 30.0),
    "split": (500, 4.0),
    "preprocess": (1000, 10.0),
    "train": (2000, 8.0),
    "baseline": (1000, 10.0),
    "evaluate": (1500, 4.0),
    "aggregate": (1000, 4.0),
    "report": (1000, 2.0),
}

#: Per step: (fixed minutes, minutes per MB of input), for steps whose run time grows with the
#: data (training takes ``resources.runtime`` of its experiment instead).
RUNTIME_MIN: dict[str, tuple[int, float]] = {
    "prepare": (10, 1.0),
    "split": (5, 0.1),
    "preprocess": (10, 0.5),
    "baseline": (10, 1.0),
    "evaluate": (10, 0.2),
    "aggregate": (10, 0.2),
    "report": (10, 0.1),
}


def memory_mb(step: str, input_mb: float, attempt: int = 1, override: int | None = None) -> int:
    """Memory (MB) a job of ``step`` asks for.

    Parameters
    ----------
    step
        Workflow step (a key of :data:`MEMORY_MB`).
    input_mb
        Total size of the job's input files in MB.
    attempt
        Snakemake's attempt number (1 on the first try).
    override
        A value from the config that replaces the estimate (still scaled by attempt).

    Returns
    -------
    int
        Megabytes, rounded up.
    """
    if override is None:
        fixed, per_mb = MEMORY_MB[step]
        override = math.ceil(fixed + per_mb * input_mb)
    return int(override) * attempt


def runtime_min(step: str, input_mb: float, attempt: int = 1) -> int:
    """Minutes a job of ``step`` may run, from its input size, scaled by the attempt number."""
    fixed, per_mb = RUNTIME_MIN[step]
    return math.ceil(fixed + per_mb * input_mb) * attempt


def gpu_request(exp: Mapping[str, Any]) -> int:
    """GPUs a training job asks the scheduler for.

    ``resources.gpu`` when set; otherwise ``training.devices`` for ``device: gpu`` and none for
    ``cpu`` or ``auto`` (so a CPU-only cluster never waits for a GPU it does not have).
    """
    asked = exp["resources"].get("gpu")
    if asked is not None:
        return int(asked)
    training = exp["training"]
    return int(training["devices"]) if training["device"] == "gpu" else 0
