"""Prediction on new data with the k fold models of an experiment.

Each fold's model predicts the new samples after that fold's own fitted preprocessing (for
tables) and, for classifiers, its temperature (when calibration ran); dlpipe reports the mean
over the k models as the prediction and their standard deviation as its uncertainty. New inputs
are tables (the experiment's feature columns), FASTA files (sequences cropped or N-padded to the
experiment's length) or BED files with their reference genome (intervals resized like the
training windows).

The workflow runs it for the jobs listed under the config's ``predict`` key; on the command line
``dlpipe predict results/EXP NEW_INPUT`` does the same from an experiment's results folder.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlpipe.errors import ConfigError, InputError

log = logging.getLogger(__name__)

_FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".fas")
_BED_SUFFIXES = (".bed", ".narrowpeak", ".broadpeak")


def input_kind(path: str | Path) -> str:
    """``fasta``, ``bed`` or ``table``, from a file name (``.gz`` ignored)."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] in (".gz", ".bgz"):
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    if last in _FASTA_SUFFIXES:
        return "fasta"
    if last in _BED_SUFFIXES:
        return "bed"
    return "table"


@dataclass
class FoldModels:
    """What predicting with an experiment needs: its config, dataset meta and fold files.

    Attributes
    ----------
    exp
        The experiment's config (defaults filled).
    meta
        The experiment's ``dataset.json``.
    checkpoints, preprocessors
        One ``model.ckpt`` and ``preprocessor.joblib`` per fold, in fold order.
    temperatures
        Per fold, each learner's temperature (see :func:`read_temperatures`); empty when
        calibration did not run.
    """

    exp: Mapping[str, Any]
    meta: Mapping[str, Any]
    checkpoints: Sequence[str]
    preprocessors: Sequence[str]
    temperatures: Sequence[Mapping[str, float]] = field(default_factory=list)

    @classmethod
    def from_results(cls, folder: str | Path) -> FoldModels:
        """Read an experiment's results folder (``results/EXP``) written by the workflow."""
        from dlpipe.config import load_yaml
        from dlpipe.io import read_json

        folder = Path(folder)
        for name in ("dataset.json", "config.yaml"):
            if not (folder / name).is_file():
                raise InputError(
                    f"{folder}: no {name}; give the results folder of one experiment "
                    "(results/EXPERIMENT) after the workflow has run it"
                )
        folds = sorted(
            (p for p in folder.iterdir() if p.name.isdigit() and (p / "model.ckpt").is_file()),
            key=lambda p: int(p.name),
        )
        if not folds:
            raise InputError(f"{folder}: holds no fold model (N/model.ckpt)")
        calibrations = [p / "calibration.json" for p in folds]
        # Calibrated only when every fold is: a mean over mixed models would be neither.
        complete = all(c.is_file() for c in calibrations)
        return cls(
            exp=load_yaml(folder / "config.yaml"),
            meta=read_json(folder / "dataset.json"),
            checkpoints=[str(p / "model.ckpt") for p in folds],
            preprocessors=[str(p / "preprocessor.joblib") for p in folds],
            temperatures=read_temperatures(calibrations) if complete else [],
        )


def read_temperatures(paths: Iterable[str | Path]) -> list[dict[str, float]]:
    """Each fold's learner → temperature, read once from its ``calibration.json``.

    Parameters
    ----------
    paths
        The folds' ``calibration.json`` files, in fold order.

    Returns
    -------
    list of dict
        One mapping per fold; empty when any fold has none (regression, ``calibration.enabled:
        false``, or no files), so that either every fold model is calibrated or none is.

    Raises
    ------
    InputError
        If a file is not a calibration record or a temperature is not a positive number.
    """
    from dlpipe.io import read_json

    out = []
    for path in paths:
        record = read_json(path)
        learners = record.get("learners") if isinstance(record, dict) else None
        if not isinstance(learners, dict):
            raise InputError(f"{path}: not a dlpipe calibration record (no 'learners' mapping)")
        temperatures = {}
        for name, fit in learners.items():
            value = fit.get("temperature") if isinstance(fit, dict) else None
            if not isinstance(value, int | float) or not value > 0:
                raise InputError(
                    f"{path}: learners.{name}.temperature is {value!r}, not a positive number; "
                    "delete the file and rerun the workflow to refit it"
                )
            temperatures[name] = float(value)
        if not temperatures:
            return []
        out.append(temperatures)
    return out


