"""Rule compare: unpack the job's files, call dlpipe.compare.compare_step."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from dlpipe.compare import compare_step
from dlpipe.logs import step_logging

with step_logging(snakemake.log[0], list(snakemake.output)):
    files = {
        name: {
            "metrics": snakemake.input[f"{name}_metrics"],
            "meta": snakemake.input[f"{name}_meta"],
            "folds": snakemake.input[f"{name}_folds"],
            "summaries": list(snakemake.input[f"{name}_summaries"]),
        }
        for name in snakemake.params.experiments
    }
    compare_step(
        snakemake.params.experiments, files, snakemake.output.leaderboard, snakemake.output.pairs
    )
