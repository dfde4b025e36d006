"""Command line: ``dlpipe check CONFIG`` validates a config and its data without running anything.

The workflow itself runs with Snakemake (``snakemake --cores N --configfile CONFIG``); this
command answers, in seconds, whether that run would start: the config against the schema, every
input file, and every experiment's data through the same checks as the ``prepare`` step.
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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        for line in check(args.config):
            sys.stdout.write(line + "\n")
    except DlpipeError as error:
        sys.stderr.write(f"dlpipe error: {error}\n")
        return 1
    sys.stdout.write("config and data are valid\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
