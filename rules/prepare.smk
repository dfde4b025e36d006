rule prepare:
    """Check the raw table and write the canonical dataset with its provenance."""
    input:
        unpack(prepare_extra_inputs),
        data=data_files,
    output:
        dataset="results/{exp}/dataset.parquet",
        meta="results/{exp}/dataset.json",
        provenance="results/{exp}/provenance.json",
    log:
        "logs/prepare/{exp}.log",
    benchmark:
        "benchmarks/runs/prepare/{exp}.tsv"
    priority: chain_priority
    conda:
        "../envs/dlpipe.yaml"
    resources:
        mem_mb=step_mem_mb("prepare"),
        runtime=step_runtime("prepare"),
    params:
        exp=sections(
            "task",
            "seed",
            "data",
            "cv",
            "preprocess.impute",
            "training.reverse_complement",
            "baseline.enabled",
            "baseline.models",
            "baseline.k",
        ),
        workdir=workflow.basedir,
    script:
        "../workflow/scripts/prepare.py"
