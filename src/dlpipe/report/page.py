"""One self-contained HTML page with every experiment's data, plan, metrics and figures.

Images are embedded as base64 PNG and the style sheet inline, so the page can be mailed or
archived alone. Nothing is recomputed here: the page shows the files the workflow wrote. This
module gathers them into plain data, one dict per section; ``templates/`` renders them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from dlpipe.cv import plan_text
from dlpipe.io.files import read_json
from dlpipe.metrics import (
    INTERVAL_METHOD,
    LOWER_IS_BETTER,
    POOLED_INTERVAL_METHOD,
    summary_value,
)
from dlpipe.modalities import modality_of, task_of
from dlpipe.models import fold_model
from dlpipe.report import trust
from dlpipe.report.files import ExperimentFiles
from dlpipe.report.render import anchor, fmt, image, render, section, table


def metrics_table(metrics: pd.DataFrame) -> dict[str, Any]:
    """Table data: one row per metric; per learner ``mean ± sd``, 95 % CI and pooled value.

    The learner names head groups of three columns, so that long names do not squeeze the
    numbers beneath them. A metric summarised on the pooled predictions (``summary`` pooled:
    leave-one-out, a holdout) has no mean ± sd; its interval is the pooled value's, and a
    dagger marks it.
    """
    learners = list(dict.fromkeys(metrics["learner"]))
    n_folds = sum(c.startswith("fold_") for c in metrics.columns)
    rows, css = [], {}
    for i, metric in enumerate(dict.fromkeys(metrics["metric"])):
        row: list[str] = [metric]
        values, columns = {}, {}
        for learner in learners:
            rec = metrics[(metrics["learner"] == learner) & (metrics["metric"] == metric)]
            if rec.empty:
                row += ["", "", ""]
                continue
            r = rec.iloc[0]
            values[learner] = summary_value(r)
            interval = f"[{fmt(r['ci95_low'])}, {fmt(r['ci95_high'])}]"
            if r.get("summary") == "pooled":
                columns[learner] = 3
                row += ["–", f"{interval} †", f"{fmt(r['pooled'])} †"]
                continue
            columns[learner] = 1
            used = r.get("folds_used", n_folds)
            # A mean over fewer folds than the experiment has says so where it stands.
            short = f" ({int(used)}/{n_folds} folds)" if used < n_folds else ""
            row += [f"{fmt(r['mean'])} ± {fmt(r['sd'])}{short}", interval, fmt(r.get("pooled"))]
        finite = {k: v for k, v in values.items() if np.isfinite(v)}
        if len(finite) > 1:
            higher = metric.removesuffix("_calibrated") not in LOWER_IS_BETTER
            pick = max if higher else min
            best = pick(finite, key=finite.get)
            css[(i, columns[best] + 3 * learners.index(best))] = "best"
        rows.append(row)
    columns = ["metric"] + ["mean ± sd (folds)", "95 % CI", "pooled"] * len(learners)
    groups = [("", 1)] + [(learner, 3) for learner in learners]
    return table(pd.DataFrame(rows, columns=columns), css, groups)


def pooled_metrics(metrics: pd.DataFrame) -> list[str]:
    """Name the metrics summarised on the pooled predictions instead of over folds."""
    if "summary" not in metrics.columns:
        return []
    return list(dict.fromkeys(metrics.loc[metrics["summary"] == "pooled", "metric"]))


def _data_section(meta: Mapping[str, Any], exp: Mapping[str, Any], name: str) -> dict[str, Any]:
    rows = modality_of(exp).data_facts(meta, exp)
    frame = pd.DataFrame(rows, columns=["", "value"])
    return section("data.html.j2", "Data", anchor(name, "data"), table=table(frame))


def selection_text(
    summaries: Sequence[Mapping[str, Any]], model: Mapping[str, Any] | None = None
) -> str:
    """Say what the supervised feature selection did in the folds (``preprocess.select``).

    With the experiment's ``model`` config, also say which p ≫ n defaults the MLP took.
    """
    plans = [s["selection"] for s in summaries if "selection" in s]
    if not plans:
        return ""
    wide = next((p for p in plans if p.get("p_much_larger")), None)
    taken = {}
    if model is not None and wide is not None:
        taken = {k: v for k, v in fold_model(model, wide).items() if k not in model}
    defaults = ""
    if taken:
        shown = " and ".join(f"{k} {v}" for k, v in taken.items())
        defaults = f" The MLP took the p ≫ n defaults {shown} (not set in the config)."
    selected = [p for p in plans if p["method"] == "anova"]
    if not selected:
        return f"Feature selection: none ({plans[0]['reason']}).{defaults}"
    ks = sorted({p["k"] for p in selected})
    ofs = sorted({p["of"] for p in selected})
    k = str(ks[0]) if len(ks) == 1 else f"{ks[0]}–{ks[-1]}"
    of = str(ofs[0]) if len(ofs) == 1 else f"{ofs[0]}–{ofs[-1]}"
    folds = f"{len(selected)} of {len(plans)} folds"
    if len(selected) == len(plans):
        folds = "every fold"
    return (
        f"Feature selection: {k} of {of} numeric features kept per fold by ANOVA F on the "
        f"training side only, in {folds} ({selected[0]['reason']}); the baseline reads the "
        "same selected features." + defaults
    )


def _plan_section(
    exp: Mapping[str, Any], summaries: Sequence[Mapping[str, Any]], name: str
) -> dict[str, Any]:
    cv, pre = exp["cv"], exp["preprocess"]
    normalise = pre["normalise"] if isinstance(pre["normalise"], list) else [pre["normalise"]]
    preprocessing = modality_of(exp).preprocessing_text(exp)
    if preprocessing is None:
        preprocessing = (
            f"Preprocessing: impute {pre['impute']}; variance threshold "
            f"{pre['variance_threshold']}; top-k {pre['top_k_features'] or 'all'}; normalise "
            f"{' → '.join(normalise)}; SMOTE {'on' if pre['smote'] else 'off'}."
        )
        preprocessing += " " + selection_text(summaries, exp["model"])
    rows = []
    for fold, s in enumerate(summaries[:20]):
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
    return section(
        "plan.html.j2",
        "Cross-validation and preprocessing",
        anchor(name, "plan"),
        plan=plan_text(cv),
        n_folds=len(summaries),
        folds_shown=len(rows),
        seed=exp["seed"],
        val_percent=f"{cv['val_fraction']:.0%}",
        preprocessing=preprocessing,
        fitted=modality_of(exp).fitted_sentence,
        table=table(pd.DataFrame(rows)),
    )


_CAPTIONS = {
    "roc_pr.png": "ROC and precision-recall curves of every learner on the pooled out-of-fold "
    "predictions (the values beside the curves); with two classes thin lines are single folds, "
    "with more there is one ROC and one PR plot per class against the rest. Dashed: chance "
    "and the prevalence.",
    "confusion.png": "Confusion matrices of the pooled out-of-fold predictions.",
    "reliability.png": "Reliability diagram of the pooled out-of-fold probabilities: accuracy "
    "against confidence per bin, raw and after temperature scaling; the diagonal is perfect "
    "calibration. The ECE in the legend is that of the pooled predictions.",
    "training.png": "Training loss and the validation score early stopping follows, per epoch "
    "(one line per fold): the validation loss, or for link prediction the validation auPRC; "
    "each fold kept its best epoch and stopped when the score stopped improving.",
    "scatter.png": "Pooled out-of-fold predictions against true values of the best and worst "
    "targets (R² of the pooled predictions).",
    "r2_per_target.png": "Pooled out-of-fold R² per target, every learner side by side.",
    "gc.png": "GC content of the positive windows and of the negatives; matched "
    "distributions keep the model from separating the classes by composition alone.",
}
#: Figures whose legends give values computed on the pooled out-of-fold predictions.
_POOLED = ("roc_pr.png", "reliability.png", "scatter.png", "r2_per_target.png")


def _metrics_section(exp: ExperimentFiles, metrics: pd.DataFrame, n_classes: int) -> dict[str, Any]:
    names = [Path(fig).name for fig in exp.figures]
    return section(
        "metrics.html.j2",
        "Metrics",
        anchor(exp.name, "metrics"),
        interval_method=INTERVAL_METHOD,
        pooled_interval_method=POOLED_INTERVAL_METHOD,
        pooled_metrics=pooled_metrics(metrics),
        table=metrics_table(metrics),
        figures=[image(fig, Path(fig).name, _CAPTIONS.get(Path(fig).name)) for fig in exp.figures],
        pooled_figures=any(n in _POOLED for n in names),
        # More than two classes: one curve per class; the table's auROC is their macro mean.
        per_class="roc_pr.png" in names and n_classes > 2,
        partial=partial_folds(metrics),
    )


def partial_folds(metrics: pd.DataFrame) -> list[str]:
    """Name the means over fewer folds than the experiment has (a fold without a value).

    ``metrics.tsv`` counts the folds with a finite value (``folds_used``): a fold with one
    class has no auROC, and a mean without it must say so.
    """
    n_folds = sum(c.startswith("fold_") for c in metrics.columns)
    if "folds_used" not in metrics.columns:
        return []
    short = metrics[metrics["folds_used"] < n_folds]
    if "summary" in short.columns:
        short = short[short["summary"] != "pooled"]  # not a mean over folds: said apart
    return [
        f"{r.learner} {r.metric}: {int(r.folds_used)} of {n_folds} folds"
        for r in short.itertuples()
    ]


def _provenance_section(
    prov: Mapping[str, Any], exp: Mapping[str, Any], name: str
) -> dict[str, Any]:
    inputs = [
        {"name": Path(path).name, "path": path, "sha256": digest}
        for path, digest in trust.flat_inputs(prov["inputs"]).items()
    ]
    shown = modality_of(exp).shown_settings(exp)
    return section(
        "provenance.html.j2",
        "Provenance",
        anchor(name, "provenance"),
        seed=prov["seed"],
        git_commit=prov["git_commit"] or "none",
        platform=prov["platform"],
        inputs=inputs,
        versions=sorted(prov["versions"].items()),
        config=yaml.safe_dump(shown, sort_keys=True, allow_unicode=True, width=96),
    )


def summary_table(experiments: Sequence[ExperimentFiles]) -> dict[str, Any]:
    """One row per experiment and learner; one column per headline metric (mean [95 % CI])."""
    rows, names = [], []
    for exp in experiments:
        metrics = pd.read_csv(exp.metrics, sep="\t")
        task = task_of(exp.config)
        n_folds = sum(c.startswith("fold_") for c in metrics.columns)
        names += [m for m in task.headline if m not in names]
        for learner in dict.fromkeys(metrics["learner"]):
            row = {"experiment": exp.name, "folds": n_folds, "learner": learner}
            for metric in task.headline:
                rec = metrics[(metrics["learner"] == learner) & (metrics["metric"] == metric)]
                r = rec.iloc[0]
                low, high = fmt(r["ci95_low"]), fmt(r["ci95_high"])
                used = r.get("folds_used", n_folds)
                short = f" ({int(used)}/{n_folds} folds)" if used < n_folds else ""
                if r.get("summary") == "pooled":
                    short = " (pooled)"
                row[metric] = f"{fmt(summary_value(r))} [{low}, {high}]{short}"
            rows.append(row)
    # No task column: the metrics name it, and the table must fit a laptop screen.
    frame = pd.DataFrame(rows, columns=["experiment", "folds", "learner", *names])
    return table(frame.fillna(""))


def verdict_section(
    experiments: Sequence[ExperimentFiles], comparison: Mapping[str, str] | None
) -> dict[str, Any]:
    """Open the page with the generated verdict of each experiment and what its split guarded."""
    board = pd.read_csv(comparison["leaderboard"], sep="\t") if comparison else None
    pairs = pd.read_csv(comparison["pairs"], sep="\t") if comparison else None
    sentences = [
        trust.experiment_verdict(exp.name, pd.read_csv(exp.metrics, sep="\t"), board, pairs)
        + " "
        + trust.split_guard(exp.config, read_json(exp.dataset_meta))
        for exp in experiments
    ]
    # Fine-tuned against trained from scratch, where an experiment starts from pretrained weights.
    sentences += [
        text
        for exp in experiments
        if (text := trust.pretraining_verdict(exp.name, experiments, board, pairs))
    ]
    return section("verdict.html.j2", "Verdict", "verdict", level=2, sentences=sentences)


def experiment_sections(exp: ExperimentFiles, pairs: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Return the sections of one experiment in page order (each a dict for its template)."""
    meta = read_json(exp.dataset_meta)
    cfg = exp.config
    summaries = [read_json(p) for p in exp.preprocess_summaries]
    metrics = pd.read_csv(exp.metrics, sep="\t")
    n_classes = len((meta.get("meta") or {}).get("class_counts") or {})
    parts = [
        *exp.sections.get("top", ()),
        trust.dome_section(exp, meta, summaries, metrics, pairs),
        _data_section(meta, cfg, exp.name),
        *exp.sections.get("after_data", ()),
        _plan_section(cfg, summaries, exp.name),
        _metrics_section(exp, metrics, n_classes),
        *exp.sections.get("after_metrics", ()),
        trust.calibration_section(exp, metrics),
        trust.interpretation_section(exp, meta),
        _provenance_section(read_json(exp.provenance), cfg, exp.name),
    ]
    return [p for p in parts if p is not None]


def page_context(
    experiments: Sequence[ExperimentFiles],
    title: str,
    comparison: Mapping[str, str] | None = None,
    others: Sequence[str] = (),
) -> dict[str, Any]:
    """Everything the page template shows, as plain data (see :func:`build_report`)."""
    pairs = pd.read_csv(comparison["pairs"], sep="\t") if comparison else None
    order = [exp.name for exp in experiments]
    sections = [
        verdict_section(experiments, comparison),
        section(
            "summary.html.j2",
            "Summary",
            "summary",
            level=2,
            interval_method=INTERVAL_METHOD,
            pooled_interval_method=POOLED_INTERVAL_METHOD,
            table=summary_table(experiments),
        ),
    ]
    if comparison:
        sections.append(trust.comparison_section(comparison, order))
    return {
        "title": title,
        "coverage": {"names": order, "others": list(others)},
        "sections": sections,
        "experiments": [
            {
                "name": exp.name,
                "id": anchor(exp.name),
                "description": exp.config.get("description") or "",
                "sections": experiment_sections(exp, pairs),
            }
            for exp in experiments
        ],
    }


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
    context = page_context(experiments, title, comparison, others)
    Path(out_html).write_text(render("page.html.j2", **context))
