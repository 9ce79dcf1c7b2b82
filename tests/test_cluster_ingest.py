"""Ingest on a real multi-process Dask cluster builds the same stores as a single-process run.

Real CinC 2017 and CinC 2020/21 records (a few of them broken on purpose, so the quarantine is not
empty) are ingested into two profiles twice: once on one thread in this process, once on a Dask
cluster of separate OS processes (``tests/dask_cluster.py``) whose workers report their task runs
to the same real Prefect server as the flow. The two stores must agree record for record and hash
for hash, every shard must have been written whole by one cluster worker, and the cluster must
leave no process behind.

Prefect on a cluster started before the flow (measured with prefect 3.8, prefect-dask 0.3.7):
Prefect sends the flow's settings with every task (``serialize_context``), so when the flow has an
API URL (``PREFECT_API_URL`` in its environment or profile) the workers' task runs report to it
even if the workers' own environment has none. When the flow has none (it runs on a temporary
server), each worker process starts a temporary server of its own at its first task (≈ 10 s each
here) and its task runs go to whatever database the flow's ``PREFECT_HOME`` names on that machine;
with ``PREFECT_API_URL`` set on the workers only, the task-run events fail and the runs show up
nowhere. So: run a Prefect server and set ``PREFECT_API_URL`` for the flow (the workers too).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import psutil
import pytest

from pipeline.store.base import Store
from pipeline.store.labels import read_labels
from pipeline.store.local import ShardStore, read_array
from pipeline.store.remote import RemoteShardStore, open_store
from pipeline.store.root import StoreRoot
from tests.dask_cluster import DaskCluster, leftover_processes, listening_addresses, local_cluster
from tests.pipeline_repo import tool_env
from tests.prefect_server import prefect_server, server_env
from tests.s3_server import S3Server

REPO = Path(__file__).resolve().parents[1]
PROFILES = ("lead1_af", "ecg12")
N_CINC2017 = 30
N_CINC2021 = 12
BATCH_UNITS = 6  # 30 + 12 units → 5 + 2 batches, enough for both workers to write several shards
# per-run values in a shard's manifest entry and in the ingest report: they differ between any two runs
RUN_FIELDS = frozenset({"run", "created", "seconds", "writers", "records_processed_this_run"})


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prefect server on 127.0.0.1 (its API URL) for the flows the tests run in child processes.

    Nothing Prefect runs in this process: an in-process flow left log/event workers bound to this
    server (the next module's test harness then hung draining them), and draining them here left
    state that made later forked DataLoader workers exit 1 (test_data failed). Both reproduced."""
    with prefect_server(tmp_path_factory.mktemp("prefect-home")) as url:
        yield url


def _cinc2017(shared: Path, dest: Path) -> Path:
    """The first records with their REFERENCE.csv lines; one ``.mat`` cut short, one emptied."""
    src = shared / "cinc2017" / "training2017"
    dest.mkdir(parents=True)
    for i in range(1, N_CINC2017 + 1):
        for ext in (".hea", ".mat"):
            shutil.copy(src / f"A{i:05d}{ext}", dest / f"A{i:05d}{ext}")
    ref = (src / "REFERENCE.csv").read_bytes().split(b"\r\n")
    (dest / "REFERENCE.csv").write_bytes(b"\r\n".join(ref[:N_CINC2017]) + b"\r\n")
    mat = dest / "A00004.mat"
    mat.write_bytes(mat.read_bytes()[:1000])
    (dest / "A00009.mat").write_bytes(b"")
    return dest


def _cinc2021(shared: Path, dest: Path) -> Path:
    """The first 12-lead records by name, and a ``.mat`` whose header is missing."""
    src = shared / "cinc2021"
    dest.mkdir(parents=True)
    stems = sorted(p.stem for p in src.glob("*.hea"))[: N_CINC2021 + 1]
    for stem in stems[:-1]:
        for ext in (".hea", ".mat"):
            shutil.copy(src / f"{stem}{ext}", dest / f"{stem}{ext}")
    shutil.copy(src / f"{stems[-1]}.mat", dest / f"{stems[-1]}.mat")
    return dest


