rule integrate:
    """Embed a single-cell experiment's cells with each integration method (scVI, Harmony …)."""
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
    """Score the methods against the unintegrated PCA (scib-metrics), state the verdict, draw UMAPs."""
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
        verdict="results/{exp}/integration/verdict.json",
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


rule label_transfer:
    """Table scANVI's transferred labels and draw their confidence and composition per batch."""
    input:
        adata="results/{exp}/integrated.h5ad",
    output:
        tsv="results/{exp}/integration/label_transfer.tsv",
        png=report(
            "results/{exp}/integration/label_transfer.png",
            caption="../workflow/report/label_transfer.rst",
            category="{exp}",
            labels={"figure": "label transfer"},
        ),
    log:
        "logs/label_transfer/{exp}.log",
    conda:
        "../envs/dlpipe.yaml"
    params:
        exp=sections("data", "integration"),
    script:
        "../workflow/scripts/label_transfer.py"
