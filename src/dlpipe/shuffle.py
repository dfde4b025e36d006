"""Dinucleotide-preserving shuffles of sequence codes (Altschul–Erikson), for negatives.

A shuffled positive keeps the exact dinucleotide (and so mononucleotide and GC) composition of
its source while destroying longer motifs, the classic control for "is the model reading more
than composition?". The algorithm (Altschul & Erikson 1985; Kandel et al. 1996) treats a
sequence as an Eulerian path through its doublet graph: for every symbol other than the final
one a random *last* exit edge is drawn so that the last edges form a tree into the final symbol,
the remaining exits of each symbol are permuted, and the path is walked again from the first
symbol. Every sequence with the same first symbol and doublet counts is equally likely.

All sequences are shuffled together: sorting and drawing are vectorised over every edge, and the
walk loops over positions (not over sequences or bases one by one).
"""

from __future__ import annotations

import numpy as np


def _is_tree(
    chosen: np.ndarray, counts: np.ndarray, final: np.ndarray, targets: np.ndarray
) -> np.ndarray:
    """Whether, per sequence, following last exits from every symbol reaches the final one."""
    n, k = counts.shape
    rows = np.arange(n)[:, None]
    nxt = targets[np.clip(chosen, 0, None)].astype(np.int64)
    nxt[np.arange(n), final] = final  # the root: the walk ends there
    node = np.where(counts > 0, np.arange(k)[None, :], final[:, None])
    for _ in range(k):  # a path in a tree over k symbols has fewer than k edges
        node = nxt[rows, node]
    return (node == final[:, None]).all(axis=1)


def _last_exits(
    first_edge: np.ndarray,
    counts: np.ndarray,
    final: np.ndarray,
    targets: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draw, per sequence and symbol, the edge that leaves the symbol last (-1: none).

    The edges leaving symbol ``v`` in sequence ``s`` are ``first_edge[s, v]`` ..
    ``first_edge[s, v] + counts[s, v] - 1`` of the node-sorted edge list, whose target symbols
    are ``targets``. Sequences whose last exits do not form a tree into the final symbol draw
    again (rejection keeps the distribution of the Altschul–Erikson algorithm).
    """
    n = len(counts)
    chosen = np.full(counts.shape, -1, dtype=np.int64)
    todo = np.arange(n)
    while todo.size:
        c = counts[todo]
        pick = (rng.random(c.shape) * c).astype(np.int64)
        chosen[todo] = np.where(c > 0, first_edge[todo] + pick, -1)
        todo = todo[~_is_tree(chosen[todo], counts[todo], final[todo], targets)]
    chosen[np.arange(n), final] = -1  # the final symbol's exits are all free
    return chosen


def dinucleotide_shuffle(
    codes: np.ndarray, seed: int | np.random.Generator, n_symbols: int = 5
) -> np.ndarray:
    """Shuffle each row of ``codes`` keeping its first and last symbol and its doublet counts.

    Parameters
    ----------
    codes
        ``(n, length)`` ``uint8`` sequence codes (DNA: A C G T = 0..3, N = 4).
    seed
        Seed or generator (0 is a seed like any other).
    n_symbols
        Number of distinct codes (5 for nucleotides with N).

    Returns
    -------
    numpy.ndarray
        Shuffled codes of the same shape and dtype.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    codes = np.atleast_2d(np.asarray(codes, dtype=np.uint8))
    n, length = codes.shape
    if length < 3 or n == 0:
        return codes.copy()
    if int(codes.max()) >= n_symbols:
        raise ValueError(f"codes must be below n_symbols={n_symbols}")
    sources = codes[:, :-1].ravel()
    seq = np.repeat(np.arange(n), length - 1)
    # Edges grouped by (sequence, source symbol); lexsort is stable, so positions stay in order.
    order = np.lexsort((sources, seq))
    src_sorted, tgt_sorted = sources[order], codes[:, 1:].ravel()[order]
    counts = np.zeros((n, n_symbols), dtype=np.int64)
    np.add.at(counts, (seq, sources), 1)
    first_edge = (np.cumsum(counts.ravel()) - counts.ravel()).reshape(n, n_symbols)
    final = codes[:, -1].astype(np.int64)
    last = _last_exits(first_edge, counts, final, tgt_sorted, rng)
    # Permute each symbol's exits at random, its last exit kept at the end of its group.
    key = rng.random(len(order))
    key[last[last >= 0]] = 2.0
    walk_targets = tgt_sorted[np.lexsort((key, src_sorted, seq))]
    # Walk the Eulerian path of every sequence at once, one position per step.
    out = np.empty_like(codes)
    out[:, 0] = codes[:, 0]
    pointer = first_edge.copy()
    rows = np.arange(n)
    current = codes[:, 0].astype(np.int64)
    for pos in range(1, length):
        edge = pointer[rows, current]
        pointer[rows, current] += 1
        current = walk_targets[edge].astype(np.int64)
        out[:, pos] = current
    return out
