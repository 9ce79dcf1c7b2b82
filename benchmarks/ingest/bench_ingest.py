"""Ingest throughput, memory and store size for 12-lead 10 s 500 Hz PTB-XL records, in one run.

Everything is measured as a ratio within the same run on the same machine:

* **ours**: ``plan_ingest`` → ``run_batch`` per batch → ``commit``, the library calls the Prefect
  flow (``flows/ingest.py``) makes, with the batches fanned out to a
  ``concurrent.futures.ProcessPoolExecutor`` (spawn) of 1 and of 2 workers, into fresh stores.
  Prefect itself (server, task bookkeeping) is left out: this measures the compute pipeline.
* **baseline** ("today's notebooks"): per record ``wfdb.rdrecord`` → the same preprocessing
  (``pipeline.signal.preprocess.process`` on a one-record list) → one ``np.savez_compressed`` per
  record, float32 mV, in one process.
* **memory**: peak RSS of the workers and of the parent at two input sizes 10× apart.
* **decode**: ``pipeline.sources.wfdb.read_header`` + ``read_signals`` against ``wfdb.rdrecord``, per record.

Input: the real 500 Hz PTB-XL records of the shared data set, replicated under new ``ecg_id``
values into a PTB-XL tree (``records500/NNNNN/NNNNN_hr.{hea,dat}`` + ``ptbxl_database.csv``);
``.dat`` files are hard links (copies across file systems), headers are rewritten with the
new record name. Every ingest run (ours, baseline) happens in a fresh Python subprocess (this
script with ``--child``) so that ``getrusage`` peaks of one run never contaminate another.
Timings leave out interpreter and worker-pool start-up; each is the best of ``--repeats`` runs.

Usage (from the repository root)::

    .venv/bin/python benchmarks/ingest/bench_ingest.py            # N = 2,000, memory at N and 10 N
    .venv/bin/python benchmarks/ingest/bench_ingest.py --n 40 --memory-scale down --repeats 1
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import multiprocessing as mp
import os
import platform
import resource
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import scipy
import wfdb
import zarr
from tqdm import tqdm

from pipeline.config import load_params
from pipeline.config.build import signal_plan, storage_spec
from pipeline.core.leads import canonical_leads
from pipeline.core.records import Provenance, Record
from pipeline.ingest.batch import BatchResult, run_batch
from pipeline.ingest.commit import commit
from pipeline.ingest.plan import Batch, IngestPlan, plan_ingest
from pipeline.signal.dsp import design_sos
from pipeline.signal.preprocess import SignalPlan, process
from pipeline.sources.base import SourceReader
from pipeline.sources.ptbxl import DATABASE, STATEMENTS
from pipeline.sources.registry import build_readers
from pipeline.sources.wfdb import read_header, read_signals
from pipeline.store.local import ShardStore, StorageSpec

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("ECGPIPE_SHARED_DATA", REPO.parent / "shared" / "data"))
PROFILE = "ecg12"
SOURCE = "ptbxl"
TREE_VERSION = 1  # bump when the replicated tree's layout changes, so cached trees are rebuilt
MB = 1 << 20

# The targets.
MIN_SPEEDUP = 4.0  # ours (1 worker) records/s over the baseline's (1 process)
MIN_PER_CORE = 300.0  # records/s per worker process
MIN_SCALING = 1.8  # 2 workers' records/s over 1 worker's
MAX_MEMORY_GROWTH = 1.10  # "flat": peak RSS at 10x the input within 10% of the smaller run
MAX_STORE_RATIO = 0.45  # shard bytes over raw WFDB (.dat + .hea) bytes


# --------------------------------------------------------------------------- input tree


def source_rows(source: Path) -> tuple[list[str], list[dict[str, str]]]:
    """``ptbxl_database.csv`` columns and the rows whose 500 Hz ``.hea`` and ``.dat`` exist."""
    with (source / DATABASE).open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        columns = list(reader.fieldnames or [])
        rows = [dict(r) for r in reader if _has_hr_files(source, r.get("filename_hr") or "")]
    return columns, rows


def _has_hr_files(source: Path, stem: str) -> bool:
    return bool(stem) and (source / f"{stem}.hea").is_file() and (source / f"{stem}.dat").is_file()


def replica_stem(ecg_id: int, rate_dir: str, suffix: str) -> str:
    """PTB-XL path of a record without extension: ``records500/01000/01234_hr``."""
    return f"{rate_dir}/{ecg_id // 1000 * 1000:05d}/{ecg_id:05d}_{suffix}"


def rename_header(text: str, old: str, new: str) -> str:
    """WFDB header text with record ``old`` (and its signal files ``old.*``) renamed ``new``."""
    out = []
    for line in text.splitlines(keepends=True):
        token, sep, rest = line.partition(" ")
        if token == old or token.startswith(f"{old}."):
            token = new + token[len(old) :]
        out.append(token + sep + rest)
    return "".join(out)


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` at ``dst`` (no extra disk); copy where links are impossible."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def replicate_record(source: Path, dest: Path, row: Mapping[str, str], ecg_id: int) -> dict[str, str]:
    """Copy one 500 Hz record under a new ``ecg_id``; returns its CSV row."""
    old_stem = row["filename_hr"]
    new_stem = replica_stem(ecg_id, "records500", "hr")
    (dest / new_stem).parent.mkdir(parents=True, exist_ok=True)
    header = (source / f"{old_stem}.hea").read_text(encoding="utf-8")
    renamed = rename_header(header, PurePosixPath(old_stem).name, PurePosixPath(new_stem).name)
    (dest / f"{new_stem}.hea").write_text(renamed, encoding="utf-8")
    link_or_copy(source / f"{old_stem}.dat", dest / f"{new_stem}.dat")
    # The 100 Hz path names where PTB-XL would keep it; no file is there, so the reader skips it.
    lr_stem = replica_stem(ecg_id, "records100", "lr")
    return {**row, "ecg_id": str(ecg_id), "filename_hr": new_stem, "filename_lr": lr_stem}


def build_input(source: Path, dest: Path, n: int) -> Path:
    """A PTB-XL tree at ``dest`` with ``ecg_id`` 1..n cycling over the source's 500 Hz records.

    Reused when a previous run built the same tree (a stamp file records n and the source).
    """
    stamp = {"version": TREE_VERSION, "n": n, "source": str(source.resolve())}
    marker = dest / ".bench-input.json"
    if marker.is_file() and json.loads(marker.read_text(encoding="utf-8")) == stamp:
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    columns, rows = source_rows(source)
    if not rows:
        raise SystemExit(f"{source}: no 500 Hz PTB-XL records (records500/...) with a {DATABASE} row")
    dest.mkdir(parents=True)
    new_rows = [
        replicate_record(source, dest, rows[(k - 1) % len(rows)], k)
        for k in tqdm(range(1, n + 1), desc=f"input tree {n}", unit="rec", leave=False)
    ]
    with (dest / DATABASE).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(new_rows)
    shutil.copyfile(source / STATEMENTS, dest / STATEMENTS)
    marker.write_text(json.dumps(stamp), encoding="utf-8")
    return dest


def raw_wfdb_bytes(root: Path) -> dict[str, int]:
    """Record count and bytes of the ``.dat`` and ``.hea`` files under ``root``."""
    dat = hea = n = 0
    for path in root.rglob("*"):
        if path.suffix == ".dat":
            dat += path.stat().st_size
            n += 1
        elif path.suffix == ".hea":
            hea += path.stat().st_size
    return {"n_records": n, "dat_bytes": dat, "hea_bytes": hea, "raw_bytes": dat + hea}


def tree_bytes(path: Path) -> int:
    """Total size of the files under ``path`` (0 when it does not exist)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def input_rows(root: Path) -> list[dict[str, str]]:
    with (root / DATABASE).open(newline="", encoding="utf-8") as fh:
        return [dict(r) for r in csv.DictReader(fh)]


