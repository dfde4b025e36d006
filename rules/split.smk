rule split:
    """Assign every sample of every fold to train, val or test (seeded)."""
    input:
        dataset="results/{exp}/dataset.parquet",
        meta="results/{exp}/dataset.json",
    output:
        folds="results/{exp}/folds.tsv",
    log:
        "logs/split/{exp}.log",
    priority: chain_priority
    conda:
        "../envs/dlpipe.yaml"
    resources:
        mem_mb=step_mem_mb("split"),
        runtime=step_runtime("split"),
    params:
        exp=sections("task", "seed", "cv"),
    script:
        "../workflow/scripts/split.py"
