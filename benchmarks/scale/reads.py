"""Reads of the same shards from local disk and from S3: the in-order training loader and raw block
reads, with S3 requests counted from the moto server's log."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from benchmarks.scale.options import LOADER_BATCH, PROFILE, SPLIT, Options
from benchmarks.scale.services import RequestLog, Services
from pipeline.dataset.loader import make_loader
from pipeline.dataset.splits import index_from_store, write_index
from pipeline.store.base import Store
from pipeline.store.blocks import BlockReader, ShardSignal
from pipeline.store.remote import open_store
from pipeline.store.root import StoreRoot


def whole_store_index(store: Store, path: Path) -> Path:
    """A split index with one split, ``all``, holding every live record of the store (no folds)."""
    index = index_from_store(store, {SPLIT: 1.0}, seed=0, fold_map={}, fold_key=None)
    write_index(path, index.rows, index.header)
    return path


def loader_pass(root: StoreRoot, index: Path, digest: bool) -> tuple[float, float, int, str]:
    """Open the in-order loader and read every batch: (open s, read s, records, digest of x and y)."""
    t0 = time.perf_counter()
    loader = make_loader(root, PROFILE, index, SPLIT, batch_size=LOADER_BATCH, shuffle=False, num_workers=0)
    t1 = time.perf_counter()
    h = hashlib.sha256()
    n = 0
    for x, y, _ in loader:
        n += int(x.shape[0])
        if digest:
            h.update(x.numpy().tobytes())
            h.update(y.numpy().tobytes())
    return t1 - t0, time.perf_counter() - t1, n, h.hexdigest()


def block_pass(store: Store) -> tuple[float, float, int, int]:
    """Describe every shard's signal, then read every block raw (int16, no dequantising):
    (open s, read s, records, compressed bytes read)."""
    t0 = time.perf_counter()
    shards = [store.signal_blocks(name) for name in sorted(store.load_manifest().shards)]
    t1 = time.perf_counter()
    reader = BlockReader(shards)
    n = 0
    try:
        for i, sig in enumerate(shards):
            n += read_shard_blocks(reader, i, sig)
    finally:
        reader.close()
    return t1 - t0, time.perf_counter() - t1, n, compressed_bytes(shards)


def read_shard_blocks(reader: BlockReader, i: int, sig: ShardSignal) -> int:
    """Every block of shard ``i`` into one reused ``(block_rows, C, L)`` buffer; returns its rows."""
    out: npt.NDArray[Any] = np.empty((sig.block_rows, sig.channels, sig.length), dtype=sig.dtype)
    for block in range(sig.n_blocks):
        rows = np.arange(min(sig.block_rows, sig.n_rows - block * sig.block_rows), dtype=np.int64)
        reader.read(i, block, rows, out[: len(rows)])
    return sig.n_rows


def compressed_bytes(shards: Sequence[ShardSignal]) -> int:
    """Bytes of the written signal blocks (what the block reads fetch), from the shard indexes."""
    total = 0
    for sig in shards:
        written = sig.index[:, 0] != np.iinfo(np.uint64).max
        total += int(sig.index[written, 1].sum())
    return total


def measure_reads(root: StoreRoot, index: Path, opt: Options, log: RequestLog | None) -> dict[str, Any]:
    """Best-of-``read_repeats`` loader and block-read figures for one store, with S3 request counts."""
    loader_runs, block_runs = [], []
    requests: dict[str, dict[str, int]] = {}
    for _ in range(opt.read_repeats):
        mark = log.mark() if log else 0
        loader_runs.append(loader_pass(root, index, digest=False))
        requests["loader"] = log.since(mark) if log else {}
        mark = log.mark() if log else 0
        block_runs.append(block_pass(open_store(root, PROFILE)))
        requests["blocks"] = log.since(mark) if log else {}
    lo = min(loader_runs, key=lambda r: r[0] + r[1])
    bl = min(block_runs, key=lambda r: r[0] + r[1])
    n = lo[2]
    return {
        "loader": {
            "open_s": lo[0],
            "read_s": lo[1],
            "n_records": n,
            "records_per_s": n / lo[1],
            "records_per_s_incl_open": n / (lo[0] + lo[1]),
            "seconds_all": [round(r[0] + r[1], 4) for r in loader_runs],
            "requests": requests["loader"],
        },
        "blocks": {
            "open_s": bl[0],
            "read_s": bl[1],
            "n_records": bl[2],
            "records_per_s": bl[2] / bl[1],
            "records_per_s_incl_open": bl[2] / (bl[0] + bl[1]),
            "compressed_bytes": bl[3],
            "compressed_bytes_per_record": bl[3] / max(bl[2], 1),
            "seconds_all": [round(r[0] + r[1], 4) for r in block_runs],
            "requests": requests["blocks"],
        },
    }


def per_request(reads: Mapping[str, Any], n_shards: int) -> dict[str, float]:
    """S3 requests per record and per shard for the object-store reads (GET includes HEAD/LIST)."""
    out: dict[str, float] = {}
    for what in ("loader", "blocks"):
        counts = reads[what]["requests"]
        total = sum(counts.values())
        out[f"{what}_requests"] = total
        out[f"{what}_requests_per_record"] = total / max(reads[what]["n_records"], 1)
        out[f"{what}_requests_per_shard"] = total / max(n_shards, 1)
    return out


def compare_reads(
    local: StoreRoot, remote: StoreRoot, index: Path, opt: Options, svc: Services
) -> dict[str, Any]:
    """Reads of the same store content from local disk and from S3, and their ratios (object/local)."""
    digests = {k: loader_pass(r, index, digest=True)[3] for k, r in (("local", local), ("s3", remote))}
    out: dict[str, Any] = {"index": str(index), "batch_size": LOADER_BATCH}
    out["local"] = measure_reads(local, index, opt, None)
    out["s3"] = measure_reads(remote, index, opt, RequestLog(svc.moto_log))
    n_shards = len(open_store(local, PROFILE).load_manifest().shards)
    out["n_shards"] = n_shards
    out["s3_requests"] = per_request(out["s3"], n_shards)
    out["ratios"] = {
        f"{what}_{key}": out["s3"][what][key] / out["local"][what][key]
        for what in ("loader", "blocks")
        for key in ("records_per_s", "records_per_s_incl_open")
    }
    out["same_batches"] = digests["local"] == digests["s3"]
    return out
