"""Labels files of a FASTA (``data.labels``): two explicit forms, every mismatch named."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlpipe.config import validate_config
from dlpipe.errors import ConfigError, InputError
from dlpipe.io.fasta import read_labelled_fasta
from dlpipe.io.labels import read_labels
from dlpipe.workflow import rebase_paths

IDS = ["seq1", "seq2", "seq3", "seq4"]


def _fasta(folder: Path) -> Path:
    path = folder / "peptides.fa"
    path.write_text("".join(f">{i} some description\nMKVLAAGIVA\n" for i in IDS))
    return path


def _write(folder: Path, text: str, name: str = "labels.tsv") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_two_columns_without_header_label_every_sequence(tmp_path: Path) -> None:
    labels = _write(tmp_path, "seq1\tAMP\nseq2\tnon\nseq3\tAMP\nseq4\tnon\n")
    ids, _, found = read_labelled_fasta(_fasta(tmp_path), str(labels))
    assert ids == IDS
    assert found == ["AMP", "non", "AMP", "non"]


def test_named_columns_take_a_header_and_ignore_other_columns(tmp_path: Path) -> None:
    text = "length\tclass\tname\n10\tAMP\tseq1\n10\tnon\tseq2\n10\tAMP\tseq3\n10\tnon\tseq4\n"
    labels = _write(tmp_path, text)
    spec = {"path": str(labels), "id_column": "name", "label_column": "class"}
    _, _, found = read_labelled_fasta(_fasta(tmp_path), spec)
    assert found == ["AMP", "non", "AMP", "non"]


def test_a_header_line_in_the_two_column_form_is_named_not_dropped(tmp_path: Path) -> None:
    labels = _write(tmp_path, "id\tlabel\nseq1\tAMP\nseq2\tnon\nseq3\tAMP\nseq4\tnon\n")
    with pytest.raises(InputError, match=r"line 1 \['id', 'label'\] looks like a header") as err:
        read_labels(str(labels), IDS)
    assert "{path: FILE, id_column: NAME, label_column: NAME}" in str(err.value)


def test_a_third_column_names_the_cause(tmp_path: Path) -> None:
    labels = _write(tmp_path, "id\tlabel\tlength\nseq1\tAMP\t10\n")
    with pytest.raises(InputError, match="line 1 has 3 tab-separated columns"):
        read_labels(str(labels), IDS)


@pytest.mark.parametrize(
    ("text", "spec", "message"),
    [
        (
            "name\tclass\nseq1\tAMP\n",
            {"id_column": "id"},
            r"line 1 \(the header\) has no column 'id' \(data.labels.id_column\); its columns are "
            r"\['name', 'class'\]",
        ),
        ("id\tlabel\nseq1\tAMP\nseq1\tnon\n", {}, "line 3: sequence id 'seq1' is given a second"),
        ("id\tlabel\nseq1\t \n", {}, "line 2: sequence 'seq1' has an empty label"),
        ("id\tlabel\nseq1\n", {}, "line 2 has 1 column"),
        ("id\tlabel\nchr1:1-10\tAMP\n", {}, "none of its 1 ids is a sequence id of the FASTA"),
        ("id\tlabel\n", {}, "none of its 0 ids"),
    ],
    ids=["missing_column", "duplicate_id", "empty_label", "short_line", "foreign_ids", "no_rows"],
)
def test_object_form_mismatches_name_file_line_and_key(
    tmp_path: Path, text: str, spec: dict, message: str
) -> None:
    labels = _write(tmp_path, text)
    with pytest.raises(InputError, match=message) as err:
        read_labels({"path": str(labels), **spec}, IDS)
    assert str(labels) in str(err.value)


def test_missing_sequences_are_counted_and_shown(tmp_path: Path) -> None:
    labels = _write(tmp_path, "seq1\tAMP\nseq2\tnon\n")
    with pytest.raises(
        InputError, match=r"no label for 2 of the 4 sequences .* \['seq3', 'seq4'\]"
    ):
        read_labelled_fasta(_fasta(tmp_path), str(labels))


def test_empty_missing_or_binary_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="labels file not found"):
        read_labels(str(tmp_path / "none.tsv"), IDS)
    with pytest.raises(InputError, match="the labels file is empty"):
        read_labels(str(_write(tmp_path, "\n\n")), IDS)
    binary = tmp_path / "labels.tsv.gz"
    binary.write_bytes(b"\x1f\x8b\x08\x00\xff\xfe\x00")
    with pytest.raises(InputError, match="not a text file"):
        read_labels(str(binary), IDS)


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(
        st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=8),
        st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=6),
        min_size=1,
        max_size=20,
    )
)
def test_two_column_files_read_back_what_was_written(mapping: dict[str, str]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "labels.tsv"
        path.write_text("".join(f"{k}\t{v}\n" for k, v in mapping.items()))
        assert read_labels(str(path), list(mapping)) == mapping


def _config(fasta: Path, labels: object) -> dict:
    return {
        "experiments": {
            "amp": {
                "task": "classification",
                "data": {"modality": "sequence", "fasta": str(fasta), "labels": labels,
                         "alphabet": "protein", "sequence_length": 10},
                "model": {"name": "cnn"},
            }
        }
    }  # fmt: skip


def test_config_takes_both_forms_and_rebases_the_object_forms_path(tmp_path: Path) -> None:
    fasta = _fasta(tmp_path)
    config = validate_config(_config(fasta, {"path": "labels.tsv", "label_column": "class"}))
    rebased = rebase_paths(config, "/data/project")
    assert rebased["experiments"]["amp"]["data"]["labels"] == {
        "path": "/data/project/labels.tsv", "label_column": "class",
    }  # fmt: skip
    assert validate_config(_config(fasta, "labels.tsv"))["experiments"]["amp"]["data"]["labels"]
    with pytest.raises(ConfigError, match="label_col"):
        validate_config(_config(fasta, {"path": "labels.tsv", "label_col": "class"}))
