"""The report's templates: autoescaped, one per section, every link of the contents resolves.

A small synthetic results folder (one classification experiment, two learners, two folds) is
rendered through :func:`dlpipe.report.page.build_report`; the single-cell and sequence
sections are rendered from their data builders.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import matplotlib
import pandas as pd
import pytest
from browser import assert_page_ok, check_page, chromium

from dlpipe.calibrate import SKIPPED
from dlpipe.report import latent, trust
from dlpipe.report.files import ExperimentFiles
from dlpipe.report.page import build_report, metrics_table
from dlpipe.report.render import environment, render, render_section, section
from dlpipe.report.trust import interpretation_section

matplotlib.use("Agg")
EVIL = "<script>alert(1)</script>"
TEMPLATES = Path(environment().loader.get_source(environment(), "page.html.j2")[1]).parent


def _png(path: Path) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1.5), dpi=40)
    ax.plot([0, 1], [0, 1])
    fig.savefig(path)
    plt.close(fig)
    return str(path)


def _write(path: Path, payload: Any) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(payload, pd.DataFrame):
        payload.to_csv(path, sep="\t", index=False)
    else:
        path.write_text(json.dumps(payload))
    return str(path)


def _experiment(tmp: Path, make_exp: Any, name: str, learner: str) -> ExperimentFiles:
    """The files of one tabular classification experiment, as the workflow writes them."""
    folder = tmp / "results" / name
    cfg = make_exp(tmp / "data.csv", description=f"About {name}.")
    cfg["model"].update(name=learner, hidden_layers=[8])
    rows = []
    for lrn in (learner, "logistic_regression"):
        for metric, mean in (
            ("accuracy", 0.9),
            ("auroc", 0.95),
            ("ece", 0.05),
            ("ece_calibrated", 0.04),
        ):
            rows.append({"learner": lrn, "metric": metric, "fold_0": mean, "fold_1": mean,
                         "mean": mean, "sd": 0.01, "ci95_low": mean - 0.02,
                         "ci95_high": mean + 0.02, "pooled": mean})  # fmt: skip
    meta = {
        "task": "classification", "target_columns": ["y"], "group_column": None,
        "meta": {"source": f"{name}.csv", "sha256": "ab" * 32, "n_samples": 100,
                 "n_features": 6, "n_categorical": 0, "missing_values": 0,
                 "class_counts": {"case": 50, "control": 50}},
    }  # fmt: skip
    summary = {"n_train": 40, "n_val": 10, "n_test": 50, "n_model_features": 6,
               "train_class_counts": {"case": 20, "control": 20}}  # fmt: skip
    history = pd.DataFrame({"epoch": [0, 1, 2], "val_loss": [0.5, 0.3, 0.4]})
    fits = [
        {"fold": fold, "learners": {
            learner: {"temperature": 1.0, "skipped": "separated"},
            "logistic_regression": {"temperature": 1.3 + fold, "skipped": None}}}
        for fold in (0, 1)
    ]  # fmt: skip
    importance = pd.DataFrame({
        "output": ["case", "case", "control"], "feature": ["f0", "f1", "f0"],
        "ig": [0.3, 0.1, -0.3], "ig_abs": [0.3, 0.1, 0.3], "permutation": [0.05, 0.01, 0.05],
        "permutation_sd": [0.01, 0.01, 0.01], "folds": 2,
    })  # fmt: skip
    prov = {"seed": 0, "git_commit": None, "platform": "Linux", "versions": {"numpy": "2"},
            "inputs": {f"/data/{name}.csv": "cd" * 32}}  # fmt: skip
    _write(folder / "interpret" / "summary.json", {"n_parameters": 1234})
    _write(folder / "interpret" / "feature_importance.tsv", importance)
    (folder / "figures").mkdir(parents=True)
    return ExperimentFiles(
        name=name,
        config=cfg,
        dataset_meta=_write(folder / "dataset.json", meta),
        provenance=_write(folder / "provenance.json", prov),
        metrics=_write(folder / "metrics.tsv", pd.DataFrame(rows)),
        preprocess_summaries=[_write(folder / f"{f}" / "preprocess.json", summary) for f in (0, 1)],
        figures=[_png(folder / "figures" / "roc_pr.png")],
        extras={
            "histories": [_write(folder / f"{f}" / "history.tsv", history) for f in (0, 1)],
            "calibrations": [_write(folder / f"{f}" / "calibration.json", fits[f]) for f in (0, 1)],
            "interpret": str(folder / "interpret"),
        },
    )


def _comparison(tmp_path: Path) -> dict[str, str]:
    """Leaderboard and pairs of the two experiments, the board not in page order."""
    board = pd.DataFrame({
        "group": ["group 1: plain", "group 1: plain", f"group 2: odd{EVIL}"],
        "rank": [1, 2, 1], "experiment": ["plain", "plain", f"odd{EVIL}"],
        "learner": ["mlp", "logistic_regression", EVIL], "metric": "auroc",
        "mean": [0.95, 0.9, 0.95], "sd": 0.01, "folds": 2, "difference": [0, -0.05, 0],
        "p_corrected_t": [None, 0.2, None], "p_wilcoxon": [None, 0.5, None],
    })  # fmt: skip
    pairs = pd.DataFrame({"group": ["group 1: plain"], "a": ["plain/mlp"],
                          "b": ["plain/logistic_regression"], "metric": ["auroc"],
                          "mean_difference": [0.05], "t": [2.0], "p_corrected_t": [0.2],
                          "p_wilcoxon": [0.5]})  # fmt: skip
    return {
        "leaderboard": _write(tmp_path / "board.tsv", board.iloc[::-1]),  # not in page order
        "pairs": _write(tmp_path / "pairs.tsv", pairs),
    }


@pytest.fixture
def report(tmp_path: Path, make_exp: Any) -> Path:
    """A rendered page of two experiments, one named and modelled with markup."""
    (tmp_path / "data.csv").write_text("id,y,f0\n1,case,0.1\n")
    experiments = [
        _experiment(tmp_path, make_exp, "plain", "mlp"),
        _experiment(tmp_path, make_exp, f"odd{EVIL}", EVIL),
    ]
    comparison = _comparison(tmp_path)
    out = tmp_path / "report.html"
    build_report(experiments, f"Report {EVIL}", str(out), comparison, others=[f"old{EVIL}"])
    return out


class _Page(HTMLParser):
    """Ids, in-page links and script elements of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.links: list[str] = []
        self.toc: list[str] = []
        self.scripts = 0
        self._in_toc = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.append(values["id"])
        if tag == "nav":
            self._in_toc = True
        if tag == "a" and (values.get("href") or "").startswith("#"):
            self.links.append(values["href"][1:])
            if self._in_toc:
                self.toc.append(values["href"][1:])
        self.scripts += tag == "script"

    def handle_endtag(self, tag: str) -> None:
        if tag == "nav":
            self._in_toc = False


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def test_names_with_markup_are_escaped_everywhere(report: Path) -> None:
    html = report.read_text()
    page = _parse(html)
    assert page.scripts == 0  # no element came from a name
    assert EVIL not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # In the contents, the headings, the tables, the coverage note and the verdict alike.
    assert html.count("&lt;script&gt;") >= 6


