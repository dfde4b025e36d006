# dlpipe: cross-validated deep learning for biological data.
#
# snakemake --cores 4                         run the experiments of config/config.yaml
# snakemake --cores 4 --configfile my.yaml    run your own experiments instead
import sys

from snakemake.utils import min_version, validate

min_version("9.0")

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from dlpipe.config import DEFAULT_SCHEMA, validate_config  # noqa: E402
from dlpipe.errors import DlpipeError  # noqa: E402
from dlpipe.workflow import check_inputs  # noqa: E402

# A --configfile replaces the demo instead of being merged into it.
if not config:

    configfile: "config/config.yaml"


# Stop before any job with one message naming the key or file at fault.
try:
    validate_config(config, DEFAULT_SCHEMA)
    # Inputs in remote storage (--default-storage-provider) are checked when staged.
    if workflow.storage_settings.default_storage_provider is None:
        check_inputs(config)
except DlpipeError as error:
    sys.exit(f"dlpipe error: {error}")
validate(config, str(DEFAULT_SCHEMA))


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


rule all:
    default_target: True
    input:
        "results/report.html",
        prediction_targets,
