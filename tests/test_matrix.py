"""Every modality × alphabet × CV plan that applies runs from its data to ``report.html``.

Every cell of the matrix is an experiment on tiny data of its own folder, and all of them run
as one Snakemake run (``--keep-going``): the two cores stay busy where one run per cell left
them idle between a cell's steps, and the run's fixed costs (start-up, comparison, report) are
paid once. A cell that breaks still names itself (its test fails with its own job logs) and
leaves the others standing; the one report of all cells has a test of its own. Only the cells
a pytest session selects are run (``-k image`` runs the image cell alone). Training is cut to a
couple of epochs: these tests check that every step of every combination runs and writes what
the next one reads, not how well the models do (the demo test does that on real data).
"""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import yaml

from dlpipe.workflow import rebase_paths

ROOT = Path(__file__).resolve().parents[1]
FAST = {"max_epochs": 2, "patience": 1, "progress_bar": False, "device": "cpu", "batch_size": 16}
SMALL_INTERPRET = {"n_samples": 8, "ig_steps": 8, "permutation_repeats": 1,
                   "permutation_features": 4}  # fmt: skip
MOTIF = "TGTGATCTAGATCACA"


def _table(folder: Path, n: int = 48, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    frame = pd.DataFrame(x, columns=[f"g{i}" for i in range(6)])
    frame.insert(0, "sample", [f"S{i:03d}" for i in range(n)])
    frame["state"] = np.where(x[:, 0] + 0.3 * rng.normal(size=n) > 0, "disease", "healthy")
    frame["patient"] = [f"P{i % 8}" for i in range(n)]
    frame["t"] = x[:, 1] * 2 + rng.normal(size=n) * 0.2
    frame.to_csv(folder / "table.csv", index=False)
    return "table.csv"


def _genome(folder: Path, n_chrom: int, stranded: bool = False, seed: int = 0) -> tuple[str, str]:
    """A genome of ``n_chrom`` 40-kb chromosomes with a planted motif at 30 sites each."""
    rng = np.random.default_rng(seed)
    records, rows = [], []
    for c in range(n_chrom):
        seq = rng.choice(list("ACGT"), 40_000)
        for k, start in enumerate(rng.choice(np.arange(500, 39_000, 600), 30, replace=False)):
            seq[start : start + len(MOTIF)] = list(MOTIF)
            strand = "+-"[k % 2] if stranded else "."
            rows.append(
                (f"chr{c + 1}", int(start), int(start) + len(MOTIF), f"s{c}_{k}", 0, strand)
            )
        text = "".join(seq)
        records.append(f">chr{c + 1}\n" + "\n".join(text[i : i + 60] for i in range(0, 40_000, 60)))
    (folder / "genome.fa").write_text("\n".join(records) + "\n")
    pd.DataFrame(sorted(rows)).to_csv(folder / "sites.bed", sep="\t", header=False, index=False)
    return "genome.fa", "sites.bed"


def _fasta(folder: Path, alphabet: str, coordinates: bool = False, n: int = 80) -> str:
    rng = np.random.default_rng(1)
    letters = {"dna": "ACGT", "rna": "ACGU", "protein": "ACDEFGHIKLMNPQRSTVWY"}[alphabet]
    lines = []
    for i in range(n):
        label = "bound" if i % 2 else "unbound"
        seq = list(rng.choice(list(letters), 60))
        if label == "bound":  # a composition shift the baseline can see
            for j in range(0, 60, 5):
                seq[j] = "K" if alphabet == "protein" else "G"
        name = f"chr{i // 2 % 4 + 1}:{1000 * i}-{1000 * i + 60}" if coordinates else f"r{i}"
        lines.append(f">{name}|{label}\n{''.join(seq)}\n")
    path = folder / f"{alphabet}.fa.gz"
    with gzip.open(path, "wt") as out:
        out.write("".join(lines))
    return path.name


def _cells(folder: Path) -> str:
    rng = np.random.default_rng(0)
    n, genes, types = 120, 30, ["B", "NK", "T"]
    cell_type = np.array([types[i % 3] for i in range(n)])
    rate = np.ones((n, genes))
    for k, name in enumerate(types):
        rate[np.ix_(cell_type == name, np.arange(8 * k, 8 * k + 8))] *= 6.0
    batch = np.repeat(["b1", "b2"], n // 2)
    rate[batch == "b2"] *= 1.5
    counts = rng.negative_binomial(5, 5 / (5 + rate)).astype(np.float32)
    obs = pd.DataFrame(
        # Every donor has cells of every type (donors cycle every three cells).
        {"batch": batch, "cell_type": cell_type, "donor": [f"d{(i // 3) % 6}" for i in range(n)]},
        index=[f"cell{i:03d}" for i in range(n)],
    )
    adata = ad.AnnData(sp.csr_matrix(counts), obs=obs,
                       var=pd.DataFrame(index=[f"g{j}" for j in range(genes)]))  # fmt: skip
    adata.write_h5ad(folder / "cells.h5ad")
    return "cells.h5ad"


def _images(folder: Path, n: int = 40, seed: int = 0) -> str:
    """Tiny 8-bit RGB PNGs of two classes (a bright square or not) from 4 slides."""
    from PIL import Image  # lazy: Pillow, only the image cell needs it

    rng = np.random.default_rng(seed)
    (folder / "images").mkdir()
    rows = []
    for i in range(n):
        label = ("plain", "square")[i % 2]
        pixels = rng.integers(0, 120, (20, 20, 3), dtype=np.uint8)
        if label == "square":
            pixels[6:14, 6:14] += 100
        name = f"images/img{i:02d}.png"
        Image.fromarray(pixels).save(folder / name)
        rows.append({"file": name, "class": label, "slide": f"s{(i // 2) % 4}"})
    pd.DataFrame(rows).to_csv(folder / "images.csv", index=False)
    return "images.csv"


def _graph(folder: Path, n: int = 60, seed: int = 0) -> str:
    """Two communities of ``n / 2`` proteins, dense inside, sparse between, with node features."""
    rng = np.random.default_rng(seed)
    i, j = np.triu_indices(n, k=1)
    same = (i < n // 2) == (j < n // 2)
    keep = rng.random(len(i)) < np.where(same, 0.3, 0.02)
    names = np.array([f"P{k:03d}" for k in range(n)])
    edges = pd.DataFrame({"protein_a": names[i[keep]], "protein_b": names[j[keep]]})
    edges.to_csv(folder / "edges.tsv", sep="\t", index=False)
    nodes = pd.DataFrame({"node": names, "x1": rng.normal(size=n), "x2": np.arange(n) < n // 2})
    nodes["x2"] = nodes["x2"].astype(float)
    nodes.to_csv(folder / "nodes.csv", index=False)
    return "edges.tsv"


def _image_folder(folder: Path) -> str:
    """The same images as a folder, ``images_by_class/<class>/<slide>/<image>``."""
    table = pd.read_csv(folder / _images(folder))
    for row in table.itertuples():
        target = folder / "images_by_class" / row[2] / row[3] / Path(row[1]).name
        target.parent.mkdir(parents=True, exist_ok=True)
        (folder / row[1]).rename(target)
    return "images_by_class"


def _sequence_exp(data: dict[str, Any], cv: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "task": "classification",
        "data": {"modality": "sequence", "sequence_length": 60, **data},
        "model": {"name": "cnn", "filters": [8], "kernel_sizes": [9]},
        "training": FAST,
        "cv": cv,
        "interpret": {"n_sequences": 10, "ig_steps": 8, "references": 4},
        "resources": {"threads": 1},
        **extra,
    }


def _table_exp(cv: dict[str, Any], task: str = "classification", **data: Any) -> dict[str, Any]:
    columns = {"label_column": "state"} if task == "classification" else {"target_columns": ["t"]}
    return {
        "task": task,
        "data": {"path": "table.csv", "id_column": "sample", **columns,
                 "exclude_columns": ["patient", "t" if task == "classification" else "state"],
                 **data},
        "model": {"name": "mlp", "hidden_layers": [8]},
        "training": FAST,
        "cv": cv,
        "interpret": SMALL_INTERPRET,
        "resources": {"threads": 1},
    }  # fmt: skip


def _cell(name: str, folder: Path) -> dict[str, Any]:
    """Write the data of one cell of the matrix into ``folder``; return its experiment."""
    if name.startswith("table"):
        _table(folder)
    if name == "table_stratified":
        return _table_exp({"plan": "stratified_kfold", "n_splits": 2})
    if name == "table_kfold_regression":
        return _table_exp({"plan": "kfold", "n_splits": 2}, task="regression")
    if name == "table_group":  # two baselines side by side
        exp = _table_exp({"plan": "group_kfold", "n_splits": 2}, group_column="patient")
        return {**exp, "baseline": {"models": ["linear", "random_forest"], "trees": 20}}
    if name == "table_repeated":
        return _table_exp({"plan": "repeated_stratified_kfold", "n_splits": 2, "n_repeats": 2})
    if name == "table_holdout":
        return _table_exp({"plan": "holdout", "test_size": 0.3})
    if name == "table_leave_one_out":
        _table(folder, n=8)
        return _table_exp({"plan": "leave_one_out"})
    if name.startswith("genome"):
        n_chrom = {"genome_chromosome_kfold": 3, "genome_bin_kfold": 2}.get(name, 3)
        genome, bed = _genome(folder, n_chrom, stranded=name == "genome_stranded")
        data = {"genome": genome, "bed": {"site": bed}, "bin_size": 10_000}
        cv = {
            "genome_chromosome_kfold": {"plan": "chromosome_kfold", "n_splits": 3},
            "genome_chromosome_holdout": {"plan": "chromosome_holdout",
                                          "val_chromosomes": ["chr2"],
                                          "test_chromosomes": ["chr3"]},
            "genome_bin_kfold": {"plan": "bin_kfold", "n_splits": 2},
            "genome_stranded": {"plan": "stratified_kfold", "n_splits": 2},
        }[name]  # fmt: skip
        return _sequence_exp(data, cv)
    if name.startswith("fasta"):
        alphabet = name.split("_")[1]
        coordinates = name == "fasta_dna_chromosome_kfold"
        fasta = _fasta(folder, alphabet, coordinates)
        cv = {"plan": "chromosome_kfold", "n_splits": 2} if coordinates else {
            "plan": "stratified_kfold", "n_splits": 2}  # fmt: skip
        return _sequence_exp({"fasta": fasta, "alphabet": alphabet}, cv)
    if name.startswith("singlecell"):
        _cells(folder)
        return {
            "task": "classification",
            "data": {"modality": "singlecell", "path": "cells.h5ad", "batch_column": "batch",
                     "label_column": "cell_type", "group_column": "donor"},
            "integration": {"methods": ["pca", "scvi"], "n_top_genes": None, "n_latent": 4,
                            "n_hidden": 16, "max_epochs": 3, "n_pcs": 5,
                            "min_cells_per_batch": 20, "device": "cpu"},
            "model": {"name": "mlp", "hidden_layers": [8]},
            "training": FAST,
            "cv": {"plan": "group_kfold", "n_splits": 2},
            "resources": {"threads": 1},
        }  # fmt: skip
    if name == "image_group":
        return {
            "task": "classification",
            "data": {"modality": "image", "path": _images(folder), "path_column": "file",
                     "label_column": "class", "group_column": "slide", "image_size": 16},
            "model": {"name": "smallcnn", "channels": [4, 8]},
            "training": FAST,
            "cv": {"plan": "group_kfold", "n_splits": 2},
            "resources": {"threads": 1},
        }  # fmt: skip
    if name == "image_folder_group":
        # Groups from the slide folders; two loader workers read the store.
        return {
            "task": "classification",
            "data": {"modality": "image", "path": _image_folder(folder), "group_level": 1},
            "model": {"name": "smallcnn", "channels": [4, 8]},
            "training": {**FAST, "num_workers": 2},
            "cv": {"plan": "group_kfold", "n_splits": 2},
            "resources": {"threads": 1},
        }
    if name.startswith("graph"):
        data = {"modality": "graph", "path": _graph(folder), "node_a_column": "protein_a",
                "node_b_column": "protein_b"}  # fmt: skip
        if name == "graph_cold_start":  # node features, standardised per fold
            data["node_features"] = "nodes.csv"
        plan = "cold_start_kfold" if name == "graph_cold_start" else "edge_kfold"
        return {
            "task": "link_prediction",
            "data": data,
            "model": {"name": "gnn", "hidden_layers": [8], "embedding_size": 4},
            "training": {**FAST, "max_epochs": 5},
            "cv": {"plan": plan, "n_splits": 2, "val_fraction": 0.2},
            "interpret": {"top_pairs": 5},
            "resources": {"threads": 1},
        }
    raise AssertionError(name)


CELLS = [
    "table_stratified", "table_kfold_regression", "table_group", "table_repeated",
    "table_holdout", "table_leave_one_out",
    "genome_chromosome_kfold", "genome_chromosome_holdout", "genome_bin_kfold", "genome_stranded",
    "fasta_dna_stratified", "fasta_rna_stratified", "fasta_protein_stratified",
    "fasta_dna_chromosome_kfold",
    "singlecell_group", "image_group", "image_folder_group",
    "graph_edge_kfold", "graph_cold_start",
]  # fmt: skip


def _learners(name: str) -> list[str]:
    """The deep model, then the baselines a cell's config asks for (``auto`` resolved)."""
    if name == "table_group":
        return ["mlp", "logistic_regression", "random_forest"]
    if name.startswith("table"):
        return ["mlp", "ridge_regression" if "regression" in name else "logistic_regression"]
    if name.startswith("singlecell"):
        return ["mlp", "pca_logistic_regression"]
    if name.startswith("image"):
        return ["smallcnn", "pixels_logistic_regression"]
    if name.startswith("graph"):
        return ["gnn", "adamic_adar", "common_neighbours", "heuristic_regression",
                "preferential_attachment"]  # fmt: skip
    # Genome windows and these FASTAs (60 bp, the input length) have one length: one-hot too.
    kmer = "kmer1_2" if "protein" in name else "kmer6"
    return ["cnn", f"{kmer}_logistic_regression", "onehot_logistic_regression"]


def _failure(root: Path, run: subprocess.CompletedProcess[str], name: str | None) -> str:
    """The run's error lines and the tail of every failed job log (of cell ``name``, if given)."""
    lines = [line for line in (run.stdout + run.stderr).splitlines() if "rror" in line]
    if name:
        lines = [line for line in lines if name in line]
    for log in sorted(root.glob("logs/**/*.log")):
        parts = log.relative_to(root).with_suffix("").parts
        if name and name not in parts:
            continue
        text = log.read_text(errors="replace")
        if "Error" in text or "Traceback" in text:
            lines += [f"--- {log.relative_to(root)}", *text.splitlines()[-15:]]
    return "\n".join(lines[-60:])


def _selected(request: pytest.FixtureRequest) -> list[str]:
    """The cells whose test this pytest session runs, in the matrix's order."""
    chosen = {
        item.callspec.params["name"]
        for item in request.session.items
        if item.originalname == "test_cell_runs_to_the_report"
    }
    return [name for name in CELLS if name in chosen] or CELLS


@pytest.fixture(scope="module")
def matrix(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One Snakemake run of every selected cell, each cell's data in a folder of its name."""
    root = tmp_path_factory.mktemp("matrix")
    experiments = {}
    for name in _selected(request):
        (root / name).mkdir()
        config = {"experiments": {name: _cell(name, root / name)}}
        experiments[name] = rebase_paths(config, name)["experiments"][name]
    config = {"report": {"title": "matrix"}, "experiments": experiments}
    (root / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [sys.executable, "-m", "dlpipe.cli", "run", "config.yaml", "--cores", "2", "--quiet",
           "--keep-going"]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=root)
    return root, run


@pytest.mark.workflow
@pytest.mark.parametrize("name", CELLS)
def test_cell_runs_to_the_report(
    matrix: tuple[Path, subprocess.CompletedProcess[str]], name: str
) -> None:
    root, run = matrix
    results = root / "results" / name
    assert (results / "metrics.tsv").is_file(), _failure(root, run, name)
    metrics = pd.read_csv(results / "metrics.tsv", sep="\t")
    assert list(dict.fromkeys(metrics["learner"])) == _learners(name)
    assert metrics["pooled"].notna().any()
    page = root / "results" / "report.html"
    assert page.is_file(), _failure(root, run, None)  # another cell broke the report
    text = page.read_text()
    assert f'id="{name}"' in text
    if name == "table_leave_one_out":
        _check_leave_one_out(root / "results", name)
    if name.startswith("image"):
        _check_saliency(root / "results", name)
    if name.startswith("graph"):
        _check_graph(root / "results", name)


@pytest.mark.workflow
def test_one_report_shows_every_cell(matrix: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    root, run = matrix
    assert run.returncode == 0, _failure(root, run, None)
    page = (root / "results" / "report.html").read_text()
    assert "Traceback" not in page
    config = yaml.safe_load((root / "config.yaml").read_text())
    for name in config["experiments"]:
        assert f'id="{name}"' in page


def _section(page: str, name: str) -> str:
    """The part of the shared report from cell ``name``'s anchor to the next cell's."""
    start = page.index(f'id="{name}"')
    later = [page.find(f'id="{other}"', start + 1) for other in CELLS if other != name]
    return page[start : min([i for i in later if i > start], default=len(page))]


def _check_saliency(results: Path, name: str) -> None:
    """Saliency maps of held-out images, each by its own test fold's model, in the report."""
    folder = results / name / "interpret"
    chosen = pd.read_csv(folder / "saliency.tsv", sep="\t", dtype={"id": str})
    folds = pd.read_csv(results / name / "folds.tsv", sep="\t", dtype={"id": str})
    test = folds[folds["set"] == "test"].set_index("id")["fold"]
    assert len(chosen) >= 2
    assert (chosen["fold_used"] == chosen["id"].map(test)).all()
    with np.load(folder / "saliency.npz", allow_pickle=False) as arrays:
        assert arrays["ig"].shape == arrays["pixels"].shape
        assert arrays["ig"].shape[:2] == (len(chosen), 3)  # RGB images
        assert np.isfinite(arrays["gradcam"]).all()
    section = _section((results / "report.html").read_text(), name)
    assert 'alt="saliency maps"' in section
    assert "Sanity check, model randomisation" in section
    assert "not explained" not in section


def _check_graph(results: Path, name: str) -> None:
    """No held-out edge carries a message; the report shows the graph's own section."""
    from dlpipe.io.fitted import load_fitted
    from dlpipe.modalities.graph import LinkSide

    for fold in (0, 1):
        graph = load_fitted(results / name / str(fold) / "preprocessor.skops")["message_passing"]
        carried = set(map(tuple, graph.tolist()))
        for side in ("val", "test"):
            held = LinkSide.load(results / name / str(fold) / f"{side}.npz")
            assert not carried & set(map(tuple, held.pairs[held.y == 1].tolist()))
    interpret = results / name / "interpret"
    novel = pd.read_csv(interpret / "novel_pairs.tsv", sep="\t")
    assert (interpret / "by_unseen.tsv").is_file() == (name == "graph_cold_start")
    section = _section((results / "report.html").read_text(), name)
    if name == "graph_cold_start":  # 2 folds: every protein is held out by one of the 2 models
        assert novel.empty
        assert "No novel pair is listed" in section
    else:
        assert len(novel) == 5
    assert "Where the learners work, and what is new" in section
    assert 'alt="node embeddings"' in section


def _check_leave_one_out(results: Path, name: str) -> None:
    """Pooled summaries with bounded intervals; tiny validation sides fit nothing."""
    metrics = pd.read_csv(results / name / "metrics.tsv", sep="\t")
    auroc = metrics[metrics["metric"] == "auroc"]
    assert (auroc["summary"] == "pooled").all()
    assert auroc["mean"].isna().all()  # no mean ± sd over undefined folds
    assert (auroc["folds_used"] == 0).all()
    assert ((auroc["ci95_low"] >= 0) & (auroc["ci95_high"] <= 1)).all()
    assert (auroc["ci95_low"] <= auroc["ci95_high"]).all()
    board = pd.read_csv(results / "comparison" / "leaderboard.tsv", sep="\t")
    board = board[board["experiment"] == name]
    assert (board["summary"] == "pooled").all()
    assert board["pooled"].is_monotonic_decreasing  # ranked on the pooled auROC
    assert board["p_bootstrap"].iloc[1:].between(0, 1).all()
    # One or two validation rows per fold: below both thresholds.
    fold = results / name / "0"
    history = pd.read_csv(fold / "history.tsv", sep="\t")
    assert history["early_stopping"].str.contains("validation rows < training.min_validation").all()
    calibration = yaml.safe_load((fold / "calibration.json").read_text())
    assert {r["skipped"] for r in calibration["learners"].values()} == {"too_few_validation_rows"}
    page = (results / "report.html").read_text()
    assert "pooled over out-of-fold predictions" in page
    assert "paired bootstrap" in page
    assert "early stopping skipped" in page
