"""Listings of labelled images: from a folder of class sub-folders, or from a table of paths.

Both forms give one :class:`pandas.DataFrame` with the columns ``id``, ``path`` (absolute),
``label`` and ``group``, then any extra columns of a table, one row per image, and check it
before any image is decoded: every file exists and has a readable header, all images share
their channel count and bit depth, and every class and the groups can fill the folds of a
cross-validation of ``n_splits`` folds.

- :func:`list_image_folder`: the ImageFolder convention, ``ROOT/<class>/<image>``. Hidden files
  and folders (``.DS_Store``, ``._x.png`` of macOS, ``.ipynb_checkpoints``) are skipped, and
  so are files that are not images (notes, tables); both are logged. An image format dlpipe
  does not read (``.czi``, ``.bmp`` …) is an error rather than skipped, so that no part of the
  data silently drops out. Images may lie in sub-folders of a class folder; with
  ``group_level=1`` the first of them (``ROOT/<class>/<patient>/<image>``) is the group, with
  ``group_level=2`` the first two (``<patient>/<slide>``). A group folder of the same name under
  two classes is one group (one patient's tumour and normal images).
- :func:`list_image_table`: a CSV/TSV (or Parquet) with a path column (relative to the table's
  folder, or absolute), a label column, an optional group column (patient, slide, plate) and any
  further columns, kept as they are.

Without a group, each image is its own group (ids and groups are equal).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from dlpipe.errors import InputError
from dlpipe.io.images import (
    UNSUPPORTED_IMAGES,
    ImageInfo,
    check_same_kind,
    is_image_name,
    probe_image,
)
from dlpipe.io.tables import read_table, row_locations

log = logging.getLogger(__name__)

COLUMNS = ["id", "path", "label", "group"]


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in relative.parts)


def _few(items: Iterable[object], most: int = 5) -> str:
    items = list(items)
    more = f" and {len(items) - most} more" if len(items) > most else ""
    return ", ".join(str(i) for i in items[:most]) + more


def images_below(folder: Path) -> list[Path]:
    """Return every image file below ``folder`` (hidden files and folders left out), sorted."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and is_image_name(p.name) and not _hidden(p.relative_to(folder))
    )


def table_image_files(table: Path, written: list[str], where: str = "") -> list[Path]:
    """Return the files a table's path column names (relative to the table's folder, or absolute).

    Raises
    ------
    InputError
        If any is missing; the message starts with ``where`` (a config key) when given.
    """
    files = [Path(p) if Path(p).is_absolute() else table.parent / p for p in written]
    missing = [w for w, f in zip(written, files, strict=True) if not f.is_file()]
    if missing:
        raise InputError(
            f"{where + ': ' if where else ''}{table}: {len(missing)} image files not found (e.g. "
            f"{missing[:3]}); paths are read relative to the table's folder {table.parent}"
        )
    return files


def list_unlabelled(
    images: str | Path, path_column: str = "path", key: str = "model.pretrain.images"
) -> list[Path]:
    """List the unlabelled images: every image below a folder, or the paths of a table.

    Parameters
    ----------
    images
        A folder (images anywhere below it, hidden files left out, in sorted order) or a table
        with a column of image paths (relative to the table's folder, or absolute).
    path_column
        The table's column of paths.
    key
        The config key that names ``images``, for messages.

    Raises
    ------
    InputError
        If ``images`` is missing, holds no images, or the table names files that are not there;
        the message names ``key``.
    """
    path = Path(images)
    column_key = key.rpartition(".")[0] + ".path_column"
    key = f"config key {key}"
    if path.is_dir():
        files = images_below(path)
    elif path.is_file():
        table = read_table(path, exact_columns=[path_column])
        if path_column not in table.columns:
            raise InputError(
                f"{key}: {path} has no column {path_column!r}; name the column of image paths "
                f"in {column_key}"
            )
        files = table_image_files(path, table[path_column].astype(str).tolist(), key)
    else:
        raise InputError(f"{key}: {path} is neither a folder nor a table of image paths")
    if not files:
        raise InputError(f"{key}: {path} holds no images (PNG, JPEG or TIFF)")
    return files


