rule train:
    """Train the fold's deep model with Lightning; asks schedulers for GPUs when configured."""
    input:
        unpack(fold_extra_inputs),
        train="results/{exp}/{fold}/train.npz",
        val="results/{exp}/{fold}/val.npz",
        preprocessor="results/{exp}/{fold}/preprocessor.skops",
        meta="results/{exp}/dataset.json",
        # The backbone pretrained by the pretrain job (rules/image.smk), where model.pretrain.
        pretrained=pretrain_inputs,
    output:
        model="results/{exp}/{fold}/model.ckpt",
        history="results/{exp}/{fold}/history.tsv",
    log:
        "logs/train/{exp}/{fold}.log",
    benchmark:
        "benchmarks/runs/train/{exp}/{fold}.tsv"
    priority: chain_priority
    conda:
        "../envs/dlpipe.yaml"
    threads: train_threads
    resources:
        gpu=train_gpus,
        mem_mb=train_mem_mb,
        runtime=train_runtime,
    params:
        exp=sections("task", "seed", "model", "training", "data.alphabet"),
        # Resumable checkpoints: not an output, so Snakemake keeps it when it removes the
        # outputs of a killed job, and the rerun continues from the last epoch.
        state="results/{exp}/{fold}/train_state",
    script:
        "../workflow/scripts/train.py"


rule baseline:
    """Fit the scikit-learn baselines on the same training rows as the deep model."""
    input:
        unpack(fold_extra_inputs),
        train="results/{exp}/{fold}/train.npz",
        preprocessor="results/{exp}/{fold}/preprocessor.skops",
        meta="results/{exp}/dataset.json",
    output:
        model="results/{exp}/{fold}/baselines.skops",
    log:
        "logs/baseline/{exp}/{fold}.log",
    benchmark:
        "benchmarks/runs/baseline/{exp}/{fold}.tsv"
    priority: chain_priority
    conda:
        "../envs/dlpipe.yaml"
    resources:
        mem_mb=step_mem_mb("baseline"),
        runtime=step_runtime("baseline"),
    params:
        exp=sections(
            "task",
            "seed",
            "baseline",
            "training.class_weights",
            "data.modality",
            "data.alphabet",
        ),
    script:
        "../workflow/scripts/baseline.py"
