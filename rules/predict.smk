rule manifest:
    """Record the sha256 of every file of a trained experiment; prediction reads only these."""
    input:
        manifest_inputs,
    output:
        "results/{exp}/manifest.json",
    log:
        "logs/manifest/{exp}.log",
    conda:
        "../envs/dlpipe.yaml"
    script:
        "../workflow/scripts/manifest.py"


rule predict:
    """Predict the new samples of one job of the config's predict section with the k fold models."""
    input:
        unpack(prediction_inputs),
    output:
        report(
            "results/predictions/{job}.tsv",
            caption="../workflow/report/predictions.rst",
            category="predictions",
            labels={"table": "{job}"},
        ),
    log:
        "logs/predict/{job}.log",
    benchmark:
        "benchmarks/runs/predict/{job}.tsv"
    conda:
        "../envs/dlpipe.yaml"
    params:
        exp=prediction_experiment,
        job=prediction_job,
    script:
        "../workflow/scripts/predict.py"
