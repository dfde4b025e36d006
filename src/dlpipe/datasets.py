"""The canonical datasets every step reads: a table of samples, sequences as codes, or images.

:class:`TabularDataset` (features, targets, groups of samples; also the latent space of single
cells), :class:`SequenceDataset` (``uint8`` codes with their genomic windows) and
:class:`ImageDataset` (the listing of images beside their memory-mapped store) and
:class:`GraphDataset` (the edges of a network) are written by
the prepare step as ``dataset.parquet`` plus ``dataset.json`` and read back by
:func:`load_dataset`. The modalities (:mod:`dlpipe.modalities`) build them from raw inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from dlpipe.cv import min_class_size
from dlpipe.errors import InputError
from dlpipe.io.files import read_json, write_json

ID_INDEX = "sample_id"


def as_category_text(values: pd.Series) -> pd.Series:
    """Categorical values as Python strings, with missing values as ``np.nan``."""
    text = values.astype("string").astype(object)
    return text.where(values.notna(), np.nan)


@dataclass
class TabularDataset:
    """Features, targets and groups of one experiment, indexed by unique sample id.

    Attributes
    ----------
    table
        Feature columns, then target column(s), then the group column if any; index = ids.
    task
        ``classification`` or ``regression``.
    feature_columns, categorical_columns, target_columns
        Column roles; ``categorical_columns`` is a subset of ``feature_columns``.
    group_column
        Column of group ids, or ``None``.
    classes
        Sorted class names (classification); the label code of a sample is its position here.
    meta
        Provenance: source file, checksum, counts.
    feature_sets
        Feature columns each learner reads (``model``, ``baseline``), when they differ (a
        single-cell experiment: scVI latent for the deep model, PCA for the baseline);
        ``None``: every learner reads every feature.
    """

    table: pd.DataFrame
    task: str
    feature_columns: list[str]
    categorical_columns: list[str]
    target_columns: list[str]
    group_column: str | None = None
    classes: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    feature_sets: dict[str, list[str]] | None = None

    @property
    def ids(self) -> np.ndarray:
        """Sample ids as strings."""
        return self.table.index.to_numpy(dtype=str)

    @property
    def features(self) -> pd.DataFrame:
        """The feature columns."""
        return self.table[self.feature_columns]

    @property
    def y(self) -> np.ndarray:
        """Class codes (int64) for classification, target matrix (float64) for regression."""
        if self.task == "classification":
            labels = self.table[self.target_columns[0]].astype(str)
            return pd.Categorical(labels, categories=self.classes).codes.astype(np.int64)
        return self.table[self.target_columns].to_numpy(dtype=np.float64)

    @property
    def groups(self) -> np.ndarray | None:
        """Group ids as strings, or ``None``."""
        if self.group_column is None:
            return None
        return self.table[self.group_column].to_numpy(dtype=str)

    @property
    def chromosomes(self) -> None:
        """Tables hold no genomic coordinates."""
        return None

    @property
    def clusters(self) -> None:
        """Rows of a table are split one by one (groups, if any, come from ``groups``)."""
        return None

    def save(self, parquet: str | Path, meta_json: str | Path) -> None:
        """Write the table as Parquet and the column roles and provenance as JSON."""
        self.table.to_parquet(parquet, index=True)
        write_json(
            {
                "modality": "tabular",
                "task": self.task,
                "feature_columns": self.feature_columns,
                "categorical_columns": self.categorical_columns,
                "target_columns": self.target_columns,
                "group_column": self.group_column,
                "classes": self.classes,
                "meta": self.meta,
                "feature_sets": self.feature_sets,
            },
            meta_json,
        )

    @classmethod
    def load(cls, parquet: str | Path, meta_json: str | Path) -> TabularDataset:
        """Read a dataset written by :meth:`save`."""
        info = read_json(meta_json)
        info.pop("modality", None)
        table = pd.read_parquet(parquet)
        table.index = table.index.astype(str)
        for col in info["categorical_columns"]:  # Parquet reads missing text back as None
            table[col] = as_category_text(table[col])
        return cls(table=table, **info)


def check_label_spellings(counts: pd.Series, where: str) -> None:
    """Fail when two labels differ only in case or spaces (``Benign `` and ``benign``).

    Such labels would become separate classes without a word, almost always by mistake.

    Parameters
    ----------
    counts
        Samples per label, the labels as written.
    where
        File and column, for the message.
    """
    sizes = {str(label): int(n) for label, n in counts.items()}
    spellings: dict[str, list[str]] = {}
    for label in sizes:
        spellings.setdefault(" ".join(str(label).split()).casefold(), []).append(str(label))
    clashes = [sorted(group) for group in spellings.values() if len(group) > 1]
    if clashes:
        shown = "; ".join(
            " and ".join(f"{label!r} ({sizes[label]} samples)" for label in group)
            for group in clashes[:3]
        )
        raise InputError(
            f"{where}: labels differ only in case or spaces: {shown}; they would be separate "
            "classes. Write each class one way"
        )


def check_class_sizes(counts: pd.Series, cv: Mapping[str, Any], where: str) -> None:
    """Fail unless there are two classes or more, each as large as the CV plan needs.

    Parameters
    ----------
    counts
        Samples per class.
    cv
        The experiment's ``cv`` config.
    where
        File and column, for the message.

    Raises
    ------
    InputError
        Also for labels that differ only in case or spaces (see :func:`check_label_spellings`).
    """
    check_label_spellings(counts, where)
    if len(counts) < 2:
        raise InputError(
            f"{where} holds a single class ({counts.index[0]!r}); a classification needs at "
            "least two classes"
        )
    need = min_class_size(cv)
    small = counts[counts < need]
    if len(small):
        sizes = {str(k): int(v) for k, v in small.items()}
        raise InputError(
            f"{where}: class(es) {sizes} have fewer samples than the {need} that cv.plan "
            f"{cv['plan']!r} needs (n_splits={cv['n_splits']}); lower cv.n_splits, merge rare "
            "classes or drop them"
        )


@dataclass
class SequenceDataset:
    """Fixed-length sequences as ``uint8`` codes with their genomic windows and labels.

    Attributes
    ----------
    codes
        ``(n, length)`` ``uint8`` codes (see :mod:`dlpipe.alphabet`).
    windows
        One row per sequence, index = ids: ``chrom``, ``start``, ``end``, ``label`` (class
        name), ``group`` (CV group: chromosome or genomic bin), ``gc``.
    classes
        Class names (background first, then the target), or the targets of a multi-label
        task (``task == "multilabel"``, one 0/1 column ``y_<target>`` each in ``windows``).
    alphabet
        ``dna``, ``rna`` or ``protein``.
    meta
        Provenance and counts.
    """

    codes: np.ndarray
    windows: pd.DataFrame
    classes: list[str]
    alphabet: str = "dna"
    meta: dict[str, Any] = field(default_factory=dict)
    task: str = "classification"

    @property
    def ids(self) -> np.ndarray:
        """Sequence ids (``chrom:start-end``) as strings."""
        return self.windows.index.to_numpy(dtype=str)

    @property
    def y(self) -> np.ndarray:
        """Class codes (int64), or the ``(n, targets)`` 0/1 matrix of a multi-label task."""
        if self.task == "multilabel":
            return self.windows[[f"y_{t}" for t in self.classes]].to_numpy(dtype=np.float32)
        return pd.Categorical(self.windows["label"], categories=self.classes).codes.astype(np.int64)

    @property
    def groups(self) -> np.ndarray:
        """CV groups (chromosome or genomic bin)."""
        return self.windows["group"].to_numpy(dtype=str)

    @property
    def chromosomes(self) -> np.ndarray:
        """Chromosome of every sequence (``chromosome_holdout``)."""
        return self.windows["chrom"].to_numpy()

    @property
    def clusters(self) -> np.ndarray | None:
        """Chains of overlapping windows, never split apart (``None``: sequences unrelated)."""
        if "cluster" not in self.windows:
            return None
        return self.windows["cluster"].to_numpy()

    def save(self, parquet: str | Path, meta_json: str | Path) -> None:
        """Write windows and codes (one fixed-size binary column) as Parquet, meta as JSON."""
        table = pa.Table.from_pandas(self.windows, preserve_index=True)
        width = self.codes.shape[1]
        column = pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(width),
            len(self.codes),
            [None, pa.py_buffer(np.ascontiguousarray(self.codes))],
        )
        pq.write_table(table.append_column("sequence", column), parquet)
        write_json(
            {
                "modality": "sequence",
                "task": self.task,
                "classes": self.classes,
                "alphabet": self.alphabet,
                "length": int(width),
                "meta": self.meta,
            },
            meta_json,
        )

    @classmethod
    def load(cls, parquet: str | Path, meta_json: str | Path) -> SequenceDataset:
        """Read a dataset written by :meth:`save`."""
        info = read_json(meta_json)
        table = pq.read_table(parquet)
        column = table.column("sequence").combine_chunks()
        codes = np.frombuffer(column.buffers()[1], dtype=np.uint8)[
            column.offset * info["length"] : (column.offset + len(column)) * info["length"]
        ].reshape(len(column), info["length"])
        windows = table.drop(["sequence"]).to_pandas()
        windows.index = windows.index.astype(str)
        return cls(
            codes=codes.copy(),
            windows=windows,
            classes=info["classes"],
            alphabet=info["alphabet"],
            meta=info["meta"],
            task=info["task"],
        )


#: File name of an image experiment's store, beside its ``dataset.parquet``.
IMAGE_STORE = "images.npy"
#: What ``dataset.json`` names as the group column of images grouped by folders.
GROUP_FOLDERS = "group folders"


@dataclass
class ImageDataset:
    """Labelled images: their listing, and their pixels in a memory-mapped store.

    The pixels are decoded once by the prepare step (:func:`dlpipe.image_store.
    write_image_store`) into ``images.npy`` beside ``dataset.parquet``: ``(N, C, H, W)`` in the
    images' own dtype (``uint8`` or ``uint16``), in the order of the listing.

    Attributes
    ----------
    listing
        One row per image, index = ids: ``label``, ``group`` (patient, slide, region; the id
        itself when none was given), ``path`` (the source file), then the table's other columns.
    classes
        Sorted class names; the label code of an image is its position here.
    store
        The ``.npy`` file of the pixels.
    meta
        Provenance and counts (source, checksums, dtype, channels, size, groups).
    """

    listing: pd.DataFrame
    classes: list[str]
    store: Path
    meta: dict[str, Any] = field(default_factory=dict)
    task: str = "classification"

    @property
    def ids(self) -> np.ndarray:
        """Image ids as strings."""
        return self.listing.index.to_numpy(dtype=str)

    @property
    def y(self) -> np.ndarray:
        """Class codes (int64)."""
        labels = self.listing["label"].astype(str)
        return pd.Categorical(labels, categories=self.classes).codes.astype(np.int64)

    @property
    def groups(self) -> np.ndarray:
        """CV groups as strings (each image its own group when none were given)."""
        return self.listing["group"].to_numpy(dtype=str)

    @property
    def chromosomes(self) -> None:
        """Images hold no genomic coordinates."""
        return None

    @property
    def clusters(self) -> None:
        """Images are split one by one, or by their groups under a group plan."""
        return None

    @property
    def images(self) -> np.ndarray:
        """The pixels, ``(N, C, H, W)``, memory-mapped read-only (nothing is decoded)."""
        images = np.load(self.store, mmap_mode="r")
        if images.shape[0] != len(self.listing):
            raise InputError(
                f"{self.store}: holds {images.shape[0]} images but the dataset lists "
                f"{len(self.listing)}; rerun the prepare step to write both again"
            )
        return images

    def save(self, parquet: str | Path, meta_json: str | Path) -> None:
        """Write the listing as Parquet and the classes and provenance as JSON.

        The store is written by the prepare step before; the JSON names it relative to its own
        folder, so a results folder can be moved as a whole.
        """
        self.listing.to_parquet(parquet, index=True)
        write_json(
            {
                "modality": "image",
                "task": self.task,
                "classes": self.classes,
                # Group folders (data.group_level) are named so where the report names the column.
                "group_column": self.meta.get("group_column")
                or (GROUP_FOLDERS if self.meta.get("group_level") else None),
                "store": self.store.name,
                "meta": self.meta,
            },
            meta_json,
        )

    @classmethod
    def load(cls, parquet: str | Path, meta_json: str | Path) -> ImageDataset:
        """Read a dataset written by :meth:`save` (the store is mapped when its pixels are read)."""
        info = read_json(meta_json)
        listing = pd.read_parquet(parquet)
        listing.index = listing.index.astype(str)
        return cls(
            listing=listing,
            classes=info["classes"],
            store=Path(meta_json).parent / info["store"],
            meta=info["meta"],
            task=info["task"],
        )


@dataclass
class GraphDataset:
    """An undirected graph whose missing edges are predicted (link prediction).

    The samples are node pairs: the edges, and non-edges that each fold draws
    (:mod:`dlpipe.edge_split`), so ``ids`` and ``y`` are those of the edges alone.

    Attributes
    ----------
    nodes
        Node ids (text), sorted; a node's index is its position here.
    edges
        ``(m, 2)`` int64 node indices, each edge once with the smaller index first, rows sorted.
    weight
        Each edge's score as read (``None`` without a score column).
    meta
        Provenance and counts of the reading (source, checksums, duplicates, self edges,
        node features).
    """

    nodes: np.ndarray
    edges: np.ndarray
    weight: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    task: str = "link_prediction"

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.nodes)

    @property
    def ids(self) -> np.ndarray:
        """Edge ids ``a|b`` (node ids of its two ends)."""
        return pair_ids(self.nodes, self.edges)

    @property
    def y(self) -> np.ndarray:
        """1 for every edge (non-edges are drawn per fold)."""
        return np.ones(len(self.edges), np.int8)

    @property
    def groups(self) -> None:
        """Edges have no groups; a cold-start plan holds out whole nodes instead."""
        return None

    @property
    def chromosomes(self) -> None:
        """Graphs hold no genomic coordinates."""
        return None

    @property
    def clusters(self) -> None:
        """Edges are split by the link plans of :mod:`dlpipe.edge_split`."""
        return None

    def save(self, parquet: str | Path, meta_json: str | Path) -> None:
        """Write the edges (node ids and score) as Parquet, nodes and provenance as JSON."""
        table = pd.DataFrame(
            {"node_a": self.nodes[self.edges[:, 0]], "node_b": self.nodes[self.edges[:, 1]]}
        )
        if self.weight is not None:
            table["score"] = self.weight
        table.to_parquet(parquet, index=False)
        write_json(
            {
                "modality": "graph",
                "task": self.task,
                "classes": None,
                "nodes": [str(n) for n in self.nodes],
                "meta": self.meta,
            },
            meta_json,
        )

    @classmethod
    def load(cls, parquet: str | Path, meta_json: str | Path) -> GraphDataset:
        """Read a dataset written by :meth:`save`."""
        info = read_json(meta_json)
        nodes = np.asarray(info["nodes"], dtype=object)
        table = pd.read_parquet(parquet)
        index = pd.Index(nodes)
        edges = np.stack(
            [index.get_indexer(table["node_a"]), index.get_indexer(table["node_b"])], axis=1
        ).astype(np.int64)
        if (edges < 0).any():
            raise InputError(
                f"{parquet}: names nodes that {meta_json} does not list; rerun the prepare step "
                "to write both again"
            )
        weight = table["score"].to_numpy(np.float64) if "score" in table else None
        return cls(nodes, edges.reshape(-1, 2), weight, info["meta"], info["task"])


def pair_ids(nodes: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Ids ``a|b`` of node-index pairs (the node ids of both ends)."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    names = np.asarray(nodes, dtype=object)
    return (names[pairs[:, 0]] + "|" + names[pairs[:, 1]]).astype(str)


def load_dataset(
    parquet: str | Path, meta_json: str | Path
) -> TabularDataset | SequenceDataset | ImageDataset | GraphDataset:
    """Read the dataset of an experiment: tabular, sequence, image or graph."""
    modality = read_json(meta_json).get("modality")
    if modality == "sequence":
        return SequenceDataset.load(parquet, meta_json)
    if modality == "image":
        return ImageDataset.load(parquet, meta_json)
    if modality == "graph":
        return GraphDataset.load(parquet, meta_json)
    return TabularDataset.load(parquet, meta_json)


def learner_columns(feature_names: list[str], meta: Mapping[str, Any], role: str) -> list[int]:
    """Positions of the preprocessed columns a learner reads (``role``: ``model`` or ``baseline``).

    Datasets with ``feature_sets`` give each learner its own features (single cells: the scVI
    latent space for the deep model, the PCA for the baseline); others share every column.
    """
    sets = meta.get("feature_sets")
    if not sets:
        return list(range(len(feature_names)))
    wanted = set(sets[role])
    return [i for i, name in enumerate(feature_names) if name in wanted]


def learner_input(
    X: np.ndarray,  # noqa: N803
    meta: Mapping[str, Any],
    role: str,
    fitted: Any,
) -> np.ndarray:
    """Return the columns of ``X`` a learner reads (all unless the data have feature sets).

    ``fitted`` is the fold's fitted preprocessor, whose ``feature_names`` name the columns.
    """
    if not meta.get("feature_sets"):
        return X
    return X[:, learner_columns(fitted.feature_names, meta, role)]