def test_contents_link_every_section_and_every_link_resolves(report: Path) -> None:
    page = _parse(report.read_text())
    assert len(page.ids) == len(set(page.ids)), "duplicate ids"
    assert set(page.links) <= set(page.ids), set(page.links) - set(page.ids)
    headed = re.findall(r'<section id="([^"]+)"', report.read_text())
    assert set(page.toc) == set(headed)  # each section with an id is in the contents
    for part in ("verdict", "summary", "leaderboard", "plain", "plain-dome", "plain-data",
                 "plain-plan", "plain-metrics", "plain-calibration", "plain-learned",
                 "plain-provenance"):  # fmt: skip
        assert part in page.toc, part
    assert page.links.count("top") == len(headed) - 2  # a way back from each section
    assert "top" in page.ids


def test_page_shows_what_the_issue_asked(report: Path) -> None:
    html = report.read_text()
    # Leaderboard groups in page order although the board lists them the other way round.
    assert html.index("group 1: plain") < html.index("group 2: odd")
    # A temperature not fitted says so, with the reason calibrate recorded.
    assert "temperature left at 1 in every fold (0, 1)" in html
    assert SKIPPED["separated"] in html
    assert "ECE (fold mean)" in html
    # The provenance is a list, the hyperparameters appear once, nothing of other modalities.
    assert "{'" not in html
    assert html.count("hidden_layers=") == 2  # once per experiment, in the DOME summary
    assert "reverse_complement" not in html
    assert "jaspar" not in html
    assert "<dt>input plain.csv</dt>" in html


