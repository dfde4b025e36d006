"""Sequences: genome windows from a FASTA and BED files, or a FASTA of labelled sequences.

:func:`prepare_sequence` reads the reference (pysam) and the BED files of positives, resizes the
intervals, draws GC-matched negatives (or dinucleotide-shuffled ones) and assigns every window a
CV group (chromosome, or genomic bin; overlapping windows share one); :func:`prepare_fasta` reads
labelled DNA, RNA or protein sequences. Sequences are stored once as 1-byte codes; the deep model
(a CNN by default) expands them to one-hot on the device, the baseline is the task's linear
model on k-mer frequencies. Interpretation explains the top-scoring held-out sequences and finds
the motifs the model learned.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from dlpipe.alphabet import (
    ALPHABETS,
    LETTERS,
    MAX_KMERS,
    alphabet_size,
    encode,
    gc_content,
    kmer_limit,
    reverse_complement,
)
from dlpipe.cv import CHROMOSOME_PLANS, GROUP_PLANS
from dlpipe.datasets import SequenceDataset, check_class_sizes
from dlpipe.errors import ConfigError, InputError
from dlpipe.genomic import (
    NegativeSampling,
    clip_to_chromosomes,
    fetch,
    fit_length,
    gc_matched_negatives,
    genomic_groups,
    is_stranded,
    label_windows,
    overlap_clusters,
    overlaps,
    resize,
    shuffled_negatives,
    strand_plan,
)
from dlpipe.io.bed import check_chromosomes, read_bed
from dlpipe.io.fasta import open_fasta, read_fasta_records, read_labelled_fasta
from dlpipe.io.files import read_predictions, sha256
from dlpipe.modalities.base import Modality
from dlpipe.tasks import Task, get_task

log = logging.getLogger(__name__)

#: How the advice names bin_kfold's groups.
BIN_WORDS = "bins of data.bin_size bp"
_COORD = re.compile(r"^(?P<chrom>[^:\s]+):(?P<start>\d+)-(?P<end>\d+)")
_NEGATIVES_TEXT = {
    "genome": "genome windows GC-matched to the positives, away from every positive",
    "shuffle": "dinucleotide-shuffled copies of the positives (each in its source's fold)",
}


def prepare_sequence(
    exp: Mapping[str, Any], name: str = "experiment", cache_dir: str | Path | None = None
) -> SequenceDataset:
    """Build the sequence dataset of an experiment: positives from its BED, GC-matched negatives.

    Parameters
    ----------
    exp
        The experiment's validated config (``data`` of modality ``sequence``, ``cv``, ``seed``).
    name
        Experiment name, for messages.
    cache_dir
        Writable folder for a FASTA index when the genome's folder is read-only.

    Returns
    -------
    dlpipe.datasets.SequenceDataset
        Codes, windows (with label, CV group and GC) and provenance.
    """
    data, cv = exp["data"], exp["cv"]
    fasta = open_fasta(data["genome"], cache_dir)
    lengths = dict(zip(fasta.references, fasta.lengths, strict=True))
    beds = {}
    for target, path in data["bed"].items():
        beds[target] = read_bed(path)
        check_chromosomes(beds[target], lengths, path)
    bed_path = ", ".join(data["bed"].values())
    bed = pd.concat(list(beds.values()), ignore_index=True)
    length = int(data["sequence_length"])
    positives = resize(bed, length, data["use_summit"])
    counts: dict[str, int] = {"intervals_in_bed": len(bed)}
    exclude = []
    if data["blacklist"]:
        black = read_bed(data["blacklist"])
        check_chromosomes(black, lengths, data["blacklist"])
        hit = overlaps(positives, black)
        counts["positives_in_blacklist"] = int(hit.sum())
        positives = positives[~hit]
        exclude.append(black)
    positives, counts["positives_at_chromosome_ends"] = clip_to_chromosomes(
        positives, lengths, data["chrom_ends"]
    )
    stranded = data["strand"] == "auto" and is_stranded(bed)
    before = len(positives)
    same = ["chrom", "start", "strand"] if stranded else ["chrom", "start"]
    positives = positives.drop_duplicates(same).reset_index(drop=True)
    counts["duplicate_positive_windows"] = before - len(positives)
    if positives.empty:
        raise InputError(f"{bed_path}: no positive window is left after resizing and filtering")
    pos_codes = fetch(fasta, positives, stranded=stranded)
    pos_gc = gc_content(pos_codes)
    settings = NegativeSampling(
        ratio=data["negatives"]["ratio"],
        flank=data["negatives"]["flank"],
        max_n_fraction=data["negatives"]["max_n_fraction"],
        gc_bins=data["negatives"]["gc_bins"],
    )
    if data["negatives"]["method"] == "shuffle":
        negatives, neg_codes = shuffled_negatives(
            positives, pos_codes, settings.ratio, int(exp["seed"])
        )
    else:
        # Negatives keep their distance from the original intervals and the resized windows.
        avoid = pd.concat([bed[["chrom", "start", "end"]], positives[["chrom", "start", "end"]]])
        negatives, neg_codes = gc_matched_negatives(
            fasta, avoid, pos_gc, length, settings, int(exp["seed"]), exclude
        )
        if stranded:
            # Positives are read on their strand; background windows on a random one, so
            # that orientation alone does not tell the classes apart.
            minus = np.random.default_rng([int(exp["seed"]), 1]).random(len(negatives)) < 0.5
            negatives = negatives.assign(strand=np.where(minus, "-", "+"))
            neg_codes[minus] = reverse_complement(neg_codes[minus])
    targets = list(beds)
    multilabel = len(targets) > 1
    positive_name = targets[0] if not multilabel else "positive"
    classes = ["background", positive_name] if not multilabel else targets
    place = ["chrom", "start", "end"] + (["strand"] if stranded else [])
    windows = pd.concat(
        [
            positives[place].assign(label=positive_name, gc=pos_gc),
            negatives.reindex(columns=[*place, "copy"]).assign(
                label="background", gc=gc_content(neg_codes)
            ),
        ],
        ignore_index=True,
    )
    if multilabel:
        # DeepSEA-style: a window is positive for every target whose intervals it overlaps;
        # a shuffled copy sits on its source's coordinates but is negative for every target.
        matrix = label_windows(windows, beds)
        matrix[len(positives) :] = 0
        for j, target in enumerate(targets):
            windows[f"y_{target}"] = matrix[:, j]
    codes = np.concatenate([pos_codes, neg_codes])
    _check_chromosome_plan(cv, positives, list(lengths), bed_path)
    by_bins = cv["plan"] == "bin_kfold" or (len(lengths) == 1 and cv["plan"] == "chromosome_kfold")
    windows["group"] = genomic_groups(windows, data["bin_size"] if by_bins else None)
    windows["cluster"] = overlap_clusters(windows)
    strand = ("(" + windows["strand"] + ")") if stranded else ""
    windows.index = pd.Index(
        windows["chrom"]
        + ":"
        + windows["start"].astype(str)
        + "-"
        + windows["end"].astype(str)
        + strand
        + windows.pop("copy").fillna(""),
        name="sample_id",
    )
    counts.update(
        positives=int((windows["label"] != "background").sum()),
        negatives=int((windows["label"] == "background").sum()),
        groups=int(windows["group"].nunique()),
    )
    meta = {
        "source": str(bed_path),
        "genome": str(data["genome"]),
        "sha256": {path: sha256(path) for path in data["bed"].values()},
        "genome_sha256": sha256(data["genome"]),
        "n_samples": len(windows),
        "sequence_length": length,
        "class_counts": (
            {t: int(windows[f"y_{t}"].sum()) for t in targets}
            if multilabel
            else {"background": counts["negatives"], positive_name: counts["positives"]}
        ),
        "counts": counts,
        "gc_positives": float(pos_gc.mean()),
        "gc_negatives": float(windows.loc[windows["label"] == "background", "gc"].mean()),
        "group_by": "genomic bins" if by_bins else "chromosome",
        "fold_guard": fold_guard(cv, windows["cluster"].to_numpy()),
        "negatives": data["negatives"]["method"],
        "strand": asdict(
            strand_plan(exp["training"]["reverse_complement"], "dna", "genome", stranded)
        ),
    }
    log.info("%s: %s", name, counts)
    return SequenceDataset(
        codes=codes,
        windows=windows,
        classes=classes,
        meta=meta,
        task="multilabel" if multilabel else "classification",
    )


def fold_guard(cv: Mapping[str, Any], clusters: np.ndarray) -> str:
    """Say what keeps related genome windows out of each other's folds, for the report."""
    sizes = np.bincount(pd.factorize(clusters)[0])
    chains = f"{int((sizes > 1).sum())} chains of overlapping windows ({int(sizes.max())} at most)"
    if cv["plan"] in GROUP_PLANS:
        return f"whole CV groups per fold; {chains} each inside one group"
    return f"{chains}, each kept in one fold: the plan splits whole chains"


