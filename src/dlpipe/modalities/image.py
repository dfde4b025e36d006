"""Images: a folder of class sub-folders, or a table of image paths with labels and groups.

The prepare step lists the images (:mod:`dlpipe.image_listing`: every file readable, one
channel count and bit depth, classes and groups able to fill the folds), then decodes each once
into a memory-mapped store beside the dataset (:mod:`dlpipe.image_store`, ``images.npy``:
``(N, C, H, W)`` ``uint8``/``uint16``, resized to ``data.image_size`` by antialiased bilinear
interpolation where one is given). Groups (patient, slide, region: ``data.group_column`` of a
table, or the folders below each class folder with ``data.group_level``) keep related images on
one side of every split under ``cv.plan: group_kfold``.

Per fold, each side is its rows of the store (:class:`dlpipe.image_store.StoreImages`), read and
scaled to float32 in [0, 1] a batch at a time; the only thing fitted is the intensity scale of
16-bit images (the training side's brightest pixel; 8-bit images are divided by 255). Training
batches, and only they, are augmented on the device (random flips,
90° rotations, ±10 % intensity: :func:`dlpipe.train.augment_images`). The deep model is the
small residual CNN by default (``smallcnn``: 0.4 million parameters, trained from scratch in
minutes on a CPU, where a ResNet-18 has 11 million and needs pretrained weights or far more
images to beat it); a ResNet with ImageNet weights is ``model.name: resnet``. The baseline is
the task's linear model (or a random forest) on the block means of the pixels
(:mod:`dlpipe.pixels`). The interpret step draws saliency maps of held-out images, each by
its own test fold's model (:mod:`dlpipe.image_saliency`): integrated gradients from a black
image and Grad-CAM, with a model-randomisation check beside them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from dlpipe.cv import CHROMOSOME_PLANS
from dlpipe.datasets import ID_INDEX, IMAGE_STORE, ImageDataset, check_class_sizes
from dlpipe.errors import ConfigError, InputError
from dlpipe.image_listing import (
    images_below,
    list_image_folder,
    list_image_table,
    table_image_files,
)
from dlpipe.image_store import sidecar, write_image_store
from dlpipe.io.files import read_json, read_predictions, sha256
from dlpipe.io.fitted import load_fitted
from dlpipe.io.images import check_same_kind, probe_image, read_image
from dlpipe.io.tables import read_table
from dlpipe.modalities.base import Modality
from dlpipe.tasks import Task

#: Blocks per side of the pixel baseline's grid (8 × 8 block means per channel).
PIXEL_GRID = 8


def _folds_to_fill(cv: Mapping[str, Any]) -> int | None:
    """Folds every class (and, under a group plan, the groups) must fill; ``None``: no check."""
    return None if cv["plan"] in ("holdout", "leave_one_out") else int(cv["n_splits"])


def list_images(exp: Mapping[str, Any], name: str = "experiment") -> pd.DataFrame:
    """List and check an experiment's images (``data.path``: a folder or a table).

    Parameters
    ----------
    exp
        The experiment's validated config.
    name
        Experiment name, for messages.

    Returns
    -------
    pandas.DataFrame
        ``id``, ``path``, ``label``, ``group``, then a table's other columns.

    Raises
    ------
    InputError
        A missing or unreadable image (named), mixed channel counts or bit depths, an empty
        class folder, a class with fewer images than folds, a group column of one group, or a
        single class.
    """
    data, cv = exp["data"], exp["cv"]
    path = Path(data["path"])
    folds = _folds_to_fill(cv)
    if path.is_dir():
        listing = list_image_folder(path, folds, data["group_level"])
    else:
        listing = list_image_table(
            path,
            label_column=data["label_column"] or "label",
            path_column=data["path_column"],
            group_column=data["group_column"],
            id_column=data["id_column"],
            n_splits=folds,
        )
    where = f"{path}: the classes" if path.is_dir() else f"{path}: label column"
    check_class_sizes(listing["label"].value_counts(), cv, where)
    return listing


def _dataset(listing: pd.DataFrame, store: Path, meta: dict[str, Any]) -> ImageDataset:
    table = listing.set_index("id")
    table.index = pd.Index(table.index.astype(str), name=ID_INDEX)
    return ImageDataset(
        listing=table, classes=sorted(table["label"].unique().tolist()), store=store, meta=meta
    )


def store_images(
    exp: Mapping[str, Any], store: str | Path, name: str = "experiment"
) -> dict[str, Any]:
    """List and check an experiment's images and decode them once into ``store``.

    Returns
    -------
    dict
        The store's sidecar (:func:`dlpipe.image_store.write_image_store`).
    """
    return write_image_store(list_images(exp, name), store, exp["data"]["image_size"])


def _current_store(
    store: Path, listing: pd.DataFrame, size: int | Sequence[int] | None
) -> dict[str, Any] | None:
    """Return the sidecar of ``store`` if it holds exactly these images at this size, else None.

    The same ids, files and file contents (sha256), resized as asked: the workflow's
    ``image_store`` job wrote it, and the prepare job reads it instead of decoding again.
    """
    if not (store.is_file() and sidecar(store).is_file()):
        return None
    meta = read_json(sidecar(store))
    wanted = None if size is None else ([size, size] if isinstance(size, int) else list(size))
    same = (
        meta.get("ids") == listing["id"].astype(str).tolist()
        and meta.get("paths") == listing["path"].astype(str).tolist()
        and (meta.get("resize") == "none" if wanted is None else meta.get("size") == wanted)
    )
    if not same or meta.get("sha256") != [sha256(p) for p in listing["path"]]:
        return None
    return meta


def prepare_images(exp: Mapping[str, Any], folder: Path, name: str = "experiment") -> ImageDataset:
    """List the images, decode them once into ``folder/images.npy`` and return the dataset.

    A store of exactly these images at this size already in ``folder`` (the workflow's
    ``image_store`` job) is used as it is.

    Parameters
    ----------
    exp
        The experiment's validated config.
    folder
        The experiment's results folder (the store is written there, beside the dataset).
    name
        Experiment name, for messages.

    Returns
    -------
    dlpipe.datasets.ImageDataset
        The listing, the classes, the store and the facts the report shows.
    """
    data = exp["data"]
    listing = list_images(exp, name)
    store = Path(folder) / IMAGE_STORE
    written = _current_store(store, listing, data["image_size"]) or write_image_store(
        listing, store, data["image_size"]
    )
    source = str(data["path"])
    # One checksum of every image, in the listing's order (a folder has no file to hash).
    pairs = list(zip(written["ids"], written["sha256"], strict=True))
    digest = hashlib.sha256(json.dumps(pairs).encode())
    size = [int(v) for v in written["size"]]
    counts = listing["label"].value_counts().sort_index()
    grouped = bool(data["group_column"] or data["group_level"])
    meta = {
        "source": source,
        "form": "folder" if Path(source).is_dir() else "table",
        "sha256": sha256(source) if Path(source).is_file() else digest.hexdigest(),
        "images_sha256": digest.hexdigest(),
        "n_samples": len(listing),
        "class_counts": {str(k): int(v) for k, v in counts.items()},
        "group_column": data["group_column"],
        "group_level": data["group_level"],
        "n_groups": int(listing["group"].nunique()) if grouped else None,
        "dtype": written["dtype"],
        "channels": int(written["channels"]),
        "size": size,
        "resize": written["resize"],
        "resized": int(sum(list(s) != size for s in written["original_sizes"])),
        "original_sizes": sorted({f"{h} × {w}" for h, w in written["original_sizes"]}),
    }
    return _dataset(listing, store, meta)


def read_new_images(
    path: str | Path, size: Sequence[int], path_column: str = "path", id_column: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Ids and pixels ``(n, C, H, W)`` of new images, resized as the training images were.

    ``path`` is a folder (every image below it; ids are paths relative to it) or a table with
    a column of image paths (relative to the table's folder) and optionally one of ids.
    """
    from dlpipe.image_store import resize_image  # lazy: only new images need it here

    path = Path(path)
    if path.is_dir():
        files = images_below(path)
        ids = [p.relative_to(path).as_posix() for p in files]
    else:
        named = [c for c in (path_column, id_column) if c]
        table = read_table(path, exact_columns=named)
        absent = [c for c in named if c not in table.columns]
        if absent:
            raise InputError(
                f"{path}, line 1: no column {absent}; the table of new images needs its image "
                "paths in column data.path_column (and ids in the id column, if one is named)"
            )
        written = table[path_column].astype(str).tolist()
        files = table_image_files(path, written)
        ids = table[id_column].astype(str).tolist() if id_column else written
    if not files:
        raise InputError(f"{path}: no images (PNG, JPEG or TIFF) to predict")
    check_same_kind((probe_image(p) for p in files), str(path))
    pixels = np.stack([resize_image(read_image(p), tuple(size)) for p in files])
    return np.array(ids), pixels


