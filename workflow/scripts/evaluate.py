"""Rule evaluate: calibrate_step on the validation side, then evaluate_step on the test side."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from dlpipe.calibrate import calibrate_step
from dlpipe.logs import step_logging
from dlpipe.pipeline import evaluate_step

with step_logging(snakemake.log[0], list(snakemake.output)):
    calibrate_step(
        snakemake.params.exp,
        int(snakemake.wildcards.fold),
        snakemake.input.val,
        snakemake.input.model,
        snakemake.input.get("baseline"),
        snakemake.input.preprocessor,
        snakemake.input.meta,
        snakemake.output.calibration,
    )
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
        calibration=snakemake.output.calibration,
    )
