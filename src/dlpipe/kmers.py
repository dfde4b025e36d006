"""k-mer frequency features of sequence codes, for the sequence baseline.

Every position's k-mer is turned into an index in base ``letters`` (4 nucleotides, 20 amino
acids) with a rolling sum over the code matrix, and one ``bincount`` over all rows counts them
— no per-sequence Python. k-mers that contain an unknown symbol (N, X) are not counted. Several
k give a composition spectrum: for proteins, amino-acid (k = 1) and dipeptide (k = 2)
composition, the classical baseline of peptide classifiers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from dlpipe.alphabet import MAX_KMERS, kmer_limit


def kmer_frequencies(codes: np.ndarray, k: int, letters: int = 4) -> np.ndarray:
    """Frequency of each of the ``letters**k`` k-mers in each row of codes.

    Parameters
    ----------
    codes
        ``(n, length)`` ``uint8`` codes (``0 .. letters - 1``; larger codes are unknown).
    k
        k-mer length (``letters**k`` at most :data:`MAX_KMERS`).
    letters
        Size of the alphabet: 4 (A=0, C=1, G=2, T=3, N=4) or 20 (amino acids, X=20).

    Returns
    -------
    numpy.ndarray
        ``(n, letters**k)`` float32 frequencies; each row sums to 1 (0 for a row with no valid
        k-mer).
    """
    if k < 1 or letters**k > MAX_KMERS:
        raise ValueError(f"k must lie between 1 and {kmer_limit(letters)} for {letters} letters")
    codes = np.atleast_2d(codes)
    n, length = codes.shape
    width = length - k + 1
    if width < 1:
        raise ValueError(f"sequences of length {length} hold no {k}-mer")
    index = np.zeros((n, width), dtype=np.int64)
    valid = np.ones((n, width), dtype=bool)
    for j in range(k):  # k vectorised passes over the matrix
        part = codes[:, j : j + width].astype(np.int64)
        valid &= part < letters
        index = index * letters + np.minimum(part, letters - 1)
    size = letters**k
    flat = (index + np.arange(n)[:, None] * size)[valid]
    counts = np.bincount(flat, minlength=n * size).reshape(n, size).astype(np.float32)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def composition(codes: np.ndarray, ks: Sequence[int], letters: int = 4) -> np.ndarray:
    """Concatenated k-mer frequencies for every k of ``ks`` (a composition spectrum)."""
    return np.concatenate([kmer_frequencies(codes, int(k), letters) for k in ks], axis=1)


class KmerFrequencies(TransformerMixin, BaseEstimator):
    """scikit-learn transformer from sequence codes to k-mer frequencies (nothing to fit).

    ``k`` is one k-mer length or several (their frequencies side by side); ``letters`` the
    alphabet's size (4 or 20).
    """

    def __init__(self, k: int | Sequence[int] = 6, letters: int = 4) -> None:
        self.k = k
        self.letters = letters

    def fit(self, X: np.ndarray, y: Any = None) -> KmerFrequencies:  # noqa: N803
        """Nothing to learn; records the input width."""
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        """Return the k-mer frequencies of every row."""
        ks = [self.k] if isinstance(self.k, int) else list(self.k)
        # Baselines fitted before alphabets other than DNA had k-mers carry no ``letters``.
        return composition(np.asarray(X, dtype=np.uint8), ks, getattr(self, "letters", 4))
