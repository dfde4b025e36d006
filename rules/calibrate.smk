rule calibrate:
    """Fit temperature scaling of each classifier on the fold's validation side (never its test side)."""
    input:
        unpack(fold_models),
        val="results/{exp}/{fold}/val.npz",
        preprocessor="results/{exp}/{fold}/preprocessor.joblib",
        meta="results/{exp}/dataset.json",
    output:
        calibration="results/{exp}/{fold}/calibration.json",
    log:
        "logs/calibrate/{exp}/{fold}.log",
    conda:
        "../envs/dlpipe.yaml"
    params:
        exp=sections("task", "model.name", "baseline", "data.modality"),
    script:
        "../workflow/scripts/calibrate.py"
