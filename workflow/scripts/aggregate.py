"""Rule aggregate: unpack the job's files, call dlpipe.pipeline.aggregate_step and figures_step."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from dlpipe.logs import step_logging
from dlpipe.pipeline import aggregate_step, figures_step

with step_logging(snakemake.log[0], list(snakemake.output)):
    aggregate_step(
        snakemake.params.exp,
        snakemake.input.metrics,
        snakemake.input.predictions,
        snakemake.input.meta,
        snakemake.output.metrics,
        snakemake.output.predictions,
        snakemake.output.config,
    )
    figures_step(
        snakemake.output.predictions,
        snakemake.input.histories,
        snakemake.input.meta,
        snakemake.output.figures,
        snakemake.input.dataset,
    )
