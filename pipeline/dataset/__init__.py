"""Datasets for training: patient-grouped splits, model targets, the torch loader (blocks come from
`pipeline.store`).

May import: `pipeline.store`, `pipeline.models` and the layers below.
"""
