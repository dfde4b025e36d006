rule embed:
    """Fit the fold's Gaussian VAE on its training side; embed every sample; score reconstruction."""
    input:
        train="results/{exp}/{fold}/train.npz",
        val="results/{exp}/{fold}/val.npz",
        test="results/{exp}/{fold}/test.npz",
        summary="results/{exp}/{fold}/preprocess.json",
    output:
        model="results/{exp}/{fold}/vae.ckpt",
        history="results/{exp}/{fold}/vae_history.tsv",
        embedding="results/{exp}/{fold}/embedding.tsv",
        reconstruction="results/{exp}/{fold}/reconstruction.json",
    log:
        "logs/embed/{exp}/{fold}.log",
    benchmark:
        "benchmarks/runs/embed/{exp}/{fold}.tsv"
    conda:
        "../envs/dlpipe.yaml"
    threads: train_threads
    resources:
        gpu=train_gpus,
        mem_mb=train_mem_mb,
        runtime=train_runtime,
    params:
        # The VAE takes its epochs, patience and batch size from embed; of training only where
        # and how it runs.
        exp=sections(
            "seed",
            "embed",
            "training.device",
            "training.devices",
            "training.precision",
            "training.progress_bar",
        ),
    script:
        "../workflow/scripts/embed.py"


rule embedding:
    """Reconstruction error of the fold VAEs and the UMAP of fold 0's latent space."""
    input:
        reconstruction=per_fold("results/{exp}/{fold}/reconstruction.json"),
        embedding="results/{exp}/0/embedding.tsv",
        dataset="results/{exp}/dataset.parquet",
        meta="results/{exp}/dataset.json",
    output:
        reconstruction=report(
            "results/{exp}/embedding/reconstruction.tsv",
            caption="../workflow/report/reconstruction.rst",
            category="{exp}",
            labels={"table": "VAE reconstruction error"},
        ),
        umap=report(
            "results/{exp}/embedding/umap.png",
            caption="../workflow/report/embedding_umap.rst",
            category="{exp}",
            labels={"figure": "VAE latent UMAP"},
        ),
    log:
        "logs/embedding/{exp}.log",
    conda:
        "../envs/dlpipe.yaml"
    params:
        exp=sections("seed"),
    script:
        "../workflow/scripts/embedding.py"
