"""Rule embed: unpack the job's files, call dlpipe.steps.embed.embed_step."""

import sys
from pathlib import Path

# The library of this checkout when the workflow runs from one (rules, scripts and science of
# one version); the installed dlpipe when the workflow files stand alone.
SRC = Path(snakemake.scriptdir).resolve().parents[1] / "src"
if (SRC / "dlpipe").is_dir():
    sys.path.insert(0, str(SRC))

from dlpipe.steps import step_logging
from dlpipe.steps.embed import embed_step

with step_logging(snakemake.log[0], list(snakemake.output)):
    embed_step(
        snakemake.params.exp,
        int(snakemake.wildcards.fold),
        dict(snakemake.input.items()),
        dict(snakemake.output.items()),
        threads=snakemake.threads,
    )
