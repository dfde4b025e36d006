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

from dlpipe.cells import BY_CONSTRUCTION, METHODS, SUPERVISED
from dlpipe.io.files import read_json
from dlpipe.report import html


def extra_sections(
    name: str, exp: Mapping[str, Any], files: Mapping[str, Any]
) -> dict[str, list[str]]:
    """HTML blocks of an experiment's extra sections, by place in its part of the report."""
    sections: dict[str, list[str]] = {}
    if f"{name}_integration" in files:
        summary = read_json(files[f"{name}_integration"])
        verdict = read_json(files[f"{name}_verdict"]) if f"{name}_verdict" in files else None
        sections["top"] = [verdict_block(verdict)] if verdict else []
        sections["after_data"] = [
            integration_section(
                exp, summary, verdict, files[f"{name}_scib"], files[f"{name}_umap"],
                files.get(f"{name}_transfer"),
            ),
            classification_section(exp, summary),
        ]  # fmt: skip
    if f"{name}_reconstruction" in files:
        sections["after_metrics"] = [
            embedding_section(exp, files[f"{name}_reconstruction"], files[f"{name}_embedding_umap"])
        ]
    return sections


def verdict_block(verdict: Mapping[str, Any]) -> str:
    """Render the integration verdict (one sentence) and its warnings, shown first."""
    if not verdict.get("sentence"):
        return '<p class="note">Integration not scored (integration.benchmark: false).</p>'
    sentence = html.esc(verdict["sentence"])
    parts = [f'<p class="verdict"><strong>Integration:</strong> {sentence}</p>']
    parts += [html.warning(text) for text in verdict["warnings"]]
    return "\n".join(parts)


def _batch_text(summary: Mapping[str, Any]) -> str:
    return ", ".join(f"{html.esc(b)}: {n}" for b, n in summary["cells_per_batch"].items())


def _at_limit(summary: Mapping[str, Any], cfg: Mapping[str, Any]) -> str:
    """Say so when scVI stopped at its epoch limit while early stopping was waiting."""
    if cfg["early_stopping"] and summary["epochs_trained"] >= summary["max_epochs"]:
        return (
            "; it stopped at the epoch limit, not by early stopping: the held-out ELBO was "
            "still improving, so more epochs may integrate further"
        )
    return ""


def _genes_used(summary: Mapping[str, Any]) -> str:
    if summary["n_genes_used"] == summary["n_genes_shared"]:
        return "all of them were used"
    return (
        f"the {summary['n_genes_used']} most variable were used (scanpy seurat_v3 on counts, "
        "ranked across batches)"
    )


#: Display names of the methods trained on the labels (not bolded on label scores).
SUPERVISED_NAMES = frozenset(METHODS[m][0] for m in SUPERVISED)

_METHOD_TEXT = {
    "pca": "PCA ({n_pcs} components) of the library-size normalised, log-transformed counts "
    "(the unintegrated reference)",
    "harmony": "Harmony (harmonypy, θ = {theta}) on that PCA",
    "combat": "ComBat (scanpy) on the log-normalised genes, then PCA",
    "scvi": "scVI (scvi-tools) on the counts",
    "scanvi": "scANVI from the scVI model, trained on the labels",
}


