"""Downsampled pixels of images: the features of the classical image baseline.

A linear model on the raw pixels of a 64 × 64 image has 4,096 weights per channel for a few
hundred images; averaged over blocks to a coarse grid (8 × 8 by default) it keeps where the
bright and dark regions lie, which is what a linear model can use, with few enough features to
be fitted honestly. The comparison then says what the CNN adds beyond coarse intensity layout.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

#: Images averaged at a time: a fold side read from the image store never lies in memory whole.
CHUNK = 256


def _edges(size: int, bins: int) -> np.ndarray:
    """First pixel of each of ``bins`` near-equal blocks of ``size`` pixels."""
    return np.floor(np.arange(bins) * size / bins).astype(np.intp)


def block_means(images: np.ndarray, side: int = 8) -> np.ndarray:
    """Average ``(n, C, H, W)`` images over blocks to ``(n, C * h * w)``, ``h, w <= side``.

    Parameters
    ----------
    images
        Images, channels first (any numeric dtype).
    side
        Blocks along each axis (fewer where the image has fewer pixels).

    Returns
    -------
    numpy.ndarray
        float32, flattened channel-major: the mean of every block of every channel.
    """
    images = np.asarray(images, dtype=np.float64)
    n, _channels, height, width = images.shape
    rows, cols = _edges(height, min(side, height)), _edges(width, min(side, width))
    sums = np.add.reduceat(np.add.reduceat(images, rows, axis=2), cols, axis=3)
    counts = np.outer(np.diff(rows, append=height), np.diff(cols, append=width))
    return (sums / counts).reshape(n, -1).astype(np.float32)


class DownsampledPixels(TransformerMixin, BaseEstimator):
    """scikit-learn transformer from ``(n, C, H, W)`` images to their block means.

    Fitting records the image shape; images of another shape are refused (blocks would not
    line up).
    """

    def __init__(self, side: int = 8) -> None:
        self.side = side

    def fit(self, X: np.ndarray, y: Any = None) -> DownsampledPixels:  # noqa: N803
        """Nothing to learn; records the image shape."""
        self.image_shape_ = tuple(int(v) for v in np.shape(X)[1:])
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        """Return the block means of every image, reading ``CHUNK`` images at a time.

        ``X`` is an array or anything that slices like one (a fold side of the image store,
        :class:`dlpipe.image_store.StoreImages`); each image's means are its own, so chunks
        change nothing but the memory used.
        """
        shape = tuple(int(v) for v in np.shape(X)[1:])
        if shape != self.image_shape_:
            raise ValueError(
                f"images of shape {shape}; the pixel baseline was fitted on {self.image_shape_}"
            )
        if len(X) <= CHUNK:
            return block_means(X[:], self.side)
        parts = [X[start : start + CHUNK] for start in range(0, len(X), CHUNK)]
        return np.concatenate([block_means(part, self.side) for part in parts])
