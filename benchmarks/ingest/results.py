"""The ingest results: the best of the repeats, the memory comparison's sizes, the issue's targets with
PASS/FAIL, and the machine the figures were measured on."""

from __future__ import annotations

import os
import platform
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import scipy
import wfdb
import zarr

from benchmarks.ingest.inputs import PROFILE

MIN_SPEEDUP = 6.0  # ours (1 worker) records/s over the baseline's (1 process); issue 19


MIN_PER_CORE = 400.0  # records/s per worker process; issue 19


MIN_SCALING = 1.9  # 2 workers' records/s over 1 worker's; issue 19


MAX_MEMORY_GROWTH = 1.10  # "flat": peak RSS at 10x the input within 10% of the smaller run


MAX_STORE_RATIO = 0.45  # shard bytes over raw WFDB (.dat + .hea) bytes


@dataclass(frozen=True)
class Options:
    n: int
    work: Path
    out: Path
    source: Path
    params: Path
    repeats: int
    baseline_repeats: int
    memory_scale: str
    memory_workers: int
    batch_units: int | None
    decode_records: int


def best_of(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The fastest run, with every run's seconds and the highest memory peaks over all runs."""
    best = dict(min(runs, key=lambda r: float(r["seconds"])))
    best["seconds_all"] = [round(float(r["seconds"]), 3) for r in runs]
    for key in ("peak_rss_worker_mb", "peak_rss_parent_mb", "peak_rss_mb"):
        if key in best:
            best[key] = max(float(r[key]) for r in runs)
    return best


def memory_sizes(n: int, scale: str) -> tuple[int, int]:
    """Input sizes of the memory comparison: (N, 10 N) for ``up``, (N / 10, N) for ``down``."""
    return (n, 10 * n) if scale == "up" else (max(1, n // 10), n)


def summarise(
    opt: Options,
    raw: Mapping[str, int],
    decode: dict[str, Any],
    baseline: dict[str, Any],
    ours: dict[str, dict[str, Any]],
    memory: dict[str, Any],
) -> dict[str, Any]:
    raw_bytes = raw["raw_bytes"]
    storage = {
        "raw_bytes": raw_bytes,
        "store_bytes": ours["1"]["store_bytes"],
        "store_ratio": ours["1"]["store_bytes"] / raw_bytes,
        "npz_bytes": baseline["npz_bytes"],
        "npz_ratio": baseline["npz_bytes"] / raw_bytes,
    }
    w1, w2 = ours["1"], ours["2"]
    scaling = {
        "records_per_s": w2["records_per_s"] / w1["records_per_s"],
        # Without the serial plan (discovery + hashing) and commit in the parent:
        "batch_phase": w1["batches_s"] / w2["batches_s"],
    }
    result: dict[str, Any] = {
        "meta": machine_info(opt),
        "input": dict(raw),
        "decode": decode,
        "baseline": baseline,
        "ours": ours,
        "scaling": scaling,
        "storage": storage,
        "memory": memory,
    }
    result["targets"] = targets(result)
    result["all_pass"] = all(t["pass"] for t in result["targets"])
    return result


def _target(name: str, goal: str, measured: float, ok: bool) -> dict[str, Any]:
    return {"name": name, "target": goal, "measured": round(measured, 3), "pass": bool(ok)}


def targets(r: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured value and PASS/FAIL."""
    w1, base, mem = r["ours"]["1"], r["baseline"], r["memory"]
    speedup = w1["records_per_s"] / base["records_per_s"]
    scaling = r["scaling"]["records_per_s"]
    ratio = r["storage"]["store_ratio"]
    return [
        _target(
            "ours (1 worker) / baseline (1 process), records/s",
            f">= {MIN_SPEEDUP}x",
            speedup,
            speedup >= MIN_SPEEDUP,
        ),
        _target(
            "records/s per core (1 worker)",
            f">= {MIN_PER_CORE:g}",
            w1["records_per_s_per_core"],
            w1["records_per_s_per_core"] >= MIN_PER_CORE,
        ),
        _target("2 workers / 1 worker, records/s", f">= {MIN_SCALING}x", scaling, scaling >= MIN_SCALING),
        _target(
            "peak RSS per worker, 10x input / 1x",
            f"<= {MAX_MEMORY_GROWTH}x",
            mem["worker_growth"],
            mem["worker_growth"] <= MAX_MEMORY_GROWTH,
        ),
        _target(
            "peak RSS of the parent, 10x input / 1x",
            f"<= {MAX_MEMORY_GROWTH}x",
            mem["parent_growth"],
            mem["parent_growth"] <= MAX_MEMORY_GROWTH,
        ),
        _target("store bytes / raw WFDB bytes", f"<= {MAX_STORE_RATIO}", ratio, ratio <= MAX_STORE_RATIO),
    ]


def machine_info(opt: Options) -> dict[str, Any]:
    """When, how and on what the figures were measured."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["python", *sys.argv]),
        "profile": PROFILE,
        "n_records": opt.n,
        "repeats": opt.repeats,
        "baseline_repeats": opt.baseline_repeats,
        "timing": "best of the repeats; interpreter and worker-pool start-up not timed",
        "pool": "concurrent.futures.ProcessPoolExecutor, spawn",
        "cpus": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "zarr": zarr.__version__,
            "wfdb": wfdb.__version__,
        },
    }


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` where that is unreadable)."""
    try:
        lines = Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
    except OSError:
        return platform.processor()
    return next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "")
