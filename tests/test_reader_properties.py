"""Property-based tests of the table, FASTA and BED readers (hypothesis).

Two properties per reader: what dlpipe writes in the format reads back unchanged, and any
bytes at all, named as that format, give either data or one :class:`InputError`, never another
exception. Examples are derandomised, so a run is the same on every machine.
"""

from __future__ import annotations

import gzip
import string
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlpipe.errors import InputError
from dlpipe.io.bed import read_bed
from dlpipe.io.fasta import read_fasta_records
from dlpipe.io.tables import read_table

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)

_NAME = st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=8)
_LABEL = st.text(string.ascii_letters + " -", min_size=1, max_size=6).filter(
    lambda s: s.strip() == s and s.strip()
)
_FLOAT = st.floats(allow_nan=False, allow_infinity=False, width=64, min_value=-1e12, max_value=1e12)


def _read(read: Callable[[Path], Any], path: Path) -> tuple[Any, str | None]:
    """``(result, None)``, or ``(None, message)`` when ``read`` raises :class:`InputError`."""
    try:
        return read(path), None
    except InputError as err:
        return None, str(err)


def _tmp(name: str, data: bytes) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="dlpipe-prop-"))
    path = folder / name
    path.write_bytes(data)
    return path


# --- tables -----------------------------------------------------------------------------------


@st.composite
def _tables(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(1, 25))
    columns = draw(st.lists(_NAME.map(lambda s: "f" + s), min_size=1, max_size=4, unique=True))
    ids = draw(st.lists(_NAME, min_size=n, max_size=n, unique=True))
    frame = pd.DataFrame({"id": ids})
    for col in columns:
        frame[col] = draw(st.lists(_FLOAT, min_size=n, max_size=n))
    frame["label"] = draw(st.lists(_LABEL, min_size=n, max_size=n))
    return frame


@SETTINGS
@given(frame=_tables(), sep=st.sampled_from([",", "\t"]), compressed=st.booleans())
def test_a_written_table_reads_back_unchanged(
    frame: pd.DataFrame, sep: str, compressed: bool
) -> None:
    name = ("t.csv" if sep == "," else "t.tsv") + (".gz" if compressed else "")
    text = frame.to_csv(sep=sep, index=False).encode()
    path = _tmp(name, gzip.compress(text, mtime=0) if compressed else text)
    back = read_table(path, exact_columns=["id", "label"])
    assert list(back.columns) == list(frame.columns)
    assert back["id"].tolist() == frame["id"].tolist()
    assert back["label"].tolist() == frame["label"].tolist()
    numeric = [c for c in frame.columns if c not in ("id", "label")]
    np.testing.assert_allclose(back[numeric].to_numpy(float), frame[numeric].to_numpy(float))


@SETTINGS
@given(data=st.binary(max_size=300), name=st.sampled_from(["x.csv", "x.tsv", "x.csv.gz"]))
def test_any_bytes_named_as_a_table_give_a_table_or_an_input_error(data: bytes, name: str) -> None:
    path = _tmp(name, data)
    table, message = _read(read_table, path)
    if message is not None:
        assert message.startswith(str(path))
    else:
        assert isinstance(table, pd.DataFrame)
        assert len(table) > 0


@SETTINGS
@given(frame=_tables(), cut=st.floats(0.0, 1.0))
def test_a_truncated_gzip_table_is_an_input_error_or_its_intact_prefix(
    frame: pd.DataFrame, cut: float
) -> None:
    data = gzip.compress(frame.to_csv(index=False).encode(), mtime=0)
    path = _tmp("t.csv.gz", data[: int(len(data) * cut)])
    table, message = _read(lambda p: read_table(p, exact_columns=["id", "label"]), path)
    if message is not None:
        assert message.startswith(str(path))
    else:  # gzip can end cleanly at a member boundary only: nothing was cut
        assert table["id"].tolist() == frame["id"].tolist()


# --- FASTA ------------------------------------------------------------------------------------


_SEQ = st.text("ACGTNacgtn", min_size=1, max_size=60)


@SETTINGS
@given(
    records=st.lists(st.tuples(_NAME, _SEQ), min_size=1, max_size=10, unique_by=lambda r: r[0]),
    width=st.integers(1, 80),
)
def test_written_fasta_records_read_back_unchanged(
    records: list[tuple[str, str]], width: int
) -> None:
    text = "".join(
        f">{name}\n" + "".join(seq[i : i + width] + "\n" for i in range(0, len(seq), width))
        for name, seq in records
    )
    back = read_fasta_records(_tmp("s.fa", text.encode()))
    assert back == records


@SETTINGS
@given(data=st.binary(max_size=300))
def test_any_bytes_named_fasta_give_records_or_an_input_error(data: bytes) -> None:
    path = _tmp("s.fa", data)
    records, message = _read(read_fasta_records, path)
    if message is not None:
        assert message.startswith(str(path))
    else:
        assert records
        assert all(seq for _, seq in records)  # an empty record is refused, never padded


# --- BED --------------------------------------------------------------------------------------


_INTERVAL = st.tuples(_NAME.map(lambda s: "chr" + s), st.integers(0, 10**9), st.integers(0, 10**4))


@SETTINGS
@given(intervals=st.lists(_INTERVAL, min_size=1, max_size=20), header=st.booleans())
def test_written_bed_intervals_read_back_unchanged(
    intervals: list[tuple[str, int, int]], header: bool
) -> None:
    lines = ["track name=peaks", "# comment"] if header else []
    lines += [f"{chrom}\t{start}\t{start + size}" for chrom, start, size in intervals]
    bed = read_bed(_tmp("p.bed", ("\n".join(lines) + "\n").encode()))
    assert bed["chrom"].tolist() == [c for c, _, _ in intervals]
    assert bed["start"].tolist() == [s for _, s, _ in intervals]
    assert bed["end"].tolist() == [s + n for _, s, n in intervals]
    assert bed["line"].tolist() == list(range(1 + 2 * header, 1 + 2 * header + len(intervals)))


@SETTINGS
@given(data=st.binary(max_size=300), name=st.sampled_from(["p.bed", "p.bed.gz"]))
def test_any_bytes_named_bed_give_intervals_or_an_input_error(data: bytes, name: str) -> None:
    path = _tmp(name, data)
    bed, message = _read(read_bed, path)
    if message is not None:
        assert message.startswith(str(path))
    else:
        assert (bed["start"] <= bed["end"]).all()
        assert (bed["start"] >= 0).all()
