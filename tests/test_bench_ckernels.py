"""The C-kernel latency benchmark runs end to end (reduced: one model, few repeats); the full run and its
table are `make bench-ckernels` and benchmarks/README.md. No timing is asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT


def test_model_latency_benchmark_times_c_pytorch_and_onnxruntime_on_one_model(
    tmp_path: Path, ckernels_build: Path
) -> None:
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks/ckernels/bench_models.py"), "--models", "autoencoder",
         "--repeats", "3", "--rounds", "1", "--out", str(out)],
        capture_output=True, text=True, check=False, cwd=REPO_ROOT, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (row,) = json.loads(out.read_text())["rows"]
    for key in ("pytorch_ms", "onnxruntime_ms", "c_ctypes_ms", "c_runner_ms"):
        assert row[key] > 0.0, row
    assert row["ratio_c_vs_pytorch"] == row["c_ctypes_ms"] / row["pytorch_ms"]
    assert row["ratio_c_vs_onnxruntime"] == row["c_ctypes_ms"] / row["onnxruntime_ms"]
    assert row["paired_ratio_c_vs_onnxruntime"] > 0.0
    assert "| autoencoder (autoencoder) | 1×140 |" in proc.stdout
