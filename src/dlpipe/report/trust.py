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

from dlpipe.cv import plan_text
from dlpipe.io.files import read_json
from dlpipe.modalities import modality_of
from dlpipe.report import html
from dlpipe.report.files import ExperimentFiles
from dlpipe.tasks import Task, get_task


def _metric_text(metrics: pd.DataFrame, learner: str, metric: str) -> str:
    rec = metrics[(metrics["learner"] == learner) & (metrics["metric"] == metric)]
    if rec.empty:
        return "–"
    r = rec.iloc[0]
    return f"{metric} {html.fmt(r['mean'])} [{html.fmt(r['ci95_low'])}, {html.fmt(r['ci95_high'])}]"


def _best_epochs(histories: Sequence[str]) -> list[int]:
    epochs = []
    for path in histories:
        hist = pd.read_csv(path, sep="\t")
        epochs.append(int(hist.loc[hist["val_loss"].idxmin(), "epoch"]) + 1)
    return epochs


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
    return (
        f"; paired over folds: corrected t-test p = {html.fmt(r['p_corrected_t'], 4)}, "
        f"Wilcoxon p = {html.fmt(r['p_wilcoxon'], 4)}"
    )


def _flat(inputs: Mapping[str, Any]) -> dict[str, str]:
    """File → checksum, whether the provenance nests them (several BED files) or not."""
    out: dict[str, str] = {}
    for key, value in inputs.items():
        out.update(_flat(value) if isinstance(value, Mapping) else {key: str(value)})
    return out


def dome_section(
    exp: ExperimentFiles,
    meta: Mapping[str, Any],
    summaries: Sequence[Mapping[str, Any]],
    metrics: pd.DataFrame,
    pairs: pd.DataFrame | None = None,
) -> list[str]:
    """Return a DOME table (Data, Optimisation, Model, Evaluation) of one experiment."""
    cfg = exp.config
    extras = exp.extras
    task = get_task(meta["task"])
    modality = modality_of(cfg)
    info = meta["meta"]
    prov = read_json(exp.provenance)
    checksums = "; ".join(f"{Path(p).name} {h[:12]}…" for p, h in _flat(prov["inputs"]).items())
    if not task.probabilistic:
        labels = f"{len(meta['target_columns'])} target(s): {', '.join(meta['target_columns'][:5])}"
        labels += " …" if len(meta["target_columns"]) > 5 else ""
    else:
        labels = ", ".join(f"{k}: {v}" for k, v in (info.get("class_counts") or {}).items())
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
    learners = list(dict.fromkeys(metrics["learner"]))
    deep = cfg["model"]["name"]
    fitted = [modality.fitted_text(cfg), "early stopping (best epoch): validation side"]
    if extras.get("calibrations"):
        fitted.append("temperature scaling: validation side")
    if cfg["baseline"]["enabled"]:
        fitted.append(f"baseline ({learners[-1]}): the same training rows")
    fitted.append("test side: scored once by evaluate, never fitted on")
    hyper = ", ".join(f"{k}={v}" for k, v in cfg["model"].items() if k != "name")
    train = cfg["training"]
    optim = (
        f"{train['optimizer']} lr {train['learning_rate']}, weight decay {train['weight_decay']}, "
        f"batch {train['batch_size']}, up to {train['max_epochs']} epochs, patience "
        f"{train['patience']}, class weights {train['class_weights']}"
    )
    optim += modality.training_text(cfg)
    epochs = _best_epochs(extras.get("histories", []))
    if epochs:
        optim += f"; best epoch per fold {', '.join(map(str, epochs))}"
    # Counted by the interpret step (it loads the models), or by the report step without it.
    n_params = extras.get("n_parameters")
    if extras.get("interpret"):
        n_params = read_json(Path(extras["interpret"]) / "summary.json").get("n_parameters")
    inputs = modality.model_inputs_text(meta, summaries)
    model_text = (
        f"{deep} ({hyper}); {n_params:,} trainable parameters; input {inputs}; "
        if n_params is not None
        else f"{deep} ({hyper}); input {inputs}; "
    )
    model_text += task.outputs_text
    if extras.get("interpret"):
        model_text += modality.explained_text()
    primary = (task.primary_metric, *(m for m in task.headline if m != task.primary_metric))
    evaluation = []
    for learner in learners:
        text = ", ".join(_metric_text(metrics, learner, m) for m in primary)
        if learner != learners[0]:
            text += _pair_p(pairs, exp.name, learners[0], learner)
        evaluation.append(f"{learner}: {text}")
    if task.probabilistic and "ece" in set(metrics["metric"]):
        ece = [
            f"{lrn} {_metric_text(metrics, lrn, 'ece').split(' ', 1)[1]} → "
            f"{_metric_text(metrics, lrn, 'ece_calibrated').split(' ', 1)[1]}"
            for lrn in learners
        ]
        evaluation.append("ECE raw → temperature-scaled: " + "; ".join(ece))
    rows = [
        ("Data", "source and checksums", checksums),
        ("Data", "samples", f"{info['n_samples']}; {labels}"),
        ("Data", "splits", split),
        ("Optimisation", "what was fitted where", "; ".join(fitted)),
        ("Optimisation", "training", optim),
        ("Optimisation", "hyperparameters", "fixed in the config; none chosen on test folds"),
        ("Model", "model", model_text),
        ("Model", "baselines", ", ".join(learners[1:]) or "none"),
        ("Evaluation", "metrics over test folds (mean [95 % CI])", "<br>".join(evaluation)),
        (
            "Evaluation",
            "reproducibility",
            f"seed {prov['seed']}; git {prov['git_commit'] or '–'}; "
            "config and package versions under Provenance",
        ),
    ]
    cells = "".join(
        f"<tr><th>{html.esc(part)}</th><td>{html.esc(what)}</td><td style='text-align:left'>"
        + (text if part == "Evaluation" and what.startswith("metrics") else html.esc(text))
        + "</td></tr>"
        for part, what, text in rows
    )
    return [
        "<h3>DOME summary</h3>",
        '<p class="note">Data, Optimisation, Model, Evaluation (DOME recommendations for '
        "machine learning in biology).</p>",
        f"<table><tbody>{cells}</tbody></table>",
    ]


