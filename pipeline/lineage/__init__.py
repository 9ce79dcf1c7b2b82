"""Lineage: stage run records (provenance), the `dvc.lock` reader, and the artifact ⇄ raw-file answers
of `ecgpipe lineage`.

May import: `training` (checkpoints) and the layers below.
"""