# --------------------------------------------------------------------------- shared set-up


@dataclass(frozen=True)
class Setup:
    """The profile's library arguments, built from params.yaml the way the flow builds them."""

    readers: dict[str, SourceReader]
    plan: SignalPlan
    storage: StorageSpec
    batch_units: int
    attrs: dict[str, Any]


def load_setup(params_path: Path, input_root: Path, batch_units: int | None) -> Setup:
    params = load_params(params_path, [f"sources.{SOURCE}.root={input_root}"])
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


# --------------------------------------------------------------------------- ours (child)


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
    setup = load_setup(Path(spec["params"]), Path(spec["input"]), spec.get("batch_units"))
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


# --------------------------------------------------------------------------- baseline (child)


def wfdb_record(root: Path, row: Mapping[str, str]) -> Record:
    """A PTB-XL row read the notebook way, ``wfdb.rdrecord``: float32 ``(12, 5000)`` mV."""
    rec = wfdb.rdrecord(str(root / row["filename_hr"]))
    return Record(
        record_id=f"{SOURCE}:{int(row['ecg_id']):05d}",
        source=SOURCE,
        signal=np.ascontiguousarray(rec.p_signal.T, dtype=np.float32),
        fs_hz=float(rec.fs),
        leads=canonical_leads(list(rec.sig_name)),
        patient_id=None,
        raw_labels=(),
        provenance=Provenance(files=(), reader="wfdb.rdrecord"),
    )


