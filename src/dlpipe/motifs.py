"""What a sequence model learned, and what it resembles: motif comparison and seqlet clustering.

- :class:`MotifMatcher` is a TOMTOM-like comparison: the Pearson correlation of aligned columns
  summed over the overlap, every offset (at least ``min_overlap`` columns) on both strands, and
  a p-value for each target from column-shuffled copies of the query (an extreme-value fit of
  the null best scores against the targets of that target's length), with E-values (p × number
  of targets) and Benjamini-Hochberg q-values. All offsets of all targets are scored at once
  (a cross-correlation per base over the concatenated target columns), so a query against the
  2,346 JASPAR 2024 CORE profiles, nulls included, takes about a second.
- :func:`find_seqlets` and :func:`cluster_seqlets` turn per-position attributions into motifs:
  high-attribution windows (seqlets) are compared on both strands at small shifts, clustered by
  average linkage, aligned on each cluster's medoid, and summed into a PPM and a contribution
  weight matrix, trimmed to the columns that carry the contribution. (TF-MoDISco-lite installs
  from PyPI but brings numba, llvmlite, igraph, leidenalg and more, compiles on first use and
  wants thousands of seqlets; a few hundred explained sequences call for this lighter
  clustering.)

Motif matrices themselves (:class:`dlpipe.io.jaspar.Motif`) and the JASPAR database and files
are read and written by :mod:`dlpipe.io.jaspar`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from dlpipe.io.jaspar import Motif, ppm_from_counts

log = logging.getLogger(__name__)

_EULER_GAMMA = 0.5772156649015329


def information_content(ppm: np.ndarray) -> np.ndarray:
    """Information content (bits) of each position against a uniform background."""
    p = np.clip(np.asarray(ppm, dtype=np.float64), 1e-12, 1.0)
    return 2.0 + (p * np.log2(p)).sum(axis=1)


def reverse_complement(matrix: np.ndarray) -> np.ndarray:
    """Reverse complement of a ``(length, 4)`` matrix over A, C, G, T."""
    return np.asarray(matrix)[::-1, ::-1].copy()


def trim_motif(motif: Motif, min_ic: float = 0.25) -> Motif:
    """Drop flanking positions whose information content is below ``min_ic`` bits."""
    ic = information_content(motif.ppm)
    keep = np.flatnonzero(ic >= min_ic)
    if len(keep) == 0:
        return motif
    lo, hi = int(keep[0]), int(keep[-1]) + 1
    cwm = motif.cwm[lo:hi] if motif.cwm is not None else None
    return Motif(
        motif.id, motif.name, motif.ppm[lo:hi], motif.source, motif.n_sites, cwm, dict(motif.info)
    )


def _standardise(ppm: np.ndarray) -> np.ndarray:
    """Centre each column and scale it to unit length (a flat column becomes zeros)."""
    centred = ppm - ppm.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(centred, axis=1, keepdims=True)
    return np.divide(centred, norm, out=np.zeros_like(centred), where=norm > 1e-9)


def _bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values."""
    order = np.argsort(p)
    ranked = p[order] * len(p) / np.arange(1, len(p) + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty_like(q)
    out[order] = np.clip(q, 0, 1)
    return out


def _length_pools(lengths: np.ndarray, min_pool: int) -> list[np.ndarray]:
    """Group target indices by length, merging neighbouring lengths up to ``min_pool`` targets."""
    pools, current = [], []
    for length in np.unique(lengths):
        current += np.flatnonzero(lengths == length).tolist()
        if len(current) >= min_pool:
            pools.append(current)
            current = []
    if current:
        if pools:
            pools[-1] += current
        else:
            pools.append(current)
    return [np.asarray(p) for p in pools]


class MotifMatcher:
    """TOMTOM-like search of a query motif among target motifs.

    Parameters
    ----------
    targets
        The motifs to search (e.g. :func:`load_jaspar` plus :func:`read_jaspar_file`).
    min_overlap
        Fewest aligned columns of an alignment (lowered to the shorter motif's length).
    n_null
        Column-shuffled copies of each query that give the null distribution.
    seed
        Seed of the shuffles.
    min_pool
        Fewest targets whose null scores are pooled (targets of neighbouring lengths).
    """

    def __init__(
        self,
        targets: Sequence[Motif],
        min_overlap: int = 5,
        n_null: int = 50,
        seed: int = 0,
        min_pool: int = 20,
    ) -> None:
        if not targets:
            raise ValueError("no target motifs to match against")
        self.targets = list(targets)
        self.min_overlap = min_overlap
        self.n_null = n_null
        self.seed = seed
        self.lengths = np.array([t.length for t in self.targets])
        self._layout: dict[int, tuple[np.ndarray, ...]] = {}
        self._pools = _length_pools(self.lengths, min_pool)

    def _columns(self, gap: int) -> tuple[np.ndarray, np.ndarray]:
        """All target columns, standardised, with ``gap`` zero columns around each target."""
        blocks, starts, pos = [np.zeros((gap, 4))], [], gap
        for t in self.targets:
            starts.append(pos)
            blocks += [_standardise(t.ppm), np.zeros((gap, 4))]
            pos += t.length + gap
        return np.concatenate(blocks), np.asarray(starts)

    def _alignments(self, q_len: int) -> tuple[np.ndarray, ...]:
        """For a query length: the target columns, and every (target, offset) alignment."""
        if q_len not in self._layout:
            matrix, starts = self._columns(q_len)
            target, offset = [], []
            for i, length in enumerate(self.lengths):
                ks = np.arange(-(q_len - 1), length)
                target.append(np.full(len(ks), i))
                offset.append(ks)
            tid, k = np.concatenate(target), np.concatenate(offset)
            t_len = self.lengths[tid]
            overlap = np.minimum.reduce([np.full_like(k, q_len), t_len - k, q_len + k, t_len])
            valid = overlap >= np.minimum(self.min_overlap, np.minimum(q_len, t_len))
            tid, k, overlap = tid[valid], k[valid], overlap[valid]
            seg = np.flatnonzero(np.r_[True, tid[1:] != tid[:-1]])
            # One contiguous row per base, padded so every column has a full-length window.
            rows = np.ascontiguousarray(np.concatenate([matrix, np.zeros((q_len, 4))]).T)
            self._layout[q_len] = (rows, starts[tid] + k, tid, k, overlap, seg)
        return self._layout[q_len]

    def _scores(self, query_std: np.ndarray, matrix: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Return the summed column correlations of every alignment (``cols``: first columns).

        Column ``c`` of the result collects ``sum_i query[i] . matrix[c + i]``: a
        cross-correlation per base, summed over the four bases.
        """
        total = sum(np.correlate(matrix[b], query_std[:, b], mode="valid") for b in range(4))
        return total[cols]

    def _best(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Best score per target over offsets and strands, and where it was found."""
        matrix, cols, tid, _, _, seg = self._alignments(len(query))
        fwd = self._scores(_standardise(query), matrix, cols)
        rev = self._scores(_standardise(reverse_complement(query)), matrix, cols)
        both = np.maximum(fwd, rev)
        best = np.maximum.reduceat(both, seg)
        # Index of the best alignment within each target's segment.
        is_best = both == best[tid]
        first = np.full(len(seg), -1)
        hits = np.flatnonzero(is_best)
        first[tid[hits[::-1]]] = hits[::-1]
        strand = np.where(rev[first] > fwd[first], "-", "+")
        return best, first, strand

    def match(self, query: Motif | np.ndarray) -> pd.DataFrame:
        """Compare one query with every target.

        Parameters
        ----------
        query
            A :class:`Motif` or a ``(length, 4)`` PPM.

        Returns
        -------
        pandas.DataFrame
            One row per target, best first: ``target_id``, ``target_name``, ``source``,
            ``score`` (summed column Pearson correlation), ``overlap``, ``offset`` (target
            position of the query's first column, on the matched strand), ``strand``,
            ``p_value``, ``e_value`` and ``q_value``.
        """
        ppm = query.ppm if isinstance(query, Motif) else np.asarray(query, dtype=np.float64)
        _, _, _, k, overlap, _ = self._alignments(len(ppm))
        best, where, strand = self._best(ppm)
        rng = np.random.default_rng(self.seed)
        null = np.stack([self._best(ppm[rng.permutation(len(ppm))])[0] for _ in range(self.n_null)])
        # Extreme-value (Gumbel) fit of the null best scores, by moments, pooled over targets
        # of similar length (the null depends on the target through its length): thousands of
        # null scores per fit instead of n_null.
        loc, scale = np.empty(len(self.targets)), np.empty(len(self.targets))
        for members in self._pools:
            pooled = null[:, members].ravel()
            scale[members] = max(float(pooled.std(ddof=1)), 1e-6) * np.sqrt(6) / np.pi
            loc[members] = pooled.mean() - _EULER_GAMMA * scale[members]
        p = -np.expm1(-np.exp(-(best - loc) / scale))
        p = np.clip(p, 1e-300, 1.0)
        frame = pd.DataFrame(
            {
                "target_id": [t.id for t in self.targets],
                "target_name": [t.name for t in self.targets],
                "source": [t.source for t in self.targets],
                "score": best,
                "overlap": overlap[where],
                "offset": k[where],
                "strand": strand,
                "p_value": p,
                "e_value": p * len(self.targets),
                "q_value": _bh(p),
            }
        )
        return frame.sort_values(["p_value", "score"], ascending=[True, False], kind="stable")


# ----------------------------------------------------------------------------------------------
# Seqlets: high-attribution windows, clustered into motifs.


def find_seqlets(
    contributions: np.ndarray, width: int, max_per_sequence: int = 3, fraction: float = 0.5
) -> pd.DataFrame:
    """Non-overlapping windows of high summed contribution in each sequence.

    Parameters
    ----------
    contributions
        ``(n, length)`` contribution of each position to the explained output.
    width
        Window width.
    max_per_sequence
        Most windows taken from one sequence.
    fraction
        A window is a seqlet when its summed contribution reaches this fraction of the median,
        over sequences, of each sequence's best window (and is positive).

    Returns
    -------
    pandas.DataFrame
        ``sequence``, ``start``, ``end``, ``score``; strongest first.
    """
    contributions = np.asarray(contributions, dtype=np.float64)
    n, length = contributions.shape
    width = min(width, length)
    cum = np.concatenate([np.zeros((n, 1)), np.cumsum(contributions, axis=1)], axis=1)
    windows = cum[:, width:] - cum[:, :-width]  # (n, length - width + 1)
    threshold = max(fraction * float(np.median(windows.max(axis=1))), 1e-12)
    rows = []
    work = windows.copy()
    for _ in range(max_per_sequence):
        best = work.argmax(axis=1)
        score = work[np.arange(n), best]
        take = score >= threshold
        for i in np.flatnonzero(take):
            rows.append((int(i), int(best[i]), int(best[i]) + width, float(score[i])))
            lo, hi = max(0, best[i] - width + 1), best[i] + width
            work[i, lo:hi] = -np.inf
        if not take.any():
            break
    frame = pd.DataFrame(rows, columns=["sequence", "start", "end", "score"])
    return frame.sort_values(["score", "sequence"], ascending=[False, True]).reset_index(drop=True)


def _regions(matrix: np.ndarray, seqlets: pd.DataFrame, width: int, pad: int) -> np.ndarray:
    """``(seqlets, width + 2 pad, 4)`` windows of a ``(n, length, 4)`` matrix, zero-padded."""
    padded = np.pad(matrix, ((0, 0), (pad, pad), (0, 0)))
    starts = seqlets["start"].to_numpy()  # + pad - pad: padded coordinates start at the window
    index = starts[:, None] + np.arange(width + 2 * pad)[None, :]
    return padded[seqlets["sequence"].to_numpy()[:, None], index]


def cluster_seqlets(
    onehot: np.ndarray,
    contributions: np.ndarray,
    seqlets: pd.DataFrame,
    width: int,
    max_shift: int = 4,
    extend: int = 4,
    min_similarity: float = 0.5,
    min_size: int = 5,
    max_seqlets: int = 600,
) -> list[Motif]:
    """Cluster seqlets on both strands into motifs (PPM and contribution weight matrix).

    Parameters
    ----------
    onehot
        ``(n, length, 4)`` one-hot sequences (A, C, G, T).
    contributions
        ``(n, length)`` contribution of each position.
    seqlets
        Output of :func:`find_seqlets` (same ``width``).
    width
        Seqlet width.
    max_shift
        Largest shift tried when two seqlets are aligned.
    extend
        Columns added on each side of the aligned seqlets before trimming.
    min_similarity
        Average-linkage clusters are cut where the cosine similarity of contribution matrices
        falls below this.
    min_size
        Smallest cluster kept.
    max_seqlets
        Strongest seqlets clustered (bounds the pairwise comparison).

    Returns
    -------
    list of Motif
        Largest cluster first; ``n_sites`` = seqlets in the cluster.
    """
    seqlets = seqlets.head(max_seqlets).reset_index(drop=True)
    if len(seqlets) < max(2, min_size):
        return []
    weights = onehot * contributions[:, :, None]  # contribution placed on the observed base
    pad = max_shift + extend
    contrib = _regions(weights, seqlets, width, pad)  # (m, width + 2 pad, 4)
    bases = _regions(onehot.astype(np.float64), seqlets, width, pad)
    m = len(seqlets)
    shifts = np.arange(-max_shift, max_shift + 1)

    def variants(regions: np.ndarray) -> np.ndarray:
        """Every shifted core window on both strands: (m, 2 * shifts, width * 4)."""
        out = []
        for strand in (regions, regions[:, ::-1, ::-1]):
            for s in shifts:
                out.append(strand[:, pad + s : pad + s + width].reshape(m, -1))
        return np.stack(out, axis=1)

    def unit(x: np.ndarray) -> np.ndarray:
        norm = np.linalg.norm(x, axis=-1, keepdims=True)
        return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)

    var = unit(variants(contrib))  # (m, v, d)
    core = var[:, max_shift]  # forward strand, no shift
    sims = np.einsum("id,jvd->ijv", core, var)  # (m, m, v)
    best = sims.max(axis=2)
    sym = np.maximum(best, best.T)
    np.fill_diagonal(sym, 1.0)
    dist = np.clip(1.0 - sym, 0.0, 2.0)
    tree = linkage(squareform(dist, checks=False), method="average")
    labels = fcluster(tree, t=1.0 - min_similarity, criterion="distance")
    motifs = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) < min_size:
            continue
        medoid = members[sym[np.ix_(members, members)].mean(axis=1).argmax()]
        choice = sims[medoid, members].argmax(axis=1)  # variant of each member
        strand_rc = choice >= len(shifts)
        shift = shifts[choice % len(shifts)]
        counts = np.zeros((width + 2 * extend, 4))
        cwm = np.zeros_like(counts)
        for j, rc, s in zip(members, strand_rc, shift, strict=True):
            b, c = bases[j], contrib[j]
            if rc:
                b, c = b[::-1, ::-1], c[::-1, ::-1]
            lo = pad + s - extend
            counts += b[lo : lo + width + 2 * extend]
            cwm += c[lo : lo + width + 2 * extend]
        cwm /= len(members)
        # Keep the span of columns that carry at least a fifth of the peak contribution.
        column = np.abs(cwm.sum(axis=1))
        strong = np.flatnonzero(column >= 0.2 * column.max())
        lo, hi = (int(strong[0]), int(strong[-1]) + 1) if len(strong) else (0, len(column))
        motifs.append(
            Motif(
                id="",
                name="",
                ppm=ppm_from_counts(counts[lo:hi]),
                source="attribution seqlets",
                n_sites=len(members),
                cwm=cwm[lo:hi],
                info={
                    "mean_seqlet_score": float(seqlets["score"].to_numpy()[members].mean()),
                    "distinct_sequences": len(set(seqlets["sequence"].to_numpy()[members])),
                },
            )
        )
    motifs.sort(key=lambda mo: (-mo.n_sites, -mo.info["mean_seqlet_score"]))
    for i, motif in enumerate(motifs, start=1):
        motif.id, motif.name = f"attribution_{i}", f"attribution cluster {i}"
    return motifs
