"""ONNX export (parity with PyTorch, dynamic batch, failure modes), runners, latency statistics and
the export report."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import pytest
import torch
from torch import Tensor, nn

from pipeline.export.onnx import export_onnx
from pipeline.export.quantize import quantize_int8
from pipeline.export.report import build_report, write_report
from pipeline.export.runtime import (
    LatencyStats,
    OnnxModelError,
    OnnxRunner,
    measure_latency,
    torch_runner,
)
from pipeline.models import build_model

F32 = npt.NDArray[np.float32]
BEAT_LEN = 140

TINY: dict[str, tuple[dict[str, Any], tuple[int, int]]] = {
    "resnet1d": ({"n_leads": 12, "n_classes": 3, "widths": (8, 16), "kernel_size": 7}, (12, 500)),
    "autoencoder": ({"in_channels": 1, "length": BEAT_LEN, "widths": (8, 16), "latent": 8}, (1, BEAT_LEN)),
    "crnn": ({"n_classes": 4, "conv_channels": (4, 8), "rnn_hidden": 8}, (1, 900)),
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _tiny(kind: str, seed: int = 0) -> nn.Module:
    """A tiny model with BatchNorm running statistics moved off the identity, in eval mode."""
    kwargs, shape = TINY[kind]
    torch.manual_seed(seed)
    model = build_model(kind, **kwargs)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(4, *shape) * 2.0 + 0.5)
    return model.eval()


def _randn(shape: tuple[int, ...], seed: int) -> F32:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# --- export ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(TINY))
def test_onnx_output_equals_pytorch_at_batch_sizes_1_and_5(kind: str, tmp_path: Path) -> None:
    model = _tiny(kind)
    shape = TINY[kind][1]
    path = export_onnx(model, shape, tmp_path / f"{kind}.onnx")
    runner = OnnxRunner(path)
    reference = torch_runner(model)
    for batch in (1, 5):
        x = _randn((batch, *shape), seed=batch)
        got, want = runner(x), reference(x)
        assert got.shape == want.shape and got.shape[0] == batch
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_exported_graph_has_named_io_a_symbolic_batch_axis_and_the_asked_opset(tmp_path: Path) -> None:
    path = export_onnx(_tiny("resnet1d"), (12, 500), tmp_path / "m.onnx", opset=17)
    proto = onnx.load(str(path))
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert (inp.name, out.name) == ("x", "out")
    dims = inp.type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [12, 500]
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [17]


def test_dynamo_exporter_matches_pytorch_at_opset_18(tmp_path: Path) -> None:
    model = _tiny("autoencoder")
    path = export_onnx(model, (1, BEAT_LEN), tmp_path / "ae.onnx", opset=18, exporter="dynamo")
    x = _randn((5, 1, BEAT_LEN), seed=3)
    np.testing.assert_allclose(OnnxRunner(path)(x), torch_runner(model)(x), rtol=0, atol=1e-5)


def test_dynamo_exporter_below_opset_18_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="opset ≥ 18"):
        export_onnx(_tiny("autoencoder"), (1, BEAT_LEN), tmp_path / "ae.onnx", opset=17, exporter="dynamo")


def test_export_leaves_the_module_in_train_mode_and_only_the_model_file(tmp_path: Path) -> None:
    model = _tiny("autoencoder").train()
    export_onnx(model, (1, BEAT_LEN), tmp_path / "ae.onnx")
    assert model.training
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ae.onnx"]


class _TracesDifferently(nn.Module):
    """Adds 1 only during ONNX export, so the exported graph disagrees with eager PyTorch by exactly 1."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 1, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        y: Tensor = self.conv(x)
        return y + 1.0 if torch.onnx.is_in_onnx_export() else y


def test_export_that_disagrees_with_pytorch_raises_with_the_difference_and_writes_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bad.onnx"
    with pytest.raises(OnnxModelError, match=r"bad\.onnx.*max \|Δ\| = 1 > atol 0\.0001"):
        export_onnx(_TracesDifferently(), (1, 16), path)
    assert list(tmp_path.iterdir()) == []


# --- runners and failure modes --------------------------------------------------------------------


