"""The loader results judged and shown: the issue's targets with PASS/FAIL, the machine they were measured
on, and the markdown tables the script prints."""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numcodecs
import numpy as np
import torch
import zarr

from benchmarks.ingest.inputs import MB, PROFILE
from benchmarks.ingest.results import cpu_model
from benchmarks.loader.inputs import BATCH

# The targets (DESIGN.md: the uncompressed-HDF5 figure, from a store under half the raw size).
MIN_PER_CORE = 5000.0  # records/s per decoding process
MIN_VS_NPZ = 4.0  # ours over one savez_compressed .npz per record, same worker count
MAX_STORE_RATIO = 0.5  # shard bytes over raw WFDB bytes


def _target(name: str, goal: str, measured: float, ok: bool) -> dict[str, Any]:
    return {"name": name, "target": goal, "measured": round(measured, 3), "pass": bool(ok)}


def targets(runs: Mapping[str, Mapping[str, Any]], storage: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with its measured value and PASS/FAIL."""
    out: list[dict[str, Any]] = []
    most = max(r["workers"] for r in runs.values())
    for name in sorted({"ours-w0", f"ours-w{most}"} & set(runs)):
        per_core = runs[name]["records_per_s_per_core"]
        goal = f">= {MIN_PER_CORE:g}"
        out.append(_target(f"records/s per core ({name})", goal, per_core, per_core >= MIN_PER_CORE))
    for w in sorted({r["workers"] for r in runs.values() if r["reader"] == "npz compressed"}):
        ratio = runs[f"ours-w{w}"]["records_per_s"] / runs[f"npz-compressed-w{w}"]["records_per_s"]
        name = f"ours / .npz per record, {w} workers, records/s"
        out.append(_target(name, f">= {MIN_VS_NPZ:g}x", ratio, ratio >= MIN_VS_NPZ))
    ratio = storage["store_ratio"]
    goal = f"< {MAX_STORE_RATIO:g}"
    out.append(_target("store bytes / raw WFDB bytes", goal, ratio, ratio < MAX_STORE_RATIO))
    return out


def machine_info(args: argparse.Namespace) -> dict[str, Any]:
    """The run's command, size and timing rule, and the machine and library versions it ran on."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["python", *sys.argv]),
        "profile": PROFILE,
        "n_records": args.n,
        "repeats": args.repeats,
        "batch_size": BATCH,
        "timing": "one pass per measurement incl. worker start-up (fork); best of the repeats",
        "cpus": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            "numpy": np.__version__,
            "torch": torch.__version__,
            "zarr": zarr.__version__,
            "numcodecs": numcodecs.__version__,
        },
    }


def markdown(r: Mapping[str, Any]) -> str:
    """Configurations, then targets with PASS/FAIL, as markdown tables."""
    st = r["storage"]
    lines = [
        f"PTB-XL 12-lead 10 s 500 Hz as float32 (12, 5000) mV, {r['input']['n_records']} records, "
        f"batches of {BATCH}, {r['meta']['cpus']} CPUs, {r['meta']['date']}",
        "",
        "| reader | workers | collate | records | s | records/s | records/s per core | records per CPU-s |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for name, run in r["runs"].items():
        blosc = f", blosc {run['blosc_threads']} thr" if run["blosc_threads"] not in (None, 1) else ""
        lines.append(
            f"| {name} ({run['reader']}{blosc}) | {run['workers']} | {run['collate']} | {run['n_records']} | "
            f"{run['seconds']:.2f} | {run['records_per_s']:.0f} | {run['records_per_s_per_core']:.0f} | "
            f"{run['records_per_cpu_s']:.0f} |"
        )
    lines += [
        "",
        f"On disk: store {st['store_bytes'] / MB:.1f} MiB ({st['store_ratio']:.2f}x raw WFDB "
        f"{st['raw_bytes'] / MB:.1f} MiB); savez_compressed {st['npz_compressed_bytes'] / MB:.1f} MiB "
        f"({st['npz_compressed_ratio']:.2f}x); savez {st['npz_bytes'] / MB:.1f} MiB "
        f"({st['npz_ratio']:.2f}x).",
        f"Blosc decoding alone ({', '.join(r['decode_only']['codec'])}, one thread): "
        f"{r['decode_only']['records_per_cpu_s']:.0f} records per CPU-s (what any reader of this "
        "store can reach on one core, at best).",
        f"Values: max |ours - .npz| {r['checks']['max_abs_diff_npz_mv']:.3g} mV (int16 steps of 1 uV), "
        f"max |ours - read_signal| "
        f"{r['checks']['max_abs_diff_read_signal_mv']:.3g} mV; every record exactly once per pass: "
        f"{all(run['exact_once'] for run in r['runs'].values())}.",
        "",
        "| target | goal | measured | result |",
        "|---|---|---:|---|",
    ]
    lines += [
        f"| {t['name']} | {t['target']} | {t['measured']:g} | {'PASS' if t['pass'] else 'FAIL'} |"
        for t in r["targets"]
    ]
    return "\n".join(lines)
