"""The whole scale run: input, services, ingests, reads, preprocessing, the machine it ran on, and the
invariant checks; ``main`` is what ``benchmarks/scale/bench_scale.py`` runs."""

from __future__ import annotations

import os
import platform
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from benchmarks.ingest.inputs import build_input, raw_wfdb_bytes
from benchmarks.ingest.report import code_version, publish
from benchmarks.scale.ingest_runs import Context, ingest_rounds, summarise_ingest
from benchmarks.scale.options import PROFILE, SOURCE, Options, configurations, options, parse_args, work_dir
from benchmarks.scale.preprocessing import preprocess_costs
from benchmarks.scale.reads import compare_reads, whole_store_index
from benchmarks.scale.report import markdown
from benchmarks.scale.services import services
from pipeline.config import load_params
from pipeline.store.remote import open_store
from pipeline.store.root import StoreRoot


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
