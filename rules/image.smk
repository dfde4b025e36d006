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
