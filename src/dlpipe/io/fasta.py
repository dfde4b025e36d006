"""FASTA files through pysam: a reference genome (indexed on demand) or records of sequences."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pysam

from dlpipe.errors import InputError
from dlpipe.io.labels import labels_path, read_labels

log = logging.getLogger(__name__)


def open_fasta(path: str | Path, cache_dir: str | Path | None = None) -> Any:
    """Open a reference FASTA with pysam, building its index if needed.

    Parameters
    ----------
    path
        Plain or bgzip-compressed FASTA.
    cache_dir
        Writable folder for the index when the FASTA's own folder is read-only.

    Returns
    -------
    pysam.FastaFile
        The open FASTA.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: reference FASTA not found; check data.genome in the config")
    target = path
    has_index = Path(f"{path}.fai").is_file()
    if not has_index and not os.access(path.parent, os.W_OK):
        if cache_dir is None:
            raise InputError(
                f"{path}: no .fai index and its folder is read-only; index it with "
                "`samtools faidx` or give a writable cache folder"
            )
        cache = Path(cache_dir)
        cache.mkdir(parents=True, exist_ok=True)
        target = cache / path.name
        if not target.exists():
            target.symlink_to(path.resolve())
        log.info("indexing %s in %s (its folder is read-only)", path, cache)
    try:
        return pysam.FastaFile(str(target))
    except (OSError, ValueError) as err:
        hint = ""
        if path.suffix in (".gz", ".bgz"):
            hint = "; a compressed FASTA must be bgzip-compressed (bgzip -c file.fa > file.fa.gz)"
        raise InputError(f"{path}: cannot be opened or indexed as FASTA ({err}){hint}") from None


def read_fasta_records(path: str | Path, key: str = "data.fasta") -> list[tuple[str, str]]:
    """Headers (name and comment) and sequences of a FASTA file (plain or gzip), via pysam.

    ``key`` names the config key or option that gave the path, for the error messages.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: FASTA not found; check {key}")
    records = []
    try:
        with pysam.FastxFile(str(path)) as handle:
            for record in handle:
                header = record.name + (f" {record.comment}" if record.comment else "")
                records.append((header, record.sequence or ""))
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: not a readable FASTA file ({err})") from None
    if not records:
        raise InputError(f"{path}: the FASTA holds no sequences")
    empty = [(i, header) for i, (header, sequence) in enumerate(records, 1) if not sequence]
    if empty:
        shown = ", ".join(f"record {i} (>{header})" for i, header in empty[:3])
        more = f" and {len(empty) - 3} more" if len(empty) > 3 else ""
        raise InputError(
            f"{path}: {shown}{more} has no sequence; it would be read as a sequence of N's. "
            "Remove the empty record(s) or give their sequence"
        )
    return records


def read_labelled_fasta(
    path: str | Path, label_file: str | Mapping[str, Any] | None = None
) -> tuple[list[str], list[str], list[str]]:
    """Read ids, sequences and labels of a FASTA whose labels follow ``|`` in the header.

    With ``label_file`` (``data.labels``: a two-column file without header, or
    ``{path, id_column, label_column}``; :func:`dlpipe.io.labels.read_labels`) the labels come
    from that file instead.

    Returns
    -------
    tuple of lists
        ids (header up to ``|`` or whitespace), sequences, labels.
    """
    ids, seqs, labels = [], [], []
    for header, sequence in read_fasta_records(path, "data.fasta"):
        head, _, label = header.partition("|")
        ids.append(head.split()[0])
        seqs.append(sequence)
        labels.append(label.strip())
    if label_file is not None:
        mapping = read_labels(label_file, ids)
        missing = [i for i in ids if i not in mapping]
        if missing:
            raise InputError(
                f"{labels_path(label_file)}: no label for {len(missing)} of the {len(ids)} "
                f"sequences of {path}, e.g. {missing[:3]}; add a line for each"
            )
        labels = [mapping[i] for i in ids]
    unlabelled = [i for i, lab in zip(ids, labels, strict=True) if not lab]
    if unlabelled:
        raise InputError(
            f"{path}: sequence(s) {unlabelled[:3]} have no label; write headers as "
            "'>id|label' or give data.labels (a TSV of id and label)"
        )
    dup = pd.Series(ids)[pd.Series(ids).duplicated()].tolist()
    if dup:
        raise InputError(f"{path}: sequence ids appear more than once: {dup[:3]}")
    return ids, seqs, labels
