r"""Build the antimicrobial-peptide data: AMPs of APD3 against random UniProt peptides.

Writes ``amp_vs_uniprot.fa.gz`` into the output folder (default: this script's folder) from the
``modlamp`` 4.3.3 wheel (``modlamp/data/AMPvsUniProt.csv``: 2,600 APD3 antimicrobial peptides,
label 1, and 2,600 UniProt peptides of length 10-50, label 0). Each distinct sequence is kept
once, in its first position; sequences listed under both labels are dropped (they cannot be
labelled). Headers ``>ampNNNN|AMP`` or ``>uniNNNN|UniProt``, numbered by the row of the source.

    pip download --no-deps modlamp==4.3.3
    python resources/make_protein_resources.py modlamp-4.3.3-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import logging
import zipfile
from pathlib import Path

log = logging.getLogger("make_protein_resources")

WHEEL_SHA256 = "6948bcbc4a9614d10b6b47a051d4576c42fe8e5487fbbeb3cfe0d8033eb27f91"
MEMBER = "modlamp/data/AMPvsUniProt.csv"
LABELS = {"1": ("amp", "AMP"), "0": ("uni", "UniProt")}
AMINO_ACIDS = set("ACDEFGHIKLMNPQRSTVWY")


def records_from_wheel(wheel: Path) -> tuple[list[tuple[str, str, str]], dict[str, int]]:
    """Return ``(id, label, sequence)`` of every kept peptide and the counts of what was dropped."""
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise ValueError(f"{wheel}: sha256 {digest}, expected {WHEEL_SHA256} (modlamp 4.3.3)")
    with zipfile.ZipFile(wheel) as archive:
        lines = archive.read(MEMBER).decode("ascii").splitlines()
    header = lines[0].split(",")
    if header[2:] != ["UniProt", "AMP"] or int(header[0]) != len(lines) - 1:
        raise ValueError(f"{MEMBER}: unexpected header {lines[0]!r}")
    rows = []
    for row, line in enumerate(lines[1:], 1):
        sequence, label = (part.strip() for part in line.split(","))
        if label not in LABELS or not sequence or set(sequence) - AMINO_ACIDS:
            raise ValueError(f"{MEMBER}: line {row + 1}: unexpected record {line!r}")
        rows.append((row, label, sequence))
    labels_of: dict[str, set[str]] = {}
    for _, label, sequence in rows:
        labels_of.setdefault(sequence, set()).add(label)
    seen: set[str] = set()
    records = []
    dropped = {"repeated": 0, "under_both_labels": 0}
    for row, label, sequence in rows:
        if len(labels_of[sequence]) > 1:
            dropped["under_both_labels"] += 1
            continue
        if sequence in seen:
            dropped["repeated"] += 1
            continue
        seen.add(sequence)
        prefix, name = LABELS[label]
        records.append((f"{prefix}{row:04d}", name, sequence))
    return records, dropped


def main() -> None:
    """Write amp_vs_uniprot.fa.gz from the modlamp wheel given on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help="modlamp-4.3.3-py3-none-any.whl")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    records, dropped = records_from_wheel(args.wheel)
    text = "".join(f">{rid}|{label}\n{seq}\n" for rid, label, seq in records)
    path = args.out / "amp_vs_uniprot.fa.gz"
    # mtime=0: the same input gives the same bytes.
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        out.write(text.encode("ascii"))
    counts = {name: sum(r[1] == name for r in records) for _, name in LABELS.values()}
    log.info("%s: %d peptides (%s); dropped %s", path, len(records), counts, dropped)


if __name__ == "__main__":
    main()
