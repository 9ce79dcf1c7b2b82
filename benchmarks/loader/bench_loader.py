"""Training-loader throughput for 12-lead 10 s 500 Hz records (float32 ``(12, 5000)`` mV), in one run.

What is compared, all reading the same N records in a shuffled order, with batches of 64:

* **ours**: :func:`pipeline.dataset.loader.make_loader` over the zarr shard store (block reads, shuffle
  buffer, dequantise per batch), with 0, 1 and 2 DataLoader workers; whole batches yielded by
  the dataset (``DataLoader(batch_size=None)``). Also measured: per-sample yields collated by
  the DataLoader, and 2 Blosc threads per worker instead of 1.
* **zarr per record**: a map-style ``Dataset`` whose ``__getitem__`` reads one record with one
  zarr call (``signal[row:row + 1]``) from the same store, random order, 0 workers. Slow, so
  it reads only ``--zarr-records`` records.
* **.npz per record** (the baseline, "today's notebooks"): one ``np.savez_compressed`` file per
  record holding the float32 signal and its labels, read by a map-style ``Dataset``
  (``np.load``) through a shuffling ``DataLoader``, with 0 and 2 workers. Uncompressed
  ``np.savez`` files are measured too, for reference.

Input: the real 500 Hz PTB-XL records of the shared data set, replicated into a PTB-XL tree of
N records by ``benchmarks/ingest/bench_ingest.py``'s :func:`build_input`, ingested with the
``ecg12`` profile of ``params.yaml`` (the same library calls as the ingest flow), labelled,
and listed in a split index that puts every record in ``train``. The ``.npz`` files hold what a
notebook would save: the same reader's records through the same preprocessing, float32 before
the store's int16 quantisation (so values agree to half a 1 uV step; checked), plus labels.
Inputs are built once under ``--work`` and reused; all files are in the page cache, so this
measures decode and hand-over, not disk.

Timing: one pass over the records per measurement, including DataLoader worker start-up
(workers are forked per epoch); best of ``--repeats``, configurations interleaved. Records/s
per core divides by the processes that decode: ``max(1, workers)``. Records per CPU-second
counts the main process and the reaped workers.

Usage (from the repository root)::

    .venv/bin/python benchmarks/loader/bench_loader.py              # N = 2,000
    .venv/bin/python benchmarks/loader/bench_loader.py --n 200 --repeats 1 --work /tmp/bl
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import numpy.typing as npt
import psutil
import torch
import zarr
from torch.utils.data import DataLoader, Dataset

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run as a script: make `benchmarks` and `pipeline` importable
    sys.path.insert(0, str(REPO))

from benchmarks.ingest.bench_ingest import (  # noqa: E402
    SHARED_DATA,
    build_input,
    code_version,
    publish,
    raw_wfdb_bytes,
    run_ours,
    tree_bytes,
)
from pipeline.config import load_params  # noqa: E402
from pipeline.config.build import signal_plan  # noqa: E402
from pipeline.core.records import Provenance, Record  # noqa: E402
from pipeline.dataset.loader import make_loader  # noqa: E402
from pipeline.dataset.splits import index_from_store, write_index  # noqa: E402
from pipeline.signal.preprocess import process  # noqa: E402
from pipeline.sources.ptbxl import PtbXlReader  # noqa: E402
from pipeline.store.blocks import BlockReader  # noqa: E402
from pipeline.store.labels import read_labels, relabel  # noqa: E402
from pipeline.store.local import ShardStore, read_signal  # noqa: E402

PROFILE = "ecg12"
BATCH = 64
MB = 1 << 20
STORE_VERSION = 2  # bump when the cached store or .npz files must be rebuilt

# The targets (DESIGN.md: the uncompressed-HDF5 figure, from a store under half the raw size).
MIN_PER_CORE = 5000.0  # records/s per decoding process
MIN_VS_NPZ = 4.0  # ours over one savez_compressed .npz per record, same worker count
MAX_STORE_RATIO = 0.5  # shard bytes over raw WFDB bytes


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Inputs:
    """Everything the readers need: the store, its index, the .npz folders, sizes."""

    store_base: Path
    index: Path
    npz_compressed: Path
    npz_plain: Path
    n_records: int
    raw_bytes: int


def build_inputs(source: Path, params: Path, work: Path, n: int) -> Inputs:
    """Input tree, store (+ labels and index) and .npz files under ``work``, reused when present."""
    tree = build_input(source, work / f"input-{n}", n)
    base = work / f"store-{n}"
    store = ShardStore(base / PROFILE, PROFILE)
    stamp = {"version": STORE_VERSION, "n": n, "tree": str(tree.resolve())}
    marker = work / f".store-{n}.json"
    if not (marker.is_file() and json.loads(marker.read_text(encoding="utf-8")) == stamp):
        marker.unlink(missing_ok=True)
        _ingest(tree, params, store)
        _write_npz(store, tree, params, work / f"npz-compressed-{n}", work / f"npz-{n}")
        marker.write_text(json.dumps(stamp), encoding="utf-8")
    index = work / f"index-{n}.csv"
    # Every record in one split: the benchmark reads all N records per pass.
    split = index_from_store(store, fractions={"train": 1.0}, fold_map={"train": list(range(1, 11))})
    write_index(index, split.rows, split.header)
    return Inputs(
        store_base=base,
        index=index,
        npz_compressed=work / f"npz-compressed-{n}",
        npz_plain=work / f"npz-{n}",
        n_records=len(split.rows),
        raw_bytes=raw_wfdb_bytes(tree)["raw_bytes"],
    )


def _ingest(tree: Path, params_path: Path, store: ShardStore) -> None:
    spec = {"params": str(params_path), "input": str(tree), "workers": 2, "store": str(store.root)}
    run = run_ours(spec)
    if not run["reconciled"] or run["quarantined"]:
        raise SystemExit(f"ingest of {tree} did not reconcile: {run}")
    params = load_params(params_path, [f"sources.ptbxl.root={tree}"])
    relabel(
        store,
        params.labels.tables_dir,
        params.vocabulary(PROFILE),
        params.labels.ptbxl_min_likelihood,
        params.labels.unmapped,
        params.label_tables_for(),
        params.profiles[PROFILE].label_merge,
    )


def _write_npz(store: ShardStore, tree: Path, params_path: Path, compressed: Path, plain: Path) -> None:
    """One file per record in each folder, ``<position>.npz`` in label-set order, as a notebook
    writes them: the preprocessed float32 ``(12, 5000)`` mV signal (before the store's int16
    quantisation) and the float32 ``(K,)`` labels."""
    labels = read_labels(store)
    assert labels is not None
    position = {rid: i for i, rid in enumerate(labels.record_id)}
    params = load_params(params_path, [f"sources.ptbxl.root={tree}"])
    plan = signal_plan(params.profiles[PROFILE])
    reader = PtbXlReader("ptbxl", tree)
    for folder in (compressed, plain):
        folder.mkdir(parents=True, exist_ok=True)
        for p in folder.glob("*.npz"):
            p.unlink()
    units = reader.discover().units
    for start in range(0, len(units), 256):
        records = [
            r
            for unit in units[start : start + 256]
            for r in reader.read(unit, Provenance(files=(), reader=reader.reader_id))
            if isinstance(r, Record)
        ]
        batch, _ = process(records, plan)
        for rec, x in zip(batch.records, batch.signal, strict=True):
            i = position[rec.record_id]
            y = labels.y[i].astype(np.float32)
            np.savez_compressed(compressed / f"{i:06d}.npz", signal=x, y=y)
            np.savez(plain / f"{i:06d}.npz", signal=x, y=y)


# --------------------------------------------------------------------------- baseline readers


class NpzDataset(Dataset[tuple[torch.Tensor, torch.Tensor, int]]):
    """One ``.npz`` per record: item ``i`` is ``(signal (12, 5000), y (K,), i)``."""

    def __init__(self, folder: Path, n: int) -> None:
        self.paths = [folder / f"{i:06d}.npz" for i in range(n)]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        with np.load(self.paths[i]) as z:
            return torch.from_numpy(z["signal"]), torch.from_numpy(z["y"]), i


class ZarrRecordDataset(Dataset[tuple[torch.Tensor, int]]):
    """One zarr call per record: item ``i`` is ``(signal (12, 5000) float32 mV, i)``."""

    def __init__(self, store: ShardStore, shards: Sequence[str], rows: npt.NDArray[np.int64]) -> None:
        self.store, self.shards, self.rows = store, list(shards), rows
        self._groups: dict[str, zarr.Group] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        name = self.shards[i]
        if name not in self._groups:
            self._groups[name] = self.store.open_shard(name)
        row = int(self.rows[i])
        x = read_signal(self._groups[name], slice(row, row + 1))[0]
        return torch.from_numpy(x), i


# --------------------------------------------------------------------------- timing


@dataclass
class Run:
    """One configuration: how to make an iterable of batches, and its timings."""

    name: str
    reader: str
    workers: int
    collate: str
    make: Callable[[int], Iterable[Any]]
    n_expected: int
    blosc_threads: int | None = None
    seconds: list[float] | None = None
    cpu_s: list[float] | None = None
    exact_once: bool = True


def _cpu_now() -> float:
    """CPU seconds of this process and its children: live ones (persistent DataLoader workers)
    and reaped ones (workers of finished passes)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    live = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            t = child.cpu_times()
        except psutil.Error:  # exited meanwhile: its time is in RUSAGE_CHILDREN once reaped
            continue
        live += t.user + t.system
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime + live


