"""Rule compare: unpack the job's files, call dlpipe.steps.compare.compare_step."""

import sys
from pathlib import Path

# The library of this checkout when the workflow runs from one (rules, scripts and science of
# one version); the installed dlpipe when the workflow files stand alone.
SRC = Path(snakemake.scriptdir).resolve().parents[1] / "src"
if (SRC / "dlpipe").is_dir():
    sys.path.insert(0, str(SRC))

from dlpipe.steps import step_logging
from dlpipe.steps.compare import compare_step

with step_logging(snakemake.log[0], list(snakemake.output)):
    files = {
        name: {
            "metrics": snakemake.input[f"{name}_metrics"],
            "meta": snakemake.input[f"{name}_meta"],
            "folds": snakemake.input[f"{name}_folds"],
            "summaries": list(snakemake.input[f"{name}_summaries"]),
            "predictions": snakemake.input[f"{name}_predictions"],
        }
        for name in snakemake.params.experiments
    }
    compare_step(
        snakemake.params.experiments, files, snakemake.output.leaderboard, snakemake.output.pairs
    )
