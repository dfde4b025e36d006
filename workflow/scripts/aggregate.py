"""Rule aggregate: unpack the job's files, call dlpipe.steps.evaluate's aggregate and figures."""

import sys
from pathlib import Path

# The library of this checkout when the workflow runs from one (rules, scripts and science of
# one version); the installed dlpipe when the workflow files stand alone.
SRC = Path(snakemake.scriptdir).resolve().parents[1] / "src"
if (SRC / "dlpipe").is_dir():
    sys.path.insert(0, str(SRC))

from dlpipe.steps import step_logging
from dlpipe.steps.evaluate import aggregate_step, figures_step

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
        snakemake.params.exp,
        snakemake.output.predictions,
        snakemake.input.histories,
        snakemake.input.meta,
        snakemake.output.figures,
        snakemake.input.dataset,
    )
