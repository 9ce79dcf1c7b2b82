"""ONNX export: ``nn.Module`` → FP32 ONNX file, checked and verified against PyTorch before it is written.

:func:`export_onnx` writes a graph with input ``"x"`` (B, C, L) and output ``"out"`` and a dynamic
batch axis, checked with ``onnx.checker`` and against PyTorch on random batches, atomically. The
rest of the ``export`` stage: :mod:`pipeline.export.quantize` (INT8), :mod:`pipeline.export.runtime`
(runners, latency, sizes) and :mod:`pipeline.export.report` (deltas and the report files).

Exporter: the TorchScript-based exporter (``dynamo=False``) is the default. With torch 2.13 both
exporters give outputs equal to PyTorch (max |Δ| < 1e-7 on the three model families, GRU/LSTM
included), but the dynamo exporter only implements opset ≥ 18 (asking it for 17 logs a failed
down-conversion and silently writes opset 18), specialises the batch axis to 1 when traced with a
batch of 1 (seen on the CRNN), and takes 1–4 s per tiny model against < 1 s. ``exporter="dynamo"``
stays available for ``opset >= 18``; both paths are verified the same way.
"""

from __future__ import annotations

import copy
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
import torch
from torch import nn

from pipeline.core.fs import write_atomic
from pipeline.export.runtime import OnnxModelError, open_session

log = logging.getLogger(__name__)

Exporter = Literal["torchscript", "dynamo"]

DEFAULT_ATOL = 1e-4
# Batch sizes of the parity check; neither is the export example's batch (2), so a batch axis that
# the exporter froze shows up as a shape error here instead of at inference time.
VERIFY_BATCHES: tuple[int, ...] = (1, 3)
_EXAMPLE_BATCH = 2
_DYNAMO_MIN_OPSET = 18


def export_onnx(
    model: nn.Module,
    input_shape: tuple[int, int],
    path: Path,
    opset: int = 17,
    *,
    atol: float = DEFAULT_ATOL,
    exporter: Exporter = "torchscript",
    seed: int = 0,
) -> Path:
    """Export ``model`` to an FP32 ONNX file at ``path``, verified against PyTorch; returns ``path``.

    ``input_shape`` is ``(C, L)`` of one record (e.g. ``(12, 5000)``, ``(1, 140)``); the graph takes
    input ``"x"`` (B, C, L) float32 in the training unit (mV) with a dynamic batch axis ``B`` and
    gives output ``"out"``: the raw model output (logits (B, K), or the reconstruction (B, C, L)).

    A CPU copy of the model (``copy.deepcopy``) is exported in eval mode (dropout off, BatchNorm
    running statistics), so the caller's module keeps its device and train/eval mode, and the parity
    check compares like with like (no CUDA TF32 convolutions against CPU float32). The file is
    checked with ``onnx.checker.check_model(full_check=True)``, its opset must equal ``opset``, and
    ONNX Runtime (CPU) must reproduce the PyTorch copy on seeded ``randn`` batches of sizes
    :data:`VERIFY_BATCHES` within ``atol`` (max absolute difference, output units; ``1e-4`` leaves
    room for float32 summation-order differences, observed ≤ 1e-7 on all three families);
    otherwise :class:`OnnxModelError` reports the difference and nothing is written. The file
    appears atomically (a crash leaves the old one).

    ``exporter``: ``"torchscript"`` (``dynamo=False``, default, any opset ≥ 9) or ``"dynamo"``
    (``torch.export``; needs ``opset >= 18``); see the module docstring for why.
    """
    path = Path(path)
    _check_export_args(input_shape, opset, atol, exporter)
    cpu_model = copy.deepcopy(model).cpu().eval()
    with tempfile.TemporaryDirectory(prefix="ecgpipe-export-") as tmp_dir:
        tmp = Path(tmp_dir) / "model.onnx"
        example = _random_batch((_EXAMPLE_BATCH, *input_shape), seed)
        _torch_export(cpu_model, example, tmp, opset, exporter)
        _check_onnx_file(tmp, path, opset)
        _verify_against_torch(cpu_model, tmp, path, input_shape, atol, seed)
        write_atomic(path, tmp.read_bytes())
    log.info("exported %s (opset %d, %s exporter)", path, opset, exporter)
    return path


