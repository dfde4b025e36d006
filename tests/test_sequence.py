"""Sequence path: encoding, BED checks, GC-matched negatives, chromosome-aware folds, a CNN."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pysam
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

import dlpipe.io.fasta
from dlpipe.alphabet import decode, encode, gc_content, reverse_complement, unknown_code
from dlpipe.config import validate_config
from dlpipe.errors import ConfigError, InputError
from dlpipe.genomic import cross_fold_overlaps, genomic_groups
from dlpipe.io.bed import check_chromosomes, read_bed
from dlpipe.io.fasta import open_fasta
from dlpipe.kmers import kmer_frequencies
from dlpipe.metrics import multilabel_metrics
from dlpipe.modalities.sequence import prepare_fasta, prepare_sequence
from dlpipe.models import BUILTIN, available_models, outline
from dlpipe.models.checkpoint import raw_outputs
from dlpipe.split import make_folds
from dlpipe.steps.check import check_step
from dlpipe.tasks import get_task
from dlpipe.train import fit

MOTIF = "TGTGAGTTAGCTCACA"  # CRP consensus-like palindrome


@pytest.fixture(scope="module")
def genome(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Mock genome (3 chromosomes, GC varying along them) with a motif planted at BED sites."""
    rng = np.random.default_rng(11)
    folder = tmp_path_factory.mktemp("genome")
    fasta, bed_rows = [], []
    for c, size in enumerate((120_000, 100_000, 90_000)):
        gc = 0.35 + 0.3 * np.sin(np.linspace(0, 6, size)) ** 2  # regional GC shifts
        strong = rng.random(size) < gc
        bases = np.where(strong, rng.choice(list("GC"), size), rng.choice(list("AT"), size))
        bases[5000:5400] = "N"  # an assembly gap
        for start in rng.choice(np.arange(6000, size - 100, 300), 120, replace=False):
            bases[start : start + len(MOTIF)] = list(MOTIF)
            bed_rows.append((f"chr{c + 1}", start - 5, start + len(MOTIF) + 5))
        seq = "".join(bases)
        fasta.append(f">chr{c + 1}\n" + "\n".join(seq[i : i + 60] for i in range(0, size, 60)))
    fa = folder / "genome.fa"
    fa.write_text("\n".join(fasta) + "\n")
    bed = folder / "sites.bed"
    pd.DataFrame(bed_rows).to_csv(bed, sep="\t", header=False, index=False)
    return fa, bed


def _exp(fa: Path, bed: Path, **cv: object) -> dict:
    config = {
        "experiments": {
            "s": {
                "task": "classification",
                "data": {"modality": "sequence", "genome": str(fa), "bed": {"site": str(bed)},
                         "sequence_length": 100},
                "model": {"name": "cnn", "filters": [16], "kernel_sizes": [15]},
                "cv": {"plan": "chromosome_kfold", "n_splits": 3, **cv},
                "training": {"max_epochs": 15, "patience": 5, "progress_bar": False,
                             "device": "cpu", "batch_size": 32},
            }
        }
    }  # fmt: skip
    return validate_config(config)["experiments"]["s"]


def test_encode_decode_round_trip_and_soft_masking() -> None:
    seqs = ["ACGTNacgtn", "GGCCAATTRY"]
    codes = encode(seqs)
    assert codes.dtype == np.uint8
    assert codes.shape == (2, 10)
    assert decode(codes) == ["ACGTNACGTN", "GGCCAATTNN"]  # lowercase = uppercase, IUPAC = N
    assert decode(encode(["ACGU"], "rna"), "rna") == ["ACGU"]
    assert decode(encode(["MKVW"], "protein"), "protein") == ["MKVW"]


def test_reverse_complement_twice_is_identity() -> None:
    codes = np.random.default_rng(0).integers(0, 5, size=(50, 101)).astype(np.uint8)
    assert decode(reverse_complement(encode(["AACGTN"]))) == ["NACGTT"]
    np.testing.assert_array_equal(reverse_complement(reverse_complement(codes)), codes)


