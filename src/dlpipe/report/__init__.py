"""The report: one self-contained HTML page of every experiment, opened by a verdict.

:func:`dlpipe.report.page.build_report` writes it from the files the workflow wrote
(:class:`dlpipe.report.files.ExperimentFiles`). Python gathers plain data, one dict per section
(``page`` the page and its per-experiment sections; ``trust`` the DOME summary, calibration,
interpretation and leaderboard; ``saliency`` the saliency maps of images; ``latent``
single-cell integration and the VAE embedding);
Jinja2 templates in ``templates/``, one per section and autoescaped, render it
(:mod:`dlpipe.report.render`).
"""
