"""Report sections on trust: DOME summary, calibration, interpretation and the leaderboard.

:mod:`dlpipe.report.page` calls these while it writes the page. The DOME section follows the DOME
recommendations for machine learning in biology (Walsh et al., Nature Methods 2021): Data,
Optimisation, Model, Evaluation, each answered from the files the workflow wrote. Nothing is
recomputed here except, when interpretation is off, the model's parameter count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlpipe.calibrate import SKIPPED
from dlpipe.compare import POOLED_TEST
from dlpipe.cv import GROUP_PLANS, LINK_PLANS, plan_text
from dlpipe.io.files import read_json
from dlpipe.metrics import CHANCE, LOWER_IS_BETTER, at_chance, chance_metric, summary_value
from dlpipe.modalities import modality_of
from dlpipe.models import WORKFLOW_KEYS, hyperparameter_names
from dlpipe.report.files import ExperimentFiles
from dlpipe.report.graph import graph_interpretation
from dlpipe.report.render import anchor, fmt, fmt_p, image, section, table
from dlpipe.report.saliency import image_interpretation
from dlpipe.tasks import Task, get_task


def _metric_text(metrics: pd.DataFrame, learner: str, metric: str) -> str:
    rec = metrics[(metrics["learner"] == learner) & (metrics["metric"] == metric)]
    if rec.empty:
        return "–"
    r = rec.iloc[0]
    n_folds = sum(c.startswith("fold_") for c in metrics.columns)
    used = r.get("folds_used", n_folds)
    short = f" ({int(used)} of {n_folds} folds)" if used < n_folds else ""
    if r.get("summary") == "pooled":
        short = " (pooled over out-of-fold predictions; per-fold values undefined)"
    interval = f"[{fmt(r['ci95_low'])}, {fmt(r['ci95_high'])}]"
    return f"{metric} {fmt(summary_value(r))} {interval}{short}"


def chance_note(metrics: pd.DataFrame, learner: str, metric: str) -> str:
    """Say ``"at chance: …"`` when a learner's 95 % interval of ``metric`` reaches chance.

    A metric without a fixed chance level (auPRC) is judged by its stand-in, the auROC of the
    same predictions (:func:`dlpipe.metrics.chance_metric`), which the sentence names.
    """
    judged = chance_metric(metric)
    rec = metrics[(metrics["learner"] == learner) & (metrics["metric"] == judged)]
    if judged is None or rec.empty or "ci95_low" not in rec:
        return ""
    if not at_chance(judged, float(rec["ci95_low"].iloc[0])):
        return ""
    r = rec.iloc[0]
    return (
        f"at chance: its {judged} interval [{fmt(r['ci95_low'])}, {fmt(r['ci95_high'])}] "
        f"reaches {CHANCE[judged]:g}"
    )


def _best_epochs(histories: Sequence[str]) -> tuple[list[int], list[str]]:
    """Return the epoch each fold's model was kept from, and why early stopping was skipped.

    A history with an ``early_stopping`` column trained without it (too few validation rows):
    its last epoch was kept, and the column says why.
    """
    epochs, skipped = [], []
    for path in histories:
        hist = pd.read_csv(path, sep="\t")
        if "early_stopping" in hist.columns:
            epochs.append(int(hist["epoch"].iloc[-1]) + 1)
            skipped.append(f"fold {Path(path).parent.name}: {hist['early_stopping'].iloc[-1]}")
        elif "val_loss" not in hist.columns and "val_auprc" in hist.columns:
            # Link prediction keeps the epoch of the best validation auPRC.
            epochs.append(int(hist.loc[hist["val_auprc"].idxmax(), "epoch"]) + 1)
        else:
            epochs.append(int(hist.loc[hist["val_loss"].idxmin(), "epoch"]) + 1)
    return epochs, skipped


def _min_calibration_rows(cfg: Mapping[str, Any]) -> int:
    return int(cfg.get("calibration", {}).get("min_validation", 0))


def _pair_p(pairs: pd.DataFrame | None, name: str, a: str, b: str) -> str:
    if pairs is None or pairs.empty:
        return ""
    left, right = f"{name}/{a}", f"{name}/{b}"
    rec = pairs[
        ((pairs["a"] == left) & (pairs["b"] == right))
        | ((pairs["a"] == right) & (pairs["b"] == left))
    ]
    if rec.empty:
        return ""
    r = rec.iloc[0]
    if np.isfinite(r.get("p_bootstrap", np.nan)):
        return f"; paired bootstrap over pooled samples p = {fmt_p(r['p_bootstrap'])}"
    return (
        f"; paired over folds: corrected t-test p = {fmt_p(r['p_corrected_t'])}, "
        f"Wilcoxon p = {fmt_p(r['p_wilcoxon'])}"
    )


def flat_inputs(inputs: Mapping[str, Any]) -> dict[str, str]:
    """File → checksum, whether the provenance nests them (several BED files) or not."""
    out: dict[str, str] = {}
    for key, value in inputs.items():
        out.update(flat_inputs(value) if isinstance(value, Mapping) else {key: str(value)})
    return out


def dome_section(
    exp: ExperimentFiles,
    meta: Mapping[str, Any],
    summaries: Sequence[Mapping[str, Any]],
    metrics: pd.DataFrame,
    pairs: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Return the DOME table (Data, Optimisation, Model, Evaluation) of one experiment.

    The model's hyperparameters and the training settings are shown here only, once per
    experiment; the config record under Provenance holds the rest.
    """
    cfg = exp.config
    extras = exp.extras
    task = get_task(meta["task"])
    modality = modality_of(cfg)
    info = meta["meta"]
    prov = read_json(exp.provenance)
    checksums = "; ".join(
        f"{Path(p).name} {h[:12]}…" for p, h in flat_inputs(prov["inputs"]).items()
    )
    labels = task.labels_text(meta)
    cv = cfg["cv"]
    sizes = {k: [s[f"n_{k}"] for s in summaries] for k in ("train", "val", "test")}
    split = (
        f"{plan_text(cv)}, seed {cfg['seed']}; per fold "
        + ", ".join(f"{k} {int(np.mean(v))}" for k, v in sizes.items())
        + " (mean)"
    )
    if "overlapping_windows_across_sides" in summaries[0]:
        overlaps = sum(s["overlapping_windows_across_sides"] for s in summaries)
        split += f"; overlapping windows split across sides: {overlaps}"
    if "groups_on_both_sides" in summaries[0] and meta.get("group_column"):
        shared = sum(s["groups_on_both_sides"] for s in summaries)
        split += f"; groups of {meta['group_column']} on both training and test sides: {shared}"
    learners = list(dict.fromkeys(metrics["learner"]))
    deep = cfg["model"]["name"]
    fitted = [modality.fitted_text(cfg), "early stopping (best epoch): validation side"]
    if extras.get("calibrations"):
        text = "temperature scaling: validation side"
        fits = [read_json(p) for p in extras["calibrations"]]
        small = [f["fold"] for f in fits if f.get("n_val", np.inf) < _min_calibration_rows(cfg)]
        if small:
            text += (
                f" (left at 1 in {len(small)} of {len(fits)} folds: fewer than "
                f"calibration.min_validation = {_min_calibration_rows(cfg)} validation rows)"
            )
        fitted.append(text)
    plan = modality.baselines_of(cfg, task, meta)
    if plan:
        fitted.append(f"baselines ({', '.join(plan)}): the same training rows")
    fitted.append("test side: scored once by evaluate, never fitted on")
    # The pretraining settings are told in the row of starting weights.
    hyper = ", ".join(
        f"{k}={v}" for k, v in cfg["model"].items() if k not in ("name", *WORKFLOW_KEYS)
    )
    train = cfg["training"]
    optim = modality.optimisation_text(cfg) + modality.training_text(cfg, meta)
    epochs, no_stopping = _best_epochs(extras.get("histories", []))
    if epochs:
        optim += f"; best epoch per fold {', '.join(map(str, epochs))}"
    if no_stopping:
        optim += (
            f"; early stopping skipped in {len(no_stopping)} of {len(epochs)} folds, which "
            f"trained {train['max_epochs']} epochs and kept the last ("
            + "; ".join(no_stopping[:3])
            + (" …" if len(no_stopping) > 3 else "")
            + ")"
        )
    # Counted by the interpret step (it loads the models), or by the report step without it.
    n_params = extras.get("n_parameters")
    if extras.get("interpret"):
        n_params = read_json(Path(extras["interpret"]) / "summary.json").get("n_parameters")
    inputs = modality.model_inputs_text(meta, summaries)
    model_text = f"{deep} ({hyper}); " if hyper else f"{deep}; "
    if n_params is not None:
        model_text += f"{n_params:,} trainable parameters; "
    model_text += f"input {inputs}; "
    model_text += task.outputs_text
    if extras.get("interpret"):
        model_text += modality.explained_text()
    primary = (task.primary_metric, *(m for m in task.headline if m != task.primary_metric))
    evaluation = []
    for learner in learners:
        text = ", ".join(_metric_text(metrics, learner, m) for m in primary)
        if learner != learners[0]:
            text += _pair_p(pairs, exp.name, learners[0], learner)
        chance = chance_note(metrics, learner, task.primary_metric)
        text += f" — {chance}" if chance else ""
        evaluation.append(f"{learner}: {text}")
    if task.probabilistic and "ece" in set(metrics["metric"]):
        ece = [
            f"{lrn} {_metric_text(metrics, lrn, 'ece').split(' ', 1)[1]} → "
            f"{_metric_text(metrics, lrn, 'ece_calibrated').split(' ', 1)[1]}"
            for lrn in learners
        ]
        evaluation.append("ECE raw → temperature-scaled: " + "; ".join(ece))
    baselines = [
        f"{name}: {modality.baseline_text(cfg, kind)}, in the same folds"
        for name, kind in plan.items()
    ] or ["none"]
    rows = [
        ("Data", "source and checksums", [checksums]),
        ("Data", "samples", [f"{info['n_samples']}; {labels}"]),
        ("Data", "splits", [split]),
        ("Optimisation", "what was fitted where", ["; ".join(fitted)]),
        ("Optimisation", "training", [optim]),
        ("Optimisation", "hyperparameters", ["fixed in the config; none chosen on test folds"]),
        ("Model", "model", [model_text]),
        *(
            [("Model", "starting weights", [weights])]
            if (weights := weights_text(cfg, extras)) is not None
            else []
        ),
        ("Model", "baselines", baselines),
        ("Evaluation", "metrics over test folds (mean [95 % CI])", evaluation),
        (
            "Evaluation",
            "reproducibility",
            [
                f"seed {prov['seed']}; git {prov['git_commit'] or '–'}; "
                "config and package versions under Provenance"
            ],
        ),
    ]
    return section(
        "dome.html.j2",
        "DOME summary",
        anchor(exp.name, "dome"),
        rows=[{"part": part, "what": what, "lines": lines} for part, what, lines in rows],
    )


