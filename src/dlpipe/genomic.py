"""Genomic windows: resizing, extraction as codes, overlaps, negatives and CV groups.

Intervals (read and checked by :mod:`dlpipe.io.bed`) are resized around their centre (or
summit) and fetched from an open reference (:func:`dlpipe.io.fasta.open_fasta`) as ``uint8``
codes. Negatives are genome windows drawn GC-matched to the positives, away from every positive
by a flank and free of N-rich stretches, or dinucleotide-shuffled copies of the positives.
Overlapping windows are chained into clusters that always share a CV group. All of it is seeded
and vectorised over intervals; only the FASTA fetch is one pysam call per interval.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dlpipe.alphabet import encode, gc_content, reverse_complement
from dlpipe.errors import InputError
from dlpipe.shuffle import dinucleotide_shuffle

log = logging.getLogger(__name__)


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


def fetch(
    fasta: Any, windows: pd.DataFrame, alphabet: str = "dna", stranded: bool = False
) -> np.ndarray:
    """Fetch windows from the FASTA as ``uint8`` codes; bases past a chromosome end become N.

    With ``stranded``, windows whose ``strand`` is ``-`` are read on that strand (the reverse
    complement of the reference, 5' to 3'); otherwise every window is the forward strand.
    """
    lengths = dict(zip(fasta.references, fasta.lengths, strict=True))
    seqs = []
    for chrom, start, end in zip(windows["chrom"], windows["start"], windows["end"], strict=True):
        size = lengths[chrom]
        left, right = max(0, -start), max(0, end - size)
        seq = fasta.fetch(chrom, max(0, start), min(end, size))
        seqs.append("N" * left + seq + "N" * right)
    codes = encode(seqs, alphabet) if seqs else np.zeros((0, 0), np.uint8)
    if stranded and len(codes):
        minus = windows["strand"].to_numpy() == "-"
        codes[minus] = reverse_complement(codes[minus])
    return codes


def is_stranded(bed: pd.DataFrame) -> bool:
    """Whether any interval names its strand (``+`` or ``-``) in the BED's sixth column."""
    return bool(bed["strand"].isin(["+", "-"]).any())


@dataclass(frozen=True)
class StrandPlan:
    """How an experiment's sequences are oriented, and whether training flips strands.

    ``stranded``: windows are read on their BED strand. ``reverse_complement``: training
    flips a random half of the batches to the reverse complement. ``why``: the reason, for
    the report.
    """

    stranded: bool
    reverse_complement: bool
    why: str


def strand_plan(
    setting: bool | str, alphabet: str, source: str, stranded: bool, coordinates: bool = False
) -> StrandPlan:
    """Resolve ``training.reverse_complement`` (``auto``, true or false) for a data set.

    Parameters
    ----------
    setting
        The config's value; ``auto`` flips strands only for unstranded DNA windows of a
        genome, where a site reads the same on either strand.
    alphabet
        ``dna``, ``rna`` or ``protein``.
    source
        ``genome`` (windows of BED intervals) or ``fasta`` (records read as given).
    stranded
        Whether the windows are read on their own strand (a stranded BED, not ignored).
    coordinates
        For a FASTA: whether every record is named ``chrom:start-end`` (unstranded windows of a
        genome, whose orientation is arbitrary).
    """
    if alphabet == "protein":
        return StrandPlan(stranded, False, "protein sequences have no reverse complement")
    if setting == "auto":
        if alphabet == "rna":
            on, why = False, "auto: RNA is single-stranded, read as given"
        elif stranded:
            on, why = (
                False,
                (
                    "auto: windows are read on their BED strand, so a strand-specific signal "
                    "is kept (data.strand: ignore reads the forward strand and flips strands)"
                ),
            )
        elif source == "genome" or coordinates:
            on, why = True, "auto: unstranded DNA windows read the same on either strand"
        else:
            on, why = (
                False,
                (
                    "auto: FASTA records are read as given (their orientation may be the signal); "
                    "set training.reverse_complement: true if it is arbitrary"
                ),
            )
        return StrandPlan(stranded, on, why)
    return StrandPlan(stranded, bool(setting), "set in the config")


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
    rng = np.random.default_rng(seed)
    n_wanted = round(ratio * len(positives))
    # Every positive gives floor(ratio) copies; a random subset gives one more.
    source = np.concatenate(
        [np.tile(np.arange(len(positives)), n_wanted // len(positives)),
         np.sort(rng.permutation(len(positives))[: n_wanted % len(positives)])]
    )  # fmt: skip
    copy = pd.Series(source).groupby(source).cumcount().to_numpy()
    columns = ["chrom", "start", "end"] + (["strand"] if "strand" in positives else [])
    windows = positives.iloc[source][columns].reset_index(drop=True)
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


def fit_length(seq: str, length: int, pad: str = "N") -> str:
    """Centre-crop or pad (with ``pad`` on both sides) a sequence to ``length``."""
    if len(seq) >= length:
        left = (len(seq) - length) // 2
        return seq[left : left + length]
    missing = length - len(seq)
    return pad * (missing // 2) + seq + pad * (missing - missing // 2)
