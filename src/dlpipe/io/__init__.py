"""Readers and writers, one module per format, each raising errors that name file and line.

``tables`` (CSV, TSV, Parquet), ``h5ad`` (AnnData tables and raw counts), ``fasta``, ``bed``,
``labels`` (id and label files), ``images`` (PNG, JPEG, TIFF), ``jaspar`` (motif matrices),
``edges`` (edge lists and node features of a graph) and
``files`` (the JSON records and checksums of a results folder).
"""
