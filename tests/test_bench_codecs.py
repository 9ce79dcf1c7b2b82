"""The codec benchmark, reduced (16 records per profile, one pass): every candidate is lossless on
real records, the figures are relative to today's codec, and sizes are against the raw WFDB bytes.

Speeds are not asserted (they depend on the machine); the script reports them itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "codecs" / "bench_codecs.py"
pytestmark = [pytest.mark.shared_data]


def test_reduced_codec_benchmark_reports_each_codec_on_real_records(
    tmp_path: Path, shared_data: Path
) -> None:
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--n", "16", "--repeats", "1", "--out", str(out)],
        cwd=REPO,
        env={**os.environ, "ECGPIPE_SHARED_DATA": str(shared_data)},
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    res = json.loads(out.read_text())
    for profile, shape in (("ecg12", [12, 5000]), ("lead1_af", [1, 9000])):
        r = res[profile]
        assert r["records"] == 16 and r["shape"] == shape and r["raw_wfdb_bytes"] > 0
        codecs = r["codecs"]
        assert codecs["blosc zstd-3 bitshuffle"]["x_today_speed"] == 1.0
        assert {"blosc lz4-9 bitshuffle", "blosc zstd-5 byteshuffle", "zstd-3 (no shuffle)"} <= set(codecs)
        # int16 at 1 µV: the decoded bytes are 2 bytes a sample; every codec stores less than that
        copy = codecs["memory copy (ceiling)"]["x_raw"]
        assert all(0 < v["x_raw"] < copy for k, v in codecs.items() if k != "memory copy (ceiling)")
    assert "| blosc zstd-3 bitshuffle (today) |" in proc.stdout