def integration_section(
    exp: Mapping[str, Any],
    summary: Mapping[str, Any],
    verdict: Mapping[str, Any] | None,
    scib_tsv: str,
    umap_png: str,
    transfer_png: str | None = None,
) -> str:
    """Integration facts, what was fitted on which cells, the scib table, UMAPs, label transfer."""
    cfg, data = exp["integration"], exp["data"]
    counts = f"layer {data['layer']!r}" if data["layer"] else "X"
    elbo = ", ".join(f"{k} {v:.1f}" for k, v in summary.get("final_elbo", {}).items())
    methods = summary.get("methods", ["pca", "scvi"])
    listed = "; ".join(
        _METHOD_TEXT[m].format(n_pcs=summary["n_pcs"], theta=cfg["harmony_theta"]) for m in methods
    )
    parts = [
        "<h3>Batch integration</h3>",
        f"<p>{summary['n_cells_in']} cells × {summary['n_genes_in']} genes, raw counts from "
        f"{counts} of {html.esc(summary['source'])} (sha256 {html.esc(summary['sha256'][:16])}…); "
        f"batches ({html.esc(data['batch_column'])}): {_batch_text(summary)}. "
        f"{summary['n_genes_shared']} genes have counts in every batch; {_genes_used(summary)}. "
        f"{summary['n_cells_without_counts']} cells had no counts in them and were left out.</p>",
        f"<p>Methods, on the same genes and cells, seeded: {html.esc(listed)}. scVI: "
        f"{cfg['n_latent']} latent dimensions, {cfg['n_layers']} hidden layer(s) of "
        f"{cfg['n_hidden']}, {cfg['gene_likelihood']} likelihood; trained "
        f"{summary['epochs_trained']} of at most {summary['max_epochs']} epochs "
        f"(early stopping {'on' if cfg['early_stopping'] else 'off'}, on the ELBO of 10 % "
        f"held-out cells{_at_limit(summary, cfg)}); final {html.esc(elbo)}. "
        f"{summary['n_clusters']} Leiden clusters "
        f"(resolution {cfg['leiden_resolution']}) on the scVI latent space. Written: "
        "<code>integrated.h5ad</code> (one obsm embedding and UMAP per method; obs leiden) and "
        "the scvi-tools models (<code>integration/models</code>).</p>",
        '<p class="note">What was fitted on which cells: every method except scANVI was fitted '
        f"once, on all {summary['n_cells']} cells, without labels: integration is unsupervised "
        "(transductive), so test cells of the classification below shaped the embeddings but "
        "their labels never did. The classifiers, their scaler and early stopping saw the "
        "training side of each fold only.",
    ]
    if "scanvi" in summary:
        parts[-1] += (
            " scANVI was trained on the labels it saw, so its embedding is never used for the "
            "classification and its cell-type scores below are optimistic.</p>"
        )
    else:
        parts[-1] += "</p>"
    parts.append("<h4>Integration benchmark (scib-metrics)</h4>")
    scib = pd.read_csv(scib_tsv, sep="\t", keep_default_na=False)
    if scib.empty:
        parts.append("<p>Not computed (integration.benchmark: false).</p>")
    else:
        margin = verdict["margin"] if verdict else cfg["verdict_margin"]
        parts += [
            '<p class="note">scib-metrics, every metric better when higher (0 to 1). Aggregates: '
            "the mean of each type and Total = 0.4 × batch correction + 0.6 × bio conservation, "
            "as in scib, except that PCR comparison (0 for the unintegrated PCA by construction) "
            "is left out of them so that it cannot decide a ranking. Metrics that need labels "
            "use the labelled cells only (no predicted label); label-aware batch metrics need "
            "labelled cells in two batches or more. One run, one seed: differences below "
            f"{margin:g} are called ties in the verdict. Bold: the best embedding of a row, "
            "when it leads by more than that (scANVI, trained on the labels, is not bolded on "
            "cell-type scores).</p>",
            scib_html(scib, margin),
        ]
    parts.append(
        f"<figure>{html.img(umap_png, 'integration UMAPs')}<figcaption class=note>UMAPs of each "
        "method (unintegrated PCA first), coloured by batch, by label (grey: unlabelled) and, "
        "with scANVI, by transferred label (black: unknown).</figcaption></figure>"
    )
    if "scanvi" in summary:
        parts.append(transfer_section(summary["scanvi"], transfer_png))
    return "\n".join(parts)


