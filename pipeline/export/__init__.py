"""Export: ONNX and INT8 models and their deltas, and `predict` on raw files with a trained model.

May import: `training`, `evaluation` and the layers below `dataset`/`ingest`.
"""
