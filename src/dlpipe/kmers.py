"""k-mer frequency features of nucleotide codes, for the sequence baseline.

Every position's k-mer is turned into an index in base 4 with a rolling sum over the code
matrix, and one ``bincount`` over all rows counts them — no per-sequence Python. k-mers that
contain N are not counted.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


def kmer_frequencies(codes: np.ndarray, k: int) -> np.ndarray:
    """Frequency of each of the ``4**k`` k-mers in each row of nucleotide codes.

    Parameters
    ----------
    codes
        ``(n, length)`` ``uint8`` codes (A=0, C=1, G=2, T=3, N=4).
    k
        k-mer length (1-8).

    Returns
    -------
    numpy.ndarray
        ``(n, 4**k)`` float32 frequencies; each row sums to 1 (0 for a row with no valid k-mer).
    """
    if not 1 <= k <= 8:
        raise ValueError("k must lie between 1 and 8")
    codes = np.atleast_2d(codes)
    n, length = codes.shape
    width = length - k + 1
    if width < 1:
        raise ValueError(f"sequences of length {length} hold no {k}-mer")
    index = np.zeros((n, width), dtype=np.int64)
    valid = np.ones((n, width), dtype=bool)
    for j in range(k):  # k vectorised passes over the matrix
        part = codes[:, j : j + width].astype(np.int64)
        valid &= part < 4
        index = index * 4 + np.minimum(part, 3)
    size = 4**k
    flat = (index + np.arange(n)[:, None] * size)[valid]
    counts = np.bincount(flat, minlength=n * size).reshape(n, size).astype(np.float32)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


class KmerFrequencies(TransformerMixin, BaseEstimator):
    """scikit-learn transformer from nucleotide codes to k-mer frequencies (nothing to fit)."""

    def __init__(self, k: int = 6) -> None:
        self.k = k

    def fit(self, X: np.ndarray, y: Any = None) -> KmerFrequencies:  # noqa: N803
        """Nothing to learn; records the input width."""
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        """Return the k-mer frequencies of every row."""
        return kmer_frequencies(np.asarray(X, dtype=np.uint8), self.k)
