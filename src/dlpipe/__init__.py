"""dlpipe: cross-validated deep learning for biological data.

The library is importable without Snakemake; the workflow in the repository root calls it
through thin scripts. Submodules are imported lazily by callers so that light steps (splitting,
baselines) do not pay for importing torch.
"""

from dlpipe.errors import ConfigError, DlpipeError, InputError

__version__ = "0.1.0"

__all__ = ["ConfigError", "DlpipeError", "InputError", "__version__"]
