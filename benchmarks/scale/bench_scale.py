"""Ingest and shard-read throughput at scale: Dask clusters of 1, 2 and 4 workers, an S3 store, one run.

What runs, all through the real Prefect flow (``flows.ingest.ingest``) reporting to a real Prefect
server on 127.0.0.1 (``tests/prefect_server.py``):

* **baseline**: ``ingest.task_runner=threads``, ``ingest.workers=1``, into a local store: every
  batch on one thread of the flow's own process.
* **Dask**: clusters of separate ``dask scheduler`` / ``dask worker`` processes (one thread each,
  ``tests/dask_cluster.py``) of 1, 2 and 4 workers, each ingesting into a local store.
* **object store**: the 2-worker cluster ingesting into ``s3://`` on a moto server on 127.0.0.1
  (``tests/s3_server.py``); shards are written locally by the worker that owns them and uploaded.

Every run goes into a fresh store and must produce the baseline's shards: same names, record
counts and sha256 in the manifest, and stored bytes that hash to the manifest's sha256 (re-read
from disk or downloaded from S3). Configurations are interleaved over ``--repeats`` rounds and the
fastest run of each is kept. Each round starts a fresh cluster per size (only one is up at a time:
idle workers cost CPU) and runs one small untimed ingest per configuration first, so worker
start-up and first-task imports are not timed: a real cluster is long-lived.

Then the reads, from the same store content on local disk and on S3: every record through
``pipeline.dataset.loader.make_loader(..., shuffle=False, num_workers=0)`` over a split index that covers
the whole store, and every signal block through ``BlockReader``; S3 requests are counted from the
moto server's request log. Lastly the preprocessing cost per record of the same signals at
500 Hz (PTB-XL) and resampled to 400 Hz (the rate of CODE-15%), for the README's extrapolation.

Input: the real 500 Hz PTB-XL records of the shared data set, replicated under new ``ecg_id``
values into a PTB-XL tree (``benchmarks.ingest.bench_ingest.build_input``, the same tree as the
ingest benchmark), ingested as the ``ptbxl`` source of the ``ecg12`` profile. PTB-XL is the data
set the figures are extrapolated to, and its records carry the full per-record work: header
parsing, CSV labels, 12 leads x 5,000 samples, baseline and notch filters.

Usage (from the repository root)::

    .venv/bin/python benchmarks/scale/bench_scale.py                 # the full run (about 5-10 min)
    .venv/bin/python benchmarks/scale/bench_scale.py --reduced --out /tmp/scale.json
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import re
import shlex
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import psutil
from scipy.signal import resample_poly

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run as a script: make `benchmarks`, `pipeline` and `tests` importable
    sys.path.insert(0, str(REPO))

from benchmarks.ingest.bench_ingest import (  # noqa: E402
    SHARED_DATA,
    build_input,
    code_version,
    publish,
    raw_wfdb_bytes,
)
from pipeline.config import Params, load_params  # noqa: E402
from pipeline.config.build import signal_plan  # noqa: E402
from pipeline.core.records import Provenance, Record  # noqa: E402
from pipeline.dataset.loader import make_loader  # noqa: E402
from pipeline.dataset.splits import index_from_store, write_index  # noqa: E402
from pipeline.signal.preprocess import SignalPlan, process  # noqa: E402
from pipeline.sources.registry import build_readers  # noqa: E402
from pipeline.store.base import Store  # noqa: E402
from pipeline.store.blocks import BlockReader, ShardSignal  # noqa: E402
from pipeline.store.local import ShardStore, tree_digest  # noqa: E402
from pipeline.store.remote import open_store  # noqa: E402
from pipeline.store.root import StoreRoot  # noqa: E402
from tests.dask_cluster import DaskCluster, local_cluster  # noqa: E402
from tests.prefect_server import api_post, prefect_server, server_env  # noqa: E402
from tests.s3_server import S3Server, moto_s3  # noqa: E402

PROFILE = "ecg12"
SOURCE = "ptbxl"
BUCKET = "ecg-bench"
SPLIT = "all"  # one split holding every record of the store
DEFAULT_RECORDS = 4096  # 16 batches of 256: 4 per worker on the 4-worker cluster
REDUCED_RECORDS = 48
REDUCED_BATCH_UNITS = 8  # 6 batches, so both workers of the 2-worker cluster write shards
LOADER_BATCH = 64
CODE_FS_HZ = 400.0  # CODE-15%'s sampling rate
MB = 1 << 20
REQUEST_LINE = re.compile(r'"(GET|PUT|HEAD|POST|DELETE) (\S+) HTTP/')
LOG_SETTLE_S = 0.3  # moto writes a request's log line after sending the response
BATCH_TASK = "ingest-batch"  # the flow's task name; its task runs are named ingest-batch-<suffix>
TASK_RUNS_PAGE = 200  # the Prefect API's largest page
TASK_RUNS_WAIT_S = 30.0  # task-run states reach the server as events, a moment after the flow ends


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class Options:
    """One run's settings (see :func:`parse_args`)."""

    records: int
    workers: tuple[int, ...]
    s3_workers: int
    batch_units: int | None
    repeats: int
    read_repeats: int
    preprocess_records: int
    reduced: bool
    work: Path
    out: Path
    source: Path
    params: Path


