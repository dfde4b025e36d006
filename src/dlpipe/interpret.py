"""What the deep model learned: attributions, motifs and feature importance.

Sequences: for the top-scoring held-out sequences of each class (chosen from the out-of-fold
predictions, each explained by the fold model that never trained on it) dlpipe computes

- integrated gradients (captum) from a uniform reference (0.25 per base) — the attribution of a
  position is then the gradient at its base minus the mean gradient over the four bases, summed
  along the path;
- DeepLiftShap (captum) against shuffled copies of the explained sequences (models without
  recurrent layers);
- in-silico mutagenesis: every single-base substitution, scored by the model.

The model takes ``uint8`` codes and expands them to one-hot inside (``model.one_hot``); a float
input is taken as one-hot already, so attributions are computed with respect to the one-hot
tensor. The explained output of class ``c`` is ``z_c - mean(z)`` (softmax logits are defined up
to a constant; for two classes it is half the log-odds), or the logit of a target for
multi-label models. Integrated gradients feed the motif search (:mod:`dlpipe.motifs`):
seqlets clustered into motifs, and first-layer filters turned into PWMs with their influence
(the drop in the explained output when a filter is replaced by its mean activation); each is
matched to JASPAR (and any extra motif files).

Tables: integrated gradients (reference: the zero vector, i.e. the training mean after
z-scoring) of each class's log-probability or each target, and scikit-learn's permutation
importance (drop of auROC or R² on the held-out rows when one feature is shuffled; for the
``permutation_features`` features of largest attribution), per fold on that fold's held-out
rows, averaged over folds.

Interpretation runs after evaluation and feeds nothing back: the metrics are final before it
starts, and it fits nothing that is scored.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from captum.attr import DeepLiftShap, IntegratedGradients
from sklearn.inspection import permutation_importance
from sklearn.metrics import r2_score, roc_auc_score
from torch import nn

from dlpipe.datasets import learner_columns, learner_input
from dlpipe.io.jaspar import Motif, load_jaspar, ppm_from_counts, read_jaspar_file
from dlpipe.metrics import softmax
from dlpipe.models.checkpoint import load_model, raw_outputs
from dlpipe.motifs import MotifMatcher, cluster_seqlets, find_seqlets, trim_motif

log = logging.getLogger(__name__)
#: Sequences (the top-scoring ones) explained by in-silico mutagenesis and used for filter
#: influence; both take one model call per variant.
ISM_SEQUENCES = 50


class ExplainedOutput(nn.Module):
    """Wrap a model so that output ``c`` is what attributions explain.

    Parameters
    ----------
    model
        A trained dlpipe model returning logits or values.
    mode
        ``centred`` (``z - mean(z)``: softmax classifiers), ``log_softmax`` (tabular classes),
        or ``raw`` (logits of independent targets, regression values).
    """

    def __init__(self, model: nn.Module, mode: str = "centred") -> None:
        super().__init__()
        self.model = model
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the explained outputs of a batch."""
        z = self.model(x)
        if self.mode == "centred":
            return z - z.mean(dim=1, keepdim=True)
        if self.mode == "log_softmax":
            return torch.log_softmax(z, dim=1)
        return z


def one_hot_of(model: nn.Module, codes: np.ndarray) -> torch.Tensor:
    """Return the model's own one-hot expansion ``(n, channels, length)`` of ``uint8`` codes."""
    expand = getattr(model, "one_hot", None)
    if expand is None:
        raise ValueError("the model has no one_hot module; it is not a dlpipe sequence model")
    with torch.no_grad():
        return expand(torch.from_numpy(np.ascontiguousarray(codes))).float()