def save_npz(root: Path, row: Mapping[str, str], plan: SignalPlan, out: Path) -> Path | None:
    """The baseline for one record: read, preprocess alone, one compressed ``.npz`` (None if rejected)."""
    batch, rejected = process([wfdb_record(root, row)], plan)
    if rejected:
        return None
    path = out / f"{int(row['ecg_id']):05d}.npz"
    np.savez_compressed(path, signal=batch.signal[0], scp_codes=np.array(row.get("scp_codes", "")))
    return path


def run_baseline(spec: Mapping[str, Any]) -> dict[str, Any]:
    setup = load_setup(Path(spec["params"]), Path(spec["input"]), None)
    root, out = Path(spec["input"]), Path(spec["out_dir"])
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    rows = input_rows(root)
    _worker_init(setup.plan)
    t0 = time.perf_counter()
    saved = sum(
        save_npz(root, row, setup.plan, out) is not None
        for row in tqdm(rows, desc="baseline npz", unit="rec", leave=False)
    )
    seconds = time.perf_counter() - t0
    return {
        "n_records": saved,
        "n_rejected": len(rows) - saved,
        "seconds": seconds,
        "records_per_s": saved / seconds,
        "peak_rss_mb": peak_rss_mb(resource.RUSAGE_SELF),
        "npz_bytes": tree_bytes(out),
        "npz_dir": str(out),
    }


# --------------------------------------------------------------------------- decode (in the main process)


def run_decode(root: Path, limit: int, repeats: int) -> dict[str, Any]:
    """Per-record decode time of our WFDB reader and of ``wfdb.rdrecord`` (files in page cache)."""
    stems = [r["filename_hr"] for r in input_rows(root)][:limit]
    ours_s, wfdb_s = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for stem in stems:
            read_signals(read_header(root / f"{stem}.hea"), (root / stem).parent, root)
        ours_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for stem in stems:
            wfdb.rdrecord(str(root / stem))
        wfdb_s.append(time.perf_counter() - t0)
    ours_ms, wfdb_ms = 1000 * min(ours_s) / len(stems), 1000 * min(wfdb_s) / len(stems)
    return {
        "n_records": len(stems),
        "ours_ms_per_record": ours_ms,
        "wfdb_ms_per_record": wfdb_ms,
        "speedup": wfdb_ms / ours_ms,
        "max_abs_diff_mv": _max_decode_diff(root, stems),
    }


def _max_decode_diff(root: Path, stems: Sequence[str]) -> float:
    """Largest |ours - wfdb| over the records, in mV (0 when both decode identical samples)."""
    worst = 0.0
    for stem in stems:
        ours = read_signals(read_header(root / f"{stem}.hea"), (root / stem).parent, root)
        ref = np.asarray(wfdb.rdrecord(str(root / stem)).p_signal.T, dtype=np.float32)
        worst = max(worst, float(np.max(np.abs(ours - ref))))
    return worst


CHILDREN = {"ours": run_ours, "baseline": run_baseline}


def run_child(spec_json: str) -> None:
    """Entry point of a ``--child`` subprocess: run one configuration, write its JSON result."""
    spec = json.loads(spec_json)
    result = CHILDREN[spec["kind"]](spec)
    Path(spec["result"]).write_text(json.dumps(result), encoding="utf-8")


# --------------------------------------------------------------------------- orchestration


def child(kind: str, spec: Mapping[str, Any], work: Path) -> dict[str, Any]:
    """Run one configuration in a fresh interpreter and return its result."""
    result_path = work / f".result-{uuid.uuid4().hex[:8]}.json"
    payload = json.dumps({**spec, "kind": kind, "result": str(result_path)})
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", payload], check=True)
    result: dict[str, Any] = json.loads(result_path.read_text(encoding="utf-8"))
    result_path.unlink()
    return result


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
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "zarr": zarr.__version__,
            "wfdb": wfdb.__version__,
        },
    }


