"""Rule preprocess: unpack the job's files, call dlpipe.pipeline.preprocess_step."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from dlpipe.logs import step_logging
from dlpipe.pipeline import preprocess_step

with step_logging(snakemake.log[0], list(snakemake.output)):
    preprocess_step(
        snakemake.params.exp,
        int(snakemake.wildcards.fold),
        snakemake.input.dataset,
        snakemake.input.meta,
        snakemake.input.folds,
        dict(snakemake.output.items()),
    )
