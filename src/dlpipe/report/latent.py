"""Report sections of single-cell integration and of the VAE embedding.

:func:`dlpipe.workflow.extra_report_files` names the files these sections show (the report
rule's inputs); :func:`extra_sections` turns them into section data that
:func:`dlpipe.report.page.build_report` places after an experiment's data section (integration,
classification plan) and after its metrics (VAE embedding). Functions named ``*_html`` or
``*_block`` render one section alone (tests read them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from dlpipe.cells import BY_CONSTRUCTION, METHODS, SUPERVISED
from dlpipe.io.files import read_json
from dlpipe.report.render import anchor, fmt, image, render_section, section, table, warning


def extra_sections(
    name: str, exp: Mapping[str, Any], files: Mapping[str, Any]
) -> dict[str, list[dict[str, Any]]]:
    """Section data of an experiment's extra sections, by place in its part of the report."""
    sections: dict[str, list[dict[str, Any]]] = {}
    if f"{name}_integration" in files:
        summary = read_json(files[f"{name}_integration"])
        verdict = read_json(files[f"{name}_verdict"]) if f"{name}_verdict" in files else None
        sections["top"] = [verdict_section(verdict)] if verdict else []
        sections["after_data"] = [
            integration_section(
                name, exp, summary, verdict, files[f"{name}_scib"], files[f"{name}_umap"],
                files.get(f"{name}_transfer"),
            ),
            classification_section(name, exp, summary),
        ]  # fmt: skip
    if f"{name}_reconstruction" in files:
        sections["after_metrics"] = [
            embedding_section(
                name, exp, files[f"{name}_reconstruction"], files[f"{name}_embedding_umap"]
            )
        ]
    return sections


def verdict_section(verdict: Mapping[str, Any]) -> dict[str, Any]:
    """Return the integration verdict (one sentence) and its warnings, shown first."""
    return section(
        "integration_verdict.html.j2",
        None,
        None,
        sentence=verdict.get("sentence") or "",
        warnings=[warning(text) for text in verdict.get("warnings", [])],
    )


def verdict_block(verdict: Mapping[str, Any]) -> str:
    """Render the integration verdict alone (HTML)."""
    return render_section(verdict_section(verdict))


def _batch_text(summary: Mapping[str, Any]) -> str:
    return ", ".join(f"{b}: {n}" for b, n in summary["cells_per_batch"].items())


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
    name: str,
    exp: Mapping[str, Any],
    summary: Mapping[str, Any],
    verdict: Mapping[str, Any] | None,
    scib_tsv: str,
    umap_png: str,
    transfer_png: str | None = None,
) -> dict[str, Any]:
    """Integration facts, what was fitted on which cells, the scib table, UMAPs, label transfer."""
    cfg, data = exp["integration"], exp["data"]
    methods = summary.get("methods", ["pca", "scvi"])
    scib = pd.read_csv(scib_tsv, sep="\t", keep_default_na=False)
    margin = verdict["margin"] if verdict else cfg["verdict_margin"]
    return section(
        "integration.html.j2",
        "Batch integration",
        anchor(name, "integration"),
        n_cells_in=summary["n_cells_in"],
        n_genes_in=summary["n_genes_in"],
        counts=f"layer {data['layer']!r}" if data["layer"] else "X",
        source=summary["source"],
        sha256=summary["sha256"][:16],
        batch_column=data["batch_column"],
        batches=_batch_text(summary),
        n_genes_shared=summary["n_genes_shared"],
        genes_used=_genes_used(summary),
        n_cells_without_counts=summary["n_cells_without_counts"],
        methods="; ".join(
            _METHOD_TEXT[m].format(n_pcs=summary["n_pcs"], theta=cfg["harmony_theta"])
            for m in methods
        ),
        n_latent=cfg["n_latent"],
        n_layers=cfg["n_layers"],
        n_hidden=cfg["n_hidden"],
        gene_likelihood=cfg["gene_likelihood"],
        epochs_trained=summary["epochs_trained"],
        max_epochs=summary["max_epochs"],
        early_stopping="on" if cfg["early_stopping"] else "off",
        at_limit=_at_limit(summary, cfg),
        elbo=", ".join(f"{k} {v:.1f}" for k, v in summary.get("final_elbo", {}).items()),
        n_clusters=summary["n_clusters"],
        leiden_resolution=cfg["leiden_resolution"],
        n_cells=summary["n_cells"],
        scanvi="scanvi" in summary,
        margin=f"{margin:g}",
        scib=None if scib.empty else scib_table(scib, margin),
        umap=image(
            umap_png,
            "integration UMAPs",
            "UMAPs of each method (unintegrated PCA first), coloured by batch, by label (grey: "
            "unlabelled) and, with scANVI, by transferred label (black: unknown).",
        ),
        transfer=(transfer_data(summary["scanvi"], transfer_png) if "scanvi" in summary else None),
    )


