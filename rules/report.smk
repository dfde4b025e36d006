rule report:
    """Write the self-contained HTML report of every experiment."""
    input:
        unpack(report_inputs),
    output:
        report(
            "results/report.html",
            caption="../workflow/report/report.rst",
            category="report",
        ),
    log:
        "logs/report.log",
    conda:
        "../envs/dlpipe.yaml"
    resources:
        mem_mb=step_mem_mb("report"),
        runtime=step_runtime("report"),
    params:
        experiments=config["experiments"],
        title=config["report"]["title"],
    script:
        "../workflow/scripts/report.py"
