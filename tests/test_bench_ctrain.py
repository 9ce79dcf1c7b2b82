"""The C-training benchmark runs end to end (reduced: few steps, two rounds); the full run and its table are
`make bench-ctrain` and benchmarks/README.md. No speed is asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT


def test_ctrain_benchmark_times_c_and_pytorch_steps_on_the_params_autoencoder(
    tmp_path: Path, ckernels_build: Path
) -> None:
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks/ctrain/bench_ctrain.py"), "--steps", "3",
         "--rounds", "2", "--batch-size", "8", "--out", str(out)],
        capture_output=True, text=True, check=False, cwd=REPO_ROOT, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    row = json.loads(out.read_text())["row"]
    assert (row["model"], row["input"], row["batch_size"], row["steps"]) == ("autoencoder", [1, 140], 8, 3)
    assert [len(v) for v in row["rounds_steps_per_s"].values()] == [2, 2]
    assert row["c_steps_per_s"] > 0.0 and row["pytorch_steps_per_s"] > 0.0
    assert row["ratio_c_vs_pytorch"] == row["c_steps_per_s"] / row["pytorch_steps_per_s"]
    assert "| autoencoder (widths [16, 32, 64]) | 1×140 | 8 |" in proc.stdout
