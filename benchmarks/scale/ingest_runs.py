"""The timed ingests: every configuration through the real Prefect flow, interleaved over rounds, each
into a fresh store and checked against the baseline's shards; the best run of each with its ratios."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.scale.accounting import (
    cpu_by_role,
    cpu_snapshot,
    roles,
    shard_table,
    stored_digests,
    task_times,
    writer_pids,
    writers_ok,
)
from benchmarks.scale.options import PROFILE, SOURCE, Config, Options
from benchmarks.scale.services import RequestLog, Services, cluster_for, remove_store, store_root
from pipeline.config import Params
from pipeline.store.remote import open_store
from pipeline.store.root import StoreRoot
from tests.dask_cluster import DaskCluster


@dataclass(frozen=True)
class Context:
    """What every ingest run needs besides its configuration."""

    opt: Options
    params: Params
    tree: Path
    svc: Services
    batch_units: int


def ingest_overrides(
    cfg: Config, root: StoreRoot, ctx: Context, cluster: DaskCluster | None, batch_units: int
) -> list[str]:
    """``ingest()`` overrides: only the replicated PTB-XL tree feeds the profile; runner; store."""
    out = [f"sources.{SOURCE}.root={ctx.tree}", f"ingest.batch_units={batch_units}"]
    out += [f"sources.{s}.enabled=false" for s in ctx.params.profiles[PROFILE].sources if s != SOURCE]
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
