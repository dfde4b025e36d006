# dlpipe: cross-validated deep learning for biological data.
#
# snakemake --cores 4                         run the experiments of config/config.yaml
# snakemake --cores 4 --configfile my.yaml    run your own experiments instead
import os
import sys

from snakemake.utils import min_version, validate

min_version("9.17")

# The library of this checkout when the workflow runs from one (rules, scripts and science of
# one version); the installed dlpipe when the workflow files stand alone.
if (Path(workflow.basedir) / "src" / "dlpipe").is_dir():
    sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from dlpipe.config import validate_config  # noqa: E402
from dlpipe.errors import DlpipeError  # noqa: E402
from dlpipe.schema import load_yaml, schema_path  # noqa: E402
from dlpipe.workflow import DAMAGED_ENV, check_inputs, damaged_warnings  # noqa: E402

# A --configfile replaces the demo instead of being merged into it.
if not config:

    configfile: "config/config.yaml"


# Stop before any job with one message naming the key or file at fault.
try:
    # Snakemake's YAML reading keeps the last of two equal keys; dlpipe's refuses them.
    for path in workflow.configfiles:
        load_yaml(path)
    validate_config(config)
    # Inputs in remote storage (--default-storage-provider) are checked when staged; the jobs
    # of a cluster run the Snakefile again and need not look for them a second time.
    if (
        workflow.storage_settings.default_storage_provider is None
        and workflow.is_main_process
    ):
        check_inputs(config)
except DlpipeError as error:
    sys.exit(f"dlpipe error: {error}")
# A fold checkpoint damaged since training: dlpipe run retrains it (--forcerun); plain
# Snakemake is told how.
if workflow.is_main_process and not os.environ.get(DAMAGED_ENV):
    for line in damaged_warnings("results", config["experiments"]):
        print(line, file=sys.stderr)
validate(config, str(schema_path()))


include: "rules/common.smk"
include: "rules/prepare.smk"
include: "rules/split.smk"
include: "rules/preprocess.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/interpret.smk"
include: "rules/compare.smk"
include: "rules/predict.smk"
include: "rules/report.smk"
include: "rules/singlecell.smk"
include: "rules/embed.smk"
include: "rules/image.smk"


rule all:
    default_target: True
    input:
        "results/report.html",
        prediction_targets,