def time_pass(run: Run, epoch: int) -> None:
    """One pass over the run's records; records wall and CPU seconds and whether every record
    came exactly once."""
    t0, c0 = time.perf_counter(), _cpu_now()
    seen: list[npt.NDArray[np.int64]] = []
    for batch in run.make(epoch):
        index = batch[-1]
        seen.append(np.asarray(index, dtype=np.int64).reshape(-1))
    wall, cpu = time.perf_counter() - t0, _cpu_now() - c0
    ids = np.concatenate(seen) if seen else np.zeros(0, dtype=np.int64)
    run.exact_once = run.exact_once and len(ids) == run.n_expected and len(np.unique(ids)) == len(ids)
    run.seconds = [*(run.seconds or []), wall]
    run.cpu_s = [*(run.cpu_s or []), cpu]


def summary(run: Run) -> dict[str, Any]:
    assert run.seconds and run.cpu_s
    best = min(range(len(run.seconds)), key=lambda k: run.seconds[k] if run.seconds else 0.0)
    seconds = run.seconds[best]
    rate = run.n_expected / seconds
    return {
        "reader": run.reader,
        "workers": run.workers,
        "collate": run.collate,
        "blosc_threads": run.blosc_threads,
        "batch_size": BATCH,
        "n_records": run.n_expected,
        "seconds": seconds,
        "seconds_all": [round(s, 3) for s in run.seconds],
        "records_per_s": rate,
        "records_per_s_per_core": rate / max(1, run.workers),
        "records_per_cpu_s": run.n_expected / run.cpu_s[best],
        "exact_once": run.exact_once,
    }


