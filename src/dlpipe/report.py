"""One self-contained HTML page with every experiment's data, plan, metrics and figures.

Images are embedded as base64 PNG, so the page can be mailed or archived alone. Nothing is
recomputed here: the page shows the files the workflow wrote.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlpipe.config import effective_task
from dlpipe.io import read_json

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1100px;
color:#222;line-height:1.45;padding:0 1em}
h1{border-bottom:2px solid #333}h2{margin-top:2.2em;border-bottom:1px solid #bbb}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}
.best{font-weight:bold}.note{color:#555;font-size:.9em}
img{max-width:100%;border:1px solid #eee;margin:.4em 0}
details{margin:.6em 0}pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.8em}
nav a{margin-right:1em}
"""

_HIGHER_IS_BETTER = {"mse": False, "mae": False, "brier": False, "ece": False, "nll": False}
_PLAN_TEXT = {
    "stratified_kfold": "stratified {n_splits}-fold",
    "kfold": "{n_splits}-fold",
    "group_kfold": "group {n_splits}-fold",
    "repeated_kfold": "{n_splits}-fold repeated {n_repeats}×",
    "repeated_stratified_kfold": "stratified {n_splits}-fold repeated {n_repeats}×",
    "leave_one_out": "leave-one-out",
    "holdout": "hold-out test set of {test_size:.0%}",
    "chromosome_kfold": "{n_splits}-fold over chromosomes (genomic bins for a one-sequence genome)",
    "chromosome_holdout": "chromosome hold-out (validation {val_chromosomes}, test "
    "{test_chromosomes})",
}