def _overrides(tmp: Path, store: Path, *extra: str) -> list[str]:
    # sources of ecg12 not under test: left out, whatever data/raw holds (an explicit root that does
    # not exist would fail the ingest)
    return [
        f"ingest.store={store}",
        f"ingest.batch_units={BATCH_UNITS}",
        f"sources.cinc2017.root={tmp / 'cinc2017'}",
        f"sources.cinc2021.root={tmp / 'cinc2021'}",
        "sources.ptbxl.enabled=false",
        "sources.ptb_diagnostic.enabled=false",
        "sources.code.enabled=false",
        *extra,
    ]


_FLOW = """
import json, os, sys
from flows.ingest import ingest
reports = ingest(sys.argv[1], sys.argv[3:], None, json.loads(sys.argv[2]))
print("@@REPORTS@@" + json.dumps({"pid": os.getpid(), "reports": reports}, default=str))
"""


def _ingest(overrides: list[str], api: str) -> tuple[dict[str, Any], int]:
    """Run the ingest flow in a child process reporting to ``api``: (per-profile reports, its pid).

    Not in this process: a Prefect flow run in the pytest process left state behind that made
    forked DataLoader workers of later test modules exit 1 (test_data failed after this module)."""
    args = [sys.executable, "-c", _FLOW, str(REPO / "params.yaml"), json.dumps(list(PROFILES)), *overrides]
    env = tool_env({"PREFECT_API_URL": api})
    proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    line = next(x for x in proc.stdout.splitlines() if x.startswith("@@REPORTS@@"))
    payload = json.loads(line.removeprefix("@@REPORTS@@"))
    return payload["reports"], int(payload["pid"])


def _without(data: Any, keys: frozenset[str]) -> Any:
    if isinstance(data, dict):
        return {k: _without(v, keys) for k, v in data.items() if k not in keys}
    if isinstance(data, list):
        return [_without(v, keys) for v in data]
    return data


def _manifest(store: Store) -> dict[str, Any]:
    """The manifest less the runs that built it: shards (records, sha256, bytes), units, segments."""
    m = store.load_manifest().to_json()
    view: dict[str, Any] = _without({k: v for k, v in m.items() if k != "runs"}, RUN_FIELDS)
    return view


def _cell(column: npt.NDArray[Any], i: int) -> bytes:
    """Row ``i`` of a per-record array as bytes: the stored numbers exactly, strings as UTF-8
    (a StringDType array's own bytes are pointers, not text)."""
    if column.dtype.kind in "biuf":
        return np.ascontiguousarray(column[i]).tobytes()
    return str(column[i]).encode()


def _rows(store: Store) -> dict[str, dict[str, bytes]]:
    """record id → {array name: its row} over every per-record array of every shard, the stored
    (quantised) signal included."""
    out: dict[str, dict[str, bytes]] = {}
    for name, entry in store.load_manifest().shards.items():
        group = store.open_shard(name)
        arrays = {key: read_array(group, key) for key in sorted(group.array_keys())}
        for i in entry.live_rows():
            out[str(arrays["record_id"][i])] = {key: _cell(a, int(i)) for key, a in arrays.items()}
    return out


def _labels(store: Store) -> dict[str, tuple[str, bytes]]:
    """record id → (shard, multi-hot row) of the store's unified labels."""
    labels = read_labels(store)
    assert labels is not None
    return {
        rid: (shard, labels.y[i].tobytes())
        for i, (rid, shard) in enumerate(zip(labels.record_id, labels.shard, strict=True))
    }


def _shard_digests(store: Store) -> dict[str, tuple[str, int]]:
    return {name: store.shard_digest(name) for name in store.load_manifest().shards}


def _assert_same_store(a: Store, b: Store) -> None:
    ma, mb = _manifest(a), _manifest(b)
    assert ma["shards"] and ma["shards"] == mb["shards"]  # names, n_records, sha256, bytes
    assert ma == mb  # units with fingerprints, status, segments and rejections; labels pointer
    rows_a, rows_b = _rows(a), _rows(b)
    assert rows_a.keys() == rows_b.keys()
    for rid, row in rows_a.items():
        assert row == rows_b[rid], rid
    assert _labels(a) == _labels(b)
    assert _shard_digests(a) == _shard_digests(b)
    for name in ("quarantine.json", "quarantine.csv"):
        assert a.read_bytes(name) == b.read_bytes(name), name
    report_a, report_b = (json.loads(s.read_bytes("ingest_report.json")) for s in (a, b))
    assert _without(report_a, RUN_FIELDS | {"root"}) == _without(report_b, RUN_FIELDS | {"root"})