def test_characters_outside_the_alphabet_are_named() -> None:
    with pytest.raises(InputError, match=r"sequence 1, position 3: character '\*'"):
        encode(["ACGT", "AC*T"])
    with pytest.raises(InputError, match="length"):
        encode(["ACGT", "ACG"])
    with pytest.raises(ValueError, match="alphabet must be one of"):
        encode(["ACGT"], "DNA ")
    with pytest.raises(InputError, match=r"sequence 2, position 2: non-ASCII character 'é'"):
        encode(["ACGT", "ACGT", "AéGT"])
    # The first bad character in reading order is named, not just any of them.
    with pytest.raises(InputError, match=r"sequence 0, position 4: character '\\x00'"):
        encode(["ACG\x00", "-CGT"])


@pytest.mark.parametrize("alphabet", ["dna", "rna", "protein"])
def test_every_ascii_character_gets_its_documented_code(alphabet: str) -> None:
    letters = {
        "dna": "ACGT", "rna": "ACGU", "protein": "ACDEFGHIKLMNPQRSTVWY",
    }[alphabet]  # fmt: skip
    unknown = {"dna": "NRYSWKMBDHVU", "rna": "NRYSWKMBDHVT", "protein": "XBZJUO*"}[alphabet]
    for i, ch in enumerate(letters + letters.lower()):
        assert encode(ch * 3, alphabet).tolist() == [i % len(letters)] * 3, ch
    for ch in unknown + unknown.lower():
        expected = 3 if alphabet != "protein" and ch in "UuTt" else unknown_code(alphabet)
        assert encode(ch, alphabet).tolist() == [expected], ch
    accepted = set(letters + letters.lower() + unknown + unknown.lower())
    for ch in map(chr, range(128)):
        if ch not in accepted:
            with pytest.raises(InputError, match="not in the"):
                encode("A" + ch, alphabet)


def test_encoded_codes_are_a_writable_contiguous_matrix() -> None:
    seqs = ["".join(row) for row in np.random.default_rng(1).choice(list("ACGTN"), (300, 77))]
    codes = encode(seqs)
    assert codes.flags.c_contiguous
    assert codes.flags.writeable
    assert decode(codes) == seqs
    assert codes.max() == 4


def test_kmer_frequencies_count_every_kmer_and_skip_n() -> None:
    freq = kmer_frequencies(encode(["AACGN", "TTTTT"]), 2)
    # AA, AC, CG counted (GN skipped); indices in base 4: AA=0, AC=1, CG=6.
    np.testing.assert_allclose(freq[0][[0, 1, 6]], [1 / 3] * 3)
    assert freq[1][15] == 1.0  # TT
    np.testing.assert_allclose(freq.sum(axis=1), 1.0)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("chr1\t10\n", "at least 3"),
        ("chr1\t20\t10\n", "start 20 is after end 10"),
        ("chr1\t1.5\t10\n", "start '1.5' is not an integer"),
        ("chr1\tx\t10\n", "not an integer"),
        ("# only a comment\n", "holds no intervals"),
    ],
)
def test_bad_bed_lines_are_named(tmp_path: Path, content: str, message: str) -> None:
    bed = tmp_path / "bad.bed"
    bed.write_text("chr1\t0\t5\n" + content if "only" not in content else content)
    with pytest.raises(InputError, match=message) as err:
        read_bed(bed)
    assert str(bed) in str(err.value)
    if "only" not in content:
        assert "line 2" in str(err.value)


def test_chromosome_names_and_ends_are_checked(genome: tuple[Path, Path]) -> None:
    fa, _ = genome
    fasta = open_fasta(fa)
    lengths = dict(zip(fasta.references, fasta.lengths, strict=True))
    bed = pd.DataFrame({"chrom": ["1"], "start": [0], "end": [10], "line": [1]})
    with pytest.raises(InputError, match="add it to the BED names"):
        check_chromosomes(bed, lengths, "x.bed")
    beyond = pd.DataFrame({"chrom": ["chr3"], "start": [0], "end": [95_000], "line": [7]})
    with pytest.raises(InputError, match=r"line 7.*beyond the end of chr3"):
        check_chromosomes(beyond, lengths, "x.bed")


