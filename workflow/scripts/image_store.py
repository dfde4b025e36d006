"""Rule image_store: unpack the job's files, call dlpipe.steps.image.image_store_step."""

import sys
from pathlib import Path

# The library of this checkout when the workflow runs from one (rules, scripts and science of
# one version); the installed dlpipe when the workflow files stand alone.
SRC = Path(snakemake.scriptdir).resolve().parents[1] / "src"
if (SRC / "dlpipe").is_dir():
    sys.path.insert(0, str(SRC))

from dlpipe.steps import step_logging
from dlpipe.steps.image import image_store_step

with step_logging(snakemake.log[0], list(snakemake.output)):
    image_store_step(
        snakemake.wildcards.exp,
        snakemake.params.exp,
        snakemake.output.store,
        # With remote storage the inputs are staged at local paths other than the config's.
        inputs=list(snakemake.input.data),
    )