def pretrain_text(summary: Mapping[str, Any]) -> str:
    """Say where a backbone pretrained by dlpipe came from (its ``pretrain/summary.json``)."""
    loss = summary.get("loss") or []
    curve = f", contrastive loss {loss[0]:.3f} → {loss[-1]:.3f}" if loss else ""
    return (
        f"pretrained by dlpipe on {summary['n_images']} unlabelled images of "
        f"{summary['source']} (none of this experiment's image files, checked by path), "
        f"objective {summary['objective']} (self-supervised), {summary['epochs']} epochs{curve}, "
        f"{summary['seconds']:.0f} s; "
        f"backbone sha256 {summary['backbone_sha256'][:12]}…; backbone loaded, new head"
    )


def weights_text(cfg: Mapping[str, Any], extras: Mapping[str, Any]) -> str | None:
    """Say which weights the deep model started from; ``None`` for families without the choice.

    A backbone pretrained by dlpipe (``model.pretrain``), a weights file (``model.weights``:
    ImageNet or the user's), or a random initialisation (trained from scratch).
    """
    model = cfg["model"]
    try:
        choosable = "weights" in hyperparameter_names(model)
    except Exception:  # noqa: BLE001 - a user's family that cannot be resolved here
        choosable = False
    if not choosable and not model.get("weights"):
        return None
    frozen = model.get("trainable_stages")
    # A ResNet's four residual stages (models/resnet2d.STAGES; not imported: torch).
    if frozen is None:
        tuning = "; every layer fine-tuned"
    elif int(frozen) == 0:
        tuning = "; stem and every stage frozen, only the new head trained"
    else:
        tuning = f"; stem and first {4 - int(frozen)} stages frozen, last {frozen} fine-tuned"
    if extras.get("pretrain"):
        return pretrain_text(read_json(extras["pretrain"])) + tuning
    if model.get("weights"):
        return f"weights file {model['weights']} (backbone loaded, new head){tuning}"
    return "random initialisation: trained from scratch (no pretrained weights)"


