"""BED files of intervals: columns, integer coordinates and chromosome names checked by line."""

from __future__ import annotations

import gzip
import logging
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from dlpipe.errors import InputError

log = logging.getLogger(__name__)

BED_COLUMNS = ("chrom", "start", "end", "name", "score", "strand")


def read_bed(path: str | Path) -> pd.DataFrame:
    """Read and check a BED file (3 to 12 columns; header, track and comment lines skipped).

    Parameters
    ----------
    path
        BED file (optionally gzip-compressed).

    Returns
    -------
    pandas.DataFrame
        Columns ``chrom``, ``start``, ``end``, ``name``, ``strand`` and ``summit`` (the
        narrowPeak summit offset, or -1), plus ``line`` (the line number in the file).

    Raises
    ------
    InputError
        For fewer than 3 columns, non-integer or negative coordinates, start > end, or an empty
        file, naming the line.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: BED file not found; check data.bed in the config")
    opener = gzip.open if path.suffix in (".gz", ".bgz") else open
    rows, lines = [], []
    try:
        with opener(path, "rt") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip() or line.startswith(("#", "track", "browser")):
                    continue
                fields = line.rstrip("\n\r").split("\t")
                if len(fields) < 3:
                    fields = line.split()
                if len(fields) < 3:
                    raise InputError(
                        f"{path}, line {number}: a BED line needs at least 3 tab-separated "
                        "columns (chrom, start, end)"
                    )
                rows.append(fields)
                lines.append(number)
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise InputError(
            f"{path}: the compressed file is truncated or damaged ({err}); copy or compress it "
            "again (gzip -t tests a .gz file)"
        ) from None
    except UnicodeDecodeError:
        raise InputError(
            f"{path}: not a text BED file (is it compressed without a .gz name, or binary?)"
        ) from None
    if not rows:
        raise InputError(f"{path}: the BED file holds no intervals")
    width = max(len(r) for r in rows)
    frame = pd.DataFrame([r + [""] * (width - len(r)) for r in rows])
    out = pd.DataFrame({"chrom": frame[0].astype(str)})
    for col, name in ((1, "start"), (2, "end")):
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.isna() | (values % 1 != 0)
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(
                f"{path}, line {lines[i]}: {name} {frame[col].iloc[i]!r} is not an integer"
            )
        out[name] = values.astype(np.int64)
    neg = out["start"] < 0
    if neg.any():
        i = int(np.flatnonzero(neg.to_numpy())[0])
        raise InputError(f"{path}, line {lines[i]}: start {out['start'].iloc[i]} is negative")
    swapped = out["start"] > out["end"]
    if swapped.any():
        i = int(np.flatnonzero(swapped.to_numpy())[0])
        raise InputError(
            f"{path}, line {lines[i]}: start {out['start'].iloc[i]} is after end "
            f"{out['end'].iloc[i]}; BED intervals are 0-based, half-open [start, end)"
        )
    empty = np.flatnonzero((out["start"] == out["end"]).to_numpy())
    if len(empty):
        shown = ", ".join(str(lines[i]) for i in empty[:3])
        log.warning(
            "%s: %d interval(s) have length 0 (start = end; line(s) %s%s); each is taken as the "
            "point at its start and gets a window centred there. If they are not points, fix "
            "their coordinates",
            path,
            len(empty),
            shown,
            " …" if len(empty) > 3 else "",
        )
    out["name"] = frame[3] if width > 3 else ""
    out["strand"] = frame[5].replace("", ".") if width > 5 else "."
    summit = (
        pd.to_numeric(frame[9], errors="coerce") if width > 9 else pd.Series(-1, index=frame.index)
    )
    out["summit"] = summit.fillna(-1).astype(np.int64)
    out["line"] = lines
    return out


def check_chromosomes(bed: pd.DataFrame, lengths: Mapping[str, int], source: str) -> None:
    """Check that every interval lies on a FASTA chromosome and ends inside it.

    Unknown names get a hint when only the ``chr`` prefix differs.
    """
    unknown = sorted(set(bed["chrom"]) - set(lengths))
    if unknown:
        names = list(lengths)
        hint = ""
        if any(f"chr{c}" in lengths for c in unknown):
            hint = "; the FASTA names chromosomes with a 'chr' prefix: add it to the BED names"
        elif any(c.removeprefix("chr") in lengths for c in unknown):
            hint = "; the FASTA names chromosomes without 'chr': remove the prefix in the BED"
        raise InputError(
            f"{source}: chromosome(s) {unknown[:5]} are not in the reference FASTA, whose "
            f"sequences are {names[:5]}{' …' if len(names) > 5 else ''}{hint}"
        )
    chrom_len = bed["chrom"].map(lengths).to_numpy()
    beyond = bed["end"].to_numpy() > chrom_len
    if beyond.any():
        i = int(np.flatnonzero(beyond)[0])
        raise InputError(
            f"{source}, line {bed['line'].iloc[i]}: interval ends at {bed['end'].iloc[i]}, beyond "
            f"the end of {bed['chrom'].iloc[i]} ({chrom_len[i]} bp); is the BED from another "
            "assembly?"
        )