def test_metrics_table_groups_columns_under_each_learner() -> None:
    metrics = pd.DataFrame({"learner": ["kmer6_logistic_regression", "cnn"],
                            "metric": ["auroc", "auroc"], "mean": [0.7, 0.9], "sd": 0.01,
                            "ci95_low": [0.6, 0.8], "ci95_high": [0.8, 0.95],
                            "pooled": [0.7, 0.9]})  # fmt: skip
    data = metrics_table(metrics)
    assert data["groups"] == [{"label": "", "span": 1},
                              {"label": "kmer6_logistic_regression", "span": 3},
                              {"label": "cnn", "span": 3}]  # fmt: skip
    html = render_section(section("table.html.j2", None, None, table=data))
    assert '<th colspan="3">kmer6_logistic_regression</th>' in html
    assert '<td class="best num">0.900 ± 0.010</td>' in html
    assert '<td class="num">[0.600, 0.800]</td>' in html


def _interpretation(folder: Path, cfg: dict[str, Any], modality: str) -> dict[str, Any]:
    """The interpretation section of a classification of ``modality`` from ``folder``."""
    cfg["data"]["modality"] = modality
    files = ExperimentFiles(modality, cfg, "", "", "", [], extras={"interpret": str(folder)})
    return interpretation_section(files, {"task": "classification"})


def _sequence_interpretation(tmp_path: Path, make_exp: Any) -> dict[str, Any]:
    folder = tmp_path / "interpret"
    _write(folder / "summary.json", {
        "sequences": 20, "ism_sequences": 5, "agreement": {"bound": {"deeplift": 0.9}},
        "motif_database": {"release": "JASPAR2024", "collection": "CORE", "tax_groups": [],
                           "profiles": 3, "files": ["crp.jaspar"], "match_q": 0.05,
                           "match_coverage": 0.5, "seqlet_fdr": 0.1},
    })  # fmt: skip
    _write(folder / "motifs.tsv", pd.DataFrame({
        "motif": ["m1", "m2"], "source": ["attribution seqlets", "first-layer filter"],
        "sites": [5, 9], "consensus": ["TGTGA", "CCNNT"], "influence": [0.5, 0.2],
        "match_id": ["RegulonDB_CRP", None], "match_name": [EVIL, None],
        "match_source": ["crp.jaspar", None], "match_e": [0.01, None],
        "match_q": [0.004, None], "best_q": [0.004, 0.002], "best_coverage": [0.8, 0.1],
        "jaspar_id": ["MA1", None], "jaspar_name": ["X", None], "jaspar_e": [0.5, None],
        "jaspar_q": [0.02, None],
    }))  # fmt: skip
    _png(folder / "motif_logos.png")
    return _interpretation(folder, make_exp(tmp_path / "data.csv"), "sequence")


def _image_interpretation(tmp_path: Path, make_exp: Any) -> dict[str, Any]:
    folder = tmp_path / "saliency"
    spread = {"median": 0.1, "min": 0.0, "max": 0.3, "n": 2}
    _write(folder / "summary.json", {
        "images": 2, "n_images": 1, "per_class": {EVIL: {"correct": 1, "wrong": 1}},
        "folds": [0, 1], "baseline": "black image", "ig_steps": 8, "ig_delta_max": 0.001,
        "output_max": 2.0, "gradcam_layer": "encoder.1",
        "randomisation": {"ig": spread, "gradcam": spread},
    })  # fmt: skip
    _write(folder / "saliency.tsv", pd.DataFrame({
        "id": [EVIL, "b"], "fold": [0, 1], "label": [EVIL, EVIL], "predicted": [EVIL, "x"],
        "kind": ["correct", "wrong"], "prob": [0.9, 0.8], "rho_ig": [0.1, 0.2],
        "rho_gradcam": [0.0, 0.3],
    }))  # fmt: skip
    _png(folder / "saliency.png")
    return _interpretation(folder, make_exp(tmp_path / "data.csv"), "image")


