"""Rule interpret: unpack the job's files, call dlpipe.interpret.interpret_step."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from dlpipe.interpret import interpret_step
from dlpipe.logs import step_logging

with step_logging(snakemake.log[0], list(snakemake.output)):
    interpret_step(
        snakemake.params.exp,
        snakemake.input.dataset,
        snakemake.input.meta,
        snakemake.input.folds,
        list(snakemake.input.get("predictions", [])),
        list(snakemake.input.models),
        list(snakemake.input.preprocessors),
        snakemake.output[0],
        threads=snakemake.threads,
    )
