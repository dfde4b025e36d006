"""Rule embedding: unpack the job's files, call dlpipe.embed.embedding_summary_step."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from dlpipe.embed import embedding_summary_step
from dlpipe.logs import step_logging

with step_logging(snakemake.log[0], list(snakemake.output)):
    embedding_summary_step(
        snakemake.params.exp,
        snakemake.input.reconstruction,
        snakemake.input.embedding,
        snakemake.input.dataset,
        snakemake.input.meta,
        snakemake.output.reconstruction,
        snakemake.output.umap,
    )
