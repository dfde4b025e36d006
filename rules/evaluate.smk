rule evaluate:
    """Fit each classifier's temperature on the fold's validation side, then score the deep model
    and the baseline on its test side (the only rule reading it)."""
    input:
        unpack(fold_models),
        unpack(fold_extra_inputs),
        val="results/{exp}/{fold}/val.npz",
        test="results/{exp}/{fold}/test.npz",
        preprocessor="results/{exp}/{fold}/preprocessor.skops",
        meta="results/{exp}/dataset.json",
    output:
        predictions="results/{exp}/{fold}/predictions.tsv",
        metrics="results/{exp}/{fold}/metrics.json",
        calibration="results/{exp}/{fold}/calibration.json",
    log:
        "logs/evaluate/{exp}/{fold}.log",
    benchmark:
        "benchmarks/runs/evaluate/{exp}/{fold}.tsv"
    priority: chain_priority
    conda:
        "../envs/dlpipe.yaml"
    resources:
        mem_mb=step_mem_mb("evaluate"),
        runtime=step_runtime("evaluate"),
    params:
        exp=sections(
            "task",
            "model.name",
            "baseline",
            "data.modality",
            "data.alphabet",
            "calibration",
        ),
    script:
        "../workflow/scripts/evaluate.py"


rule aggregate:
    """Summarise metrics over folds, pool out-of-fold predictions and draw the figures."""
    input:
        metrics=per_fold("results/{exp}/{fold}/metrics.json"),
        predictions=per_fold("results/{exp}/{fold}/predictions.tsv"),
        histories=per_fold("results/{exp}/{fold}/history.tsv"),
        meta="results/{exp}/dataset.json",
        dataset="results/{exp}/dataset.parquet",
    output:
        metrics=report(
            "results/{exp}/metrics.tsv",
            caption="../workflow/report/metrics.rst",
            category="{exp}",
            labels={"table": "metrics over folds"},
        ),
        predictions="results/{exp}/oof_predictions.tsv",
        config="results/{exp}/config.yaml",
        figures=report(
            directory("results/{exp}/figures"),
            patterns=["{name}.png"],
            caption="../workflow/report/figures.rst",
            category="{exp}",
            labels={"figure": "{name}"},
        ),
    log:
        "logs/aggregate/{exp}.log",
    conda:
        "../envs/dlpipe.yaml"
    resources:
        mem_mb=step_mem_mb("aggregate"),
        runtime=step_runtime("aggregate"),
    params:
        exp=exp_config,
    script:
        "../workflow/scripts/aggregate.py"