def _writer_pids(report: dict[str, Any]) -> dict[str, int]:
    """shard name → pid of the process that wrote it (``report["writers"]``: ``host:pid``)."""
    host = socket.gethostname()
    out = {}
    for shard, writer in report["writers"].items():
        name, _, pid = writer.rpartition(":")
        assert name == host, writer
        out[shard] = int(pid)
    return out


def _assert_written_by_workers(report: dict[str, Any], store: ShardStore, cluster: DaskCluster) -> set[int]:
    pids = _writer_pids(report)
    assert set(pids) == set(store.load_manifest().shards)  # every shard has exactly one writer
    assert set(pids.values()) <= set(cluster.worker_pids), (pids, cluster)
    assert os.getpid() not in pids.values()
    # shard "part-<batch seq>-<piece>": all pieces of one batch come from the one task that ran it
    by_batch: dict[str, set[int]] = {}
    for shard, pid in pids.items():
        by_batch.setdefault(shard.rsplit("-", 1)[0], set()).add(pid)
    assert all(len(p) == 1 for p in by_batch.values()), by_batch
    assert not [p for p in store.shard_dir.iterdir() if p.name not in pids]  # no half-written debris
    return set(pids.values())


def _batch_task_runs(api: str, store: ShardStore) -> list[dict[str, Any]]:
    """The ``ingest-batch`` task runs of the flow run that last changed ``store``."""
    flow_run = store.load_manifest().runs[-1].flow_run_id
    body = {"flow_runs": {"id": {"any_": [flow_run]}}, "limit": 200}
    runs = httpx.post(f"{api}/task_runs/filter", json=body, timeout=30).json()
    return [r for r in runs if r["name"].startswith("ingest-batch")]


