"""Every configuration the benchmark times: ours (0..N workers, dataset- or loader-collated, 1 or 2 Blosc
threads), one zarr call per record, and ``.npz`` per record (compressed and plain)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from benchmarks.ingest.inputs import PROFILE
from benchmarks.loader.baselines import NpzDataset, ZarrRecordDataset
from benchmarks.loader.inputs import BATCH, Inputs
from benchmarks.loader.timing import Run
from pipeline.dataset.loader import make_loader
from pipeline.store.labels import read_labels
from pipeline.store.local import ShardStore


def _ours(inputs: Inputs, workers: int, collate_in_dataset: bool, blosc_threads: int) -> Callable[[int], Any]:
    """The training loader, shuffled with seed 0; the same loader object for every epoch."""
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
    """The first ``n`` ``.npz`` files of ``folder`` through a shuffling ``DataLoader`` seeded by the epoch."""
    ds = NpzDataset(folder, n)

    def make(epoch: int) -> Any:
        gen = torch.Generator().manual_seed(epoch)
        return DataLoader(ds, batch_size=BATCH, shuffle=True, num_workers=workers, generator=gen)

    return make


def _zarr(inputs: Inputs, n: int) -> Callable[[int], Any]:
    """``n`` records picked at random (seed 0), one zarr call each, in the main process."""
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
    """The runs in the order they are timed (and printed); the variants use the most workers asked for."""
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
