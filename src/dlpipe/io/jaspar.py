"""Motif matrices: JASPAR releases read offline through pyjaspar, and JASPAR-format files.

:class:`Motif` holds a position probability matrix (PPM, ``(length, 4)`` over A, C, G, T) with
a name, its source and optional contribution weights. :func:`load_jaspar` reads a JASPAR release
offline (the SQLite databases ship inside pyjaspar); :func:`read_jaspar_file` reads further
motifs with Biopython (JASPAR holds no prokaryotic matrices, so bacterial motifs come from such
files); :func:`write_jaspar` writes learned motifs in the same format.

pyjaspar and Biopython (``dlpipe[motifs]``) are loaded by the readers that need them: a
:class:`Motif` is made and written without them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dlpipe.errors import InputError

log = logging.getLogger(__name__)

BASES = "ACGT"


@dataclass
class Motif:
    """A DNA motif.

    Attributes
    ----------
    id
        Identifier (JASPAR matrix id, or a dlpipe name such as ``attribution_1``).
    name
        Human-readable name (the transcription factor for JASPAR profiles).
    ppm
        ``(length, 4)`` probabilities of A, C, G, T per position (rows sum to 1).
    source
        Where it comes from (``JASPAR2024 CORE``, a file name, ``first-layer filter`` …).
    n_sites
        Sequences or windows it was built from.
    cwm
        Optional ``(length, 4)`` contribution weight matrix (mean attribution per base).
    info
        Further facts (fold, filter index, influence …).
    """

    id: str
    name: str
    ppm: np.ndarray
    source: str = ""
    n_sites: int = 0
    cwm: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def length(self) -> int:
        """Number of positions."""
        return int(self.ppm.shape[0])

    @property
    def consensus(self) -> str:
        """Most likely base per position, ``N`` where no base reaches one half."""
        best = self.ppm.argmax(axis=1)
        strong = self.ppm.max(axis=1) >= 0.5
        return "".join(BASES[b] if s else "N" for b, s in zip(best, strong, strict=True))


def ppm_from_counts(counts: np.ndarray, pseudocount: float = 0.25) -> np.ndarray:
    """Position probability matrix of ``(length, 4)`` counts, with a pseudocount per base."""
    counts = np.asarray(counts, dtype=np.float64) + pseudocount
    return counts / counts.sum(axis=1, keepdims=True)


def load_jaspar(
    release: str = "JASPAR2024", collection: str = "CORE", tax_groups: Sequence[str] = ()
) -> list[Motif]:
    """Latest version of every profile of a JASPAR release, read offline through pyjaspar.

    Parameters
    ----------
    release
        ``JASPAR2014`` … ``JASPAR2026`` (the releases pyjaspar ships).
    collection
        ``CORE`` or ``UNVALIDATED``.
    tax_groups
        Taxonomic groups to keep (``vertebrates``, ``plants`` …); empty keeps all.

    Returns
    -------
    list of Motif
        One PPM per profile (pseudocount 0.25 per base over its site counts).
    """
    from pyjaspar import jaspardb  # lazy: dlpipe[motifs], read only by the motif search

    db = jaspardb(release=release)
    if release not in db.get_releases():
        raise InputError(
            f"JASPAR release {release!r} is not shipped with pyjaspar; choose one of "
            f"{', '.join(db.get_releases())} (config key interpret.jaspar_release)"
        )
    found = db.fetch_motifs(
        collection=collection, tax_group=list(tax_groups) or None, all_versions=False
    )
    out = [_from_biopython(m, f"{release} {collection}") for m in found]
    log.info("%s %s: %d profiles", release, collection, len(out))
    return out


def _from_biopython(motif: Any, source: str) -> Motif:
    counts = np.array([[motif.counts[b][i] for b in BASES] for i in range(motif.length)])
    return Motif(
        id=str(motif.matrix_id),
        name=str(motif.name),
        ppm=ppm_from_counts(counts),
        source=source,
        n_sites=round(float(counts[0].sum())),
    )


def read_jaspar_file(path: str | Path) -> list[Motif]:
    """Read motifs from a JASPAR-format file (``>ID NAME`` then the A, C, G, T count rows)."""
    from Bio import motifs as bio_motifs  # lazy: dlpipe[motifs], read only by the motif search

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: motif file not found; check interpret.motif_files")
    try:
        with open(path) as handle:
            parsed = list(bio_motifs.parse(handle, "jaspar"))
    except (ValueError, KeyError, IndexError) as err:
        raise InputError(f"{path}: not a JASPAR-format motif file ({err})") from None
    if not parsed:
        raise InputError(f"{path}: holds no motif")
    return [_from_biopython(m, path.name) for m in parsed]


def write_jaspar(motifs: Sequence[Motif], path: str | Path, scale: int = 100) -> None:
    """Write motifs in JASPAR format; probabilities are written as counts out of ``scale``."""
    lines = []
    for motif in motifs:
        n = motif.n_sites or scale
        lines.append(f">{motif.id} {motif.name}")
        for j, base in enumerate(BASES):
            values = " ".join(f"{v:7.2f}" for v in motif.ppm[:, j] * n)
            lines.append(f"{base} [ {values} ]")
    Path(path).write_text("\n".join(lines) + "\n")
