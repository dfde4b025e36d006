rule compare:
    """Leaderboard of the learners that share data and folds, with paired tests over folds."""
    input:
        unpack(compare_inputs),
    output:
        leaderboard=report(
            "results/comparison/leaderboard.tsv",
            caption="../workflow/report/leaderboard.rst",
            category="comparison",
            labels={"table": "leaderboard"},
        ),
        pairs="results/comparison/pairwise.tsv",
    log:
        "logs/compare.log",
    conda:
        "../envs/dlpipe.yaml"
    params:
        experiments=config["experiments"],
    script:
        "../workflow/scripts/compare.py"
