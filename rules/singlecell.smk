rule integrate:
    """Integrate the batches of a single-cell experiment with scVI (and scANVI label transfer)."""
    input:
        counts=data_files,
    output:
        adata="results/{exp}/integrated.h5ad",
        models=directory("results/{exp}/integration/models"),
        summary="results/{exp}/integration/summary.json",
        history="results/{exp}/integration/history.tsv",
    log:
        "logs/integrate/{exp}.log",
    benchmark:
        "benchmarks/runs/integrate/{exp}.tsv"
    conda:
        "../envs/dlpipe.yaml"
    threads: train_threads
    resources:
        gpu=integrate_gpus,
        mem_mb=train_mem_mb,
        runtime=train_runtime,
    params:
        exp=sections("seed", "data", "integration"),
    script:
        "../workflow/scripts/integrate.py"


rule integration_metrics:
    """Score scVI against the unintegrated PCA (scib-metrics) and draw the UMAPs."""
    input:
        adata="results/{exp}/integrated.h5ad",
    output:
        scib=report(
            "results/{exp}/integration/scib.tsv",
            caption="../workflow/report/scib.rst",
            category="{exp}",
            labels={"table": "integration benchmark"},
        ),
        umap=report(
            "results/{exp}/integration/umap.png",
            caption="../workflow/report/integration_umap.rst",
            category="{exp}",
            labels={"figure": "integration UMAPs"},
        ),
    log:
        "logs/integration_metrics/{exp}.log",
    benchmark:
        "benchmarks/runs/integration_metrics/{exp}.tsv"
    conda:
        "../envs/dlpipe.yaml"
    params:
        exp=sections("data", "integration"),
    script:
        "../workflow/scripts/integration_metrics.py"
