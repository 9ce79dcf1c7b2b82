"""Datasets for training: patient-grouped splits (the rules in `stratify`, the index file and splitting
a store in `splits`), model targets, the torch loader (blocks come from `pipeline.store`).

May import: `pipeline.store`, `pipeline.models` and the layers below.
"""
