"""Torch loading over the shard store: aligned block reads, a shuffle buffer, decode in workers.

Why blocks: a zarr call costs a few milliseconds whatever it reads, and the signal's inner
chunks hold ``records_per_chunk`` records compressed together, so reading one record means
decoding its whole chunk. Blocks come from the store (:meth:`pipeline.store.base.Store.signal_blocks`
describes a shard's signal once, in the parent process; :class:`pipeline.store.blocks.BlockReader`
decodes blocks straight into the buffer); this package knows nothing of the on-disk layout.

* :mod:`pipeline.dataset.records`: the records of a split (:func:`load_split`).
* :mod:`pipeline.dataset.training_set`: :class:`ShardBlockDataset`, the shuffled training order.
* :mod:`pipeline.dataset.eval_set`: :class:`ShardRecordDataset`, every record in index order.
* here: :func:`make_loader`, which builds either behind a :class:`ShardLoader`.

Blosc decodes on the calling thread by default (``blosc_threads=1``): several workers already
use the cores, and a forked worker must not touch the Blosc thread pool it inherits from its
parent.

CUDA: ``pin_memory=None`` pins batches when CUDA is available, so that
``x.to(device, non_blocking=True)`` overlaps the copy with compute; without CUDA nothing is
pinned (tested on CPU only).
"""

from __future__ import annotations

import functools
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from numcodecs import blosc
from torch.utils.data import DataLoader, Dataset

from pipeline.dataset.eval_set import Sample, ShardRecordDataset
from pipeline.dataset.records import LoaderError, SplitRecords, StaleIndexError, load_split
from pipeline.dataset.training_set import Batch, RingRef, ShardBlockDataset, SharedRing
from pipeline.store.remote import open_store
from pipeline.store.root import StoreRoot

__all__ = [
    "Batch",
    "LoaderError",
    "Sample",
    "ShardBlockDataset",
    "ShardLoader",
    "ShardRecordDataset",
    "SplitRecords",
    "StaleIndexError",
    "init_worker",
    "load_split",
    "make_loader",
    "resolve_pin_memory",
]


def resolve_pin_memory(pin_memory: bool | None) -> bool:
    """``None`` → pin when CUDA is available (pinned host memory makes ``.to(cuda,
    non_blocking=True)`` asynchronous); pinning without CUDA is never asked of torch."""
    if pin_memory is None:
        return torch.cuda.is_available()
    return bool(pin_memory) and torch.cuda.is_available()


def init_worker(blosc_threads: int, worker_id: int = 0) -> None:
    """DataLoader ``worker_init_fn``: Blosc threads per worker.

    With 1 thread Blosc runs with a private context and never touches the global thread pool
    that a forked worker inherits from its parent in an unknown state.
    """
    if blosc_threads <= 1:
        blosc.use_threads = False
    else:
        blosc.set_nthreads(blosc_threads)
        blosc.use_threads = True


