"""What a sequence model learned, and what it resembles: motif comparison and seqlet clustering.

- :class:`MotifMatcher` is TOMTOM (memelite's ``tomtom``): every offset on both strands, the
  complete-score Euclidean column similarity, and the exact p-value of the best alignment from
  TOMTOM's score distribution (built per query column against every target column, combined by
  dynamic programming over the overlap); E = p × number of targets, and Benjamini-Hochberg q
  over the targets of each query. :func:`best_match` names a match only where q is below the
  configured threshold.
- :func:`call_seqlets` is tangermeme's recursive seqlet caller: every span of 4-25 positions
  gets a p-value from the distribution of summed attributions, and the p-value threshold is the
  one at which the seqlets called on control attributions (of dinucleotide-shuffled copies of
  the explained sequences, same models) estimate a false discovery rate at the target.
- :func:`cluster_seqlets` turns seqlets into motifs: windows around the seqlets are compared on
  both strands at small shifts, clustered by average linkage, aligned on each cluster's medoid,
  and summed into a PPM and a contribution weight matrix, trimmed to the columns that carry the
  contribution. It stays dlpipe's own: TF-MoDISco-lite (the field's clustering) brings
  leidenalg, igraph and hdf5plugin, wants thousands of seqlets, and tangermeme and memelite
  call and match seqlets but do not cluster them; a few hundred explained sequences give a few
  hundred seqlets, which average linkage handles in well under a second.

memelite compiles its numba kernels once and caches them (``cache=True``); tangermeme's seqlet
kernels are not marked for caching, so :func:`_seqlet_caller` imports them with caching on (9 s
of compiling in every interpret job becomes a load from the cache after the first). Both are
imported where they are used; :func:`precompile` fills both caches (``make install`` runs it).

Motif matrices themselves (:class:`dlpipe.io.jaspar.Motif`) and the JASPAR database and files
are read and written by :mod:`dlpipe.io.jaspar`.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from scipy.stats import false_discovery_control

from dlpipe.io.jaspar import Motif, ppm_from_counts

log = logging.getLogger(__name__)

#: The significance threshold of a match when the config gives none (``interpret.match_q``).
MATCH_Q = 0.05
#: Least share of a target's information content a named match must align to
#: (``interpret.match_coverage``). TOMTOM's Euclidean column score lets a weak query align
#: to the near-flat flank of a long profile (CTCF's 31-33 columns) at q < 0.05 while missing
#: its core; the demo's CRP filters cover 16-28 % of CTCF's bits but 63-76 % of CRP's.
MATCH_COVERAGE = 0.5


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


def _columns_first(ppm: np.ndarray) -> np.ndarray:
    """Return a ``(length, 4)`` PPM as memelite takes it: ``(4, length)``, contiguous."""
    return np.ascontiguousarray(np.asarray(ppm, dtype=np.float64).T)


class MotifMatcher:
    """TOMTOM search (memelite) of query motifs among target motifs.

    Parameters
    ----------
    targets
        The motifs to search (e.g. :func:`load_jaspar` plus :func:`read_jaspar_file`). TOMTOM's
        null is built from the target columns, so a small target set gives unsteady p-values
        (memelite warns below 25 targets).
    n_jobs
        numba threads of memelite (1: the result does not depend on the machine).
    """

    def __init__(self, targets: Sequence[Motif], n_jobs: int = 1) -> None:
        if not targets:
            raise ValueError("no target motifs to match against")
        self.targets = list(targets)
        self.n_jobs = n_jobs
        self._columns = [_columns_first(t.ppm) for t in self.targets]
        self._ic = [information_content(t.ppm) for t in self.targets]

    def match_all(self, queries: Sequence[Motif | np.ndarray]) -> list[pd.DataFrame]:
        """Compare each query with every target (one TOMTOM call for all queries).

        Parameters
        ----------
        queries
            :class:`Motif` objects or ``(length, 4)`` PPMs.

        Returns
        -------
        list of pandas.DataFrame
            Per query, one row per target, best first: ``target_id``, ``target_name``,
            ``source``, ``score`` (TOMTOM's summed column similarity of the best alignment),
            ``overlap``, ``offset`` (position of the query's first column on the matched strand
            of the target; negative where the query starts before it), ``strand`` (``-``: the
            target reverse-complemented), ``coverage`` (share of the target's information
            content in the aligned columns), ``p_value``, ``e_value`` and ``q_value``.
        """
        from memelite import tomtom  # lazy: numba kernels, loaded by the motif search only

        if not queries:
            return []
        ppms = [q.ppm if isinstance(q, Motif) else q for q in queries]
        # n_target_bins=None: every target column enters the background as it is (memelite's
        # default merges similar columns, an approximation; on JASPAR both take 0.1 s).
        p, score, offset, overlap, strand = tomtom(
            [_columns_first(q) for q in ppms],
            self._columns,
            n_target_bins=None,
            n_jobs=self.n_jobs,
        )
        frames = []
        for i in range(len(ppms)):
            pi = np.clip(p[i], 0.0, 1.0)
            frame = pd.DataFrame(
                {
                    "target_id": [t.id for t in self.targets],
                    "target_name": [t.name for t in self.targets],
                    "source": [t.source for t in self.targets],
                    "score": score[i],
                    "overlap": overlap[i].astype(int),
                    "offset": offset[i].astype(int),
                    "strand": np.where(strand[i] > 0.5, "-", "+"),
                    "coverage": self._coverage(len(ppms[i]), offset[i], strand[i]),
                    "p_value": pi,
                    "e_value": pi * len(self.targets),
                    "q_value": false_discovery_control(pi, method="bh"),
                }
            )
            frames.append(
                frame.sort_values(["p_value", "score"], ascending=[True, False], kind="stable")
            )
        return frames

    def _coverage(self, length: int, offsets: np.ndarray, strands: np.ndarray) -> np.ndarray:
        """Share of each target's information content under a query of ``length`` columns."""
        out = np.zeros(len(self.targets))
        for j, (offset, minus) in enumerate(zip(offsets.astype(int), strands > 0.5, strict=True)):
            ic = self._ic[j][::-1] if minus else self._ic[j]
            lo, hi = max(0, offset), min(len(ic), offset + length)
            out[j] = ic[lo:hi].sum() / ic.sum() if ic.sum() > 0 and hi > lo else 0.0
        return out

    def match(self, query: Motif | np.ndarray) -> pd.DataFrame:
        """Compare one query with every target (see :meth:`match_all`)."""
        return self.match_all([query])[0]


def best_match(
    hits: pd.DataFrame, q_threshold: float = MATCH_Q, min_coverage: float = MATCH_COVERAGE
) -> pd.Series | None:
    """Return the best target of :meth:`MotifMatcher.match` if it is a match worth naming.

    The best (lowest p) target is named only where its q is below ``q_threshold`` and the
    alignment covers at least ``min_coverage`` of the target's information content; a lower
    candidate is never promoted in its place.

    Returns
    -------
    pandas.Series or None
        The best row, or ``None``: no significant match (the motif is then not named).
    """
    if not len(hits):
        return None
    top = hits.iloc[0]
    named = float(top["q_value"]) < q_threshold and float(top["coverage"]) >= min_coverage
    return top if named else None


# ----------------------------------------------------------------------------------------------
# Seqlets: spans of high attribution, against a null, clustered into motifs.


def _seqlet_caller() -> Any:
    """Return tangermeme's ``recursive_seqlets``, its numba kernels cached on disk.

    tangermeme declares its kernels with a bare ``@numba.njit``; compiled anew in every
    process they cost 9 s of each interpret job. They are imported here with ``cache=True``
    added (same code, same results; measured in benchmarks/RESULTS.md).
    """
    if "tangermeme.seqlet" not in sys.modules:
        import numba  # lazy: 0.4 s

        plain = numba.njit

        def cached(*args: Any, **kwargs: Any) -> Any:
            if len(args) == 1 and callable(args[0]) and not kwargs:
                return plain(args[0], cache=True)
            return plain(*args, **{"cache": True, **kwargs})

        numba.njit = cached
        try:
            import tangermeme.seqlet  # noqa: F401  # lazy: numba kernels, compiled via `cached`
        finally:
            numba.njit = plain
    from tangermeme.seqlet import recursive_seqlets  # lazy: imported (cached) just above

    return recursive_seqlets


def precompile() -> bool:
    """Compile the numba kernels of the motif search once, into their on-disk caches.

    Returns ``False`` (and does nothing) where the motif extra is not installed.
    """
    try:
        import memelite  # noqa: F401  # lazy: the motifs extra may be absent
        import tangermeme  # noqa: F401  # lazy: the motifs extra may be absent
    except ImportError:
        return False
    rng = np.random.default_rng(0)
    targets = [Motif(f"t{i}", f"t{i}", rng.dirichlet(np.ones(4), size=8)) for i in range(30)]
    MotifMatcher(targets).match(targets[0])
    contributions = rng.normal(size=(4, 40))
    call_seqlets(contributions, rng.normal(size=(4, 40)), width=10)
    return True


def call_seqlets(
    contributions: np.ndarray,
    control: np.ndarray,
    width: int,
    target_fdr: float = 0.1,
    min_length: int = 4,
    max_length: int = 25,
) -> pd.DataFrame:
    """Seqlets of tangermeme's recursive caller at an estimated false discovery rate.

    Parameters
    ----------
    contributions
        ``(n, length)`` contribution of each position to the explained output.
    control
        ``(m, length)`` contributions, computed the same way, of sequences without the signal
        (dinucleotide-shuffled copies of the explained sequences): a seqlet called on them is
        a false discovery, which sets the p-value threshold.
    width
        Width of the window centred on each seqlet that :func:`cluster_seqlets` aligns.
    target_fdr
        Estimated false discovery rate of the seqlets called.
    min_length, max_length
        Shortest and longest span called.

    Returns
    -------
    pandas.DataFrame
        ``sequence``, ``start``, ``end`` (the centred window), ``span_start``, ``span_end``
        (the called span), ``score`` (its summed contribution) and ``p_value`` (of the span,
        a ranking score), strongest first; empty where no threshold reaches ``target_fdr``.
    """
    from tangermeme.utils import TangermemeWarning  # lazy: with the seqlet caller

    recursive_seqlets = _seqlet_caller()

    contributions = np.asarray(contributions, dtype=np.float64)
    length = contributions.shape[1]
    width = min(width, length)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TangermemeWarning)
        called = recursive_seqlets(
            contributions,
            min_seqlet_len=min_length,
            max_seqlet_len=min(max_length, length),
            X_control=np.asarray(control, dtype=np.float64),
            target_fdr=target_fdr,
        )
    for w in caught:
        log.info("seqlets: %s", w.message)
    span_start = called["start"].to_numpy(dtype=np.int64)
    span_end = called["end"].to_numpy(dtype=np.int64)
    start = np.clip((span_start + span_end - width) // 2, 0, length - width)
    frame = pd.DataFrame(
        {
            "sequence": called["example_idx"].to_numpy(dtype=np.int64),
            "start": start,
            "end": start + width,
            "span_start": span_start,
            "span_end": span_end,
            "score": called["attribution"].to_numpy(dtype=np.float64),
            "p_value": called["p-value"].to_numpy(dtype=np.float64),
        }
    )
    return frame.sort_values(["p_value", "sequence", "start"], kind="stable").reset_index(drop=True)


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
        Output of :func:`call_seqlets` (same ``width``).
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