@dataclass(frozen=True)
class Config:
    """One ingest configuration: ``runner`` threads (the baseline) or dask, and where the store is."""

    runner: str
    workers: int
    store: str  # "local" | "s3"

    @property
    def key(self) -> str:
        return f"{self.runner}-{self.workers}-{self.store}"

    @property
    def label(self) -> str:
        who = "baseline: threads, 1 worker" if self.runner == "threads" else f"Dask, {self.workers} worker(s)"
        return f"{who} -> {'S3 (moto)' if self.store == 's3' else 'local disk'}"


def configurations(opt: Options) -> list[Config]:
    """The baseline first, then each Dask cluster into a local store, then the S3 run."""
    out = [Config("threads", 1, "local")]
    out += [Config("dask", w, "local") for w in opt.workers]
    out.append(Config("dask", opt.s3_workers, "s3"))
    return out


# --------------------------------------------------------------------------- services


@dataclass(frozen=True)
class Services:
    """The servers that live for the whole run: the Prefect API and moto S3; and the environment
    that the Dask workers are started with."""

    api: str
    s3: S3Server
    moto_log: Path
    worker_env: Mapping[str, str]


@contextmanager
def services(work: Path) -> Iterator[Services]:
    """Start the servers, point this process at them, and stop them on exit.

    The flow's settings travel with every task, but the workers get the API and the S3
    credentials in their environment too, so nothing they do can fall back to a temporary
    Prefect server or a real AWS account.
    """
    with ExitStack() as stack:
        api = stack.enter_context(prefect_server(work / "prefect-server"))
        s3 = stack.enter_context(moto_s3(work / "moto"))
        os.environ.update({"PREFECT_API_URL": api, "PREFECT_HOME": str(work / "prefect-flow"), **s3.env()})
        env = {**server_env(work / "prefect-workers", api), **s3.env()}
        s3.make_bucket(BUCKET)
        yield Services(api=api, s3=s3, moto_log=work / "moto" / "moto_server.log", worker_env=env)


@contextmanager
def cluster_for(workers: int | None, svc: Services, work: Path) -> Iterator[DaskCluster | None]:
    """A fresh Dask cluster of ``workers`` processes for one round's runs (None: no cluster).

    Only one cluster is up at a time: an idle ``dask worker`` burns about 3 % of a core in
    heartbeats (measured here), which on 2 cores would be charged to whichever run is going.
    """
    if workers is None:
        yield None
        return
    with local_cluster(workers, work, env=svc.worker_env) as cluster:
        yield cluster


class RequestLog:
    """S3 requests counted from the moto server's log (one line per request), by kind."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def mark(self) -> int:
        return self.path.stat().st_size

    def since(self, mark: int) -> dict[str, int]:
        """Requests logged after ``mark``: GET (ranged or whole object), LIST, HEAD, PUT, DELETE, POST."""
        time.sleep(LOG_SETTLE_S)
        with Path(self.path).open("rb") as fh:
            fh.seek(mark)
            text = fh.read().decode(errors="replace")
        counts: Counter[str] = Counter()
        for method, target in REQUEST_LINE.findall(text):
            counts["LIST" if method == "GET" and "list-type=" in target else method] += 1
        return dict(sorted(counts.items()))


# --------------------------------------------------------------------------- stores


def store_root(cfg: Config, name: str, work: Path, svc: Services) -> StoreRoot:
    """Where run ``name`` of ``cfg`` writes: a local folder or a prefix in the benchmark's bucket."""
    if cfg.store == "s3":
        return StoreRoot.of(f"s3://{BUCKET}/{name}", {"endpoint_url": svc.s3.endpoint_url})
    return StoreRoot.of(work / "stores" / name)


def remove_store(root: StoreRoot, svc: Services) -> None:
    """Delete a store root (local folder or S3 prefix), so that the next run starts from nothing."""
    if root.is_remote:
        fs = svc.s3.filesystem()
        key = root.url.removeprefix("s3://")
        if fs.exists(key):
            fs.rm(key, recursive=True)
    else:
        shutil.rmtree(root.url, ignore_errors=True)


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


