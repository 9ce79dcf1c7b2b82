"""Export: ONNX and INT8 models and their deltas, and `predict` on raw files with a trained model.

Modules: `onnx` (FP32 export verified against PyTorch), `quantize` (static INT8), `runtime` (ONNX
Runtime and PyTorch runners, latency, sizes), `report` (deltas and the report files), and the
`predict` package (raw files → scores and decisions).

May import: `training`, `evaluation` and the layers below `dataset`/`ingest`.
"""
