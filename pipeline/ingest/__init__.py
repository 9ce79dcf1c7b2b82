"""Ingest: plan → batch → preprocess → commit, the ingest report and `verify`.

May import: `pipeline.store`, `pipeline.models` and the layers below (`signal`, `labels`, `sources`, `core`).
"""