# --------------------------------------------------------------------------- ingest runs


def ingest_overrides(
    cfg: Config, root: StoreRoot, ctx: Context, cluster: DaskCluster | None, batch_units: int
) -> list[str]:
    """``ingest()`` overrides: only the replicated PTB-XL tree feeds the profile; runner; store."""
    absent = ctx.opt.work / "absent"  # the profile's other sources: skipped, whatever data/raw holds
    out = [f"sources.{SOURCE}.root={ctx.tree}", f"ingest.batch_units={batch_units}"]
    out += [f"sources.{s}.root={absent}" for s in ctx.params.profiles[PROFILE].sources if s != SOURCE]
    out.append(f"ingest.smoke_store={smoke_store(cfg, ctx)}")
    if cluster is None:
        out += ["ingest.task_runner=threads", "ingest.workers=1"]
    else:
        out += ["ingest.task_runner=dask", f"ingest.dask_address={cluster.address}"]
    if root.is_remote:
        out += [
            f"ingest.object_store.url={root.url}",
            f"ingest.object_store.options.endpoint_url={ctx.svc.s3.endpoint_url}",
        ]
    else:
        out.append(f"ingest.store={root.url}")
    return out


def smoke_store(cfg: Config, ctx: Context) -> Path:
    """The local store of ``limit`` runs (the warm-ups) of a local configuration."""
    return ctx.opt.work / "smoke" / cfg.key


def run_flow(params_path: Path, overrides: Sequence[str], limit: int | None) -> dict[str, Any]:
    """One ``flows.ingest.ingest`` call for the profile; returns its report."""
    # Imported here, after services() has set PREFECT_API_URL and PREFECT_HOME: Prefect reads its
    # settings when it is first imported.
    from flows.ingest import ingest

    reports: dict[str, Any] = ingest(str(params_path), list(overrides), limit, [PROFILE])
    return dict(reports[PROFILE])


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


@dataclass(frozen=True)
class Context:
    """What every ingest run needs besides its configuration."""

    opt: Options
    params: Params
    tree: Path
    svc: Services
    batch_units: int


def warm_up(cfg: Config, ctx: Context, cluster: DaskCluster | None) -> None:
    """A small untimed ingest (``limit``, one unit per task, into the smoke store) so each worker has
    imported the pipeline and run a Prefect task, as a long-lived cluster's workers have."""
    workers = len(cluster.worker_pids) if cluster is not None else 1
    root = store_root(cfg, f"warm-{cfg.key}", ctx.opt.work, ctx.svc)
    # an earlier round's warm-up store would make this one a no-op (nothing new to ingest)
    shutil.rmtree(smoke_store(cfg, ctx), ignore_errors=True)
    remove_store(root, ctx.svc)
    run_flow(ctx.opt.params, ingest_overrides(cfg, root, ctx, cluster, 1), 3 * workers)


