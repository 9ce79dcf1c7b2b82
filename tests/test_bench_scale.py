"""The scale benchmark, reduced (48 real PTB-XL records, clusters of 1 and 2 workers, local + S3):
it runs end to end, every run builds the baseline's shards, and results.json has its full shape.

Speed is not asserted (CI machines vary); the script's own checks are, and the test re-hashes the
stores the script kept on disk instead of trusting its figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.scale.accounting import cpu_by_role
from benchmarks.scale.options import configurations, options, parse_args, parse_workers
from benchmarks.scale.services import RequestLog
from pipeline.store.local import ShardStore, tree_digest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "scale" / "bench_scale.py"
N = 48  # --reduced
BATCH_UNITS = 8  # --reduced: 6 batches
KEYS = {"threads-1-local", "dask-1-local", "dask-2-local", "dask-2-s3"}
RUN_KEYS = {
    "label",
    "runner",
    "workers",
    "store",
    "n_records",
    "n_shards",
    "wall_s",
    "wall_s_all",
    "batch_s",
    "outside_batch_s",
    "flow_batch_s",
    "tasks",
    "task_ms_per_record",
    "records_per_s",
    "batch_records_per_s",
    "ratio_to_baseline",
    "batch_ratio_to_baseline",
    "cpu_s",
    "cpu_ms_per_record",
    "worker_cpu_ms_per_record",
    "requests",
    "load_avg_1m",
    "writers",
    "same_shards_as_baseline",
    "stored_bytes_match_manifest",
    "kept_store",
}
READ_KEYS = {
    "open_s",
    "read_s",
    "n_records",
    "records_per_s",
    "records_per_s_incl_open",
    "seconds_all",
    "requests",
}


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> dict[str, Any]:
    """One reduced run of the script, its scratch folder kept for the store checks."""
    work = tmp_path_factory.mktemp("scale")
    out = work / "results.json"
    args = ["--reduced", "--read-repeats", "1", "--work", str(work / "work"), "--out", str(out)]
    args += ["--source", str(shared_data / "ptbxl")]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=REPO, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "| configuration | wall s |" in proc.stdout and "| check | result |" in proc.stdout
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return result


@pytest.mark.shared_data
@pytest.mark.prefect
@pytest.mark.slow
def test_reduced_run_measures_every_configuration_with_positive_throughput(bench: dict[str, Any]) -> None:
    meta = bench["meta"]
    assert meta["reduced"] and meta["n_records"] == N and meta["batch_units"] == BATCH_UNITS
    assert (
        meta["cpus"] >= 1
        and meta["python"]
        and {"prefect", "distributed", "s3fs", "zarr"} <= set(meta["versions"])
    )
    assert {"commit", "pipeline_sha256", "changed_during_run"} <= set(meta["code"])
    assert bench["input"]["n_records"] == N
    assert set(bench["ingest"]) == KEYS and bench["baseline"] == "threads-1-local"
    for key, run in bench["ingest"].items():
        assert set(run) >= RUN_KEYS, (key, RUN_KEYS - set(run))
        assert run["n_records"] == N and run["n_shards"] == N // BATCH_UNITS, key
        assert run["records_per_s"] > 0 and run["batch_records_per_s"] > 0 and run["cpu_s"]["total"] > 0
        assert run["records_per_s"] == pytest.approx(N / run["wall_s"])
        # the batch tasks' span, from the task runs the Prefect server recorded, lies within the run
        assert 0 < run["batch_s"] < run["wall_s"] and run["tasks"]["n_completed"] == N // BATCH_UNITS
    base = bench["ingest"]["threads-1-local"]
    assert base["ratio_to_baseline"] == pytest.approx(1.0)
    assert base["cpu_s"]["flow"] > 0 and base["cpu_s"]["workers"] == 0


@pytest.mark.shared_data
@pytest.mark.prefect
@pytest.mark.slow
def test_every_run_built_the_baselines_shards_written_by_its_own_workers(bench: dict[str, Any]) -> None:
    for key, run in bench["ingest"].items():
        assert run["same_shards_as_baseline"] and run["stored_bytes_match_manifest"], key
        assert run["writers_expected"] and run["reconciled"] and run["quarantined"] == 0, key
        assert run["one_task_run_per_batch"], key
    assert len(bench["ingest"]["dask-2-local"]["writers"]) == 2  # both workers of the cluster wrote shards
    s3 = bench["ingest"]["dask-2-s3"]
    assert s3["requests"]["PUT"] >= s3["n_shards"] and s3["cpu_s"]["s3_server"] > 0
    assert bench["checks"] and all(c["pass"] for c in bench["checks"]) and bench["all_pass"]


@pytest.mark.shared_data
@pytest.mark.prefect
@pytest.mark.slow
def test_kept_local_stores_rehash_to_the_baseline_shard_table(bench: dict[str, Any]) -> None:
    table = bench["shards"]
    assert len(table) == N // BATCH_UNITS and sum(v[2] for v in table.values()) == N
    local = [run for run in bench["ingest"].values() if run["store"] == "local"]
    assert len(local) == 3
    for run in local:
        store = ShardStore(Path(run["kept_store"]) / "ecg12", "ecg12")
        digests = {name: list(tree_digest(store.shard_path(name))) for name in store.load_manifest().shards}
        assert digests == {name: v[:2] for name, v in table.items()}, run["label"]


@pytest.mark.shared_data
@pytest.mark.prefect
@pytest.mark.slow
def test_reads_cover_the_store_from_disk_and_s3_with_counted_requests(bench: dict[str, Any]) -> None:
    reads = bench["reads"]
    assert reads["same_batches"] and reads["n_shards"] == N // BATCH_UNITS
    for where in ("local", "s3"):
        for what in ("loader", "blocks"):
            m = reads[where][what]
            assert set(m) >= READ_KEYS, (where, what)
            assert m["n_records"] == N and m["records_per_s"] > 0 and m["read_s"] > 0
    assert reads["local"]["loader"]["requests"] == {}
    # at least one ranged GET per signal block of the store (16 records per block in ecg12)
    assert reads["s3"]["blocks"]["requests"]["GET"] >= N // 16
    assert reads["local"]["blocks"]["compressed_bytes_per_record"] > 0
    assert all(v > 0 for v in reads["ratios"].values())
    assert reads["s3_requests"]["blocks_requests_per_shard"] > 0
    pre = bench["preprocess"]
    assert (
        pre["n_records"] == N and pre["ms_per_record_500hz"] > 0 and pre["ms_per_record_400hz_resampled"] > 0
    )


def test_request_log_counts_each_kind_after_the_mark(tmp_path: Path) -> None:
    log = tmp_path / "moto_server.log"
    log.write_text('127.0.0.1 - - [x] "PUT /b/old HTTP/1.1" 200 -\n')
    requests = RequestLog(log)
    mark = requests.mark()
    with log.open("a") as fh:
        fh.write('127.0.0.1 - - [x] "GET /b/k/c/0 HTTP/1.1" 206 -\n')
        fh.write('127.0.0.1 - - [x] "GET /b?list-type=2&prefix=k/ HTTP/1.1" 200 -\n')
        fh.write('127.0.0.1 - - [x] "HEAD /b/k/zarr.json HTTP/1.1" 200 -\n')
        fh.write(" * Running on http://127.0.0.1:5000\n")
    assert requests.since(mark) == {"GET": 1, "HEAD": 1, "LIST": 1}


def test_cpu_is_charged_to_the_role_of_each_process() -> None:
    before = {1: 1.0, 2: 5.0}
    after = {1: 1.5, 2: 6.0, 3: 2.0, 4: 0.25}
    cpu = cpu_by_role(before, after, {1: "flow", 2: "workers", 3: "scheduler"})
    assert cpu == {
        "flow": 0.5,
        "workers": 1.0,
        "scheduler": 2.0,
        "s3_server": 0.0,
        "prefect_server": 0.25,  # a process with no role: the Prefect server started by the run
        "total": 3.75,
    }


def test_reduced_defaults_and_explicit_options(tmp_path: Path) -> None:
    reduced = options(parse_args(["--reduced"]), tmp_path)
    assert (reduced.records, reduced.workers, reduced.batch_units, reduced.repeats) == (
        N,
        (1, 2),
        BATCH_UNITS,
        1,
    )
    full = options(parse_args(["--workers", "1,3", "--records", "100"]), tmp_path)
    assert full.workers == (1, 3) and full.records == 100 and full.batch_units is None and full.repeats == 2
    keys = [c.key for c in configurations(full)]
    assert keys == ["threads-1-local", "dask-1-local", "dask-3-local", "dask-2-s3"]
    assert parse_workers("1, 2,4") == (1, 2, 4)
    for bad in ("0", "a,b", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="worker counts"):
            parse_workers(bad)
