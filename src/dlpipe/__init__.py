"""dlpipe: cross-validated deep learning for biological data.

The library holds the science of the Snakemake workflow in the repository root and is usable
without it. Its layers import downward only (import-linter's contracts in ``pyproject.toml``):
``steps`` (one module per rule file) on top, then ``report``, ``config``, ``learners`` and
``workflow``, then ``modalities`` (one module per kind of data) and ``tasks``, then the science
(preprocess, split, train, calibrate, metrics, interpret, …), then ``models`` and ``io``, then
the base (``schema``, ``errors``, …). Heavy libraries load where they are used, so light jobs and
the Snakefile's config check start fast.
"""

from dlpipe.errors import ConfigError, DlpipeError, InputError

__version__ = "0.1.0"

__all__ = ["ConfigError", "DlpipeError", "InputError", "__version__"]
