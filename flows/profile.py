"""One profile's ingest under its store lock: plan → batches → commit → relabel, without Prefect.

:func:`run_profile` is what the ``ingest-profile`` subflow runs (flows/ingest.py passes Prefect's
logger and a batch runner that submits Prefect tasks) and what a no-op ingest runs before any flow
is built (flows/noop.py). Keeping it free of Prefect imports is what lets the no-op path skip them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipeline.config import Params
from pipeline.config.build import signal_plan, storage_spec, store_root
from pipeline.ingest.batch import BatchResult
from pipeline.ingest.commit import commit
from pipeline.ingest.plan import IngestPlan, plan_ingest
from pipeline.labels.schemes import check_schemes
from pipeline.signal.preprocess import SignalPlan
from pipeline.sources.base import SourceReader
from pipeline.sources.registry import build_readers
from pipeline.store.base import Store
from pipeline.store.labels import relabel
from pipeline.store.local import StorageSpec
from pipeline.store.remote import open_store
from pipeline.store.root import StoreRoot

How = tuple[SignalPlan, StorageSpec, StoreRoot]
BatchRunner = Callable[
    [IngestPlan, dict[str, SourceReader], How, dict[str, Any]], tuple[list[BatchResult], list[BaseException]]
]


@dataclass(frozen=True)
class ProfileRun:
    """What one profile's run did: its report, the batch results and failures, for the caller."""

    report: dict[str, Any]
    results: list[BatchResult]
    failed: list[BaseException]
    n_batches: int
    store: Store
    readers: dict[str, SourceReader]


def no_batches(
    plan: IngestPlan, readers: dict[str, SourceReader], how: How, attrs: dict[str, Any]
) -> tuple[list[BatchResult], list[BaseException]]:
    """The batch runner of an idle profile (the plan has none; anything else is a bug)."""
    if plan.batches:
        raise RuntimeError(f"{len(plan.batches)} batch(es) reached the no-op path")
    return [], []


def run_profile(
    params: Params,
    profile: str,
    limit: int | None,
    only_if_idle: bool,
    log: logging.Logger | logging.LoggerAdapter[Any],
    run_id: str | None,
    run_batches: BatchRunner,
) -> ProfileRun | None:
    """Plan, run the batches, commit and relabel one profile under its store lock.

    With ``only_if_idle`` it returns None (lock released, nothing but debris removed) as soon as the
    plan has units to process or to drop; a profile with nothing new finishes here. Both paths run
    the same code, so the check decides only how the run is recorded, never what is stored.
    """
    prof = params.profiles[profile]
    root = store_root(params.ingest, smoke=limit is not None)
    store = open_store(root, profile)
    readers = build_readers(params, prof.sources)
    # every label scheme is read and checked before any work: a bad table names its file and line
    check_schemes(params.labels.tables_dir, params.labels.derived_schemes())
    plan_s, storage = signal_plan(prof), storage_spec(prof)
    started = datetime.now(UTC).isoformat(timespec="seconds")
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
        if only_if_idle and (plan.todo or plan.vanished):
            return None
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
        results, failed = run_batches(plan, readers, (plan_s, storage, root), attrs)
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
    return ProfileRun(report, results, failed, len(plan.batches), store, readers)
