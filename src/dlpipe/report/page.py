"""One self-contained HTML page with every experiment's data, plan, metrics and figures.

Images are embedded as base64 PNG, so the page can be mailed or archived alone. Nothing is
recomputed here: the page shows the files the workflow wrote.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlpipe.cv import plan_text
from dlpipe.io.files import read_json
from dlpipe.metrics import INTERVAL_METHOD, LOWER_IS_BETTER
from dlpipe.modalities import modality_of, task_of
from dlpipe.report import html, trust
from dlpipe.report.files import ExperimentFiles


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
            row[f"{learner} (mean ± sd)"] = f"{html.fmt(r['mean'])} ± {html.fmt(r['sd'])}"
            row[f"{learner} 95 % CI"] = f"[{html.fmt(r['ci95_low'])}, {html.fmt(r['ci95_high'])}]"
            row[f"{learner} pooled"] = html.fmt(r.get("pooled"))
        finite = {k: v for k, v in means.items() if np.isfinite(v)}
        if len(finite) > 1:
            higher = metric.removesuffix("_calibrated") not in LOWER_IS_BETTER
            pick = max if higher else min
            best = pick(finite, key=finite.get)
            css[(i, 1 + 3 * learners.index(best))] = "best"
        out.append(row)
    return html.table(pd.DataFrame(out), css)


def _data_section(meta: Mapping[str, Any], exp: Mapping[str, Any]) -> str:
    rows = modality_of(exp).data_facts(meta, exp)
    return html.table(pd.DataFrame(rows, columns=["", "value"]))


def _plan_section(exp: Mapping[str, Any], summaries: Sequence[Mapping[str, Any]]) -> str:
    cv, pre = exp["cv"], exp["preprocess"]
    plan = plan_text(cv)
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
    preprocessing = modality_of(exp).preprocessing_text(exp)
    if preprocessing is not None:
        lines[1] = f"<p>{preprocessing}</p>"
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
    return "\n".join(lines) + html.table(pd.DataFrame(shown)) + note


def _model_section(exp: Mapping[str, Any]) -> str:
    model, training = exp["model"], exp["training"]
    text = ", ".join(f"{k}={v}" for k, v in model.items())
    train = ", ".join(f"{k}={v}" for k, v in training.items() if k != "progress_bar")
    baseline = modality_of(exp).baseline_text(exp) if exp["baseline"]["enabled"] else "none"
    return (
        f"<p>Model: {html.esc(text)}.<br>Training: {html.esc(train)}.<br>"
        f"Baseline in the same folds: {html.esc(baseline)}.</p>"
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
    inputs = "<br>".join(
        f"{html.esc(p)}: <code>{html.esc(h)}</code>" for p, h in prov["inputs"].items()
    )
    config = json.dumps(exp, indent=2, sort_keys=True)
    return (
        f"<p>Seed {prov['seed']}; git commit {html.esc(prov['git_commit'] or 'none')}; "
        f"platform {html.esc(prov['platform'])}.<br>Inputs (sha256):<br>{inputs}<br>"
        f'<span class="note">Versions: {html.esc(versions)}</span></p>'
        f"<details><summary>Full experiment config (defaults filled in)</summary>"
        f"<pre>{html.esc(config)}</pre></details>"
    )


def summary_table(experiments: Sequence[ExperimentFiles]) -> str:
    """One row per experiment and learner; one column per headline metric (mean [95 % CI])."""
    rows, names = [], []
    for exp in experiments:
        metrics = pd.read_csv(exp.metrics, sep="\t")
        task = task_of(exp.config)
        n_folds = sum(c.startswith("fold_") for c in metrics.columns)
        names += [m for m in task.headline if m not in names]
        for learner in dict.fromkeys(metrics["learner"]):
            row = {"experiment": exp.name, "task": task.name, "folds": n_folds, "learner": learner}
            for metric in task.headline:
                rec = metrics[(metrics["learner"] == learner) & (metrics["metric"] == metric)]
                r = rec.iloc[0]
                low, high = html.fmt(r["ci95_low"]), html.fmt(r["ci95_high"])
                row[metric] = f"{html.fmt(r['mean'])} [{low}, {high}]"
            rows.append(row)
    table = pd.DataFrame(rows, columns=["experiment", "task", "folds", "learner", *names])
    return html.table(table.fillna(""))


def verdict_section(
    experiments: Sequence[ExperimentFiles], comparison: Mapping[str, str] | None
) -> list[str]:
    """Open the page with one generated sentence per experiment."""
    board = pd.read_csv(comparison["leaderboard"], sep="\t") if comparison else None
    pairs = pd.read_csv(comparison["pairs"], sep="\t") if comparison else None
    items = [
        "<li>"
        + html.esc(
            trust.experiment_verdict(exp.name, pd.read_csv(exp.metrics, sep="\t"), board, pairs)
        )
        + "</li>"
        for exp in experiments
    ]
    return ["<h2 id=verdict>Verdict</h2>", f"<ul class=verdict>{''.join(items)}</ul>"]


def coverage_note(names: Sequence[str], others: Sequence[str]) -> str:
    """Say which experiments the report (and its leaderboard) covers, and which it leaves out."""
    listed = ", ".join(html.esc(n) for n in names)
    text = f"This report covers the {len(names)} experiment(s) of its config: {listed}."
    if others:
        left = ", ".join(html.esc(n) for n in others)
        text += (
            f" <strong>Not included:</strong> the results folder also holds {len(others)} "
            f"experiment(s) of another config ({left}); their results are kept but are not in "
            "this report or its leaderboard. To compare them, run one config that names them all."
        )
    return f'<p class="coverage">{text}</p>'


def build_report(
    experiments: Sequence[ExperimentFiles],
    title: str,
    out_html: str,
    comparison: Mapping[str, str] | None = None,
    others: Sequence[str] = (),
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
    others
        Experiments whose results lie in the same results folder but that this config does not
        run: named as not included, so that earlier work does not vanish without a word.
    """
    pairs = pd.read_csv(comparison["pairs"], sep="\t") if comparison else None
    nav = " ".join(f'<a href="#{html.esc(e.name)}">{html.esc(e.name)}</a>' for e in experiments)
    parts = [
        f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{html.esc(title)}</title>"
        f"<style>{html.CSS}</style></head><body><h1>{html.esc(title)}</h1><nav>{nav}</nav>",
        coverage_note([e.name for e in experiments], others),
        *verdict_section(experiments, comparison),
        "<h2>Summary</h2>",
        '<p class="note">Mean over test folds [95 % CI: '
        f"{html.esc(INTERVAL_METHOD)}, so it stays in the metric's range]; details per "
        "experiment below.</p>",
        summary_table(experiments),
    ]
    if comparison:
        parts += trust.comparison_section(comparison)
    for exp in experiments:
        meta = read_json(exp.dataset_meta)
        cfg = exp.config
        summaries = [read_json(p) for p in exp.preprocess_summaries]
        metrics = pd.read_csv(exp.metrics, sep="\t")
        parts.append(f'<h2 id="{html.esc(exp.name)}">{html.esc(exp.name)}</h2>')
        if cfg.get("description"):
            parts.append(f"<p>{html.esc(cfg['description'])}</p>")
        parts += list(exp.sections.get("top", ()))
        parts += trust.dome_section(exp, meta, summaries, metrics, pairs)
        parts += ["<h3>Data</h3>", _data_section(meta, cfg)]
        parts += list(exp.sections.get("after_data", ()))
        parts += ["<h3>Cross-validation and preprocessing</h3>", _plan_section(cfg, summaries)]
        parts += ["<h3>Model</h3>", _model_section(cfg)]
        parts += [
            "<h3>Metrics</h3>",
            f'<p class="note">Mean ± sd over test folds with a 95 % CI of the mean '
            f"({html.esc(INTERVAL_METHOD)}); "
            "pooled = computed once on all out-of-fold predictions. Bold: the better learner.</p>",
            metrics_table(metrics),
        ]
        for fig in exp.figures:
            name = Path(fig).name
            parts.append(
                f"<figure>{html.img(fig, name)}<figcaption class=note>"
                f"{html.esc(_CAPTIONS.get(name, name))}</figcaption></figure>"
            )
        parts += list(exp.sections.get("after_metrics", ()))
        parts += trust.calibration_section(exp, metrics)
        parts += trust.interpretation_section(exp, meta)
        parts += ["<h3>Provenance</h3>", _provenance_section(read_json(exp.provenance), cfg)]
    parts.append("</body></html>")
    Path(out_html).write_text("\n".join(parts))
