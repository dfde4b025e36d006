"""The report: one self-contained HTML page of every experiment, opened by a summary.

:func:`dlpipe.report.page.build_report` writes it from the files the workflow wrote
(:class:`dlpipe.report.files.ExperimentFiles`); ``trust`` holds the DOME summary,
calibration, interpretation and leaderboard sections, ``latent`` those of single-cell
integration and of the VAE embedding, ``html`` the building blocks.
"""
