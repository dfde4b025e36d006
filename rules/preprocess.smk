rule preprocess:
    """Fit normalisation, encoding, feature filters and SMOTE on the fold's training side."""
    input:
        unpack(preprocess_extra_inputs),
        dataset="results/{exp}/dataset.parquet",
        meta="results/{exp}/dataset.json",
        folds="results/{exp}/folds.tsv",
    output:
        train="results/{exp}/{fold}/train.npz",
        val="results/{exp}/{fold}/val.npz",
        test="results/{exp}/{fold}/test.npz",
        preprocessor="results/{exp}/{fold}/preprocessor.skops",
        summary="results/{exp}/{fold}/preprocess.json",
    log:
        "logs/preprocess/{exp}/{fold}.log",
    benchmark:
        "benchmarks/runs/preprocess/{exp}/{fold}.tsv"
    priority: chain_priority
    conda:
        "../envs/dlpipe.yaml"
    resources:
        mem_mb=step_mem_mb("preprocess"),
        runtime=step_runtime("preprocess"),
    params:
        exp=sections("task", "seed", "preprocess", "data.modality"),
    script:
        "../workflow/scripts/preprocess.py"
