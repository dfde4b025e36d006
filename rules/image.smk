rule image_store:
    """Decode an image experiment's images once into a memory-mapped store (resized to one size)."""
    input:
        data=data_files,
    output:
        store="results/{exp}/images.npy",
        sidecar="results/{exp}/images.json",
    log:
        "logs/image_store/{exp}.log",
    benchmark:
        "benchmarks/runs/image_store/{exp}.tsv"
    priority: chain_priority
    conda:
        "../envs/dlpipe.yaml"
    resources:
        mem_mb=step_mem_mb("prepare"),
        runtime=step_runtime("prepare"),
    params:
        exp=sections("task", "data", "cv"),
    script:
        "../workflow/scripts/image_store.py"


rule pretrain:
    """Pretrain an image experiment's backbone on unlabelled images (model.pretrain)."""
    input:
        images=pretrain_images,
    output:
        backbone="results/{exp}/pretrain/backbone.pt",
        summary="results/{exp}/pretrain/summary.json",
    log:
        "logs/pretrain/{exp}.log",
    benchmark:
        "benchmarks/runs/pretrain/{exp}.tsv"
    priority: chain_priority
    conda:
        "../envs/dlpipe.yaml"
    threads: train_threads
    resources:
        gpu=train_gpus,
        mem_mb=train_mem_mb,
        runtime=train_runtime,
    params:
        exp=sections(
            "seed",
            "model",
            "training.device",
            "training.precision",
            "training.progress_bar",
            "data.path",
            "data.path_column",
            "data.image_size",
        ),
    script:
        "../workflow/scripts/pretrain.py"