@dataclass
class ExperimentFiles:
    """The files of one experiment that the report shows."""

    name: str
    config: Mapping[str, Any]
    dataset_meta: str
    provenance: str
    metrics: str
    preprocess_summaries: Sequence[str]
    figures: Sequence[str] = field(default_factory=list)
    #: Extra HTML blocks by place (``after_data``, ``after_metrics``); see dlpipe.report_latent.
    sections: Mapping[str, Sequence[str]] = field(default_factory=dict)
    #: Further files: ``histories``, ``models``, ``calibrations`` (lists), ``interpret`` (folder).
    extras: Mapping[str, Any] = field(default_factory=dict)


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _img(path: str | Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{_esc(alt)}" src="data:image/png;base64,{data}">'


def _table(frame: pd.DataFrame, classes: Mapping[tuple[int, int], str] | None = None) -> str:
    head = "".join(f"<th>{_esc(c)}</th>" for c in frame.columns)
    rows = []
    for i, (_, row) in enumerate(frame.iterrows()):
        cells = []
        for j, value in enumerate(row):
            css = (classes or {}).get((i, j))
            attr = f' class="{css}"' if css else ""
            cells.append(f"<td{attr}>{_esc(value)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    if isinstance(value, float | np.floating):
        return f"{value:.{digits}f}"
    return str(value)


def metrics_table(metrics: pd.DataFrame) -> str:
    """HTML table: one row per metric, per learner ``mean ± sd [95 % CI]`` and pooled value."""
    learners = list(dict.fromkeys(metrics["learner"]))
    out = []
    css = {}
    for i, metric in enumerate(dict.fromkeys(metrics["metric"])):
        row = {"metric": metric}
        means = {}
        for learner in learners:
            rec = metrics[(metrics["learner"] == learner) & (metrics["metric"] == metric)]
            if rec.empty:
                continue
            r = rec.iloc[0]
            means[learner] = r["mean"]
            row[f"{learner} (mean ± sd)"] = f"{_fmt(r['mean'])} ± {_fmt(r['sd'])}"
            row[f"{learner} 95 % CI"] = f"[{_fmt(r['ci95_low'])}, {_fmt(r['ci95_high'])}]"
            row[f"{learner} pooled"] = _fmt(r.get("pooled"))
        finite = {k: v for k, v in means.items() if np.isfinite(v)}
        if len(finite) > 1:
            higher = _HIGHER_IS_BETTER.get(metric.removesuffix("_calibrated"), True)
            pick = max if higher else min
            best = pick(finite, key=finite.get)
            css[(i, 1 + 3 * learners.index(best))] = "best"
        out.append(row)
    return _table(pd.DataFrame(out), css)


def _sequence_data_section(meta: Mapping[str, Any]) -> str:
    m = meta["meta"]
    counts = m["counts"]
    if "genome" not in m:  # a FASTA of labelled sequences
        gc = ", ".join(f"{k}: {v:.3f}" for k, v in m["gc_by_class"].items() if v == v)
        items = [
            ("sequences", f"{m['source']} (sha256 {m['sha256'][:16]}…)"),
            ("alphabet", meta["alphabet"]),
            ("sequences × length", f"{m['n_samples']} × {m['sequence_length']}"),
            ("classes", ", ".join(f"{k}: {v}" for k, v in m["class_counts"].items())),
            ("mean GC by class", gc or "–"),
            ("resized", f"{counts['cropped']} centre-cropped, {counts['padded']} padded"),
            ("CV groups", f"{counts['groups']} ({m['group_by']})"),
        ]
        return _table(pd.DataFrame(items, columns=["", "value"]))
    items = [
        ("genome", f"{m['genome']} (sha256 {m['genome_sha256'][:16]}…)"),
        ("positives", ", ".join(f"{p} (sha256 {h[:16]}…)" for p, h in m["sha256"].items())),
        ("windows", f"{m['n_samples']} × {m['sequence_length']} bp"),
        ("classes", ", ".join(f"{k}: {v}" for k, v in m["class_counts"].items())),
        ("negatives", _NEGATIVES_TEXT[m.get("negatives", "genome")]),
        ("mean GC positives / negatives", f"{m['gc_positives']:.3f} / {m['gc_negatives']:.3f}"),
        ("CV groups", f"{counts['groups']} ({m['group_by']}); overlapping windows share one"),
    ]
    skipped = {k: v for k, v in counts.items() if k not in ("positives", "negatives", "groups")}
    items.append(("interval bookkeeping", ", ".join(f"{k}: {v}" for k, v in skipped.items())))
    return _table(pd.DataFrame(items, columns=["", "value"]))


_NEGATIVES_TEXT = {
    "genome": "genome windows GC-matched to the positives, away from every positive",
    "shuffle": "dinucleotide-shuffled copies of the positives (each in its source's fold)",
}


def _data_section(meta: Mapping[str, Any], exp: Mapping[str, Any]) -> str:
    if meta.get("modality") == "sequence":
        return _sequence_data_section(meta)
    m = meta["meta"]
    items = [
        ("source", m["source"]),
        ("sha256", m["sha256"][:16] + "…"),
        ("samples", m["n_samples"]),
        ("features", f"{m['n_features']} ({m['n_categorical']} categorical)"),
        ("missing feature values (imputed per fold)", m["missing_values"]),
        ("task", exp["task"]),
    ]
    if meta["task"] == "classification":
        counts = m["class_counts"]
        items.append(("classes", ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))))
    else:
        items.append(("targets", ", ".join(meta["target_columns"])))
    if meta.get("group_column"):
        items.append(("groups", f"{m.get('n_groups')} in column {meta['group_column']}"))
    return _table(pd.DataFrame(items, columns=["", "value"]))


