"""The report's section on what an image model learned: saliency maps and their sanity check.

Everything is read from the interpret step's files (``summary.json``, ``saliency.tsv``,
``saliency.png``); the text is generated from their numbers and says no more than the maps show.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from dlpipe.io.files import read_json
from dlpipe.report.render import anchor, fmt, image, section, table

#: Median magnitude of the rank correlation between the maps of the trained and the randomised
#: model at or above which the maps follow the image as much as the model (Adebayo et al. 2018
#: saw such values for gradient × input-like methods), and below which they clearly depend on
#: the learned weights. The two thresholds are dlpipe's reading, not the paper's. Magnitude: a
#: randomised head may flip a signed map's sign.
SIMILAR, DIFFERENT = 0.5, 0.2


def randomisation_verdict(method: str, spread: Mapping[str, Any] | None) -> str:
    """One sentence on how much ``method``'s maps changed when the weights were randomised."""
    if not spread or spread.get("median") is None:
        return f"{method}: no rank correlation defined (constant maps)."
    size = spread.get("median_abs", abs(spread["median"]))
    numbers = (
        f"median ρ = {fmt(spread['median'], 2)} (range {fmt(spread['min'], 2)} to "
        f"{fmt(spread['max'], 2)}, median |ρ| = {fmt(size, 2)}, {spread['n']} images)"
    )
    if size >= SIMILAR:
        return (
            f"{method}: {numbers}; the randomised model's maps rank pixels much like (or "
            "opposite to) the trained model's, so these maps follow the image's own structure "
            "as much as what the model learned: read them with care."
        )
    if size >= DIFFERENT:
        return (
            f"{method}: {numbers}; the maps change partly when the weights are randomised: part "
            "of what they show is the image's own structure."
        )
    return (
        f"{method}: {numbers}; the maps change when the weights are randomised, as maps of "
        "what the model learned must (a necessary check, not proof of what the model uses)."
    )


def image_interpretation(folder: Path, name: str) -> dict[str, Any] | None:
    """Saliency maps of held-out images, how they were made and their randomisation check."""
    if not (folder / "saliency.tsv").is_file():
        return None
    summary = read_json(folder / "summary.json")
    chosen = pd.read_csv(folder / "saliency.tsv", sep="\t", dtype={"id": str, "label": str})
    gradcam = summary.get("gradcam_layer")
    wrong = int((chosen["kind"] == "wrong").sum())
    shown = pd.DataFrame(
        {
            "image": chosen["id"],
            "true class": chosen["label"],
            "predicted (p)": [
                f"{p} ({fmt(float(q), 2)})"
                for p, q in zip(chosen["predicted"], chosen["prob"], strict=True)
            ],
            "held out by fold": chosen["fold"],
            "IG ρ vs randomised": [fmt(float(v), 2) for v in chosen["rho_ig"]],
            **(
                {"Grad-CAM ρ vs randomised": [fmt(float(v), 2) for v in chosen["rho_gradcam"]]}
                if gradcam
                else {}
            ),
        }
    )
    per_class = "; ".join(
        f"{cls}: {c['correct']} correct, {c['wrong']} wrong"
        for cls, c in summary["per_class"].items()
    )
    randomisation = summary["randomisation"]
    checks = [randomisation_verdict("Integrated gradients", randomisation["ig"])]
    if gradcam:
        checks.append(randomisation_verdict("Grad-CAM", randomisation["gradcam"]))
    caption = (
        f"Saliency of {len(chosen)} held-out images ({wrong} wrongly predicted): the image "
        "(each channel contrast-stretched for display), integrated gradients summed over "
        "channels (red: for the predicted class, blue: against)"
        + (f" and Grad-CAM of {gradcam}" if gradcam else "")
        + ", overlaid on the image; each map is scaled on its own (integrated gradients to the "
        "99th percentile of their magnitude, Grad-CAM to its maximum). Titles: true class, "
        "predicted class, its probability and the held-out fold whose model made the map."
    )
    figure = (
        image(folder / "saliency.png", "saliency maps", caption)
        if (folder / "saliency.png").is_file()
        else None
    )
    return section(
        "saliency.html.j2",
        "What the model learned",
        anchor(name, "learned"),
        images=len(chosen),
        n_images=summary["n_images"],
        per_class=per_class,
        folds=", ".join(str(f) for f in summary["folds"]),
        baseline=summary["baseline"],
        ig_steps=summary["ig_steps"],
        delta=fmt(summary.get("ig_delta_max"), 3),
        output=fmt(summary.get("output_max"), 2),
        gradcam=gradcam,
        gradcam_skipped=summary.get("gradcam_skipped"),  # why, as the interpret step said
        checks=checks,
        table=table(shown) if len(shown) else None,
        figure=figure,
    )