def integrated_gradients(
    model: nn.Module,
    onehot: torch.Tensor,
    target: int,
    n_steps: int = 32,
    baseline: torch.Tensor | None = None,
    batch_size: int = 64,
) -> np.ndarray:
    """Integrated gradients of output ``target`` with respect to the (one-hot) input.

    Parameters
    ----------
    model
        Maps the input to outputs (e.g. :class:`ExplainedOutput`).
    onehot
        ``(n, channels, length)`` sequences or ``(n, features)`` rows.
    target
        Output index explained.
    n_steps
        Riemann steps along the path.
    baseline
        Reference input; default a uniform ``1/channels`` for 3-D inputs, zeros otherwise.
    batch_size
        Inputs per captum call.

    Returns
    -------
    numpy.ndarray
        Attributions, same shape as ``onehot`` (they sum to output(x) - output(baseline)).
    """
    if baseline is None:
        baseline = (
            torch.full_like(onehot, 1.0 / onehot.shape[1])
            if onehot.dim() == 3
            else torch.zeros_like(onehot)
        )
    method = IntegratedGradients(model)
    parts = []
    for i in range(0, len(onehot), batch_size):
        x = onehot[i : i + batch_size].clone().requires_grad_(True)
        attr = method.attribute(
            x, baselines=baseline[i : i + batch_size], target=target, n_steps=n_steps
        )
        parts.append(attr.detach().numpy())
    return np.concatenate(parts) if parts else np.zeros(tuple(onehot.shape))


