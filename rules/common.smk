# Input functions and helpers shared by the rules. The logic they need lives in dlpipe.
from dlpipe.resources import gpu_request, memory_mb, runtime_min
from dlpipe.workflow import data_inputs, experiment_sections, fold_count

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
    return list(data_inputs(exp_config(wildcards)).values())


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
        files[f"{exp}_metrics"] = f"results/{exp}/metrics.tsv"
        files[f"{exp}_figures"] = f"results/{exp}/figures"
        files[f"{exp}_summaries"] = expand(
            "results/{exp}/{fold}/preprocess.json", exp=exp, fold=folds_of(exp)
        )
    return files
