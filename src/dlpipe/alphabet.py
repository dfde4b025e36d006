"""Sequence encoding: 1-byte codes on the host, one-hot expansion on the device.

Sequences are stored once as ``uint8`` codes (DNA/RNA: A=0, C=1, G=2, T/U=3, N and other
IUPAC ambiguity codes=4; protein: the 20 amino acids in alphabetical one-letter order = 0..19,
unknown ``X``/``B``/``Z``/``J``/``U``/``O``/``*`` = 20). Encoding copies the ASCII bytes of all
sequences into one array (numpy, in C) and replaces each byte by its code in place with a
table look-up compiled by numba — no per-base Python, no temporaries besides the result — and
soft-masked (lowercase) bases are read like uppercase ones. The model receives a float one-hot
tensor made from the codes on the device at batch time (:class:`dlpipe.models.blocks.OneHot`),
so host memory holds one byte per base.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence

import numpy as np

from dlpipe.errors import InputError

ALPHABETS = ("dna", "rna", "protein")
_NUCLEOTIDES = "ACGT"
_IUPAC = "NRYSWKMBDHV"
_AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
_AA_UNKNOWN = "XBZJUO*"
#: Letters of the one-hot channels of each alphabet, in code order.
LETTERS = {"dna": _NUCLEOTIDES, "rna": "ACGU", "protein": _AMINO_ACIDS}
INVALID = 255
log = logging.getLogger(__name__)


def _table(alphabet: str) -> np.ndarray:
    lut = np.full(256, INVALID, dtype=np.uint8)

    def put(chars: str, code: int) -> None:
        for ch in chars:
            lut[ord(ch.upper())] = code
            lut[ord(ch.lower())] = code

    # Built once per name of ALPHABETS below; encode() refuses any other name.
    if alphabet == "protein":
        for i, aa in enumerate(_AMINO_ACIDS):
            put(aa, i)
        put(_AA_UNKNOWN, 20)
    else:
        for i, base in enumerate(_NUCLEOTIDES):
            put(base, i)
        put("U", 3)  # RNA U reads as T; DNA files with U are accepted too
        put(_IUPAC, 4)
    return lut


_TABLES = {name: _table(name) for name in ALPHABETS}


def _lookup_in_place(buf: np.ndarray, table: np.ndarray) -> int:
    """Replace every byte of ``buf`` by ``table[byte]``; return the OR of all codes."""
    seen = 0
    for i in range(buf.size):
        code = table[buf[i]]
        buf[i] = code
        seen |= code
    return seen


@functools.cache
def _compiled_lookup() -> Callable[[np.ndarray, np.ndarray], int]:
    # Compiled on first use, not at import: numba costs ~0.4 s to import and most dlpipe jobs
    # never encode. The machine code is cached on disk, so later processes only load it.
    # A compiled byte loop runs at ~2 GB/s; bytes.translate, the fastest look-up in CPython,
    # needs two extra allocating copies per call and reaches about half that (see
    # benchmarks/sequence_speed.py).
    import numba  # lazy: 0.4 s (see above)

    try:
        return numba.njit(cache=True, nogil=True)(_lookup_in_place)
    except RuntimeError as err:  # no writable cache directory: compile in every process
        log.debug("numba cache unavailable (%s); compiling the encoder in memory", err)
        return numba.njit(nogil=True)(_lookup_in_place)


#: Largest k-mer space a composition baseline counts (4**12, 20**5 fit; counts are n × size).
MAX_KMERS = 4**12


def kmer_limit(letters: int) -> int:
    """Return the largest k whose k-mer space stays within :data:`MAX_KMERS`."""
    k = 1
    while letters ** (k + 1) <= MAX_KMERS:
        k += 1
    return k


def alphabet_size(alphabet: str) -> int:
    """Return the number of one-hot channels (4 nucleotides or 20 amino acids)."""
    return 20 if alphabet == "protein" else 4


def unknown_code(alphabet: str) -> int:
    """Return the code of the unknown symbol (N for nucleotides, X for protein)."""
    return 20 if alphabet == "protein" else 4


def encode(sequences: Sequence[str] | str, alphabet: str = "dna") -> np.ndarray:
    """Encode equal-length sequences as a ``(n, length)`` ``uint8`` code matrix.

    Parameters
    ----------
    sequences
        One sequence or a list of sequences of the same length (ASCII letters).
    alphabet
        ``dna``, ``rna`` or ``protein``.

    Returns
    -------
    numpy.ndarray
        ``uint8`` codes, shape ``(n, length)`` (``(length,)`` for a single string).

    Raises
    ------
    InputError
        If lengths differ or a character is outside the alphabet (naming sequence and position).
    """
    if alphabet not in _TABLES:
        raise ValueError(f"alphabet must be one of {ALPHABETS}, not {alphabet!r}")
    single = isinstance(sequences, str)
    seqs = [sequences] if single else list(sequences)
    if not seqs:
        return np.zeros((0, 0), dtype=np.uint8)
    length = len(seqs[0])
    if any(len(s) != length for s in seqs):
        bad = next(i for i, s in enumerate(seqs) if len(s) != length)
        raise InputError(
            f"sequence {bad} has length {len(seqs[bad])}, not {length} like the first; "
            "resize intervals to one length"
        )
    if length == 0:
        codes = np.zeros((len(seqs), 0), dtype=np.uint8)
        return codes[0] if single else codes
    try:
        # One C pass from str to the result's own buffer; it becomes the codes in place.
        raw = np.array(seqs, dtype=f"S{length}")
    except UnicodeEncodeError:
        row = next(i for i, s in enumerate(seqs) if not s.isascii())
        col = next(j for j, ch in enumerate(seqs[row]) if not ch.isascii())
        raise InputError(
            f"sequence {row}, position {col + 1}: non-ASCII character {seqs[row][col]!r}"
        ) from None
    codes = raw.view(np.uint8).reshape(len(seqs), length)
    # Valid codes are < 32, so their OR is too; one INVALID (255) anywhere sets the high bit.
    if _compiled_lookup()(codes.reshape(-1), _TABLES[alphabet]) >= 32:
        row, col = (int(i[0]) for i in np.nonzero(codes == INVALID))
        raise InputError(
            f"sequence {row}, position {col + 1}: character {seqs[row][col]!r} is not in the "
            f"{alphabet} alphabet"
        )
    return codes[0] if single else codes


def decode(codes: np.ndarray, alphabet: str = "dna") -> list[str]:
    """Turn a code matrix back into strings (uppercase; N/X for unknown)."""
    letters = _NUCLEOTIDES + "N" if alphabet != "protein" else _AMINO_ACIDS + "X"
    if alphabet == "rna":
        letters = "ACGUN"
    table = np.frombuffer(letters.encode("ascii"), dtype=np.uint8)
    codes = np.atleast_2d(codes)
    return [row.tobytes().decode("ascii") for row in table[codes]]


def reverse_complement(codes: np.ndarray) -> np.ndarray:
    """Reverse complement of nucleotide codes along the last axis (N stays N)."""
    rc = np.where(codes < 4, 3 - codes.astype(np.int16), codes).astype(np.uint8)
    return rc[..., ::-1].copy()


def gc_content(codes: np.ndarray) -> np.ndarray:
    """GC fraction of each row of nucleotide codes, over its non-N bases."""
    codes = np.atleast_2d(codes)
    gc = ((codes == 1) | (codes == 2)).sum(axis=1)
    called = (codes < 4).sum(axis=1)
    return np.divide(gc, called, out=np.zeros(len(codes)), where=called > 0)
