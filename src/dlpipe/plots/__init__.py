"""Figures, one module per subject: model performance, interpretation, embeddings.

Every function takes tidy tables or arrays and writes one PNG; matplotlib runs headless (Agg)
and writes fixed metadata, so reruns give identical bytes.
"""
