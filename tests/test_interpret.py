"""Attributions and motifs on a synthetic planted-motif set; TOMTOM matching; tabular importance.

A CTCF site sampled from JASPAR's MA0139.2 matrix is planted into half of random sequences; a
small CNN is trained on them (plain torch loop, seeded, a second on the CPU). Attributions must
peak on the planted site, the seqlets called against dinucleotide-shuffled controls must cluster
into a motif that matches CTCF in JASPAR significantly, and a JASPAR matrix searched against
JASPAR must return itself; a random motif has no significant match.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from dlpipe.interpret import (
    ExplainedOutput,
    deeplift_shap,
    explain_sequences,
    filter_motifs,
    in_silico_mutagenesis,
    integrated_gradients,
    ism_contributions,
    motif_table,
    one_hot_of,
    position_contributions,
    select_sequences,
    shuffled_copies,
    tabular_importance,
)
from dlpipe.io.jaspar import Motif, load_jaspar, ppm_from_counts, read_jaspar_file, write_jaspar
from dlpipe.modalities.tabular import prepare_tabular
from dlpipe.models import build_model
from dlpipe.motifs import (
    MotifMatcher,
    best_match,
    call_seqlets,
    cluster_seqlets,
    reverse_complement,
)
from dlpipe.preprocess import preprocess_fold
from dlpipe.split import fold_indices, make_folds
from dlpipe.tasks import get_task

LENGTH = 60
N = 600


@pytest.fixture(scope="module")
def jaspar() -> list[Motif]:
    return load_jaspar("JASPAR2024", tax_groups=["vertebrates"])


@pytest.fixture(scope="module")
def planted(jaspar: list[Motif]) -> dict:
    """Sequences with a CTCF site (sampled from MA0139.2) in the positives, and a trained CNN."""
    ctcf = next(m for m in jaspar if m.id == "MA0139.2")
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 4, size=(N, LENGTH)).astype(np.uint8)
    y = np.zeros(N, dtype=np.int64)
    y[: N // 2] = 1
    starts = rng.integers(0, LENGTH - ctcf.length, size=N)
    for i in range(N // 2):
        site = [rng.choice(4, p=col) for col in ctcf.ppm]
        if rng.random() < 0.5:  # either strand
            site = [3 - b for b in site[::-1]]
        codes[i, starts[i] : starts[i] + ctcf.length] = site
    torch.manual_seed(0)
    model = build_model("cnn", 4, 2, filters=[16], kernel_sizes=[15], pool=1, dropout=0.0)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    x, target = torch.from_numpy(codes), torch.from_numpy(y)
    for _ in range(40):
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), target)
        loss.backward()
        optimiser.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == target).float().mean().item()
    return {"codes": codes, "y": y, "starts": starts, "model": model, "ctcf": ctcf,
            "accuracy": accuracy}  # fmt: skip


def _on_site(contrib: np.ndarray, starts: np.ndarray, width: int, slack: int = 1) -> float:
    """Fraction of sequences whose largest contribution lies inside the planted site."""
    peak = contrib.argmax(axis=1)
    return float(((peak >= starts - slack) & (peak < starts + width + slack)).mean())


def test_the_cnn_learned_the_planted_set(planted: dict) -> None:
    assert planted["accuracy"] > 0.95


def test_attributions_peak_on_the_planted_motif(planted: dict) -> None:
    model, codes = planted["model"], planted["codes"][:100]  # positives only
    explained = ExplainedOutput(model).eval()
    x = one_hot_of(model, codes)
    assert x.shape == (100, 4, LENGTH)
    width, starts = planted["ctcf"].length, planted["starts"][:100]
    ig = integrated_gradients(explained, x, target=1, n_steps=32)
    assert _on_site(position_contributions(ig), starts, width) > 0.9
    refs = one_hot_of(model, shuffled_copies(codes, 8, seed=0).reshape(-1, LENGTH))
    refs = refs.view(8, 100, 4, LENGTH)
    dls = deeplift_shap(explained, x, 1, refs)
    assert _on_site(position_contributions(dls), starts, width) > 0.9
    ism = in_silico_mutagenesis(explained, x, 1)
    assert ism.shape == (100, 4, LENGTH)
    assert np.all(ism[x.numpy() > 0.5] == 0)  # the observed base changes nothing
    assert _on_site(ism_contributions(ism, x.numpy()), starts, width) > 0.9
    # Integrated gradients are complete: they sum to output(x) - output(reference).
    with torch.no_grad():
        gap = explained(x)[:, 1] - explained(torch.full_like(x, 0.25))[:, 1]
    np.testing.assert_allclose(ig.sum(axis=(1, 2)), gap.numpy(), rtol=0.05, atol=0.05)


def test_deeplift_shap_explains_each_sequence_against_its_own_shuffles() -> None:
    # A model DeepLift's rules are exact for (convolution, ReLU, linear; dlpipe's CNN takes a
    # global max, whose gradient DeepLift passes through): the attributions of a sequence sum
    # to its output minus the mean output of its own references.
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv1d(4, 3, 5), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(3 * 26, 2)
    ).eval()
    codes = np.random.default_rng(4).integers(0, 4, size=(5, 30)).astype(np.uint8)
    x = torch.nn.functional.one_hot(torch.from_numpy(codes).long(), 4).permute(0, 2, 1).float()
    copies = torch.from_numpy(shuffled_copies(codes, 4, seed=0)).long()
    refs = torch.nn.functional.one_hot(copies, 4).permute(0, 1, 3, 2).float()  # (4, 5, 4, 30)
    dls = deeplift_shap(model, x, 1, refs, batch_size=2)
    with torch.no_grad():
        gap = model(x)[:, 1] - torch.stack([model(r)[:, 1] for r in refs]).mean(dim=0)
    np.testing.assert_allclose(dls.sum(axis=(1, 2)), gap.numpy(), rtol=1e-4, atol=1e-5)
    # Shared references would give other attributions: each sequence has its own.
    shared = deeplift_shap(model, x, 1, refs[:, :1].expand(-1, 5, -1, -1))
    assert not np.allclose(dls, shared)


def test_in_silico_mutagenesis_equals_single_substitutions(planted: dict) -> None:
    model = planted["model"]
    explained = ExplainedOutput(model).eval()
    x = one_hot_of(model, planted["codes"][:2])
    ism = in_silico_mutagenesis(explained, x, 1, batch_size=100)
    mutant = x[1:2].clone()
    mutant[0, :, 7] = 0
    mutant[0, 2, 7] = 1
    with torch.no_grad():
        delta = explained(mutant)[0, 1] - explained(x[1:2])[0, 1]
    assert ism[1, 2, 7] == pytest.approx(float(delta), abs=1e-5)


def test_seqlet_motif_of_the_planted_site_matches_ctcf_in_jaspar(
    planted: dict, jaspar: list[Motif]
) -> None:
    model, codes = planted["model"], planted["codes"][: N // 2]
    explained = ExplainedOutput(model).eval()
    x = one_hot_of(model, codes)
    ig = position_contributions(integrated_gradients(explained, x, 1, n_steps=16))
    sham = one_hot_of(model, shuffled_copies(codes, 2, seed=1).reshape(-1, LENGTH))
    control = position_contributions(integrated_gradients(explained, sham, 1, n_steps=16))
    seqlets = call_seqlets(ig, control, width=20)
    assert len(seqlets) >= N // 2 * 0.9
    # The called spans lie on the planted sites, inside their centred windows.
    site = planted["starts"][seqlets["sequence"]]
    on_site = (seqlets["span_end"] > site) & (seqlets["span_start"] < site + planted["ctcf"].length)
    assert on_site.mean() > 0.9
    assert ((seqlets["end"] - seqlets["start"]) == 20).all()
    assert (seqlets["start"] <= seqlets["span_start"]).mean() > 0.9
    motifs = cluster_seqlets(x.numpy().transpose(0, 2, 1), ig, seqlets, width=20)
    assert motifs[0].n_sites > N // 4
    hits = MotifMatcher(jaspar).match(motifs[0])
    assert hits.iloc[0]["target_name"] == "CTCF"
    assert hits.iloc[0]["q_value"] < 1e-4


def test_seqlets_are_not_called_on_noise() -> None:
    rng = np.random.default_rng(3)
    noise = rng.normal(size=(200, LENGTH))
    seqlets = call_seqlets(noise, rng.normal(size=(400, LENGTH)), width=20)
    assert len(seqlets) == 0  # no threshold reaches the target FDR


def test_first_layer_filters_recover_the_site(planted: dict, jaspar: list[Motif]) -> None:
    model, codes = planted["model"], planted["codes"][: N // 2]
    x = one_hot_of(model, codes)
    motifs = filter_motifs(model, ExplainedOutput(model).eval(), x, 1)
    assert motifs
    top = max(motifs, key=lambda m: m.info["influence"])
    assert top.info["influence"] > 0
    # The most influential filter resembles CTCF more than a column-shuffled CTCF does.
    ctcf = planted["ctcf"]
    rng = np.random.default_rng(1)
    decoy = Motif("decoy", "decoy", ctcf.ppm[rng.permutation(ctcf.length)])
    hits = MotifMatcher([*jaspar, decoy]).match(top)
    ranked = hits["target_id"].tolist()
    assert ranked.index("MA0139.2") < ranked.index("decoy")


@pytest.mark.parametrize("matrix_id", ["MA0139.2", "MA0142.1", "MA0496.4"])
def test_a_planted_jaspar_matrix_matches_itself(jaspar: list[Motif], matrix_id: str) -> None:
    planted = next(m for m in jaspar if m.id == matrix_id)
    hits = MotifMatcher(jaspar).match(planted)
    assert hits.iloc[0]["target_id"] == matrix_id
    assert hits.iloc[0]["offset"] == 0
    assert hits.iloc[0]["overlap"] == planted.length
    assert hits.iloc[0]["strand"] == "+"
    assert hits.iloc[0]["q_value"] < 1e-6
    # Reverse complemented, a column trimmed at each end and blurred, it is still among the
    # best matches (short fragments fit the paralogues' matrices as well, e.g. MAFK and MAFG),
    # on the reverse strand, one column into the reverse-complemented target.
    rng = np.random.default_rng(2)
    noisy = reverse_complement(planted.ppm[1:-1]) + 0.05 * rng.random((planted.length - 2, 4))
    hits = MotifMatcher(jaspar).match(noisy / noisy.sum(axis=1, keepdims=True))
    assert matrix_id in hits.head(5)["target_id"].tolist()
    mine = hits.set_index("target_id").loc[matrix_id]
    assert mine["strand"] == "-"
    assert mine["offset"] == 1
    assert mine["q_value"] < 0.05


def test_p_values_are_memelites_exact_tomtom_p_values(jaspar: list[Motif]) -> None:
    from memelite import tomtom

    ctcf = next(m for m in jaspar if m.id == "MA0139.2")
    query = ctcf.ppm[2:14]
    hits = MotifMatcher(jaspar).match(query).set_index("target_id")
    p, score, offset, overlap, _strand = tomtom(
        [np.ascontiguousarray(query.T)],
        [np.ascontiguousarray(m.ppm.T) for m in jaspar],
        n_target_bins=None,
        n_jobs=1,
    )
    j = [m.id for m in jaspar].index("MA0139.2")
    assert hits.loc["MA0139.2", "p_value"] == p[0, j]
    assert hits.loc["MA0139.2", "score"] == score[0, j]
    assert hits.loc["MA0139.2", "offset"] == offset[0, j] == 2
    assert hits.loc["MA0139.2", "overlap"] == overlap[0, j] == 12
    # E = p × targets; q: Benjamini-Hochberg over the targets.
    ranked = hits.sort_values("p_value")
    n = len(jaspar)
    assert ranked["e_value"].iloc[0] == pytest.approx(ranked["p_value"].iloc[0] * n, rel=1e-12)
    expected_q = np.minimum.accumulate((ranked["p_value"] * n / np.arange(1, n + 1))[::-1])[::-1]
    np.testing.assert_allclose(ranked["q_value"], np.minimum(expected_q, 1), rtol=1e-10)
    assert hits.loc["MA0139.2", "p_value"] < 1e-10


def test_only_significant_matches_are_named(jaspar: list[Motif]) -> None:
    ctcf = next(m for m in jaspar if m.id == "MA0139.2")
    # A random informative motif (a flat one is not a fair decoy: under TOMTOM's Euclidean
    # score it resembles the flat flanks of long targets such as CTCF's MA1930.2).
    columns = np.random.default_rng(0).dirichlet(np.full(4, 0.3), size=10)
    random = Motif("random", "random", columns)
    table = motif_table([ctcf, random], jaspar).set_index("motif")
    assert table.loc["MA0139.2", "match"] == "MA0139.2 CTCF"
    assert table.loc["MA0139.2", "match_q"] < 0.05
    assert table.loc["MA0139.2", "jaspar_id"] == "MA0139.2"
    random_row = table.loc["random"]
    assert random_row["match"] == "no significant match"
    assert pd.isna(random_row["match_id"])
    assert pd.isna(random_row["match_e"])
    assert pd.isna(random_row["jaspar_id"])
    assert random_row["best_q"] >= 0.05
    assert random_row["significant_matches"] == 0
    # The threshold decides: below the match's own q, CTCF is not named either.
    strict = motif_table([ctcf], jaspar, match_q=table.loc["MA0139.2", "match_q"])
    assert strict.loc[0, "match"] == "no significant match"
    hits = MotifMatcher(jaspar).match(ctcf)
    assert best_match(hits, 0.05)["target_id"] == "MA0139.2"
    assert best_match(hits, float(hits.iloc[0]["q_value"])) is None


def test_a_weak_motif_on_the_flat_flank_of_a_long_profile_is_not_named(
    jaspar: list[Motif],
) -> None:
    # Near-flat columns reach a small q against the flat flanks of long profiles under
    # TOMTOM's Euclidean score, while aligning to little of the profile's information.
    flat = Motif("flat", "flat", np.full((12, 4), 0.25) + np.eye(4)[[0, 1, 2, 3] * 3] * 0.05)
    hits = MotifMatcher(jaspar).match(flat)
    top = hits.iloc[0]
    assert top["q_value"] < 0.05  # "significant" by q alone
    assert top["coverage"] < 0.5
    assert best_match(hits, 0.05, 0.0)["target_id"] == top["target_id"]
    assert best_match(hits, 0.05) is None
    row = motif_table([flat], jaspar).iloc[0]
    assert row["match"] == "no significant match"
    assert row["best_coverage"] == pytest.approx(top["coverage"])
    # A profile matched against itself covers all of its information.
    ctcf = next(m for m in jaspar if m.id == "MA0139.2")
    assert MotifMatcher(jaspar).match(ctcf).iloc[0]["coverage"] == pytest.approx(1.0)


@pytest.mark.parametrize("seed", [0, 7])
def test_shuffled_copies_keep_the_composition_and_rerun_identically(seed: int) -> None:
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 5, size=(6, 80)).astype(np.uint8)  # N (code 4) included
    copies = shuffled_copies(codes, 3, seed)
    assert copies.shape == (3, 6, 80)

    def doublets(x: np.ndarray) -> np.ndarray:
        counts = np.zeros((len(x), 25), dtype=int)
        for i, row in enumerate(x):
            np.add.at(counts[i], row[:-1].astype(int) * 5 + row[1:], 1)
        return counts

    for copy in copies:
        np.testing.assert_array_equal(doublets(copy), doublets(codes))
        assert (copy != codes).any(axis=1).all()  # every sequence really shuffled
    np.testing.assert_array_equal(copies, shuffled_copies(codes, 3, seed))
    assert (shuffled_copies(codes, 3, seed + 1) != copies).any()
    protein = rng.integers(0, 21, size=(4, 50)).astype(np.uint8)
    residues = shuffled_copies(protein, 2, seed, alphabet="protein")
    np.testing.assert_array_equal(
        np.sort(residues, axis=2), np.broadcast_to(np.sort(protein), (2, 4, 50))
    )
    np.testing.assert_array_equal(residues, shuffled_copies(protein, 2, seed, alphabet="protein"))


def test_jaspar_files_round_trip(tmp_path: Path) -> None:
    motif = Motif("m1", "TEST", ppm_from_counts(np.eye(4)[[0, 1, 2, 3]] * 10), n_sites=10)
    write_jaspar([motif], tmp_path / "m.jaspar")
    back = read_jaspar_file(tmp_path / "m.jaspar")
    assert [(m.id, m.name) for m in back] == [("m1", "TEST")]
    # Written as counts out of n_sites; reading adds the pseudocount once more.
    np.testing.assert_allclose(back[0].ppm, ppm_from_counts(motif.ppm * 10), atol=1e-3)
    assert back[0].consensus == "ACGT"


def test_select_sequences_takes_top_scoring_true_positives() -> None:
    oof = pd.DataFrame(
        {
            "id": list("abcdef"),
            "fold": [0, 1, 2, 0, 1, 2],
            "learner": "cnn",
            "y_true": ["pos", "pos", "neg", "pos", "neg", "pos"],
            "prob_neg": [0.1, 0.6, 0.01, 0.3, 0.5, 0.2],
            "prob_pos": [0.9, 0.4, 0.99, 0.7, 0.5, 0.8],
        }
    )
    picks = select_sequences(oof, "cnn", {"task": "classification", "classes": ["neg", "pos"]}, 3)
    assert picks["id"].tolist() == ["e", "c", "a", "f", "d"]  # both classes, best first
    assert picks["target"].tolist() == [0, 0, 1, 1, 1]
    oof["y_true"] = oof["y_true"].replace("neg", "background")
    oof = oof.rename(columns={"prob_neg": "prob_background"})
    meta = {"task": "classification", "classes": ["background", "pos"]}
    picks = select_sequences(oof, "cnn", meta, 3)  # genome background is not explained
    assert picks["id"].tolist() == ["a", "f", "d"]


@pytest.mark.parametrize(
    ("cv", "scope"),
    [({"n_splits": 2}, "per fold"), ({"plan": "leave_one_out"}, "pooled")],
    ids=["kfold", "leave_one_out"],
)
def test_tabular_importance_finds_the_only_informative_feature(
    make_exp, binary_csv: Path, write_checkpoint, tmp_path: Path, cv: dict, scope: str
) -> None:
    exp = make_exp(binary_csv, cv=cv, interpret={"permutation_features": 3})
    data = prepare_tabular(exp)
    task = get_task(data.task)
    folds = make_folds(data.ids, exp["cv"], 0, labels=task.stratify(data.y))
    checkpoints, preprocessors = {}, {}
    # Leave-one-out: one held-out row per fold, which no fold can score alone.
    for fold in sorted(folds["fold"].unique())[:40]:
        _, fitted, _ = preprocess_fold(data, fold_indices(folds, fold, data.ids),
                                       exp["preprocess"], 0)  # fmt: skip
        model = build_model("mlp", 6, 2, hidden_layers=[], batch_norm=False)
        with torch.no_grad():  # class 'case' (code 0) decided by feature f1 alone
            model.head.weight.zero_()
            model.head.weight[0, 1] = 3.0
            model.head.bias.zero_()
        checkpoints[fold] = str(write_checkpoint(tmp_path / f"{fold}.ckpt", model, "mlp", 6, 2,
                                                 hidden_layers=[], batch_norm=False))  # fmt: skip
        preprocessors[fold] = fitted
    meta = {"task": "classification", "classes": data.classes}
    table = tabular_importance(exp, task, meta, data.features, data.y, folds, checkpoints,
                               preprocessors)  # fmt: skip
    case = table[table["output"] == "case"].set_index("feature")
    assert case["ig_abs"].idxmax() == "f1"
    assert case.loc["f1", "ig"] > 0  # evidence for 'case' on the 'case' rows
    assert case["permutation"].idxmax() == "f1"
    assert case.loc["f1", "permutation"] > 0.1
    assert case["permutation"].notna().sum() == 3  # only the most attributed were shuffled
    assert set(table["output"]) == {"case", "control"}
    assert set(table["permutation_scope"]) == {scope}
    assert case.loc["f1", "folds"] == len(checkpoints)


def test_recurrent_models_are_explained_without_deeplift(planted: dict) -> None:
    torch.manual_seed(0)
    danq = build_model("danq", 4, 2, filters=8, kernel_size=9, pool=4, lstm_units=4, hidden=8)
    danq.eval()
    codes = planted["codes"][:6]
    settings = {"ig_steps": 8, "references": 3}
    out = explain_sequences({0: danq, 1: danq}, codes, np.array([0, 0, 0, 1, 1, 1]), 1,
                            "centred", settings, controls=2)  # fmt: skip
    assert "deeplift_shap" not in out
    assert out["ig"].shape == (6, 4, LENGTH)
    assert out["ism"].shape == (6, 4, LENGTH)
    assert out["ig_control"].shape == (2, 6, LENGTH)
    assert np.abs(out["ig"]).sum() > 0


def test_explanations_rerun_identically(planted: dict) -> None:
    model = planted["model"]
    codes = planted["codes"][:8]
    settings = {"ig_steps": 8, "references": 3}
    args = ({0: model}, codes, np.zeros(8, dtype=int), 1, "centred", settings)
    first = explain_sequences(*args, seed=0, controls=2)
    again = explain_sequences(*args, seed=0, controls=2)
    other = explain_sequences(*args, seed=1, controls=2)
    for key in ("ig", "deeplift_shap", "ig_control"):
        np.testing.assert_array_equal(first[key], again[key])
    assert not np.array_equal(first["deeplift_shap"], other["deeplift_shap"])
    assert not np.array_equal(first["ig_control"], other["ig_control"])