# --------------------------------------------------------------------------- configurations


def _ours(inputs: Inputs, workers: int, collate_in_dataset: bool, blosc_threads: int) -> Callable[[int], Any]:
    loader = make_loader(
        inputs.store_base,
        PROFILE,
        inputs.index,
        "train",
        batch_size=BATCH,
        shuffle=True,
        seed=0,
        num_workers=workers,
        collate_in_dataset=collate_in_dataset,
        blosc_threads=blosc_threads,
    )

    def make(epoch: int) -> Any:
        loader.epoch = epoch
        return loader

    return make


def _npz(folder: Path, n: int, workers: int) -> Callable[[int], Any]:
    ds = NpzDataset(folder, n)

    def make(epoch: int) -> Any:
        gen = torch.Generator().manual_seed(epoch)
        return DataLoader(ds, batch_size=BATCH, shuffle=True, num_workers=workers, generator=gen)

    return make


def _zarr(inputs: Inputs, n: int) -> Callable[[int], Any]:
    store = ShardStore(inputs.store_base / PROFILE, PROFILE)
    labels = read_labels(store)
    assert labels is not None
    pick = np.random.default_rng(0).permutation(len(labels.row))[:n]
    ds = ZarrRecordDataset(store, [labels.shard[i] for i in pick], labels.row[pick])

    def make(epoch: int) -> Any:
        gen = torch.Generator().manual_seed(epoch)
        return DataLoader(ds, batch_size=BATCH, shuffle=True, num_workers=0, generator=gen)

    return make


def configurations(inputs: Inputs, workers: Sequence[int], zarr_records: int) -> list[Run]:
    n, most = inputs.n_records, max(workers)
    runs = [Run(f"ours-w{w}", "ours", w, "dataset", _ours(inputs, w, True, 1), n, 1) for w in workers]
    if most:
        blosc2 = _ours(inputs, most, True, 2)
        runs.append(Run(f"ours-w{most}-blosc2", "ours", most, "dataset", blosc2, n, 2))
    for w in sorted({0, most}):
        runs.append(Run(f"ours-w{w}-collate", "ours", w, "loader", _ours(inputs, w, False, 1), n, 1))
    runs.append(
        Run("zarr-record-w0", "zarr per record", 0, "loader", _zarr(inputs, zarr_records), zarr_records)
    )
    for w in sorted({0, most}):
        compressed, plain = _npz(inputs.npz_compressed, n, w), _npz(inputs.npz_plain, n, w)
        runs.append(Run(f"npz-compressed-w{w}", "npz compressed", w, "loader", compressed, n))
        runs.append(Run(f"npz-w{w}", "npz", w, "loader", plain, n))
    return runs