def test_missing_or_unindexable_fasta(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        open_fasta(tmp_path / "none.fa")
    bad = tmp_path / "plain.fa.gz"
    with gzip.open(bad, "wt") as handle:
        handle.write(">c\nACGT\n")
    with pytest.raises(InputError, match="bgzip"):
        open_fasta(bad)


def test_prepare_matches_gc_and_keeps_folds_apart(genome: tuple[Path, Path]) -> None:
    fa, bed = genome
    exp = _exp(fa, bed)
    data = prepare_sequence(exp, "s")
    pos = data.windows["label"] == "site"
    assert pos.sum() == 360
    assert (~pos).sum() == 360
    assert data.codes.shape == (720, 100)
    # GC-matched negatives: means within 0.01.
    assert abs(data.windows.loc[pos, "gc"].mean() - data.windows.loc[~pos, "gc"].mean()) < 0.01
    np.testing.assert_allclose(data.windows["gc"], gc_content(data.codes))
    # Every positive window holds the motif; no negative overlaps a positive.
    assert all(MOTIF in s for s in decode(data.codes[pos.to_numpy()]))
    assert (data.codes[~pos.to_numpy()] == 4).mean(axis=1).max() <= 0.01
    labels = get_task("classification").stratify(data.y)
    folds = make_folds(data.ids, exp["cv"], 0, labels=labels, groups=data.groups)
    test = folds[folds["set"] == "test"].set_index("id").loc[data.ids, "fold"].to_numpy()
    assert cross_fold_overlaps(data.windows.reset_index(drop=True), test) == 0
    per_chrom = pd.Series(test, index=data.windows["chrom"].to_numpy()).groupby(level=0).nunique()
    assert (per_chrom == 1).all()  # a chromosome is never split across test folds


def test_genomic_bins_group_overlapping_windows() -> None:
    windows = pd.DataFrame(
        {"chrom": ["c"] * 4, "start": [0, 99_950, 100_010, 250_000], "end": [100, 100_050,
                                                                                100_110, 250_100]}
    )  # fmt: skip
    groups = genomic_groups(windows, 100_000)
    # The two windows overlapping across the bin border share the first one's bin.
    assert list(groups) == ["c:0", "c:0", "c:0", "c:2"]


def test_sequence_config_rules() -> None:
    base = {"task": "classification", "data": {"modality": "sequence", "genome": "g.fa",
                                               "bed": {"t": "t.bed"}}}  # fmt: skip
    with pytest.raises(ConfigError, match="SMOTE"):
        validate_config({"experiments": {"s": {**base, "model": {"name": "cnn"},
                                               "preprocess": {"smote": True}}}})  # fmt: skip
    with pytest.raises(
        ConfigError,
        match=r"config key experiments\.s\.model\.name: 'mlp' reads features, but this "
        r"experiment's data are sequence; use one of cnn, danq, resnet1d",
    ):
        validate_config({"experiments": {"s": {**base, "model": {"name": "mlp"}}}})
    with pytest.raises(ConfigError, match="val_chromosomes"):
        validate_config({"experiments": {"s": {**base, "model": {"name": "cnn"},
                                               "cv": {"plan": "chromosome_holdout"}}}})  # fmt: skip


def test_chromosome_holdout_needs_positives_on_test_chromosomes(
    genome: tuple[Path, Path],
) -> None:
    fa, bed = genome
    exp = _exp(fa, bed, plan="chromosome_holdout", val_chromosomes=["chr2"],
               test_chromosomes=["chrX"])  # fmt: skip
    with pytest.raises(InputError, match=r"\['chrX'\], which are not in the genome"):
        prepare_sequence(exp, "s")


def test_cnn_learns_a_planted_motif(genome: tuple[Path, Path], tmp_path: Path) -> None:
    fa, bed = genome
    exp = _exp(fa, bed, plan="chromosome_holdout", val_chromosomes=["chr2"],
               test_chromosomes=["chr3"])  # fmt: skip
    data = prepare_sequence(exp, "s")
    task = get_task("classification")
    folds = make_folds(data.ids, exp["cv"], 0, labels=task.stratify(data.y), groups=data.groups,
                       chromosomes=data.windows["chrom"].to_numpy())  # fmt: skip
    side = folds.set_index("id").loc[data.ids, "set"].to_numpy()
    x, y = data.codes, data.y
    model = fit(
        (x[side == "train"], y[side == "train"]),
        (x[side == "val"], y[side == "val"]),
        exp, task, 2, tmp_path / "m.ckpt", tmp_path / "h.tsv", threads=2,
    )  # fmt: skip
    scores = raw_outputs(model, x[side == "test"])
    assert roc_auc_score(y[side == "test"], scores[:, 1] - scores[:, 0]) > 0.95


def test_fasta_index_is_built_beside_a_link_when_folder_is_read_only(
    genome: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fa, _ = genome
    ro = tmp_path / "ro"
    ro.mkdir()
    target = ro / "g.fa"
    target.write_text(fa.read_text())
    # Root can write anywhere; make the folder read-only for dlpipe's permission check.
    real = dlpipe.io.fasta.os.access
    monkeypatch.setattr(
        dlpipe.io.fasta.os, "access", lambda p, mode: False if Path(p) == ro else real(p, mode)
    )
    fasta = open_fasta(target, tmp_path / "cache")
    assert fasta.fetch("chr1", 0, 10) == pysam.FastaFile(str(fa)).fetch("chr1", 0, 10)
    assert (tmp_path / "cache" / "g.fa.fai").is_file()
    assert not (ro / "g.fa.fai").exists()
    with pytest.raises(InputError, match="read-only"):
        open_fasta(target)


def test_labelled_fasta_input_is_resized_and_grouped(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    records = []
    for i in range(40):
        label = "bound" if i % 2 else "unbound"
        size = 90 + (i % 3) * 10  # 90, 100, 110 bp: padded, kept, cropped
        seq = "".join(rng.choice(list("ACGT"), size))
        records.append(f">chr{1 + i % 4}:{1000 * i}-{1000 * i + size}|{label}\n{seq}")
    fa = tmp_path / "seqs.fa"
    fa.write_text("\n".join(records) + "\n")
    config = {"experiments": {"f": {
        "task": "classification",
        "data": {"modality": "sequence", "fasta": str(fa), "sequence_length": 100},
        "model": {"name": "cnn"},
        "cv": {"plan": "chromosome_kfold", "n_splits": 4},
    }}}  # fmt: skip
    exp = validate_config(config)["experiments"]["f"]
    data = prepare_fasta(exp, "f")
    assert data.codes.shape == (40, 100)
    assert data.classes == ["bound", "unbound"]
    assert data.meta["counts"]["padded"] == 14
    assert data.meta["counts"]["cropped"] == 13
    assert sorted(set(data.groups)) == ["chr1", "chr2", "chr3", "chr4"]
    padded = decode(data.codes[0:1])[0]  # 90 bp padded with 5 N on each side
    assert padded.startswith("NNNNN")
    assert padded.endswith("NNNNN")

    (tmp_path / "nolabel.fa").write_text(">a\nACGT\n>b|x\nACGT\n")
    exp["data"]["fasta"] = str(tmp_path / "nolabel.fa")
    with pytest.raises(InputError, match=r"\['a'\] have no label"):
        prepare_fasta(exp, "f")


def test_several_beds_give_a_multilabel_dataset(genome: tuple[Path, Path], tmp_path: Path) -> None:
    fa, bed = genome
    sites = pd.read_csv(bed, sep="\t", header=None)
    first, second = tmp_path / "a.bed", tmp_path / "b.bed"
    sites.iloc[:200].to_csv(first, sep="\t", header=False, index=False)
    sites.iloc[150:].to_csv(second, sep="\t", header=False, index=False)  # 50 sites in both
    exp = _exp(fa, bed)
    exp["data"]["bed"] = {"a": str(first), "b": str(second)}
    data = prepare_sequence(exp, "s")
    assert data.task == "multilabel"
    assert data.classes == ["a", "b"]
    y = data.y
    assert y.shape == (720, 2)
    assert y.dtype == np.float32
    assert int(y[:, 0].sum()) == 200
    assert int(y[:, 1].sum()) == 210
    assert int((y.sum(axis=1) == 2).sum()) == 50
    assert int((y.sum(axis=1) == 0).sum()) == 360  # the negatives


def test_multilabel_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, size=(80, 3))
    p = np.clip(y * 0.6 + rng.random((80, 3)) * 0.5, 0, 1)
    out = multilabel_metrics(y, p, ["a", "b", "c"])
    aurocs = [roc_auc_score(y[:, j], p[:, j]) for j in range(3)]
    assert out["auroc"] == pytest.approx(np.mean(aurocs))
    assert out["auroc_median"] == pytest.approx(np.median(aurocs))
    assert out["per_target"]["b"]["auprc"] == pytest.approx(
        average_precision_score(y[:, 1], p[:, 1])
    )


def test_every_builtin_family_says_what_it_reads() -> None:
    expected = {"cnn": "sequence", "danq": "sequence", "resnet1d": "sequence", "mlp": "features",
                "resnet": "image", "smallcnn": "image", "gnn": "graph"}  # fmt: skip
    assert set(BUILTIN) == set(expected)
    assert set(expected) <= set(available_models())
    for name, inputs in expected.items():
        assert outline(name).inputs == inputs, name


def test_chromosome_folds_need_positives_on_enough_chromosomes(genome: tuple[Path, Path]) -> None:
    fa, bed = genome
    with pytest.raises(InputError, match=r"positives lie on 3 chromosome\(s\).*n_splits=4"):
        prepare_sequence(_exp(fa, bed, n_splits=4), "s")
    only_chr1 = bed.parent / "chr1.bed"
    sites = pd.read_csv(bed, sep="\t", header=None)
    sites[sites[0] == "chr1"].to_csv(only_chr1, sep="\t", header=False, index=False)
    with pytest.raises(InputError, match="positives lie on 1 chromosome"):
        prepare_sequence(_exp(fa, only_chr1), "s")


def test_shuffled_negatives_keep_composition_and_their_source_fold(
    genome: tuple[Path, Path],
) -> None:
    fa, bed = genome
    exp = _exp(fa, bed)
    exp["data"]["negatives"].update(method="shuffle", ratio=1.5)
    data = prepare_sequence(exp, "s")
    pos = (data.windows["label"] == "site").to_numpy()
    assert pos.sum() == 360
    assert (~pos).sum() == 540
    assert pd.Index(data.ids).is_unique
    assert data.meta["negatives"] == "shuffle"
    # Each copy has its source's GC exactly and no longer holds the planted motif.
    neg = data.windows[~pos]
    source = neg["chrom"] + ":" + neg["start"].astype(str) + "-" + neg["end"].astype(str)
    np.testing.assert_allclose(neg["gc"].to_numpy(), data.windows.loc[source, "gc"].to_numpy())
    assert np.mean([MOTIF in s for s in decode(data.codes[~pos])]) < 0.05
    labels = get_task("classification").stratify(data.y)
    folds = make_folds(data.ids, exp["cv"], 0, labels=labels, groups=data.groups)
    test = folds[folds["set"] == "test"].set_index("id")["fold"]
    assert (test.loc[neg.index].to_numpy() == test.loc[source].to_numpy()).all()


def test_example_configs_pass_dlpipe_check(monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)  # example configs name their data relative to the checkout
    examples = sorted((root / "config" / "examples").glob("*.yaml"))
    assert examples
    lines = [line for path in examples for line in check_step(str(path))]
    assert (
        "oct4_mafk: 7997 samples (MafK: 4000, Oct4: 3997); baselines kmer6_logistic_regression, "
        "onehot_logistic_regression"
    ) in lines
    assert "nuclei: 136 images (background: 68, nucleus: 68) in 16 groups" in lines
