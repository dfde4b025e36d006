"""Command line: ``dlpipe check CONFIG`` validates a config and its data without running anything.

The workflow itself runs with Snakemake (``snakemake --cores N --configfile CONFIG``); this
command answers, in seconds, whether that run would start: the config against the schema, every
input file, and every experiment's data through the same checks as the ``prepare`` step.

``dlpipe predict results/EXP NEW_INPUT`` applies the k fold models of an experiment the workflow
has run to a new table, FASTA file, or BED file (with ``--genome``) and writes the mean and the
spread over the models as TSV.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from dlpipe.errors import DlpipeError
from dlpipe.steps.check import check_step

log = logging.getLogger("dlpipe")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dlpipe`` command."""
    parser = argparse.ArgumentParser(prog="dlpipe", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if args.command == "predict":
        return _predict(args)
    try:
        for line in check_step(args.config):
            sys.stdout.write(line + "\n")
    except DlpipeError as error:
        sys.stderr.write(f"dlpipe error: {error}\n")
        return 1
    sys.stdout.write("config and data are valid\n")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from dlpipe.steps.predict import predict_results_step  # lazy: torch, for this command only

    try:
        frame = predict_results_step(
            args.results, args.input, args.format, genome=args.genome, id_column=args.id_column
        )
    except DlpipeError as error:
        sys.stderr.write(f"dlpipe error: {error}\n")
        return 1
    if args.output:
        frame.to_csv(args.output, sep="\t", index=False, float_format="%.6g")
        sys.stderr.write(f"{len(frame)} predictions written to {args.output}\n")
    else:
        sys.stdout.write(frame.to_csv(sep="\t", index=False, float_format="%.6g"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
