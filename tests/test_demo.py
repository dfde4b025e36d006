"""The embedded demo on real data: runs the default config end to end and checks its claims."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from browser import assert_page_ok, check_page, chromium

from dlpipe.calibrate import SKIPPED
from dlpipe.metrics import metric_bounds
from dlpipe.workflow import rebase_paths

ROOT = Path(__file__).resolve().parents[1]


def _summary(metrics_tsv: Path) -> pd.DataFrame:
    return pd.read_csv(metrics_tsv, sep="\t").set_index(["learner", "metric"])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The results folder of the embedded demo, run once for every test of this module.

    ``DLPIPE_DEMO_RESULTS=path/to/results`` checks an existing results folder of the default
    config instead (e.g. after re-rendering only its report), without running the demo.
    """
    existing = os.environ.get("DLPIPE_DEMO_RESULTS")
    if existing:
        return Path(existing).resolve()
    tmp_path = tmp_path_factory.mktemp("demo")
    config = rebase_paths(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()), ROOT)
    for exp in config["experiments"].values():
        exp["training"]["progress_bar"] = False
    # In the config's order, as a user runs it: the page and the leaderboard follow it.
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [
        sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
        "--directory", str(tmp_path), "--configfile", str(tmp_path / "config.yaml"),
        "--cores", "2", "--quiet",
    ]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, check=False)
    errors = [line for line in run.stderr.splitlines() if "rror" in line]
    assert run.returncode == 0, "\n".join(errors[-20:])
    return tmp_path / "results"


@pytest.mark.demo
def test_demo_report_in_a_browser(demo: Path) -> None:
    """Every image decodes, every in-page link lands, no console error; screenshots kept."""
    chromium()  # skips without a browser (fails with DLPIPE_REQUIRE_BROWSER=1, as in CI)
    check = check_page(demo / "report.html", "demo-report")
    assert_page_ok(check)
    assert check.images >= 15
    assert check.links >= 50


