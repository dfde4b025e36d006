"""Rule predict: unpack the job's files, call dlpipe.steps.predict.predict_step."""

import sys
from pathlib import Path

# The library of this checkout when the workflow runs from one (rules, scripts and science of
# one version); the installed dlpipe when the workflow files stand alone.
SRC = Path(snakemake.scriptdir).resolve().parents[1] / "src"
if (SRC / "dlpipe").is_dir():
    sys.path.insert(0, str(SRC))

from dlpipe.steps import step_logging
from dlpipe.steps.predict import predict_step

with step_logging(snakemake.log[0], list(snakemake.output)):
    predict_step(
        snakemake.params.exp,
        snakemake.params.job,
        snakemake.input.meta,
        list(snakemake.input.models),
        list(snakemake.input.preprocessors),
        list(snakemake.input.get("calibrations", [])),
        snakemake.output[0],
        snakemake.input.manifest,
    )