def shuffled_references(codes: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` references: base-shuffled copies of randomly chosen explained sequences.

    Shuffling keeps each reference's base composition (its GC content) and destroys motifs.
    """
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(codes), size=n, replace=len(codes) < n)
    return np.stack([rng.permutation(codes[i]) for i in picks])


def has_recurrent_layers(model: nn.Module) -> bool:
    """Whether the model holds an RNN/LSTM/GRU (DeepLift rules do not cover them)."""
    return any(isinstance(m, nn.RNNBase) for m in model.modules())


def deeplift_shap(
    model: nn.Module,
    onehot: torch.Tensor,
    target: int,
    references: torch.Tensor,
    batch_size: int = 32,
) -> np.ndarray:
    """DeepLiftShap attributions (captum) averaged over the reference sequences.

    Parameters
    ----------
    model
        Maps one-hot input to outputs; its ReLUs must be distinct modules (dlpipe's are).
    onehot
        ``(n, channels, length)`` sequences.
    target
        Output index explained.
    references
        ``(r, channels, length)`` one-hot references.
    batch_size
        Sequences per captum call (each is expanded ``r`` times).

    Returns
    -------
    numpy.ndarray
        ``(n, channels, length)`` attributions.
    """
    method = DeepLiftShap(model)
    parts = []
    for i in range(0, len(onehot), batch_size):
        x = onehot[i : i + batch_size].clone().requires_grad_(True)
        attr = method.attribute(x, baselines=references, target=target)
        parts.append(attr.detach().numpy())
    return np.concatenate(parts) if parts else np.zeros(tuple(onehot.shape))


@torch.no_grad()
def in_silico_mutagenesis(
    model: nn.Module, onehot: torch.Tensor, target: int, batch_size: int = 4096
) -> np.ndarray:
    """Change of output ``target`` for every single-base substitution.

    Returns
    -------
    numpy.ndarray
        ``(n, channels, length)``: entry ``[i, b, p]`` is output(sequence ``i`` with base ``b``
        at position ``p``) minus output(sequence ``i``); 0 at the observed bases.
    """
    n, channels, length = onehot.shape
    out = np.zeros((n, channels, length), dtype=np.float64)
    eye = torch.eye(channels)
    pos = torch.arange(length).repeat_interleave(channels)
    base = torch.arange(channels).repeat(length)
    per_seq = channels * length
    step = max(1, batch_size // per_seq)
    for i in range(0, n, step):
        chunk = onehot[i : i + step]
        ref = model(chunk)[:, target]
        variants = chunk.repeat_interleave(per_seq, dim=0)
        index = torch.arange(len(variants))
        p = pos.repeat(len(chunk))
        variants[index, :, p] = eye[base.repeat(len(chunk))]
        delta = model(variants)[:, target].view(len(chunk), length, channels) - ref[:, None, None]
        out[i : i + len(chunk)] = delta.permute(0, 2, 1).double().numpy()
    # Exact zeros at the observed bases (the variant equals the sequence).
    out[onehot.numpy() > 0.5] = 0.0
    return out


def position_contributions(attributions: np.ndarray) -> np.ndarray:
    """Contribution of each position: the attributions summed over the bases, ``(n, length)``."""
    return np.asarray(attributions).sum(axis=1)


def ism_contributions(ism: np.ndarray, onehot: np.ndarray) -> np.ndarray:
    """ISM importance of each position: minus the mean change over the other bases."""
    channels = ism.shape[1]
    called = onehot.sum(axis=1) > 0
    return np.where(called, -ism.sum(axis=1) / (channels - 1), 0.0)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.ravel(a), np.ravel(b)
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def first_conv(model: nn.Module) -> nn.Conv1d:
    """Return the first 1-D convolution of a sequence model (its filters scan the input)."""
    for module in model.modules():
        if isinstance(module, nn.Conv1d):
            return module
    raise ValueError("the model has no Conv1d layer")


@torch.no_grad()
def filter_motifs(
    model: nn.Module,
    explained: nn.Module,
    onehot: torch.Tensor,
    target: int,
    threshold: float = 0.5,
    min_sites: int = 10,
    influence_on: int = ISM_SEQUENCES,
) -> list[Any]:
    """First-layer filters as PWMs, with their influence on the explained output.

    A filter's sites are the input windows where its activation exceeds ``threshold`` × its
    maximum over the sequences; their base counts make its PPM. Its influence is the mean drop of
    output ``target`` when the filter's activation map is replaced by its mean (Basset-style
    nullification).

    Parameters
    ----------
    model
        The sequence model (its first :class:`torch.nn.Conv1d` is read).
    explained
        The wrapper whose output ``target`` is explained (calls ``model``).
    onehot
        ``(n, 4, length)`` sequences.
    target
        Output index.
    threshold
        Fraction of the maximum activation that marks a site.
    min_sites
        Filters with fewer sites are left out.
    influence_on
        The influence is measured on the first (top-scoring) sequences only.

    Returns
    -------
    list of dlpipe.io.jaspar.Motif
        One per filter kept, with ``info["filter"]`` and ``info["influence"]``.
    """
    conv = first_conv(model)
    captured: dict[str, torch.Tensor] = {}

    def keep(_: nn.Module, __: Any, output: torch.Tensor) -> None:
        captured["act"] = output.detach()

    handle = conv.register_forward_hook(keep)
    try:
        base_out = explained(onehot)[:influence_on, target]
    finally:
        handle.remove()
    act = captured["act"]  # (n, filters, positions)
    width = conv.kernel_size[0]
    pad = conv.padding[0] if isinstance(conv.padding, tuple) else 0
    padded = torch.nn.functional.pad(onehot, (pad, pad + width))
    means = act.mean(dim=(0, 2))
    motifs = []
    for f in range(act.shape[1]):
        a = act[:, f]
        top = float(a.max())
        if top <= 0:
            continue
        seq, pos = torch.nonzero(a > threshold * top, as_tuple=True)
        if len(seq) < min_sites:
            continue
        windows = torch.stack([padded[s, :, p : p + width] for s, p in zip(seq, pos, strict=True)])
        counts = windows.sum(dim=0).T.numpy()  # (width, 4)

        def nullify(_: nn.Module, __: Any, output: torch.Tensor, f: int = f) -> torch.Tensor:
            output = output.clone()
            output[:, f] = means[f]
            return output

        handle = conv.register_forward_hook(nullify)
        try:
            influence = float((base_out - explained(onehot[:influence_on])[:, target]).mean())
        finally:
            handle.remove()
        motifs.append(
            Motif(
                id=f"filter_{f}",
                name=f"filter {f}",
                ppm=ppm_from_counts(counts),
                source="first-layer filter",
                n_sites=len(seq),
                info={
                    "filter": f,
                    "influence": influence,
                    "sequences": len(set(seq.tolist())),
                },
            )
        )
    return motifs


# ----------------------------------------------------------------------------------------------
# Sequence experiments.


def select_sequences(
    oof: pd.DataFrame,
    learner: str,
    meta: Mapping[str, Any],
    n_per_class: int,
    multilabel: bool = False,
) -> pd.DataFrame:
    """Top-scoring held-out sequences of each explained class, from out-of-fold predictions.

    Every class is explained but a genome ``background`` (negatives drawn from the genome), and
    every target of a multi-label task (``multilabel``). Only sequences truly of the class are
    taken.

    Returns
    -------
    pandas.DataFrame
        ``id``, ``fold``, ``class``, ``target`` (output index), ``score``.
    """
    rows = oof[oof["learner"] == learner]
    classes = list(meta["classes"])
    if multilabel:
        explained = list(enumerate(classes))
        truth = {c: rows[f"true_{c}"] == 1 for c in classes}
    else:
        explained = [(i, c) for i, c in enumerate(classes) if c != "background"]
        truth = {c: rows["y_true"] == c for c in classes}
    picks = []
    for index, cls in explained:
        part = rows[truth[cls]].sort_values([f"prob_{cls}", "id"], ascending=[False, True])
        part = part.head(n_per_class)
        picks.append(
            pd.DataFrame(
                {
                    "id": part["id"].astype(str),
                    "fold": part["fold"].astype(int),
                    "class": cls,
                    "target": index,
                    "score": part[f"prob_{cls}"],
                }
            )
        )
    return pd.concat(picks, ignore_index=True)


def explain_sequences(
    models: Mapping[int, nn.Module],
    codes: np.ndarray,
    folds: np.ndarray,
    target: int,
    mode: str,
    settings: Mapping[str, Any],
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Attributions of sequences, each by the model of the fold that held it out.

    Parameters
    ----------
    models
        ``{fold: model}``.
    codes
        ``(n, length)`` ``uint8`` codes.
    folds
        Fold of each sequence.
    target
        Explained output.
    mode
        What is explained (:class:`ExplainedOutput`): ``centred`` logits of classes, ``raw``
        logits of independent targets.
    settings
        The experiment's ``interpret`` config (``ig_steps``, ``references``).
    seed
        Seed of the shuffled references.

    Returns
    -------
    dict
        ``onehot``, ``ig`` and, for models without recurrent layers, ``deeplift_shap``, each
        ``(n, channels, length)``; ``ism`` for the first :data:`ISM_SEQUENCES` sequences (one
        model call per substitution: the costliest method).
    """
    first = next(iter(models.values()))
    onehot = one_hot_of(first, codes)
    out = {"onehot": onehot.numpy(), "ig": np.zeros(tuple(onehot.shape))}
    out["ism"] = np.zeros_like(out["ig"][:ISM_SEQUENCES])
    recurrent = any(has_recurrent_layers(m) for m in models.values())
    if not recurrent:
        out["deeplift_shap"] = np.zeros_like(out["ig"])
    refs = one_hot_of(first, shuffled_references(codes, int(settings["references"]), seed))
    for fold, model in sorted(models.items()):
        rows = np.flatnonzero(folds == fold)
        if len(rows) == 0:
            continue
        explained = ExplainedOutput(model, mode).eval()
        x = onehot[rows]
        out["ig"][rows] = integrated_gradients(explained, x, target, int(settings["ig_steps"]))
        few = rows[rows < ISM_SEQUENCES]
        if len(few):
            out["ism"][few] = in_silico_mutagenesis(explained, onehot[few], target)
        if not recurrent:
            out["deeplift_shap"][rows] = deeplift_shap(explained, x, target, refs)
    return out


def sequence_interpretation(
    exp: Mapping[str, Any],
    task: Any,
    meta: Mapping[str, Any],
    codes_by_id: Mapping[str, np.ndarray],
    oof: pd.DataFrame,
    checkpoints: Mapping[int, str],
    motif_db: Sequence[Any],
) -> dict[str, Any]:
    """Explain a sequence experiment: attributions, seqlet motifs, filter motifs, JASPAR matches.

    Parameters
    ----------
    exp
        The experiment config (``model``, ``interpret``, ``seed``).
    task
        The :class:`dlpipe.tasks.Task` of the data (classification or multi-label).
    meta
        The dataset's ``dataset.json``.
    codes_by_id
        Sequence codes by id (at least the selected ones).
    oof
        Out-of-fold predictions (``oof_predictions.tsv``).
    checkpoints
        ``{fold: model.ckpt}``.
    motif_db
        Motifs to match against (JASPAR and extra files).

    Returns
    -------
    dict
        ``selected`` (table), ``arrays`` per class, ``motifs`` (table of learned motifs and best
        matches), ``motif_objects``, ``agreement``.
    """
    settings = exp["interpret"]
    seed = int(exp["seed"])
    mode = task.explained_output("sequence")
    models = {fold: load_model(path) for fold, path in checkpoints.items()}
    selected = select_sequences(
        oof, exp["model"]["name"], meta, int(settings["n_sequences"]), task.multilabel
    )
    matcher = MotifMatcher(motif_db, seed=seed) if motif_db else None
    arrays, learned, agreement = {}, [], {}
    for (target, cls), part in selected.groupby(["target", "class"], sort=True):
        codes = np.stack([codes_by_id[i] for i in part["id"]])
        folds = part["fold"].to_numpy()
        result = explain_sequences(models, codes, folds, int(target), mode, settings, seed)
        arrays[str(cls)] = {"ids": part["id"].to_numpy(), **result}
        ig = position_contributions(result["ig"])
        agreement[str(cls)] = {
            "ig_vs_ism": _pearson(
                ig[:ISM_SEQUENCES],
                ism_contributions(result["ism"], result["onehot"][:ISM_SEQUENCES]),
            ),
        }
        if "deeplift_shap" in result:
            agreement[str(cls)]["ig_vs_deeplift_shap"] = _pearson(
                ig, position_contributions(result["deeplift_shap"])
            )
        if meta.get("alphabet") == "protein":
            continue  # motifs are searched in nucleotide sequences only
        onehot_lc = result["onehot"].transpose(0, 2, 1)  # (n, length, 4)
        width = int(settings["seqlet_width"])
        seqlets = find_seqlets(ig, width)
        clusters = cluster_seqlets(onehot_lc, ig, seqlets, width)
        several = selected["class"].nunique() > 1
        for motif in clusters:
            motif.info.update(cls=str(cls), seqlets_total=len(seqlets), sequences_total=len(part))
            if several:  # motif ids stay unique across the explained classes
                motif.id = f"{cls}_{motif.id}"
        filters = []
        for fold, model in sorted(models.items()):
            explained = ExplainedOutput(model, mode)
            x = torch.from_numpy(result["onehot"])
            for motif in filter_motifs(model, explained.eval(), x, int(target)):
                motif.id = f"{cls}_fold{fold}_{motif.id}" if several else f"fold{fold}_{motif.id}"
                motif.name = f"fold {fold} {motif.name}"
                motif.info.update(fold=fold, cls=str(cls))
                filters.append(trim_motif(motif))
        filters.sort(key=lambda m: -m.info["influence"])
        # At most max_motifs per class: attribution clusters first, at least two filter slots.
        limit = int(settings["max_motifs"])
        kept_here = clusters[: max(1, limit - 2)]
        learned += kept_here + filters[: limit - len(kept_here)]
    kept = learned
    rows = []
    for motif in kept:
        row = {
            "motif": motif.id,
            "class": motif.info.get("cls", ""),
            "source": motif.source,
            "length": motif.length,
            "sites": motif.n_sites,
            "consensus": motif.consensus,
            "influence": motif.info.get("influence", float("nan")),
        }
        if matcher is not None:
            hits = matcher.match(motif)
            best = hits.iloc[0]
            row.update(
                match_id=best["target_id"],
                match_name=best["target_name"],
                match_source=best["source"],
                match_score=float(best["score"]),
                match_overlap=int(best["overlap"]),
                match_offset=int(best["offset"]),
                match_strand=best["strand"],
                match_p=float(best["p_value"]),
                match_e=float(best["e_value"]),
                match_q=float(best["q_value"]),
            )
            jaspar = hits[hits["source"].str.startswith("JASPAR")]
            if len(jaspar) and jaspar.index[0] != hits.index[0]:
                top = jaspar.iloc[0]
                row.update(
                    jaspar_id=top["target_id"],
                    jaspar_name=top["target_name"],
                    jaspar_e=float(top["e_value"]),
                )
            elif len(jaspar):
                row.update(
                    jaspar_id=best["target_id"],
                    jaspar_name=best["target_name"],
                    jaspar_e=float(best["e_value"]),
                )
        rows.append(row)
    return {
        "selected": selected,
        "arrays": arrays,
        "motifs": pd.DataFrame(rows),
        "motif_objects": kept,
        "agreement": agreement,
    }


# ----------------------------------------------------------------------------------------------
# Tabular experiments.


class _TorchModel:
    """scikit-learn-style view of a fold model for ``permutation_importance``.

    It sees only the ``columns`` of ``full`` under test; the other columns keep their values,
    so shuffling a column of its input shuffles that feature alone.
    """

    def __init__(self, model: nn.Module, full: np.ndarray, columns: np.ndarray) -> None:
        self.model = model
        self.full = full
        self.columns = columns

    def fit(self, X: np.ndarray, y: np.ndarray) -> _TorchModel:  # noqa: N803
        """Do nothing: the model is trained."""
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        """Raw outputs (logits or standardised values) with ``X`` in place of the columns."""
        inputs = self.full.copy()
        inputs[:, self.columns] = X
        return raw_outputs(self.model, inputs)


def _score(categorical: bool, n_classes: int | None) -> Any:
    """Scorer for permutation importance: auROC (mean one-vs-rest) of classes, or mean R²."""

    def scorer(estimator: _TorchModel, X: np.ndarray, y: np.ndarray) -> float:  # noqa: N803
        out = estimator.predict(X)
        if not categorical:
            return float(r2_score(y, out))
        proba = softmax(out)
        present = np.unique(y)
        if len(present) < 2:
            return float("nan")
        if n_classes == 2:
            return float(roc_auc_score(y, proba[:, 1]))
        onehot = np.eye(proba.shape[1])[y]
        cols = [c for c in range(proba.shape[1]) if 0 < onehot[:, c].sum() < len(y)]
        return float(np.mean([roc_auc_score(onehot[:, c], proba[:, c]) for c in cols]))

    return scorer


def tabular_importance(
    exp: Mapping[str, Any],
    task: Any,
    meta: Mapping[str, Any],
    features: pd.DataFrame,
    y: np.ndarray,
    folds: pd.DataFrame,
    checkpoints: Mapping[int, str],
    preprocessors: Mapping[int, Any],
) -> pd.DataFrame:
    """Integrated gradients and permutation importance per class (or target) and feature.

    Parameters
    ----------
    exp
        The experiment config (``interpret``, ``seed``).
    task
        The :class:`dlpipe.tasks.Task` of the data (classification or regression).
    meta
        The dataset's ``dataset.json``.
    features
        Raw feature columns of every sample, indexed by id.
    y
        Class codes or target matrix, aligned with ``features``.
    folds
        The fold table (``id``, ``fold``, ``set``).
    checkpoints, preprocessors
        ``{fold: model.ckpt}`` and ``{fold: FittedPreprocessor}``.

    Returns
    -------
    pandas.DataFrame
        One row per output and feature: ``output``, ``feature``, ``ig`` (mean attribution, over
        the held-out rows of that class for classifiers), ``ig_abs`` (mean absolute attribution
        over all held-out rows), ``permutation`` (mean drop of the score; NaN for features not
        tested) and ``permutation_sd`` (sd over folds), ``folds`` (folds that tested it).
    """
    settings, seed = exp["interpret"], int(exp["seed"])
    outputs = task.outputs(meta)
    position = pd.Series(np.arange(len(features)), index=features.index.astype(str))
    rng = np.random.default_rng(seed)
    records = []
    for fold, path in sorted(checkpoints.items()):
        fitted = preprocessors[fold]
        ids = folds.loc[(folds["fold"] == fold) & (folds["set"] == "test"), "id"].astype(str)
        rows = position.loc[ids].to_numpy()
        if len(rows) > int(settings["n_samples"]):
            rows = np.sort(rng.choice(rows, size=int(settings["n_samples"]), replace=False))
        # Single cells: the deep model reads the scVI latent columns only, not the PCA.
        transformed = fitted.transform(features.iloc[rows])
        X = learner_input(transformed, meta, "model", fitted)  # noqa: N806
        names = [
            fitted.feature_names[i] for i in learner_columns(fitted.feature_names, meta, "model")
        ]
        y_fold = task.scaled_targets(y[rows], fitted)
        model = load_model(path)
        explained = ExplainedOutput(model, task.explained_output("features")).eval()
        x = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        overall = np.zeros(len(names))
        for j, output in enumerate(outputs):
            attr = integrated_gradients(explained, x, j, int(settings["ig_steps"]), batch_size=256)
            mine = y_fold == j if task.categorical else np.ones(len(rows), dtype=bool)
            signed = attr[mine].mean(axis=0) if mine.any() else np.full(len(names), np.nan)
            magnitude = np.abs(attr).mean(axis=0)
            overall += magnitude
            for k, name in enumerate(names):
                records.append((fold, output, name, "ig", float(signed[k])))
                records.append((fold, output, name, "ig_abs", float(magnitude[k])))
        # Shuffling is one model call per feature and repeat: test the most attributed ones.
        tested = np.sort(
            np.argsort(-overall, kind="stable")[: int(settings["permutation_features"])]
        )
        perm = permutation_importance(
            _TorchModel(model, np.asarray(X, dtype=np.float32), tested),
            X[:, tested],
            y_fold,
            scoring=_score(task.categorical, len(outputs) if task.categorical else None),
            n_repeats=int(settings["permutation_repeats"]),
            random_state=seed,
        )
        for k, column in enumerate(tested):
            value = float(perm.importances_mean[k])
            records.append((fold, "all", names[column], "permutation", value))
    frame = pd.DataFrame(records, columns=["fold", "output", "feature", "kind", "value"])
    table = frame.pivot_table(
        index=["output", "feature"], columns="kind", values="value", aggfunc="mean"
    )
    spread = frame[frame["kind"] == "permutation"].groupby("feature")["value"].std(ddof=1)
    counts = frame[frame["kind"] == "permutation"].groupby("feature")["fold"].nunique()
    table = table.reset_index()
    perm_all = table[table["output"] == "all"].set_index("feature")["permutation"]
    out = table[table["output"] != "all"][["output", "feature", "ig", "ig_abs"]].copy()
    out["permutation"] = out["feature"].map(perm_all)
    out["permutation_sd"] = out["feature"].map(spread)
    out["folds"] = out["feature"].map(counts).fillna(0).astype(int)
    order = {name: i for i, name in enumerate(outputs)}
    out = out.sort_values(
        ["output", "ig_abs"], key=lambda c: c.map(order) if c.name == "output" else -c
    )
    return out.reset_index(drop=True)


# ----------------------------------------------------------------------------------------------
# Helpers of the interpret step.


def motif_database(settings: Mapping[str, Any]) -> list[Motif]:
    """JASPAR (release, collection, taxonomic groups of the config) plus the extra motif files."""
    motifs = load_jaspar(
        settings["jaspar_release"], settings["jaspar_collection"], settings["jaspar_tax_groups"]
    )
    for path in settings["motif_files"]:
        motifs += read_jaspar_file(path)
    return motifs
