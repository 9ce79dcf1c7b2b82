"""Training: the seeded, resumable loop, the `train` stage, checkpoints and loading trained models.

May import: `dataset`, `ingest`, `store`, `models` and the layers below; not the CLI or config.
"""