def list_image_folder(
    root: str | Path, n_splits: int | None = None, group_level: int | None = None
) -> pd.DataFrame:
    """List the images of a folder with one sub-folder per class.

    Parameters
    ----------
    root
        The folder; each sub-folder's name is a class, and every image below it (at any depth)
        belongs to that class.
    n_splits
        The number of cross-validation folds to check the classes and groups against; ``None``
        checks nothing of the kind.
    group_level
        ``1`` takes the sub-folder directly inside each class folder as the image's group
        (``ROOT/<class>/<patient>/<image>``); ``k`` takes the path of the ``k`` folders below
        the class folder (``2``: ``<patient>/<slide>``); ``None`` makes each image its own
        group. The config's ``data.group_level``.

    Returns
    -------
    pandas.DataFrame
        ``id`` (the path relative to ``root``, with ``/``), ``path``, ``label``, ``group``; sorted
        by id.

    Raises
    ------
    InputError
        If the folder is missing or has no class folders, an image lies outside the class
        folders or above the group level, a class folder holds no image, an image is
        unreadable or of an unsupported format, the images differ in channels or bit depth, the
        group folders name one group, or the folds cannot be filled.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(
            f"{root}: image folder not found (or not a folder); check the data path in the config"
        )
    if group_level is not None and (
        isinstance(group_level, bool) or not isinstance(group_level, int) or group_level < 1
    ):
        raise InputError(
            f"data.group_level {group_level!r}: use 1 (the folder inside each class folder names "
            "the group), a larger depth, or null (each image its own group)"
        )
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not _hidden(Path(p.name)))
    if not classes:
        raise InputError(
            f"{root}: no class sub-folders; put the images of each class in a sub-folder named "
            "after the class (ROOT/<class>/<image>), or list them in a table"
        )
    loose = sorted(p.name for p in root.iterdir() if p.is_file() and is_image_name(p.name))
    if loose:
        raise InputError(
            f"{root}: images lie outside the class sub-folders ({_few(loose)}); move each into "
            "the sub-folder of its class"
        )
    rows: list[dict[str, str]] = []
    skipped_hidden: list[str] = []
    skipped_other: list[str] = []
    for folder in classes:
        found = 0
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(root)
            if not path.is_file():
                continue
            if _hidden(relative):
                skipped_hidden.append(relative.as_posix())
                continue
            if path.suffix.lower() in UNSUPPORTED_IMAGES:
                raise InputError(
                    f"{path}: image format {path.suffix} is not read; convert the images to "
                    "TIFF (any bit depth) or PNG"
                )
            if not is_image_name(path.name):
                skipped_other.append(relative.as_posix())
                continue
            group = relative.as_posix()
            if group_level is not None:
                # parts: <class>, the group_level folders naming the group, …, the file.
                if len(relative.parts) < group_level + 2:
                    raise InputError(_above_group_level(path, relative, group_level))
                group = "/".join(relative.parts[1 : 1 + group_level])
            rows.append(
                {"id": relative.as_posix(), "path": str(path), "label": folder.name, "group": group}
            )
            found += 1
        if not found:
            raise InputError(
                f"{folder}: the class folder '{folder.name}' holds no image (PNG, JPEG or TIFF); "
                "add its images or remove the folder"
            )
    if skipped_hidden:
        log.info(
            "%s: skipped %d hidden files (%s)", root, len(skipped_hidden), _few(skipped_hidden)
        )
    if skipped_other:
        log.warning(
            "%s: skipped %d files that are not images (%s)",
            root,
            len(skipped_other),
            _few(skipped_other),
        )
    listing = pd.DataFrame(rows, columns=COLUMNS)
    check_listing(
        listing,
        str(root),
        n_splits,
        grouped=group_level is not None,
        group_key=None if group_level is None else f"data.group_level {group_level}",
    )
    return listing


def _above_group_level(path: Path, relative: Path, level: int) -> str:
    """Message for an image lying above the folders that name its group."""
    layout = "/".join(["ROOT", "<class>", *(["<group>"] * level), "<image>"])
    where = (
        "directly in its class folder"
        if len(relative.parts) == 2
        else f"{len(relative.parts) - 2} folder(s) below its class folder"
    )
    return (
        f"{path}: lies {where}, but data.group_level {level} takes the group from the "
        f"{level} folder(s) below the class ({layout}); move it into its group's folder, "
        "or set data.group_level to null (each image its own group)"
    )


def list_image_table(
    table: str | Path,
    label_column: str = "label",
    path_column: str = "path",
    group_column: str | None = None,
    id_column: str | None = None,
    n_splits: int | None = None,
) -> pd.DataFrame:
    """List the images of a table of paths with their labels (and groups).

    Parameters
    ----------
    table
        A CSV, TSV or Parquet file, one row per image.
    label_column, path_column
        The columns of the class and of the image file (relative to the table's folder, or
        absolute).
    group_column
        The column of the patient, slide or plate each image comes from; cross-validation then
        keeps each group on one side. ``None``: each image is its own group.
    id_column
        A column of unique image ids; ``None`` takes the path as written in the table.
    n_splits
        The number of cross-validation folds to check the classes and groups against.

    Returns
    -------
    pandas.DataFrame
        ``id``, ``path`` (absolute), ``label``, ``group``, then the table's other columns, in
        the table's order.

    Raises
    ------
    InputError
        If a column is missing, a path, label or group is empty, a path is listed twice or its
        file is missing or unreadable (naming the table's lines), the images differ in channels
        or bit depth, or the folds cannot be filled.
    """
    table = Path(table)
    named = [c for c in (path_column, label_column, group_column, id_column) if c]
    frame = read_table(table, exact_columns=named)
    absent = [c for c in named if c not in frame.columns]
    if absent:
        raise InputError(
            f"{table}, line 1: no column {_few(repr(c) for c in absent)}; the header has "
            f"{_few(list(frame.columns), 10)}: set the column names in the config to match"
        )

    def lines(mask: pd.Series) -> str:
        return _few(row_locations(table, [i for i, bad in enumerate(mask) if bad]))

    for column in named:
        empty = frame[column].isna() | (frame[column].astype(str).str.strip() == "")
        if empty.any():
            raise InputError(
                f"{table}: empty {column!r} on {lines(empty)}; fill it in or remove the row"
            )
    written = frame[path_column].astype(str)
    paths = [Path(p) if Path(p).is_absolute() else table.parent / p for p in written]
    resolved = pd.Series([str(p.resolve()) for p in paths])
    repeated = resolved.duplicated(keep=False)
    if repeated.any():
        raise InputError(
            f"{table}: the same image is listed more than once ({lines(repeated)}: "
            f"{_few(sorted(set(written[repeated])))}); list each image once (a copy in two "
            "classes or groups would leak between folds)"
        )
    missing = pd.Series([not p.is_file() for p in paths])
    if missing.any():
        names = _few(written[missing])
        raise InputError(
            f"{table}: {int(missing.sum())} image files not found ({names}; {lines(missing)}); "
            f"paths are read relative to the table's folder {table.parent}: fix them or remove "
            "the rows"
        )
    ids = frame[id_column].astype(str) if id_column else written
    if id_column and ids.duplicated().any():
        raise InputError(
            f"{table}: ids repeated in {id_column!r} ({lines(ids.duplicated(keep=False))}); give "
            "every image its own id"
        )
    listing = pd.DataFrame(
        {
            "id": ids.to_numpy(),
            "path": [str(p) for p in paths],
            "label": frame[label_column].astype(str).to_numpy(),
            "group": (frame[group_column] if group_column else ids).astype(str).to_numpy(),
        }
    )
    extra = frame.drop(columns=named).reset_index(drop=True)
    clash = [c for c in extra.columns if c in COLUMNS]
    extra = extra.rename(columns={c: f"{c}_extra" for c in clash})
    listing = pd.concat([listing, extra], axis=1)
    check_listing(listing, str(table), n_splits, grouped=group_column is not None)
    return listing


def check_listing(
    listing: pd.DataFrame,
    where: str,
    n_splits: int | None = None,
    grouped: bool = True,
    group_key: str | None = None,
) -> ImageInfo:
    """Check a listing's images and folds before anything is decoded.

    Parameters
    ----------
    listing
        Columns ``id``, ``path``, ``label``, ``group``.
    where
        The folder or table the listing came from, for messages.
    n_splits
        Folds of the cross-validation; each class needs at least this many images and, for a
        grouped listing, the groups at least this many distinct values.
    grouped
        Whether the groups were given (a group column or group folders) rather than one per
        image.
    group_key
        Where group folders named the groups (``data.group_level 1``), for messages;
        ``None``: a group column did.

    Returns
    -------
    ImageInfo
        The first image's header (channels and dtype shared by all).

    Raises
    ------
    InputError
        If an image is unreadable, the images differ in channels or bit depth, a class has fewer
        images than folds, or the groups cannot fill the folds.
    """
    if listing.empty:
        raise InputError(f"{where}: lists no images")
    if n_splits is not None:
        counts = listing["label"].value_counts()
        small = counts[counts < n_splits].sort_index()
        if not small.empty:
            found = _few(f"'{label}' {count}" for label, count in small.items())
            raise InputError(
                f"{where}: classes with fewer images than the {n_splits} cross-validation folds "
                f"({found}); every class needs an image in each test fold: add images, merge or "
                "drop those classes, or use fewer folds"
            )
    if grouped:
        groups = listing["group"].nunique()
        first = listing["group"].iloc[0]
        if groups == 1 and group_key:
            raise InputError(
                f"{where}: {group_key} finds one group ('{first}') for every image, so grouped "
                "cross-validation cannot keep groups apart; put each patient's, slide's or "
                "plate's images in a folder of its own inside the class folders "
                "(ROOT/<class>/<group>/<image>), or set data.group_level to null"
            )
        if groups == 1:
            raise InputError(
                f"{where}: the group column holds one group ('{first}') for every image, so "
                "grouped cross-validation cannot keep groups apart; give the patient/slide/plate "
                "of each image, or drop the group column"
            )
        if n_splits is not None and groups < n_splits:
            kind = "group folders" if group_key else "groups"
            raise InputError(
                f"{where}: {groups} {kind} for {n_splits} cross-validation folds; every fold "
                "needs a group of its own: use at most as many folds as groups"
            )
    return check_same_kind((probe_image(p) for p in listing["path"]), where)
