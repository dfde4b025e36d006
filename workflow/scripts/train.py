"""Rule train: unpack the job's files, call dlpipe.pipeline.train_step."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from dlpipe.logs import step_logging
from dlpipe.pipeline import train_step

with step_logging(snakemake.log[0], list(snakemake.output)):
    train_step(
        snakemake.params.exp,
        snakemake.input.train,
        snakemake.input.val,
        snakemake.input.preprocessor,
        snakemake.input.meta,
        snakemake.output.model,
        snakemake.output.history,
        threads=snakemake.threads,
        state_dir=snakemake.params.state,
    )