def _check_export_args(input_shape: tuple[int, int], opset: int, atol: float, exporter: str) -> None:
    if len(input_shape) != 2 or any(int(n) < 1 for n in input_shape):
        raise ValueError(f"input_shape must be (C, L) with positive sizes, got {tuple(input_shape)}")
    if exporter not in ("torchscript", "dynamo"):
        raise ValueError(f"exporter must be 'torchscript' or 'dynamo', got {exporter!r}")
    if exporter == "dynamo" and opset < _DYNAMO_MIN_OPSET:
        raise ValueError(f"the dynamo exporter implements opset ≥ {_DYNAMO_MIN_OPSET}, got {opset}")
    if not atol > 0.0:
        raise ValueError(f"atol must be > 0, got {atol}")


def _random_batch(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Seeded standard-normal CPU batch; its own generator leaves the global RNG untouched."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen)


def _torch_export(model: nn.Module, example: torch.Tensor, out: Path, opset: int, exporter: Exporter) -> None:
    with warnings.catch_warnings():
        # The legacy exporter announces its own deprecation, and tracing warns about the models' shape
        # checks (Python bools of tensor sizes); the checks only involve fixed axes, and the parity
        # check at other batch sizes catches any trace that is really wrong.
        warnings.filterwarnings("ignore", message=".*might cause the trace to be incorrect.*")
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", message=".*The feature will be removed.*")
        # GRU/LSTM traced at batch 2 "may" fail at other batch sizes: the parity check runs 1 and 3.
        warnings.filterwarnings("ignore", message=".*batch_size other than 1.*GRU.*")
        # The autoencoder's crop is a Slice the folder skips; it stays a (cheap) runtime Slice.
        warnings.filterwarnings("ignore", message=".*Only steps=1 can be constant folded.*")
        # torch.export's own pytree deprecation notice, raised inside torch (dynamo path).
        warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")
        common: dict[str, Any] = {"input_names": ["x"], "output_names": ["out"], "opset_version": opset}
        if exporter == "dynamo":
            torch.onnx.export(
                model, (example,), str(out), **common, dynamo=True, external_data=False, verbose=False,
                dynamic_shapes=({0: torch.export.Dim("batch")},),
            )  # fmt: skip
        else:
            torch.onnx.export(
                model, (example,), str(out), **common, dynamo=False, do_constant_folding=True,
                dynamic_axes={"x": {0: "batch"}, "out": {0: "batch"}},
            )  # fmt: skip


def _check_onnx_file(tmp: Path, dest: Path, opset: int) -> None:
    try:
        onnx.checker.check_model(str(tmp), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise OnnxModelError(f"{dest}: exported graph fails onnx.checker: {exc}") from exc
    found = _default_opset(onnx.load(str(tmp), load_external_data=False))
    if found != opset:
        raise OnnxModelError(f"{dest}: exporter wrote opset {found}, asked for {opset}")


def _default_opset(proto: onnx.ModelProto) -> int:
    return next((int(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx")), -1)


def _verify_against_torch(
    model: nn.Module, onnx_path: Path, dest: Path, input_shape: tuple[int, int], atol: float, seed: int
) -> None:
    session = open_session(onnx_path, threads=1, shown_as=dest)
    for i, batch in enumerate(VERIFY_BATCHES):
        x = _random_batch((batch, *input_shape), seed + 1 + i)
        with torch.no_grad():
            expected = model(x).detach().float().numpy()
        try:
            got = session.run(["out"], {"x": x.numpy()})[0]
        except Exception as exc:  # ORT raises bare pybind errors (Fail, InvalidArgument, ...)
            raise OnnxModelError(f"{dest}: ONNX Runtime fails on a batch of {batch}: {exc}") from exc
        if got.shape != expected.shape:
            raise OnnxModelError(
                f"{dest}: ONNX output shape {got.shape} != PyTorch {expected.shape} (batch {batch})"
            )
        diff = float(np.max(np.abs(got.astype(np.float64) - expected))) if expected.size else 0.0
        if not diff <= atol:
            raise OnnxModelError(
                f"{dest}: ONNX output differs from PyTorch by max |Δ| = {diff:.3g} > atol {atol:g} "
                f"(batch {batch})"
            )