def transfer_data(transfer: Mapping[str, Any], png: str | None) -> dict[str, Any]:
    """Describe the label transfer: what scANVI labelled, how sure, what it left unknown."""
    n, unknown = transfer["n_targets"], transfer["n_unknown"]
    composition = None
    rows = [{"batch": batch, **counts} for batch, counts in transfer["composition"].items()]
    if rows:
        frame = pd.DataFrame(rows).fillna(0)
        frame = frame.astype({c: int for c in frame.columns if c != "batch"})
        composition = table(frame)
    dominated = [
        warning(
            f"Batch {batch}: {flag['fraction']:.0%} of the transferred labels are "
            f"{flag['label']}, which is {flag['reference_fraction']:.0%} of the labels scANVI "
            "learned from. Either this batch really is dominated by that type, or scANVI "
            "sends cells it cannot place there; check markers before using these labels."
        )
        for batch, flag in transfer["dominated"].items()
    ]
    check = transfer.get("hidden_check")
    checked = None
    if check:
        absent = check["labels_absent_from_reference"]
        missed = [
            f"{k} ({round(v * check['support'][k])} of {check['support'][k]}; "
            f"{check['reference_support'][k]} in the reference)"
            for k, v in check["recall_most_probable"].items()
            if v < 0.5 and k not in absent and "support" in check
        ]
        warnings = []
        if missed:
            warnings.append(
                warning(
                    f"scANVI recovered fewer than half of the hidden cells of type(s) "
                    f"{'; '.join(missed)}: their transferred labels are mostly wrong. Types "
                    "this rare in the reference are not learned; label more of them."
                )
            )
        if absent:
            warnings.append(
                warning(
                    f"Cell types {', '.join(absent)} of the hidden batch(es) do not occur in the "
                    "labels scANVI learned from; it cannot name them and assigns them to other "
                    "types (or unknown)."
                )
            )
        checked = {
            "batches": ", ".join(transfer["hidden_batches"]),
            "cells": check["cells"],
            "coverage": f"{check['coverage']:.0%}",
            "accuracy_accepted": fmt(check["accuracy_accepted"]),
            "accuracy_most_probable": f"{check['accuracy_most_probable']:.3f}",
            "balanced_accuracy": f"{check['balanced_accuracy_most_probable']:.3f}",
            "recall": ", ".join(f"{k} {v:.2f}" for k, v in check["recall_most_probable"].items()),
            "warnings": warnings,
        }
    figure = None
    if png:
        figure = image(
            png,
            "label transfer",
            "Left: probability of the most probable label, per batch, with the threshold. Right: "
            "share of each transferred label per batch (black: unknown) beside the labels scANVI "
            "learned from.",
        )
    return section(
        "transfer.html.j2",
        "Label transfer (scANVI)",
        None,
        level=4,
        n_targets=n,
        n_unknown=unknown,
        unknown_percent=f"{unknown / n:.0%}" if n else "",
        epochs=transfer["epochs"],
        n_reference=transfer["n_reference"],
        threshold=f"{transfer['threshold']:g}",
        mean_probability=fmt(transfer["mean_probability"]),
        composition=composition,
        dominated=dominated,
        check=checked,
        figure=figure,
    )


def transfer_section(transfer: Mapping[str, Any], png: str | None) -> str:
    """Render the label transfer alone (HTML)."""
    return render_section(transfer_data(transfer, png))


def scib_table(scib: pd.DataFrame, margin: float = 0.0) -> dict[str, Any]:
    """Return the scib table's data; a row's best embedding bold when it leads by > margin."""
    embeddings = [c for c in scib.columns if c not in ("metric", "type", "cells")]
    shown = scib.astype({name: object for name in embeddings})  # cells become text
    css = {}
    for i, row in scib.iterrows():
        values = pd.to_numeric(row[embeddings], errors="coerce").astype(float)
        for name in embeddings:
            shown.loc[i, name] = fmt(float(values[name]))
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
    return table(shown, css)


def scib_html(scib: pd.DataFrame, margin: float = 0.0) -> str:
    """Render the scib table alone (HTML)."""
    return render_section(section("table.html.j2", None, None, table=scib_table(scib, margin)))


def classification_section(
    name: str, exp: Mapping[str, Any], summary: Mapping[str, Any]
) -> dict[str, Any]:
    """Say what the cross-validated cell-type classification below reads and compares."""
    cv = exp["cv"]
    return section(
        "cell_classification.html.j2",
        "Cell-type classification",
        anchor(name, "cell-types"),
        labelled_cells=summary["labelled_cells"],
        label_column=exp["data"]["label_column"],
        unlabelled_cells=summary["unlabelled_cells"],
        plan=cv["plan"],
        n_splits=cv["n_splits"],
        n_latent=exp["integration"]["n_latent"],
        n_pcs=summary["n_pcs"],
    )


def embedding_section(
    name: str, exp: Mapping[str, Any], reconstruction_tsv: str, umap_png: str
) -> dict[str, Any]:
    """Reconstruction error of the fold VAEs by side and the UMAP of one fold's latent space."""
    cfg = exp["embed"]
    errors = pd.read_csv(reconstruction_tsv, sep="\t")
    rows = []
    for side, part in errors.groupby("side", sort=False):
        rows.append(
            {
                "side": side,
                "samples per fold": fmt(part["n"].mean(), 1),
                "MSE (mean ± sd)": f"{fmt(part['mse'].mean())} ± {fmt(part['mse'].std())}",
                "R² (mean ± sd)": f"{fmt(part['r2'].mean())} ± {fmt(part['r2'].std())}",
                "negative ELBO": fmt(part["neg_elbo"].mean(), 1),
            }
        )
    per_fold = errors[errors["side"] == "test"][["fold", "n", "mse", "r2", "neg_elbo"]]
    per_fold = per_fold.assign(**{c: per_fold[c].map(fmt) for c in ("mse", "r2", "neg_elbo")})
    return section(
        "embedding.html.j2",
        "VAE embedding",
        anchor(name, "embedding"),
        hidden_layers=cfg["hidden_layers"],
        n_latent=cfg["n_latent"],
        beta=cfg["beta"],
        sides=table(pd.DataFrame(rows)),
        per_fold=table(per_fold),
        umap=image(
            umap_png,
            "VAE latent UMAP",
            "UMAP of the latent space of fold 0's VAE; crosses are the samples it never saw.",
        ),
    )
