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

from dlpipe.config import load_yaml, validate_config
from dlpipe.errors import DlpipeError

log = logging.getLogger("dlpipe")


def check(config_path: str) -> list[str]:
    """Validate a config file and each experiment's data; return one summary line each."""
    from dlpipe.dataset import prepare_tabular
    from dlpipe.workflow import check_inputs

    config = validate_config(load_yaml(config_path))
    check_inputs(config)
    lines = []
    for name, exp in config["experiments"].items():
        if exp["data"]["modality"] == "singlecell":
            from dlpipe.singlecell import check_singlecell, labels_of, load_counts

            adata = load_counts(exp["data"]["path"], exp["data"]["layer"])
            check_singlecell(adata, exp, name)
            batches = adata.obs[exp["data"]["batch_column"]].astype(str).value_counts()
            labelled = int(labels_of(adata, exp["data"]["label_column"]).notna().sum())
            lines.append(
                f"{name}: {adata.n_obs} cells × {adata.n_vars} genes of raw counts in "
                f"{len(batches)} batches, {labelled} labelled"
            )
            continue
        if exp["data"]["modality"] == "sequence" and exp["data"]["fasta"]:
            from dlpipe.sequence import prepare_fasta

            data = prepare_fasta(exp, name)
        elif exp["data"]["modality"] == "sequence":
            from dlpipe.sequence import check_chromosomes, open_fasta, read_bed

            fasta = open_fasta(exp["data"]["genome"])
            lengths = dict(zip(fasta.references, fasta.lengths, strict=True))
            sizes = []
            for target, path in exp["data"]["bed"].items():
                bed = read_bed(path)
                check_chromosomes(bed, lengths, path)
                sizes.append(f"{target}: {len(bed)} intervals")
            lines.append(f"{name}: genome of {len(lengths)} sequence(s); {', '.join(sizes)}")
            continue
        else:
            data = prepare_tabular(exp, name)
        counts = data.meta.get("class_counts") or {}
        detail = ", ".join(f"{k}: {v}" for k, v in counts.items())
        lines.append(
            f"{name}: {data.meta['n_samples']} samples" + (f" ({detail})" if detail else "")
        )
    return lines


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
        for line in check(args.config):
            sys.stdout.write(line + "\n")
    except DlpipeError as error:
        sys.stderr.write(f"dlpipe error: {error}\n")
        return 1
    sys.stdout.write("config and data are valid\n")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from dlpipe.predict import FoldModels, input_kind, predict_new

    kind = args.format or input_kind(args.input)
    source = {kind: args.input, "genome": args.genome, "id_column": args.id_column}
    try:
        frame = predict_new(FoldModels.from_results(args.results), source)
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