def calibration_section(exp: ExperimentFiles, metrics: pd.DataFrame) -> list[str]:
    """Temperatures per learner and the calibration metrics before and after scaling."""
    files = exp.extras.get("calibrations") or []
    if not files:
        return []
    fits = [read_json(p) for p in files]
    rows = []
    for learner in dict.fromkeys(metrics["learner"]):
        temps = [f["learners"][learner]["temperature"] for f in fits if learner in f["learners"]]
        temps = np.asarray(temps, dtype=np.float64).reshape(len(temps), -1).mean(axis=1)
        sd = float(temps.std(ddof=1)) if len(temps) > 1 else float("nan")
        row = {
            "learner": learner,
            "temperature (mean ± sd over folds)": (
                f"{html.fmt(float(temps.mean()))} ± {html.fmt(sd)}"
            ),
        }
        for metric in ("ece", "brier", "nll"):
            for suffix, label in (("", "raw"), ("_calibrated", "scaled")):
                rec = metrics[
                    (metrics["learner"] == learner) & (metrics["metric"] == metric + suffix)
                ]
                value = rec.iloc[0]["mean"] if len(rec) else float("nan")
                row[f"{metric} {label}"] = html.fmt(value)
        rows.append(row)
    return [
        "<h3>Calibration</h3>",
        '<p class="note">Temperature scaling: one temperature per learner and fold, fitted by '
        "maximum likelihood on the fold's validation side only; evaluate applied it to the test "
        "side. ECE: expected calibration error (10 equal-width confidence bins); Brier score "
        "(halved, in [0, 1]); NLL: mean negative log-likelihood. Means over test folds; the "
        "reliability diagram is among the figures above. A temperature above 1 means the raw "
        "probabilities were over-confident.</p>",
        html.table(pd.DataFrame(rows)),
    ]


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
        + (f", with {html.esc(files)}" if files else "")
        + ") by TOMTOM (memelite: both strands, exact p-values from TOMTOM's score "
        "distribution; E = p × profiles; q: Benjamini-Hochberg over the profiles). A motif is "
        f"named after its best match only where q < {db['match_q']:g}; otherwise it has no "
        "significant match, and the q of its best candidate is shown for reference."
    )


def _or_dash(value: Any, form: str) -> str:
    """``value`` formatted, or an en dash where it is missing."""
    return form.format(value) if pd.notna(value) else "–"


