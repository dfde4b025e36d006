"""What the deep model learned: attributions, motifs and feature importance.

Sequences: for the top-scoring held-out sequences of each class (chosen from the out-of-fold
predictions, each explained by the fold model that never trained on it) dlpipe computes

- integrated gradients (captum) from a uniform reference (0.25 per base) — the attribution of a
  position is then the gradient at its base minus the mean gradient over the four bases, summed
  along the path;
- DeepLiftShap (captum's DeepLift rules) of each sequence against dinucleotide-shuffled copies
  of itself (residue-shuffled for proteins; models without recurrent layers);
- in-silico mutagenesis: every single-base substitution, scored by the model.

The model takes ``uint8`` codes and expands them to one-hot inside (``model.one_hot``); a float
input is taken as one-hot already, so attributions are computed with respect to the one-hot
tensor. The explained output of class ``c`` is ``z_c - mean(z)`` (softmax logits are defined up
to a constant; for two classes it is half the log-odds), or the logit of a target for
multi-label models. Integrated gradients feed the motif search (:mod:`dlpipe.motifs`):
seqlets called by tangermeme's recursive caller at an estimated false discovery rate (its null:
the integrated gradients of dinucleotide-shuffled copies of the sequences) and clustered into
motifs, and first-layer filters turned into PWMs with their influence (the drop in the explained
output when a filter is replaced by its mean activation); each is compared with JASPAR (and any
extra motif files) by TOMTOM, and a match is named only where its q-value is below
``interpret.match_q``.

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
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from captum.attr import DeepLift, IntegratedGradients
from sklearn.inspection import permutation_importance
from sklearn.metrics import r2_score, roc_auc_score
from torch import nn

from dlpipe.datasets import learner_columns, learner_input
from dlpipe.io.jaspar import Motif, load_jaspar, ppm_from_counts, read_jaspar_file
from dlpipe.metrics import softmax
from dlpipe.models.checkpoint import load_model, raw_outputs
from dlpipe.motifs import (
    MATCH_COVERAGE,
    MATCH_Q,
    MotifMatcher,
    best_match,
    call_seqlets,
    cluster_seqlets,
    information_content,
    trim_motif,
)
from dlpipe.shuffle import dinucleotide_shuffle

log = logging.getLogger(__name__)
#: Sequences (the top-scoring ones) explained by in-silico mutagenesis and used for filter
#: influence; both take one model call per variant.
ISM_SEQUENCES = 50
#: Dinucleotide-shuffled copies of each explained sequence whose attributions are the null of
#: the seqlet caller (its false discovery rate is estimated from them).
SEQLET_CONTROLS = 2


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


def shuffled_copies(codes: np.ndarray, n: int, seed: int, alphabet: str = "dna") -> np.ndarray:
    """``n`` shuffled copies of every sequence: dinucleotide shuffles, or residue shuffles.

    DNA and RNA keep each sequence's exact dinucleotide counts (and first and last base), the
    field's reference for DeepLiftShap and its control for seqlets: composition and CpG-like
    doublets stay, motifs go. Proteins are shuffled residue by residue (amino-acid composition
    kept): there is no agreed doublet null for them, and a 21-symbol doublet graph of a short
    sequence leaves few distinct Eulerian paths.

    Parameters
    ----------
    codes
        ``(m, length)`` ``uint8`` codes.
    n
        Copies per sequence.
    seed
        Seed of the shuffles (0 is a seed like any other).
    alphabet
        ``dna``, ``rna`` or ``protein``.

    Returns
    -------
    numpy.ndarray
        ``(n, m, length)`` codes: copy ``k`` of sequence ``i`` at ``[k, i]``.
    """
    rng = np.random.default_rng(seed)
    codes = np.asarray(codes, dtype=np.uint8)
    if alphabet == "protein":
        return np.stack([rng.permuted(codes, axis=1) for _ in range(n)])
    return np.stack([dinucleotide_shuffle(codes, rng) for _ in range(n)])


def has_recurrent_layers(model: nn.Module) -> bool:
    """Whether the model holds an RNN/LSTM/GRU (DeepLift rules do not cover them)."""
    return any(isinstance(m, nn.RNNBase) for m in model.modules())


def deeplift_shap(
    model: nn.Module,
    onehot: torch.Tensor,
    target: int,
    references: torch.Tensor,
    batch_size: int = 64,
) -> np.ndarray:
    """DeepLiftShap attributions (captum's DeepLift rules), each sequence against its references.

    DeepLiftShap is the mean of DeepLift over the references; every sequence is explained
    against shuffled copies of itself (:func:`shuffled_copies`), as the DeepLIFT and TF-MoDISco
    workflows do, so the references share its composition.

    Parameters
    ----------
    model
        Maps one-hot input to outputs; its ReLUs must be distinct modules (dlpipe's are).
    onehot
        ``(n, channels, length)`` sequences.
    target
        Output index explained.
    references
        ``(r, n, channels, length)`` one-hot references: ``references[k, i]`` is reference
        ``k`` of sequence ``i``.
    batch_size
        Sequences per captum call.

    Returns
    -------
    numpy.ndarray
        ``(n, channels, length)`` attributions; those of a sequence sum to its output minus the
        mean output of its references.
    """
    method = DeepLift(model)
    parts = []
    for i in range(0, len(onehot), batch_size):
        total = torch.zeros_like(onehot[i : i + batch_size])
        for reference in references:
            x = onehot[i : i + batch_size].clone().requires_grad_(True)
            attr = method.attribute(x, baselines=reference[i : i + batch_size], target=target)
            total += attr.detach()
        parts.append((total / len(references)).numpy())
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
    alphabet: str = "dna",
    controls: int = 0,
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
        Seed of the shuffled references and controls.
    alphabet
        ``dna``, ``rna`` or ``protein``: how references and controls are shuffled
        (:func:`shuffled_copies`).
    controls
        Shuffled copies of each sequence explained by integrated gradients as well: the null
        of the seqlet caller (:func:`dlpipe.motifs.call_seqlets`).

    Returns
    -------
    dict
        ``onehot``, ``ig`` and, for models without recurrent layers, ``deeplift_shap``, each
        ``(n, channels, length)``; ``ism`` for the first :data:`ISM_SEQUENCES` sequences (one
        model call per substitution: the costliest method); with ``controls``,
        ``ig_control``: ``(controls, n, length)`` position contributions of the shuffles.
    """
    first = next(iter(models.values()))
    onehot = one_hot_of(first, codes)
    n, channels, length = onehot.shape
    out = {"onehot": onehot.numpy(), "ig": np.zeros(tuple(onehot.shape))}
    out["ism"] = np.zeros_like(out["ig"][:ISM_SEQUENCES])
    recurrent = any(has_recurrent_layers(m) for m in models.values())
    refs = None
    if not recurrent:
        out["deeplift_shap"] = np.zeros_like(out["ig"])
        r = int(settings["references"])
        shuffled = shuffled_copies(codes, r, seed, alphabet).reshape(r * n, length)
        refs = one_hot_of(first, shuffled).view(r, n, channels, length)
    shams = None
    if controls:
        # Another stream than the references': the null is not the reference set itself.
        shuffled = shuffled_copies(codes, controls, seed + 1, alphabet)
        shams = one_hot_of(first, shuffled.reshape(controls * n, length))
        shams = shams.view(controls, n, channels, length)
        out["ig_control"] = np.zeros((controls, n, length))
    for fold, model in sorted(models.items()):
        rows = np.flatnonzero(folds == fold)
        if len(rows) == 0:
            continue
        explained = ExplainedOutput(model, mode).eval()
        x = onehot[rows]
        steps = int(settings["ig_steps"])
        out["ig"][rows] = integrated_gradients(explained, x, target, steps)
        few = rows[rows < ISM_SEQUENCES]
        if len(few):
            out["ism"][few] = in_silico_mutagenesis(explained, onehot[few], target)
        if refs is not None:
            index = torch.from_numpy(rows)
            out["deeplift_shap"][rows] = deeplift_shap(explained, x, target, refs[:, index])
        if shams is not None:
            sham = shams[:, torch.from_numpy(rows)].reshape(-1, channels, length)
            attr = integrated_gradients(explained, sham, target, steps)
            out["ig_control"][:, rows] = position_contributions(attr).reshape(controls, -1, length)
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
    alphabet = str(meta.get("alphabet", "dna"))
    nucleotides = alphabet != "protein"
    arrays, learned, agreement = {}, [], {}
    for (target, cls), part in selected.groupby(["target", "class"], sort=True):
        codes = np.stack([codes_by_id[i] for i in part["id"]])
        folds = part["fold"].to_numpy()
        result = explain_sequences(
            models,
            codes,
            folds,
            int(target),
            mode,
            settings,
            seed,
            alphabet,
            controls=SEQLET_CONTROLS if nucleotides else 0,
        )
        control = result.pop("ig_control", None)
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
        if not nucleotides:
            continue  # motifs are searched in nucleotide sequences only
        onehot_lc = result["onehot"].transpose(0, 2, 1)  # (n, length, 4)
        width = int(settings["seqlet_width"])
        seqlets = call_seqlets(
            ig, control.reshape(-1, control.shape[-1]), width, float(settings["seqlet_fdr"])
        )
        log.info("%s: %d seqlets in %d sequences", cls, len(seqlets), len(part))
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
    return {
        "selected": selected,
        "arrays": arrays,
        "motifs": motif_table(
            learned, motif_db, float(settings["match_q"]), float(settings["match_coverage"])
        ),
        "motif_objects": learned,
        "agreement": agreement,
    }


def motif_table(
    motifs: Sequence[Motif],
    motif_db: Sequence[Motif],
    match_q: float = MATCH_Q,
    match_coverage: float = MATCH_COVERAGE,
) -> pd.DataFrame:
    """One row per learned motif with its TOMTOM match, named only where significant.

    Parameters
    ----------
    motifs
        Learned motifs (seqlet clusters, first-layer filters).
    motif_db
        Motifs matched against (JASPAR and extra files); empty: no match columns.
    match_q
        A match is named where its Benjamini-Hochberg q-value (over the targets) is below this
    match_coverage
        and its alignment covers at least this share of the target's information content.

    Returns
    -------
    pandas.DataFrame
        ``motif``, ``class``, ``source``, ``length``, ``sites``, ``consensus``, ``bits`` (total
        information content: TOMTOM's Euclidean score lets motifs of few bits match long
        profiles with weak columns), ``influence``;
        with a database also ``match`` (``ID NAME`` or ``no significant match``), the
        significant match's ``match_id``, ``match_name``, ``match_source``, ``match_score``,
        ``match_overlap``, ``match_offset``, ``match_strand``, ``match_p``, ``match_e`` and
        ``match_q``, ``match_coverage`` (empty when none), ``best_q`` and ``best_coverage``
        (of the best candidate, named or not), ``significant_matches`` (targets with q below
        ``match_q``) and the best JASPAR match worth naming: ``jaspar_id``, ``jaspar_name``,
        ``jaspar_e``, ``jaspar_q``.
    """
    hits_all = MotifMatcher(motif_db).match_all(motifs) if motif_db else [None] * len(motifs)
    rows = []
    for motif, hits in zip(motifs, hits_all, strict=True):
        row: dict[str, Any] = {
            "motif": motif.id,
            "class": motif.info.get("cls", ""),
            "source": motif.source,
            "length": motif.length,
            "sites": motif.n_sites,
            "consensus": motif.consensus,
            "bits": float(information_content(motif.ppm).sum()),
            "influence": motif.info.get("influence", float("nan")),
        }
        if hits is not None:
            best = best_match(hits, match_q, match_coverage)
            row["match"] = "no significant match"
            for key in _MATCH_COLUMNS:
                row[f"match_{key}"] = None
            if best is not None:
                row["match"] = f"{best['target_id']} {best['target_name']}"
                row.update({f"match_{key}": best[column] for key, column in _MATCH_COLUMNS.items()})
            row["best_q"] = float(hits.iloc[0]["q_value"])
            row["best_coverage"] = float(hits.iloc[0]["coverage"])
            row["significant_matches"] = int((hits["q_value"] < match_q).sum())
            jaspar = best_match(
                hits[hits["source"].str.startswith("JASPAR")], match_q, match_coverage
            )
            row.update(
                jaspar_id=None if jaspar is None else jaspar["target_id"],
                jaspar_name=None if jaspar is None else jaspar["target_name"],
                jaspar_e=None if jaspar is None else float(jaspar["e_value"]),
                jaspar_q=None if jaspar is None else float(jaspar["q_value"]),
            )
        rows.append(row)
    return pd.DataFrame(rows)


#: Columns of a significant match in :func:`motif_table` (``match_KEY``) and of TOMTOM's hits.
_MATCH_COLUMNS = {
    "id": "target_id",
    "name": "target_name",
    "source": "source",
    "score": "score",
    "overlap": "overlap",
    "offset": "offset",
    "strand": "strand",
    "p": "p_value",
    "e": "e_value",
    "q": "q_value",
    "coverage": "coverage",
}


# ----------------------------------------------------------------------------------------------
# Tabular experiments.


class _FoldExplanation(NamedTuple):
    """One fold's model with the held-out rows it explained, for permutation importance."""

    fold: int
    model: nn.Module
    X: np.ndarray  # the rows as the model reads them
    names: list[str]
    y: np.ndarray  # class codes or standardised targets
    magnitude: np.ndarray  # mean absolute attribution per feature, summed over outputs


def _scorable(categorical: bool, y: np.ndarray) -> bool:
    """Whether one fold's held-out rows can score a model (two classes; three rows for R²)."""
    return len(np.unique(y)) > 1 if categorical else len(y) > 2


def _pooled_permutation(
    explained: Sequence[_FoldExplanation],
    scorer: Any,
    n_features: int,
    repeats: int,
    seed: int,
) -> list[tuple[int, str, str, str, float]]:
    """Permutation importance over the pooled held-out rows of all folds, each by its own model.

    For leave-one-out and other plans whose folds are too small to score alone. A feature's
    column is shuffled across all pooled rows (each in its own fold's scale) and the pooled
    score's drop is the importance; the features tested are those every fold kept, the most
    attributed first. One record per repeat, so the spread is over repeats.
    """
    common = [n for n in explained[0].names if all(n in f.names for f in explained)]
    overall = pd.Series(0.0, index=common)
    for f in explained:
        overall += pd.Series(f.magnitude, index=f.names).reindex(common)
    tested = list(overall.sort_values(ascending=False, kind="stable").index[:n_features])
    pooled = _PooledModels([(f.model, f.X, [f.names.index(t) for t in tested]) for f in explained])
    y = np.concatenate([f.y for f in explained])
    perm = permutation_importance(
        pooled, pooled.columns(), y, scoring=scorer, n_repeats=repeats, random_state=seed
    )
    return [
        (r, "all", name, "permutation", float(perm.importances[k, r]))
        for k, name in enumerate(tested)
        for r in range(repeats)
    ]


class _PooledModels:
    """scikit-learn-style view of all fold models over their pooled held-out rows.

    Row block ``i`` of the pooled input belongs to fold ``i`` and is predicted by its model;
    only the tested columns vary, the others keep each row's values.
    """

    def __init__(self, folds: Sequence[tuple[nn.Module, np.ndarray, list[int]]]) -> None:
        self.folds = folds

    def columns(self) -> np.ndarray:
        """Return the pooled rows' values of the tested columns."""
        return np.concatenate([X[:, cols] for _, X, cols in self.folds])

    def fit(self, X: np.ndarray, y: np.ndarray) -> _PooledModels:  # noqa: N803
        """Do nothing: the models are trained."""
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        """Raw outputs of each row's own fold model, with ``X`` in place of the tested columns."""
        out, start = [], 0
        for model, full, cols in self.folds:
            inputs = full.copy()
            inputs[:, cols] = X[start : start + len(full)]
            start += len(full)
            out.append(raw_outputs(model, inputs))
        return np.concatenate(out)


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
        tested) and ``permutation_sd`` (sd over folds), ``folds`` (folds that tested it),
        ``permutation_scope`` (``per fold``; ``pooled`` where a fold's held-out rows cannot
        be scored alone, as in leave-one-out: then one score over all held-out rows, each
        predicted by its own fold's model, and the sd is over shuffles).
    """
    settings, seed = exp["interpret"], int(exp["seed"])
    outputs = task.outputs(meta)
    position = pd.Series(np.arange(len(features)), index=features.index.astype(str))
    rng = np.random.default_rng(seed)
    records = []
    explained_folds = []
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
        explained_folds.append(
            _FoldExplanation(fold, model, np.asarray(X, dtype=np.float32), names, y_fold, overall)
        )
    scorer = _score(task.categorical, len(outputs) if task.categorical else None)
    n_features, repeats = (
        int(settings["permutation_features"]),
        int(settings["permutation_repeats"]),
    )
    per_fold = all(_scorable(task.categorical, f.y) for f in explained_folds)
    if per_fold:
        for f in explained_folds:
            # Shuffling is one model call per feature and repeat: test the most attributed ones.
            tested = np.sort(np.argsort(-f.magnitude, kind="stable")[:n_features])
            perm = permutation_importance(
                _TorchModel(f.model, f.X, tested), f.X[:, tested], f.y, scoring=scorer,
                n_repeats=repeats, random_state=seed,
            )  # fmt: skip
            for k, column in enumerate(tested):
                value = float(perm.importances_mean[k])
                records.append((f.fold, "all", f.names[column], "permutation", value))
    else:
        records.extend(_pooled_permutation(explained_folds, scorer, n_features, repeats, seed))
    frame = pd.DataFrame(records, columns=["fold", "output", "feature", "kind", "value"])
    table = frame.pivot_table(
        index=["output", "feature"], columns="kind", values="value", aggfunc="mean"
    ).reindex(columns=["ig", "ig_abs", "permutation"])
    spread = frame[frame["kind"] == "permutation"].groupby("feature")["value"].std(ddof=1)
    counts = frame[frame["kind"] == "permutation"].groupby("feature")["fold"].nunique()
    table = table.reset_index()
    perm_all = table[table["output"] == "all"].set_index("feature")["permutation"]
    out = table[table["output"] != "all"][["output", "feature", "ig", "ig_abs"]].copy()
    out["permutation"] = out["feature"].map(perm_all)
    out["permutation_sd"] = out["feature"].map(spread)
    out["folds"] = (
        out["feature"].map(counts).fillna(0).astype(int)
        if per_fold
        else np.where(out["permutation"].notna(), len(explained_folds), 0)
    )
    # per fold: mean and sd over folds; pooled: one score over all held-out rows, sd over
    # the shuffles (leave-one-out and other folds too small to score alone).
    out["permutation_scope"] = "per fold" if per_fold else "pooled"
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
