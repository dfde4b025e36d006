"""Rule integrate: unpack the job's files, call dlpipe.steps.singlecell.integrate_step."""

import sys
from pathlib import Path

# The library of this checkout when the workflow runs from one (rules, scripts and science of
# one version); the installed dlpipe when the workflow files stand alone.
SRC = Path(snakemake.scriptdir).resolve().parents[1] / "src"
if (SRC / "dlpipe").is_dir():
    sys.path.insert(0, str(SRC))

from dlpipe.steps import step_logging
from dlpipe.steps.singlecell import integrate_step

with step_logging(snakemake.log[0], [snakemake.output.adata, snakemake.output.summary]):
    integrate_step(
        snakemake.wildcards.exp,
        snakemake.params.exp,
        dict(snakemake.output.items()),
        threads=snakemake.threads,
        # With remote storage the counts are staged at a local path other than the config's.
        inputs=list(snakemake.input.counts),
    )
