"""Rule integration_metrics: unpack the job's files, call dlpipe.singlecell."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from dlpipe.logs import step_logging
from dlpipe.singlecell import integration_metrics_step

with step_logging(snakemake.log[0], list(snakemake.output)):
    integration_metrics_step(
        snakemake.params.exp,
        snakemake.input.adata,
        snakemake.output.scib,
        snakemake.output.umap,
    )
