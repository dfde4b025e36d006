"""Dinucleotide shuffles: exact doublet counts, seeded, uniform, and used as negatives."""

from __future__ import annotations

from collections import Counter
from itertools import permutations

import numpy as np
import pytest

from dlpipe.alphabet import decode, encode
from dlpipe.shuffle import dinucleotide_shuffle


def _doublets(codes: np.ndarray) -> np.ndarray:
    pairs = codes[:, :-1].astype(np.int64) * 5 + codes[:, 1:]
    return np.stack([np.bincount(row, minlength=25) for row in pairs])


def test_shuffle_keeps_doublets_ends_and_changes_the_sequence() -> None:
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 5, size=(300, 120), dtype=np.uint8)
    codes[:5] = rng.integers(0, 2, size=(5, 120))  # two-letter sequences
    codes[5] = 2  # a homopolymer has one arrangement only
    out = dinucleotide_shuffle(codes, 0)
    assert out.dtype == np.uint8
    assert out.shape == codes.shape
    np.testing.assert_array_equal(_doublets(out), _doublets(codes))
    np.testing.assert_array_equal(out[:, [0, -1]], codes[:, [0, -1]])
    np.testing.assert_array_equal(out[5], codes[5])
    assert (out != codes).any(axis=1).mean() > 0.95


def test_shuffle_is_seeded_and_seed_zero_counts() -> None:
    codes = encode(["ACGTTGCAACGGTACCATGA" * 3] * 50)
    np.testing.assert_array_equal(dinucleotide_shuffle(codes, 0), dinucleotide_shuffle(codes, 0))
    assert not np.array_equal(dinucleotide_shuffle(codes, 0), dinucleotide_shuffle(codes, 1))


def test_shuffle_draws_every_arrangement_equally_often() -> None:
    source = "ACAGACGA"
    # Every sequence with the same first letter and doublet multiset, by brute force.
    want = Counter(source[i : i + 2] for i in range(len(source) - 1))
    valid = {
        "A" + "".join(p)
        for p in set(permutations(source[1:]))
        if Counter(("A" + "".join(p))[i : i + 2] for i in range(len(source) - 1)) == want
    }
    n = 24_000
    drawn = Counter(decode(dinucleotide_shuffle(encode([source] * n), 7)))
    assert set(drawn) == valid
    expected = n / len(valid)
    assert all(abs(c - expected) < 5 * np.sqrt(expected) for c in drawn.values())


def test_codes_outside_the_symbols_are_refused() -> None:
    with pytest.raises(ValueError, match="n_symbols"):
        dinucleotide_shuffle(np.full((2, 10), 7, dtype=np.uint8), 0)
