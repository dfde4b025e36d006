"""Rule report: unpack the job's files, call dlpipe.pipeline.report_step."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from dlpipe.logs import step_logging
from dlpipe.pipeline import report_step

with step_logging(snakemake.log[0], list(snakemake.output)):
    report_step(
        snakemake.params.experiments,
        dict(snakemake.input.items()),
        snakemake.params.title,
        snakemake.output[0],
    )
