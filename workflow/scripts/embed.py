"""Rule embed: unpack the job's files, call dlpipe.embed.embed_step."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from dlpipe.embed import embed_step
from dlpipe.logs import step_logging

with step_logging(snakemake.log[0], list(snakemake.output)):
    embed_step(
        snakemake.params.exp,
        int(snakemake.wildcards.fold),
        dict(snakemake.input.items()),
        dict(snakemake.output.items()),
        threads=snakemake.threads,
    )
