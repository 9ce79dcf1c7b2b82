"""The ingest flow: discover → batch → (read → preprocess → write shard) per batch → commit.

Batches fan out as Prefect tasks on the task runner named in params (threads, processes or
Dask). Each batch task writes its own shard files, so there is exactly one writer per shard.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.context import get_run_context
from prefect.exceptions import MissingContextError
from prefect.futures import as_completed
from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner
from tqdm import tqdm

from flows.assets import file_asset, publish
from pipeline.config import IngestParams, Params, load_params
from pipeline.config.build import signal_plan, storage_spec, store_root
from pipeline.ingest.batch import BatchResult, run_batch
from pipeline.ingest.commit import commit
from pipeline.ingest.plan import Batch, IngestPlan, plan_ingest
from pipeline.ingest.report import ingest_markdown
from pipeline.labels.schemes import check_schemes
from pipeline.signal.preprocess import SignalPlan
from pipeline.sources.base import SourceReader
from pipeline.sources.registry import build_readers
from pipeline.store.base import Store
from pipeline.store.labels import relabel
from pipeline.store.local import ShardInfo, StorageSpec
from pipeline.store.remote import open_store
from pipeline.store.root import StoreRoot


def _retry_on_io(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only transient I/O failures; bad input never raises out of a batch."""
    try:
        state.result()
    except OSError:
        return True
    except Exception:  # noqa: BLE001 - anything but OSError is not a transient I/O failure: no retry
        return False
    return False


@task(name="ingest-batch", retry_condition_fn=_retry_on_io)
def ingest_batch(
    batch: Batch,
    readers: dict[str, SourceReader],
    plan: SignalPlan,
    storage: StorageSpec,
    root: StoreRoot,
    profile: str,
    attrs: dict[str, Any],
) -> BatchResult:
    """One batch on whichever worker runs it; the worker opens the store (local or object storage)
    itself and writes its shards whole."""
    return run_batch(batch, readers, plan, storage, open_store(root, profile), attrs)


def make_task_runner(cfg: IngestParams) -> TaskRunner[Any]:
    """Threads (default), a process pool, or a Dask cluster (``dask_address`` or a local one)."""
    if cfg.task_runner == "threads":
        return ThreadPoolTaskRunner(max_workers=cfg.workers)
    if cfg.task_runner == "processes":
        return ProcessPoolTaskRunner(max_workers=cfg.workers)
    from prefect_dask.task_runners import DaskTaskRunner

    if cfg.dask_address:
        return DaskTaskRunner(address=cfg.dask_address)
    kwargs = {"n_workers": cfg.workers, "threads_per_worker": 1, "processes": True, "dashboard_address": None}
    return DaskTaskRunner(cluster_kwargs=kwargs)


def flow_run_id() -> str | None:
    try:
        ctx = get_run_context()
    except MissingContextError:
        return None
    run = getattr(ctx, "flow_run", None)
    return str(run.id) if run is not None else None


@flow(name="ingest-profile", log_prints=True)
def ingest_profile(params: Params, profile: str, limit: int | None = None) -> dict[str, Any]:
    """Ingest every source feeding one profile into its shard store; returns the report."""
    log = get_run_logger()
    prof = params.profiles[profile]
    root = store_root(params.ingest, smoke=limit is not None)
    store = open_store(root, profile)
    readers = build_readers(params, prof.sources)
    # every label scheme is read and checked before any work: a bad table names its file and line
    check_schemes(params.labels.tables_dir, params.labels.derived_schemes())
    plan_s, storage = signal_plan(prof), storage_spec(prof)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    run_id = flow_run_id()
    run_info = {"flow_run_id": run_id, "started": started, "limit": limit}
    attrs = {
        "profile": profile,
        "leads": list(prof.leads),
        "fs_hz": prof.fs_hz,
        "length": prof.length,
        "plan_digest": plan_s.digest(),
        # no flow-run id or time here: a shard's bytes depend on its inputs and code only, so any
        # runner (threads, a cluster, another machine) writes the same shard; the manifest says which run
    }
    with store.lock():
        manifest = store.load_manifest()
        store.remove_debris(manifest)
        plan = plan_ingest(profile, plan_s, storage, readers, manifest, params.ingest.batch_units, limit)
        for name, scan in plan.scans.items():
            if scan.skipped:
                log.warning("source %s skipped: %s (%s)", name, scan.skipped, scan.root)
        log.info(
            "%s: %d units to process in %d batches, %d unchanged, %d vanished",
            profile,
            len(plan.todo),
            len(plan.batches),
            len(plan.unchanged),
            len(plan.vanished),
        )
        t0 = time.perf_counter()  # before submitting: on a cluster, tasks start while others are submitted
        results, failed = _run_batches(plan, params, readers, (plan_s, storage, root), profile, attrs)
        report = commit(plan, sorted(results, key=lambda r: r.seq), store, manifest, run_info)
        report["seconds"] = round(time.perf_counter() - t0, 3)
        # which process wrote each new shard: not stored (it differs run to run), shown to the caller
        report["writers"] = {info.name: r.writer for r in results for info in r.shards}
        report["labels"] = relabel(
            store,
            params.labels.tables_dir,
            params.vocabulary(profile),
            params.labels.ptbxl_min_likelihood,
            params.labels.unmapped,
            params.label_tables_for(),
            prof.label_merge,
            params.labels.derived_schemes(),
        )
    _publish_shards(store, [info for r in results for info in r.shards], readers, run_id)
    if failed:
        raise RuntimeError(
            f"{profile}: {len(failed)} of {len(plan.batches)} batch(es) failed after "
            f"{params.ingest.retries} retries (first: {failed[0]!r}); the other batches are committed "
            "and the failed units will be processed by the next run"
        )
    return report


