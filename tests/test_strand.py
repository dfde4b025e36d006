"""Strand: stranded BED windows are read on their strand; auto flips strands only where harmless."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dlpipe.alphabet import decode, encode, reverse_complement
from dlpipe.config import validate_config
from dlpipe.genomic import fetch, strand_plan
from dlpipe.io.fasta import open_fasta
from dlpipe.modalities.sequence import prepare_fasta, prepare_sequence, read_new_intervals
from dlpipe.tasks import get_task

# An asymmetric motif: its reverse complement (TTACGGA…) is a different word.
MOTIF = "TCCGTAAGGC"


def _genome(folder: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    chroms = []
    for c in range(3):
        seq = "".join(rng.choice(list("ACGT"), 60_000))
        chroms.append(f">chr{c + 1}\n" + "\n".join(seq[i : i + 60] for i in range(0, len(seq), 60)))
    path = folder / "genome.fa"
    path.write_text("\n".join(chroms) + "\n")
    return path


def _exp(**data: object) -> dict:
    config = {
        "experiments": {
            "s": {
                "task": "classification",
                "data": {"modality": "sequence", "sequence_length": 40, **data},
                "model": {"name": "cnn", "filters": [8], "kernel_sizes": [9]},
                "cv": {"plan": "chromosome_holdout", "val_chromosomes": ["chr1"],
                       "test_chromosomes": ["chr2"]},
            }
        }
    }  # fmt: skip
    return validate_config(config)["experiments"]["s"]


def test_minus_strand_windows_are_the_reverse_complement(tmp_path: Path) -> None:
    fasta = open_fasta(_genome(tmp_path))
    windows = pd.DataFrame(
        {"chrom": ["chr1", "chr1", "chr2"], "start": [100, 100, -5], "end": [120, 120, 15],
         "strand": ["+", "-", "-"]}
    )  # fmt: skip
    forward = fetch(fasta, windows)
    stranded = fetch(fasta, windows, stranded=True)
    np.testing.assert_array_equal(stranded[0], forward[0])
    np.testing.assert_array_equal(stranded[1], reverse_complement(forward[1]))
    assert decode(stranded[2])[0].startswith(decode(reverse_complement(forward[2]))[0][:15])
    assert decode(stranded[2])[0].endswith("NNNNN")  # the padding is 3' on the minus strand


@pytest.mark.parametrize(
    ("setting", "alphabet", "source", "stranded", "coordinates", "on", "why"),
    [
        ("auto", "dna", "genome", False, False, True, "unstranded DNA windows"),
        ("auto", "dna", "genome", True, False, False, "read on their BED strand"),
        ("auto", "dna", "fasta", False, True, True, "unstranded DNA windows"),
        ("auto", "dna", "fasta", False, False, False, "FASTA records are read as given"),
        ("auto", "rna", "fasta", False, True, False, "RNA is single-stranded"),
        ("auto", "protein", "fasta", False, False, False, "no reverse complement"),
        (True, "dna", "genome", True, False, True, "set in the config"),
        (False, "dna", "genome", False, False, False, "set in the config"),
        (True, "protein", "fasta", False, False, False, "no reverse complement"),
    ],
)
def test_strand_plan_decides_and_says_why(
    setting: object, alphabet: str, source: str, stranded: bool, coordinates: bool, on: bool,
    why: str,
) -> None:  # fmt: skip
    plan = strand_plan(setting, alphabet, source, stranded, coordinates)
    assert plan.reverse_complement is on
    assert why in plan.why


def test_stranded_bed_windows_read_on_their_strand_with_random_strand_background(
    tmp_path: Path,
) -> None:
    genome = _genome(tmp_path)
    fasta = open_fasta(genome)
    rows = []
    for k, start in enumerate(range(1_000, 58_000, 1_000)):
        rows.append((f"chr{k % 3 + 1}", start, start + 10, f"s{k}", 0, "+-"[k % 3 == 0]))
    bed = tmp_path / "sites.bed"
    pd.DataFrame(rows).to_csv(bed, sep="\t", header=False, index=False)
    data = prepare_sequence(_exp(genome=str(genome), bed={"site": str(bed)}))
    plan = data.meta["strand"]
    assert plan["stranded"]
    assert not plan["reverse_complement"]
    positives = data.windows[data.windows["label"] == "site"]
    assert set(positives["strand"]) == {"+", "-"}
    assert all(i.endswith(("(+)", "(-)")) for i in data.windows.index)
    background = data.windows["label"] == "background"
    assert 0.3 < (data.windows.loc[background, "strand"] == "-").mean() < 0.7
    for row, codes in zip(data.windows.itertuples(), data.codes, strict=True):
        forward = encode(fasta.fetch(row.chrom, row.start, row.end))
        expected = reverse_complement(forward) if row.strand == "-" else forward
        np.testing.assert_array_equal(codes, expected)
    ids, codes, _ = read_new_intervals(bed, genome, 40, stranded=True)
    by_id = dict(zip(data.windows.index, data.codes, strict=True))
    for i, c in zip(ids, codes, strict=True):
        np.testing.assert_array_equal(c, by_id[i])  # prediction reads windows as training did
    ignored = prepare_sequence(_exp(genome=str(genome), bed={"site": str(bed)}, strand="ignore"))
    assert not ignored.meta["strand"]["stranded"]
    assert ignored.meta["strand"]["reverse_complement"]
    assert "strand" not in ignored.windows
    assert not ignored.windows.index.str.endswith(")").any()


def _strand_only_fasta(folder: Path, n: int = 600, seed: int = 0) -> Path:
    """Positives hold the motif, negatives its reverse complement: orientation is the signal."""
    rng = np.random.default_rng(seed)
    anti = decode(reverse_complement(encode(MOTIF)))[0]
    lines = []
    for i in range(n):
        label = "sense" if i % 2 else "antisense"
        seq = list(rng.choice(list("ACGT"), 50))
        at = int(rng.integers(0, 50 - len(MOTIF)))
        seq[at : at + len(MOTIF)] = MOTIF if label == "sense" else anti
        lines.append(f">r{i}|{label}\n{''.join(seq)}\n")
    path = folder / "oriented.fa"
    path.write_text("".join(lines))
    return path


def test_auto_keeps_a_strand_only_signal_that_forced_flipping_destroys(tmp_path: Path) -> None:
    from dlpipe.models.checkpoint import raw_outputs
    from dlpipe.train import fit  # lazy: Lightning

    fasta = _strand_only_fasta(tmp_path)
    accuracy = {}
    for setting in ("auto", True):
        exp = validate_config(
            {"experiments": {"o": {
                "task": "classification", "seed": 0,
                "data": {"modality": "sequence", "fasta": str(fasta), "sequence_length": 50},
                "model": {"name": "cnn", "filters": [16], "kernel_sizes": [10]},
                "training": {"max_epochs": 12, "patience": 12, "batch_size": 32,
                             "learning_rate": 0.01, "progress_bar": False, "device": "cpu",
                             "reverse_complement": setting},
            }}}
        )["experiments"]["o"]  # fmt: skip
        data = prepare_fasta(exp)
        plan = data.meta["strand"]
        assert plan["reverse_complement"] is (setting is True)
        # What the train step does: the data set's resolved plan replaces the setting.
        exp["training"]["reverse_complement"] = plan["reverse_complement"]
        y = np.asarray([data.classes.index(c) for c in data.windows["label"]])
        model = fit((data.codes[:400], y[:400]), (data.codes[400:500], y[400:500]), exp,
                    get_task("classification"), 2, tmp_path / f"{setting}.ckpt",
                    tmp_path / f"{setting}.tsv")  # fmt: skip
        predicted = raw_outputs(model, data.codes[500:]).argmax(axis=1)
        accuracy[setting] = float((predicted == y[500:]).mean())
    assert accuracy["auto"] > 0.9
    assert accuracy["auto"] - accuracy[True] > 0.2  # orientations look alike once flipped
