"""Position-aware features of sequence codes: the flattened one-hot, for the sequence baseline.

A linear model on k-mer frequencies ignores where a k-mer lies; on sequences of one length
whose signal sits at fixed positions (a promoter element at −35, a splice site, a centred
binding site) a linear model on the one-hot of every position is the fair linear comparison for
a CNN. Unknown symbols (N, X) and padding are all-zero positions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


def flat_one_hot(codes: np.ndarray, letters: int = 4) -> np.ndarray:
    """One-hot of every position, flattened position-major.

    Parameters
    ----------
    codes
        ``(n, length)`` ``uint8`` codes (``0 .. letters - 1``; larger codes are unknown).
    letters
        Size of the alphabet (4 or 20).

    Returns
    -------
    numpy.ndarray
        ``(n, length * letters)`` float32; column ``i * letters + c`` is 1 where position
        ``i`` holds letter ``c``.
    """
    codes = np.atleast_2d(np.asarray(codes))
    n, length = codes.shape
    out = np.zeros((n, length, letters), dtype=np.float32)
    rows, cols = np.nonzero(codes < letters)
    out[rows, cols, codes[rows, cols].astype(np.int64)] = 1.0
    return out.reshape(n, length * letters)


class OneHotPositions(TransformerMixin, BaseEstimator):
    """scikit-learn transformer from sequence codes to their flattened one-hot.

    ``letters`` is the alphabet's size (4 or 20). Fitting records the input length, and
    sequences of another length are refused (positions would not line up).
    """

    def __init__(self, letters: int = 4) -> None:
        self.letters = letters

    def fit(self, X: np.ndarray, y: Any = None) -> OneHotPositions:  # noqa: N803
        """Nothing to learn; records the sequence length."""
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        """Return the flattened one-hot of every row."""
        X = np.asarray(X, dtype=np.uint8)  # noqa: N806
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"sequences of length {X.shape[1]}; the one-hot baseline was fitted on "
                f"{self.n_features_in_} positions"
            )
        return flat_one_hot(X, self.letters)
