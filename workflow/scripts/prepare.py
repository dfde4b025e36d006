"""Rule prepare: unpack the job's files, call dlpipe.pipeline.prepare_step."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from dlpipe.logs import step_logging
from dlpipe.pipeline import prepare_step
from dlpipe.workflow import with_local_inputs

with step_logging(snakemake.log[0], list(snakemake.output)):
    prepare_step(
        snakemake.wildcards.exp,
        with_local_inputs(snakemake.params.exp, snakemake.input.data),
        snakemake.output.dataset,
        snakemake.output.meta,
        snakemake.output.provenance,
        snakemake.params.workdir,
        integrated=snakemake.input.get("integrated") or None,
    )
