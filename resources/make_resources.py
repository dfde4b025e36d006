#!/usr/bin/env python
"""Build the small real demo data sets shipped with dlpipe.

Writes, into the output folder (default: the folder holding this script):

``breast_cancer.csv.gz``
    The Wisconsin Diagnostic Breast Cancer data bundled with scikit-learn
    (569 samples x 30 features, binary ``diagnosis``).
``all_leukaemia.csv.gz``
    The Bioconductor ``ALL`` ExpressionSet (Chiaretti et al. 2004): four
    phenotype columns and the 1,000 probes with the highest variance across
    the 128 samples (RMA log2 values, rounded to 4 decimals).
``all_leukaemia_targets.txt``
    20 target probe IDs for a D-GEX-style regression (every 50th probe of
    the variance-sorted list, starting at rank 0).

The ALL data are read from the Debian package ``r-bioc-all`` (a ``.deb``
file, read in pure Python) or directly from its ``ALL.rda`` file; R is not
needed.  All outputs are byte-identical across reruns with the same library
versions (gzip header with ``mtime=0`` and no file name).

Examples
--------
Regenerate everything from the downloaded Debian package::

    python resources/make_resources.py /path/to/r-bioc-all_1.40.0-1_all.deb

"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import io
import logging
import lzma
import re
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rdata
from rdata.parser import RObject, RObjectType
from sklearn.datasets import load_breast_cancer

LOGGER = logging.getLogger("make_resources")

#: Member of the Debian package's data archive that holds the ExpressionSet.
RDA_MEMBER = "usr/lib/R/site-library/ALL/data/ALL.rda"
#: Number of highest-variance probes kept in the ALL table.
N_PROBES = 1000
#: Rank step used to pick the regression targets from the variance-sorted probes.
TARGET_STEP = 50
#: Decimals kept for the expression values.
EXPR_DECIMALS = 4
#: Phenotype columns of the ALL table, in output order.
ALL_PHENO_COLUMNS = ["sex", "age", "lineage", "mol_biol"]


def write_gzip_csv(frame: pd.DataFrame, path: Path, float_format: str | None = None) -> None:
    """Write a data frame as a reproducible gzip-compressed CSV file.

    The gzip header carries neither a file name nor a time stamp, and lines
    end with a line feed (LF) on every platform, so reruns give byte-identical files.

    Parameters
    ----------
    frame : pandas.DataFrame
        Table to write; its index is not written.
    path : pathlib.Path
        Destination file (``.csv.gz``).
    float_format : str or None, optional
        printf-style format for floating-point columns; ``None`` writes the
        shortest representation that round-trips (full precision).

    """
    text = frame.to_csv(index=False, lineterminator="\n", float_format=float_format)
    with (
        path.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz,
    ):
        gz.write(text.encode("utf-8"))
    LOGGER.info("wrote %s (%d x %d, %d bytes)", path, *frame.shape, path.stat().st_size)


def breast_cancer_table() -> pd.DataFrame:
    """Build the breast-cancer table from scikit-learn's bundled copy.

    Returns
    -------
    pandas.DataFrame
        ``sample_id`` (``wdbc_0001`` ...), the 30 features with lower-case,
        underscore-separated names, and ``diagnosis`` (``malignant`` /
        ``benign``; scikit-learn's target 0 is malignant, 1 benign).

    """
    bunch = load_breast_cancer(as_frame=True)
    features = bunch.data.copy()
    features.columns = [re.sub(r"\s+", "_", name.strip().lower()) for name in features.columns]
    target_names = np.asarray(bunch.target_names)
    if list(target_names) != ["malignant", "benign"]:
        raise ValueError(f"unexpected target names {target_names!r}")
    ids = [f"wdbc_{i:04d}" for i in range(1, len(features) + 1)]
    table = pd.concat(
        [
            pd.DataFrame({"sample_id": ids}),
            features.reset_index(drop=True),
            pd.DataFrame({"diagnosis": target_names[bunch.target.to_numpy()]}),
        ],
        axis=1,
    )
    return table


def _read_ar_member(deb: Path, prefix: str) -> tuple[str, bytes]:
    """Return the first member of a Debian ``ar`` archive whose name starts with ``prefix``.

    Parameters
    ----------
    deb : pathlib.Path
        The ``.deb`` file.
    prefix : str
        Start of the wanted member's name, e.g. ``"data.tar"``.

    Returns
    -------
    tuple of (str, bytes)
        The member's name and content.

    Raises
    ------
    ValueError
        If the file is not an ``ar`` archive or has no such member.

    """
    blob = deb.read_bytes()
    if not blob.startswith(b"!<arch>\n"):
        raise ValueError(f"{deb} is not an ar archive (.deb)")
    pos = 8
    while pos + 60 <= len(blob):
        header = blob[pos : pos + 60]
        name = header[:16].decode("ascii").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip())
        start = pos + 60
        if name.startswith(prefix):
            return name, blob[start : start + size]
        pos = start + size + (size % 2)
    raise ValueError(f"no member starting with {prefix!r} in {deb}")


def read_deb_file(deb: Path, member: str) -> bytes:
    """Return one file of a Debian package, read in pure Python (no dpkg needed).

    Parameters
    ----------
    deb : pathlib.Path
        The ``.deb`` file.
    member : str
        Path of the file inside the package, e.g. ``usr/lib/R/site-library/ALL/data/ALL.rda``.

    Returns
    -------
    bytes
        The file's content.

    """
    name, payload = _read_ar_member(deb, "data.tar")
    if name.endswith(".xz"):
        payload = lzma.decompress(payload)
    elif name.endswith(".gz"):
        payload = gzip.decompress(payload)
    elif not name.endswith(".tar"):
        raise ValueError(f"unsupported data archive {name!r} in {deb}")
    with tarfile.open(fileobj=io.BytesIO(payload), mode="r:") as tar:
        found = next(
            (m for m in tar.getmembers() if m.name.lstrip("./") == member and m.isfile()),
            None,
        )
        if found is None:
            raise ValueError(f"{member} not found in {deb}")
        handle = tar.extractfile(found)
        if handle is None:
            raise ValueError(f"cannot read {member} from {deb}")
        return handle.read()


def extract_rda_from_deb(deb: Path, dest: Path) -> Path:
    """Extract ``ALL.rda`` from the Debian package ``r-bioc-all``.

    Parameters
    ----------
    deb : pathlib.Path
        The ``r-bioc-all_*.deb`` file.
    dest : pathlib.Path
        Folder to write ``ALL.rda`` into.

    Returns
    -------
    pathlib.Path
        Path of the extracted ``ALL.rda``.

    """
    out = dest / "ALL.rda"
    out.write_bytes(read_deb_file(deb, RDA_MEMBER))
    LOGGER.info("extracted %s from %s", RDA_MEMBER, deb)
    return out


def _symbol(obj: RObject) -> str:
    """Return the name of an R symbol (following a back-reference if needed)."""
    if obj.info.type == RObjectType.REF:
        obj = obj.referenced_object
    if obj.info.type != RObjectType.SYM:
        raise TypeError(f"expected an R symbol, got {obj.info.type.name}")
    return obj.value.value.decode("utf-8")


def _pairlist(obj: RObject | None) -> dict[str, RObject]:
    """Turn a parsed R pairlist (attributes, environment frame) into a dict."""
    out: dict[str, RObject] = {}
    while obj is not None and obj.info.type == RObjectType.LIST:
        out[_symbol(obj.tag)] = obj.value[0]
        obj = obj.value[1]
    return out


def _convert(parsed: rdata.parser.RData, obj: RObject) -> Any:
    """Convert one parsed R object to Python with rdata's default converter."""
    return rdata.conversion.convert(
        dataclasses.replace(parsed, object=obj), default_encoding="utf-8"
    )


def read_all_expression_set(rda: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read the ``ALL`` ExpressionSet from its ``.rda`` file.

    ``rdata.read_rda`` cannot convert the whole S4 object (the enclosure of
    its ``assayData`` environment holds unevaluated promises), so the file is
    parsed with ``rdata.parser.parse_file`` and only the two needed slots are
    converted: ``assayData$exprs`` and ``phenoData@data``.

    Parameters
    ----------
    rda : pathlib.Path
        The ``ALL.rda`` file.

    Returns
    -------
    exprs : pandas.DataFrame
        Probes x samples matrix of RMA log2 expression values.
    pheno : pandas.DataFrame
        Sample phenotype table indexed by sample name.

    """
    parsed = rdata.parser.parse_file(rda)
    objects = _pairlist(parsed.object)
    if "ALL" not in objects:
        raise ValueError(f"no object 'ALL' in {rda}; found {sorted(objects)}")
    slots = _pairlist(objects["ALL"].attributes)

    assay_env = slots["assayData"]
    if assay_env.info.type == RObjectType.REF:
        assay_env = assay_env.referenced_object
    exprs_obj = _pairlist(assay_env.value.frame)["exprs"]
    exprs_attrs = _pairlist(exprs_obj.attributes)
    n_rows, n_cols = (int(d) for d in exprs_attrs["dim"].value)
    probes, samples = (list(_convert(parsed, names)) for names in exprs_attrs["dimnames"].value)
    values = np.asarray(exprs_obj.value, dtype=np.float64).reshape((n_rows, n_cols), order="F")
    exprs = pd.DataFrame(values, index=pd.Index(probes, name="probe"), columns=samples)

    pheno_data = _pairlist(slots["phenoData"].attributes)["data"]
    pheno = _convert(parsed, pheno_data)
    if not isinstance(pheno, pd.DataFrame):
        raise TypeError(f"phenoData@data converted to {type(pheno).__name__}")
    if list(pheno.index) != samples:
        raise ValueError("phenoData row names do not match the expression matrix columns")
    LOGGER.info(
        "read ALL: %d probes x %d samples, %d phenotype columns", *exprs.shape, pheno.shape[1]
    )
    return exprs, pheno


def all_leukaemia_table(
    exprs: pd.DataFrame, pheno: pd.DataFrame, n_probes: int = N_PROBES
) -> tuple[pd.DataFrame, list[str]]:
    """Build the ALL table from the expression matrix and phenotype data.

    Parameters
    ----------
    exprs : pandas.DataFrame
        Probes x samples expression matrix.
    pheno : pandas.DataFrame
        Phenotype table indexed by sample name, with ``sex``, ``age``, ``BT``
        and ``mol.biol`` columns.
    n_probes : int, optional
        Number of highest-variance probes to keep.

    Returns
    -------
    table : pandas.DataFrame
        One row per sample: ``sample_id``, ``sex``, ``age``, ``lineage``,
        ``mol_biol`` and the kept probes, by decreasing variance.
    probes : list of str
        The kept probe IDs, by decreasing variance (sample variance,
        ``ddof=1``, on the unrounded values; ties keep the original order).

    """
    variance = exprs.var(axis=1, ddof=1)
    order = variance.sort_values(ascending=False, kind="mergesort")
    probes = list(order.index[:n_probes])
    LOGGER.info(
        "kept %d probes, variance %.4f .. %.4f",
        len(probes),
        order.iloc[0],
        order.iloc[n_probes - 1],
    )

    pheno = pheno.reset_index(drop=False, names="sample_id")
    phenotypes = pd.DataFrame(
        {
            "sample_id": pheno["sample_id"].astype("string"),
            "sex": pheno["sex"].astype("string"),
            "age": pheno["age"].astype("Int64"),  # nullable: missing ages stay empty, not 53.0
            "lineage": pheno["BT"].astype("string").str[0],
            "mol_biol": pheno["mol.biol"].astype("string"),
        }
    )
    values = exprs.loc[probes].T.round(EXPR_DECIMALS).reset_index(drop=True)
    table = pd.concat([phenotypes, values], axis=1)
    return table, probes


def write_targets(probes: Sequence[str], path: Path, step: int = TARGET_STEP) -> list[str]:
    """Write the D-GEX-style regression targets, one probe ID per line.

    Parameters
    ----------
    probes : sequence of str
        Probe IDs sorted by decreasing variance.
    path : pathlib.Path
        Destination text file.
    step : int, optional
        Take every ``step``-th probe, starting at rank 0.

    Returns
    -------
    list of str
        The chosen target probe IDs.

    """
    targets = list(probes[::step])
    header = (
        f"# Regression targets for all_leukaemia.csv.gz: every {step}th probe of the "
        f"{len(probes)} probes sorted by decreasing variance (ranks 0, {step}, "
        f"{2 * step}, ..., {step * (len(targets) - 1)}); the other probes are inputs."
    )
    path.write_text("\n".join([header, *targets]) + "\n", encoding="utf-8")
    LOGGER.info("wrote %s (%d targets)", path, len(targets))
    return targets


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line.

    Parameters
    ----------
    argv : sequence of str or None, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    argparse.Namespace
        ``source`` (``.deb`` or ``.rda`` path) and ``outdir``.

    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "source",
        type=Path,
        help="r-bioc-all_*.deb (Debian package of Bioconductor 'ALL') or its data/ALL.rda",
    )
    parser.add_argument(
        "-o",
        "--outdir",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="output folder (default: the folder of this script)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Write the demo data files.

    Parameters
    ----------
    argv : sequence of str or None, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    outdir: Path = args.outdir
    outdir.mkdir(parents=True, exist_ok=True)

    write_gzip_csv(breast_cancer_table(), outdir / "breast_cancer.csv.gz")

    with tempfile.TemporaryDirectory() as tmp:
        source: Path = args.source
        rda = extract_rda_from_deb(source, Path(tmp)) if source.suffix == ".deb" else source
        exprs, pheno = read_all_expression_set(rda)
    table, probes = all_leukaemia_table(exprs, pheno)
    write_gzip_csv(table, outdir / "all_leukaemia.csv.gz", float_format=f"%.{EXPR_DECIMALS}f")
    write_targets(probes, outdir / "all_leukaemia_targets.txt")


if __name__ == "__main__":
    main()