def code_version() -> dict[str, Any]:
    """The git commit, whether ``pipeline/`` has uncommitted edits, and a digest of its sources."""
    digest = hashlib.sha256()
    for path in sorted((REPO / "pipeline").rglob("*.py")):
        digest.update(path.relative_to(REPO).as_posix().encode() + b"\0" + path.read_bytes())
    return {
        "commit": _git("rev-parse", "HEAD"),
        "pipeline_dirty": bool(_git("status", "--porcelain", "--", "pipeline")),
        "pipeline_sha256": digest.hexdigest(),
    }


def _git(*args: str) -> str:
    """Output of a read-only git command in the repository ('' when git is unavailable)."""
    try:
        proc = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
    except OSError:
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""


def _cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
    except OSError:
        return platform.processor()
    return next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "")


# --------------------------------------------------------------------------- report


def _ours_row(label: str, run: Mapping[str, Any], raw_bytes: int) -> str:
    return (
        f"| {label} | {run['seconds']:.2f} ({run['plan_s']:.2f} / {run['batches_s']:.2f} / "
        f"{run['commit_s']:.2f}) | {run['records_per_s']:.0f} | {run['records_per_s_per_core']:.0f} | "
        f"{run['records_per_cpu_s']:.0f} | "
        f"{run['peak_rss_worker_mb']:.0f} / {run['peak_rss_parent_mb']:.0f} | "
        f"{run['store_bytes'] / MB:.1f} MiB ({run['store_bytes'] / raw_bytes:.2f}x) |"
    )


def markdown(r: Mapping[str, Any]) -> str:
    """The results as two markdown tables: configurations, then targets with PASS/FAIL."""
    raw_bytes = r["storage"]["raw_bytes"]
    base, dec = r["baseline"], r["decode"]
    lines = [
        f"PTB-XL 12-lead 10 s 500 Hz, {r['input']['n_records']} records "
        f"({raw_bytes / MB:.1f} MiB of WFDB), {r['meta']['cpus']} CPUs, {r['meta']['date']}",
        "",
        "| configuration | s (plan / batches / commit) | records/s | records/s per core "
        "| records per CPU-s | peak RSS worker / parent (MiB) | on disk (x raw) |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| baseline: rdrecord + process + savez_compressed, 1 process | {base['seconds']:.2f} | "
        f"{base['records_per_s']:.0f} | {base['records_per_s']:.0f} | | {base['peak_rss_mb']:.0f} | "
        f"{base['npz_bytes'] / MB:.1f} MiB ({r['storage']['npz_ratio']:.2f}x) |",
    ]
    lines += [_ours_row(f"ours, {w} worker(s)", run, raw_bytes) for w, run in r["ours"].items()]
    mem = r["memory"]
    lines += [
        _ours_row(f"memory: {k} records, {run['workers']} worker(s)", run, run["raw_bytes"])
        for k, run in mem["runs"].items()
    ]
    lines += [
        "",
        f"2 workers / 1: {r['scaling']['records_per_s']:.2f}x end to end, "
        f"{r['scaling']['batch_phase']:.2f}x in the batch phase. Decode per record: ours "
        f"{dec['ours_ms_per_record']:.3f} ms, wfdb.rdrecord {dec['wfdb_ms_per_record']:.3f} ms "
        f"({dec['speedup']:.1f}x; max |diff| {dec['max_abs_diff_mv']:.2g} mV).",
        "",
        "| target | goal | measured | result |",
        "|---|---|---:|---|",
    ]
    lines += [
        f"| {t['name']} | {t['target']} | {t['measured']:.3f} | {'PASS' if t['pass'] else 'FAIL'} |"
        for t in r["targets"]
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
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


def publish(
    result: dict[str, Any], out: Path, render: Callable[[dict[str, Any]], str], code_before: dict[str, Any]
) -> int:
    """Write the JSON, print the table; exit status 1 if the library changed during the run.

    Others may edit the library while a run is going; mixed figures must not pass unnoticed.
    """
    code_after = code_version()
    result["meta"]["code"] = {**code_before, "changed_during_run": code_before != code_after}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(render(result))
    print(f"\nresults: {out}")
    if code_before != code_after:
        print("WARNING: pipeline/ changed during the run; the figures mix two versions. Re-run.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