def pretraining_verdict(
    name: str,
    experiments: Sequence[ExperimentFiles],
    board: pd.DataFrame | None,
    pairs: pd.DataFrame | None,
) -> str | None:
    """Say whether fine-tuning a pretrained backbone beat training the same model from scratch.

    The experiment ``name`` starts from pretrained weights (``model.pretrain`` or
    ``model.weights``); its counterpart is an experiment in the same leaderboard group (same
    data and folds) of the same family without weights. The sentence gives both means, the
    mean paired difference with its 95 % interval and the corrected resampled t-test over folds,
    and the best baseline of the group. ``None`` when the experiment did not start from
    pretrained weights; a sentence saying so when no counterpart was run.
    """
    from scipy import stats  # lazy: 0.6 s

    by_name = {e.name: e for e in experiments}
    cfg = by_name[name].config
    model = cfg["model"]
    if not (model.get("pretrain") or model.get("weights")):
        return None
    source = "dlpipe's pretrained backbone" if model.get("pretrain") else "pretrained weights"
    rows = board[board["experiment"] == name] if board is not None else None
    if rows is None or rows.empty or pairs is None:
        return f"Pretraining: {name} starts from {source}; no paired comparison was run."
    group = board[board["group"] == rows["group"].iloc[0]] if "group" in board else board
    deep = model["name"]
    scratch = [
        e
        for e in group["experiment"].unique()
        if e != name
        and e in by_name
        and by_name[e].config["model"].get("name") == deep
        and not by_name[e].config["model"].get("weights")
        and not by_name[e].config["model"].get("pretrain")
    ]
    if not scratch:
        return (
            f"Pretraining: {name} starts from {source}, but no experiment trains {deep} from "
            "scratch on the same data and folds, so whether pretraining helped is not known."
        )
    # The counterpart that differs in the fewest other settings; any it differs in are named,
    # since the difference is then not pretraining's alone.
    differing = {e: _settings_apart(cfg, by_name[e].config) for e in scratch}
    other = min(scratch, key=lambda e: (len(differing[e]), scratch.index(e)))
    apart = (
        f" The two also differ in {', '.join(differing[other])}, so the difference is not "
        "pretraining's alone."
        if differing[other]
        else ""
    )
    a, b = f"{name}/{deep}", f"{other}/{deep}"
    match = pairs[((pairs["a"] == a) & (pairs["b"] == b)) | ((pairs["a"] == b) & (pairs["b"] == a))]
    mine = group[(group["experiment"] == name) & (group["learner"] == deep)]
    theirs = group[(group["experiment"] == other) & (group["learner"] == deep)]
    if match.empty or mine.empty or theirs.empty:
        return f"Pretraining: {name} and {other} were not paired; not tested."
    rec = match.iloc[0]
    metric = str(mine["metric"].iloc[0])
    m1, m2 = float(mine["mean"].iloc[0]), float(theirs["mean"].iloc[0])
    diff = float(rec["mean_difference"]) * (1 if rec["a"] == a else -1)  # fine-tuned - scratch
    folds = int(mine["folds"].iloc[0])
    t, p = abs(float(rec["t"])), float(rec["p_corrected_t"])
    interval = ""
    if np.isfinite(t) and t > 0:
        half = stats.t.ppf(0.975, folds - 1) * abs(diff) / t
        interval = f" [{diff - half:+.3f}, {diff + half:+.3f}]"
    test = f"corrected t-test p = {p:.3g} over {folds} folds"
    if not np.isfinite(p):  # pooled summaries (leave-one-out, a holdout): no test over folds
        p = float(rec.get("p_bootstrap", np.nan))
        test = f"paired bootstrap p = {p:.3g}" if np.isfinite(p) else "not tested"
    better = diff < 0 if metric in LOWER_IS_BETTER else diff > 0
    if not np.isfinite(p):
        outcome = "whether fine-tuning beat training from scratch was not tested"
    elif p < 0.05 and better:
        outcome = "fine-tuning beat training from scratch"
    elif p < 0.05:
        outcome = "fine-tuning did worse than training from scratch"
    elif better:
        outcome = "fine-tuning did not significantly beat training from scratch"
    else:
        outcome = "no significant difference between fine-tuning and training from scratch"
    baselines = group[
        group["experiment"].isin([name, other]) & ~group["learner"].isin([deep])
    ].sort_values("rank")
    base = ""
    if not baselines.empty:
        top = baselines.iloc[0]
        base = f" The best baseline, {top['learner']}, scores {metric} {float(top['mean']):.3f}."
    return (
        f"Pretraining: {outcome} ({name}/{deep} from {source} {metric} {m1:.3f} vs "
        f"{other}/{deep} from scratch {m2:.3f}; difference {diff:+.3f}{interval}, {test})."
        f"{apart}{base}"
    )


