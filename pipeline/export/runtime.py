"""Running exported models: ONNX Runtime CPU sessions, the PyTorch runner with the same interface,
latency and model sizes.

- :class:`OnnxRunner`: CPU ``InferenceSession`` with fixed thread counts; ``runner(x)`` → raw output.
- :func:`torch_runner`: the same callable interface for the PyTorch FP32 model.
- :func:`measure_latency` → :class:`LatencyStats` (per call, in ms); :func:`state_dict_nbytes`.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import torch
from torch import nn

F32 = npt.NDArray[np.float32]


class OnnxModelError(ValueError):
    """An ONNX file that cannot be loaded or checked, or that disagrees with its PyTorch source.

    The message starts with the file's path.
    """


def open_session(path: Path, threads: int, shown_as: Path | None = None) -> ort.InferenceSession:
    """CPU session with ``threads`` intra-op threads; errors name ``shown_as`` (default ``path``)."""
    name = shown_as or path
    if not path.is_file():
        raise FileNotFoundError(f"{name}: no such ONNX model file")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    # Sequential execution never uses the inter-op pool; 1 keeps it from spawning idle threads.
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises bare pybind errors (InvalidProtobuf, Fail, InvalidGraph, ...)
        raise OnnxModelError(f"{name}: not a loadable ONNX model: {exc}") from exc


class OnnxRunner:
    """An ONNX model on ONNX Runtime's CPU execution provider.

    ``threads`` sets the intra-op thread count (1 = the batch-1 latency setting of the report);
    execution is sequential, so the inter-op pool is fixed at 1 thread. ``run(x)`` / ``runner(x)``
    take ``x`` (B, C, L) float32 (other float dtypes are converted) and return the model's first
    output as float32, e.g. logits (B, K) or a reconstruction (B, C, L). ``input_shape`` is the
    graph's (C, L) (``None`` for a symbolic axis). Raises ``FileNotFoundError`` or
    :class:`OnnxModelError` naming ``path`` when the file is missing or not a loadable model.
    """

    def __init__(self, path: Path, threads: int = 1) -> None:
        if threads < 1:
            raise ValueError(f"threads must be ≥ 1, got {threads}")
        self.path = Path(path)
        self.threads = threads
        self._session = open_session(self.path, threads)
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise OnnxModelError(f"{self.path}: expected one input, the graph has {len(inputs)}")
        self.input_name = str(inputs[0].name)
        self.output_name = str(self._session.get_outputs()[0].name)
        self.input_shape: tuple[int | None, ...] = tuple(
            d if isinstance(d, int) else None for d in inputs[0].shape[1:]
        )

    def run(self, x: np.ndarray) -> F32:
        """(B, C, L) float32 → the model's raw output (first graph output) as float32."""
        batch = np.ascontiguousarray(x, dtype=np.float32)
        if batch.ndim != 3:
            raise ValueError(f"{self.path}: expected input (B, C, L), got shape {batch.shape}")
        try:
            result = self._session.run([self.output_name], {self.input_name: batch})[0]
        except Exception as exc:  # ORT's pybind InvalidArgument etc.: add which model refused the input
            raise ValueError(
                f"{self.path}: ONNX Runtime rejects input of shape {batch.shape}: {exc}"
            ) from exc
        return np.asarray(result, dtype=np.float32)

    def __call__(self, x: np.ndarray) -> F32:
        return self.run(x)


def torch_runner(model: nn.Module, threads: int = 1) -> Callable[[np.ndarray], F32]:
    """PyTorch FP32 inference with the :class:`OnnxRunner` interface: (B, C, L) → raw output float32.

    Puts ``model`` in eval mode (it stays there). Each call converts ``x`` to float32 on the model's
    device, runs under ``torch.no_grad()`` and returns the output on the CPU as numpy. PyTorch's
    intra-op thread count is process-wide, so each call sets it to ``threads`` and restores the
    previous value in ``finally`` (measured cost of the two calls: < 1 µs per call), which keeps
    the benchmark setting from leaking into training or data loading that runs afterwards.
    """
    if threads < 1:
        raise ValueError(f"threads must be ≥ 1, got {threads}")
    model.eval()
    device = _model_device(model)

    def run(x: np.ndarray) -> F32:
        batch = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            with torch.no_grad():
                out = model(batch)
        finally:
            torch.set_num_threads(previous)
        return np.asarray(out.detach().float().cpu().numpy(), dtype=np.float32)

    return run


def _model_device(model: nn.Module) -> torch.device:
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


# --- latency --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LatencyStats:
    """Wall-clock time of one call, in ms, over ``repeats`` timed calls on a batch of ``batch``."""

    median_ms: float
    p90_ms: float
    mean_ms: float
    repeats: int
    batch: int = 1

    def as_dict(self) -> dict[str, float | int]:
        return dict(asdict(self))


def measure_latency(
    fn: Callable[[np.ndarray], object], x: np.ndarray, *, warmup: int = 10, repeats: int = 100
) -> LatencyStats:
    """Time ``fn(x)``: ``warmup`` untimed calls, then ``repeats`` calls timed one by one.

    ``x`` is the input batch, e.g. (1, C, L) for batch-1 latency. Each call is timed with
    ``time.perf_counter`` around ``fn(x)`` alone; median, 90th percentile (linear interpolation) and
    mean are in milliseconds. Runs in the calling thread; the thread count is ``fn``'s business.
    """
    if warmup < 0 or repeats < 1:
        raise ValueError(f"need warmup ≥ 0 and repeats ≥ 1, got warmup={warmup}, repeats={repeats}")
    for _ in range(warmup):
        fn(x)
    times_ms = np.empty(repeats, dtype=np.float64)
    for i in range(repeats):
        start = time.perf_counter()
        fn(x)
        times_ms[i] = (time.perf_counter() - start) * 1e3
    batch = int(np.shape(x)[0]) if np.ndim(x) > 0 else 1
    return LatencyStats(
        median_ms=float(np.median(times_ms)),
        p90_ms=float(np.percentile(times_ms, 90)),
        mean_ms=float(times_ms.mean()),
        repeats=repeats,
        batch=batch,
    )


def state_dict_nbytes(model: nn.Module) -> int:
    """Size in bytes of ``torch.save(model.state_dict())``: the PyTorch FP32 model's file size."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes
