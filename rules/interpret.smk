rule interpret:
    """Explain the deep model on held-out samples: attributions, motifs and JASPAR matches, or feature importance."""
    input:
        unpack(interpret_inputs),
        dataset="results/{exp}/dataset.parquet",
        meta="results/{exp}/dataset.json",
        folds="results/{exp}/folds.tsv",
        models=per_fold("results/{exp}/{fold}/model.ckpt"),
        preprocessors=per_fold("results/{exp}/{fold}/preprocessor.skops"),
    output:
        report(
            directory("results/{exp}/interpret"),
            patterns=["{name}.png"],
            caption="../workflow/report/interpret.rst",
            category="{exp}",
            subcategory="interpretation",
            labels={"figure": "{name}"},
        ),
    log:
        "logs/interpret/{exp}.log",
    benchmark:
        "benchmarks/runs/interpret/{exp}.tsv"
    priority: chain_priority
    conda:
        "../envs/dlpipe.yaml"
    threads: train_threads
    params:
        exp=sections("seed", "model", "interpret", "data.modality"),
    script:
        "../workflow/scripts/interpret.py"
