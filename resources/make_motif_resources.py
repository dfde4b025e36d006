r"""Build the reference CRP motif of the sequence demo: ``ecoli_crp_regulondb.jaspar``.

No JASPAR release shipped with pyjaspar (2014-2026) holds a prokaryotic matrix, so the E. coli
CRP motif that the demo's learned motifs are matched against is built here: the base counts of
the 358 aligned 26-bp RegulonDB CRP sites shipped with logomaker
(``logomaker/examples/datafiles/crp_sites.fa``, MIT licence), written in JASPAR format.

    .venv/bin/python resources/make_motif_resources.py            # from the installed logomaker
    .venv/bin/python resources/make_motif_resources.py logomaker-0.8.7-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import logging
import zipfile
from pathlib import Path

import numpy as np

log = logging.getLogger("make_motif_resources")

SITES_MEMBER = "logomaker/examples/datafiles/crp_sites.fa"
BASES = "ACGT"


def read_sites(source: Path | None) -> list[str]:
    """Return the sequences of ``crp_sites.fa``, from a logomaker wheel or the installed package."""
    if source is None:
        import logomaker

        text = (Path(logomaker.__file__).parent / "examples/datafiles/crp_sites.fa").read_text()
    else:
        with zipfile.ZipFile(source) as archive:
            text = archive.read(SITES_MEMBER).decode("utf-8")
    sites, header = [], False
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(">"):
            header = True
        elif header:
            sites.append(line.upper())
            header = False
    return sites


def write_jaspar_counts(sites: list[str], path: Path, matrix_id: str, name: str) -> None:
    """Write the base counts per position of equal-length sites in JASPAR format."""
    length = len(sites[0])
    if any(len(s) != length for s in sites):
        raise ValueError("sites differ in length")
    counts = np.zeros((4, length), dtype=int)
    for site in sites:
        for j, base in enumerate(site):
            counts[BASES.index(base), j] += 1
    lines = [f">{matrix_id} {name}"]
    for b, base in enumerate(BASES):
        lines.append(f"{base} [ " + " ".join(f"{c:4d}" for c in counts[b]) + " ]")
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", nargs="?", type=Path, help="logomaker wheel (default: installed)")
    parser.add_argument("-o", "--outdir", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sites = read_sites(args.wheel)
    out = args.outdir / "ecoli_crp_regulondb.jaspar"
    write_jaspar_counts(sites, out, "RegulonDB_CRP", "CRP")
    log.info("%s: %d sites of %d bp", out, len(sites), len(sites[0]))


if __name__ == "__main__":
    main()
