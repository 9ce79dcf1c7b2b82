"""INT8 quantisation of a briefly trained beat autoencoder: ranking kept, QDQ graph, calibration, and
the export report end to end."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import pytest
import torch
from onnx import numpy_helper
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score
from torch import nn

from pipeline.export.onnx import export_onnx
from pipeline.export.quantize import quantize_int8
from pipeline.export.report import build_report, write_report
from pipeline.export.runtime import OnnxRunner, measure_latency, state_dict_nbytes, torch_runner
from pipeline.models import build_model

F32 = npt.NDArray[np.float32]
BEAT_LEN = 140
AUTOENCODER = {"in_channels": 1, "length": BEAT_LEN, "widths": (8, 16), "latent": 8}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _sine_beats(rng: np.random.Generator, n: int, anomalous: bool) -> F32:
    """(n, 1, 140) beats in mV: 1.5–2.5 sine cycles of 0.8–1.2 mV with noise; anomalies add a 20 ms spike."""
    t = np.arange(BEAT_LEN) / BEAT_LEN
    cycles = rng.uniform(1.5, 2.5, (n, 1))
    amp = rng.uniform(0.8, 1.2, (n, 1))
    phase = rng.uniform(0.0, 2.0 * np.pi, (n, 1))
    x = amp * np.sin(2.0 * np.pi * cycles * t + phase)
    if anomalous:
        centre = rng.uniform(0.1, 0.9, (n, 1))
        x = x + rng.uniform(0.4, 0.8, (n, 1)) * np.exp(-0.5 * ((t - centre) / 0.02) ** 2)
    x = x + 0.05 * rng.standard_normal((n, BEAT_LEN))
    return x[:, None, :].astype(np.float32)


@dataclass
class TrainedBeats:
    model: nn.Module
    train: F32
    test: F32
    is_anomaly: npt.NDArray[np.int64]
    fp32: Path
    int8: Path
    calibration_batches_read: int


def _train_autoencoder(train: F32, steps: int = 50, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = build_model("autoencoder", **AUTOENCODER)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    data = torch.from_numpy(train)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        batch = data[torch.randint(0, len(data), (64,), generator=gen)]
        loss = (model(batch) - batch).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def beats(tmp_path_factory: pytest.TempPathFactory) -> TrainedBeats:
    rng = np.random.default_rng(0)
    train = _sine_beats(rng, 512, anomalous=False)
    test = np.concatenate([_sine_beats(rng, 200, False), _sine_beats(rng, 200, True)])
    labels = np.r_[np.zeros(200, dtype=np.int64), np.ones(200, dtype=np.int64)]
    model = _train_autoencoder(train)
    folder = tmp_path_factory.mktemp("beats")
    fp32 = export_onnx(model, (1, BEAT_LEN), folder / "ae_fp32.onnx")
    read: list[int] = []

    def calibration() -> Iterator[F32]:
        for start in range(0, len(train), 64):
            read.append(start)
            yield train[start : start + 64]

    int8 = quantize_int8(fp32, calibration(), folder / "ae_int8.onnx")
    return TrainedBeats(model, train, test, labels, fp32, int8, len(read))


def _errors(fn: Any, x: F32) -> npt.NDArray[np.float64]:
    recon = np.asarray(fn(x), dtype=np.float64)
    return np.asarray(((recon - x) ** 2).mean(axis=(1, 2)), dtype=np.float64)


def test_int8_autoencoder_ranks_anomalies_like_fp32_and_is_smaller(beats: TrainedBeats) -> None:
    fp32_err = _errors(torch_runner(beats.model), beats.test)
    int8_err = _errors(OnnxRunner(beats.int8), beats.test)
    auroc_fp32 = roc_auc_score(beats.is_anomaly, fp32_err)
    auroc_int8 = roc_auc_score(beats.is_anomaly, int8_err)
    assert auroc_fp32 > 0.75  # the 50-step model does separate the spikes, so the comparison means something
    assert abs(auroc_int8 - auroc_fp32) <= 0.02
    assert spearmanr(fp32_err, int8_err)[0] >= 0.98
    assert float(np.median(np.abs(int8_err - fp32_err) / fp32_err)) < 0.05
    assert beats.int8.stat().st_size < beats.fp32.stat().st_size


def test_int8_graph_is_qdq_with_int8_weights(beats: TrainedBeats) -> None:
    proto = onnx.load(str(beats.int8))
    ops = {n.op_type for n in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    int8_weights = [i for i in proto.graph.initializer if i.data_type == onnx.TensorProto.INT8]
    assert len(int8_weights) >= 4  # encoder convs, transposed convs, dense layers


def test_calibration_reads_every_given_batch(beats: TrainedBeats) -> None:
    assert beats.calibration_batches_read == len(beats.train) // 64


def _input_scale(path: Path) -> float:
    proto = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    node = next(n for n in proto.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "x")
    return float(inits[node.input[1]])


def test_input_quantisation_range_comes_from_the_calibration_batches(
    beats: TrainedBeats, tmp_path: Path
) -> None:
    scaled = quantize_int8(beats.fp32, [beats.train[:128] * 10.0], tmp_path / "scaled.onnx")
    plain = quantize_int8(beats.fp32, [beats.train[:128]], tmp_path / "plain.onnx")
    assert _input_scale(scaled) / _input_scale(plain) == pytest.approx(10.0, rel=1e-3)


def test_percentile_calibration_also_preserves_the_ranking(beats: TrainedBeats, tmp_path: Path) -> None:
    path = quantize_int8(beats.fp32, [beats.train[:256]], tmp_path / "pct.onnx", method="percentile")
    fp32 = roc_auc_score(beats.is_anomaly, _errors(torch_runner(beats.model), beats.test))
    pct = roc_auc_score(beats.is_anomaly, _errors(OnnxRunner(path), beats.test))
    assert abs(pct - fp32) <= 0.02


def test_quantize_rejects_empty_or_misshapen_calibration(beats: TrainedBeats, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no batches"):
        quantize_int8(beats.fp32, [], tmp_path / "q.onnx")
    with pytest.raises(ValueError, match="axis 2 has size 100, the model expects 140"):
        quantize_int8(beats.fp32, [np.zeros((4, 1, 100), dtype=np.float32)], tmp_path / "q.onnx")
    with pytest.raises(ValueError, match=r"\(B, C, L\)"):
        quantize_int8(beats.fp32, [np.zeros((1, BEAT_LEN), dtype=np.float32)], tmp_path / "q.onnx")
    assert not (tmp_path / "q.onnx").exists()


def test_export_report_end_to_end_for_the_autoencoder(beats: TrainedBeats, tmp_path: Path) -> None:
    runners: dict[str, Callable[[np.ndarray], F32]] = {
        "pytorch_fp32": torch_runner(beats.model),
        "onnx_fp32": OnnxRunner(beats.fp32),
        "onnx_int8": OnnxRunner(beats.int8),
    }
    metrics = {
        v: {"auroc": float(roc_auc_score(beats.is_anomaly, _errors(fn, beats.test)))}
        for v, fn in runners.items()
    }
    latency = {v: measure_latency(fn, beats.test[:1], warmup=2, repeats=10) for v, fn in runners.items()}
    sizes = {
        "pytorch_fp32": state_dict_nbytes(beats.model),
        "onnx_fp32": beats.fp32.stat().st_size,
        "onnx_int8": beats.int8.stat().st_size,
    }
    report = build_report("autoencoder", metrics, latency, sizes)
    write_report(report, tmp_path / "export.json", tmp_path / "export.md")
    loaded = json.loads((tmp_path / "export.json").read_text())
    assert loaded["delta"]["onnx_fp32"]["auroc"] == pytest.approx(0.0, abs=1e-9)
    assert abs(loaded["delta"]["onnx_int8"]["auroc"]) <= 0.02
    assert loaded["speedup"]["pytorch_fp32"] == 1.0
    assert loaded["size_ratio"]["onnx_int8"] < loaded["size_ratio"]["onnx_fp32"]
    assert "| auroc |" in (tmp_path / "export.md").read_text()
