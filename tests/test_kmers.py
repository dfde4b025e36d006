"""k-mer composition baselines: counts in any alphabet, defaults per alphabet, real peptides."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dlpipe.alphabet import encode
from dlpipe.config import validate_config
from dlpipe.errors import ConfigError
from dlpipe.kmers import KmerFrequencies, composition, kmer_frequencies, kmer_limit
from dlpipe.modalities import get_modality
from dlpipe.modalities.sequence import baseline_ks, prepare_fasta

ROOT = Path(__file__).resolve().parents[1]


def test_protein_kmers_count_all_twenty_letters_and_skip_x() -> None:
    codes = encode(["ACDXWY", "WWWWWW"], "protein")
    single = kmer_frequencies(codes, 1, letters=20)
    assert single.shape == (2, 20)
    w, y = "ACDEFGHIKLMNPQRSTVWY".index("W"), "ACDEFGHIKLMNPQRSTVWY".index("Y")
    np.testing.assert_allclose(single[0, [0, 1, 2, w, y]], 0.2)  # X is not counted
    assert single[1, w] == 1.0
    pairs = kmer_frequencies(codes, 2, letters=20)
    assert pairs.shape == (2, 400)
    assert pairs[0, 0 * 20 + 1] == pytest.approx(1 / 3)  # AC, CD, WY of three valid pairs
    assert pairs[0, w * 20 + y] == pytest.approx(1 / 3)
    spectrum = composition(codes, [1, 2], letters=20)
    np.testing.assert_array_equal(spectrum, np.hstack([single, pairs]))
    # DNA codes read as before: W and Y (codes 18, 19) are not nucleotides.
    assert kmer_frequencies(codes, 1).sum(axis=1).tolist() == [1.0, 0.0]


def test_kmer_space_limits() -> None:
    assert (kmer_limit(4), kmer_limit(20)) == (12, 5)
    with pytest.raises(ValueError, match="between 1 and 5 for 20 letters"):
        kmer_frequencies(np.zeros((1, 10), np.uint8), 6, letters=20)


def _exp(alphabet: str, k: object = "auto", fasta: str = "x.fa", **data: object) -> dict:
    config = {
        "experiments": {
            "p": {
                "task": "classification",
                "data": {"modality": "sequence", "fasta": fasta, "alphabet": alphabet,
                         "sequence_length": 50, **data},
                "model": {"name": "cnn"},
                "baseline": {"k": k},
                "cv": {"plan": "stratified_kfold", "n_splits": 5},
            }
        }
    }  # fmt: skip
    return validate_config(config)["experiments"]["p"]


@pytest.mark.parametrize(
    ("alphabet", "k", "ks", "name"),
    [
        ("dna", "auto", [6], "kmer6_logistic_regression"),
        ("protein", "auto", [1, 2], "kmer1_2_logistic_regression"),
        ("protein", 3, [3], "kmer3_logistic_regression"),
        ("dna", [4, 2], [2, 4], "kmer2_4_logistic_regression"),
    ],
)
def test_baseline_k_defaults_by_alphabet_and_names(
    alphabet: str, k: object, ks: list[int], name: str
) -> None:
    exp = _exp(alphabet, k)
    assert baseline_ks(exp) == ks
    modality = get_modality("sequence")
    task = modality.task(exp)
    assert modality.baseline_name(exp, task) == name
    assert modality.make_baseline(exp, task).steps[0][1].letters == (
        20 if alphabet == "protein" else 4
    )


def test_baseline_text_names_amino_acid_and_dipeptide_composition() -> None:
    text = get_modality("sequence").baseline_text(_exp("protein"))
    assert text == "amino-acid and dipeptide composition + logistic regression (C=1.0)"


def test_a_kmer_space_too_large_is_refused_in_the_config() -> None:
    with pytest.raises(ConfigError, match=r"baseline.k: 6-mers of protein span 64,000,000 .* 5"):
        _exp("protein", 6)


def test_kmer_transformer_keeps_reading_baselines_fitted_before_alphabets() -> None:
    old = KmerFrequencies(2)
    del old.letters  # as unpickled from a baseline fitted before the parameter existed
    codes = encode(["ACGTAC"])
    np.testing.assert_array_equal(old.transform(codes), kmer_frequencies(codes, 2))


def test_composition_baseline_on_real_peptides_is_well_above_chance() -> None:
    """APD3 antimicrobial peptides vs UniProt peptides (resources/amp_vs_uniprot.fa.gz)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    exp = _exp("protein", fasta=str(ROOT / "resources" / "amp_vs_uniprot.fa.gz"))
    data = prepare_fasta(exp)
    y = np.asarray([data.classes.index(c) for c in data.windows["label"]])
    modality = get_modality("sequence")
    model = modality.make_baseline(exp, modality.task(exp))
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    accuracy = cross_val_score(model, data.codes, y, cv=folds).mean()
    # Published amino-acid + dipeptide composition baselines: 0.83-0.89 on such sets.
    assert accuracy > 0.83
    majority = np.bincount(y).max() / len(y)
    assert accuracy - majority > 0.25


def test_check_warns_when_kmers_outnumber_the_datas_positions(tmp_path: Path) -> None:
    from dlpipe.modalities.sequence import kmer_space_warning

    assert kmer_space_warning(_exp("dna"), 1_000) == ""  # 4,096 6-mers, 45,000 positions
    warning = kmer_space_warning(_exp("protein", 3), 10)  # 8,000 3-mers, 480 positions
    assert "3-mers (8,000 possible) outnumber the 480 k-mer positions" in warning
    fasta = tmp_path / "few.fa"
    fasta.write_text("".join(f">p{i}|{'ab'[i % 2]}\n{'MKVLAAGIVA' * 5}\n" for i in range(20)))
    line = get_modality("sequence").describe_data("p", _exp("protein", 3, fasta=str(fasta)))
    assert line.startswith(
        "p: 20 samples (a: 10, b: 10); baselines kmer3_logistic_regression, "
        "onehot_logistic_regression; warning: the baseline's 3-mers"
    )


def test_a_baseline_k_of_no_allowed_form_names_the_forms() -> None:
    with pytest.raises(ConfigError) as err:
        _exp("dna", "six")
    message = str(err.value)
    assert message.startswith("config key experiments.p.baseline.k: 'six' is not valid; ")
    assert "allowed values are auto; k-mer length(s) of the sequence baseline" in message
