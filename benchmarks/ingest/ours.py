"""Ours, in a ``--child`` process: ``plan_ingest`` -> ``run_batch`` per batch on a spawn process pool ->
``commit``, the library calls the ingest flow makes, without Prefect."""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import shutil
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks.ingest.inputs import PROFILE, SOURCE, tree_bytes
from pipeline.config import load_params
from pipeline.config.build import signal_plan, storage_spec
from pipeline.ingest.batch import BatchResult, run_batch
from pipeline.ingest.commit import commit
from pipeline.ingest.plan import Batch, IngestPlan, plan_ingest
from pipeline.signal.dsp import design_sos
from pipeline.signal.preprocess import SignalPlan
from pipeline.sources.base import SourceReader
from pipeline.sources.registry import build_readers
from pipeline.store.local import ShardStore, StorageSpec


@dataclass(frozen=True)
class Setup:
    """The profile's library arguments, built from params.yaml the way the flow builds them."""

    readers: dict[str, SourceReader]
    plan: SignalPlan
    storage: StorageSpec
    batch_units: int
    attrs: dict[str, Any]


def load_setup(
    params_path: Path, input_root: Path, batch_units: int | None, overrides: Sequence[str] = ()
) -> Setup:
    """The profile's readers, plan and storage for ``input_root``; ``overrides`` as ``ecgpipe --set``
    (e.g. another ``storage.codec``)."""
    params = load_params(params_path, [f"sources.{SOURCE}.root={input_root}", *overrides])
    prof = params.profiles[PROFILE]
    plan = signal_plan(prof)
    # Only the PTB-XL source: the profile's other sources are not part of this benchmark.
    readers = build_readers(params, [SOURCE])
    attrs = {
        "profile": PROFILE,
        "leads": list(prof.leads),
        "fs_hz": prof.fs_hz,
        "length": prof.length,
        "plan_digest": plan.digest(),
        "flow_run_id": None,
    }
    units = batch_units or params.ingest.batch_units
    return Setup(readers, plan, storage_spec(prof), units, attrs)


def peak_rss_mb(who: int) -> float:
    """``ru_maxrss`` (KiB on Linux) in MiB for ``RUSAGE_SELF`` or ``RUSAGE_CHILDREN``."""
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)


def _worker_init(plan: SignalPlan) -> None:
    """Design the profile's filters once per worker, as any long-running worker would have."""
    if plan.fs_hz is not None:
        design_sos(plan.filter_spec(plan.fs_hz))


def _worker_pid(delay_s: float) -> int:
    time.sleep(delay_s)
    return os.getpid()


def ingest_batch(
    batch: Batch,
    readers: dict[str, SourceReader],
    plan: SignalPlan,
    storage: StorageSpec,
    store_root: str,
    attrs: dict[str, Any],
) -> tuple[BatchResult, float]:
    """What the flow's ``ingest-batch`` task runs, without Prefect; plus the worker's CPU seconds.

    CPU time is process-wide, so it includes zarr's compression threads and BLAS threads.
    """
    cpu0 = time.process_time()
    result = run_batch(batch, readers, plan, storage, ShardStore(Path(store_root), PROFILE), attrs)
    return result, time.process_time() - cpu0


def start_pool(workers: int, plan: SignalPlan) -> ProcessPoolExecutor:
    """A spawn pool whose ``workers`` processes are all up (so start-up is not timed).

    Spawn, not fork: a forked worker's RSS would include the parent's pages (the plan grows
    with the input), which would blur the per-worker memory figure.
    """
    pool = ProcessPoolExecutor(
        workers, mp_context=mp.get_context("spawn"), initializer=_worker_init, initargs=(plan,)
    )
    seen: set[int] = set()
    for _ in range(20):
        seen.update(f.result() for f in [pool.submit(_worker_pid, 0.3) for _ in range(workers)])
        if len(seen) == workers:
            return pool
    pool.shutdown()
    raise RuntimeError(f"only {len(seen)} of {workers} worker processes started")


def run_batches(
    pool: ProcessPoolExecutor, plan: IngestPlan, setup: Setup, store: ShardStore, label: str
) -> tuple[list[BatchResult], float]:
    """Every batch of the plan on the pool: results in batch order, and the workers' CPU seconds."""
    futures = [
        pool.submit(ingest_batch, b, setup.readers, setup.plan, setup.storage, str(store.root), setup.attrs)
        for b in plan.batches
    ]
    results, cpu_s = [], 0.0
    with tqdm(total=len(plan.todo), desc=label, unit="rec", leave=False) as bar:
        for fut in as_completed(futures):
            res, cpu = fut.result()
            results.append(res)
            cpu_s += cpu
            bar.update(res.n_records)
    return sorted(results, key=lambda r: r.seq), cpu_s


def run_ours(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Ingest the input tree into a fresh store with ``spec["workers"]`` worker processes."""
    setup = load_setup(
        Path(spec["params"]), Path(spec["input"]), spec.get("batch_units"), spec.get("overrides", ())
    )
    workers = int(spec["workers"])
    store = ShardStore(Path(spec["store"]), PROFILE)
    shutil.rmtree(store.root, ignore_errors=True)
    with start_pool(workers, setup.plan) as pool:
        cpu0, t0 = time.process_time(), time.perf_counter()
        with store.lock():
            manifest = store.load_manifest()
            plan = plan_ingest(PROFILE, setup.plan, setup.storage, setup.readers, manifest, setup.batch_units)
            t1 = time.perf_counter()
            results, worker_cpu_s = run_batches(pool, plan, setup, store, f"ours {workers}w")
            t2 = time.perf_counter()
            report = commit(plan, results, store, manifest, {"flow_run_id": None, "started": "bench"})
        t3, parent_cpu_s = time.perf_counter(), time.process_time() - cpu0
    n = int(report["records_processed_this_run"])
    out = {
        "workers": workers,
        "n_units": len(plan.todo),
        "n_records": n,
        "n_batches": len(plan.batches),
        "batch_units": setup.batch_units,
        "seconds": t3 - t0,
        "plan_s": t1 - t0,
        "batches_s": t2 - t1,
        "commit_s": t3 - t2,
        "records_per_s": n / (t3 - t0),
        "records_per_s_per_core": n / (t3 - t0) / workers,
        "worker_cpu_s": worker_cpu_s,
        "parent_cpu_s": parent_cpu_s,
        "records_per_cpu_s": n / (worker_cpu_s + parent_cpu_s),
        "peak_rss_worker_mb": peak_rss_mb(resource.RUSAGE_CHILDREN),
        "peak_rss_parent_mb": peak_rss_mb(resource.RUSAGE_SELF),
        "store_bytes": tree_bytes(store.shard_dir),
        "store_total_bytes": tree_bytes(store.root),
        "reconciled": bool(report["reconciled"]),
        "quarantined": int(report["quarantined_inputs"]),
        "store": str(store.root),
    }
    if not spec.get("keep", True):
        shutil.rmtree(store.root, ignore_errors=True)
    return out
