"""The whole loader benchmark: build the inputs, time every configuration (warm-up, then interleaved
repeats), add sizes, checks and targets; ``main`` is what ``benchmarks/loader/bench_loader.py`` runs."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.ingest.inputs import PROFILE, REPO, SHARED_DATA, tree_bytes
from benchmarks.ingest.report import code_version, publish
from benchmarks.loader.checks import check_values, decode_floor
from benchmarks.loader.configurations import configurations
from benchmarks.loader.inputs import Inputs, build_inputs
from benchmarks.loader.report import machine_info, markdown, targets
from benchmarks.loader.timing import summary, time_pass
from pipeline.cli.main import set_arg

DESCRIPTION = (
    "Training-loader throughput for 12-lead 10 s 500 Hz records (float32 ``(12, 5000)`` mV), in one run."
)


def storage_sizes(inputs: Inputs) -> dict[str, Any]:
    """Bytes on disk of the store's shards and of each ``.npz`` folder, and their ratios to raw WFDB."""
    store_bytes = tree_bytes(inputs.store_base / PROFILE / "shards")
    npz_c, npz_p = tree_bytes(inputs.npz_compressed), tree_bytes(inputs.npz_plain)
    return {
        "raw_bytes": inputs.raw_bytes,
        "store_bytes": store_bytes,
        "store_ratio": store_bytes / inputs.raw_bytes,
        "npz_compressed_bytes": npz_c,
        "npz_compressed_ratio": npz_c / inputs.raw_bytes,
        "npz_bytes": npz_p,
        "npz_ratio": npz_p / inputs.raw_bytes,
    }


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    """Build the inputs, time every configuration, and return the results with their targets."""
    args.work.mkdir(parents=True, exist_ok=True)
    inputs = build_inputs(args.source, args.params, args.work, args.n, args.overrides)
    workers = sorted(set(args.workers))
    runs = configurations(inputs, workers, min(args.zarr_records, inputs.n_records))
    for run in runs:  # warm-up: page cache, imports, first-call costs
        time_pass(run, epoch=0)
        run.seconds, run.cpu_s = [], []
    for rep in range(args.repeats):  # interleaved, so a busy spell hits every configuration alike
        for run in runs:
            time_pass(run, epoch=rep + 1)
    results = {run.name: summary(run) for run in runs}
    storage = storage_sizes(inputs)
    result: dict[str, Any] = {
        "meta": machine_info(args),
        "input": {"n_records": inputs.n_records, "raw_bytes": inputs.raw_bytes, "work": str(args.work)},
        "storage": storage,
        "runs": results,
        "checks": check_values(inputs),
        "decode_only": decode_floor(inputs, max(1, args.repeats)),
        "targets": targets(results, storage),
    }
    result["all_pass"] = all(t["pass"] for t in result["targets"])
    return result


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=DESCRIPTION)
    p.add_argument("--n", type=int, default=2000, help="records (replicated PTB-XL), default 2000")
    p.add_argument("--work", type=Path, default=REPO / "benchmarks" / "_work" / "loader")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "loader" / "results.json")
    p.add_argument("--source", type=Path, default=SHARED_DATA / "ptbxl", help="a PTB-XL tree (records500)")
    p.add_argument("--params", type=Path, default=REPO / "params.yaml")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--zarr-records", type=int, default=512, help="records read one zarr call each")
    set_arg(p)  # e.g. --set profiles.ecg12.storage.codec=lz4: the store is built (and kept) per override set
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    before = code_version()
    result = run_all(args)
    return publish(result, args.out, markdown, before)
