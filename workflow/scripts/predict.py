"""Rule predict: unpack the job's files, call dlpipe.predict.predict_step."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from dlpipe.logs import step_logging
from dlpipe.predict import predict_step

with step_logging(snakemake.log[0], list(snakemake.output)):
    predict_step(
        snakemake.params.exp,
        snakemake.params.job,
        snakemake.input.meta,
        list(snakemake.input.models),
        list(snakemake.input.preprocessors),
        list(snakemake.input.get("calibrations", [])),
        snakemake.output[0],
    )