def test_missing_onnx_file_error_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.onnx"
    with pytest.raises(FileNotFoundError, match="nowhere.onnx"):
        OnnxRunner(missing)
    with pytest.raises(FileNotFoundError, match="nowhere.onnx"):
        quantize_int8(missing, [_randn((2, 1, BEAT_LEN), 0)], tmp_path / "q.onnx")


def test_corrupt_onnx_file_error_names_the_file(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07 this is not a protobuf model \xff\xfe")
    with pytest.raises(OnnxModelError, match="corrupt.onnx"):
        OnnxRunner(corrupt)
    with pytest.raises(OnnxModelError, match="corrupt.onnx"):
        quantize_int8(corrupt, [_randn((2, 1, BEAT_LEN), 0)], tmp_path / "q.onnx")


def test_onnx_runner_rejects_input_that_is_not_batch_channel_length(tmp_path: Path) -> None:
    runner = OnnxRunner(export_onnx(_tiny("autoencoder"), (1, BEAT_LEN), tmp_path / "ae.onnx"))
    assert runner.input_shape == (1, BEAT_LEN)
    with pytest.raises(ValueError, match=r"\(B, C, L\)"):
        runner(np.zeros((1, BEAT_LEN), dtype=np.float32))
    with pytest.raises(ValueError, match=r"ae\.onnx: ONNX Runtime rejects input of shape \(2, 1, 100\)"):
        runner(np.zeros((2, 1, 100), dtype=np.float32))


class _ThreadProbe(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []

    def forward(self, x: Tensor) -> Tensor:
        self.seen.append(torch.get_num_threads())
        return x * 2.0


def test_torch_runner_uses_its_thread_count_only_during_the_call() -> None:
    probe = _ThreadProbe().train()
    torch.set_num_threads(2)  # the module fixture restores the session's own value afterwards
    out = torch_runner(probe, threads=1)(np.ones((1, 1, 4), dtype=np.float32))
    assert probe.seen == [1] and torch.get_num_threads() == 2
    assert not probe.training
    np.testing.assert_array_equal(out, np.full((1, 1, 4), 2.0, dtype=np.float32))
    torch.set_num_threads(1)


# --- latency --------------------------------------------------------------------------------------


def test_measure_latency_times_each_repeat_and_orders_its_statistics() -> None:
    calls: list[int] = []

    def fn(x: np.ndarray) -> None:
        calls.append(len(x))
        time.sleep(0.0002 * (1 + len(calls) % 3))

    stats = measure_latency(fn, np.zeros((1, 1, 8), dtype=np.float32), warmup=3, repeats=20)
    assert len(calls) == 23
    assert (stats.repeats, stats.batch) == (20, 1)
    assert 0.0 < stats.median_ms <= stats.p90_ms
    assert stats.mean_ms >= 0.2  # every call sleeps ≥ 0.2 ms
    with pytest.raises(ValueError, match="repeats"):
        measure_latency(fn, np.zeros((1, 1, 8)), repeats=0)


# --- report ---------------------------------------------------------------------------------------


def _stats(median: float) -> LatencyStats:
    return LatencyStats(median_ms=median, p90_ms=median * 1.5, mean_ms=median * 1.1, repeats=100)


METRICS = {
    "pytorch_fp32": {"auroc": 0.90, "f1_macro": 0.50},
    "onnx_fp32": {"auroc": 0.90, "f1_macro": 0.50},
    "onnx_int8": {"auroc": 0.88, "f1_macro": 0.53},
}


def test_report_deltas_speedups_and_size_ratios_are_relative_to_pytorch_fp32() -> None:
    latency = {"pytorch_fp32": _stats(8.0), "onnx_fp32": _stats(4.0), "onnx_int8": _stats(2.0)}
    sizes = {"pytorch_fp32": 4000, "onnx_fp32": 4100, "onnx_int8": 1000}
    report = build_report("resnet1d", METRICS, latency, sizes)
    assert list(report["metrics"]) == ["pytorch_fp32", "onnx_fp32", "onnx_int8"]
    assert report["delta"]["onnx_int8"] == pytest.approx({"auroc": -0.02, "f1_macro": 0.03})
    assert report["delta"]["onnx_fp32"] == {"auroc": 0.0, "f1_macro": 0.0}
    assert "pytorch_fp32" not in report["delta"]
    assert report["speedup"] == {"pytorch_fp32": 1.0, "onnx_fp32": 2.0, "onnx_int8": 4.0}
    assert report["size_ratio"] == {"pytorch_fp32": 1.0, "onnx_fp32": 1.025, "onnx_int8": 0.25}
    assert report["latency_ms"]["onnx_int8"] == {
        "median_ms": 2.0,
        "p90_ms": 3.0,
        "mean_ms": pytest.approx(2.2),
        "repeats": 100,
        "batch": 1,
    }


def test_report_rejects_inconsistent_inputs() -> None:
    with pytest.raises(ValueError, match="no reference variant 'pytorch_fp32'"):
        build_report("m", {"onnx_fp32": {"auroc": 0.9}}, {}, {})
    with pytest.raises(ValueError, match="'onnx_int8' has metrics"):
        build_report("m", {"pytorch_fp32": {"auroc": 0.9}, "onnx_int8": {"auc": 0.9}}, {}, {})
    with pytest.raises(ValueError, match="latency lacks the reference"):
        build_report("m", METRICS, {"onnx_int8": _stats(1.0)}, {})
    with pytest.raises(ValueError, match="sizes_bytes has variants \\['onnx_int4'\\]"):
        build_report("m", METRICS, {}, {"pytorch_fp32": 1, "onnx_int4": 1})


def test_written_report_is_numeric_json_with_nulls_for_nan_and_a_markdown_table(tmp_path: Path) -> None:
    metrics = {v: {**m, "auprc": math.nan if v == "onnx_int8" else 0.7} for v, m in METRICS.items()}
    latency = {"pytorch_fp32": _stats(8.0), "onnx_int8": _stats(2.0)}
    report = build_report("resnet1d", metrics, latency, {"pytorch_fp32": 4000, "onnx_int8": 1000})
    write_report(report, tmp_path / "r.json", tmp_path / "r.md")
    loaded = json.loads((tmp_path / "r.json").read_text())
    assert loaded["metrics"]["onnx_int8"]["auprc"] is None
    assert loaded["delta"]["onnx_int8"]["auprc"] is None
    assert loaded["delta"]["onnx_int8"]["auroc"] == pytest.approx(-0.02)
    assert "onnx_fp32" not in loaded["latency_ms"]
    md = (tmp_path / "r.md").read_text()
    assert "| metric | pytorch_fp32 | onnx_fp32 | Δ onnx_fp32 | onnx_int8 | Δ onnx_int8 |" in md
    assert "| auroc | 0.9000 | 0.9000 | +0.0000 | 0.8800 | -0.0200 |" in md
    assert "| onnx_int8 | 1 | 2.000 | 3.000 | 2.200 | 4.00× | 1,000 | 0.250 |" in md
    assert "| onnx_fp32 | – | – | – | – | – | – | – |" in md
    assert "n/a" in md


def test_metrics_file_holds_aggregate_deltas_latency_and_size_only(tmp_path: Path) -> None:
    metrics = {v: {**m, "f1_AF": 0.4} for v, m in METRICS.items()}
    latency = {"pytorch_fp32": _stats(8.0), "onnx_int8": _stats(2.0)}
    report = build_report("resnet1d", metrics, latency, {"pytorch_fp32": 4000, "onnx_int8": 1000})
    write_report(report, tmp_path / "r.json", tmp_path / "r.md", tmp_path / "metrics.json")
    headline = json.loads((tmp_path / "metrics.json").read_text())
    assert headline["delta"]["onnx_int8"] == pytest.approx({"auroc": -0.02, "f1_macro": 0.03})  # no f1_AF
    assert headline["latency_median_ms"] == {"pytorch_fp32": 8.0, "onnx_int8": 2.0}
    assert headline["speedup"]["onnx_int8"] == 4.0 and headline["size_bytes"]["onnx_int8"] == 1000
