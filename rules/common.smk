# Input functions and helpers shared by the rules. The logic they need lives in dlpipe.
from dlpipe.report_sections import extra_report_files
from dlpipe.workflow import experiment_sections, fold_count

EXPERIMENTS = list(config["experiments"])


wildcard_constraints:
    exp="|".join(EXPERIMENTS) or "[A-Za-z][A-Za-z0-9_-]*",
    fold=r"\d+",


def exp_config(wildcards):
    return config["experiments"][wildcards.exp]


def sections(*names):
    """Params function giving a rule only the config sections it uses (precise reruns)."""

    def params(wildcards):
        return experiment_sections(config["experiments"][wildcards.exp], names)

    return params


def data_files(wildcards):
    """The raw inputs of an experiment: its table, or its genome and BED files."""
    data = exp_config(wildcards)["data"]
    files = [data[k] for k in ("path", "genome", "blacklist", "fasta", "labels")]
    files += list((data["bed"] or {}).values())
    return [f for f in files if f]


def singlecell_counts(wildcards):
    """The .h5ad of raw counts that a single-cell experiment integrates."""
    return exp_config(wildcards)["data"]["path"]


def integrated_input(wildcards):
    """The integrated .h5ad a single-cell experiment is prepared from (none for the others)."""
    if exp_config(wildcards)["data"]["modality"] == "singlecell":
        return f"results/{wildcards.exp}/integrated.h5ad"
    return []


def integrate_gpus(wildcards):
    integration = exp_config(wildcards)["integration"]
    return integration["gpus"] if integration["device"] == "gpu" else 0


def folds_of(exp):
    return list(range(fold_count(config["experiments"][exp])))


def per_fold(pattern):
    """Input function expanding a per-fold path over the folds of the experiment."""

    def paths(wildcards):
        return expand(pattern, exp=wildcards.exp, fold=folds_of(wildcards.exp))

    return paths


def evaluate_models(wildcards):
    """The fold's deep model and, when enabled, its baseline."""
    exp = exp_config(wildcards)
    files = {"model": f"results/{wildcards.exp}/{wildcards.fold}/model.ckpt"}
    if exp["baseline"]["enabled"]:
        files["baseline"] = f"results/{wildcards.exp}/{wildcards.fold}/baseline.joblib"
    return files


def train_threads(wildcards):
    return exp_config(wildcards)["resources"]["threads"]


def train_gpus(wildcards):
    training = exp_config(wildcards)["training"]
    return training["gpus"] if training["device"] == "gpu" else 0


def train_mem_mb(wildcards, attempt):
    return exp_config(wildcards)["resources"]["mem_mb"] * attempt


def train_runtime(wildcards, attempt):
    return exp_config(wildcards)["resources"]["runtime"] * attempt


def report_inputs(wildcards):
    files = {}
    for exp in EXPERIMENTS:
        files[f"{exp}_meta"] = f"results/{exp}/dataset.json"
        files[f"{exp}_provenance"] = f"results/{exp}/provenance.json"
        files[f"{exp}_metrics"] = f"results/{exp}/metrics.tsv"
        files[f"{exp}_figures"] = f"results/{exp}/figures"
        files[f"{exp}_summaries"] = expand(
            "results/{exp}/{fold}/preprocess.json", exp=exp, fold=folds_of(exp)
        )
        files.update(extra_report_files(exp, config["experiments"][exp]))
    return files