def _graph_interpretation(tmp_path: Path, make_exp: Any) -> dict[str, Any]:
    folder = tmp_path / "graph"
    _write(folder / "summary.json", {"novel_pairs": 1, "novel_pairs_closing_triangles": 1,
                                     "fold_models": 2})  # fmt: skip
    grouped = pd.DataFrame({
        "learner": ["gnn", EVIL], "group": [EVIL, EVIL], "auroc": [0.9, 0.5],
        "auprc": [0.9, 0.5], "hits@100": [0.5, float("nan")], "n_pos": [3, 3], "n_neg": [3, 3],
    })  # fmt: skip
    _write(folder / "by_degree.tsv", grouped)
    _write(folder / "by_unseen.tsv", grouped)
    _write(folder / "novel_pairs.tsv", pd.DataFrame({
        "rank": [1], "node_a": [EVIL], "node_b": ["b"], "logit_mean": [2.2],
        "probability_mean": [0.9], "models": [2],
        "probability_sd": [0.01], "degree_a": [3], "degree_b": [4], "common_neighbours": [1],
    }))  # fmt: skip
    _png(folder / "embedding.png")
    return _interpretation(folder, make_exp(tmp_path / "data.csv"), "graph")


def _single_cell_sections(tmp_path: Path) -> list[dict[str, Any]]:
    exp = {
        "integration": {"harmony_theta": 2.0, "n_latent": 4, "n_layers": 1, "n_hidden": 8,
                        "gene_likelihood": "nb", "early_stopping": True,
                        "leiden_resolution": 1.0, "verdict_margin": 0.05},
        "data": {"layer": None, "batch_column": "batch", "label_column": "cell_type"},
        "cv": {"plan": "stratified_kfold", "n_splits": 3},
        "embed": {"hidden_layers": [8], "n_latent": 2, "beta": 1.0},
    }  # fmt: skip
    summary = {
        "n_cells_in": 10, "n_genes_in": 5, "source": "cells.h5ad", "sha256": "ef" * 32,
        "cells_per_batch": {EVIL: 5, "b": 5}, "n_genes_shared": 5, "n_genes_used": 5,
        "n_cells_without_counts": 0, "methods": ["pca", "scvi"], "n_pcs": 3,
        "epochs_trained": 3, "max_epochs": 3, "final_elbo": {"elbo_train": 1.0},
        "n_clusters": 2, "n_cells": 10, "labelled_cells": 8, "unlabelled_cells": 2,
    }  # fmt: skip
    scib = _write(tmp_path / "scib.tsv", pd.DataFrame({
        "metric": ["iLISI"], "type": ["Batch correction"], "cells": ["all"],
        "PCA (unintegrated)": [0.0], "scVI": [0.6],
    }))  # fmt: skip
    recon = _write(tmp_path / "recon.tsv", pd.DataFrame({
        "fold": [0, 0], "side": ["train", "test"], "n": [8, 2], "mse": [0.5, 0.6],
        "r2": [0.5, 0.4], "neg_elbo": [3.0, 3.5],
    }))  # fmt: skip
    png = _png(tmp_path / "umap.png")
    verdict = {"sentence": f"scVI mixed {EVIL}", "warnings": [EVIL], "margin": 0.05}
    return [
        latent.verdict_section(verdict),
        latent.integration_section("cells", exp, summary, verdict, scib, png),
        latent.classification_section("cells", exp, summary),
        latent.embedding_section("cells", exp, recon, png),
    ]


