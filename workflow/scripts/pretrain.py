"""Rule pretrain: unpack the job's files, call dlpipe.steps.image.pretrain_step."""

import sys
from pathlib import Path

# The library of this checkout when the workflow runs from one (rules, scripts and science of
# one version); the installed dlpipe when the workflow files stand alone.
SRC = Path(snakemake.scriptdir).resolve().parents[1] / "src"
if (SRC / "dlpipe").is_dir():
    sys.path.insert(0, str(SRC))

from dlpipe.steps import step_logging
from dlpipe.steps.image import pretrain_step

with step_logging(snakemake.log[0], list(snakemake.output)):
    pretrain_step(
        snakemake.wildcards.exp,
        snakemake.params.exp,
        snakemake.output.backbone,
        snakemake.output.summary,
        threads=snakemake.threads,
    )
