"""Saliency maps of held-out images: integrated gradients, Grad-CAM and a randomisation check.

For each class, the held-out images explained are the most confident correct predictions and
the most confident wrong ones (chosen from the deep model's test-fold predictions), each
explained by the model of the fold that held it out, on its pixels scaled as that fold scaled
them. What is explained is the predicted class's centred logit ``z_c - mean(z)`` (softmax
logits are defined up to a constant).

- Integrated gradients (captum) from a black image: zero intensity in every channel, the absence
  of signal in fluorescence. Summed over channels, a pixel's attribution is its share of the
  output's change from the black image to this one (they add up to it: the completeness gap,
  captum's convergence delta, is recorded).
- Grad-CAM (captum ``LayerGradCam``, ReLU applied) on the model's last convolutional stage,
  which the model family names (``saliency_layer()``), upsampled bilinearly to the image
  (``LayerAttribution.interpolate``).
- Model randomisation (Adebayo et al., NeurIPS 2018): every weight of a copy of the fold model is
  re-initialised (seeded) and the maps computed again. A map that reflects what the model learned
  changes; one that mostly redraws the image (edges, bright spots) does not. The check reports
  each image's Spearman rank correlation between the trained and the randomised map
  (``|IG|`` summed over channels; Grad-CAM before its ReLU, which often zeroes a random
  model's map entirely).

Like the rest of the interpretation, this runs after evaluation and feeds nothing back.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam
from scipy.stats import spearmanr
from torch import nn

from dlpipe.errors import InputError
from dlpipe.interpret import ExplainedOutput

#: The reference image of integrated gradients, in words (the report and summary say it).
BASELINE = "black image (zero intensity in every channel)"
#: The two kinds of explained image per class: most confident correct, most confident wrong.
KINDS = ("correct", "wrong")
#: Batch of interpolated images per captum forward pass (bounds memory for large images).
INTERNAL_BATCH = 32


#: Cells per side a feature map needs for Grad-CAM to localise anything.
MIN_CAM_SIDE = 4


def select_images(
    oof: pd.DataFrame, learner: str, classes: Sequence[str], n_per_class: int, seed: int = 0
) -> pd.DataFrame:
    """Pick, per true class, the most confident correct and the most confident wrong predictions.

    Parameters
    ----------
    oof
        Test-fold predictions (``id``, ``fold``, ``learner``, ``y_true``, ``y_pred``,
        ``prob_<class>``): each row was predicted by the model of its ``fold``.
    learner
        The deep model's name.
    classes
        Class names, in the order of the model's outputs.
    n_per_class
        Images of each kind (correct, wrong) per class; fewer where a class has fewer.
    seed
        Seed of the draw that breaks ties of probability.

    Returns
    -------
    pandas.DataFrame
        ``id``, ``fold``, ``label``, ``predicted``, ``kind`` (``correct`` / ``wrong``),
        ``target`` (output index of the predicted class, the one explained) and ``prob`` (the
        predicted class's probability). Ties are broken by a seeded draw: the same seed picks
        the same images.
    """
    rows = oof[oof["learner"] == learner].copy()
    rows["y_true"] = rows["y_true"].astype(str)
    rows["y_pred"] = rows["y_pred"].astype(str)
    index = {str(c): i for i, c in enumerate(classes)}
    probs = rows[[f"prob_{c}" for c in classes]].to_numpy(dtype=np.float64)
    rows["prob"] = probs[np.arange(len(rows)), rows["y_pred"].map(index).to_numpy(dtype=int)]
    # A confident model gives many images p = 1.00: a seeded draw, not the names, breaks the
    # ties, so that the picks spread over folds and groups.
    rows = rows.sort_values(["id", "fold"]).reset_index(drop=True)
    rows["draw"] = np.random.default_rng(seed).permutation(len(rows))
    rows = rows.sort_values(["prob", "draw"], ascending=[False, True])
    # One image once: repeated CV predicts an image in several repeats; its most confident row.
    rows = rows.drop_duplicates("id")
    picks = []
    for cls in classes:
        mine = rows[rows["y_true"] == str(cls)]
        right = mine["y_pred"] == str(cls)
        for kind, part in zip(KINDS, (mine[right], mine[~right]), strict=True):
            part = part.head(n_per_class)
            picks.append(
                pd.DataFrame(
                    {
                        "id": part["id"].astype(str),
                        "fold": part["fold"].astype(int),
                        "label": str(cls),
                        "predicted": part["y_pred"],
                        "kind": kind,
                        "target": [index[p] for p in part["y_pred"]],
                        "prob": part["prob"].astype(float),
                    }
                )
            )
    return pd.concat(picks, ignore_index=True)


def check_test_folds(selected: pd.DataFrame, folds: pd.DataFrame) -> None:
    """Refuse any image that the fold explaining it had on its training or validation side.

    Parameters
    ----------
    selected
        ``id`` and ``fold`` of each explained image (:func:`select_images`).
    folds
        The fold table (``fold``, ``id``, ``set``).

    Raises
    ------
    InputError
        If an image is not in the test side of its fold: the predictions and the fold table
        come from different runs.
    """
    table = folds.assign(id=folds["id"].astype(str), fold=folds["fold"].astype(int))
    test = set(map(tuple, table.loc[table["set"] == "test", ["id", "fold"]].to_numpy().tolist()))
    bad = [
        (i, f) for i, f in zip(selected["id"], selected["fold"], strict=True) if (i, f) not in test
    ]
    if bad:
        raise InputError(
            f"images {bad[:3]} are explained by folds that did not hold them out (folds.tsv "
            "and the predictions come from different runs); rerun the workflow from the split"
        )


def target_layer(model: nn.Module) -> nn.Module | None:
    """Return the layer Grad-CAM weighs (the family's ``saliency_layer()``), or ``None``."""
    method = getattr(model, "saliency_layer", None)
    return method() if callable(method) else None


def layer_map_side(model: nn.Module, layer: nn.Module, shape: Sequence[int]) -> int:
    """Return the shorter side of ``layer``'s feature maps for images of ``shape`` (C, H, W)."""
    sides: list[int] = []
    hook = layer.register_forward_hook(lambda _m, _i, out: sides.append(min(out.shape[-2:])))
    try:
        with torch.no_grad():
            model(torch.zeros(1, *shape))
    finally:
        hook.remove()
    return int(sides[0])


def gradcam_layer(model: nn.Module, shape: Sequence[int]) -> tuple[nn.Module | None, str | None]:
    """Return the layer Grad-CAM weighs for images of ``shape``, or ``None`` and why not.

    A ResNet halves a 32-pixel image five times: its last stage's 1 × 1 maps weigh nothing
    against anything, and an upsampled Grad-CAM would be a flat map that looks like an answer.
    """
    layer = target_layer(model)
    if layer is None:
        return None, "the model names no last convolutional stage (saliency_layer())"
    side = layer_map_side(model, layer, shape)
    if side < MIN_CAM_SIDE:
        height, width = shape[-2:]
        return None, (
            f"the last convolutional stage's feature maps are {side} × {side} cells for "
            f"{height} × {width}-pixel images, too coarse to localise anything (Grad-CAM needs "
            f"at least {MIN_CAM_SIDE} × {MIN_CAM_SIDE}; larger images, data.image_size, give "
            "finer maps)"
        )
    return layer, None


def layer_name(model: nn.Module, layer: nn.Module | None) -> str | None:
    """Return the dotted name of ``layer`` inside ``model`` (``encoder.2``, ``backbone.layer4``)."""
    return next((name for name, m in model.named_modules() if m is layer), None)


def randomised(model: nn.Module, seed: int) -> nn.Module:
    """Return a copy of ``model`` with every weight re-initialised (seeded), in eval mode.

    Every module with ``reset_parameters`` draws new weights (batch norms also forget their
    running statistics): the cascade's end point of Adebayo et al. 2018.
    """
    copied = copy.deepcopy(model)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        for module in copied.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
    finally:
        torch.random.set_rng_state(generator_state)
    return copied.eval()


def saliency_maps(
    model: nn.Module, images: torch.Tensor, targets: Sequence[int], n_steps: int = 32
) -> dict[str, np.ndarray]:
    """Integrated gradients (black baseline) and Grad-CAM of one model on a batch of images.

    Parameters
    ----------
    model
        A trained image model returning logits, in eval mode.
    images
        ``(n, C, H, W)`` float images as the model reads them.
    targets
        Output index explained for each image.
    n_steps
        Riemann steps of integrated gradients.

    Returns
    -------
    dict
        ``ig`` ``(n, C, H, W)``; ``delta`` ``(n,)`` completeness gap (attributions' sum minus
        the output's change from the black image); ``gradcam`` ``(n, H, W)`` (zeros where the
        model names no ``saliency_layer`` or its maps are too coarse: :func:`gradcam_layer`)
        and ``gradcam_signed``, the same before the ReLU;
        ``prob`` ``(n,)`` the softmax probability of the target; ``output`` ``(n,)`` the
        explained output.
    """
    explained = ExplainedOutput(model, "centred").eval()
    target = torch.as_tensor(list(targets), dtype=torch.long)
    x = images.detach().clone().requires_grad_(True)
    ig, delta = IntegratedGradients(explained).attribute(
        x,
        baselines=torch.zeros_like(x),
        target=target,
        n_steps=n_steps,
        internal_batch_size=INTERNAL_BATCH,
        return_convergence_delta=True,
    )
    layer, _ = gradcam_layer(model, tuple(images.shape[1:]))
    if layer is None:
        signed = torch.zeros(images.shape[0], *images.shape[2:])
    else:
        cam = LayerGradCam(explained, layer).attribute(x, target=target, relu_attributions=False)
        size = tuple(images.shape[2:])
        signed = LayerAttribution.interpolate(cam, size, interpolate_mode="bilinear")[:, 0]
    with torch.no_grad():
        logits = model(images)
        prob = torch.softmax(logits, dim=1).gather(1, target[:, None])[:, 0]
        output = explained(images).gather(1, target[:, None])[:, 0]
    return {
        "ig": ig.detach().numpy(),
        "delta": delta.detach().numpy(),
        "gradcam": torch.relu(signed).detach().numpy(),
        "gradcam_signed": signed.detach().numpy(),
        "prob": prob.numpy(),
        "output": output.numpy(),
    }


def where_map(ig: np.ndarray) -> np.ndarray:
    """Return ``(n, H, W)`` attribution magnitude: ``|IG|`` summed over channels."""
    return np.abs(ig).sum(axis=1)


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman correlation of two maps over pixels (NaN where either map is constant)."""
    a, b = np.ravel(a), np.ravel(b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def attribution_mass(maps: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Share of each map's absolute attribution inside ``mask`` (``(n, H, W)`` or ``(H, W)``)."""
    maps = np.abs(np.asarray(maps, dtype=np.float64))
    mask = np.broadcast_to(np.asarray(mask, dtype=bool), maps.shape)
    total = maps.reshape(len(maps), -1).sum(axis=1)
    inside = np.where(mask, maps, 0).reshape(len(maps), -1).sum(axis=1)
    return np.divide(inside, total, out=np.full(len(maps), np.nan), where=total > 0)


def explain_images(
    models: Mapping[int, nn.Module],
    pixels: np.ndarray,
    folds: np.ndarray,
    targets: np.ndarray,
    n_steps: int = 32,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Saliency maps of held-out images, each by the model of the fold that held it out.

    Parameters
    ----------
    models
        ``{fold: model}``.
    pixels
        ``(n, C, H, W)`` float32 images, each scaled as its own fold scaled its images.
    folds
        The test fold of each image: the only model allowed to explain it.
    targets
        Output index explained for each image (its predicted class).
    n_steps
        Riemann steps of integrated gradients.
    seed
        Seed of the re-initialised weights of the randomisation check (fold ``f``: ``seed + f``).

    Returns
    -------
    dict
        ``ig`` ``(n, C, H, W)``, ``gradcam`` ``(n, H, W)``, ``delta``, ``prob`` and ``output``
        ``(n,)`` (:func:`saliency_maps`); ``fold_used`` ``(n,)``, the fold whose model explained
        each image; ``ig_random`` and ``gradcam_random`` ``(n, H, W)``, the maps of the
        randomised model; ``rho_ig`` and ``rho_gradcam`` ``(n,)``, their Spearman correlation
        with the trained model's (``|IG|`` summed over channels; Grad-CAM before its ReLU).
    """
    n, _, height, width = pixels.shape
    out = {
        "ig": np.zeros(pixels.shape, dtype=np.float32),
        "gradcam": np.zeros((n, height, width), dtype=np.float32),
        "ig_random": np.zeros((n, height, width), dtype=np.float32),
        "gradcam_random": np.zeros((n, height, width), dtype=np.float32),
        "fold_used": np.full(n, -1, dtype=np.int64),
        **{k: np.full(n, np.nan) for k in ("delta", "prob", "output", "rho_ig", "rho_gradcam")},
    }
    folds = np.asarray(folds, dtype=np.int64)
    missing = sorted(set(folds.tolist()) - set(models))
    if missing:
        raise InputError(f"no model of fold(s) {missing}, which held out explained images")
    for fold in sorted(set(folds.tolist())):
        rows = np.flatnonzero(folds == fold)
        x = torch.from_numpy(np.ascontiguousarray(pixels[rows], dtype=np.float32))
        wanted = [int(t) for t in np.asarray(targets)[rows]]
        trained = saliency_maps(models[fold], x, wanted, n_steps)
        control = saliency_maps(randomised(models[fold], seed + fold), x, wanted, n_steps)
        for key in ("ig", "gradcam", "delta", "prob", "output"):
            out[key][rows] = trained[key]
        out["fold_used"][rows] = fold
        out["ig_random"][rows] = where_map(control["ig"])
        out["gradcam_random"][rows] = control["gradcam"]
        for k, row in enumerate(rows):
            out["rho_ig"][row] = rank_correlation(
                where_map(trained["ig"][[k]]), out["ig_random"][row]
            )
            # Before the ReLU: a randomised model's Grad-CAM is often all negative, hence all
            # zero after it, and a rank correlation with a constant map is undefined.
            out["rho_gradcam"][row] = rank_correlation(
                trained["gradcam_signed"][k], control["gradcam_signed"][k]
            )
    return out


def _spread(values: np.ndarray) -> dict[str, float | int | None]:
    """Median, median magnitude, range and count of the finite values (``None``: none)."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if not len(finite):
        return {"median": None, "median_abs": None, "min": None, "max": None, "n": 0}
    return {
        "median": float(np.median(finite)),
        # A map as strongly anti-correlated (a random head flips a signed map) is no more
        # independent of the image than a correlated one.
        "median_abs": float(np.median(np.abs(finite))),
        "min": float(finite.min()),
        "max": float(finite.max()),
        "n": len(finite),
    }


def image_saliency(
    exp: Mapping[str, Any],
    classes: Sequence[str],
    ids: np.ndarray,
    images: np.ndarray,
    folds: pd.DataFrame,
    oof: pd.DataFrame,
    models: Mapping[int, nn.Module],
    scalers: Mapping[int, Any],
) -> dict[str, Any]:
    """Explain an image experiment: pick held-out images, map them, check the maps.

    Parameters
    ----------
    exp
        The experiment config (``model.name``, ``interpret.n_images``, ``interpret.ig_steps``,
        ``seed``).
    classes
        Class names in the order of the model's outputs.
    ids
        Image ids, in the order of ``images``.
    images
        ``(N, C, H, W)`` pixels of every image in their own dtype (the memory-mapped store).
    folds
        The fold table (``fold``, ``id``, ``set``).
    oof
        The deep model's and baselines' test-fold predictions.
    models
        ``{fold: model}``.
    scalers
        ``{fold: fitted input}`` whose ``transform`` scales pixels as the fold did.

    Returns
    -------
    dict
        ``selected`` (table of the images with their numbers), ``arrays`` (pixels and maps),
        ``facts`` (what the summary records).
    """
    settings = exp["interpret"]
    selected = select_images(
        oof, exp["model"]["name"], classes, int(settings["n_images"]), int(exp["seed"])
    )
    check_test_folds(selected, folds)
    position = pd.Series(np.arange(len(ids)), index=pd.Index(np.asarray(ids, dtype=str)))
    rows = position.loc[selected["id"]].to_numpy()
    if len(rows):
        pixels = np.concatenate(
            [
                scalers[f].transform(np.asarray(images[[r]]))
                for r, f in zip(rows, selected["fold"], strict=True)
            ]
        )
    else:
        pixels = np.zeros((0, *images.shape[1:]), dtype=np.float32)
    maps = explain_images(
        models,
        pixels,
        selected["fold"].to_numpy(),
        selected["target"].to_numpy(),
        int(settings["ig_steps"]),
        int(exp["seed"]),
    )
    table = selected.assign(
        fold_used=maps["fold_used"],
        model_prob=maps["prob"],
        ig_delta=maps["delta"],
        rho_ig=maps["rho_ig"],
        rho_gradcam=maps["rho_gradcam"],
    )
    first = models[min(models)]
    module, gradcam_skipped = gradcam_layer(first, tuple(images.shape[1:]))
    layer = layer_name(first, module) if module is not None else None
    explained_output = np.abs(maps["output"])
    facts = {
        "images": len(table),
        "per_class": {
            str(c): {k: int(((table["label"] == c) & (table["kind"] == k)).sum()) for k in KINDS}
            for c in classes
        },
        "n_images": int(settings["n_images"]),
        "baseline": BASELINE,
        "ig_steps": int(settings["ig_steps"]),
        "gradcam_layer": layer,
        "gradcam_skipped": gradcam_skipped,
        "folds": sorted({int(f) for f in table["fold_used"]}),
        # Largest completeness gap relative to the explained output's size.
        "ig_delta_max": float(np.max(np.abs(maps["delta"]))) if len(table) else None,
        "output_max": float(explained_output.max()) if len(table) else None,
        # The model that explained an image gives the probability the evaluate step recorded.
        "prob_difference_max": float(np.max(np.abs(table["model_prob"] - table["prob"])))
        if len(table)
        else None,
        "randomisation": {
            "ig": _spread(maps["rho_ig"]),
            "gradcam": _spread(maps["rho_gradcam"]) if layer else None,
        },
    }
    arrays = {"ids": table["id"].to_numpy(dtype=str), "pixels": pixels.astype(np.float32)}
    arrays |= {k: maps[k] for k in ("ig", "gradcam", "ig_random", "gradcam_random")}
    return {"selected": table, "arrays": arrays, "facts": facts}