def run_ingest(
    cfg: Config,
    name: str,
    ctx: Context,
    cluster: DaskCluster | None,
    reference: Mapping[str, list[Any]] | None,
) -> dict[str, Any]:
    """One timed ingest of the whole tree into a fresh store, checked against the reference shards."""
    root = store_root(cfg, name, ctx.opt.work, ctx.svc)
    remove_store(root, ctx.svc)
    overrides = ingest_overrides(cfg, root, ctx, cluster, ctx.batch_units)
    log = RequestLog(ctx.svc.moto_log)
    mark, load0, cpu0 = log.mark(), os.getloadavg()[0], cpu_snapshot()
    t0 = time.perf_counter()
    report = run_flow(ctx.opt.params, overrides, None)
    wall = time.perf_counter() - t0
    cpu = cpu_by_role(cpu0, cpu_snapshot(), roles(cluster, ctx.svc))
    requests = log.since(mark) if cfg.store == "s3" else {}
    store = open_store(root, PROFILE)
    table = shard_table(store)
    n = int(report["records_processed_this_run"])
    n_batches = -(-n // ctx.batch_units)
    tasks = task_times(ctx.svc.api, str(store.load_manifest().runs[-1].flow_run_id), n_batches)
    return {
        "name": name,
        "store_url": root.url,
        "n_records": n,
        "n_batches": n_batches,
        "n_shards": len(table),
        "wall_s": wall,
        "tasks": tasks,
        "batch_s": tasks["span_s"],
        "outside_batch_s": wall - tasks["span_s"],
        "flow_batch_s": float(report["seconds"]),
        "records_per_s": n / wall,
        "batch_records_per_s": n / tasks["span_s"],
        "task_ms_per_record": 1000 * tasks["task_s_total"] / n,
        "cpu_s": cpu,
        "cpu_ms_per_record": 1000 * cpu["total"] / n,
        "worker_cpu_ms_per_record": 1000 * (cpu["workers"] if cfg.runner == "dask" else cpu["flow"]) / n,
        "requests": requests,
        "load_avg_1m": [round(load0, 2), round(os.getloadavg()[0], 2)],
        "reconciled": bool(report["reconciled"]),
        "quarantined": int(report["quarantined_inputs"]),
        "writers": sorted(writer_pids(report)),
        "writers_expected": writers_ok(cluster, report),
        "one_task_run_per_batch": tasks["n_task_runs"] == tasks["n_completed"] == n_batches,
        "shards": table,
        "same_shards_as_baseline": reference is None or table == reference,
        "stored_bytes_match_manifest": stored_digests(store) == {k: v[:2] for k, v in table.items()},
    }


def writers_ok(cluster: DaskCluster | None, report: Mapping[str, Any]) -> bool:
    """Every shard was written by a worker of the run's cluster (Dask) or by this process (threads)."""
    pids = writer_pids(report)
    allowed = set(cluster.worker_pids) if cluster is not None else {os.getpid()}
    return bool(pids) and pids <= allowed


def cluster_groups(configs: Sequence[Config]) -> list[tuple[int | None, list[Config]]]:
    """Configurations grouped by the cluster they run on (None: the threads baseline, no cluster),
    in order of first appearance."""
    groups: dict[int | None, list[Config]] = {}
    for cfg in configs:
        groups.setdefault(cfg.workers if cfg.runner == "dask" else None, []).append(cfg)
    return list(groups.items())


def ingest_rounds(configs: Sequence[Config], ctx: Context) -> dict[str, list[dict[str, Any]]]:
    """Every configuration once per round, interleaved so that a busy spell on this shared machine
    hits all of them alike; each run into a fresh store, on a fresh, warmed-up cluster per round.
    The last run of each configuration keeps its store."""
    runs: dict[str, list[dict[str, Any]]] = {c.key: [] for c in configs}
    reference: dict[str, list[Any]] | None = None
    for rnd in range(ctx.opt.repeats):
        for workers, group in cluster_groups(configs):
            with cluster_for(workers, ctx.svc, ctx.opt.work / f"dask-{workers}-r{rnd}") as cluster:
                for cfg in group:
                    warm_up(cfg, ctx, cluster)
                for cfg in group:
                    run = run_ingest(cfg, f"{cfg.key}-r{rnd}", ctx, cluster, reference)
                    reference = reference if reference is not None else run["shards"]
                    if rnd:
                        remove_store(store_root(cfg, f"{cfg.key}-r{rnd - 1}", ctx.opt.work, ctx.svc), ctx.svc)
                    runs[cfg.key].append(run)
                    print(f"{cfg.label}: {run['n_records']} records in {run['wall_s']:.2f} s", flush=True)
    return runs


def best_run(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The fastest run, with every run's wall time; the checks must hold for every run, not only it."""
    best = dict(min(runs, key=lambda r: float(r["wall_s"])))
    best["wall_s_all"] = [round(float(r["wall_s"]), 3) for r in runs]
    for key in (
        "same_shards_as_baseline",
        "stored_bytes_match_manifest",
        "writers_expected",
        "reconciled",
        "one_task_run_per_batch",
    ):
        best[key] = all(bool(r[key]) for r in runs)
    best["kept_store"] = runs[-1]["store_url"]
    del best["shards"]
    return best


def summarise_ingest(configs: Sequence[Config], runs: Mapping[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Best run per configuration with its ratios to the baseline (end to end, and over the span of
    its batch tasks)."""
    base = best_run(runs[configs[0].key])
    out: dict[str, Any] = {}
    for cfg in configs:
        best = best_run(runs[cfg.key])
        best.update(
            {
                "label": cfg.label,
                "runner": cfg.runner,
                "workers": cfg.workers,
                "store": cfg.store,
                "ratio_to_baseline": best["records_per_s"] / base["records_per_s"],
                "batch_ratio_to_baseline": best["batch_records_per_s"] / base["batch_records_per_s"],
            }
        )
        out[cfg.key] = best
    return out


# --------------------------------------------------------------------------- reads


def whole_store_index(store: Store, path: Path) -> Path:
    """A split index with one split, ``all``, holding every live record of the store (no folds)."""
    index = index_from_store(store, {SPLIT: 1.0}, seed=0, fold_map={}, fold_key=None)
    write_index(path, index.rows, index.header)
    return path


def loader_pass(root: StoreRoot, index: Path, digest: bool) -> tuple[float, float, int, str]:
    """Open the in-order loader and read every batch: (open s, read s, records, digest of x and y)."""
    t0 = time.perf_counter()
    loader = make_loader(root, PROFILE, index, SPLIT, batch_size=LOADER_BATCH, shuffle=False, num_workers=0)
    t1 = time.perf_counter()
    h = hashlib.sha256()
    n = 0
    for x, y, _ in loader:
        n += int(x.shape[0])
        if digest:
            h.update(x.numpy().tobytes())
            h.update(y.numpy().tobytes())
    return t1 - t0, time.perf_counter() - t1, n, h.hexdigest()


def block_pass(store: Store) -> tuple[float, float, int, int]:
    """Describe every shard's signal, then read every block raw (int16, no dequantising):
    (open s, read s, records, compressed bytes read)."""
    t0 = time.perf_counter()
    shards = [store.signal_blocks(name) for name in sorted(store.load_manifest().shards)]
    t1 = time.perf_counter()
    reader = BlockReader(shards)
    n = 0
    try:
        for i, sig in enumerate(shards):
            n += read_shard_blocks(reader, i, sig)
    finally:
        reader.close()
    return t1 - t0, time.perf_counter() - t1, n, compressed_bytes(shards)


def read_shard_blocks(reader: BlockReader, i: int, sig: ShardSignal) -> int:
    """Every block of shard ``i`` into one reused ``(block_rows, C, L)`` buffer; returns its rows."""
    out: npt.NDArray[Any] = np.empty((sig.block_rows, sig.channels, sig.length), dtype=sig.dtype)
    for block in range(sig.n_blocks):
        rows = np.arange(min(sig.block_rows, sig.n_rows - block * sig.block_rows), dtype=np.int64)
        reader.read(i, block, rows, out[: len(rows)])
    return sig.n_rows


def compressed_bytes(shards: Sequence[ShardSignal]) -> int:
    """Bytes of the written signal blocks (what the block reads fetch), from the shard indexes."""
    total = 0
    for sig in shards:
        written = sig.index[:, 0] != np.iinfo(np.uint64).max
        total += int(sig.index[written, 1].sum())
    return total


def measure_reads(root: StoreRoot, index: Path, opt: Options, log: RequestLog | None) -> dict[str, Any]:
    """Best-of-``read_repeats`` loader and block-read figures for one store, with S3 request counts."""
    loader_runs, block_runs = [], []
    requests: dict[str, dict[str, int]] = {}
    for _ in range(opt.read_repeats):
        mark = log.mark() if log else 0
        loader_runs.append(loader_pass(root, index, digest=False))
        requests["loader"] = log.since(mark) if log else {}
        mark = log.mark() if log else 0
        block_runs.append(block_pass(open_store(root, PROFILE)))
        requests["blocks"] = log.since(mark) if log else {}
    lo = min(loader_runs, key=lambda r: r[0] + r[1])
    bl = min(block_runs, key=lambda r: r[0] + r[1])
    n = lo[2]
    return {
        "loader": {
            "open_s": lo[0],
            "read_s": lo[1],
            "n_records": n,
            "records_per_s": n / lo[1],
            "records_per_s_incl_open": n / (lo[0] + lo[1]),
            "seconds_all": [round(r[0] + r[1], 4) for r in loader_runs],
            "requests": requests["loader"],
        },
        "blocks": {
            "open_s": bl[0],
            "read_s": bl[1],
            "n_records": bl[2],
            "records_per_s": bl[2] / bl[1],
            "records_per_s_incl_open": bl[2] / (bl[0] + bl[1]),
            "compressed_bytes": bl[3],
            "compressed_bytes_per_record": bl[3] / max(bl[2], 1),
            "seconds_all": [round(r[0] + r[1], 4) for r in block_runs],
            "requests": requests["blocks"],
        },
    }


def per_request(reads: Mapping[str, Any], n_shards: int) -> dict[str, float]:
    """S3 requests per record and per shard for the object-store reads (GET includes HEAD/LIST)."""
    out: dict[str, float] = {}
    for what in ("loader", "blocks"):
        counts = reads[what]["requests"]
        total = sum(counts.values())
        out[f"{what}_requests"] = total
        out[f"{what}_requests_per_record"] = total / max(reads[what]["n_records"], 1)
        out[f"{what}_requests_per_shard"] = total / max(n_shards, 1)
    return out


def compare_reads(
    local: StoreRoot, remote: StoreRoot, index: Path, opt: Options, svc: Services
) -> dict[str, Any]:
    """Reads of the same store content from local disk and from S3, and their ratios (object/local)."""
    digests = {k: loader_pass(r, index, digest=True)[3] for k, r in (("local", local), ("s3", remote))}
    out: dict[str, Any] = {"index": str(index), "batch_size": LOADER_BATCH}
    out["local"] = measure_reads(local, index, opt, None)
    out["s3"] = measure_reads(remote, index, opt, RequestLog(svc.moto_log))
    n_shards = len(open_store(local, PROFILE).load_manifest().shards)
    out["n_shards"] = n_shards
    out["s3_requests"] = per_request(out["s3"], n_shards)
    out["ratios"] = {
        f"{what}_{key}": out["s3"][what][key] / out["local"][what][key]
        for what in ("loader", "blocks")
        for key in ("records_per_s", "records_per_s_incl_open")
    }
    out["same_batches"] = digests["local"] == digests["s3"]
    return out


# --------------------------------------------------------------------------- preprocessing at 500 and 400 Hz


def read_records(params: Params, n: int) -> list[Record]:
    """The first ``n`` records of the tree, read by the configured PTB-XL reader: float32 (12, 5000) mV."""
    reader = build_readers(params, [SOURCE])[SOURCE]
    units = reader.discover().units[:n]
    prov = Provenance(files=(), reader=reader.reader_id)
    return [r for u in units for r in reader.read(u, prov) if isinstance(r, Record)]


def at_rate(records: Sequence[Record], fs_hz: float) -> list[Record]:
    """The same records resampled (polyphase) to ``fs_hz``, as a 400 Hz source (CODE-15%) delivers them."""
    out = []
    for rec in records:
        if rec.fs_hz is None:
            raise ValueError(f"{rec.record_id}: no sampling rate to resample from")
        up, down = int(fs_hz), int(rec.fs_hz)
        g = np.gcd(up, down)
        signal = resample_poly(rec.signal, up // g, down // g, axis=1).astype(np.float32)
        out.append(replace(rec, signal=signal, fs_hz=fs_hz))
    return out


def time_process(records: Sequence[Record], plan: SignalPlan, repeats: int) -> float:
    """Best-of-``repeats`` ms per record of ``process`` on one batch of ``records``."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        process(records, plan)
        best = min(best, time.perf_counter() - t0)
    return 1000 * best / len(records)


def preprocess_costs(params: Params, n: int, repeats: int) -> dict[str, Any]:
    """ms per record of the profile's preprocessing, one process, for 500 Hz input (no resampling)
    and for the same signals at 400 Hz (resampled to 500 Hz first, as CODE-15% would be)."""
    plan = signal_plan(params.profiles[PROFILE])
    records = read_records(params, n)
    slow = at_rate(records, CODE_FS_HZ)
    ms500, ms400 = time_process(records, plan, repeats), time_process(slow, plan, repeats)
    return {
        "n_records": len(records),
        "ms_per_record_500hz": ms500,
        "ms_per_record_400hz_resampled": ms400,
        "resample_extra_ms_per_record": ms400 - ms500,
    }


# --------------------------------------------------------------------------- the whole run


def package_versions() -> dict[str, str]:
    names = (
        "numpy", "scipy", "zarr", "numcodecs", "wfdb", "torch", "prefect", "prefect-dask",
        "dask", "distributed", "s3fs", "fsspec", "moto",
    )  # fmt: skip
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
    except OSError:
        return platform.processor()
    return next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "")


def machine_info(opt: Options, batch_units: int) -> dict[str, Any]:
    """When, how and on what the figures were measured."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["python", *sys.argv]),
        "reduced": opt.reduced,
        "profile": PROFILE,
        "source": SOURCE,
        "n_records": opt.records,
        "batch_units": batch_units,
        "n_batches": -(-opt.records // batch_units),
        "repeats": opt.repeats,
        "read_repeats": opt.read_repeats,
        "timing": "fastest of the interleaved rounds; servers, cluster start-up and a warm-up ingest "
        "per configuration not timed; wall_s is the whole ingest() call",
        "cpus": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory_gib": round(psutil.virtual_memory().total / (1 << 30), 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": package_versions(),
        "load_avg_start": [round(v, 2) for v in os.getloadavg()],
    }


def run_checks(ingest: Mapping[str, Any], reads: Mapping[str, Any], n: int) -> list[dict[str, Any]]:
    """The invariants: a benchmark that built a different store, or read other data, has failed."""
    checks = []
    for key, run in ingest.items():
        checks += [
            (f"{key}: every record ingested, inputs reconciled", run["n_records"] == n and run["reconciled"]),
            (
                f"{key}: shards identical to the baseline's (names, records, sha256)",
                run["same_shards_as_baseline"],
            ),
            (f"{key}: stored bytes hash to the manifest's sha256", run["stored_bytes_match_manifest"]),
            (f"{key}: shards written by the run's own workers", run["writers_expected"]),
            (f"{key}: one completed Prefect task run per batch", run["one_task_run_per_batch"]),
            (f"{key}: positive throughput", run["records_per_s"] > 0 and run["batch_records_per_s"] > 0),
        ]
    for where in ("local", "s3"):
        r = reads[where]
        ok = r["loader"]["n_records"] == n and r["blocks"]["n_records"] == n
        checks.append(
            (
                f"reads from {where}: every record, positive throughput",
                ok and r["loader"]["records_per_s"] > 0,
            )
        )
    checks.append(("loader batches from S3 equal those from local disk", reads["same_batches"]))
    return [{"name": name, "pass": bool(ok)} for name, ok in checks]


def run_all(opt: Options) -> dict[str, Any]:
    """Build the input, start the services, ingest every configuration, read, and summarise."""
    tree = build_input(opt.source, opt.work / f"input-{opt.records}", opt.records)
    params = load_params(opt.params, [f"sources.{SOURCE}.root={tree}"])
    batch_units = opt.batch_units or params.ingest.batch_units
    meta = machine_info(opt, batch_units)
    configs = configurations(opt)
    with services(opt.work) as svc:
        ctx = Context(opt, params, tree, svc, batch_units)
        runs = ingest_rounds(configs, ctx)
        ingest = summarise_ingest(configs, runs)
        local = StoreRoot.of(ingest[configs[0].key]["kept_store"])
        remote = StoreRoot.of(ingest[configs[-1].key]["kept_store"], {"endpoint_url": svc.s3.endpoint_url})
        index = whole_store_index(open_store(local, PROFILE), opt.work / "index-all.csv")
        reads = compare_reads(local, remote, index, opt, svc)
    meta["load_avg_end"] = [round(v, 2) for v in os.getloadavg()]
    result: dict[str, Any] = {
        "meta": meta,
        "input": {**raw_wfdb_bytes(tree), "tree": str(tree)},
        "baseline": configs[0].key,
        "ingest": ingest,
        "shards": runs[configs[0].key][0]["shards"],  # the baseline's: every run must have built these
        "reads": reads,
        "preprocess": preprocess_costs(params, min(opt.preprocess_records, opt.records), 3),
    }
    result["checks"] = run_checks(ingest, reads, opt.records)
    result["all_pass"] = all(c["pass"] for c in result["checks"])
    return result


# --------------------------------------------------------------------------- report


def _cpu_cell(run: Mapping[str, Any]) -> str:
    return f"{run['cpu_ms_per_record']:.2f} ({run['worker_cpu_ms_per_record']:.2f})"


def _requests_cell(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "-"


INGEST_HEADER = (
    "| configuration | wall s | batch tasks s | rest s | records/s | x baseline | records/s in batch tasks "
    "| x baseline | task ms/record | CPU ms/record: all (workers) | S3 requests | same shards |"
)


def ingest_rows(r: Mapping[str, Any]) -> list[str]:
    lines = [INGEST_HEADER, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for run in r["ingest"].values():
        same = "yes" if run["same_shards_as_baseline"] and run["stored_bytes_match_manifest"] else "NO"
        cells = [
            run["label"],
            f"{run['wall_s']:.2f}",
            f"{run['batch_s']:.2f}",
            f"{run['outside_batch_s']:.2f}",
            f"{run['records_per_s']:.0f}",
            f"{run['ratio_to_baseline']:.2f}",
            f"{run['batch_records_per_s']:.0f}",
            f"{run['batch_ratio_to_baseline']:.2f}",
            f"{run['task_ms_per_record']:.2f}",
            _cpu_cell(run),
            _requests_cell(run["requests"]),
            same,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


READ_HEADER = "| reads (same shards) | open s | read s | records/s | records/s incl. open | requests |"


def read_rows(r: Mapping[str, Any]) -> list[str]:
    lines = [READ_HEADER, "|---|---:|---:|---:|---:|---|"]
    for where, name in (("local", "local disk"), ("s3", "S3 (moto)")):
        for what, how in (("loader", "make_loader, in order, 0 workers"), ("blocks", "BlockReader, raw")):
            m = r["reads"][where][what]
            cells = [
                f"{name}: {how}",
                f"{m['open_s']:.3f}",
                f"{m['read_s']:.3f}",
                f"{m['records_per_s']:.0f}",
                f"{m['records_per_s_incl_open']:.0f}",
                _requests_cell(m["requests"]),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def summary_lines(r: Mapping[str, Any]) -> list[str]:
    """One line of read ratios and request counts, one of preprocessing costs."""
    rd, pre = r["reads"], r["preprocess"]
    ratio = rd["ratios"]
    return [
        f"S3 / local, records/s: loader {ratio['loader_records_per_s']:.2f} "
        f"(incl. open {ratio['loader_records_per_s_incl_open']:.2f}), "
        f"blocks {ratio['blocks_records_per_s']:.2f} "
        f"(incl. open {ratio['blocks_records_per_s_incl_open']:.2f}). "
        f"Compressed signal bytes per record: {rd['local']['blocks']['compressed_bytes_per_record']:.0f}; "
        "S3 requests per shard (block reads incl. open): "
        f"{rd['s3_requests']['blocks_requests_per_shard']:.1f}.",
        f"Preprocessing, one process, {pre['n_records']} records: "
        f"{pre['ms_per_record_500hz']:.2f} ms/record at 500 Hz, "
        f"{pre['ms_per_record_400hz_resampled']:.2f} ms/record from 400 Hz (resampled to 500 Hz).",
    ]


def markdown(r: Mapping[str, Any]) -> str:
    """The results as markdown: ingest table, reads table, summary lines, checks."""
    meta = r["meta"]
    lines = [
        f"PTB-XL 12-lead 10 s 500 Hz, {meta['n_records']} records "
        f"({r['input']['raw_bytes'] / MB:.0f} MiB of WFDB), batches of {meta['batch_units']}, "
        f"{meta['cpus']} CPUs ({meta['cpu_model']}), {meta['date']}, "
        f"load average {meta['load_avg_start'][0]} at start, {meta['load_avg_end'][0]} at end",
        "",
        *ingest_rows(r),
        "",
        *read_rows(r),
        "",
        *summary_lines(r),
        "",
        "| check | result |",
        "|---|---|",
    ]
    lines += [f"| {c['name']} | {'PASS' if c['pass'] else 'FAIL'} |" for c in r["checks"]]
    return "\n".join(lines)


# --------------------------------------------------------------------------- command line


def parse_workers(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated worker counts, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"worker counts must be >= 1, got {text!r}")
    return values


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--records", type=int, default=None, help=f"records to ingest (default {DEFAULT_RECORDS})")
    p.add_argument("--workers", type=parse_workers, default=None, help="Dask cluster sizes (default 1,2,4)")
    p.add_argument("--s3-workers", type=int, default=2, help="cluster size of the S3 run (default 2)")
    p.add_argument(
        "--batch-units", type=int, default=None, help="units per batch (default ingest.batch_units)"
    )
    p.add_argument("--repeats", type=int, default=None, help="interleaved ingest rounds (default 2)")
    p.add_argument("--read-repeats", type=int, default=3, help="read passes per store (default 3)")
    p.add_argument("--preprocess-records", type=int, default=256, help="records in the 500/400 Hz comparison")
    p.add_argument("--reduced", action="store_true", help="a few dozen records, 1 and 2 workers, one round")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "scale" / "results.json")
    p.add_argument("--work", type=Path, default=None, help="scratch folder, kept (default: a temporary one)")
    p.add_argument("--source", type=Path, default=SHARED_DATA / "ptbxl", help="real PTB-XL tree to replicate")
    p.add_argument("--params", type=Path, default=REPO / "params.yaml")
    return p.parse_args(argv)


def options(args: argparse.Namespace, work: Path) -> Options:
    """Options from the arguments; ``--reduced`` changes only the defaults, explicit values win."""
    red = bool(args.reduced)
    opt = Options(
        records=args.records or (REDUCED_RECORDS if red else DEFAULT_RECORDS),
        workers=args.workers or ((1, 2) if red else (1, 2, 4)),
        s3_workers=args.s3_workers,
        batch_units=args.batch_units or (REDUCED_BATCH_UNITS if red else None),
        repeats=args.repeats or (1 if red else 2),
        read_repeats=args.read_repeats,
        preprocess_records=args.preprocess_records,
        reduced=red,
        work=work.resolve(),
        out=args.out.resolve(),
        source=args.source.resolve(),
        params=args.params.resolve(),
    )
    if opt.records < 1 or opt.repeats < 1 or opt.read_repeats < 1 or opt.s3_workers < 1:
        raise SystemExit("--records, --repeats, --read-repeats and --s3-workers must be at least 1")
    return opt


@contextmanager
def work_dir(path: Path | None) -> Iterator[Path]:
    """``path`` (kept), or a temporary folder removed at the end."""
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        yield Path(tmp)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with work_dir(args.work) as work:
        opt = options(args, work)
        code_before = code_version()
        result = run_all(opt)
    render: Callable[[dict[str, Any]], str] = markdown
    status = publish(result, opt.out, render, code_before)
    if not result["all_pass"]:
        print("FAIL: " + "; ".join(c["name"] for c in result["checks"] if not c["pass"]))
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
