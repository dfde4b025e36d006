"""Rule integrate: unpack the job's files, call dlpipe.singlecell.integrate_step."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from dlpipe.logs import step_logging
from dlpipe.singlecell import integrate_step
from dlpipe.workflow import with_local_inputs

with step_logging(snakemake.log[0], [snakemake.output.adata, snakemake.output.summary]):
    integrate_step(
        snakemake.wildcards.exp,
        # With remote storage the counts are staged at a local path other than the config's.
        with_local_inputs(snakemake.params.exp, snakemake.input.counts),
        dict(snakemake.output.items()),
        threads=snakemake.threads,
    )
