"""What every modality defines: the interface the config checks, the steps and the report use.

A modality is the kind of data an experiment learns from. Its object answers, for that data:
which config keys it reads and which rules they follow, which files are its inputs, how they
become the canonical dataset (checked before any training), what the deep model reads and
which family it uses by default, how a fold is preprocessed, which baseline sits beside the deep
model and what it reads, what the interpretation does, which figures and report facts it adds,
and how new samples are read for prediction. Every method has the plain-table behaviour here;
a modality overrides what differs.

Modality modules are imported when the Snakefile checks a config, so the methods that drive
heavy science (preprocessing, baselines, interpretation) load it when they run.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from dlpipe.errors import ConfigError, InputError
from dlpipe.io.fitted import load_fitted
from dlpipe.schema import for_modality
from dlpipe.tasks import Task, dataset_folds, get_task


class Modality:
    """The plain-table behaviour every modality starts from."""

    #: Name in ``data.modality``.
    name: ClassVar[str]
    #: What the deep model reads (:data:`dlpipe.models.INPUT_KINDS`).
    inputs: ClassVar[str] = "features"
    #: Model family used when the config names none.
    default_model: ClassVar[str] = "mlp"
    #: Keys of ``data`` that name input files, in the order of the prepare job's inputs.
    file_keys: ClassVar[tuple[str, ...]] = ("path",)
    #: Those of them that may name a folder instead of a file (images in class sub-folders).
    folder_keys: ClassVar[tuple[str, ...]] = ()
    #: Scheduling priority of an experiment's per-fold jobs (higher starts first).
    priority: ClassVar[int] = 0
    #: Kind of interpretation it writes and the report shows (``features``, ``sequence``,
    #: ``image``, or ``none``: the interpret step only records why nothing is explained).
    interpretation: ClassVar[str] = "features"
    #: Keys of a ``predict`` job that give new samples of this modality.
    prediction_inputs: ClassVar[tuple[str, ...]] = ("table",)
    #: The same in words, for messages.
    prediction_inputs_text: ClassVar[str] = "a table"
    #: Whether the interpretation reads the folds' test predictions (to pick what to explain).
    interpret_reads_predictions: ClassVar[bool] = False
    #: Extras of pyproject (``dlpipe[...]``) its interpretation needs beyond the core.
    interpret_extras: ClassVar[tuple[str, ...]] = ()
    #: Whether the modality scores its learners itself (:meth:`side_scores`), not from ``X``.
    scores_learners: ClassVar[bool] = False
    #: What was fitted on training sides only, for the report's cross-validation section.
    fitted_sentence: ClassVar[str] = (
        "Everything fitted (imputer, feature filters, normalisation, SMOTE, early stopping) saw "
        "the training side of its fold only; each test fold was scored once."
    )

    # --- configuration ----------------------------------------------------------------------

    def task(self, exp: Mapping[str, Any]) -> Task:
        """Return the task the data pose (the config's ``task``)."""
        return get_task(exp["task"])

    def check_config(self, key: str, exp: Mapping[str, Any]) -> None:
        """Rules between keys of one experiment that the schema cannot express."""

    def input_files(self, exp: Mapping[str, Any]) -> dict[str, str]:
        """Map the input files an experiment names: ``{key under data: path}``, in a fixed order."""
        data = exp["data"]
        return {key: data[key] for key in self.file_keys if data.get(key)}

    def with_inputs(self, exp: Mapping[str, Any], local: Sequence[str]) -> dict[str, Any]:
        """Copy of ``exp`` whose input files are ``local`` (in the order of :meth:`input_files`).

        With a remote default storage (S3, GCS), Snakemake stages a job's inputs at local paths
        that differ from the config's.
        """
        out = copy.deepcopy(dict(exp))
        for key, path in zip(self.input_files(exp), local, strict=True):
            head, _, target = key.partition(".")
            if target:
                out["data"][head][target] = str(path)
            else:
                out["data"][head] = str(path)
        return out

    def prepare_inputs(self, name: str, exp: Mapping[str, Any]) -> dict[str, str]:
        """Files of earlier jobs the prepare job reads besides the raw inputs."""
        return {}

    def preprocess_inputs(self, name: str, exp: Mapping[str, Any]) -> dict[str, str]:
        """Files besides the dataset that each fold's preprocess job reads."""
        return {}

    def fold_inputs(self, name: str, exp: Mapping[str, Any]) -> dict[str, str]:
        """Files besides a fold's own that its train, baseline and evaluate jobs read."""
        return {}

    def check_prediction_job(self, key: str, job: Mapping[str, Any], given: str) -> None:
        """Rules of a ``predict`` job of this modality (``given``: its one input key)."""

    def report_files(self, name: str, exp: Mapping[str, Any]) -> dict[str, str]:
        """Files of the modality's own report sections, keyed as the report rule's inputs."""
        return {}

    # --- data -------------------------------------------------------------------------------

    def prepare(
        self, name: str, exp: Mapping[str, Any], folder: Path, integrated: str | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Read and check the raw inputs; return the dataset and ``{input file: sha256}``.

        ``folder`` is the experiment's results folder (for caches such as a FASTA index).
        """
        raise NotImplementedError

    def describe_data(self, name: str, exp: Mapping[str, Any]) -> str:
        """Check an experiment's data as the prepare step does; one line for ``dlpipe check``."""
        raise NotImplementedError

    def check_split(self, name: str, data: Any, exp: Mapping[str, Any]) -> None:
        """Assign the folds of a prepared dataset as the split step will, to fail now if not.

        Raises
        ------
        InputError
            When the CV plan cannot split these data (more folds than samples or groups, a
            class too small for a side), naming the experiment.
        """
        try:
            self.folds(data, exp)
        except InputError as err:
            raise InputError(f"experiments.{name}: {err}") from None
        except ValueError as err:  # scikit-learn's splitters refuse some small data
            raise InputError(
                f"experiments.{name}: cv.plan {exp['cv']['plan']!r} cannot split these data "
                f"({err}); lower cv.n_splits or use more samples"
            ) from None

    def folds(self, data: Any, exp: Mapping[str, Any]) -> pd.DataFrame:
        """Assign every sample to train, val or test in every fold (the split step's table)."""
        return dataset_folds(data, exp)

    def fold_sides(
        self, data: Any, folds: pd.DataFrame, fold: int, exp: Mapping[str, Any]
    ) -> tuple[dict[str, Any], Any, dict[str, Any]]:
        """Preprocess one fold of the split step's table (see :meth:`preprocess_fold`)."""
        from dlpipe.split import fold_indices  # lazy: scikit-learn, 0.7 s

        return self.preprocess_fold(data, fold_indices(folds, fold, data.ids), exp)

    def preprocess_fold(
        self, data: Any, index: Mapping[str, np.ndarray], exp: Mapping[str, Any]
    ) -> tuple[dict[str, Any], Any, dict[str, Any]]:
        """Fit on the fold's training side; return its sides, the fitted object, a summary."""
        from dlpipe.preprocess import preprocess_fold  # lazy: scikit-learn, 0.7 s

        return preprocess_fold(data, index, exp["preprocess"], int(exp["seed"]))

    def load_side(self, path: str) -> Any:
        """Read one side of a fold written by :meth:`fold_sides` (``ids``, ``X``, ``y``)."""
        from dlpipe.preprocess import FoldArrays  # lazy: scikit-learn, 0.7 s

        return FoldArrays.load(path)

    def train_fold(
        self,
        exp: Mapping[str, Any],
        info: Mapping[str, Any],
        train: str,
        val: str,
        preprocessor: str,
        checkpoint: str,
        history: str,
        threads: int = 1,
        state_dir: str | None = None,
    ) -> None:
        """Train the deep model of one fold with Lightning; write checkpoint and history.

        ``info`` is the dataset's ``dataset.json``; ``exp`` holds the data's task.
        """
        from dlpipe.datasets import learner_input  # lazy: pyarrow
        from dlpipe.models import fold_model
        from dlpipe.train import fit  # lazy: Lightning, 4 s

        task = get_task(info["task"])
        # training.reverse_complement as resolved for these data when they were prepared (auto:
        # unstranded DNA windows only); data without a strand plan are not sequences.
        plan = info.get("meta", {}).get("strand", {})
        exp = {**exp}
        exp["training"] = {
            **exp["training"],
            "reverse_complement": bool(plan.get("reverse_complement", False)),
        }
        fitted = load_fitted(preprocessor)
        # p ≫ n folds: an MLP's unset hidden_layers and dropout take the narrow defaults.
        exp["model"] = fold_model(exp["model"], getattr(fitted, "selection", None))
        tr, va = self.load_side(train), self.load_side(val)
        y_tr, y_va = task.scaled_targets(tr.y, fitted), task.scaled_targets(va.y, fitted)
        X_tr, X_va = (learner_input(a.X, info, "model", fitted) for a in (tr, va))  # noqa: N806
        fit(
            (X_tr, y_tr),
            (X_va, y_va),
            exp,
            task,
            task.n_outputs(info),
            checkpoint,
            history,
            threads,
            state_dir,
        )

    def fit_baselines(
        self, exp: Mapping[str, Any], info: Mapping[str, Any], train: str, preprocessor: str
    ) -> dict[str, Any]:
        """Fit every baseline on the fold's training side: ``{name: fitted model}``."""
        from dlpipe.datasets import learner_input  # lazy: pyarrow

        task = get_task(info["task"])
        fitted = load_fitted(preprocessor)
        tr = self.load_side(train)
        y = task.scaled_targets(tr.y, fitted)
        X = learner_input(tr.X, info, "baseline", fitted)  # noqa: N806
        return {
            name: self.make_baseline(exp, task, kind).fit(X, y)
            for name, kind in self.baselines_of(exp, task, info).items()
        }

    def side_scores(
        self,
        exp: Mapping[str, Any],
        task: Task,
        info: Mapping[str, Any],
        learner: str,
        path: str,
        side: Any,
        fitted: Any,
    ) -> np.ndarray:
        """Scores of one learner on a side's rows, where :attr:`scores_learners` says so.

        The other modalities' learners read a side's ``X`` and are scored by
        :func:`dlpipe.learners.learner_scores`.
        """
        raise NotImplementedError

    def prediction_extras(self, table: pd.DataFrame, side: Any, fitted: Any) -> pd.DataFrame:
        """Add the modality's own columns to a learner's prediction rows (none for tables)."""
        return table

    # --- learners ---------------------------------------------------------------------------

    #: The baseline kinds the modality offers (``baseline.models``).
    baseline_kinds: ClassVar[tuple[str, ...]] = ("linear", "random_forest")

    def auto_baselines(self, exp: Mapping[str, Any], facts: Mapping[str, Any] | None) -> list[str]:
        """Return the kinds ``baseline.models: auto`` fits (``facts``: the data's, from prepare)."""
        return ["linear"]

    def baseline_plan(
        self, exp: Mapping[str, Any], task: Task, facts: Mapping[str, Any] | None = None
    ) -> dict[str, str]:
        """Name → kind of the baselines an experiment fits, in order (none when disabled).

        ``facts`` are the data's (``dataset.json``'s ``meta``), which ``auto`` may depend on;
        the prepare step records the plan there, so that every later step reads one answer.
        """
        base = exp["baseline"]
        if not base["enabled"]:
            return {}
        models = base.get("models", "auto")
        kinds = self.auto_baselines(exp, facts) if models == "auto" else list(models)
        return {self.baseline_name(exp, task, kind): kind for kind in kinds}

    def check_baselines(self, key: str, exp: Mapping[str, Any]) -> None:
        """Refuse baseline kinds the modality does not offer, naming those it does."""
        models = exp["baseline"].get("models", "auto")
        for kind in [] if models == "auto" else models:
            if kind not in self.baseline_kinds:
                raise ConfigError(
                    f"config key {key}.baseline.models: {kind!r} is not a baseline of "
                    f"{self.name} data; use auto or some of: {', '.join(self.baseline_kinds)}"
                )

    def baseline_name(self, exp: Mapping[str, Any], task: Task, kind: str = "linear") -> str:
        """Name a baseline learner in tables and figures (``task``: the data's task)."""
        return task.baseline_model_name(kind)

    def learners(
        self, exp: Mapping[str, Any], task: Task, info: Mapping[str, Any] | None = None
    ) -> list[str]:
        """Name the learners an experiment evaluates: the deep model, then its baselines.

        ``info`` is the experiment's ``dataset.json``, whose baseline plan (recorded by the
        prepare step) is the one used; without it the plan is resolved from the config alone.
        """
        return [exp["model"]["name"], *self.baselines_of(exp, task, info)]

    def baselines_of(
        self, exp: Mapping[str, Any], task: Task, info: Mapping[str, Any] | None = None
    ) -> dict[str, str]:
        """Name → kind of the baselines, as the prepare step recorded them in ``info``."""
        facts = (info or {}).get("meta") or {}
        plan = facts.get("baselines")
        return dict(plan) if plan is not None else self.baseline_plan(exp, task, facts)

    def make_baseline(self, exp: Mapping[str, Any], task: Task, kind: str = "linear") -> Any:
        """Return an unfitted baseline of the task on the preprocessed features."""
        return task.make_baseline(
            exp["baseline"],
            int(exp["seed"]),
            exp["training"]["class_weights"] == "balanced",
            kind,
        )

    # --- figures, interpretation, report ----------------------------------------------------

    def figures(self, meta: Mapping[str, Any]) -> list[str]:
        """Figures the modality adds to the task's (file names)."""
        return []

    def draw_figures(self, dataset: str, meta: Mapping[str, Any], out: Path) -> None:
        """Draw :meth:`figures` from the experiment's dataset into ``out``."""

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
        """Explain the fold models on held-out samples; write tables and figures into ``out``.

        Tables: integrated gradients per class (or target) and permutation importance, per fold
        on its test rows with its own model (``feature_importance.tsv``, ``features.png``).

        Returns
        -------
        dict
            What the summary of the interpretation records.
        """
        from dlpipe import interpret  # lazy: torch and captum, 3 s
        from dlpipe.plots import interpretation as figures  # lazy: matplotlib, logomaker

        fitted = {fold: load_fitted(path) for fold, path in preprocessors.items()}
        table = interpret.tabular_importance(
            exp, task, meta, data.features, data.y, folds, checkpoints, fitted
        )
        table.to_csv(out / "feature_importance.tsv", sep="\t", index=False, float_format="%.6g")
        figures.feature_bars(
            table, task.categorical, int(exp["interpret"]["top_features"]), out / "features.png"
        )
        return {"features": int(table["feature"].nunique()), "figures": ["features.png"]}

    def data_facts(self, meta: Mapping[str, Any], exp: Mapping[str, Any]) -> list[tuple[str, Any]]:
        """Rows of the report's data table: source, checksum, samples, features, labels."""
        m = meta["meta"]
        items: list[tuple[str, Any]] = [
            ("source", m["source"]),
            ("sha256", m["sha256"][:16] + "…"),
            ("samples", m["n_samples"]),
            ("features", f"{m['n_features']} ({m['n_categorical']} categorical)"),
            ("missing feature values (imputed per fold)", m["missing_values"]),
            ("task", exp["task"]),
        ]
        if get_task(meta["task"]).categorical:
            counts = m["class_counts"]
            items.append(("classes", ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))))
        else:
            items.append(("targets", ", ".join(meta["target_columns"])))
        if meta.get("group_column"):
            items.append(("groups", f"{m.get('n_groups')} in column {meta['group_column']}"))
        return items

    def shown_settings(self, exp: Mapping[str, Any]) -> dict[str, Any]:
        """Return the experiment's config without the keys this modality does not read.

        Defaults fill every key in every experiment; the schema's ``x-modalities`` names the
        modalities that read a key (:func:`dlpipe.schema.for_modality`).
        """
        return for_modality(exp, self.name)

    def preprocessing_text(self, exp: Mapping[str, Any]) -> str | None:
        """Say what is fitted before training, for the report (``None``: the table steps)."""
        return None

    def baseline_text(self, exp: Mapping[str, Any], kind: str = "linear") -> str:
        """Describe a baseline in words."""
        return self.task(exp).baseline_model_text(exp["baseline"], kind)

    def fitted_text(self, exp: Mapping[str, Any]) -> str:
        """Say what was fitted on each fold's training side, for the DOME summary."""
        smote = ", SMOTE" if exp["preprocess"]["smote"] else ""
        return (
            f"preprocessing (imputation, feature filters, normalisation{smote}) and model "
            "weights: training side of each fold"
        )

    def optimisation_text(self, exp: Mapping[str, Any]) -> str:
        """Say how the deep model was optimised, for the DOME summary."""
        train = exp["training"]
        return (
            f"{train['optimizer']} lr {train['learning_rate']}, weight decay "
            f"{train['weight_decay']}, batch {train['batch_size']}, up to {train['max_epochs']} "
            f"epochs, patience {train['patience']}, class weights {train['class_weights']}"
        )

    def training_text(self, exp: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
        """Training settings the modality adds to the DOME summary (``meta``: dataset.json)."""
        return ""

    def model_inputs_text(
        self, meta: Mapping[str, Any], summaries: Sequence[Mapping[str, Any]]
    ) -> str:
        """Say what the deep model reads, for the DOME summary."""
        return f"{summaries[0]['n_model_features']} preprocessed features"

    def explained_text(self) -> str:
        """How the interpretation explains the model, for the DOME summary."""
        return "; explained by integrated gradients and permutation importance"

    # --- new samples ------------------------------------------------------------------------

    def read_new(
        self,
        source: Mapping[str, Any],
        exp: Mapping[str, Any],
        meta: Mapping[str, Any],
        first_preprocessor: Any,
    ) -> tuple[np.ndarray, Any, dict[str, Any]]:
        """Ids, model inputs before each fold's preprocessing, and extra id columns."""
        raise NotImplementedError

    def model_input(self, raw: Any, fitted: Any) -> np.ndarray:
        """Return a fold's model input from :meth:`read_new`'s (tables: its preprocessing)."""
        return fitted.transform(raw)
