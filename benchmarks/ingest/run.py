"""The whole ingest benchmark: every configuration in a fresh ``--child`` interpreter, interleaved, then
the summary; ``main`` is what ``benchmarks/ingest/bench_ingest.py`` runs."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.ingest.baseline import run_baseline, run_decode
from benchmarks.ingest.inputs import REPO, SHARED_DATA, build_input, raw_wfdb_bytes
from benchmarks.ingest.ours import run_ours
from benchmarks.ingest.report import code_version, markdown, publish
from benchmarks.ingest.results import Options, best_of, memory_sizes, summarise

SCRIPT = Path(__file__).resolve().with_name("bench_ingest.py")  # each configuration runs it with --child
DESCRIPTION = "Ingest throughput, memory and store size for 12-lead 10 s 500 Hz PTB-XL records, in one run."
CHILDREN = {"ours": run_ours, "baseline": run_baseline}


def run_child(spec_json: str) -> None:
    """Entry point of a ``--child`` subprocess: run one configuration, write its JSON result."""
    spec = json.loads(spec_json)
    result = CHILDREN[spec["kind"]](spec)
    Path(spec["result"]).write_text(json.dumps(result), encoding="utf-8")


def child(kind: str, spec: Mapping[str, Any], work: Path) -> dict[str, Any]:
    """Run one configuration in a fresh interpreter and return its result."""
    result_path = work / f".result-{uuid.uuid4().hex[:8]}.json"
    payload = json.dumps({**spec, "kind": kind, "result": str(result_path)})
    subprocess.run([sys.executable, str(SCRIPT), "--child", payload], check=True)
    result: dict[str, Any] = json.loads(result_path.read_text(encoding="utf-8"))
    result_path.unlink()
    return result


def run_all(opt: Options) -> dict[str, Any]:
    """Build the inputs, run every configuration, and return the results with their targets."""
    opt.work.mkdir(parents=True, exist_ok=True)
    sizes = memory_sizes(opt.n, opt.memory_scale)
    trees = {k: build_input(opt.source, opt.work / f"input-{k}", k) for k in sorted({opt.n, *sizes})}
    main_input = trees[opt.n]
    common = {"params": str(opt.params), "batch_units": opt.batch_units}
    decode = run_decode(main_input, opt.decode_records, repeats=3)
    base_spec = {**common, "input": str(main_input), "out_dir": str(opt.work / "npz")}
    baseline = best_of([child("baseline", base_spec, opt.work) for _ in range(opt.baseline_repeats)])
    ours_runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    for _ in range(opt.repeats):  # interleaved, so a busy spell hits both configurations alike
        for w in ours_runs:
            spec = {**common, "input": str(main_input), "workers": w, "store": str(opt.work / f"ours-w{w}")}
            ours_runs[w].append(child("ours", spec, opt.work))
    ours = {str(w): best_of(runs) for w, runs in ours_runs.items()}
    # The first 2-worker run at N is a single run like the memory run at the other size.
    reuse = {opt.n: ours_runs[2][0]} if opt.memory_workers == 2 else {}
    memory = measure_memory(opt, trees, sizes, common, reuse)
    return summarise(opt, raw_wfdb_bytes(main_input), decode, baseline, ours, memory)


def measure_memory(
    opt: Options,
    trees: Mapping[int, Path],
    sizes: tuple[int, int],
    common: Mapping[str, Any],
    reuse: Mapping[int, dict[str, Any]],
) -> dict[str, Any]:
    """One ingest per size with ``memory_workers`` workers (or a run of that size already made,
    from ``reuse``); the stores made here are deleted afterwards."""
    runs = {}
    for k in sizes:
        spec = {
            **common,
            "input": str(trees[k]),
            "workers": opt.memory_workers,
            "store": str(opt.work / f"mem-{k}"),
            "keep": False,
        }
        run = reuse[k] if k in reuse else child("ours", spec, opt.work)
        runs[str(k)] = {**run, "raw_bytes": raw_wfdb_bytes(trees[k])["raw_bytes"]}
    small, big = (runs[str(k)] for k in sizes)
    return {
        "scale": opt.memory_scale,
        "sizes": list(sizes),
        "workers": opt.memory_workers,
        "runs": runs,
        "worker_growth": big["peak_rss_worker_mb"] / small["peak_rss_worker_mb"],
        "parent_growth": big["peak_rss_parent_mb"] / small["peak_rss_parent_mb"],
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=DESCRIPTION)
    p.add_argument("--n", type=int, default=2000, help="records in the main input (default 2000)")
    p.add_argument("--work", type=Path, default=REPO / "benchmarks" / "_work", help="scratch folder")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "ingest" / "results.json")
    p.add_argument("--source", type=Path, default=SHARED_DATA / "ptbxl", help="real PTB-XL tree to replicate")
    p.add_argument("--params", type=Path, default=REPO / "params.yaml")
    p.add_argument("--repeats", type=int, default=3, help="runs per ours configuration (best is kept)")
    p.add_argument("--baseline-repeats", type=int, default=2)
    p.add_argument(
        "--memory-scale",
        choices=("up", "down"),
        default="up",
        help="memory at N and 10 N (up, default) or at N/10 and N (down)",
    )
    p.add_argument("--memory-workers", type=int, default=2)
    p.add_argument("--batch-units", type=int, default=None, help="default: ingest.batch_units of params")
    p.add_argument("--decode-records", type=int, default=150, help="records in the decode benchmark")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.n < 1 or args.repeats < 1 or args.baseline_repeats < 1:
        p.error("--n, --repeats and --baseline-repeats must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        run_child(args.child)
        return 0
    opt = Options(
        n=args.n,
        work=args.work.resolve(),
        out=args.out.resolve(),
        source=args.source.resolve(),
        params=args.params.resolve(),
        repeats=args.repeats,
        baseline_repeats=args.baseline_repeats,
        memory_scale=args.memory_scale,
        memory_workers=args.memory_workers,
        batch_units=args.batch_units,
        decode_records=args.decode_records,
    )
    code_before = code_version()
    result = run_all(opt)
    return publish(result, opt.out, markdown, code_before)
