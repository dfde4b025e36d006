# Input functions and helpers shared by the rules. The logic they need lives in dlpipe.
from dlpipe.resources import gpu_request, memory_mb, runtime_min
from dlpipe.workflow import (
    calibrated as calibrated_exp,
    chain_priority as exp_priority,
    data_inputs,
    extra_report_files,
    experiment_sections,
    fold_count,
    fold_inputs,
    interpret_reads_predictions,
    prediction_files,
    prepare_inputs,
    preprocess_inputs,
    pretrain_images as pretrain_image_files,
    pretrain_inputs as pretrain_backbone_inputs,
)

EXPERIMENTS = list(config["experiments"])
PREDICTIONS = list(config.get("predict", {}))
MANIFEST_FILES = ["config.yaml", "dataset.json", "provenance.json", "metrics.tsv"]


wildcard_constraints:
    exp="|".join(EXPERIMENTS) or "[A-Za-z][A-Za-z0-9_-]*",
    fold=r"\d+",
    job="|".join(PREDICTIONS) or "[A-Za-z][A-Za-z0-9_-]*",


def exp_config(wildcards):
    return config["experiments"][wildcards.exp]


def chain_priority(wildcards):
    """Scheduling priority of an experiment's per-fold chain (its modality's: sequences first)."""
    return exp_priority(exp_config(wildcards))


def sections(*names):
    """Params function giving a rule only the config sections it uses (precise reruns)."""

    def params(wildcards):
        return experiment_sections(config["experiments"][wildcards.exp], names)

    return params


def data_files(wildcards):
    """The raw inputs of an experiment: its table, or its genome and BED files."""
    return list(data_inputs(exp_config(wildcards)).values())


def prepare_extra_inputs(wildcards):
    """Files of earlier jobs the prepare job reads (single cells: the integrated .h5ad)."""
    return prepare_inputs(wildcards.exp, exp_config(wildcards))


def preprocess_extra_inputs(wildcards):
    """Files besides the dataset a preprocess job reads (images: the image store)."""
    return preprocess_inputs(wildcards.exp, exp_config(wildcards))


def fold_extra_inputs(wildcards):
    """Files besides the fold's own that its train, baseline and evaluate jobs read (images:
    the image store its sides index)."""
    return fold_inputs(wildcards.exp, exp_config(wildcards))


def pretrain_images(wildcards):
    return pretrain_image_files(exp_config(wildcards))


def pretrain_inputs(wildcards):
    return list(pretrain_backbone_inputs(wildcards.exp, exp_config(wildcards)).values())


def integrate_gpus(wildcards):
    return int(exp_config(wildcards)["integration"]["device"] == "gpu")


def folds_of(exp):
    return list(range(fold_count(config["experiments"][exp])))


def per_fold(pattern):
    """Input function expanding a per-fold path over the folds of the experiment."""

    def paths(wildcards):
        return expand(pattern, exp=wildcards.exp, fold=folds_of(wildcards.exp))

    return paths


def fold_models(wildcards):
    """The fold's deep model and, when enabled, its baselines (one file)."""
    exp = exp_config(wildcards)
    files = {"model": f"results/{wildcards.exp}/{wildcards.fold}/model.ckpt"}
    if exp["baseline"]["enabled"]:
        files["baselines"] = f"results/{wildcards.exp}/{wildcards.fold}/baselines.skops"
    return files


def calibrated(exp):
    """Whether an experiment's classifiers get a temperature fitted on validation sides."""
    return calibrated_exp(config["experiments"][exp])


def interpret_inputs(wildcards):
    """Sequences and images: the test-fold predictions (to pick the held-out samples explained);
    sequences also the extra motif files searched beside JASPAR, images the image store. Tables
    need none, so their interpretation can run as soon as the models are trained."""
    exp = exp_config(wildcards)
    # Images: the store the pixels are read from, as the fold jobs read it.
    files = preprocess_inputs(wildcards.exp, exp)
    if not interpret_reads_predictions(exp):
        return files
    return {
        **files,
        "predictions": per_fold("results/{exp}/{fold}/predictions.tsv")(wildcards),
        "motif_files": exp["interpret"]["motif_files"],
    }


def compare_inputs(wildcards):
    """What the leaderboard needs of every experiment: metrics, fold table, data checksums,
    and the pooled predictions (a paired bootstrap where metrics are summarised pooled).
    """
    files = {}
    for exp in EXPERIMENTS:
        files[f"{exp}_metrics"] = f"results/{exp}/metrics.tsv"
        files[f"{exp}_predictions"] = f"results/{exp}/oof_predictions.tsv"
        files[f"{exp}_meta"] = f"results/{exp}/dataset.json"
        files[f"{exp}_folds"] = f"results/{exp}/folds.tsv"
        files[f"{exp}_summaries"] = expand(
            "results/{exp}/{fold}/preprocess.json", exp=exp, fold=folds_of(exp)
        )
    return files


