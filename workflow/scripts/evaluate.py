"""Rule evaluate: calibrate_step on the validation side, then evaluate_step on the test side."""

import sys
from pathlib import Path

# The library of this checkout when the workflow runs from one (rules, scripts and science of
# one version); the installed dlpipe when the workflow files stand alone.
SRC = Path(snakemake.scriptdir).resolve().parents[1] / "src"
if (SRC / "dlpipe").is_dir():
    sys.path.insert(0, str(SRC))

from dlpipe.steps import step_logging
from dlpipe.steps.evaluate import calibrate_step, evaluate_step

with step_logging(snakemake.log[0], list(snakemake.output)):
    calibrate_step(
        snakemake.params.exp,
        int(snakemake.wildcards.fold),
        snakemake.input.val,
        snakemake.input.model,
        snakemake.input.get("baselines"),
        snakemake.input.preprocessor,
        snakemake.input.meta,
        snakemake.output.calibration,
    )
    evaluate_step(
        snakemake.params.exp,
        int(snakemake.wildcards.fold),
        snakemake.input.test,
        snakemake.input.model,
        snakemake.input.get("baselines"),
        snakemake.input.preprocessor,
        snakemake.input.meta,
        snakemake.output.predictions,
        snakemake.output.metrics,
        calibration=snakemake.output.calibration,
    )