def _plan_section(exp: Mapping[str, Any], summaries: Sequence[Mapping[str, Any]]) -> str:
    cv, pre = exp["cv"], exp["preprocess"]
    plan = _PLAN_TEXT[cv["plan"]].format(**cv)
    normalise = pre["normalise"] if isinstance(pre["normalise"], list) else [pre["normalise"]]
    lines = [
        f"<p>Cross-validation: {plan}, {len(summaries)} fold(s), seed {exp['seed']}; "
        f"{cv['val_fraction']:.0%} of each training side held out for early stopping. "
        "Everything fitted (imputer, feature filters, normalisation, SMOTE, early stopping) "
        "saw the training side of its fold only; each test fold was scored once.</p>",
        f"<p>Preprocessing: impute {pre['impute']}; variance threshold "
        f"{pre['variance_threshold']}; top-k {pre['top_k_features'] or 'all'}; normalise "
        f"{' → '.join(normalise)}; SMOTE {'on' if pre['smote'] else 'off'}.</p>",
    ]
    if exp["data"]["modality"] == "sequence":
        rc = "on" if exp["training"]["reverse_complement"] else "off"
        lines[1] = (
            "<p>Sequences are stored as 1-byte codes and one-hot encoded on the device; "
            f"reverse-complement augmentation {rc}. Nothing is fitted before training.</p>"
        )
    rows = []
    for fold, s in enumerate(summaries):
        row = {
            "fold": fold,
            "train": s["n_train"],
            "val": s["n_val"],
            "test": s["n_test"],
            "model features": s["n_model_features"],
        }
        if "train_class_counts" in s:
            row["train classes"] = ", ".join(
                f"{k}: {v}" for k, v in s["train_class_counts"].items()
            )
        if "overlapping_windows_across_sides" in s:
            row["overlaps across sides"] = s["overlapping_windows_across_sides"]
        if "train_class_counts_after_smote" in s:
            row["after SMOTE"] = ", ".join(
                f"{k}: {v}" for k, v in s["train_class_counts_after_smote"].items()
            )
        rows.append(row)
    shown = rows if len(rows) <= 20 else rows[:20]
    note = f'<p class="note">First 20 of {len(rows)} folds.</p>' if len(rows) > 20 else ""
    return "\n".join(lines) + _table(pd.DataFrame(shown)) + note


def _model_section(exp: Mapping[str, Any]) -> str:
    model, training = exp["model"], exp["training"]
    text = ", ".join(f"{k}={v}" for k, v in model.items())
    train = ", ".join(f"{k}={v}" for k, v in training.items() if k != "progress_bar")
    base = exp["baseline"]
    if not base["enabled"]:
        baseline = "none"
    elif exp["data"]["modality"] == "sequence":
        baseline = f"{base['k']}-mer frequencies + logistic regression (C={base['C']})"
    elif exp["data"]["modality"] == "singlecell":
        baseline = f"logistic regression (C={base['C']}) on the unintegrated PCA"
    elif exp["task"] == "classification":
        baseline = f"logistic regression (C={base['C']})"
    else:
        baseline = f"ridge regression (alpha={base['alpha']})"
    return (
        f"<p>Model: {_esc(text)}.<br>Training: {_esc(train)}.<br>"
        f"Baseline in the same folds: {_esc(baseline)}.</p>"
    )


_CAPTIONS = {
    "roc_pr.png": "ROC and precision-recall curves: thin lines are folds, the black line pools "
    "all out-of-fold predictions.",
    "confusion.png": "Confusion matrices of the pooled out-of-fold predictions.",
    "reliability.png": "Reliability diagram of the pooled out-of-fold probabilities: accuracy "
    "against confidence per bin, raw and after temperature scaling; the diagonal is perfect "
    "calibration.",
    "training.png": "Training and validation loss per epoch (one line per fold); training "
    "stopped early when the validation loss stopped improving.",
    "scatter.png": "Pooled out-of-fold predictions against true values (first targets).",
    "r2_per_target.png": "Pooled out-of-fold R² per target, deep model beside the baseline.",
    "gc.png": "GC content of the positive windows and of the negatives; matched "
    "distributions keep the model from separating the classes by composition alone.",
}


def _provenance_section(prov: Mapping[str, Any], exp: Mapping[str, Any]) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in prov["versions"].items())
    inputs = "<br>".join(f"{_esc(p)}: <code>{_esc(h)}</code>" for p, h in prov["inputs"].items())
    config = json.dumps(exp, indent=2, sort_keys=True)
    return (
        f"<p>Seed {prov['seed']}; git commit {_esc(prov['git_commit'] or 'none')}; "
        f"platform {_esc(prov['platform'])}.<br>Inputs (sha256):<br>{inputs}<br>"
        f'<span class="note">Versions: {_esc(versions)}</span></p>'
        f"<details><summary>Full experiment config (defaults filled in)</summary>"
        f"<pre>{_esc(config)}</pre></details>"
    )


