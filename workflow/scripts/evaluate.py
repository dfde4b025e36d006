"""Rule evaluate: unpack the job's files, call dlpipe.pipeline.evaluate_step."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from dlpipe.logs import step_logging
from dlpipe.pipeline import evaluate_step

with step_logging(snakemake.log[0], list(snakemake.output)):
    evaluate_step(
        snakemake.params.exp,
        int(snakemake.wildcards.fold),
        snakemake.input.test,
        snakemake.input.model,
        snakemake.input.get("baseline"),
        snakemake.input.preprocessor,
        snakemake.input.meta,
        snakemake.output.predictions,
        snakemake.output.metrics,
        calibration=snakemake.input.get("calibration"),
    )
