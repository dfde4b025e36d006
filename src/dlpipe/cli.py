"""Command line: ``dlpipe run``, ``dlpipe check`` and ``dlpipe predict``.

``dlpipe run CONFIG [snakemake options]`` is the front door of the workflow: it checks the
config and the data as ``dlpipe check`` does, then hands over to Snakemake with the workflow's
Snakefile and ``--configfile CONFIG``, so the first error a user meets is dlpipe's (naming file,
line or key), not a traceback of Snakemake's.

``dlpipe check CONFIG`` answers, in seconds and without running anything, whether that run
would start: the config against the schema, every input file, and every experiment's data
through the same checks as the ``prepare`` and ``split`` steps.

``dlpipe predict results/EXP NEW_INPUT`` applies the k fold models of an experiment the workflow
has run to a new table, FASTA file, or BED file (with ``--genome``) and writes the mean and the
spread over the models as TSV.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import dlpipe
from dlpipe.config import validate_config
from dlpipe.errors import DlpipeError, InputError
from dlpipe.extras import missing
from dlpipe.schema import load_yaml
from dlpipe.steps.check import check_step
from dlpipe.workflow import DAMAGED_ENV, damaged_checkpoints, set_aside_damaged

#: Environment variable naming the workflow's Snakefile for ``dlpipe run``.
WORKFLOW_ENV = "DLPIPE_WORKFLOW"
#: Snakemake options that set the cores or hand the choice to a profile or executor.
_CORE_OPTIONS = (
    "-c",
    "--cores",
    "-j",
    "--jobs",
    "--profile",
    "--executor",
    "-e",
)

log = logging.getLogger("dlpipe")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dlpipe`` command."""
    parser = argparse.ArgumentParser(prog="dlpipe", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"dlpipe {dlpipe.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    runner = sub.add_parser(
        "run",
        help="check a config and its data, then run the workflow with Snakemake",
        description="Check CONFIG and its data, then run snakemake --snakefile WORKFLOW "
        "--configfile CONFIG with the options that follow (default --cores all). The Snakefile: "
        f"--snakefile among the options, else ${WORKFLOW_ENV}, else this checkout's.",
    )
    runner.add_argument("config", help="YAML config file")
    runner.add_argument(
        "snakemake_args", nargs=argparse.REMAINDER, help="options passed on to snakemake"
    )
    checker = sub.add_parser("check", help="validate a config and its input data")
    checker.add_argument("config", help="YAML config file")
    predictor = sub.add_parser(
        "predict", help="predict new data with the fold models of an experiment"
    )
    predictor.add_argument("results", help="the experiment's results folder (results/EXP)")
    predictor.add_argument("input", help="new table (CSV/TSV/Parquet/h5ad), FASTA or BED file")
    predictor.add_argument("--genome", help="reference FASTA of a BED input")
    predictor.add_argument("--id-column", help="id column of a table (default: the config's)")
    predictor.add_argument(
        "--format", choices=("table", "fasta", "bed"), help="input kind (default: from its name)"
    )
    predictor.add_argument("-o", "--output", help="TSV to write (default: standard output)")
    predictor.add_argument(
        "--allow-missing-folds",
        action="store_true",
        help="predict with the fold models that remain when some are missing (says how many)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if args.command == "predict":
        return _predict(args)
    out = sys.stderr if args.command == "run" else sys.stdout
    try:
        for line in check_step(args.config):
            out.write(line + "\n")
        command = (
            _snakemake_command(args.config, args.snakemake_args) if args.command == "run" else None
        )
    except DlpipeError as error:
        sys.stderr.write(f"dlpipe error: {error}\n")
        return 1
    out.write("config and data are valid\n")
    if command is None:
        return 0
    command += _retrain_damaged(args.config, command[3:])
    os.environ[DAMAGED_ENV] = "1"
    sys.stderr.write("running: " + " ".join(command[1:]) + "\n")
    sys.stderr.flush()
    os.execv(command[0], command)  # Snakemake takes over this process (signals, exit status)
    return 0  # not reached


#: Snakemake options (argparse names) under which it plans, lists or reports without running jobs.
_NOT_EXECUTING = (
    "dryrun", "touch", "report", "lint", "containerize", "export_cwl", "list_rules",
    "list_target_rules", "dag", "rulegraph", "filegraph", "d3dag", "summary", "detailed_summary",
    "archive", "cleanup_metadata", "cleanup_shadow", "unlock", "list_changes",
    "list_input_changes", "list_params_changes", "list_untracked", "delete_all_output",
    "delete_temp_output", "print_compilation", "list_conda_envs", "conda_create_envs_only",
)  # fmt: skip


def _retrain_damaged(config: str, options: Sequence[str]) -> list[str]:
    """Snakemake options that retrain the folds whose checkpoint is damaged (none if intact).

    Snakemake reruns neither a job whose output is damaged nor one whose output is missing
    while what depends on it exists, so the damaged files are named to ``--forcerun``. When the
    run executes jobs, each is first renamed ``model.ckpt.damaged`` (kept, not deleted); a dry
    run changes nothing and shows the retraining it plans.
    """
    from snakemake.cli import get_argument_parser  # lazy: Snakemake's, for dlpipe run only

    args, _ = get_argument_parser().parse_known_args(list(options))
    results = Path(args.directory or ".") / "results"
    experiments = validate_config(load_yaml(config))["experiments"]
    damaged = damaged_checkpoints(results, experiments)
    if not damaged:
        return []
    if args.forcerun:
        sys.stderr.write(
            "dlpipe: damaged checkpoints are not retrained because --forcerun is given: "
            + ", ".join(map(str, damaged))
            + "\n"
        )
        return []
    if not any(getattr(args, name, None) for name in _NOT_EXECUTING):
        set_aside_damaged(results, experiments)
        verb = "set aside as model.ckpt.damaged; the fold is trained again"
    else:
        verb = "a run sets it aside and trains the fold again"
    for path in damaged:
        sys.stderr.write(f"dlpipe: {path} is damaged; {verb}\n")
    # Relative to Snakemake's working directory, as its targets are.
    return ["--forcerun", *(str(p.relative_to(results.parent)) for p in damaged)]


def workflow_snakefile(options: Sequence[str]) -> str | None:
    """Find the workflow's Snakefile: in ``options``, ``$DLPIPE_WORKFLOW``, or this checkout.

    Returns
    -------
    str or None
        The path; ``None`` when ``options`` already name one (Snakemake reads it there).

    Raises
    ------
    InputError
        If none is found, or the one named does not exist.
    """
    if any(o in ("-s", "--snakefile") or o.startswith("--snakefile=") for o in options):
        return None
    named = os.environ.get(WORKFLOW_ENV)
    if named:
        if not Path(named).is_file():
            raise InputError(f"${WORKFLOW_ENV}={named}: no such Snakefile")
        return named
    checkout = Path(__file__).resolve().parents[2] / "Snakefile"
    if checkout.is_file():
        return str(checkout)
    raise InputError(
        "dlpipe run: the workflow files are not next to this installation of dlpipe; give "
        f"their Snakefile with --snakefile PATH or ${WORKFLOW_ENV}=PATH"
    )


def _snakemake_command(config: str, options: Sequence[str]) -> list[str]:
    """Build the Snakemake command line ``dlpipe run`` hands over to."""
    if missing("workflow"):
        raise InputError(
            "dlpipe run needs Snakemake, the optional dependency dlpipe[workflow]; install it "
            "with pip install 'dlpipe[workflow]'"
        )
    options = list(options)
    if options[:1] == ["--"]:
        options = options[1:]
    command = [sys.executable, "-m", "snakemake"]
    snakefile = workflow_snakefile(options)
    if snakefile is not None:
        command += ["--snakefile", snakefile]
    command += ["--configfile", config]
    if not any(o.split("=")[0] in _CORE_OPTIONS for o in options):
        command += ["--cores", "all"]
    return command + options


def _predict(args: argparse.Namespace) -> int:
    from dlpipe.steps.predict import predict_results_step  # lazy: torch, for this command only

    try:
        frame = predict_results_step(
            args.results,
            args.input,
            args.format,
            genome=args.genome,
            id_column=args.id_column,
            allow_missing_folds=args.allow_missing_folds,
        )
    except DlpipeError as error:
        sys.stderr.write(f"dlpipe error: {error}\n")
        return 1
    if args.output:
        try:
            frame.to_csv(args.output, sep="\t", index=False, float_format="%.6g")
        except OSError as error:
            reason = error.strerror or str(error)
            sys.stderr.write(f"dlpipe error: {args.output}: cannot be written ({reason})\n")
            return 1
        sys.stderr.write(f"{len(frame)} predictions written to {args.output}\n")
    else:
        sys.stdout.write(frame.to_csv(sep="\t", index=False, float_format="%.6g"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
