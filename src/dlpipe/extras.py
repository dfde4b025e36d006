"""Optional parts of dlpipe and the packages they need.

``pip install dlpipe`` holds what a table needs (PyTorch, Lightning, scikit-learn, pandas,
anndata, captum). Sequences, single cells, the motif search of sequence interpretation, the
UMAP of the VAE embedding, images, graphs and the Snakemake workflow each need more;
they are the extras of ``pyproject.toml``. A config that needs a missing extra is refused
before any job, with the ``pip install`` line that fixes it, instead of an ``ImportError``
half-way through a run.
"""

from __future__ import annotations

from importlib.util import find_spec

from dlpipe.errors import ConfigError

#: Extra → the modules it installs (import names; kept equal to pyproject by a test).
EXTRAS: dict[str, tuple[str, ...]] = {
    "sequence": ("pysam", "numba"),
    "singlecell": ("scanpy", "scvi", "scib_metrics", "harmonypy", "skmisc", "igraph"),
    "motifs": ("logomaker", "pyjaspar", "Bio", "memelite", "tangermeme"),
    "embed": ("scanpy",),
    "image": ("monai", "tifffile", "PIL"),
    "graph": ("torch_geometric", "umap"),
    "workflow": ("snakemake",),
}


def missing(extra: str) -> list[str]:
    """Modules of ``extra`` that cannot be imported here (found without importing them)."""
    return [name for name in EXTRAS[extra] if find_spec(name) is None]


def require(extra: str, key: str, what: str) -> None:
    """Fail with the install line when the modules of ``extra`` are missing.

    Parameters
    ----------
    extra
        Name of the extra (a key of :data:`EXTRAS`).
    key
        The config key that asks for it, for the message.
    what
        What needs it, e.g. ``sequence experiments``.

    Raises
    ------
    ConfigError
        Naming the key, the missing modules and ``pip install 'dlpipe[extra]'``.
    """
    absent = missing(extra)
    if absent:
        raise ConfigError(
            f"config key {key}: {what} need the optional dependencies dlpipe[{extra}] "
            f"({', '.join(absent)} not installed); install them with "
            f"pip install 'dlpipe[{extra}]'"
        )