@pytest.mark.shared_data
@pytest.mark.prefect
@pytest.mark.slow
def test_dask_cluster_ingest_equals_single_process_ingest_shard_for_shard(
    tmp_path: Path, shared_data: Path, prefect_api: str
) -> None:
    api = prefect_api
    _cinc2017(shared_data, tmp_path / "cinc2017")
    _cinc2021(shared_data, tmp_path / "cinc2021")
    single, flow_pid = _ingest(
        _overrides(tmp_path, tmp_path / "A", "ingest.task_runner=threads", "ingest.workers=1"), api
    )
    assert {pid for r in single.values() for pid in _writer_pids(r).values()} == {flow_pid}

    # workers started before the flow inherit nothing from it: they get the API (and a Prefect home
    # of their own) from the environment they are started with
    env = server_env(tmp_path / "worker-prefect-home", api)
    with local_cluster(2, tmp_path / "dask", env=env) as cluster:
        # --no-nanny: the processes started are the ones that run tasks
        assert sorted(cluster.worker_pids) == sorted(cluster.process_groups[1:])
        assert os.getpid() not in cluster.worker_pids
        listening = listening_addresses([cluster.scheduler_pid, *cluster.worker_pids])
        assert listening and {ip for ip, _ in listening} == {"127.0.0.1"}, listening
        dask = ["ingest.task_runner=dask", f"ingest.dask_address={cluster.address}"]
        spread, flow_pid = _ingest(_overrides(tmp_path, tmp_path / "B", *dask), api)
        assert flow_pid not in cluster.worker_pids
    assert leftover_processes(cluster) == []

    writers: set[int] = set()
    for profile in PROFILES:
        a, b = (ShardStore(tmp_path / x / profile, profile) for x in ("A", "B"))
        _assert_same_store(a, b)
        writers |= _assert_written_by_workers(spread[profile], b, cluster)
        runs = _batch_task_runs(api, b)
        assert len(runs) == -(-spread[profile]["units_processed_this_run"] // BATCH_UNITS)
        assert {r["state"]["type"] for r in runs} == {"COMPLETED"}
    assert len(writers) >= 2

    counts = {p: (r["records_total"], r["quarantined_inputs"]) for p, r in single.items()}
    assert counts["lead1_af"][0] >= 24 and counts["ecg12"][0] >= 8 and all(q for _, q in counts.values())
    # no worker fell back to a temporary Prefect server of its own
    logs = "".join(p.read_text(errors="replace") for p in (tmp_path / "dask").glob("worker-*.log"))
    assert "Starting temporary server" not in logs


def _pid(_: int) -> int:
    return os.getpid()


@pytest.mark.slow
def test_nanny_workers_run_tasks_in_the_reported_pids_and_all_processes_are_stopped(tmp_path: Path) -> None:
    from distributed import Client

    with local_cluster(2, tmp_path, nanny=True) as cluster:
        with Client(cluster.address) as client:  # type: ignore[no-untyped-call]  # distributed has no hints
            ran = set(client.gather(client.map(_pid, range(16))))
        # with a nanny, the worker that runs tasks is a child of the process that was started
        assert ran <= set(cluster.worker_pids) and not ran & set(cluster.process_groups)
        assert all(psutil.Process(p).ppid() in cluster.process_groups for p in cluster.worker_pids)
    assert leftover_processes(cluster) == []


def test_a_cluster_that_does_not_come_up_fails_with_its_logs_and_leaves_no_process(tmp_path: Path) -> None:
    with (
        pytest.raises(TimeoutError, match="scheduler.log"),
        local_cluster(1, tmp_path, startup_timeout_s=0.01),
    ):
        pytest.fail("the cluster cannot be up after 10 ms")
    assert not [p for p in psutil.process_iter() if _started_here(p, tmp_path)]


def _started_here(proc: psutil.Process, work_dir: Path) -> bool:
    try:
        return str(work_dir) in " ".join(proc.cmdline()) and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@pytest.mark.shared_data
@pytest.mark.prefect
@pytest.mark.slow
def test_dask_workers_write_shards_straight_to_the_object_store_equal_to_a_local_single_process_ingest(
    tmp_path: Path,
    shared_data: Path,
    prefect_api: str,
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The scale-out case: workers on other hosts share no disk, so each uploads its own shards;
    the flow commits the manifest. Same records and hashes as one local process."""
    _cinc2017(shared_data, tmp_path / "cinc2017")
    _cinc2021(shared_data, tmp_path / "cinc2021")
    for key, value in s3_server.env().items():  # the flow's process reads and writes the manifest
        monkeypatch.setenv(key, value)
    single = _overrides(tmp_path, tmp_path / "A", "ingest.task_runner=threads", "ingest.workers=1")
    _ingest(single, prefect_api)
    bucket = s3_server.make_bucket(f"cluster-{uuid.uuid4().hex[:8]}")
    remote = [
        f"ingest.object_store.url={bucket}/store",
        f"ingest.object_store.options.endpoint_url={s3_server.endpoint_url}",
    ]
    env = {**server_env(tmp_path / "worker-prefect-home", prefect_api), **s3_server.env()}
    with local_cluster(2, tmp_path / "dask", env=env) as cluster:
        dask = ["ingest.task_runner=dask", f"ingest.dask_address={cluster.address}", *remote]
        spread, _ = _ingest(_overrides(tmp_path, tmp_path / "unused", *dask), prefect_api)
    assert leftover_processes(cluster) == []
    assert not (tmp_path / "unused").exists()  # nothing went to local disk
    writers: set[int] = set()
    for profile in PROFILES:
        a = ShardStore(tmp_path / "A" / profile, profile)
        b = open_store(StoreRoot.of(f"{bucket}/store", {"endpoint_url": s3_server.endpoint_url}), profile)
        assert isinstance(b, RemoteShardStore)
        assert _manifest(a) == _manifest(b) and _manifest(a)["shards"]
        assert _rows(a) == _rows(b) and _labels(a) == _labels(b)
        assert {n: b.shard_digest(n) for n in _manifest(b)["shards"]} == _shard_digests(a)
        for name in ("quarantine.json", "quarantine.csv"):
            assert b.read_bytes(name) == (a.root / name).read_bytes(), name
        pids = _writer_pids(spread[profile])
        assert set(pids) == set(_manifest(b)["shards"]) and set(pids.values()) <= set(cluster.worker_pids)
        writers |= set(pids.values())
    assert len(writers) >= 2