def _sequence_interpretation(folder: Path) -> list[str]:
    summary = read_json(folder / "summary.json")
    table = folder / "motifs.tsv"
    motifs = pd.read_csv(table, sep="\t") if table.stat().st_size > 1 else pd.DataFrame()
    db = summary["motif_database"]
    agreement = "; ".join(
        f"{cls}: " + ", ".join(f"{k.replace('_', ' ')} r = {html.fmt(v, 2)}" for k, v in a.items())
        for cls, a in summary["agreement"].items()
    )
    parts = [
        "<h3>What the model learned</h3>",
        f"<p>{summary['sequences']} top-scoring held-out sequences were explained, each by the "
        "fold model that never trained on it: integrated gradients (uniform reference), "
        "DeepLiftShap (dinucleotide-shuffled copies of each sequence as references; models "
        "without recurrent layers) and in-silico "
        f"mutagenesis (the {summary['ism_sequences']} top-scoring). Agreement of the "
        f"per-position contributions with integrated gradients: {html.esc(agreement)}. "
        + _database_text(db)
        + "</p>",
    ]
    if len(motifs):
        shown = pd.DataFrame(
            {
                "motif": motifs["motif"],
                "source": motifs["source"],
                "sites": motifs["sites"],
                "consensus": motifs["consensus"],
                "influence": [html.fmt(v, 2) for v in motifs["influence"]],
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
                    f"{q:.2g}" if pd.notna(q) else f"best candidate {b:.2g} (n.s.)"
                    for q, b in zip(motifs["match_q"], motifs["best_q"], strict=True)
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
        parts.append(html.table(shown))
    for name, caption in (
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
    ):
        if (folder / name).is_file():
            parts.append(
                f"<figure>{html.img(folder / name, name)}<figcaption class=note>{html.esc(caption)}"
                "</figcaption></figure>"
            )
    return parts


def _feature_interpretation(folder: Path, task: Task, top: int) -> list[str]:
    table = pd.read_csv(folder / "feature_importance.tsv", sep="\t", dtype={"output": str})
    classification = task.categorical
    key = "ig" if classification else "ig_abs"
    rows = []
    outputs = list(dict.fromkeys(table["output"]))
    for output in outputs[:10]:
        part = table[table["output"] == output].sort_values(key, ascending=False).head(top)
        rows.append(
            {
                "class" if classification else "target": output,
                f"top {top} features (integrated gradients)": ", ".join(
                    f"{f} ({v:+.3g})" for f, v in zip(part["feature"], part[key], strict=True)
                ),
            }
        )
    perm = table.drop_duplicates("feature").sort_values("permutation", ascending=False)
    perm = perm.head(top)
    parts = [
        "<h3>What the model learned</h3>",
        '<p class="note">Integrated gradients of each '
        + (
            "class's log-probability, averaged over the held-out samples of that class (positive: "
            "evidence for the class)"
            if classification
            else "target, mean absolute attribution over the held-out samples"
        )
        + "; the reference is the training mean (zero after z-scoring). Permutation importance: "
        "mean drop of the held-out score (auROC or R²) when a feature is shuffled. Per fold on "
        "its held-out samples with its own model, averaged over folds"
        + (f"; first 10 of {len(outputs)} targets shown" if len(outputs) > 10 else "")
        + ".</p>",
        html.table(pd.DataFrame(rows)),
        "<p>Permutation importance (mean ± sd over folds): "
        + ", ".join(
            f"{html.esc(f)} {v:.3g} ± {s:.2g}"
            for f, v, s in zip(
                perm["feature"], perm["permutation"], perm["permutation_sd"].fillna(0), strict=True
            )
        )
        + ".</p>",
    ]
    if (folder / "features.png").is_file():
        parts.append(
            f"<figure>{html.img(folder / 'features.png', 'features')}<figcaption class=note>Top "
            "features per class or target and by permutation importance.</figcaption></figure>"
        )
    return parts


def interpretation_section(exp: ExperimentFiles, meta: Mapping[str, Any]) -> list[str]:
    """Learned motifs with logos and matches, or top features per class, of one experiment."""
    folder = exp.extras.get("interpret")
    if not folder:
        return []
    folder = Path(folder)
    kind = modality_of(exp.config).interpretation
    if kind == "sequence":
        return _sequence_interpretation(folder)
    top = int(exp.config["interpret"]["top_features"])
    return _feature_interpretation(folder, get_task(meta["task"]), top)


def comparison_section(files: Mapping[str, str]) -> list[str]:
    """Return the leaderboard of every group of learners sharing data and folds."""
    board = pd.read_csv(files["leaderboard"], sep="\t")
    parts = [
        "<h2 id=leaderboard>Leaderboard</h2>",
        '<p class="note">Learners scored on the same test folds of the same data, ranked on the '
        "task's primary metric (mean over folds). p-values compare each learner with the best "
        "over folds: the corrected resampled t-test (Nadeau & Bengio 2003) accounts for the "
        "overlap of training sets between folds; the Wilcoxon signed-rank test makes no "
        "distribution assumption, but over k folds its p-value cannot go below 2^(1-k) "
        "(0.25 with 3 folds, 0.0625 with 5).</p>",
    ]
    for group, rows in board.groupby("group", sort=False):
        shown = pd.DataFrame(
            {
                "rank": rows["rank"],
                "experiment": rows["experiment"],
                "learner": rows["learner"],
                "metric": rows["metric"],
                "mean ± sd": [
                    f"{html.fmt(m)} ± {html.fmt(s)}"
                    for m, s in zip(rows["mean"], rows["sd"], strict=True)
                ],
                "folds": rows["folds"],
                "difference to best": [html.fmt(v) for v in rows["difference"]],
                "p (corrected t)": [html.fmt(v, 4) for v in rows["p_corrected_t"]],
                "p (Wilcoxon)": [html.fmt(v, 4) for v in rows["p_wilcoxon"]],
            }
        )
        parts += [f"<h3>{html.esc(group)}</h3>", html.table(shown)]
    return parts


def experiment_verdict(
    name: str, metrics: pd.DataFrame, board: pd.DataFrame | None, pairs: pd.DataFrame | None
) -> str:
    """One sentence from the numbers: the best learner, its margin over the next and how sure.

    The learners are ranked on the leaderboard's metric (the task's primary one). The margin is
    the mean paired difference over folds with its 95 % interval from the corrected resampled
    t-test (Nadeau & Bengio 2003), whose p-value decides between "beats" and "no significant
    difference" at 0.05.

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
            f"{name}: {best['learner']} {metric} {best['mean']:.3f}; no other learner to compare."
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