def transfer_section(transfer: Mapping[str, Any], png: str | None) -> str:
    """Describe the label transfer: what scANVI labelled, how sure, what it left unknown."""
    n, unknown = transfer["n_targets"], transfer["n_unknown"]
    parts = [
        "<h4>Label transfer (scANVI)</h4>",
        f"<p>scANVI ({transfer['epochs']} epochs, from the scVI model) was trained on the labels "
        f"of {transfer['n_reference']} cells and labelled the {n} cells whose label it did not "
        "see. A label is kept when its probability reaches "
        f"{transfer['threshold']:g} (integration.label_confidence); {unknown} of {n} cells "
        f"({unknown / n:.0%}) stay <code>unknown</code>. Mean probability "
        f"{html.fmt(transfer['mean_probability'])}. Per cell: "
        "<code>integration/label_transfer.tsv</code>.</p>"
        if n
        else "<p>Every cell's label was seen by scANVI: nothing to transfer.</p>",
    ]
    rows = [{"batch": batch, **counts} for batch, counts in transfer["composition"].items()]
    if rows:
        frame = pd.DataFrame(rows).fillna(0)
        frame = frame.astype({c: int for c in frame.columns if c != "batch"})
        parts.append(html.table(frame))
    for batch, flag in transfer["dominated"].items():
        parts.append(
            html.warning(
                f"Batch {batch}: {flag['fraction']:.0%} of the transferred labels are "
                f"{flag['label']}, which is {flag['reference_fraction']:.0%} of the labels scANVI "
                "learned from. Either this batch really is dominated by that type, or scANVI "
                "sends cells it cannot place there; check markers before using these labels."
            )
        )
    check = transfer.get("hidden_check")
    if check:
        recall = ", ".join(
            f"{html.esc(k)} {v:.2f}" for k, v in check["recall_most_probable"].items()
        )
        absent = check["labels_absent_from_reference"]
        parts.append(
            f"<p>Check against hidden labels: the labels of batch(es) "
            f"{html.esc(', '.join(transfer['hidden_batches']))} were hidden from scANVI. Of "
            f"their {check['cells']} cells, {check['coverage']:.0%} got a label above the "
            f"threshold, and {html.fmt(check['accuracy_accepted'])} of those are right; the most "
            f"probable label is right for {check['accuracy_most_probable']:.3f} of all cells "
            f"(balanced accuracy {check['balanced_accuracy_most_probable']:.3f}; recall per "
            f"type: {recall}).</p>"
        )
        missed = [
            f"{k} ({round(v * check['support'][k])} of {check['support'][k]}; "
            f"{check['reference_support'][k]} in the reference)"
            for k, v in check["recall_most_probable"].items()
            if v < 0.5 and k not in absent and "support" in check
        ]
        if missed:
            parts.append(
                html.warning(
                    f"scANVI recovered fewer than half of the hidden cells of type(s) "
                    f"{'; '.join(missed)}: their transferred labels are mostly wrong. Types "
                    "this rare in the reference are not learned; label more of them."
                )
            )
        if absent:
            parts.append(
                html.warning(
                    f"Cell types {', '.join(absent)} of the hidden batch(es) do not occur in the "
                    "labels scANVI learned from; it cannot name them and assigns them to other "
                    "types (or unknown)."
                )
            )
    if png:
        parts.append(
            f"<figure>{html.img(png, 'label transfer')}<figcaption class=note>Left: probability "
            "of the most probable label, per batch, with the threshold. Right: share of each "
            "transferred label per batch (black: unknown) beside the labels scANVI learned "
            "from.</figcaption></figure>"
        )
    return "\n".join(parts)


def scib_html(scib: pd.DataFrame, margin: float = 0.0) -> str:
    """Format the scib table; the best embedding of a row in bold when it leads by > margin."""
    embeddings = [c for c in scib.columns if c not in ("metric", "type", "cells")]
    shown = scib.astype({name: object for name in embeddings})  # cells become text
    css = {}
    for i, row in scib.iterrows():
        values = pd.to_numeric(row[embeddings], errors="coerce").astype(float)
        for name in embeddings:
            shown.loc[i, name] = html.fmt(float(values[name]))
        if row["metric"] in BY_CONSTRUCTION:
            shown.loc[i, "metric"] = f"{row['metric']} (not in aggregates)"
            continue
        if row["type"] == "Bio conservation" or row["metric"] in ("Bio conservation", "Total"):
            # A method trained on the labels is not ranked on them (as in the verdict).
            values = values.drop([c for c in SUPERVISED_NAMES if c in values.index])
        if values.notna().sum() > 1:
            ordered = values.dropna().sort_values(ascending=False)
            if ordered.iloc[0] - ordered.iloc[1] > margin:
                css[(int(i), scib.columns.get_loc(ordered.index[0]))] = "best"
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