def test_every_section_template_renders_and_escapes(
    tmp_path: Path, make_exp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = environment()
    used: set[str] = set()
    original = env.get_template

    def recording(name: Any, *args: Any, **kwargs: Any) -> Any:
        used.add(str(name))
        return original(name, *args, **kwargs)

    monkeypatch.setattr(env, "get_template", recording)
    (tmp_path / "data.csv").write_text("id,y,f0\n1,case,0.1\n")
    experiments = [_experiment(tmp_path, make_exp, "plain", "mlp")]
    build_report(experiments, "t", str(tmp_path / "r.html"), _comparison(tmp_path))
    sections = [
        _sequence_interpretation(tmp_path, make_exp),
        _image_interpretation(tmp_path, make_exp),
        _graph_interpretation(tmp_path, make_exp),
        *_single_cell_sections(tmp_path),
    ]
    for s in sections:
        html = render_section(s)
        assert EVIL not in html
        assert "&lt;script&gt;" in html or s["template"] != "integration_verdict.html.j2"
    motifs = render_section(sections[0])
    assert "RegulonDB_CRP" in motifs
    assert "no significant match" in motifs  # m2: q 0.002 but 10 % of the profile covered
    assert "best candidate 0.002, covering 10% (not named)" in motifs
    latent.transfer_section({"n_targets": 0, "n_unknown": 0, "epochs": 1, "n_reference": 5,
                             "threshold": 0.5, "mean_probability": 0.9, "composition": {},
                             "dominated": {}}, None)  # fmt: skip
    latent.scib_html(pd.DataFrame({"metric": ["iLISI"], "type": ["Batch correction"],
                                   "cells": ["all"], "scVI": [0.5]}))  # fmt: skip
    # Every template shipped in the package renders in one of these pages and sections.
    shipped = {p.name for p in TEMPLATES.iterdir() if p.suffix in (".j2", ".css")}
    assert shipped <= used, shipped - used


def test_autoescape_is_on_for_every_template() -> None:
    assert render("coverage.html.j2", coverage={"names": [EVIL], "others": []}).count("&lt;") == 2


def test_templates_ship_as_package_data() -> None:
    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert '"report/templates/*"' in text
    assert {"page.html.j2", "report.css", "toc.html.j2"} <= {p.name for p in TEMPLATES.iterdir()}


def test_small_page_in_a_browser(report: Path) -> None:
    chromium()  # skips without a browser (fails with DLPIPE_REQUIRE_BROWSER=1)
    check = check_page(report, "unit-page", sections=False)
    assert_page_ok(check)
    assert check.images == 2
    assert check.links > 20


def test_settings_of_other_modalities_are_not_shown(make_exp: Any, tmp_path: Path) -> None:
    from dlpipe.modalities import get_modality

    table = get_modality("tabular").shown_settings(make_exp(tmp_path / "data.csv"))
    assert "reverse_complement" not in table["training"]
    assert "k" not in table["baseline"]
    assert "integration" not in table
    assert {"path", "label_column"} <= set(table["data"])
    assert "genome" not in table["data"]
    nucleotides = {"training": {"reverse_complement": True}, "data": {"alphabet": "dna"}}
    sequence = get_modality("sequence")
    assert sequence.shown_settings(nucleotides)["training"] == {"reverse_complement": True}
    protein = {"training": {"reverse_complement": True}, "data": {"alphabet": "protein"}}
    assert sequence.shown_settings(protein)["training"] == {}


def test_a_mean_over_fewer_folds_says_so() -> None:
    from dlpipe.report.page import partial_folds

    metrics = pd.DataFrame({"learner": ["mlp", "mlp"], "metric": ["accuracy", "auroc"],
                            "fold_0": [0.9, float("nan")], "fold_1": [0.8, 0.7],
                            "mean": [0.85, 0.7], "sd": [0.07, float("nan")],
                            "ci95_low": [0.5, float("nan")], "ci95_high": [0.99, float("nan")],
                            "folds_used": [2, 1], "pooled": [0.85, 0.72]})  # fmt: skip
    assert partial_folds(metrics) == ["mlp auroc: 1 of 2 folds"]
    cells = [row[1]["text"] for row in metrics_table(metrics)["rows"]]
    assert cells == ["0.850 ± 0.070", "0.700 ± – (1/2 folds)"]


@pytest.mark.parametrize(
    ("cv", "meta", "said"),
    [
        ({"plan": "bin_kfold", "n_splits": 4},
         {"meta": {"fold_guard": "whole CV groups per fold; 3 chains of overlapping windows "
                                 "(2 at most) each inside one group"}},
         "Split: 4-fold over genomic bins (whole bins of data.bin_size bp, windows across a bin "
         "edge kept together); whole CV groups per fold; 3 chains"),
        ({"plan": "group_kfold", "n_splits": 3}, {"group_column": "patient", "meta": {}},
         "Split: group 3-fold; whole groups of patient per fold."),
        ({"plan": "stratified_kfold", "n_splits": 3}, {"meta": {}},
         "Split: stratified 3-fold; samples assigned one by one (no groups named)."),
    ],
)  # fmt: skip
def test_the_verdict_line_says_what_the_split_guarded(cv: dict, meta: dict, said: str) -> None:
    assert trust.split_guard({"cv": cv}, meta).startswith(said)