class Images(Modality):
    """Labelled images: a small CNN (or a ResNet) beside a linear model on downsampled pixels."""

    name = "image"
    inputs = "image"
    default_model = "smallcnn"
    file_keys: ClassVar[tuple[str, ...]] = ("path",)
    #: ``data.path`` may name a folder of class sub-folders.
    folder_keys: ClassVar[tuple[str, ...]] = ("path",)
    # Fold jobs train CNNs: started first, they overlap the other experiments' work.
    priority = 1
    interpretation = "image"
    # The explained images are picked from the folds' test predictions (confident, right or not).
    interpret_reads_predictions = True
    prediction_inputs = ("table",)
    prediction_inputs_text = "a table of image paths (column data.path_column), or a folder"
    baseline_kinds: ClassVar[tuple[str, ...]] = ("linear", "random_forest")

    def check_config(self, key: str, exp: Mapping[str, Any]) -> None:
        """Check for a folder or a table, a classification, and groups where the plan needs them."""
        data, cv = exp["data"], exp["cv"]
        if not data["path"]:
            raise ConfigError(
                f"config key {key}.data.path: an image experiment needs a folder with one "
                "sub-folder of images per class, or a table of image paths and labels"
            )
        if exp["task"] != "classification":
            raise ConfigError(f"config key {key}.task: image experiments are classifications")
        folder = Path(data["path"]).is_dir()
        if folder:
            for field in ("label_column", "group_column", "id_column"):
                if data[field]:
                    raise ConfigError(
                        f"config key {key}.data.{field}: data.path is a folder, whose sub-folders "
                        "name the classes and whose file paths are the ids; for groups put each "
                        "group's images in a folder inside the class folders and set "
                        "data.group_level: 1, or list the images in a table (path, label, group "
                        "columns)"
                    )
        elif Path(data["path"]).is_file():
            if not data["label_column"]:
                raise ConfigError(
                    f"config key {key}.data.label_column: a table of images needs the name of "
                    "its label column"
                )
            if data["group_level"] is not None:
                raise ConfigError(
                    f"config key {key}.data.group_level: a table names its groups in a column, "
                    "not in folders; set data.group_column and drop data.group_level"
                )
        if cv["plan"] in CHROMOSOME_PLANS:
            raise ConfigError(
                f"config key {key}.cv.plan: {cv['plan']!r} needs genomic intervals; use "
                "group_kfold (whole patients, slides or regions per fold) or stratified_kfold"
            )
        if cv["plan"] == "group_kfold" and folder and data["group_level"] is None:
            raise ConfigError(
                f"config key {key}.data.group_level: cv.plan group_kfold needs groups; put each "
                "patient's, slide's or region's images in a folder inside the class folders "
                "(ROOT/<class>/<group>/<image>) and set data.group_level: 1"
            )
        if cv["plan"] == "group_kfold" and not folder and not data["group_column"]:
            raise ConfigError(
                f"config key {key}.data.group_column: cv.plan group_kfold needs the column of the "
                "table that names each image's patient, slide or region"
            )
        if exp["preprocess"]["smote"]:
            raise ConfigError(
                f"config key {key}.preprocess.smote: SMOTE interpolates feature vectors, not "
                "images; balance with training.class_weights: balanced"
            )
        if exp["embed"]["enabled"]:
            raise ConfigError(
                f"config key {key}.embed.enabled: the VAE embeds tabular features, not images"
            )

    def prepare_inputs(self, name: str, exp: Mapping[str, Any]) -> dict[str, str]:
        """Name the image store of the ``image_store`` job (rules/image.smk)."""
        return {
            "store": f"results/{name}/{IMAGE_STORE}",
            "store_sidecar": str(sidecar(f"results/{name}/{IMAGE_STORE}")),
        }

    def preprocess_inputs(self, name: str, exp: Mapping[str, Any]) -> dict[str, str]:
        """Name the image store, whose rows the fold's sides index."""
        return self.prepare_inputs(name, exp)

    def fold_inputs(self, name: str, exp: Mapping[str, Any]) -> dict[str, str]:
        """Name the image store, which training, baselines and evaluation read per batch."""
        return self.prepare_inputs(name, exp)

    def prepare(
        self, name: str, exp: Mapping[str, Any], folder: Path, integrated: str | None = None
    ) -> tuple[ImageDataset, dict[str, Any]]:
        """List the images and decode them once into the store beside the dataset."""
        data = prepare_images(exp, folder, name)
        self.check_split(name, data, exp)
        return data, {data.meta["source"]: data.meta["sha256"]}

    def describe_data(self, name: str, exp: Mapping[str, Any]) -> str:
        """Check every image's header and that the folds can be made; count images and classes."""
        listing = list_images(exp, name)
        data = _dataset(listing, Path(IMAGE_STORE), {})
        self.check_split(name, data, exp)
        counts = listing["label"].value_counts().sort_index()
        detail = ", ".join(f"{k}: {v}" for k, v in counts.items())
        grouped = exp["data"]["group_column"] or exp["data"]["group_level"]
        groups = f" in {listing['group'].nunique()} groups" if grouped else ""
        return f"{name}: {len(listing)} images ({detail}){groups}"

    def preprocess_fold(
        self, data: Any, index: Mapping[str, np.ndarray], exp: Mapping[str, Any]
    ) -> tuple[dict[str, Any], Any, dict[str, Any]]:
        """Index the fold's sides into the store; only the 16-bit scale is fitted."""
        from dlpipe.preprocess import preprocess_image_fold  # lazy: scikit-learn, 0.7 s

        return preprocess_image_fold(data, index)

    def baseline_name(self, exp: Mapping[str, Any], task: Task, kind: str = "linear") -> str:
        """Name a baseline on the pixels' block means (``pixels_logistic_regression``)."""
        return f"pixels_{task.baseline_model_name(kind)}"

    def make_baseline(self, exp: Mapping[str, Any], task: Task, kind: str = "linear") -> Any:
        """Return the task's model of ``kind`` on the standardised block means of the pixels."""
        from dlpipe.baselines import on_pixels  # lazy: scikit-learn, 0.7 s

        return on_pixels(super().make_baseline(exp, task, kind), PIXEL_GRID)

    def baseline_text(self, exp: Mapping[str, Any], kind: str = "linear") -> str:
        """Block means of the pixels and the model."""
        model = self.task(exp).baseline_model_text(exp["baseline"], kind)
        return (
            f"block means of the pixels (at most {PIXEL_GRID} × {PIXEL_GRID} per channel, "
            f"standardised) + {model}"
        )

    def interpret(
        self,
        exp: Mapping[str, Any],
        task: Task,
        data: Any,
        meta: Mapping[str, Any],
        folds: Any,
        predictions: Any,
        checkpoints: Mapping[int, str],
        preprocessors: Mapping[int, str],
        out: Path,
    ) -> dict[str, Any]:
        """Saliency maps of held-out images, each by its own test fold's model.

        Writes ``saliency.tsv`` (the images, their fold, prediction and checks),
        ``saliency.npz`` (plain arrays: ids, pixels as the model read them, the maps of the
        trained and the randomised models) and ``saliency.png`` into ``out``.
        """
        from dlpipe.image_saliency import image_saliency  # lazy: torch and captum, 3 s
        from dlpipe.models.checkpoint import load_model  # lazy: torch, 1.2 s
        from dlpipe.plots.saliency import saliency_panels  # lazy: matplotlib

        oof = pd.concat([read_predictions(p) for p in predictions], ignore_index=True)
        result = image_saliency(
            exp,
            data.classes,
            data.ids,
            data.images,
            folds,
            oof,
            {fold: load_model(path) for fold, path in checkpoints.items()},
            {fold: load_fitted(path) for fold, path in preprocessors.items()},
        )
        table, arrays = result["selected"], result["arrays"]
        table.to_csv(out / "saliency.tsv", sep="\t", index=False, float_format="%.6g")
        np.savez_compressed(out / "saliency.npz", **arrays)
        drawn = result["facts"]["gradcam_layer"] is not None
        saliency_panels(
            table,
            arrays["pixels"],
            arrays["ig"],
            arrays["gradcam"] if drawn else None,
            out / "saliency.png",
        )
        return {**result["facts"], "figures": ["saliency.png"]}

    def explained_text(self) -> str:
        """Integrated gradients and Grad-CAM of held-out images, with a randomisation check."""
        return (
            "; explained by integrated gradients (black-image baseline) and Grad-CAM of the most "
            "confident correct and wrong held-out images per class, each by its own test fold's "
            "model, beside a model-randomisation check"
        )

    def data_facts(self, meta: Mapping[str, Any], exp: Mapping[str, Any]) -> list[tuple[str, Any]]:
        """Source, images, classes, groups, size, bit depth and channels."""
        m = meta["meta"]
        h, w = m["size"]
        resized = (
            f"{m['resized']} of {m['n_samples']} resized from {', '.join(m['original_sizes'])} "
            f"({m['resize']})"
            if m["resized"]
            else "none (all images already of this size)"
        )
        groups = "none given: each image is its own group"
        if m.get("group_column"):
            groups = (
                f"{m['n_groups']} in column {m['group_column']} (group plans keep each on one side)"
            )
        elif m.get("group_level"):
            groups = (
                f"{m['n_groups']} group folders, {m['group_level']} level(s) below each class "
                "folder (group plans keep each on one side)"
            )
        return [
            ("source", f"{m['source']} ({m['form']})"),
            ("sha256", m["sha256"][:16] + "…"),
            ("images", m["n_samples"]),
            ("classes", ", ".join(f"{k}: {v}" for k, v in m["class_counts"].items())),
            ("groups", groups),
            ("image size", f"{h} × {w} pixels, {m['channels']} channel(s), {m['dtype']}"),
            ("resized", resized),
            ("task", exp["task"]),
        ]

    def preprocessing_text(self, exp: Mapping[str, Any]) -> str | None:
        """Say how images are stored, scaled per fold and augmented per training batch."""
        augment = (
            "Training batches are augmented on the device (random flips, 90° rotations, ±10 % "
            "intensity); validation and test images never are."
            if exp["training"]["augment"]
            else "No augmentation (training.augment: false)."
        )
        return (
            "Images are decoded once into a memory-mapped store and scaled to [0, 1] per fold: "
            "8-bit by 255, 16-bit by the brightest pixel of the fold's training side. " + augment
        )

    def fitted_text(self, exp: Mapping[str, Any]) -> str:
        """Say what is fitted: the 16-bit intensity scale and the weights."""
        return (
            "intensity scale of 16-bit images and model weights: training side of each fold "
            "(8-bit images are divided by 255)"
        )

    def training_text(self, exp: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
        """Say whether training batches were augmented."""
        if exp["training"]["augment"]:
            return ", augmentation of training batches (flips, 90° rotations, ±10 % intensity)"
        return ", no augmentation"

    def model_inputs_text(
        self, meta: Mapping[str, Any], summaries: Sequence[Mapping[str, Any]]
    ) -> str:
        """Images of the store's size and channels, scaled to [0, 1]."""
        m = meta["meta"]
        return (
            f"{m['channels']}-channel images of {m['size'][0]} × {m['size'][1]} pixels "
            f"({m['dtype']}, scaled to [0, 1])"
        )

    def read_new(
        self,
        source: Mapping[str, Any],
        exp: Mapping[str, Any],
        meta: Mapping[str, Any],
        first_preprocessor: Any,
    ) -> tuple[np.ndarray, Any, dict[str, Any]]:
        """Pixels of a folder of images or a table of image paths, resized like training."""
        if source.get("fasta") or source.get("bed"):
            raise InputError("an image experiment predicts images, not FASTA or BED input")
        if not source.get("table"):
            raise InputError("nothing to predict: give a folder of images or a table of paths")
        data = exp.get("data", {})
        ids, pixels = read_new_images(
            source["table"],
            meta["meta"]["size"],
            data.get("path_column") or "path",
            source.get("id_column") or data.get("id_column"),
        )
        return ids, pixels, {}


MODALITY = Images()