class ShardLoader:
    """A DataLoader over one split of a store, with an ``epoch`` to reshuffle by and a length
    in batches. Iterating yields ``(x (B, C, L) float32 mV, y (B, K) float32, index (B,) int64)``."""

    def __init__(self, records: SplitRecords, dataset: Dataset[Any], loader: DataLoader[Any]) -> None:
        self.records = records
        self.dataset = dataset
        self.loader = loader

    @property
    def epoch(self) -> int:
        return self.dataset.epoch if isinstance(self.dataset, ShardBlockDataset) else 0

    @epoch.setter
    def epoch(self, value: int) -> None:
        self.set_epoch(value)

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle for ``epoch`` (a no-op for the in-order evaluation loader)."""
        if isinstance(self.dataset, ShardBlockDataset):
            self.dataset.set_epoch(epoch)

    @property
    def record_ids(self) -> tuple[str, ...]:
        """Record id of each ``index`` value the loader yields."""
        return self.records.record_id

    @property
    def vocabulary(self) -> tuple[str, ...]:
        return self.records.vocabulary

    def __iter__(self) -> Iterator[Batch]:
        # torch checks the batches yielded against the length it last saw; the length changes
        # with the epoch (blocks dealt to workers differ), so it must see this epoch's.
        if isinstance(self.dataset, ShardBlockDataset):
            len(self.loader)
        ring = self.dataset.ring if isinstance(self.dataset, ShardBlockDataset) else None
        if ring is None:
            return iter(self.loader)
        # Before iter(), which starts this epoch's prefetching: no slot holds a batch of it yet.
        ring.reset()
        return self._copy_out(iter(self.loader), ring)

    def _copy_out(self, batches: Iterator[Any], ring: SharedRing) -> Iterator[Batch]:
        for x, y, index in batches:
            yield (ring.copy_out(x, self.loader.pin_memory) if isinstance(x, RingRef) else x), y, index

    def __len__(self) -> int:
        ds = self.dataset
        if isinstance(ds, ShardBlockDataset) and ds.batch_size is None:
            b = int(self.loader.batch_size or 1)
            counts = ds.records_per_worker()
            return sum(c // b + int(c % b > 0 and not self.loader.drop_last) for c in counts)
        return len(self.loader)


def make_loader(
    store_root: StoreRoot | Path,
    profile: str,
    index_path: Path,
    split: str,
    batch_size: int = 64,
    shuffle: bool = True,
    seed: int = 0,
    num_workers: int = 0,
    pin_memory: bool | None = None,
    *,
    shuffle_buffer: int = 512,
    drop_last: bool = False,
    collate_in_dataset: bool = True,
    blosc_threads: int = 1,
    rank: int = 0,
    world_size: int = 1,
    prefetch_factor: int | None = None,
    persistent_workers: bool = True,
    shared_ring: bool = True,
    multiprocessing_context: str | None = None,
    record_weights: Any = None,
) -> ShardLoader:
    """A loader over split ``split`` of ``<store_root>/<profile>`` as listed in ``index_path``.

    ``shuffle`` → :class:`ShardBlockDataset` (block order and buffer shuffled per epoch from
    ``seed``); otherwise :class:`ShardRecordDataset`, every record in index order.
    ``collate_in_dataset`` makes the dataset yield whole batches (no per-sample collate);
    ``blosc_threads`` per decoding process (1: on the calling thread; more: Blosc's thread
    pool, sized so in workers, numcodecs' own setting in the main process); ``pin_memory``
    None pins when CUDA is available. ``rank``/``world_size`` deal the training blocks to DDP
    ranks; the in-order evaluation loader gives every rank the whole split.
    ``persistent_workers`` keeps worker processes from one epoch to the next (the epoch is
    shared with them), which saves their start-up every epoch. ``shared_ring`` (with
    persistent workers and whole batches) lets workers reuse a few shared-memory batches
    instead of making fresh ones (see :class:`SharedRing`). ``record_weights`` (training only,
    one per split record in split order): sample records in proportion to them each epoch
    instead of once each (:meth:`ShardBlockDataset.repeats`; a class-balanced sampler).
    """
    records = load_split(open_store(store_root, profile), Path(index_path), split)
    common = _loader_options(num_workers, pin_memory, seed, blosc_threads, prefetch_factor)
    if num_workers:
        common.update(persistent_workers=persistent_workers, multiprocessing_context=multiprocessing_context)
    if not shuffle:
        ds_eval = ShardRecordDataset(records, blosc_threads)
        return ShardLoader(
            records, ds_eval, DataLoader(ds_eval, batch_size=batch_size, shuffle=False, **common)
        )
    ds = ShardBlockDataset(
        records,
        batch_size=batch_size if collate_in_dataset else None,
        shuffle=True,
        seed=seed,
        shuffle_buffer=shuffle_buffer,
        drop_last=drop_last,
        num_workers=num_workers,
        rank=rank,
        world_size=world_size,
        blosc_threads=blosc_threads,
        record_weights=record_weights,
    )
    if collate_in_dataset:
        if num_workers and persistent_workers and shared_ring:
            slots = (prefetch_factor or 2) + 1  # queued batches + one being filled
            ds.ring = _make_ring(num_workers, slots, (batch_size, *records.sample_shape))
        return ShardLoader(records, ds, DataLoader(ds, batch_size=None, **common))
    return ShardLoader(records, ds, DataLoader(ds, batch_size=batch_size, drop_last=drop_last, **common))


def _loader_options(
    num_workers: int, pin_memory: bool | None, seed: int, blosc_threads: int, prefetch_factor: int | None
) -> dict[str, Any]:
    """DataLoader options both datasets share."""
    common: dict[str, Any] = {
        "num_workers": num_workers,
        "pin_memory": resolve_pin_memory(pin_memory),
        "worker_init_fn": functools.partial(init_worker, blosc_threads) if num_workers else None,
        "generator": torch.Generator().manual_seed(seed),
    }
    if num_workers:
        common["prefetch_factor"] = prefetch_factor
    return common


def _make_ring(n_workers: int, slots: int, shape: tuple[int, ...]) -> SharedRing | None:
    """A ring when shared memory has room for it (with as much again left for ordinary
    transfers); otherwise None (fresh shared batches)."""
    if sys.platform != "linux" or not shape[-1]:
        return None
    try:
        free = shutil.disk_usage("/dev/shm").free
    except OSError:
        return None
    need = SharedRing.nbytes(n_workers, slots, shape)
    return SharedRing(n_workers, slots, shape) if 2 * need < free else None