def manifest_inputs(wildcards):
    """The files of a trained experiment that its manifest records: its config and dataset
    record, and per fold the models, fitted preprocessing, temperatures and training record.
    """
    exp = wildcards.exp
    per_fold_files = [
        "model.ckpt",
        "preprocessor.skops",
        "calibration.json",
        "history.tsv",
    ]
    per_fold_files += ["preprocess.json", "metrics.json"]
    if exp_config(wildcards)["baseline"]["enabled"]:
        per_fold_files.append("baselines.skops")
    files = [f"results/{exp}/{name}" for name in MANIFEST_FILES]
    for name in per_fold_files:
        files += per_fold(f"results/{{exp}}/{{fold}}/{name}")(wildcards)
    return files


def prediction_job(wildcards):
    return config["predict"][wildcards.job]


def prediction_experiment(wildcards):
    return config["experiments"][prediction_job(wildcards)["experiment"]]


def prediction_inputs(wildcards):
    """The new data of a prediction job and the fold models of its experiment."""
    job = prediction_job(wildcards)
    exp = job["experiment"]
    files = {
        "data": prediction_files(job),
        "meta": f"results/{exp}/dataset.json",
        "manifest": f"results/{exp}/manifest.json",
        "models": expand(
            "results/{exp}/{fold}/model.ckpt", exp=exp, fold=folds_of(exp)
        ),
        "preprocessors": expand(
            "results/{exp}/{fold}/preprocessor.skops", exp=exp, fold=folds_of(exp)
        ),
    }
    if calibrated(exp):
        files["calibrations"] = expand(
            "results/{exp}/{fold}/calibration.json", exp=exp, fold=folds_of(exp)
        )
    return files


def prediction_targets(wildcards):
    """Predictions of every job of the config's predict section (none by default)."""
    return expand("results/predictions/{job}.tsv", job=PREDICTIONS)


def train_threads(wildcards):
    return exp_config(wildcards)["resources"]["threads"]


def train_gpus(wildcards):
    return gpu_request(exp_config(wildcards))


def train_mem_mb(wildcards, input, attempt):
    override = exp_config(wildcards)["resources"]["mem_mb"]
    return memory_mb("train", input.size_mb, attempt, override)


def train_runtime(wildcards, attempt):
    return exp_config(wildcards)["resources"]["runtime"] * attempt


def step_mem_mb(step):
    """Resources function: the step's memory from its input size, scaled by the attempt."""

    def mem_mb(wildcards, input, attempt):
        return memory_mb(step, input.size_mb, attempt)

    return mem_mb


def step_runtime(step):
    """Resources function: the step's run time (minutes) from its input size and attempt."""

    def runtime(wildcards, input, attempt):
        return runtime_min(step, input.size_mb, attempt)

    return runtime


def report_inputs(wildcards):
    files = {}
    for exp in EXPERIMENTS:
        files[f"{exp}_meta"] = f"results/{exp}/dataset.json"
        files[f"{exp}_provenance"] = f"results/{exp}/provenance.json"
        files[f"{exp}_manifest"] = f"results/{exp}/manifest.json"
        files[f"{exp}_metrics"] = f"results/{exp}/metrics.tsv"
        files[f"{exp}_figures"] = f"results/{exp}/figures"
        files[f"{exp}_summaries"] = expand(
            "results/{exp}/{fold}/preprocess.json", exp=exp, fold=folds_of(exp)
        )
        files[f"{exp}_histories"] = expand(
            "results/{exp}/{fold}/history.tsv", exp=exp, fold=folds_of(exp)
        )
        if calibrated(exp):
            files[f"{exp}_calibrations"] = expand(
                "results/{exp}/{fold}/calibration.json", exp=exp, fold=folds_of(exp)
            )
        files.update(extra_report_files(exp, config["experiments"][exp]))
        if config["experiments"][exp]["interpret"]["enabled"]:
            files[f"{exp}_interpret"] = f"results/{exp}/interpret"
        else:  # the report counts the parameters itself
            files[f"{exp}_models"] = [f"results/{exp}/0/model.ckpt"]
    files["comparison_leaderboard"] = "results/comparison/leaderboard.tsv"
    files["comparison_pairs"] = "results/comparison/pairwise.tsv"
    return files
