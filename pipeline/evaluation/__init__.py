"""Evaluation: metrics with bootstrap CIs, thresholds chosen on validation, decisions, plots and the
evaluation report.

May import: `dataset`, `store`, `models` and the layers below, and `training` for checkpoints.
"""
