"""What a timed ingest cost and who did it: CPU seconds by process role, the batch tasks' span from the
Prefect server's task runs, the shard writers' pids, and the shards a store holds."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import psutil

from benchmarks.scale.services import Services
from pipeline.store.base import Store
from pipeline.store.local import ShardStore, tree_digest
from tests.dask_cluster import DaskCluster
from tests.prefect_server import api_post

BATCH_TASK = "ingest-batch"  # the flow's task name; its task runs are named ingest-batch-<suffix>


TASK_RUNS_PAGE = 200  # the Prefect API's largest page


TASK_RUNS_WAIT_S = 30.0  # task-run states reach the server as events, a moment after the flow ends


def shard_table(store: Store) -> dict[str, list[Any]]:
    """Shard name -> [sha256, bytes, records] as the store's manifest lists them."""
    shards = store.load_manifest().shards
    return {name: [e.sha256, e.nbytes, e.n_records] for name, e in sorted(shards.items())}


def stored_digests(store: Store) -> dict[str, list[Any]]:
    """Shard name -> [sha256, bytes] of the bytes actually stored (re-read, or downloaded from S3)."""
    names = sorted(store.load_manifest().shards)
    if isinstance(store, ShardStore):
        return {n: list(tree_digest(store.shard_path(n))) for n in names}
    return {n: list(store.shard_digest(n)) for n in names}


def roles(cluster: DaskCluster | None, svc: Services) -> dict[int, str]:
    """pid -> role, for charging a run's CPU time; any other process started here is the Prefect
    server's."""
    out = {os.getpid(): "flow", svc.s3.pid: "s3_server"}
    if cluster is not None:
        out[cluster.scheduler_pid] = "scheduler"
        out.update(dict.fromkeys(cluster.worker_pids, "workers"))
    return out


def cpu_snapshot() -> dict[int, float]:
    """User + system CPU seconds of this process and every live descendant (servers, clusters)."""
    me = psutil.Process()
    procs = [me, *me.children(recursive=True)]
    out: dict[int, float] = {}
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        out[proc.pid] = float(times.user + times.system)
    return out


def cpu_by_role(
    before: Mapping[int, float], after: Mapping[int, float], role: Mapping[int, str]
) -> dict[str, float]:
    """CPU seconds spent between two snapshots, summed by role (a pid without one: prefect_server)."""
    out = {"flow": 0.0, "workers": 0.0, "scheduler": 0.0, "s3_server": 0.0, "prefect_server": 0.0}
    for pid, cpu in after.items():
        out[role.get(pid, "prefect_server")] += cpu - before.get(pid, 0.0)
    out["total"] = sum(out.values())
    return {k: round(v, 3) for k, v in out.items()}


def batch_task_runs(api: str, flow_run_id: str) -> list[dict[str, Any]]:
    """Every ``ingest-batch`` task run of a flow run, as the Prefect server records them."""
    runs: list[dict[str, Any]] = []
    while True:
        body = {"flow_runs": {"id": {"any_": [flow_run_id]}}, "limit": TASK_RUNS_PAGE, "offset": len(runs)}
        page = api_post(api, "/task_runs/filter", body)
        runs += page
        if len(page) < TASK_RUNS_PAGE:
            return [r for r in runs if str(r["name"]).startswith(BATCH_TASK)]


def task_times(api: str, flow_run_id: str, n_batches: int) -> dict[str, Any]:
    """When the batch tasks ran, from their task runs: the span from the first start to the last end
    (the parallel phase, measured where the work runs) and the summed run time of the tasks.

    The flow's own ``seconds`` starts after every task is submitted, and on a cluster the first
    tasks are already running by then, so it understates the parallel phase.
    """
    deadline = time.monotonic() + TASK_RUNS_WAIT_S
    while True:
        runs = batch_task_runs(api, flow_run_id)
        done = [r for r in runs if r["state_type"] == "COMPLETED" and r["start_time"] and r["end_time"]]
        if len(done) >= n_batches or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    starts = [datetime.fromisoformat(r["start_time"]) for r in done]
    ends = [datetime.fromisoformat(r["end_time"]) for r in done]
    span = (max(ends) - min(starts)).total_seconds() if done else float("nan")
    return {
        "n_task_runs": len(runs),
        "n_completed": len(done),
        "span_s": span,
        "task_s_total": sum(float(r["total_run_time"]) for r in done),
    }


def writer_pids(report: Mapping[str, Any]) -> set[int]:
    """The pids that wrote the run's shards (``report["writers"]`` values are ``host:pid``)."""
    return {int(str(w).rpartition(":")[2]) for w in report.get("writers", {}).values()}


def writers_ok(cluster: DaskCluster | None, report: Mapping[str, Any]) -> bool:
    """Every shard was written by a worker of the run's cluster (Dask) or by this process (threads)."""
    pids = writer_pids(report)
    allowed = set(cluster.worker_pids) if cluster is not None else {os.getpid()}
    return bool(pids) and pids <= allowed
