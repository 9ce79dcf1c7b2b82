"""The ingest benchmark script, reduced to 40 real PTB-XL records: output structure and outputs.

Speed targets are not asserted here (CI machines vary); the script reports them itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.ingest.inputs import rename_header, replica_stem
from benchmarks.ingest.results import memory_sizes
from pipeline.config import load_params
from pipeline.config.build import signal_plan
from pipeline.core.records import Provenance, Record
from pipeline.signal.preprocess import process
from pipeline.sources.ptbxl import PtbXlReader
from pipeline.sources.wfdb import read_header
from pipeline.store.local import ShardStore, read_signal, read_strings

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "ingest" / "bench_ingest.py"
N = 40
HALF_STEP_MV = 0.0005 + 1e-6  # int16 storage at 1 uV rounds to the nearest step

TARGET_NAMES = {
    "ours (1 worker) / baseline (1 process), records/s",
    "records/s per core (1 worker)",
    "2 workers / 1 worker, records/s",
    "peak RSS per worker, 10x input / 1x",
    "peak RSS of the parent, 10x input / 1x",
    "store bytes / raw WFDB bytes",
}
RUN_KEYS = {
    "workers",
    "n_records",
    "seconds",
    "seconds_all",
    "plan_s",
    "batches_s",
    "commit_s",
    "records_per_s",
    "records_per_s_per_core",
    "records_per_cpu_s",
    "peak_rss_worker_mb",
    "peak_rss_parent_mb",
    "store_bytes",
    "store",
}


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> dict[str, Any]:
    """One reduced run of the script (as `make bench` runs it, with smaller sizes)."""
    work = tmp_path_factory.mktemp("bench")
    out = work / "results.json"
    args = ["--n", str(N), "--memory-scale", "down", "--repeats", "1", "--baseline-repeats", "1"]
    args += ["--decode-records", "10", "--work", str(work), "--out", str(out)]
    args += ["--source", str(shared_data / "ptbxl")]
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| store bytes / raw WFDB bytes |" in proc.stdout  # the printed markdown table
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    result["_work"] = str(work)
    return result


def _reference(input_root: Path) -> dict[str, np.ndarray[Any, np.dtype[np.float32]]]:
    """Record id → the profile's preprocessing of our reader's record, float32 (12, 5000) mV."""
    params = load_params(REPO / "params.yaml", [f"sources.ptbxl.root={input_root}"])
    plan = signal_plan(params.profiles["ecg12"])
    reader = PtbXlReader("ptbxl", input_root)
    records = [
        r
        for unit in reader.discover().units
        for r in reader.read(unit, Provenance(files=(), reader=reader.reader_id))
        if isinstance(r, Record)
    ]
    batch, rejected = process(records, plan)
    assert not rejected
    return {rec.record_id: batch.signal[i] for i, rec in enumerate(batch.records)}


def _store_signals(root: Path) -> dict[str, np.ndarray[Any, np.dtype[np.float32]]]:
    store = ShardStore(root, "ecg12")
    manifest = store.load_manifest()
    out = {}
    for name, entry in manifest.shards.items():
        group = store.open_shard(name)
        rows = entry.live_rows()
        ids = read_strings(group, "record_id")
        signal = read_signal(group)
        out.update({ids[i]: signal[i] for i in rows})
    return out


@pytest.mark.shared_data
@pytest.mark.slow
def test_json_has_every_section_and_the_six_targets(bench: dict[str, Any]) -> None:
    assert {"meta", "input", "decode", "baseline", "ours", "scaling", "storage", "memory", "targets"} <= set(
        bench
    )
    assert bench["input"]["n_records"] == N
    assert bench["meta"]["n_records"] == N and bench["meta"]["cpus"] >= 1
    assert {"commit", "pipeline_dirty", "pipeline_sha256", "changed_during_run"} <= set(bench["meta"]["code"])
    assert set(bench["ours"]) == {"1", "2"}
    for workers, run in bench["ours"].items():
        assert set(run) >= RUN_KEYS, RUN_KEYS - set(run)
        assert run["workers"] == int(workers) and run["n_records"] == N
        assert run["records_per_s"] > 0 and run["peak_rss_worker_mb"] > 0 and run["peak_rss_parent_mb"] > 0
        assert run["reconciled"] and run["quarantined"] == 0
        assert run["records_per_s_per_core"] == pytest.approx(run["records_per_s"] / int(workers))
    assert bench["baseline"]["n_records"] == N and bench["baseline"]["records_per_s"] > 0
    assert {t["name"] for t in bench["targets"]} == TARGET_NAMES
    assert all(isinstance(t["pass"], bool) for t in bench["targets"])
    assert bench["all_pass"] == all(t["pass"] for t in bench["targets"])
    assert bench["memory"]["sizes"] == [N // 10, N]
    assert set(bench["memory"]["runs"]) == {str(N // 10), str(N)}
    assert bench["decode"]["n_records"] == 10 and bench["decode"]["max_abs_diff_mv"] == 0.0


@pytest.mark.shared_data
@pytest.mark.slow
def test_raw_bytes_and_ratios_match_the_files_on_disk(bench: dict[str, Any]) -> None:
    root = Path(bench["_work"]) / f"input-{N}"
    dat = sum(p.stat().st_size for p in root.rglob("*.dat"))
    hea = sum(p.stat().st_size for p in root.rglob("*.hea"))
    assert dat == N * 12 * 5000 * 2  # int16, 12 leads x 5000 samples
    st = bench["storage"]
    assert st["raw_bytes"] == dat + hea
    shards = Path(bench["ours"]["1"]["store"]) / "shards"
    assert st["store_bytes"] == sum(p.stat().st_size for p in shards.rglob("*") if p.is_file())
    assert st["store_ratio"] == pytest.approx(st["store_bytes"] / st["raw_bytes"])
    assert bench["memory"]["runs"][str(N)]["raw_bytes"] == st["raw_bytes"]
    npz = sorted((Path(bench["_work"]) / "npz").glob("*.npz"))
    assert len(npz) == N and st["npz_bytes"] == sum(p.stat().st_size for p in npz)


@pytest.mark.shared_data
@pytest.mark.slow
def test_replicated_tree_has_new_ids_renamed_headers_and_the_source_samples(
    bench: dict[str, Any], shared_data: Path
) -> None:
    root = Path(bench["_work"]) / f"input-{N}"
    for ecg_id, src_id in ((1, 1), (N, N)):  # N <= 150, so ids map to the same source record
        stem = replica_stem(ecg_id, "records500", "hr")
        header = read_header(root / f"{stem}.hea")
        assert header.record_name == f"{ecg_id:05d}_hr"
        assert {s.file_name for s in header.signals} == {f"{ecg_id:05d}_hr.dat"}
        src = shared_data / "ptbxl" / replica_stem(src_id, "records500", "hr")
        assert (root / f"{stem}.dat").read_bytes() == Path(f"{src}.dat").read_bytes()
    units = PtbXlReader("ptbxl", root).discover()
    assert [u.key for u in units.units] == [f"{i:05d}" for i in range(1, N + 1)]
    assert not units.rejected


@pytest.mark.shared_data
@pytest.mark.slow
def test_stores_hold_every_record_preprocessed_and_quantised(bench: dict[str, Any]) -> None:
    reference = _reference(Path(bench["_work"]) / f"input-{N}")
    assert len(reference) == N
    for workers in ("1", "2"):
        stored = _store_signals(Path(bench["ours"][workers]["store"]))
        assert set(stored) == set(reference)
        for rid, expected in reference.items():
            assert stored[rid].shape == (12, 5000)
            assert np.max(np.abs(stored[rid] - expected)) <= HALF_STEP_MV, rid


@pytest.mark.shared_data
@pytest.mark.slow
def test_baseline_npz_holds_the_same_preprocessed_signal(bench: dict[str, Any]) -> None:
    stored = _store_signals(Path(bench["ours"]["1"]["store"]))
    for rid, signal in stored.items():
        with np.load(Path(bench["_work"]) / "npz" / f"{rid.split(':')[1]}.npz") as npz:
            x = npz["signal"]
            assert x.dtype == np.float32 and x.shape == (12, 5000)
            assert str(npz["scp_codes"]).startswith("{")
        # wfdb.rdrecord and our decoder give identical samples, so only quantisation differs.
        assert np.max(np.abs(x - signal)) <= HALF_STEP_MV, rid


def test_rename_header_renames_the_record_and_its_signal_files_only() -> None:
    text = "00001_hr 12 500 5000\n00001_hr.dat 16 1000.0(0)/mV 16 0 -115 13047 0 I\n# 00001_hr note\n"
    out = rename_header(text, "00001_hr", "02001_hr")
    assert out == "02001_hr 12 500 5000\n02001_hr.dat 16 1000.0(0)/mV 16 0 -115 13047 0 I\n# 00001_hr note\n"


def test_replica_paths_follow_the_ptbxl_thousand_folders() -> None:
    assert replica_stem(1, "records500", "hr") == "records500/00000/00001_hr"
    assert replica_stem(21837, "records100", "lr") == "records100/21000/21837_lr"


def test_memory_sizes_are_ten_times_apart() -> None:
    assert memory_sizes(2000, "up") == (2000, 20000)
    assert memory_sizes(2000, "down") == (200, 2000)