_HEADLINE = {
    "classification": ("accuracy", "auroc"),
    "multilabel": ("auroc", "auprc"),
    "regression": ("r2", "pearson"),
}


def summary_table(experiments: Sequence[ExperimentFiles]) -> str:
    """One row per experiment and learner with the headline metrics (mean and 95 % CI)."""
    rows = []
    for exp in experiments:
        metrics = pd.read_csv(exp.metrics, sep="\t")
        task = effective_task(exp.config)
        n_folds = sum(c.startswith("fold_") for c in metrics.columns)
        for learner in dict.fromkeys(metrics["learner"]):
            row = {"experiment": exp.name, "task": task, "folds": n_folds, "learner": learner}
            for i, metric in enumerate(_HEADLINE[task]):
                rec = metrics[(metrics["learner"] == learner) & (metrics["metric"] == metric)]
                r = rec.iloc[0]
                row[f"metric {i + 1}"] = (
                    f"{metric} {_fmt(r['mean'])} [{_fmt(r['ci95_low'])}, {_fmt(r['ci95_high'])}]"
                )
            rows.append(row)
    return _table(pd.DataFrame(rows))


def build_report(
    experiments: Sequence[ExperimentFiles],
    title: str,
    out_html: str,
    comparison: Mapping[str, str] | None = None,
) -> None:
    """Write the HTML report of all experiments.

    Parameters
    ----------
    experiments
        The files of each experiment.
    title
        Page title.
    out_html
        Output path.
    comparison
        ``leaderboard`` and ``pairs`` TSV files of the compare step, if it ran.
    """
    from dlpipe import report_sections as trust

    pairs = pd.read_csv(comparison["pairs"], sep="\t") if comparison else None
    nav = " ".join(f'<a href="#{_esc(e.name)}">{_esc(e.name)}</a>' for e in experiments)
    parts = [
        f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{_esc(title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{_esc(title)}</h1><nav>{nav}</nav>",
        "<h2>Summary</h2>",
        '<p class="note">Mean over test folds [95 % CI]; details per experiment below.</p>',
        summary_table(experiments),
    ]
    if comparison:
        parts += trust.comparison_section(comparison)
    for exp in experiments:
        meta = read_json(exp.dataset_meta)
        cfg = exp.config
        summaries = [read_json(p) for p in exp.preprocess_summaries]
        metrics = pd.read_csv(exp.metrics, sep="\t")
        parts.append(f'<h2 id="{_esc(exp.name)}">{_esc(exp.name)}</h2>')
        if cfg.get("description"):
            parts.append(f"<p>{_esc(cfg['description'])}</p>")
        parts += trust.dome_section(exp, meta, summaries, metrics, pairs)
        parts += ["<h3>Data</h3>", _data_section(meta, cfg)]
        parts += list(exp.sections.get("after_data", ()))
        parts += ["<h3>Cross-validation and preprocessing</h3>", _plan_section(cfg, summaries)]
        parts += ["<h3>Model</h3>", _model_section(cfg)]
        parts += [
            "<h3>Metrics</h3>",
            '<p class="note">Mean ± sd over test folds with a Student-t 95 % CI of the mean; '
            "pooled = computed once on all out-of-fold predictions. Bold: the better learner.</p>",
            metrics_table(metrics),
        ]
        for fig in exp.figures:
            name = Path(fig).name
            parts.append(
                f"<figure>{_img(fig, name)}<figcaption class=note>"
                f"{_esc(_CAPTIONS.get(name, name))}</figcaption></figure>"
            )
        parts += list(exp.sections.get("after_metrics", ()))
        parts += trust.calibration_section(exp, metrics)
        parts += trust.interpretation_section(exp, meta)
        parts += ["<h3>Provenance</h3>", _provenance_section(read_json(exp.provenance), cfg)]
    parts.append("</body></html>")
    Path(out_html).write_text("\n".join(parts))
