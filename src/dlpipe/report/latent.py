"""Report sections of single-cell integration and of the VAE embedding.

:func:`dlpipe.workflow.extra_report_files` names the files these sections show (the report
rule's inputs); :func:`extra_sections` turns them into HTML blocks that
:func:`dlpipe.report.page.build_report` places after an experiment's data section (integration,
classification plan) and after its metrics (VAE embedding).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from dlpipe.io.files import read_json
from dlpipe.report import html


def extra_sections(
    name: str, exp: Mapping[str, Any], files: Mapping[str, Any]
) -> dict[str, list[str]]:
    """HTML blocks of an experiment's extra sections, by place in its part of the report."""
    sections: dict[str, list[str]] = {}
    if f"{name}_integration" in files:
        summary = read_json(files[f"{name}_integration"])
        sections["after_data"] = [
            integration_section(exp, summary, files[f"{name}_scib"], files[f"{name}_umap"]),
            classification_section(exp, summary),
        ]
    if f"{name}_reconstruction" in files:
        sections["after_metrics"] = [
            embedding_section(exp, files[f"{name}_reconstruction"], files[f"{name}_embedding_umap"])
        ]
    return sections


def _batch_text(summary: Mapping[str, Any]) -> str:
    return ", ".join(f"{html.esc(b)}: {n}" for b, n in summary["cells_per_batch"].items())


def _genes_used(summary: Mapping[str, Any]) -> str:
    if summary["n_genes_used"] == summary["n_genes_shared"]:
        return "all of them were used"
    return (
        f"the {summary['n_genes_used']} most variable were used (scanpy seurat_v3 on counts, "
        "ranked across batches)"
    )


def integration_section(
    exp: Mapping[str, Any], summary: Mapping[str, Any], scib_tsv: str, umap_png: str
) -> str:
    """Integration facts, what was fitted on which cells, the scib table and the UMAPs."""
    cfg, data = exp["integration"], exp["data"]
    counts = f"layer {data['layer']!r}" if data["layer"] else "X"
    elbo = ", ".join(f"{k} {v:.1f}" for k, v in summary.get("final_elbo", {}).items())
    parts = [
        "<h3>Batch integration (scVI)</h3>",
        f"<p>{summary['n_cells_in']} cells × {summary['n_genes_in']} genes, raw counts from "
        f"{counts} of {html.esc(summary['source'])} (sha256 {html.esc(summary['sha256'][:16])}…); "
        f"batches ({html.esc(data['batch_column'])}): {_batch_text(summary)}. "
        f"{summary['n_genes_shared']} genes have counts in every batch; {_genes_used(summary)}. "
        f"{summary['n_cells_without_counts']} cells had no counts in them and were left out.</p>",
        f"<p>scVI (scvi-tools): {cfg['n_latent']} latent dimensions, {cfg['n_layers']} hidden "
        f"layer(s) of {cfg['n_hidden']}, {cfg['gene_likelihood']} likelihood; trained "
        f"{summary['epochs_trained']} of at most {summary['max_epochs']} epochs "
        f"(early stopping {'on' if cfg['early_stopping'] else 'off'}, on the ELBO of 10 % "
        f"held-out cells); final {html.esc(elbo)}. UMAP and {summary['n_clusters']} Leiden "
        f"clusters (resolution {cfg['leiden_resolution']}) on the scVI latent space. The "
        "unintegrated baseline is the PCA "
        f"({summary['n_pcs']} components) of the same genes, library-size normalised and "
        "log-transformed. Written: <code>integrated.h5ad</code> (obsm X_scVI, X_pca, X_umap; "
        "obs leiden) and the scvi-tools model (<code>integration/models</code>).</p>",
        '<p class="note">What was fitted on which cells: scVI and the PCA were fitted once, on '
        f"all {summary['n_cells']} cells, without labels: integration is unsupervised "
        "(transductive), so test cells of the classification below shaped the latent space but "
        "their labels never did. The classifiers, their scaler and early stopping saw the "
        "training side of each fold only.",
    ]
    if "scanvi" in summary:
        scanvi = summary["scanvi"]
        predicted = ", ".join(
            f"{html.esc(k)}: {v}" for k, v in scanvi["predicted_unlabelled"].items()
        )
        parts[-1] += (
            f" scANVI ({scanvi['epochs']} epochs, from the scVI model) was trained on the labels "
            f"of all {summary['labelled_cells']} labelled cells; its latent space is therefore "
            "not used for the classification, and its predictions only label the "
            f"{summary['unlabelled_cells']} unlabelled cells (obs scanvi_prediction, "
            "scanvi_probability).</p>"
            f"<p>scANVI label transfer to the unlabelled cells: {predicted} (mean probability "
            f"{html.fmt(scanvi['mean_probability_unlabelled'])}).</p>"
        )
    else:
        parts[-1] += "</p>"
    parts.append("<h4>Integration benchmark (scib-metrics)</h4>")
    scib = pd.read_csv(scib_tsv, sep="\t", keep_default_na=False)
    if scib.empty:
        parts.append("<p>Not computed (integration.benchmark: false).</p>")
    else:
        parts += [
            '<p class="note">scib-metrics against the unintegrated PCA; every metric is better '
            "when higher (0 to 1). Aggregates as in scib: the mean of each type, Total = 0.4 × "
            "batch correction + 0.6 × bio conservation. Metrics that need labels use the "
            "labelled cells only (no predicted label is used); label-aware batch metrics need "
            "labelled cells in two batches or more. Bold: the better embedding.</p>",
            scib_html(scib),
        ]
    parts.append(
        f"<figure>{html.img(umap_png, 'integration UMAPs')}<figcaption class=note>UMAPs of the "
        "unintegrated PCA (top) and of scVI (bottom), coloured by batch, by label (grey: "
        "unlabelled) and, with scANVI, by transferred label.</figcaption></figure>"
    )
    return "\n".join(parts)


