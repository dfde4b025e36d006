"""Genomic intervals to fixed-length sequences: BED checks, resizing, pysam extraction, negatives.

A reference FASTA (plain or bgzip) is opened with :class:`pysam.FastaFile`; its index is
built on demand, beside the file or, when that folder is read-only, beside a symbolic link in a
writable cache folder. BED intervals are checked (columns, integer coordinates, order,
chromosome names against the FASTA) and resized around their centre (or summit). Negatives are
genome windows drawn GC-matched to the positives, away from every positive by a flank and free
of N-rich stretches. All of it is seeded and vectorised over intervals; only the FASTA fetch is
one pysam call per interval.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlpipe.encode import encode, gc_content
from dlpipe.errors import InputError

log = logging.getLogger(__name__)

BED_COLUMNS = ("chrom", "start", "end", "name", "score", "strand")


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
    import pysam

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
    import gzip

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: BED file not found; check data.bed in the config")
    opener = gzip.open if path.suffix in (".gz", ".bgz") else open
    rows, lines = [], []
    with opener(path, "rt") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            fields = line.rstrip("\n\r").split("\t")
            if len(fields) < 3:
                fields = line.split()
            if len(fields) < 3:
                raise InputError(
                    f"{path}, line {number}: a BED line needs at least 3 tab-separated columns "
                    "(chrom, start, end)"
                )
            rows.append(fields)
            lines.append(number)
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


def resize(bed: pd.DataFrame, length: int, use_summit: bool = True) -> pd.DataFrame:
    """Centre every interval on its summit (if given) or midpoint, with a fixed length."""
    centre = (bed["start"] + bed["end"]) // 2
    if use_summit:
        has = bed["summit"].to_numpy() >= 0
        centre = np.where(has, bed["start"] + bed["summit"], centre)
    out = bed.copy()
    out["start"] = np.asarray(centre, dtype=np.int64) - length // 2
    out["end"] = out["start"] + length
    return out


def clip_to_chromosomes(
    windows: pd.DataFrame, lengths: Mapping[str, int], policy: str
) -> tuple[pd.DataFrame, int]:
    """Handle windows running past a chromosome end: ``skip`` drops them, ``pad`` keeps them.

    Returns the windows and the number affected (padded windows are filled with N at fetch).
    """
    chrom_len = windows["chrom"].map(lengths).to_numpy()
    outside = (windows["start"].to_numpy() < 0) | (windows["end"].to_numpy() > chrom_len)
    n = int(outside.sum())
    if policy == "skip":
        return windows[~outside].reset_index(drop=True), n
    return windows.reset_index(drop=True), n


def fetch(fasta: Any, windows: pd.DataFrame, alphabet: str = "dna") -> np.ndarray:
    """Fetch windows from the FASTA as ``uint8`` codes; bases past a chromosome end become N.

    Minus-strand windows are not reverse-complemented: strand rarely carries meaning for
    binding sites, and reverse-complement augmentation covers both orientations.
    """
    lengths = dict(zip(fasta.references, fasta.lengths, strict=True))
    seqs = []
    for chrom, start, end in zip(windows["chrom"], windows["start"], windows["end"], strict=True):
        size = lengths[chrom]
        left, right = max(0, -start), max(0, end - size)
        seq = fasta.fetch(chrom, max(0, start), min(end, size))
        seqs.append("N" * left + seq + "N" * right)
    return encode(seqs, alphabet) if seqs else np.zeros((0, 0), np.uint8)


def _merge(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], ends[order]
    running = np.maximum.accumulate(e)
    new = np.ones(len(s), dtype=bool)
    new[1:] = s[1:] > running[:-1]
    idx = np.flatnonzero(new)
    return s[idx], np.maximum.reduceat(e, idx) if len(idx) else e[:0]


def overlaps(windows: pd.DataFrame, intervals: pd.DataFrame, flank: int = 0) -> np.ndarray:
    """Whether each window overlaps any interval (widened by ``flank`` on both sides)."""
    hit = np.zeros(len(windows), dtype=bool)
    for chrom, rows in intervals.groupby("chrom", sort=False):
        mask = (windows["chrom"] == chrom).to_numpy()
        if not mask.any():
            continue
        starts, ends = _merge(rows["start"].to_numpy() - flank, rows["end"].to_numpy() + flank)
        w_start = windows["start"].to_numpy()[mask]
        w_end = windows["end"].to_numpy()[mask]
        # Last merged interval starting before the window's end; overlap if it ends after start.
        k = np.searchsorted(starts, w_end, side="left") - 1
        ok = k >= 0
        res = np.zeros(mask.sum(), dtype=bool)
        res[ok] = ends[k[ok]] > w_start[ok]
        hit[mask] = res
    return hit


@dataclass
class NegativeSampling:
    """Settings of genome-sampled negatives."""

    ratio: float = 1.0
    flank: int = 100
    max_n_fraction: float = 0.01
    gc_bins: int = 20
    oversample: int = 20


def gc_matched_negatives(
    fasta: Any,
    positives: pd.DataFrame,
    positive_gc: np.ndarray,
    length: int,
    settings: NegativeSampling,
    seed: int,
    exclude: Sequence[pd.DataFrame] = (),
    alphabet: str = "dna",
) -> tuple[pd.DataFrame, np.ndarray]:
    """Draw genome windows whose GC histogram matches the positives'.

    Candidates are drawn uniformly over the genome (by chromosome length), dropped when they
    overlap a positive (± ``flank``) or an ``exclude`` interval set, or hold more than
    ``max_n_fraction`` N; then, per GC bin, as many are kept as ``ratio`` × the positives in
    that bin. Bins short of candidates take their nearest neighbours' surplus.

    Returns
    -------
    windows
        The negatives (``chrom``, ``start``, ``end``).
    codes
        Their sequence codes.
    """
    rng = np.random.default_rng(seed)
    names = list(fasta.references)
    lengths = np.array(fasta.lengths, dtype=np.int64)
    usable = np.clip(lengths - length, 0, None)
    if usable.sum() == 0:
        raise InputError(f"every reference sequence is shorter than {length} bp")
    n_wanted = round(settings.ratio * len(positives))
    n_candidates = max(1000, settings.oversample * n_wanted)
    chrom_idx = rng.choice(len(names), size=n_candidates, p=usable / usable.sum())
    starts = (rng.random(n_candidates) * usable[chrom_idx]).astype(np.int64)
    cand = pd.DataFrame(
        {
            "chrom": np.asarray(names, dtype=object)[chrom_idx],
            "start": starts,
            "end": starts + length,
        }
    )
    keep = ~overlaps(cand, positives, settings.flank)
    for other in exclude:
        keep &= ~overlaps(cand, other, 0)
    cand = cand[keep].drop_duplicates(["chrom", "start"]).reset_index(drop=True)
    codes = fetch(fasta, cand, alphabet)
    n_frac = (codes == 4).mean(axis=1)
    ok = n_frac <= settings.max_n_fraction
    cand, codes = cand[ok].reset_index(drop=True), codes[ok]
    gc = gc_content(codes)
    edges = np.linspace(0, 1, settings.gc_bins + 1)
    pos_bin = np.clip(np.digitize(positive_gc, edges) - 1, 0, settings.gc_bins - 1)
    cand_bin = np.clip(np.digitize(gc, edges) - 1, 0, settings.gc_bins - 1)
    want = np.bincount(pos_bin, minlength=settings.gc_bins) * settings.ratio
    want = np.floor(want + 0.5).astype(int)
    chosen: list[int] = []
    pools = {
        b: list(rng.permutation(np.flatnonzero(cand_bin == b))) for b in range(settings.gc_bins)
    }
    short = 0
    for b in np.argsort(-want, kind="stable"):
        need = int(want[b])
        for dist in range(settings.gc_bins):
            for nb in sorted({b - dist, b + dist}):
                if 0 <= nb < settings.gc_bins and need > 0:
                    take = pools[nb][:need]
                    pools[nb] = pools[nb][need:]
                    chosen += take
                    need -= len(take)
            if need == 0:
                break
        short += need
    if short:
        log.warning("%d negatives could not be drawn (too few candidates)", short)
    chosen_arr = np.sort(np.asarray(chosen, dtype=np.int64))
    return cand.iloc[chosen_arr].reset_index(drop=True), codes[chosen_arr]


def shuffled_negatives(
    positives: pd.DataFrame, codes: np.ndarray, ratio: float, seed: int
) -> tuple[pd.DataFrame, np.ndarray]:
    """Dinucleotide-shuffled copies of the positives, ``ratio`` per positive on average.

    A copy keeps its source's coordinates (so it shares the source's CV fold, never teaching
    one fold what another is tested on) and is told apart by a ``copy`` suffix of its id.

    Returns
    -------
    windows
        ``chrom``, ``start``, ``end`` of each copy's source and its ``copy`` suffix (``|shuffleK``).
    codes
        The shuffled codes.
    """
    from dlpipe.shuffle import dinucleotide_shuffle

    rng = np.random.default_rng(seed)
    n_wanted = round(ratio * len(positives))
    # Every positive gives floor(ratio) copies; a random subset gives one more.
    source = np.concatenate(
        [np.tile(np.arange(len(positives)), n_wanted // len(positives)),
         np.sort(rng.permutation(len(positives))[: n_wanted % len(positives)])]
    )  # fmt: skip
    copy = pd.Series(source).groupby(source).cumcount().to_numpy()
    windows = positives.iloc[source][["chrom", "start", "end"]].reset_index(drop=True)
    windows["copy"] = [f"|shuffle{k + 1}" for k in copy]
    return windows, dinucleotide_shuffle(codes[source], rng)


def label_windows(windows: pd.DataFrame, targets: Mapping[str, pd.DataFrame]) -> np.ndarray:
    """Multi-label matrix: window ``i`` is positive for target ``t`` if it overlaps its BED."""
    return np.stack([overlaps(windows, bed).astype(np.float32) for bed in targets.values()], axis=1)


def overlap_clusters(windows: pd.DataFrame) -> np.ndarray:
    """Cluster id of every window: windows chained by overlaps on one chromosome share an id."""
    chrom = windows["chrom"].to_numpy().astype(str)
    codes, _ = pd.factorize(chrom)
    # One monotone coordinate across chromosomes, so a single running maximum chains overlaps.
    offset = codes.astype(np.int64) * (int(windows["end"].max()) + 1)
    start = windows["start"].to_numpy() + offset
    end = windows["end"].to_numpy() + offset
    order = np.lexsort((start, codes))
    running = np.maximum.accumulate(end[order])
    new = np.ones(len(order), dtype=bool)
    new[1:] = start[order][1:] >= running[:-1]
    clusters = np.empty(len(order), dtype=np.int64)
    clusters[order] = np.cumsum(new) - 1
    return clusters


def genomic_groups(windows: pd.DataFrame, bin_size: int | None) -> np.ndarray:
    """Group ids for CV: the chromosome, or ``chrom:bin`` of ``bin_size`` bp.

    Overlapping windows are chained into clusters and every window takes the group of its
    cluster's first window, so no two overlapping windows can fall in different folds.
    """
    clusters = overlap_clusters(windows)
    frame = pd.DataFrame(
        {
            "cluster": clusters,
            "chrom": windows["chrom"].astype(str).to_numpy(),
            "start": windows["start"].to_numpy(),
        }
    )
    first = frame.groupby("cluster").agg(chrom=("chrom", "first"), start=("start", "min"))
    if bin_size:
        label = first["chrom"] + ":" + (first["start"] // bin_size).astype(str)
    else:
        label = first["chrom"]
    return label.loc[clusters].to_numpy().astype(str)


def cross_fold_overlaps(windows: pd.DataFrame, fold_of: np.ndarray) -> int:
    """Count clusters of overlapping windows split over different folds (should be 0)."""
    frame = pd.DataFrame({"cluster": overlap_clusters(windows), "fold": np.asarray(fold_of)})
    return int((frame.groupby("cluster")["fold"].nunique() > 1).sum())


def prepare_sequence(
    exp: Mapping[str, Any], name: str = "experiment", cache_dir: str | Path | None = None
) -> Any:
    """Build the sequence dataset of an experiment: positives from its BED, GC-matched negatives.

    Parameters
    ----------
    exp
        The experiment's validated config (``data`` of modality ``sequence``, ``cv``, ``seed``).
    name
        Experiment name, for messages.
    cache_dir
        Writable folder for a FASTA index when the genome's folder is read-only.

    Returns
    -------
    dlpipe.dataset.SequenceDataset
        Codes, windows (with label, CV group and GC) and provenance.
    """
    from dlpipe.dataset import SequenceDataset
    from dlpipe.io import sha256

    data, cv = exp["data"], exp["cv"]
    fasta = open_fasta(data["genome"], cache_dir)
    lengths = dict(zip(fasta.references, fasta.lengths, strict=True))
    beds = {}
    for target, path in data["bed"].items():
        beds[target] = read_bed(path)
        check_chromosomes(beds[target], lengths, path)
    bed_path = ", ".join(data["bed"].values())
    bed = pd.concat(list(beds.values()), ignore_index=True)
    length = int(data["sequence_length"])
    positives = resize(bed, length, data["use_summit"])
    counts: dict[str, int] = {"intervals_in_bed": len(bed)}
    exclude = []
    if data["blacklist"]:
        black = read_bed(data["blacklist"])
        check_chromosomes(black, lengths, data["blacklist"])
        hit = overlaps(positives, black)
        counts["positives_in_blacklist"] = int(hit.sum())
        positives = positives[~hit]
        exclude.append(black)
    positives, counts["positives_at_chromosome_ends"] = clip_to_chromosomes(
        positives, lengths, data["chrom_ends"]
    )
    before = len(positives)
    positives = positives.drop_duplicates(["chrom", "start"]).reset_index(drop=True)
    counts["duplicate_positive_windows"] = before - len(positives)
    if positives.empty:
        raise InputError(f"{bed_path}: no positive window is left after resizing and filtering")
    pos_codes = fetch(fasta, positives)
    pos_gc = gc_content(pos_codes)
    settings = NegativeSampling(
        ratio=data["negatives"]["ratio"],
        flank=data["negatives"]["flank"],
        max_n_fraction=data["negatives"]["max_n_fraction"],
        gc_bins=data["negatives"]["gc_bins"],
    )
    if data["negatives"]["method"] == "shuffle":
        negatives, neg_codes = shuffled_negatives(
            positives, pos_codes, settings.ratio, int(exp["seed"])
        )
    else:
        # Negatives keep their distance from the original intervals and the resized windows.
        avoid = pd.concat([bed[["chrom", "start", "end"]], positives[["chrom", "start", "end"]]])
        negatives, neg_codes = gc_matched_negatives(
            fasta, avoid, pos_gc, length, settings, int(exp["seed"]), exclude
        )
    targets = list(beds)
    multilabel = len(targets) > 1
    positive_name = targets[0] if not multilabel else "positive"
    classes = ["background", positive_name] if not multilabel else targets
    windows = pd.concat(
        [
            positives[["chrom", "start", "end"]].assign(label=positive_name, gc=pos_gc),
            negatives.reindex(columns=["chrom", "start", "end", "copy"]).assign(
                label="background", gc=gc_content(neg_codes)
            ),
        ],
        ignore_index=True,
    )
    if multilabel:
        # DeepSEA-style: a window is positive for every target whose intervals it overlaps;
        # a shuffled copy sits on its source's coordinates but is negative for every target.
        matrix = label_windows(windows, beds)
        matrix[len(positives) :] = 0
        for j, target in enumerate(targets):
            windows[f"y_{target}"] = matrix[:, j]
    codes = np.concatenate([pos_codes, neg_codes])
    _check_chromosome_plan(cv, windows, positives, list(lengths), bed_path)
    by_bins = len(lengths) == 1 and cv["plan"] == "chromosome_kfold"
    windows["group"] = genomic_groups(windows, data["bin_size"] if by_bins else None)
    windows.index = pd.Index(
        windows["chrom"]
        + ":"
        + windows["start"].astype(str)
        + "-"
        + windows["end"].astype(str)
        + windows.pop("copy").fillna(""),
        name="sample_id",
    )
    counts.update(
        positives=int((windows["label"] != "background").sum()),
        negatives=int((windows["label"] == "background").sum()),
        groups=int(windows["group"].nunique()),
    )
    meta = {
        "source": str(bed_path),
        "genome": str(data["genome"]),
        "sha256": {path: sha256(path) for path in data["bed"].values()},
        "genome_sha256": sha256(data["genome"]),
        "n_samples": len(windows),
        "sequence_length": length,
        "class_counts": (
            {t: int(windows[f"y_{t}"].sum()) for t in targets}
            if multilabel
            else {"background": counts["negatives"], positive_name: counts["positives"]}
        ),
        "counts": counts,
        "gc_positives": float(pos_gc.mean()),
        "gc_negatives": float(windows.loc[windows["label"] == "background", "gc"].mean()),
        "group_by": "genomic bins" if by_bins else "chromosome",
        "negatives": data["negatives"]["method"],
    }
    log.info("%s: %s", name, counts)
    return SequenceDataset(
        codes=codes,
        windows=windows,
        classes=classes,
        meta=meta,
        task="multilabel" if multilabel else "classification",
    )


def _check_chromosome_plan(
    cv: Mapping[str, Any],
    windows: pd.DataFrame,
    positives: pd.DataFrame,
    references: list[str],
    source: str,
) -> None:
    """Fail early when a chromosome-aware plan cannot work on these data."""
    if cv["plan"] == "chromosome_holdout":
        named = set(cv["val_chromosomes"]) | set(cv["test_chromosomes"])
        unknown = sorted(named - set(references))
        if unknown:
            raise InputError(
                f"cv.val_chromosomes / cv.test_chromosomes name {unknown}, which are not in the "
                f"genome (it has {references[:5]}{' …' if len(references) > 5 else ''})"
            )
        for key in ("val_chromosomes", "test_chromosomes"):
            if not positives["chrom"].isin(cv[key]).any():
                raise InputError(
                    f"{source}: no positive lies on cv.{key} {cv[key]}; choose chromosomes "
                    "that hold positives"
                )
        if not (~positives["chrom"].isin(named)).any():
            raise InputError(f"{source}: every positive lies on a val/test chromosome")
    elif cv["plan"] == "chromosome_kfold" and len(references) > 1:
        n_chrom = positives["chrom"].nunique()
        if n_chrom < cv["n_splits"]:
            raise InputError(
                f"{source}: positives lie on {n_chrom} chromosome(s) "
                f"({sorted(positives['chrom'].unique())[:5]}) but cv.chromosome_kfold needs at "
                f"least cv.n_splits={cv['n_splits']}; lower n_splits or use chromosome_holdout"
            )


_COORD = re.compile(r"^(?P<chrom>[^:\s]+):(?P<start>\d+)-(?P<end>\d+)")


def fit_length(seq: str, length: int, pad: str = "N") -> str:
    """Centre-crop or pad (with ``pad`` on both sides) a sequence to ``length``."""
    if len(seq) >= length:
        left = (len(seq) - length) // 2
        return seq[left : left + length]
    missing = length - len(seq)
    return pad * (missing // 2) + seq + pad * (missing - missing // 2)


def read_fasta_records(path: str | Path, key: str = "data.fasta") -> list[tuple[str, str]]:
    """Headers (name and comment) and sequences of a FASTA file (plain or gzip), via pysam.

    ``key`` names the config key or option that gave the path, for the error messages.
    """
    import pysam

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
    return records


def read_labelled_fasta(
    path: str | Path, labels_tsv: str | Path | None = None
) -> tuple[list[str], list[str], list[str]]:
    """Read ids, sequences and labels of a FASTA whose labels follow ``|`` in the header.

    With ``labels_tsv`` (columns: id, label; no header) the labels come from that file instead.

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
    if labels_tsv is not None:
        table = pd.read_csv(labels_tsv, sep="\t", header=None, names=["id", "label"], dtype=str)
        mapping = dict(zip(table["id"], table["label"], strict=True))
        missing = [i for i in ids if i not in mapping]
        if missing:
            raise InputError(
                f"{labels_tsv}: no label for {len(missing)} sequence(s) of {path}, e.g. "
                f"{missing[:3]}"
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


def prepare_fasta(exp: Mapping[str, Any], name: str = "experiment") -> Any:
    """Build a sequence dataset from a FASTA of labelled sequences (DNA, RNA or protein).

    Sequences are centre-cropped or N-padded to ``data.sequence_length``. Headers of the form
    ``chrom:start-end`` give genomic coordinates, which chromosome-aware CV plans need.
    """
    from dlpipe.dataset import SequenceDataset, check_class_sizes
    from dlpipe.io import sha256

    data, cv = exp["data"], exp["cv"]
    path = data["fasta"]
    ids, seqs, labels = read_labelled_fasta(path, data["labels"])
    length = int(data["sequence_length"])
    pad = "X" if data["alphabet"] == "protein" else "N"
    lengths = np.array([len(s) for s in seqs])
    codes = encode([fit_length(s, length, pad) for s in seqs], data["alphabet"])
    coords = [_COORD.match(i) for i in ids]
    windows = pd.DataFrame({"label": labels}, index=pd.Index(ids, name="sample_id"))
    if all(coords):
        windows["chrom"] = [m["chrom"] for m in coords]
        windows["start"] = [int(m["start"]) for m in coords]
        windows["end"] = [int(m["end"]) for m in coords]
        windows["group"] = genomic_groups(windows.reset_index(drop=True), None)
    elif cv["plan"] in ("chromosome_kfold", "chromosome_holdout"):
        bad = ids[[m is None for m in coords].index(True)]
        raise InputError(
            f"{path}: cv.plan {cv['plan']} needs headers 'chrom:start-end', but {bad!r} is not"
        )
    else:
        windows["chrom"], windows["start"], windows["end"] = "", 0, 0
        windows["group"] = windows.index.to_numpy()
    windows["gc"] = gc_content(codes) if data["alphabet"] != "protein" else np.nan
    counts = windows["label"].value_counts()
    check_class_sizes(counts, cv, f"{path}: the labels")
    if cv["plan"] == "chromosome_kfold" and windows["chrom"].nunique() < cv["n_splits"]:
        raise InputError(
            f"{path}: sequences lie on {windows['chrom'].nunique()} chromosome(s) but "
            f"chromosome_kfold needs at least cv.n_splits={cv['n_splits']}"
        )
    meta = {
        "source": str(path),
        "sha256": sha256(path),
        "n_samples": len(windows),
        "sequence_length": length,
        "class_counts": {str(k): int(v) for k, v in counts.sort_index().items()},
        "counts": {
            "sequences": len(windows),
            "cropped": int((lengths > length).sum()),
            "padded": int((lengths < length).sum()),
            "groups": int(windows["group"].nunique()),
        },
        "gc_by_class": {str(k): float(v) for k, v in windows.groupby("label")["gc"].mean().items()},
        "group_by": "chromosome" if all(coords) else "sequence",
    }
    log.info("%s: %s", name, meta["counts"])
    return SequenceDataset(
        codes=codes,
        windows=windows,
        classes=sorted(counts.index),
        alphabet=data["alphabet"],
        meta=meta,
    )
