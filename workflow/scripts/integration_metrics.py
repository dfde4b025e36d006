"""Rule integration_metrics: unpack the job's files, call dlpipe.steps.singlecell."""

import sys
from pathlib import Path

# The library of this checkout when the workflow runs from one (rules, scripts and science of
# one version); the installed dlpipe when the workflow files stand alone.
SRC = Path(snakemake.scriptdir).resolve().parents[1] / "src"
if (SRC / "dlpipe").is_dir():
    sys.path.insert(0, str(SRC))

from dlpipe.steps import step_logging
from dlpipe.steps.singlecell import integration_metrics_step

with step_logging(snakemake.log[0], list(snakemake.output)):
    integration_metrics_step(
        snakemake.params.exp,
        snakemake.input.adata,
        snakemake.output.scib,
        snakemake.output.umap,
        snakemake.output.verdict,
    )