def combine_folds(scores: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation over the fold models' predictions.

    Parameters
    ----------
    scores
        One ``(n, outputs)`` array per fold model.

    Returns
    -------
    tuple of numpy.ndarray
        ``(mean, sd)``, each ``(n, outputs)``; the sd is the sample sd over models (0 for one).
    """
    stack = np.stack([np.asarray(s, dtype=np.float64) for s in scores])
    sd = stack.std(axis=0, ddof=1) if len(stack) > 1 else np.zeros(stack.shape[1:])
    return stack.mean(axis=0), sd


def read_new_table(
    path: str | Path,
    input_columns: Sequence[str],
    categorical: Sequence[str],
    id_column: str | None,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Ids and feature columns of a new table, checked against what the models expect.

    Returns
    -------
    tuple
        ``(ids, features)``: numeric features as float, categorical ones as text.
    """
    from dlpipe.dataset import as_category_text
    from dlpipe.io import read_table

    text = [c for c in [id_column, *categorical] if c]
    table = read_table(path, text_columns=text)
    missing = [c for c in input_columns if c not in table.columns]
    if missing:
        raise InputError(
            f"{path}: {len(missing)} feature column(s) the models were trained on are missing, "
            f"e.g. {missing[:5]}; the new table needs every training feature column"
        )
    if id_column and id_column in table.columns:
        ids = table[id_column].astype(str).to_numpy()
    elif "obs_names" in table.columns:
        ids = table["obs_names"].astype(str).to_numpy()
    else:
        ids = np.array([f"row{i + 1}" for i in range(len(table))])
    features = table[list(input_columns)].copy()
    for col in input_columns:
        if col in categorical:
            features[col] = as_category_text(features[col])
            continue
        values = pd.to_numeric(features[col], errors="coerce")
        bad = np.flatnonzero(values.isna().to_numpy() & features[col].notna().to_numpy())
        if len(bad):
            raise InputError(
                f"{path}: feature column {col!r} is not numeric: {features[col].iloc[bad[0]]!r} "
                f"in data row {bad[0] + 1}"
            )
        features[col] = values.astype(np.float64)
    return ids, features


def read_new_fasta(path: str | Path, length: int, alphabet: str) -> tuple[np.ndarray, np.ndarray]:
    """Ids and codes of new sequences, centre-cropped or padded (N / X) to ``length``."""
    from dlpipe.encode import encode
    from dlpipe.sequence import fit_length, read_fasta_records

    records = read_fasta_records(path, "the FASTA of new sequences")
    pad = "X" if alphabet == "protein" else "N"
    ids = np.array([header.split()[0] for header, _ in records])
    codes = encode([fit_length(seq, length, pad) for _, seq in records], alphabet)
    return ids, codes


def read_new_intervals(
    bed: str | Path, genome: str | Path, length: int, use_summit: bool = True
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Ids, codes and windows of new BED intervals, resized around summit or centre.

    Windows running past a chromosome end are padded with N.
    """
    from dlpipe.sequence import check_chromosomes, fetch, open_fasta, read_bed, resize

    fasta = open_fasta(genome)
    lengths = dict(zip(fasta.references, fasta.lengths, strict=True))
    intervals = read_bed(bed)
    check_chromosomes(intervals, lengths, str(bed))
    windows = resize(intervals, length, use_summit).reset_index(drop=True)
    codes = fetch(fasta, windows)
    ids = (
        windows["chrom"] + ":" + windows["start"].astype(str) + "-" + windows["end"].astype(str)
    ).to_numpy()
    return ids, codes, windows


def predict_new(models: FoldModels, source: Mapping[str, Any]) -> pd.DataFrame:
    """Predict new samples with every fold model; report the mean and sd over models.

    Parameters
    ----------
    models
        The experiment's fold models.
    source
        One of ``table`` (with optional ``id_column``), ``fasta``, or ``bed`` with ``genome``.

    Returns
    -------
    pandas.DataFrame
        ``id`` (and ``name`` for BED input), then per class ``prob_<class>`` and
        ``prob_<class>_sd`` and ``y_pred`` (classification), per target ``prob_<t>`` /
        ``prob_<t>_sd`` (multi-label) or ``pred_<t>`` / ``pred_<t>_sd`` on the original scale
        (regression), and ``models``. Classifier probabilities are temperature-scaled when the
        folds were calibrated (``calibrated`` column).
    """
    import joblib

    from dlpipe.calibrate import apply_temperature
    from dlpipe.pipeline import learner_scores

    exp, meta = models.exp, models.meta
    task = meta["task"]
    sequence = meta.get("modality") == "sequence"
    if meta.get("modality") == "singlecell":
        raise InputError(
            "a single-cell experiment classifies cells on the latent space of its own scVI run; "
            "add new cells to its .h5ad (unlabelled: scANVI transfers labels to them) instead"
        )
    extra: dict[str, Any] = {}
    if sequence and source.get("table"):
        raise InputError("a sequence experiment predicts FASTA or BED input, not a table")
    if not sequence and (source.get("fasta") or source.get("bed")):
        raise InputError("a tabular experiment predicts a table, not FASTA or BED input")
    if source.get("fasta"):
        ids, codes = read_new_fasta(source["fasta"], int(meta["length"]), meta["alphabet"])
    elif source.get("bed"):
        if not source.get("genome"):
            raise InputError(f"{source['bed']}: BED input needs its reference genome (FASTA)")
        ids, codes, windows = read_new_intervals(
            source["bed"],
            source["genome"],
            int(meta["length"]),
            bool(exp.get("data", {}).get("use_summit", True)),
        )
        extra["name"] = windows["name"].to_numpy()
    elif source.get("table"):
        id_column = source.get("id_column") or exp.get("data", {}).get("id_column")
        first = joblib.load(models.preprocessors[0])
        ids, features = read_new_table(
            source["table"], first.input_columns, meta.get("categorical_columns") or [], id_column
        )
    else:
        raise InputError("nothing to predict: give a table, a FASTA file or a BED file")
    n_classes = len(meta["classes"]) if task != "regression" else None
    name = exp["model"]["name"]
    if models.temperatures and (
        len(models.temperatures) != len(models.checkpoints)
        or any(name not in t for t in models.temperatures)
    ):
        raise InputError(
            f"the calibration records do not give a {name} temperature for each of the "
            f"{len(models.checkpoints)} fold models; rerun the workflow to refit them"
        )
    per_fold = []
    for k, (ckpt, pre) in enumerate(zip(models.checkpoints, models.preprocessors, strict=True)):
        fitted = joblib.load(pre)
        X = codes if sequence else fitted.transform(features)  # noqa: N806
        scores = learner_scores(exp, name, ckpt, X, fitted, n_classes, task, meta)
        if models.temperatures and task != "regression":
            scores = apply_temperature(scores, models.temperatures[k][name], task)
        per_fold.append(scores)
    mean, sd = combine_folds(per_fold)
    frame = pd.DataFrame({"id": ids, **extra})
    outputs = list(meta["classes"]) if task != "regression" else list(meta["target_columns"])
    prefix = "pred" if task == "regression" else "prob"
    for j, out in enumerate(outputs):
        frame[f"{prefix}_{out}"] = mean[:, j]
        frame[f"{prefix}_{out}_sd"] = sd[:, j]
    if task == "classification":
        frame["y_pred"] = np.asarray(outputs)[mean.argmax(axis=1)]
    frame["models"] = len(per_fold)
    if task != "regression":
        frame["calibrated"] = bool(models.temperatures)
    return frame


def predict_step(
    exp: Mapping[str, Any],
    job: Mapping[str, Any],
    meta: str,
    checkpoints: Sequence[str],
    preprocessors: Sequence[str],
    calibrations: Sequence[str],
    out_tsv: str,
) -> pd.DataFrame:
    """Rule ``predict``: one prediction job of the config's ``predict`` section to TSV."""
    from dlpipe.io import read_json

    temperatures = read_temperatures(calibrations)
    models = FoldModels(exp, read_json(meta), list(checkpoints), list(preprocessors), temperatures)
    frame = predict_new(models, job)
    frame.to_csv(out_tsv, sep="\t", index=False, float_format="%.6g")
    log.info("%d samples predicted by %d fold models", len(frame), len(checkpoints))
    return frame


def check_prediction_jobs(config: Mapping[str, Any]) -> None:
    """Config rules of the ``predict`` section that the schema cannot express.

    Each job names an existing experiment and exactly one input that suits its modality (a
    table for tabular experiments; FASTA, or BED with its genome, for sequence experiments).
    """
    for name, job in (config.get("predict") or {}).items():
        key = f"predict.{name}"
        exp = config["experiments"].get(job["experiment"])
        if exp is None:
            raise ConfigError(
                f"config key {key}.experiment: {job['experiment']!r} is not an experiment of "
                f"this config; choose one of {', '.join(config['experiments'])}"
            )
        if exp["data"]["modality"] == "singlecell":
            raise ConfigError(
                f"config key {key}.experiment: {job['experiment']!r} classifies cells on the "
                "latent space of its own scVI run; new cells need mapping onto that model, "
                "which dlpipe predict does not do. Add the cells to the experiment's .h5ad "
                "(unlabelled: scANVI transfers labels to them) and run it again"
            )
        given = [k for k in ("table", "fasta", "bed") if job.get(k)]
        if len(given) != 1:
            raise ConfigError(
                f"config key {key}: give exactly one input (table, fasta or bed), not "
                f"{given or 'none'}"
            )
        sequence = exp["data"]["modality"] == "sequence"
        if sequence and given[0] == "table":
            raise ConfigError(
                f"config key {key}.table: {job['experiment']!r} is a sequence experiment; give "
                "fasta, or bed with genome"
            )
        if not sequence and given[0] != "table":
            raise ConfigError(
                f"config key {key}.{given[0]}: {job['experiment']!r} is a tabular experiment; "
                "give a table"
            )
        if given[0] == "bed" and not job.get("genome"):
            raise ConfigError(f"config key {key}.genome: bed input needs its reference genome")