@pytest.mark.demo
def test_demo_meets_published_accuracy(demo: Path) -> None:
    bc = _summary(demo / "breast_cancer" / "metrics.tsv")
    # Published accuracy on this data set is 95-98 %; the MLP must reach it over 3 folds.
    assert bc.loc[("mlp", "accuracy"), "mean"] >= 0.95
    assert bc.loc[("logistic_regression", "accuracy"), "mean"] >= 0.9
    assert bc.loc[("mlp", "auroc"), "mean"] >= 0.97
    summary = yaml.safe_load((demo / "breast_cancer" / "0" / "preprocess.json")
                             .read_text())  # fmt: skip
    after = summary["train_class_counts_after_smote"]
    assert after["benign"] == after["malignant"]  # SMOTE balanced the training side

    reg = _summary(demo / "all_target_genes" / "metrics.tsv")
    for learner in ("mlp", "ridge_regression"):
        assert reg.loc[(learner, "r2"), "mean"] > 0.2  # far above predicting the mean (R² 0)
        assert reg.loc[(learner, "pearson"), "mean"] > 0.5

    crp = _summary(demo / "ecoli_crp" / "metrics.tsv")
    # On held-out genomic bins the CNN and the position-aware one-hot model both read the
    # centred site far better than the k-mer bag, which cannot see where a k-mer lies.
    kmer_auroc = crp.loc[("kmer6_logistic_regression", "auroc"), "mean"]
    for learner in ("cnn", "onehot_logistic_regression"):
        assert crp.loc[(learner, "auroc"), "mean"] > max(0.8, kmer_auroc + 0.05)

    pbmc = _summary(demo / "pbmc_cell_types" / "metrics.tsv")
    # Six gated cell types on the scVI latent space, well above the majority class (530 / 1209).
    assert pbmc.loc[("mlp", "accuracy"), "mean"] > 0.85
    assert pbmc.loc[("mlp", "auroc"), "mean"] > 0.9
    assert pbmc.loc[("pca_logistic_regression", "accuracy"), "mean"] > 0.85
    import scanpy as sc

    folder = demo / "pbmc_cell_types"
    integrated = sc.read_h5ad(folder / "integrated.h5ad")
    assert integrated.obsm["X_scVI"].shape == (2000, 10)
    assert integrated.obsm["X_harmony"].shape == (2000, 30)
    scib = pd.read_csv(folder / "integration" / "scib.tsv", sep="\t").set_index("metric")
    # Control and stimulated cells share their types: Harmony and scVI mix them (measured:
    # iLISI 0.76 and 0.58 vs 0.00 for the PCA, which keeps the batches apart).
    ilisi = scib.loc["iLISI"]
    assert ilisi["PCA (unintegrated)"] < 0.05
    assert ilisi["Harmony"] > 0.5
    assert ilisi["scVI"] > 0.3
    verdict = json.loads((folder / "integration" / "verdict.json").read_text())
    for method in ("Harmony", "scVI"):
        assert verdict["methods"][method]["mixed"], method
        assert verdict["methods"][method]["kept"], method
    assert verdict["sentence"].startswith("Harmony, scVI and scANVI mixed the batches")
    # scANVI labelled the stimulated cells blind: most gated labels recovered (measured 0.93).
    summary = json.loads((folder / "integration" / "summary.json").read_text())
    assert summary["scanvi"]["hidden_check"]["accuracy_most_probable"] > 0.85

    # No confidence interval leaves its metric's range: in metrics.tsv and on the page.
    for metrics_tsv in demo.glob("*/metrics.tsv"):
        table = pd.read_csv(metrics_tsv, sep="\t")
        for row in table.itertuples():
            low, high = metric_bounds(row.metric)
            if np.isfinite(row.ci95_low):
                assert low <= row.ci95_low <= row.ci95_high <= high, (metrics_tsv, row)
    page = (demo / "report.html").read_text()
    intervals = 0
    for name, first, second in re.findall(r"([a-z][a-z0-9_]*) -?[\d.]+ \[(-?[\d.]+), (-?[\d.]+)\]",
                                          page):  # fmt: skip
        low, high = metric_bounds(name)
        assert low <= float(first) <= float(second) <= high, (name, first, second)
        intervals += 1
    for row in re.findall(r"<tr><td(?: class=\"[^\"]*\")?>([a-z][a-z0-9_]*)</td>(.*?)</tr>", page):
        low, high = metric_bounds(row[0])
        for first, second in re.findall(r"\[(-?[\d.]+), (-?[\d.]+)\]", row[1]):
            assert low <= float(first) <= float(second) <= high, (row[0], first, second)
            intervals += 1
    # The DOME summary's calibration line: ECE before → after temperature scaling.
    for line in re.findall(r"ECE raw → temperature-scaled:(.*?)<", page):
        for first, second in re.findall(r"\[(-?[\d.]+), (-?[\d.]+)\]", line):
            assert 0.0 <= float(first) <= float(second) <= 1.0, ("ece", first, second)
            intervals += 1
    assert intervals > 100

    html = page
    for text in ("breast_cancer", "all_target_genes", "ecoli_crp", "logistic_regression",
                 "ridge_regression", "kmer6_logistic_regression", "pbmc_cell_types",
                 "Batch integration", "Integration benchmark (scib-metrics)",
                 "Label transfer (scANVI)", '<p class="verdict"><strong>Integration:</strong>',
                 '<section id="verdict" class="level2">\n<h2>Verdict</h2>',
                 "ecoli_crp: ", "onehot_logistic_regression", "Split: ",
                 "Cell-type classification", "pca_logistic_regression", "DOME summary",
                 "Leaderboard", "Calibration", "What the model learned",
                 "RegulonDB_CRP"):  # fmt: skip
        assert text in html

    # A temperature left at 1 says why, as calibrate recorded it; hyperparameters stand once.
    for fit in demo.glob("*/*/calibration.json"):
        for rec in json.loads(fit.read_text())["learners"].values():
            for reason in np.atleast_1d(rec.get("skipped")):
                assert reason is None or SKIPPED[reason] in html, (fit, reason)
    for section in re.findall(r'<section id="[a-z_]+" class="experiment">.*?</section>\n</section>',
                              html, flags=re.S):  # fmt: skip
        assert section.count("hidden_layers=") + section.count("filters=") == 1
    assert "reverse_complement" not in html.split('id="ecoli_crp"')[0]  # tables: not read
    # Leaderboard groups in the order of the page, numbered so.
    order = re.findall(r'<section id="([a-z_]+)" class="experiment">', html)
    groups = re.findall(r"<h3>group (\d+): ([a-z_]+)", html)
    assert [name for _, name in groups] == order
    assert [int(number) for number, _ in groups] == list(range(1, len(order) + 1))

    # The CNN learned the CRP site: its top attribution motif matches the RegulonDB CRP matrix.
    motifs = pd.read_csv(demo / "ecoli_crp" / "interpret" / "motifs.tsv", sep="\t")
    top = motifs.iloc[0]
    assert top["source"] == "attribution seqlets"
    assert top["match_id"] == "RegulonDB_CRP"
    assert top["match_e"] < 0.1
    assert top["match_q"] < 0.05  # named only because significant (TOMTOM, exact p-values)
    assert "TGTGA" in top["consensus"] or "TCACA" in top["consensus"]
    # The k-mer bag ranks last, below the best with a p-value (corrected resampled t-test);
    # the verdict compares the two best, whatever they are.
    board = pd.read_csv(demo / "comparison" / "leaderboard.tsv", sep="\t")
    crp_board = board[board["experiment"] == "ecoli_crp"].sort_values("rank")
    kmer = crp_board[crp_board["learner"] == "kmer6_logistic_regression"].iloc[0]
    assert kmer["rank"] == 3
    assert kmer["p_corrected_t"] < 0.05
    first, second = crp_board["learner"].iloc[:2]
    assert "ecoli_crp: " in html
    assert re.search(rf"ecoli_crp: [^<]*{first}[^<]*{second}", html)
    # Temperature scaling repairs the over-confident k-mer baseline.
    assert (
        crp.loc[("kmer6_logistic_regression", "ece_calibrated"), "mean"]
        < crp.loc[("kmer6_logistic_regression", "ece"), "mean"] / 2
    )
