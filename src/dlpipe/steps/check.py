"""``dlpipe check``: would a run start? The config, every input file, every experiment's data.

Not a rule: the command line runs it in seconds, through the same checks as the Snakefile
(:func:`dlpipe.config.validate_config`, :func:`dlpipe.workflow.check_inputs`) and as the
prepare step (each modality's :meth:`~dlpipe.modalities.base.Modality.describe_data`).
"""

from __future__ import annotations

from pathlib import Path

from dlpipe.config import validate_config
from dlpipe.modalities import modality_of
from dlpipe.schema import load_yaml
from dlpipe.workflow import check_inputs


def check_step(config_path: str | Path) -> list[str]:
    """Validate a config file and each experiment's data; return one summary line each.

    Raises
    ------
    dlpipe.errors.DlpipeError
        The first problem found, naming the key or the file and line.
    """
    config = validate_config(load_yaml(config_path))
    check_inputs(config)
    return [
        modality_of(exp).describe_data(name, exp) for name, exp in config["experiments"].items()
    ]