def decode_floor(inputs: Inputs, repeats: int) -> dict[str, Any]:
    """Records/s of Blosc decoding alone, every block once, on one thread: the ceiling for any
    reader of this store on one core."""
    store = ShardStore(inputs.store_base / PROFILE, PROFILE)
    shards = [store.signal_blocks(name) for name in sorted(store.load_manifest().shards)]
    reader = BlockReader(shards, blosc_threads=1)
    best = 0.0
    try:
        for _ in range(repeats):
            t0, n = time.process_time(), 0
            for k, sig in enumerate(shards):
                out = np.empty((sig.block_rows, sig.channels, sig.length), dtype=sig.dtype)
                rows = np.arange(sig.block_rows, dtype=np.int64)
                for block in range(sig.n_blocks):
                    reader.read(k, block, rows, out)
                    n += min(sig.block_rows, sig.n_rows - block * sig.block_rows)
            best = max(best, n / (time.process_time() - t0))
    finally:
        reader.close()
    return {"records_per_cpu_s": best, "codec": sorted({s.codec for s in shards})}


def check_values(inputs: Inputs, n_check: int = 16) -> dict[str, Any]:
    """The first batch of ours against the .npz files and ``read_signal``: max |diff| in mV."""
    loader = make_loader(inputs.store_base, PROFILE, inputs.index, "train", batch_size=n_check, seed=0)
    x, y, index = next(iter(loader))
    store = ShardStore(inputs.store_base / PROFILE, PROFILE)
    labels = read_labels(store)
    assert labels is not None
    diff_npz = diff_store = diff_y = 0.0
    for k, i in enumerate(index.tolist()):
        with np.load(inputs.npz_compressed / f"{i:06d}.npz") as z:
            diff_npz = max(diff_npz, float(np.max(np.abs(z["signal"] - x[k].numpy()))))
        group = store.open_shard(labels.shard[i])
        ref = read_signal(group, slice(int(labels.row[i]), int(labels.row[i]) + 1))[0]
        diff_store = max(diff_store, float(np.max(np.abs(ref - x[k].numpy()))))
        diff_y = max(diff_y, float(np.max(np.abs(labels.y[i] - y[k].numpy()))))
    return {
        "n_checked": len(index),
        "max_abs_diff_npz_mv": diff_npz,  # int16 storage at scale_mv: at most half a step
        "max_abs_diff_read_signal_mv": diff_store,
        "max_abs_diff_labels": diff_y,
        "dtype": str(x.dtype),
        "shape": list(x.shape[1:]),
    }


# --------------------------------------------------------------------------- results


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
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["python", *sys.argv]),
        "profile": PROFILE,
        "n_records": args.n,
        "repeats": args.repeats,
        "batch_size": BATCH,
        "timing": "one pass per measurement incl. worker start-up (fork); best of the repeats",
        "cpus": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            "numpy": np.__version__,
            "torch": torch.__version__,
            "zarr": zarr.__version__,
            "numcodecs": numcodecs.__version__,
        },
    }


def _cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
    except OSError:
        return platform.processor()
    return next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "")


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


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    args.work.mkdir(parents=True, exist_ok=True)
    inputs = build_inputs(args.source, args.params, args.work, args.n)
    workers = sorted(set(args.workers))
    runs = configurations(inputs, workers, min(args.zarr_records, inputs.n_records))
    for run in runs:  # warm-up: page cache, imports, first-call costs
        time_pass(run, epoch=0)
        run.seconds, run.cpu_s = [], []
    for rep in range(args.repeats):  # interleaved, so a busy spell hits every configuration alike
        for run in runs:
            time_pass(run, epoch=rep + 1)
    results = {run.name: summary(run) for run in runs}
    store_bytes = tree_bytes(inputs.store_base / PROFILE / "shards")
    npz_c, npz_p = tree_bytes(inputs.npz_compressed), tree_bytes(inputs.npz_plain)
    storage = {
        "raw_bytes": inputs.raw_bytes,
        "store_bytes": store_bytes,
        "store_ratio": store_bytes / inputs.raw_bytes,
        "npz_compressed_bytes": npz_c,
        "npz_compressed_ratio": npz_c / inputs.raw_bytes,
        "npz_bytes": npz_p,
        "npz_ratio": npz_p / inputs.raw_bytes,
    }
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
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    p.add_argument("--n", type=int, default=2000, help="records (replicated PTB-XL), default 2000")
    p.add_argument("--work", type=Path, default=REPO / "benchmarks" / "_work" / "loader")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "loader" / "results.json")
    p.add_argument("--source", type=Path, default=SHARED_DATA / "ptbxl", help="a PTB-XL tree (records500)")
    p.add_argument("--params", type=Path, default=REPO / "params.yaml")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--zarr-records", type=int, default=512, help="records read one zarr call each")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    before = code_version()
    result = run_all(args)
    return publish(result, args.out, markdown, before)


if __name__ == "__main__":
    sys.exit(main())
