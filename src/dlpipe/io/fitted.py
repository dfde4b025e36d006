"""Fitted preprocessing and baselines, stored in skops' format: files that cannot run code.

A pickle (joblib) runs whatever code its bytes name when it is loaded, so a results folder of
pickles is a folder of programs. skops (https://skops.readthedocs.io) stores scikit-learn objects
as JSON and arrays and rebuilds only the types it is told to trust: the scikit-learn estimators
skops trusts by default, and the dlpipe types of :data:`TRUSTED` below. A file naming any other
type is refused before anything is built, with the types it names.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

from dlpipe.errors import InputError

#: dlpipe's own types (and the one scoring function) that fitted objects hold; numpy's dtypes
#: are how column transformers record the dtype of their input; scikit-learn's tree structure
#: is what the random-forest baseline is made of. skops leaves the tree untrusted because
#: scikit-learn follows its node indices without bounds checks: every tree loaded is checked
#: first (:func:`check_trees`).
TRUSTED = (
    "dlpipe.preprocess.FittedPreprocessor",
    "dlpipe.preprocess.SequenceInput",
    "dlpipe.preprocess.ImageInput",
    "dlpipe.preprocess.Log1p",
    "dlpipe.preprocess.CPMLog1p",
    "dlpipe.preprocess.variance_score",
    "sklearn.feature_selection._univariate_selection.f_classif",
    "dlpipe.kmers.KmerFrequencies",
    "dlpipe.onehot.OneHotPositions",
    "dlpipe.pixels.DownsampledPixels",
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
)


def save_fitted(obj: Any, path: str | Path) -> None:
    """Write a fitted preprocessor or baseline in skops' format, the same bytes on every run.

    skops names the arrays of an archive after the memory addresses of their objects and
    stamps each member with the time; the archive is rewritten with numbers in order of
    appearance and a fixed time, so a rerun writes an identical file (and manifest). Members
    are deflated: the JSON schema repeats column names with their types and shrinks ~20×.
    """
    import skops.io as sio  # lazy: 0.3 s, loaded by the jobs that fit or apply

    Path(path).write_bytes(_canonical(sio.dumps(obj)))


_ID = re.compile(r'("__id__": )(\d+)|("file": ")(\d+)(\.npy")')


def _canonical(archive: bytes) -> bytes:
    """Rewrite a skops archive with stable object numbers, member order and times."""
    numbers: dict[str, str] = {}

    def renumber(match: re.Match[str]) -> str:
        old = match[2] or match[4]
        new = numbers.setdefault(old, str(len(numbers) + 1))
        return f"{match[1]}{new}" if match[1] else f"{match[3]}{new}{match[5]}"

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as source:
        schema = _ID.sub(renumber, source.read("schema.json").decode())
        members = {"schema.json": schema.encode()}
        for name in source.namelist():
            if name != "schema.json":
                members[f"{numbers[name.removesuffix('.npy')]}.npy"] = source.read(name)
    with zipfile.ZipFile(out, "w") as target:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            target.writestr(info, members[name])
    return out.getvalue()


def load_fitted(path: str | Path) -> Any:
    """Read a file of :func:`save_fitted`, trusting only the types it may hold.

    Raises
    ------
    InputError
        If the file is not in skops' format, or names a type outside the trusted ones (a file
        written by something else, or altered).
    """
    import skops.io as sio  # lazy: 0.3 s, loaded by the jobs that fit or apply

    try:
        found = sio.get_untrusted_types(file=path)
    except Exception as err:  # noqa: BLE001 - zipfile, json and skops raise many types
        raise InputError(
            f"{path}: not a dlpipe file of fitted preprocessing or baseline ({err}); delete it "
            "and rerun the workflow to refit it"
        ) from None
    foreign = sorted(set(found) - set(TRUSTED))
    if foreign:
        raise InputError(
            f"{path}: names types dlpipe never writes ({', '.join(foreign)}); the file was "
            "altered or comes from elsewhere, so it is not loaded. Delete it and rerun the "
            "workflow to refit it"
        )
    try:
        obj = sio.load(path, trusted=list(found))
    except Exception as err:  # noqa: BLE001 - a damaged archive fails in many ways
        raise InputError(
            f"{path}: cannot be read ({err}); delete it and rerun the workflow to refit it"
        ) from None
    if "sklearn.tree._tree.Tree" in found:
        check_trees(obj, path)
    return obj


def check_trees(obj: Any, path: str | Path) -> None:
    """Refuse decision trees whose nodes could send scikit-learn outside its arrays.

    scikit-learn walks a tree from the root by the child indices of its nodes and reads the
    feature index of each inner node, unchecked. A tree as scikit-learn builds it numbers the
    children of a node after the node itself (so every walk ends), inside the node count, and
    splits on features that exist; a tree breaking any of these is refused.

    Raises
    ------
    InputError
        Naming the file, if a tree is malformed.
    """
    import numpy as np  # lazy: only for files holding trees
    from sklearn.tree._tree import Tree  # lazy: only for files holding trees

    for tree in _objects_of(obj, Tree):
        state = tree.__getstate__()
        nodes, n = state["nodes"], int(state["node_count"])
        left, right, feature = nodes["left_child"], nodes["right_child"], nodes["feature"]
        leaf = left == -1
        inner = np.flatnonzero(~leaf)
        ok = (
            len(nodes) == n
            and len(state["values"]) == n
            and np.array_equal(leaf, right == -1)
            and bool(np.all((left[inner] > inner) & (left[inner] < n)))
            and bool(np.all((right[inner] > inner) & (right[inner] < n)))
            and bool(np.all((feature[inner] >= 0) & (feature[inner] < tree.n_features)))
        )
        if not ok:
            raise InputError(
                f"{path}: holds a malformed decision tree (node indices outside the tree); the "
                "file was altered, so it is not used. Delete it and rerun the workflow"
            )


def _objects_of(obj: Any, kind: type) -> list[Any]:
    """Every object of type ``kind`` reachable from ``obj`` through attributes and containers."""
    found, seen, stack = [], set(), [obj]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, kind):
            found.append(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif hasattr(item, "__dict__"):
            stack.extend(vars(item).values())
    return found
