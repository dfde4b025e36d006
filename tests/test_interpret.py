"""Attributions and motifs on a synthetic planted-motif set; JASPAR matching; tabular importance.

A CTCF site sampled from JASPAR's MA0139.2 matrix is planted into half of random sequences; a
small CNN is trained on them (plain torch loop, seeded, a second on the CPU). Attributions must
peak on the planted site, the motif found from them must match CTCF in JASPAR, and a JASPAR
matrix searched against JASPAR must return itself.
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
    one_hot_of,
    position_contributions,
    select_sequences,
    shuffled_references,
    tabular_importance,
)
from dlpipe.io.jaspar import Motif, load_jaspar, ppm_from_counts, read_jaspar_file, write_jaspar
from dlpipe.modalities.tabular import prepare_tabular
from dlpipe.models import build_model
from dlpipe.motifs import MotifMatcher, cluster_seqlets, find_seqlets, reverse_complement
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
    refs = one_hot_of(model, shuffled_references(codes, 8, seed=0))
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
    x = one_hot_of(model, codes)
    ig = position_contributions(integrated_gradients(ExplainedOutput(model).eval(), x, 1))
    seqlets = find_seqlets(ig, width=20)
    assert len(seqlets) >= N // 2 * 0.9
    motifs = cluster_seqlets(x.numpy().transpose(0, 2, 1), ig, seqlets, width=20)
    assert motifs[0].n_sites > N // 4
    hits = MotifMatcher(jaspar).match(motifs[0])
    assert hits.iloc[0]["target_name"] == "CTCF"
    assert hits.iloc[0]["e_value"] < 0.1


def test_first_layer_filters_recover_the_site(planted: dict) -> None:
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
    hits = MotifMatcher([ctcf, decoy]).match(top)
    assert hits.iloc[0]["target_id"] == "MA0139.2"


@pytest.mark.parametrize("matrix_id", ["MA0139.2", "MA0142.1", "MA0496.4"])
def test_a_planted_jaspar_matrix_matches_itself(jaspar: list[Motif], matrix_id: str) -> None:
    planted = next(m for m in jaspar if m.id == matrix_id)
    hits = MotifMatcher(jaspar).match(planted)
    assert hits.iloc[0]["target_id"] == matrix_id
    assert hits.iloc[0]["offset"] == 0
    assert hits.iloc[0]["overlap"] == planted.length
    # Reverse complemented, a column trimmed at each end and blurred, it is still among the
    # best matches (short fragments fit the paralogues' matrices as well, e.g. MAFK and MAFG).
    rng = np.random.default_rng(2)
    noisy = reverse_complement(planted.ppm[1:-1]) + 0.05 * rng.random((planted.length - 2, 4))
    hits = MotifMatcher(jaspar).match(noisy / noisy.sum(axis=1, keepdims=True))
    assert matrix_id in hits.head(5)["target_id"].tolist()
    assert hits.iloc[0]["strand"] == "-"
    assert hits.iloc[0]["e_value"] < 1


def test_matcher_scores_and_p_values_on_a_small_database() -> None:
    a = ppm_from_counts(np.eye(4)[[0, 1, 2, 3, 0, 1]] * 20)
    b = ppm_from_counts(np.eye(4)[[3, 3, 0, 0, 2, 2]] * 20)
    hits = MotifMatcher([Motif("a", "A", a), Motif("b", "B", b)], n_null=30).match(a)
    best = hits.iloc[0]
    assert best["target_id"] == "a"
    assert best["score"] == pytest.approx(6.0, abs=1e-6)  # six perfectly correlated columns
    assert best["p_value"] < hits.iloc[1]["p_value"]
    assert best["e_value"] == pytest.approx(2 * best["p_value"])


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


def test_tabular_importance_finds_the_only_informative_feature(
    make_exp,
    binary_csv: Path,
    write_checkpoint,
    tmp_path: Path,
) -> None:
    exp = make_exp(binary_csv, cv={"n_splits": 2}, interpret={"permutation_features": 3})
    data = prepare_tabular(exp)
    task = get_task(data.task)
    folds = make_folds(data.ids, exp["cv"], 0, labels=task.stratify(data.y))
    checkpoints, preprocessors = {}, {}
    for fold in (0, 1):
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


def test_recurrent_models_are_explained_without_deeplift(planted: dict) -> None:
    torch.manual_seed(0)
    danq = build_model("danq", 4, 2, filters=8, kernel_size=9, pool=4, lstm_units=4, hidden=8)
    danq.eval()
    codes = planted["codes"][:6]
    settings = {"ig_steps": 8, "references": 3}
    out = explain_sequences({0: danq, 1: danq}, codes, np.array([0, 0, 0, 1, 1, 1]), 1,
                            "centred", settings)  # fmt: skip
    assert "deeplift_shap" not in out
    assert out["ig"].shape == (6, 4, LENGTH)
    assert out["ism"].shape == (6, 4, LENGTH)
    assert np.abs(out["ig"]).sum() > 0
