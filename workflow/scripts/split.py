"""Rule split: unpack the job's files, call dlpipe.pipeline.split_step."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from dlpipe.logs import step_logging
from dlpipe.pipeline import split_step

with step_logging(snakemake.log[0], list(snakemake.output)):
    split_step(
        snakemake.params.exp, snakemake.input.dataset, snakemake.input.meta, snakemake.output.folds
    )