def scib_html(scib: pd.DataFrame) -> str:
    """Format the scib table, the better embedding of each row in bold."""
    embeddings = [c for c in scib.columns if c not in ("metric", "type", "cells")]
    shown = scib.astype({name: object for name in embeddings})  # cells become text
    css = {}
    for i, row in scib.iterrows():
        values = pd.to_numeric(row[embeddings], errors="coerce").astype(float)
        for name in embeddings:
            shown.loc[i, name] = html.fmt(float(values[name]))
        if values.notna().sum() > 1 and values.max() > values.min():
            css[(int(i), scib.columns.get_loc(values.idxmax()))] = "best"
    return html.table(shown, css)


def classification_section(exp: Mapping[str, Any], summary: Mapping[str, Any]) -> str:
    """Say what the cross-validated cell-type classification below reads and compares."""
    cv = exp["cv"]
    return (
        "<h3>Cell-type classification</h3>"
        f"<p>The {summary['labelled_cells']} labelled cells (column "
        f"{html.esc(exp['data']['label_column'])}; the {summary['unlabelled_cells']} unlabelled "
        "cells are left out) go through the same cross-validation as any table "
        f"({html.esc(cv['plan'])}, {cv['n_splits']} folds): the MLP reads the "
        f"{exp['integration']['n_latent']} scVI latent dimensions, the baseline (logistic "
        f"regression) the {summary['n_pcs']} principal components of the unintegrated data, "
        "both z-scored on the training side of each fold. Metrics below.</p>"
    )


def embedding_section(exp: Mapping[str, Any], reconstruction_tsv: str, umap_png: str) -> str:
    """Reconstruction error of the fold VAEs by side and the UMAP of one fold's latent space."""
    cfg = exp["embed"]
    table = pd.read_csv(reconstruction_tsv, sep="\t")
    rows = []
    for side, part in table.groupby("side", sort=False):
        rows.append(
            {
                "side": side,
                "samples per fold": html.fmt(part["n"].mean(), 1),
                "MSE (mean ± sd)": (
                    f"{html.fmt(part['mse'].mean())} ± {html.fmt(part['mse'].std())}"
                ),
                "R² (mean ± sd)": f"{html.fmt(part['r2'].mean())} ± {html.fmt(part['r2'].std())}",
                "negative ELBO": html.fmt(part["neg_elbo"].mean(), 1),
            }
        )
    per_fold = table[table["side"] == "test"][["fold", "n", "mse", "r2", "neg_elbo"]]
    per_fold = per_fold.assign(**{c: per_fold[c].map(html.fmt) for c in ("mse", "r2", "neg_elbo")})
    return "\n".join(
        [
            "<h3>VAE embedding</h3>",
            f"<p>A Gaussian VAE (features → {cfg['hidden_layers']} → {cfg['n_latent']} latent "
            f"dimensions, β = {cfg['beta']}) was fitted in every fold on the preprocessed "
            "features of the training side (early stopping on the validation side); the test "
            "side was only encoded and scored. Each fold's VAE embeds every sample "
            "(<code>{fold}/embedding.tsv</code>, posterior means; folds are different "
            "coordinate systems). Reconstruction error on the z-scored features, from the "
            "posterior mean:</p>",
            html.table(pd.DataFrame(rows)),
            '<p class="note">Test side, per fold:</p>',
            html.table(per_fold),
            f"<figure>{html.img(umap_png, 'VAE latent UMAP')}<figcaption class=note>UMAP of the "
            "latent space of fold 0's VAE; crosses are the samples it never saw."
            "</figcaption></figure>",
        ]
    )