#: Settings a fine-tuned model may differ in from its from-scratch counterpart.
PRETRAINING_KEYS = ("weights", "pretrain", "trainable_stages")


def _settings_apart(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """Name the ``model``/``training``/``preprocess`` keys two experiments set differently."""
    keys = []
    for part in ("model", "training", "preprocess"):
        one, two = a.get(part) or {}, b.get(part) or {}
        for key in sorted(set(one) | set(two)):
            if part == "model" and key in PRETRAINING_KEYS:
                continue
            if one.get(key) != two.get(key):
                keys.append(f"{part}.{key}")
    return keys


def _skipped_notes(fits: Sequence[Mapping[str, Any]], learner: str) -> list[dict[str, str]]:
    """Say in which folds a learner's temperature was left at 1, and why (calibrate records it)."""
    folds: dict[str, list[str]] = {}
    for fit in fits:
        rec = fit["learners"].get(learner)
        if rec is None:
            continue
        reasons = rec.get("skipped", "unrecorded")
        reasons = reasons if isinstance(reasons, list) else [reasons]
        temps = np.atleast_1d(np.asarray(rec["temperature"], dtype=np.float64))
        for reason, temp in zip(reasons, temps, strict=False):
            if reason is None or (reason == "unrecorded" and temp != 1.0):
                continue
            folds.setdefault(reason, []).append(str(fit["fold"]))
    notes = []
    for reason, where in folds.items():
        text = SKIPPED.get(reason, "the reason was not recorded (results of an older dlpipe)")
        where = list(dict.fromkeys(where))
        label = f"fold {where[0]}" if len(where) == 1 else f"folds {', '.join(where)}"
        if len(where) == len(fits):
            label = f"every fold ({', '.join(where)})"
        notes.append({"learner": learner, "folds": label, "reason": text})
    return notes


def calibration_section(exp: ExperimentFiles, metrics: pd.DataFrame) -> dict[str, Any] | None:
    """Return temperatures per learner and the calibration metrics before and after scaling.

    Where a temperature was left at 1, a note says in which folds and why (as calibrate
    recorded it).
    """
    files = exp.extras.get("calibrations") or []
    if not files:
        return None
    fits = [read_json(p) for p in files]
    rows, skipped = [], []
    for learner in dict.fromkeys(metrics["learner"]):
        temps = [f["learners"][learner]["temperature"] for f in fits if learner in f["learners"]]
        temps = np.asarray(temps, dtype=np.float64).reshape(len(temps), -1).mean(axis=1)
        sd = float(temps.std(ddof=1)) if len(temps) > 1 else float("nan")
        notes = _skipped_notes(fits, learner)
        skipped += notes
        # A star sends the reader to the note below: a temperature of 1 that was never fitted.
        row = [learner, f"{fmt(float(temps.mean()))} ± {fmt(sd)}" + (" *" if notes else "")]
        for metric in ("ece", "brier", "nll"):
            for suffix in ("", "_calibrated"):
                rec = metrics[
                    (metrics["learner"] == learner) & (metrics["metric"] == metric + suffix)
                ]
                row.append(fmt(summary_value(rec.iloc[0]) if len(rec) else float("nan")))
        rows.append(row)
    pooled = (
        "summary" in metrics.columns
        and (
            metrics.loc[metrics["metric"].isin(["ece", "brier", "nll"]), "summary"] == "pooled"
        ).any()
    )
    # Pooled where the folds cannot be summarised (leave-one-out): the column heads say which.
    basis = "pooled" if pooled else "fold mean"
    columns = ["learner", "temperature (mean ± sd over folds)"] + ["raw", "scaled"] * 3
    groups = [("", 2)] + [(f"{m} ({basis})", 2) for m in ("ECE", "Brier", "NLL")]
    return section(
        "calibration.html.j2",
        "Calibration",
        anchor(exp.name, "calibration"),
        table=table(pd.DataFrame(rows, columns=columns), groups=groups),
        skipped=skipped,
    )


def _database_text(db: Mapping[str, Any] | None) -> str:
    if db is None:
        return "Motifs are searched in nucleotide sequences only."
    taxa = ", ".join(db["tax_groups"]) or "all taxonomic groups"
    files = ", ".join(Path(f).name for f in db["files"])
    return (
        "Motifs: seqlets (spans of high attribution, called by tangermeme's recursive caller "
        f"at an estimated false discovery rate of {db['seqlet_fdr']:g} against the attributions "
        "of dinucleotide-shuffled copies of the sequences) clustered on both strands, and the "
        "first-layer filters with the largest influence (mean drop of the output when the "
        f"filter is silenced). Each is compared with {db['release']} {db['collection']} "
        f"({taxa}; {db['profiles']} profiles in all"
        + (f", with {files}" if files else "")
        + ") by TOMTOM (memelite: both strands, exact p-values from TOMTOM's score "
        "distribution; E = p × profiles; q: Benjamini-Hochberg over the profiles). A motif is "
        f"named after its best match only where q < {db['match_q']:g} and the alignment covers "
        f"at least {db.get('match_coverage', 0):.0%} of the profile's information content (a "
        "weak motif can reach a small q on the flat flank of a long profile); otherwise it has "
        "no significant match, and its best candidate's q and coverage are shown for reference."
    )


def _or_dash(value: Any, form: str) -> str:
    """``value`` formatted, or an en dash where it is missing."""
    return form.format(value) if pd.notna(value) else "–"


def _sequence_interpretation(folder: Path, name: str) -> dict[str, Any]:
    summary = read_json(folder / "summary.json")
    motif_table = folder / "motifs.tsv"
    motifs = (
        pd.read_csv(motif_table, sep="\t") if motif_table.stat().st_size > 1 else pd.DataFrame()
    )
    db = summary["motif_database"]
    agreement = "; ".join(
        f"{cls}: " + ", ".join(f"{k.replace('_', ' ')} r = {fmt(v, 2)}" for k, v in a.items())
        for cls, a in summary["agreement"].items()
    )
    shown = None
    if len(motifs):
        shown = pd.DataFrame(
            {
                "motif": motifs["motif"],
                "source": motifs["source"],
                "sites": motifs["sites"],
                "consensus": motifs["consensus"],
                "influence": [fmt(v, 2) for v in motifs["influence"]],
                f"match (q < {db['match_q']:g})": [
                    f"{i} {n} ({src})" if pd.notna(i) else "no significant match"
                    for i, n, src in zip(
                        motifs["match_id"],
                        motifs["match_name"],
                        motifs["match_source"],
                        strict=True,
                    )
                ],
                "E-value": [_or_dash(v, "{:.2g}") for v in motifs["match_e"]],
                "q-value": [
                    f"{q:.2g}"
                    if pd.notna(q)
                    else f"best candidate {b:.2g}, covering {c:.0%} (not named)"
                    for q, b, c in zip(
                        motifs["match_q"],
                        motifs["best_q"],
                        motifs.get("best_coverage", pd.Series(np.nan, index=motifs.index)),
                        strict=True,
                    )
                ],
                "JASPAR match": [
                    f"{i} {n} (E {e:.2g}, q {q:.2g})" if pd.notna(i) else "no significant match"
                    for i, n, e, q in zip(
                        motifs["jaspar_id"],
                        motifs["jaspar_name"],
                        motifs["jaspar_e"],
                        motifs["jaspar_q"],
                        strict=True,
                    )
                ],
            }
        )
    figures = [
        image(folder / file, file, caption)
        for file, caption in (
            (
                "motif_logos.png",
                "Learned motifs (information content) beside their significant TOMTOM match, "
                "aligned at the matched offset and strand; no logo where no match is significant.",
            ),
            (
                "attribution_logos.png",
                "Contribution of each base of the top-scoring held-out "
                "sequences: integrated gradients and in-silico mutagenesis.",
            ),
        )
        if (folder / file).is_file()
    ]
    return section(
        "motifs.html.j2",
        "What the model learned",
        anchor(name, "learned"),
        sequences=summary["sequences"],
        ism_sequences=summary["ism_sequences"],
        agreement=agreement,
        database=_database_text(db),
        table=table(shown) if shown is not None else None,
        figures=figures,
    )


def _feature_interpretation(folder: Path, task: Task, top: int, name: str) -> dict[str, Any]:
    importance = pd.read_csv(folder / "feature_importance.tsv", sep="\t", dtype={"output": str})
    classification = task.categorical
    key = "ig" if classification else "ig_abs"
    rows = []
    outputs = list(dict.fromkeys(importance["output"]))
    for output in outputs[:10]:
        part = importance[importance["output"] == output]
        part = part.sort_values(key, ascending=False).head(top)
        rows.append(
            {
                "class" if classification else "target": output,
                f"top {top} features (integrated gradients)": ", ".join(
                    f"{f} ({v:+.3g})" for f, v in zip(part["feature"], part[key], strict=True)
                ),
            }
        )
    perm = importance.drop_duplicates("feature").sort_values("permutation", ascending=False)
    perm = perm.head(top)
    figure = None
    if (folder / "features.png").is_file():
        figure = image(
            folder / "features.png",
            "features",
            "Top features per class or target and by permutation importance.",
        )
    return section(
        "features.html.j2",
        "What the model learned",
        anchor(name, "learned"),
        classification=classification,
        n_outputs=len(outputs),
        outputs_shown=min(len(outputs), 10),
        table=table(pd.DataFrame(rows)),
        pooled="permutation_scope" in importance
        and (importance["permutation_scope"] == "pooled").any(),
        permutation=[
            f"{f} {v:.3g} ± {s:.2g}"
            for f, v, s in zip(
                perm["feature"], perm["permutation"], perm["permutation_sd"].fillna(0), strict=True
            )
        ],
        figure=figure,
    )


def interpretation_section(exp: ExperimentFiles, meta: Mapping[str, Any]) -> dict[str, Any] | None:
    """Learned motifs, top features per class, or saliency maps of images, of one experiment."""
    folder = exp.extras.get("interpret")
    if not folder:
        return None
    folder = Path(folder)
    kind = modality_of(exp.config).interpretation
    if kind == "none":  # nothing drawn: the DOME summary says why
        return None
    if kind == "image":
        return image_interpretation(folder, exp.name)
    if kind == "graph":
        return graph_interpretation(folder, exp.name)
    if kind == "sequence":
        return _sequence_interpretation(folder, exp.name)
    top = int(exp.config["interpret"]["top_features"])
    return _feature_interpretation(folder, get_task(meta["task"]), top, exp.name)


def comparison_section(files: Mapping[str, str], order: Sequence[str] = ()) -> dict[str, Any]:
    """Return the leaderboard of every group of learners sharing data and folds.

    Groups come in the order of their first experiment on the page (``order``).
    """
    board = pd.read_csv(files["leaderboard"], sep="\t")
    place = {name: i for i, name in enumerate(order)}
    groups = []
    for group, rows in board.groupby("group", sort=False):
        shown = pd.DataFrame(
            {
                "rank": rows["rank"],
                "experiment": rows["experiment"],
                "learner": rows["learner"],
                "metric": rows["metric"],
                "mean ± sd": [
                    f"{fmt(m)} ± {fmt(s)}" for m, s in zip(rows["mean"], rows["sd"], strict=True)
                ],
                "folds": rows["folds"],
                "difference to best": [fmt(v) for v in rows["difference"]],
                "p (corrected t)": [fmt_p(v) for v in rows["p_corrected_t"]],
                "p (Wilcoxon)": [fmt_p(v) for v in rows["p_wilcoxon"]],
                "note": [
                    "at chance (95 % interval reaches it)" if flag else ""
                    for flag in rows.get("at_chance", pd.Series(False, index=rows.index))
                ],
            }
        )
        pooled = "summary" in rows.columns and (rows["summary"] == "pooled").any()
        if pooled:
            # Ranked on the pooled value: no fold mean, no test over folds.
            shown = shown.drop(columns=["mean ± sd", "p (corrected t)", "p (Wilcoxon)"])
            shown.insert(4, "pooled", [fmt(v) for v in rows["pooled"]])
            shown["p (paired bootstrap)"] = [fmt_p(v) for v in rows["p_bootstrap"]]
        first = min(place.get(e, len(place)) for e in rows["experiment"])
        groups.append((first, {"title": str(group), "table": table(shown), "pooled": pooled}))
    groups.sort(key=lambda item: item[0])  # stable: unknown experiments keep board order
    return section(
        "leaderboard.html.j2",
        "Leaderboard",
        "leaderboard",
        level=2,
        groups=[g for _, g in groups],
        pooled_test=POOLED_TEST,
    )


def split_guard(cfg: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    """Say what kept related samples out of each other's folds, for the verdict's line.

    Parameters
    ----------
    cfg
        The experiment's config (its ``cv`` plan).
    meta
        Its ``dataset.json``: genome windows record how overlapping windows were kept
        together (``fold_guard``), tables and cells their group column.
    """
    cv = cfg["cv"]
    facts = meta.get("meta") or {}
    text = f"Split: {plan_text(cv)}"
    if facts.get("fold_guard"):
        return f"{text}; {facts['fold_guard']}."
    if cv["plan"] in LINK_PLANS:
        return (
            f"{text}; non-edges drawn per fold from the whole graph, none on two sides, no "
            "held-out edge in any graph a learner propagates over or counts on."
        )
    if cv["plan"] in GROUP_PLANS and meta.get("group_column"):
        return f"{text}; whole groups of {meta['group_column']} per fold."
    if cv["plan"] in GROUP_PLANS:
        return f"{text}; whole groups per fold."
    return f"{text}; samples assigned one by one (no groups named)."


def experiment_verdict(
    name: str, metrics: pd.DataFrame, board: pd.DataFrame | None, pairs: pd.DataFrame | None
) -> str:
    """Write a few sentences from the numbers: the best learner, its margin, how sure.

    The learners are ranked on the leaderboard's metric (the task's primary one). The margin is
    the mean paired difference over folds with its 95 % interval from the corrected resampled
    t-test (Nadeau & Bengio 2003), whose p-value decides between "beats" and "no significant
    difference" at 0.05. When the deep model (the first learner of ``metrics``) is not one of
    the two compared, its rank follows; then every learner whose interval reaches chance is
    named.

    Parameters
    ----------
    name
        Experiment name.
    metrics
        The experiment's ``metrics.tsv``.
    board, pairs
        The compare step's leaderboard and pairwise tests (``None`` when it did not run).

    Returns
    -------
    str
        Plain text (escape it for HTML).
    """
    text = _ranking_verdict(name, metrics, board, pairs)
    rows = board[board["experiment"] == name] if board is not None else None
    if rows is None or rows.empty:
        return text
    rows = rows.sort_values("rank")
    metric = str(rows["metric"].iloc[0])
    deep = str(metrics["learner"].iloc[0])
    if len(rows) > 2 and deep not in set(rows["learner"].iloc[:2]):
        mine = rows[rows["learner"] == deep].iloc[0]
        text += (
            f" The deep model {deep} ranks {int(mine['rank'])} of {len(rows)} "
            f"({metric} {summary_value(mine):.3f})."
        )
    for learner in rows["learner"]:
        note = chance_note(metrics, str(learner), metric)
        if note:
            text += f" {learner} is {note}."
    return text


def _ranking_verdict(
    name: str, metrics: pd.DataFrame, board: pd.DataFrame | None, pairs: pd.DataFrame | None
) -> str:
    """Name the best learner, its margin over the next and how sure (:func:`experiment_verdict`)."""
    from scipy import stats  # lazy: 0.6 s

    rows = board[board["experiment"] == name] if board is not None else None
    if rows is None or rows.empty:
        learners = list(dict.fromkeys(metrics["learner"]))
        return f"{name}: {', '.join(learners)} scored; no paired comparison was run."
    rows = rows.sort_values("rank")
    metric = str(rows["metric"].iloc[0])
    best = rows.iloc[0]
    if len(rows) == 1:
        return (
            f"{name}: {best['learner']} {metric} {summary_value(best):.3f}; no other learner "
            "to compare."
        )
    second = rows.iloc[1]
    scores = f"{metric} {best['mean']:.3f} vs {second['mean']:.3f}"
    rec = None
    if pairs is not None:
        a, b = f"{name}/{best['learner']}", f"{name}/{second['learner']}"
        match = pairs[
            ((pairs["a"] == a) & (pairs["b"] == b)) | ((pairs["a"] == b) & (pairs["b"] == a))
        ]
        rec = match.iloc[0] if not match.empty else None
    if best.get("summary") == "pooled":
        return _pooled_verdict(name, best, second, metric, rec)
    if rec is None or not np.isfinite(rec["p_corrected_t"]):
        return f"{name}: {best['learner']} leads {second['learner']} ({scores}); not tested."
    diff = abs(float(rec["mean_difference"]))
    folds = int(best["folds"])
    t = abs(float(rec["t"]))
    interval = ""
    if np.isfinite(t) and t > 0:
        half = stats.t.ppf(0.975, folds - 1) * diff / t
        interval = f" [{diff - half:.3f}, {diff + half:.3f}]"
    p = float(rec["p_corrected_t"])
    test = f"corrected t-test p = {p:.3g} over {folds} folds"
    if p < 0.05:
        return (
            f"{name}: {best['learner']} beats {second['learner']} ({scores}; difference "
            f"{diff:.3f}{interval}, {test})."
        )
    return (
        f"{name}: no significant difference between {best['learner']} and {second['learner']} "
        f"({scores}; difference {diff:.3f}{interval}, {test})."
    )


def _pooled_verdict(
    name: str, best: pd.Series, second: pd.Series, metric: str, rec: pd.Series | None
) -> str:
    """Judge learners ranked on pooled values by the paired bootstrap over samples."""
    scores = f"{metric} {best['pooled']:.3f} vs {second['pooled']:.3f}, pooled over samples"
    if rec is None or not np.isfinite(rec.get("p_bootstrap", np.nan)):
        return f"{name}: {best['learner']} leads {second['learner']} ({scores}); not tested."
    diff = float(best["pooled"]) - float(second["pooled"])
    # The pair's interval is of a - b; turned round where the best is b.
    low, high = float(rec["ci95_low"]), float(rec["ci95_high"])
    if rec["a"] != f"{name}/{best['learner']}":
        low, high = -high, -low
    interval = f" [{low:.3f}, {high:.3f}]" if np.isfinite(low) else ""
    p = float(rec["p_bootstrap"])
    test = f"paired bootstrap over samples p = {p:.3g}"
    verdict = f"{best['learner']} beats {second['learner']}"
    if p >= 0.05:
        verdict = f"no significant difference between {best['learner']} and {second['learner']}"
    return f"{name}: {verdict} ({scores}; difference {abs(diff):.3f}{interval}, {test})."