def chromosomes_needed(n_splits: int) -> int:
    """Fewest chromosomes ``chromosome_kfold`` can use: each training side keeps two or more.

    A fold tests up to ``ceil(n / n_splits)`` whole chromosomes, and its validation side is
    carved from whole chromosomes of the rest, so ``n - ceil(n / n_splits) >= 2``.
    """
    n = n_splits
    while n - -(-n // n_splits) < 2:
        n += 1
    return n


def _check_chromosome_plan(
    cv: Mapping[str, Any],
    positives: pd.DataFrame,
    references: list[str],
    source: str,
) -> None:
    """Fail early when a chromosome-aware plan cannot work on these data."""
    if cv["plan"] == "chromosome_holdout":
        named = set(cv["val_chromosomes"]) | set(cv["test_chromosomes"])
        unknown = sorted(named - set(references))
        if unknown:
            raise InputError(
                f"cv.val_chromosomes / cv.test_chromosomes name {unknown}, which are not in the "
                f"genome (it has {references[:5]}{' …' if len(references) > 5 else ''})"
            )
        for key in ("val_chromosomes", "test_chromosomes"):
            if not positives["chrom"].isin(cv[key]).any():
                raise InputError(
                    f"{source}: no positive lies on cv.{key} {cv[key]}; choose chromosomes "
                    "that hold positives"
                )
        if not (~positives["chrom"].isin(named)).any():
            raise InputError(
                f"{source}: every positive lies on a val/test chromosome, none is left to train "
                f"on; name fewer chromosomes, or use cv.plan: bin_kfold (folds of whole "
                f"{BIN_WORDS} inside chromosomes)"
            )
    elif cv["plan"] == "chromosome_kfold" and len(references) > 1:
        n_chrom, k = positives["chrom"].nunique(), int(cv["n_splits"])
        if n_chrom < chromosomes_needed(k):
            raise InputError(
                f"{source}: positives lie on {n_chrom} chromosome(s) "
                f"({sorted(positives['chrom'].unique())[:5]}) but cv.chromosome_kfold with "
                f"n_splits={k} needs {chromosomes_needed(k)} (whole test chromosomes per fold, "
                "and at least two others for training and validation); use cv.plan: bin_kfold "
                f"(folds of whole {BIN_WORDS} inside chromosomes)"
            )


def prepare_fasta(exp: Mapping[str, Any], name: str = "experiment") -> SequenceDataset:
    """Build a sequence dataset from a FASTA of labelled sequences (DNA, RNA or protein).

    Sequences are centre-cropped or N-padded to ``data.sequence_length``. Headers of the form
    ``chrom:start-end`` give genomic coordinates, which chromosome-aware CV plans need.
    """
    data, cv = exp["data"], exp["cv"]
    path = data["fasta"]
    ids, seqs, labels = read_labelled_fasta(path, data["labels"])
    length = int(data["sequence_length"])
    lengths = np.array([len(s) for s in seqs])
    codes = encode_records(path, ids, seqs, length, data["alphabet"], "data.alphabet")
    coords = [_COORD.match(i) for i in ids]
    windows = pd.DataFrame({"label": labels}, index=pd.Index(ids, name="sample_id"))
    if all(coords):
        windows["chrom"] = [m["chrom"] for m in coords]
        windows["start"] = [int(m["start"]) for m in coords]
        windows["end"] = [int(m["end"]) for m in coords]
        bins = data["bin_size"] if cv["plan"] == "bin_kfold" else None
        windows["group"] = genomic_groups(windows.reset_index(drop=True), bins)
        windows["cluster"] = overlap_clusters(windows.reset_index(drop=True))
    elif cv["plan"] in CHROMOSOME_PLANS:
        bad = ids[[m is None for m in coords].index(True)]
        raise InputError(
            f"{path}: cv.plan {cv['plan']} needs headers 'chrom:start-end', but {bad!r} is not"
        )
    else:
        windows["chrom"], windows["start"], windows["end"] = "", 0, 0
        windows["group"] = windows.index.to_numpy()
    windows["gc"] = gc_content(codes) if data["alphabet"] != "protein" else np.nan
    counts = windows["label"].value_counts()
    check_class_sizes(counts, cv, f"{path}: the labels")
    needed = chromosomes_needed(int(cv["n_splits"]))
    if cv["plan"] == "chromosome_kfold" and windows["chrom"].nunique() < needed:
        raise InputError(
            f"{path}: sequences lie on {windows['chrom'].nunique()} chromosome(s) but "
            f"chromosome_kfold with n_splits={cv['n_splits']} needs {needed} (whole test "
            "chromosomes per fold, and at least two others for training and validation); use "
            f"cv.plan: bin_kfold (folds of whole {BIN_WORDS} inside chromosomes)"
        )
    meta = {
        "source": str(path),
        "sha256": sha256(path),
        "n_samples": len(windows),
        "sequence_length": length,
        "class_counts": {str(k): int(v) for k, v in counts.sort_index().items()},
        "counts": {
            "sequences": len(windows),
            "cropped": int((lengths > length).sum()),
            "padded": int((lengths < length).sum()),
            "groups": int(windows["group"].nunique()),
        },
        "gc_by_class": {str(k): float(v) for k, v in windows.groupby("label")["gc"].mean().items()},
        "group_by": (
            ("genomic bins" if cv["plan"] == "bin_kfold" else "chromosome")
            if all(coords)
            else "sequence"
        ),
        "strand": asdict(
            strand_plan(
                exp["training"]["reverse_complement"],
                data["alphabet"],
                "fasta",
                stranded=False,
                coordinates=all(coords) and not any(i.endswith(("(+)", "(-)")) for i in ids),
            )
        ),
    }
    log.info("%s: %s", name, meta["counts"])
    return SequenceDataset(
        codes=codes,
        windows=windows,
        classes=sorted(counts.index),
        alphabet=data["alphabet"],
        meta=meta,
    )


def encode_records(
    path: str | Path,
    ids: Sequence[str],
    seqs: Sequence[str],
    length: int,
    alphabet: str,
    key: str | None,
) -> np.ndarray:
    """Crop or pad (N / X) sequences of a FASTA to ``length`` and encode them.

    Parameters
    ----------
    path
        The FASTA, for messages.
    ids, seqs
        Its records.
    length
        The experiment's sequence length.
    alphabet
        ``dna``, ``rna`` or ``protein``.
    key
        The config key that chose the alphabet; ``None`` for new sequences of a trained
        experiment (whose alphabet is fixed).

    Raises
    ------
    InputError
        Naming the file, the record, the letter, and the alphabet it fits if another one does.
    """
    pad = "X" if alphabet == "protein" else "N"
    try:
        return encode([fit_length(s, length, pad) for s in seqs], alphabet)
    except InputError:
        pass
    for record, seq in zip(ids, seqs, strict=True):
        try:
            encode(seq, alphabet)
        except InputError as err:
            fits = [a for a in ALPHABETS if a != alphabet and _encodes(seq, a)]
            if key is not None:
                fix = f"set {key}: {fits[0]}" if fits else f"fix the sequence or {key}"
            else:
                fix = f"the models read {alphabet} sequences" + (
                    f"; these look like {fits[0]}" if fits else ""
                )
            where = str(err).partition(": ")[2] or str(err)
            raise InputError(f"{path}: record >{record}, {_position(err)}{where}; {fix}") from None
    raise InputError(f"{path}: the sequences cannot be encoded as {alphabet}")


def _encodes(seq: str, alphabet: str) -> bool:
    try:
        encode(seq, alphabet)
    except InputError:
        return False
    return True


def _position(err: InputError) -> str:
    """``position N: `` of an :func:`encode` message about one sequence."""
    head = str(err).partition(": ")[0]
    return head.partition(", ")[2] + ": " if ", position" in head else ""


def read_new_fasta(path: str | Path, length: int, alphabet: str) -> tuple[np.ndarray, np.ndarray]:
    """Ids and codes of new sequences, centre-cropped or padded (N / X) to ``length``."""
    records = read_fasta_records(path, "the FASTA of new sequences")
    ids = [header.split()[0] for header, _ in records]
    seqs = [seq for _, seq in records]
    codes = encode_records(path, ids, seqs, length, alphabet, None)
    return np.array(ids), codes


def read_new_intervals(
    bed: str | Path,
    genome: str | Path,
    length: int,
    use_summit: bool = True,
    stranded: bool = False,
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Ids, codes and windows of new BED intervals, resized around summit or centre.

    Windows running past a chromosome end are padded with N. ``stranded`` (a model trained on
    stranded windows) reads each interval on its BED strand, as training did.
    """
    fasta = open_fasta(genome)
    lengths = dict(zip(fasta.references, fasta.lengths, strict=True))
    intervals = read_bed(bed)
    check_chromosomes(intervals, lengths, str(bed))
    windows = resize(intervals, length, use_summit).reset_index(drop=True)
    codes = fetch(fasta, windows, stranded=stranded)
    ids = windows["chrom"] + ":" + windows["start"].astype(str) + "-" + windows["end"].astype(str)
    if stranded:
        ids = ids + "(" + windows["strand"] + ")"
    ids = ids.to_numpy()
    return ids, codes, windows


#: ``baseline.k: auto`` per alphabet: 6-mers of nucleotides; amino-acid and dipeptide
#: composition of proteins (20 + 400 features; 20**6 would be 64 million).
AUTO_K = {"dna": (6,), "rna": (6,), "protein": (1, 2)}


def baseline_ks(exp: Mapping[str, Any]) -> list[int]:
    """Return the k-mer lengths of the baseline (``baseline.k``; ``auto`` by alphabet)."""
    k = exp["baseline"]["k"]
    if k == "auto":
        return list(AUTO_K[exp["data"]["alphabet"]])
    return [int(k)] if isinstance(k, int) else sorted(int(v) for v in k)


def kmer_space_warning(exp: Mapping[str, Any], n_sequences: int) -> str:
    """Warn (``""`` if all is well) when the baseline's k-mers outnumber the data's positions.

    With more possible k-mers than k-mer positions in all sequences, most k-mers never occur
    and the rest are seen once or twice: the baseline then has little to learn from, and a
    deep model beating it says little. ``auto`` (or a smaller k) is the fix.
    """
    if not exp["baseline"]["enabled"]:
        return ""
    letters = alphabet_size(exp["data"]["alphabet"])
    length = int(exp["data"]["sequence_length"])
    for k in baseline_ks(exp):
        space, seen = letters**k, n_sequences * max(0, length - k + 1)
        if space > seen:
            return (
                f"; warning: the baseline's {k}-mers ({space:,} possible) outnumber the "
                f"{seen:,} k-mer positions of the data, so most never occur; the baseline is "
                "weak by construction (set baseline.k smaller, or auto)"
            )
    return ""


def _strand_fact(m: Mapping[str, Any], reading: str) -> list[tuple[str, str]]:
    """Return the data-facts row of the strand plan (none for data prepared before it)."""
    plan = m.get("strand")
    if not plan:
        return []
    rc = "on" if plan["reverse_complement"] else "off"
    return [("strand", f"{reading}; reverse-complement augmentation {rc} ({plan['why']})")]


class Sequences(Modality):
    """Fixed-length sequences as codes: a CNN (or DanQ, ResNet) beside k-mer logistic regression."""

    name = "sequence"
    inputs = "sequence"
    default_model = "cnn"
    file_keys: ClassVar[tuple[str, ...]] = ("genome", "blacklist", "fasta", "labels")
    # The fold jobs (CNN training) and the interpretation after them are the longest chain of a
    # run; started first, that chain overlaps the other experiments' work instead of running
    # alone at the end. Without it Snakemake prefers jobs with larger inputs (tables, .h5ad).
    priority = 1
    interpretation = "sequence"
    prediction_inputs = ("fasta", "bed")
    prediction_inputs_text = "fasta, or bed with genome"
    interpret_reads_predictions = True
    interpret_extras = ("motifs",)

    def task(self, exp: Mapping[str, Any]) -> Task:
        """Several BED files make a classification multi-label (one target per file)."""
        if len(exp["data"].get("bed") or {}) > 1:
            return get_task("multilabel")
        return get_task(exp["task"])

    def check_config(self, key: str, exp: Mapping[str, Any]) -> None:
        """Genome + BED or a FASTA; classification; chromosome plans; no SMOTE or VAE."""
        data, cv = exp["data"], exp["cv"]
        letters = alphabet_size(data["alphabet"])
        for k in baseline_ks(exp):
            if letters**k > MAX_KMERS:  # the counts would not fit memory
                raise ConfigError(
                    f"config key {key}.baseline.k: {k}-mers of {data['alphabet']} span "
                    f"{letters**k:,} features; use k of at most {kmer_limit(letters)} "
                    "(auto picks 6 for nucleotides, 1 and 2 for proteins)"
                )
        if exp["embed"]["enabled"]:
            raise ConfigError(
                f"config key {key}.embed.enabled: the VAE embeds tabular features, not sequences"
            )
        genomic = bool(data["genome"] or data["bed"])
        if genomic == bool(data["fasta"]) or (genomic and not (data["genome"] and data["bed"])):
            raise ConfigError(
                f"config key {key}.data: a sequence experiment needs either data.genome "
                "(reference FASTA) with data.bed ({target name: BED file of positives}), or "
                "data.fasta (a FASTA of labelled sequences)"
            )
        if data["labels"] and not data["fasta"]:
            raise ConfigError(f"config key {key}.data.labels: labels go with data.fasta")
        for field in ("path", "label_column", "target_columns", "group_column", "layer"):
            if data[field]:
                raise ConfigError(
                    f"config key {key}.data.{field}: sequence experiments take their samples "
                    "from data.genome and data.bed; remove it"
                )
        if exp["task"] != "classification":
            raise ConfigError(f"config key {key}.task: sequence experiments are classifications")
        if genomic and data["alphabet"] != "dna":
            raise ConfigError(
                f"config key {key}.data.alphabet: genome windows are DNA; other alphabets need "
                "a FASTA of sequences"
            )
        if exp["preprocess"]["smote"]:
            raise ConfigError(
                f"config key {key}.preprocess.smote: SMOTE interpolates feature vectors and "
                "makes no sense for one-hot sequences; balance with data.negatives.ratio or "
                "training.class_weights: balanced"
            )
        if cv["plan"] == "group_kfold":
            raise ConfigError(
                f"config key {key}.cv.plan: use chromosome_kfold for sequences (groups are "
                "chromosomes or genomic bins)"
            )
        if cv["plan"] == "leave_one_out":
            raise ConfigError(
                f"config key {key}.cv.plan: leave_one_out trains one model per sequence and "
                "ignores overlapping windows; use chromosome_kfold (or kfold for a FASTA of "
                "unrelated sequences)"
            )
        if cv["plan"] == "chromosome_holdout":
            if not cv["test_chromosomes"] or not cv["val_chromosomes"]:
                raise ConfigError(
                    f"config key {key}.cv: chromosome_holdout needs cv.val_chromosomes and "
                    "cv.test_chromosomes"
                )
            both = set(cv["test_chromosomes"]) & set(cv["val_chromosomes"])
            if both:
                raise ConfigError(
                    f"config key {key}.cv: chromosomes {sorted(both)} are in both "
                    "val_chromosomes and test_chromosomes"
                )

    def input_files(self, exp: Mapping[str, Any]) -> dict[str, str]:
        """Genome, blacklist, FASTA and labels, then the BED file of every target."""
        files = super().input_files(exp)
        labels = exp["data"].get("labels")
        if isinstance(labels, Mapping):  # {path, id_column, label_column}
            files = {("labels.path" if k == "labels" else k): v for k, v in files.items()}
            files["labels.path"] = labels["path"]
        bed = exp["data"].get("bed") or {}
        files.update({f"bed.{target}": path for target, path in bed.items()})
        return files

    def check_prediction_job(self, key: str, job: Mapping[str, Any], given: str) -> None:
        """BED input needs its genome."""
        if given == "bed" and not job.get("genome"):
            raise ConfigError(f"config key {key}.genome: bed input needs its reference genome")

    def prepare(
        self, name: str, exp: Mapping[str, Any], folder: Path, integrated: str | None = None
    ) -> tuple[SequenceDataset, dict[str, Any]]:
        """Genome windows (indexing a read-only genome in ``folder/genome_index``) or a FASTA."""
        if exp["data"]["fasta"]:
            data = prepare_fasta(exp, name)
            self.check_split(name, data, exp)
            return data, {data.meta["source"]: data.meta["sha256"]}
        data = prepare_sequence(exp, name, cache_dir=folder / "genome_index")
        return data, {
            data.meta["source"]: data.meta["sha256"],
            data.meta["genome"]: data.meta["genome_sha256"],
        }

    def describe_data(self, name: str, exp: Mapping[str, Any]) -> str:
        """Sequences and classes of a FASTA; or the genome and its BED intervals, checked."""
        if exp["data"]["fasta"]:
            data = prepare_fasta(exp, name)
            self.check_split(name, data, exp)
            plan = self.baseline_plan(exp, self.task(exp), data.meta)  # refuses onehot if resized
            counts = data.meta.get("class_counts") or {}
            detail = ", ".join(f"{k}: {v}" for k, v in counts.items())
            line = f"{name}: {data.meta['n_samples']} samples" + (f" ({detail})" if detail else "")
            line += f"; baselines {', '.join(plan)}" if plan else ""
            return line + kmer_space_warning(exp, data.meta["n_samples"])
        fasta = open_fasta(exp["data"]["genome"])
        lengths = dict(zip(fasta.references, fasta.lengths, strict=True))
        sizes, beds = [], []
        for target, path in exp["data"]["bed"].items():
            bed = read_bed(path)
            check_chromosomes(bed, lengths, path)
            sizes.append(f"{target}: {len(bed)} intervals")
            beds.append(bed)
        # Windows are sampled by the prepare step; the plan's chromosomes can be checked now.
        source = ", ".join(map(str, exp["data"]["bed"].values()))
        _check_chromosome_plan(exp["cv"], pd.concat(beds), list(lengths), source)
        # Positives and data.negatives.ratio negatives each: about the windows to come.
        ratio = float(exp["data"]["negatives"]["ratio"])
        windows = int((1 + ratio) * sum(len(b) for b in beds))
        line = f"{name}: genome of {len(lengths)} sequence(s); {', '.join(sizes)}"
        return line + kmer_space_warning(exp, windows)

    def preprocess_fold(
        self, data: Any, index: Mapping[str, np.ndarray], exp: Mapping[str, Any]
    ) -> tuple[dict[str, Any], Any, dict[str, Any]]:
        """Slice the codes; nothing is fitted (the summary counts overlaps across sides)."""
        from dlpipe.preprocess import preprocess_sequence_fold  # lazy: scikit-learn, 0.7 s

        return preprocess_sequence_fold(data, index)

    baseline_kinds: ClassVar[tuple[str, ...]] = ("kmer", "onehot")

    def auto_baselines(self, exp: Mapping[str, Any], facts: Mapping[str, Any] | None) -> list[str]:
        """k-mer composition; plus the position-aware one-hot model for inputs of one length.

        Genome windows all have the model's input length; a FASTA does when none of its
        sequences was cropped or padded (unknown before the data are read: then k-mers only).
        """
        counts = (facts or {}).get("counts") or {}
        genomic = bool(exp["data"].get("genome"))
        one_length = genomic or (
            bool(counts) and counts.get("cropped", 1) == 0 and counts.get("padded", 1) == 0
        )
        return ["kmer", "onehot"] if one_length else ["kmer"]

    def baseline_plan(
        self, exp: Mapping[str, Any], task: Task, facts: Mapping[str, Any] | None = None
    ) -> dict[str, str]:
        """Return the plan of :class:`Modality`, refusing a one-hot baseline of resized sequences.

        Sequences cropped or padded to the input length have no common positions to line up.
        """
        plan = super().baseline_plan(exp, task, facts)
        counts = (facts or {}).get("counts") or {}
        resized = int(counts.get("cropped", 0)) + int(counts.get("padded", 0))
        if "onehot" in plan.values() and resized:
            raise InputError(
                f"{exp['data']['fasta']}: baseline.models lists onehot, a position-aware model "
                f"for sequences of one length, but {resized:,} of {counts['sequences']:,} "
                f"sequences were cropped or padded to data.sequence_length "
                f"({exp['data']['sequence_length']}); drop onehot from baseline.models (or "
                "use auto, which fits it only for sequences of one length)"
            )
        return plan

    def baseline_name(self, exp: Mapping[str, Any], task: Task, kind: str = "kmer") -> str:
        """Name the baseline: ``kmer6_…`` / ``kmer1_2_…`` (composition), ``onehot_…``."""
        if kind == "onehot":
            return f"onehot_{task.baseline_name}"
        ks = "_".join(str(k) for k in baseline_ks(exp))
        return f"kmer{ks}_{task.baseline_name}"

    def make_baseline(self, exp: Mapping[str, Any], task: Task, kind: str = "kmer") -> Any:
        """Return the task's linear model on k-mer frequencies or on the flattened one-hot."""
        from dlpipe.baselines import on_kmers, on_positions  # lazy: scikit-learn, 0.7 s

        letters = alphabet_size(exp["data"]["alphabet"])
        model = super().make_baseline(exp, task, "linear")
        if kind == "onehot":
            return on_positions(model, letters)
        return on_kmers(model, baseline_ks(exp), letters)

    def figures(self, meta: Mapping[str, Any]) -> list[str]:
        """GC content of positives and negatives (nucleotides)."""
        return ["gc.png"] if meta.get("alphabet", "dna") != "protein" else []

    def draw_figures(self, dataset: str, meta: Mapping[str, Any], out: Path) -> None:
        """Histogram of the windows' GC content by class."""
        from dlpipe.plots.performance import gc_histogram  # lazy: matplotlib, 0.4 s

        if self.figures(meta):
            gc_histogram(pd.read_parquet(dataset, columns=["label", "gc"]), out / "gc.png")

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
        """Attributions of the top-scoring held-out sequences, learned motifs, JASPAR matches.

        Writes ``selected.tsv``, ``attributions.npz``, ``motifs.tsv``, ``motifs.jaspar``,
        ``attribution_logos.png`` and ``motif_logos.png`` into ``out``.
        """
        from dlpipe import interpret  # lazy: torch and captum, 3 s
        from dlpipe.io.jaspar import write_jaspar  # lazy: pyjaspar and Biopython
        from dlpipe.plots import interpretation as figures  # lazy: matplotlib, logomaker

        settings = exp["interpret"]
        oof = pd.concat([read_predictions(p) for p in predictions], ignore_index=True)
        nucleotides = data.alphabet != "protein"
        db = interpret.motif_database(settings) if nucleotides else []
        codes = dict(zip(data.ids, data.codes, strict=True))
        result = interpret.sequence_interpretation(exp, task, meta, codes, oof, checkpoints, db)
        result["selected"].to_csv(out / "selected.tsv", sep="\t", index=False, float_format="%.6g")
        flat = {}
        for cls, arrays in result["arrays"].items():
            for key, value in arrays.items():
                flat[f"{cls}__{key}"] = value.astype(np.float32) if key != "ids" else value
        np.savez_compressed(out / "attributions.npz", **flat)
        result["motifs"].to_csv(out / "motifs.tsv", sep="\t", index=False, float_format="%.6g")
        write_jaspar(result["motif_objects"], out / "motifs.jaspar")
        figures.attribution_logos(
            result["arrays"], out / "attribution_logos.png", letters=LETTERS[data.alphabet]
        )
        drawn = ["attribution_logos.png"]
        if nucleotides:
            by_id = {m.id: m for m in db}
            figures.motif_logos(
                result["motif_objects"], result["motifs"], by_id, out / "motif_logos.png"
            )
            drawn.append("motif_logos.png")
        return {
            "sequences": len(result["selected"]),
            "motif_database": {
                "release": settings["jaspar_release"],
                "collection": settings["jaspar_collection"],
                "tax_groups": settings["jaspar_tax_groups"],
                "files": settings["motif_files"],
                "profiles": len(db),
                "match_q": settings["match_q"],
                "match_coverage": settings["match_coverage"],
                "seqlet_fdr": settings["seqlet_fdr"],
            }
            if nucleotides
            else None,
            "agreement": result["agreement"],
            "ism_sequences": interpret.ISM_SEQUENCES,
            "figures": drawn,
        }

    def data_facts(self, meta: Mapping[str, Any], exp: Mapping[str, Any]) -> list[tuple[str, Any]]:
        """Genome, BED files, windows, negatives and CV groups; or the FASTA's sequences."""
        m = meta["meta"]
        counts = m["counts"]
        if "genome" not in m:  # a FASTA of labelled sequences
            # Proteins have no GC: dataset.json holds null (NaN) for every class.
            gc = ", ".join(
                f"{k}: {v:.3f}"
                for k, v in m["gc_by_class"].items()
                if isinstance(v, float) and np.isfinite(v)
            )
            return [
                ("sequences", f"{m['source']} (sha256 {m['sha256'][:16]}…)"),
                ("alphabet", meta["alphabet"]),
                ("sequences × length", f"{m['n_samples']} × {m['sequence_length']}"),
                ("classes", ", ".join(f"{k}: {v}" for k, v in m["class_counts"].items())),
                *([("mean GC by class", gc)] if gc else []),
                ("resized", f"{counts['cropped']} centre-cropped, {counts['padded']} padded"),
                ("CV groups", f"{counts['groups']} ({m['group_by']})"),
                *_strand_fact(m, "records read as given"),
            ]
        items = [
            ("genome", f"{m['genome']} (sha256 {m['genome_sha256'][:16]}…)"),
            ("positives", ", ".join(f"{p} (sha256 {h[:16]}…)" for p, h in m["sha256"].items())),
            ("windows", f"{m['n_samples']} × {m['sequence_length']} bp"),
            ("classes", ", ".join(f"{k}: {v}" for k, v in m["class_counts"].items())),
            ("negatives", _NEGATIVES_TEXT[m.get("negatives", "genome")]),
            (
                "mean GC positives / negatives",
                f"{m['gc_positives']:.3f} / {m['gc_negatives']:.3f}",
            ),
            ("CV groups", f"{counts['groups']} ({m['group_by']}); overlapping windows share one"),
        ]
        skipped = {k: v for k, v in counts.items() if k not in ("positives", "negatives", "groups")}
        items.append(("interval bookkeeping", ", ".join(f"{k}: {v}" for k, v in skipped.items())))
        if "fold_guard" in m:
            items.append(("kept together", m["fold_guard"]))
        stranded = m.get("strand", {}).get("stranded")
        reading = "windows read on their BED strand" if stranded else "forward strand"
        items.extend(_strand_fact(m, reading))
        return items

    def shown_settings(self, exp: Mapping[str, Any]) -> dict[str, Any]:
        """Without reverse-complement augmentation for proteins, which have no second strand."""
        shown = super().shown_settings(exp)
        if exp["data"]["alphabet"] == "protein":
            shown["training"].pop("reverse_complement", None)
        return shown

    def preprocessing_text(self, exp: Mapping[str, Any]) -> str | None:
        """Nothing is fitted before training; strands are flipped as the strand plan says."""
        setting = exp["training"]["reverse_complement"]
        rc = (
            "auto (on for unstranded DNA windows: see the data)"
            if setting == "auto"
            else ("on" if setting else "off")
        )
        strands = (
            ""
            if exp["data"]["alphabet"] == "protein"
            else f"; reverse-complement augmentation {rc}"
        )
        return (
            "Sequences are stored as 1-byte codes and one-hot encoded on the device"
            f"{strands}. Nothing is fitted before training."
        )

    def baseline_text(self, exp: Mapping[str, Any], kind: str = "kmer") -> str:
        """k-mer frequencies (composition) or the flattened one-hot, and the linear model."""
        model = self.task(exp).baseline_model_text(exp["baseline"], "linear")
        if kind == "onehot":
            letters = alphabet_size(exp["data"]["alphabet"])
            length = int(exp["data"]["sequence_length"])
            return (
                f"flattened one-hot ({length} positions × {letters} letters, position-aware) "
                f"+ {model}"
            )
        ks = baseline_ks(exp)
        named = {1: "amino-acid", 2: "dipeptide", 3: "tripeptide"}
        if exp["data"]["alphabet"] == "protein" and all(k in named for k in ks):
            features = " and ".join(named[k] for k in ks) + " composition"
        else:
            features = " + ".join(f"{k}-mer" for k in ks) + " frequencies"
        return f"{features} + {model}"

    def fitted_text(self, exp: Mapping[str, Any]) -> str:
        """Only the weights: sequences need no fitted preprocessing."""
        return "model weights: training side of each fold (sequences need no fitted preprocessing)"

    def training_text(self, exp: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
        """Say whether reverse-complement augmentation ran on these data, and why.

        ``auto`` is shown as the strand plan the prepare step resolved it to; nothing for
        proteins, which have one strand.
        """
        if exp["data"]["alphabet"] == "protein":
            return ""
        plan = (meta.get("meta") or {}).get("strand")
        if not plan:  # data prepared before the strand plan: the setting as given
            return f", reverse-complement augmentation {exp['training']['reverse_complement']}"
        rc = "on" if plan["reverse_complement"] else "off"
        return f", reverse-complement augmentation {rc} ({plan['why']})"

    def model_inputs_text(
        self, meta: Mapping[str, Any], summaries: Sequence[Mapping[str, Any]]
    ) -> str:
        """One-hot sequence of the experiment's length."""
        return f"one-hot {meta['alphabet'].upper()} of {meta['length']} positions"

    def explained_text(self) -> str:
        """Attributions and motif discovery."""
        return (
            "; explained by integrated gradients, DeepLiftShap and in-silico mutagenesis with "
            "motif discovery"
        )

    def read_new(
        self,
        source: Mapping[str, Any],
        exp: Mapping[str, Any],
        meta: Mapping[str, Any],
        first_preprocessor: Any,
    ) -> tuple[np.ndarray, Any, dict[str, Any]]:
        """Codes of a FASTA (cropped or padded) or of BED intervals (resized like training)."""
        if source.get("table"):
            raise InputError("a sequence experiment predicts FASTA or BED input, not a table")
        if source.get("fasta"):
            ids, codes = read_new_fasta(source["fasta"], int(meta["length"]), meta["alphabet"])
            return ids, codes, {}
        if source.get("bed"):
            if not source.get("genome"):
                raise InputError(f"{source['bed']}: BED input needs its reference genome (FASTA)")
            ids, codes, windows = read_new_intervals(
                source["bed"],
                source["genome"],
                int(meta["length"]),
                bool(exp.get("data", {}).get("use_summit", True)),
                bool(meta.get("meta", {}).get("strand", {}).get("stranded", False)),
            )
            return ids, codes, {"name": windows["name"].to_numpy()}
        raise InputError("nothing to predict: give a table, a FASTA file or a BED file")

    def model_input(self, raw: Any, fitted: Any) -> np.ndarray:
        """Codes need no fitted preprocessing."""
        return raw


MODALITY = Sequences()
