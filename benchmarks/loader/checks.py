"""What the timings are read against: the Blosc decoding floor of the store, and the loader's values
checked against the ``.npz`` files, ``read_signal`` and the label set."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from benchmarks.ingest.inputs import PROFILE
from benchmarks.loader.inputs import Inputs
from pipeline.dataset.loader import make_loader
from pipeline.store.blocks import BlockReader
from pipeline.store.labels import read_labels
from pipeline.store.local import ShardStore, read_signal


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
