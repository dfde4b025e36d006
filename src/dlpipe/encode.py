"""Sequence encoding: 1-byte codes on the host, one-hot expansion on the device.

Sequences are stored once as ``uint8`` codes (DNA/RNA: A=0, C=1, G=2, T/U=3, N and other
IUPAC ambiguity codes=4; protein: the 20 amino acids in alphabetical one-letter order = 0..19,
unknown ``X``/``B``/``Z``/``J``/``U``/``O``/``*`` = 20). Encoding is a single table look-up over
the bytes of all sequences at once — no per-base Python — and soft-masked (lowercase) bases
are read like uppercase ones. The model receives a float one-hot tensor made from the codes on
the device at batch time (:func:`one_hot`), so host memory holds one byte per base.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dlpipe.errors import InputError

ALPHABETS = ("dna", "rna", "protein")
_NUCLEOTIDES = "ACGT"
_IUPAC = "NRYSWKMBDHV"
_AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
_AA_UNKNOWN = "XBZJUO*"
INVALID = 255


def _table(alphabet: str) -> np.ndarray:
    lut = np.full(256, INVALID, dtype=np.uint8)

    def put(chars: str, code: int) -> None:
        for ch in chars:
            lut[ord(ch.upper())] = code
            lut[ord(ch.lower())] = code

    if alphabet in ("dna", "rna"):
        for i, base in enumerate(_NUCLEOTIDES):
            put(base, i)
        put("U", 3)  # RNA U reads as T; DNA files with U are accepted too
        put(_IUPAC, 4)
    elif alphabet == "protein":
        for i, aa in enumerate(_AMINO_ACIDS):
            put(aa, i)
        put(_AA_UNKNOWN, 20)
    else:
        raise ValueError(f"alphabet must be one of {ALPHABETS}, not {alphabet!r}")
    return lut


_TABLES = {name: _table(name) for name in ALPHABETS}
# bytes.translate runs the look-up in C, faster than numpy fancy indexing.
_TRANSLATE = {name: table.tobytes() for name, table in _TABLES.items()}
#: Bytes of sequence encoded per block (see :func:`encode`).
_BLOCK_BYTES = 256 * 1024


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
    codes = np.empty((len(seqs), length), dtype=np.uint8)
    if length == 0:
        return codes[0] if single else codes
    table = _TRANSLATE[alphabet]
    # Blocks of about 256 kB: their temporary buffers stay in cache and are reused by the
    # allocator, so each base is touched in fast memory and only the result is written to fresh
    # pages (one pass over all sequences at once is ~3x slower, paying page faults for each of
    # its whole-size temporaries). Per block: join, ASCII encode, table look-up, all in C.
    rows = max(1, _BLOCK_BYTES // length)
    for start in range(0, len(seqs), rows):
        try:
            raw = "".join(seqs[start : start + rows]).encode("ascii")
        except UnicodeEncodeError as err:
            raise InputError(f"non-ASCII character in a sequence: {err}") from None
        block = raw.translate(table)
        flat = block.find(INVALID)
        if flat >= 0:
            row, col = divmod(flat, length)
            raise InputError(
                f"sequence {start + row}, position {col + 1}: character {chr(raw[flat])!r} is "
                f"not in the {alphabet} alphabet"
            )
        codes[start : start + rows] = np.frombuffer(block, dtype=np.uint8).reshape(-1, length)
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
