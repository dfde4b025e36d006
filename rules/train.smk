rule train:
    """Train the fold's deep model with Lightning; asks schedulers for a GPU when configured."""
    input:
        train="results/{exp}/{fold}/train.npz",
        val="results/{exp}/{fold}/val.npz",
        preprocessor="results/{exp}/{fold}/preprocessor.joblib",
        meta="results/{exp}/dataset.json",
    output:
        model="results/{exp}/{fold}/model.ckpt",
        history="results/{exp}/{fold}/history.tsv",
    log:
        "logs/train/{exp}/{fold}.log",
    benchmark:
        "benchmarks/runs/train/{exp}/{fold}.tsv"
    conda:
        "../envs/dlpipe.yaml"
    threads: train_threads
    resources:
        gpu=train_gpus,
        mem_mb=train_mem_mb,
        runtime=train_runtime,
    params:
        exp=sections("task", "seed", "model", "training", "data.alphabet"),
    script:
        "../workflow/scripts/train.py"


rule baseline:
    """Fit the scikit-learn baseline on the same training rows as the deep model."""
    input:
        train="results/{exp}/{fold}/train.npz",
        preprocessor="results/{exp}/{fold}/preprocessor.joblib",
        meta="results/{exp}/dataset.json",
    output:
        model="results/{exp}/{fold}/baseline.joblib",
    log:
        "logs/baseline/{exp}/{fold}.log",
    benchmark:
        "benchmarks/runs/baseline/{exp}/{fold}.tsv"
    conda:
        "../envs/dlpipe.yaml"
    params:
        exp=sections(
            "task", "seed", "baseline", "training.class_weights", "data.modality"
        ),
    script:
        "../workflow/scripts/baseline.py"