def _run_batches(
    plan: IngestPlan,
    params: Params,
    readers: dict[str, SourceReader],
    how: tuple[SignalPlan, StorageSpec, StoreRoot],
    profile: str,
    attrs: dict[str, Any],
) -> tuple[list[BatchResult], list[BaseException]]:
    """Submit every batch as a task (with the ingest retries) and collect what finished and what failed."""
    plan_s, storage, root = how
    batch_task = ingest_batch.with_options(
        retries=params.ingest.retries, retry_delay_seconds=params.ingest.retry_delay_s
    )
    futures = [batch_task.submit(b, readers, plan_s, storage, root, profile, attrs) for b in plan.batches]
    results: list[BatchResult] = []
    failed: list[BaseException] = []
    with tqdm(total=len(plan.todo), desc=f"ingest {profile}", unit="unit", disable=not plan.todo) as bar:
        for fut in as_completed(futures):
            try:
                res = fut.result()
            except Exception as exc:  # noqa: BLE001 - commit the batches that did finish first
                failed.append(exc)
                continue
            results.append(res)
            bar.update(len(plan.batches[res.seq - plan.batches[0].seq].tasks))
            bar.set_postfix(records=sum(r.n_records for r in results))
    return results, failed


def _publish_shards(
    store: Store, shards: list[ShardInfo], readers: dict[str, SourceReader], run_id: str | None
) -> None:
    """One asset materialisation event per new shard, upstream = the raw source roots (flows.assets)."""
    assets = {
        file_asset(store.shard_location(s.name), name=f"{store.profile}/{s.name}"): {
            "profile": store.profile,
            "n_records": s.n_records,
            "sha256": s.sha256,
            "nbytes": s.nbytes,
            "flow_run_id": run_id,
        }
        for s in shards
    }
    upstream = [file_asset(r.root, name=f"raw/{name}") for name, r in sorted(readers.items())]
    publish(assets, upstream, task_name=f"publish-shards-{store.profile}")


def share_api_url() -> str | None:
    """Point worker processes at this run's Prefect API.

    Without ``PREFECT_API_URL`` each process-pool or Dask worker would start a temporary server
    of its own (≈ 15 s each) and its task runs would be invisible to this flow's server. Workers
    inherit the environment when they are spawned, which happens after this call.
    """
    if os.environ.get("PREFECT_API_URL"):
        return None
    ctx = get_run_context()
    client = getattr(ctx, "client", None)
    url = getattr(client, "api_url", None)
    if not url:
        return None
    os.environ["PREFECT_API_URL"] = str(url).rstrip("/")
    return "PREFECT_API_URL"


@flow(name="ingest", log_prints=True)
def ingest(
    params_path: str = "params.yaml",
    overrides: Sequence[str] = (),
    limit: int | None = None,
    profiles: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Ingest all (or the named) profiles; publishes a markdown summary artifact."""
    params = load_params(Path(params_path), overrides)
    names = list(profiles) if profiles else list(params.profiles)
    shared = share_api_url() if params.ingest.task_runner != "threads" else None
    runner = make_task_runner(params.ingest)
    reports = {}
    try:
        for name in names:
            reports[name] = ingest_profile.with_options(task_runner=runner)(params, name, limit)
    finally:
        if shared:
            # the temporary server dies with this flow; later flows in this process must not use it
            os.environ.pop(shared, None)
    create_markdown_artifact(ingest_markdown(reports), key="ingest-summary", description="ECG ingest summary")
    return reports
