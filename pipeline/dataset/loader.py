"""Torch loading over the shard store: aligned block reads, a shuffle buffer, decode in workers.

Why blocks: a zarr call costs a few milliseconds whatever it reads, and the signal's inner
chunks hold ``records_per_chunk`` records compressed together, so reading one record means
decoding its whole chunk. Training therefore reads whole inner chunks ("blocks"), in a seeded
random block order, keeps them int16 in a buffer of ``shuffle_buffer`` records, shuffles the
records within that buffer, and dequantises each batch with one multiply into float32 mV.

Blocks come from the store (:meth:`pipeline.store.base.Store.signal_blocks` describes a shard's
signal once, in the parent process; :class:`pipeline.store.blocks.BlockReader` decodes blocks
straight into the buffer); this module knows nothing of the on-disk layout.

Datasets:

* :class:`ShardBlockDataset` (training): an ``IterableDataset`` over the (shard, block) units of
  one split, shuffled per epoch from ``(seed, epoch)``, split across DataLoader workers and DDP
  ranks. Yields whole batches ``(x (B, C, L) float32 mV, y (B, K) float32, index (B,) int64)``
  (use ``DataLoader(batch_size=None)``), or single samples ``(x (C, L), y (K,), index)`` when
  ``batch_size`` is None. ``index`` is the record's position in the split (see
  :attr:`SplitRecords.record_id`).
* :class:`ShardRecordDataset` (evaluation): map-style, every record of a split in index order,
  also read block by block.

Blosc decodes on the calling thread by default (``blosc_threads=1``): several workers already
use the cores, and a forked worker must not touch the Blosc thread pool it inherits from its
parent. Fresh memory for a batch costs about as much as decoding it (the kernel zeroes and maps
every page; a fresh shared-memory batch costs more still), so batches are reused once nothing
holds them: the main process keeps a few (:class:`_BatchPool`), and with persistent workers
each worker fills a few shared-memory batches in turn and sends only their slot number
(:class:`_SharedRing`); the consumer gets views, which stay valid as long as it holds them.

CUDA: ``pin_memory=None`` pins batches when CUDA is available, so that
``x.to(device, non_blocking=True)`` overlaps the copy with compute; without CUDA nothing is
pinned (tested on CPU only).
"""

from __future__ import annotations

import functools
import shutil
import sys
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from numcodecs import blosc
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from pipeline.core.errors import PipelineError
from pipeline.dataset.splits import read_index
from pipeline.store.base import Store
from pipeline.store.blocks import BlockReader, ShardSignal
from pipeline.store.labels import read_labels
from pipeline.store.manifest import ShardEntry
from pipeline.store.remote import open_store
from pipeline.store.root import StoreRoot

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
Sample = tuple[torch.Tensor, torch.Tensor, int]


class LoaderError(PipelineError, RuntimeError):
    """An index, store or loader setting that cannot be loaded (says which and why)."""


class StaleIndexError(LoaderError):
    """The split index was made from other labels than the store holds now."""


# --------------------------------------------------------------------------- the records of a split


@dataclass(frozen=True)
class SplitRecords:
    """The records of one split: position ``i`` is ``record_id[i]`` at ``shards[shard[i]]``, row
    ``row[i]``, with labels ``y[i]`` ``(K,)`` float32 over ``vocabulary``."""

    split: str
    record_id: tuple[str, ...]
    shard: npt.NDArray[np.int64]
    row: npt.NDArray[np.int64]
    y: npt.NDArray[np.float32]
    vocabulary: tuple[str, ...]
    shards: tuple[ShardSignal, ...]

    def __len__(self) -> int:
        return len(self.record_id)

    @property
    def sample_shape(self) -> tuple[int, int]:
        """``(C, L)`` of every record (``(0, 0)`` for an empty split)."""
        if not self.shards:
            return (0, 0)
        return (self.shards[0].channels, self.shards[0].length)


def load_split(store: Store, index_path: Path, split: str) -> SplitRecords:
    """Join a split of the index with the store's current unified labels.

    Raises :class:`StaleIndexError` when the index was made from other labels (re-run the split
    stage) and :class:`LoaderError` when it names rows the store does not hold.
    """
    index = read_index(index_path)
    known = index.header.get("fractions", {})
    if split not in known:
        raise LoaderError(f"{index_path}: no split {split!r}; the index has {sorted(known)}")
    made_for = index.header.get("profile", store.profile)
    if made_for != store.profile:
        raise LoaderError(f"{index_path}: an index of profile {made_for!r}, not {store.profile!r}")
    labels = read_labels(store)
    if labels is None:
        raise LoaderError(f"{store.location()}: no unified labels; run ingest first")
    made_from = index.header.get("labels_digest")
    if made_from != labels.digest:
        raise StaleIndexError(
            f"{index_path}: made from labels {str(made_from)[:12]}, the store now has {labels.digest[:12]}; "
            "re-run the split stage"
        )
    rows = index.split_rows(split)
    position = {(s, int(r)): i for i, (s, r) in enumerate(zip(labels.shard, labels.row, strict=True))}
    manifest = store.load_manifest()
    names = sorted({r.shard for r in rows})
    for name in names:
        if name not in manifest.shards:
            raise LoaderError(f"{index_path}: shard {name} is not in {store.location('manifest.json')}")
    shard_no = {name: i for i, name in enumerate(names)}
    picks = []
    for r in rows:
        pos = position.get((r.shard, r.row))
        if pos is None or labels.record_id[pos] != r.record_id:
            raise LoaderError(f"{index_path}: {r.record_id} is not live at {r.shard} row {r.row}")
        picks.append(pos)
    shards = _describe_all(store, names)
    _check_same_shape(shards, store)
    _check_live(rows, manifest.shards, index_path)
    take = np.asarray(picks, dtype=np.int64)
    return SplitRecords(
        split=split,
        record_id=tuple(r.record_id for r in rows),
        shard=np.asarray([shard_no[r.shard] for r in rows], dtype=np.int64),
        row=np.asarray([r.row for r in rows], dtype=np.int64),
        y=labels.y[take].astype(np.float32)
        if len(take)
        else np.zeros((0, len(labels.vocabulary)), np.float32),
        vocabulary=labels.vocabulary,
        shards=shards,
    )


def _describe_all(store: Store, names: Sequence[str]) -> tuple[ShardSignal, ...]:
    """:meth:`Store.signal_blocks` of each shard; concurrently on object storage, where each costs
    several sequential round trips (metadata, shard index) that would otherwise add up per shard."""
    if not store.is_remote or len(names) < 2:
        return tuple(store.signal_blocks(name) for name in names)
    with ThreadPoolExecutor(max_workers=min(16, len(names))) as pool:
        return tuple(pool.map(store.signal_blocks, names))


def _check_same_shape(shards: Sequence[ShardSignal], store: Store) -> None:
    shapes = {(s.channels, s.length) for s in shards}
    if len(shapes) > 1:
        raise LoaderError(f"{store.location()}: shards hold records of different shapes {sorted(shapes)}")


def _check_live(rows: Sequence[Any], shards: Mapping[str, ShardEntry], index_path: Path) -> None:
    live = {name: set(entry.live_rows().tolist()) for name, entry in shards.items()}
    for r in rows:
        if r.row not in live[r.shard]:
            raise LoaderError(f"{index_path}: {r.record_id} at {r.shard} row {r.row} is superseded")


# --------------------------------------------------------------------------- output buffers


def _shared_batch(shape: tuple[int, ...]) -> torch.Tensor:
    """A float32 tensor made in shared memory at once (as torch's own collate does in a worker),
    so that handing it to the main process does not copy it a second time."""
    new_shared = getattr(torch.UntypedStorage, "_new_shared", None)
    if new_shared is None:  # a torch without it: share (and copy) an ordinary tensor
        x = torch.empty(shape, dtype=torch.float32)
        x.share_memory_()  # type: ignore[no-untyped-call]
        return x
    storage: torch.UntypedStorage = new_shared(int(np.prod(shape)) * 4)
    return torch.empty(0, dtype=torch.float32).set_(storage).view(shape)


def _storage_users(t: torch.Tensor) -> int | None:
    """Strong references to ``t``'s storage (tensors, views, numpy arrays, the temporary
    storage object made to ask, torch's own for shared memory); None when torch cannot tell.
    Compare with the count taken when ``t`` was made, not with a constant."""
    count = getattr(torch._C, "_storage_Use_Count", None)
    return None if count is None else int(count(t.untyped_storage()._cdata))


class _BatchPool:
    """Batch tensors of one process, each reused once nothing outside the pool holds it.

    Fresh memory for every batch costs as much as decoding it (the kernel zeroes and maps
    every page), so the main process (``num_workers=0``) hands out views of a few pooled
    tensors and reuses one only when its storage has no other user: no view, no numpy array,
    no autograd graph. Without a way to count storage users it allocates every batch.
    """

    def __init__(self, shape: tuple[int, ...], size: int = 4) -> None:
        self.shape = shape
        self.size = size
        self._tensors: list[tuple[torch.Tensor, int]] = []  # (tensor, its users when alone)

    def take(self, n: int) -> torch.Tensor:
        """A float32 tensor ``(n, *shape[1:])``, ``n <= shape[0]``."""
        for t, alone in self._tensors:
            if _storage_users(t) == alone:
                return t[:n]
        t = torch.empty(self.shape, dtype=torch.float32)
        alone_now = _storage_users(t)
        if len(self._tensors) < self.size and alone_now is not None:
            self._tensors.append((t, alone_now))
        return t[:n]  # always a view: a view is a user the count can see


@dataclass(frozen=True)
class _RingRef:
    """A batch of ``n`` records left in slot ``slot`` of worker ``worker``'s ring."""

    worker: int
    slot: int
    n: int


class _SharedRing:
    """A few shared-memory batch tensors per DataLoader worker, reused from batch to batch.

    A worker writes a batch into a free slot and sends only a :class:`_RingRef`; the main
    process lends the consumer a view of the slot and frees the slot once nothing holds its
    storage any more. ``state[w, s]`` is 0 (free) or 1 (taken: being filled, in flight, or
    lent). A worker that finds no free slot (the consumer keeps its batches) makes a fresh
    shared batch as before, so a full ring never blocks. Each slot has one writer, its worker,
    which fills one batch at a time. Used with persistent workers only (one iterator at a
    time, whose new epoch starts after the old one is drained).
    """

    def __init__(self, n_workers: int, slots: int, shape: tuple[int, ...]) -> None:
        self.tensors = [[_shared_batch(shape) for _ in range(slots)] for _ in range(n_workers)]
        self._alone = [[_storage_users(t) for t in row] for row in self.tensors]
        self.state = torch.zeros((n_workers, slots), dtype=torch.int8)
        self.state.share_memory_()  # type: ignore[no-untyped-call]
        self._lent: set[tuple[int, int]] = set()  # main process only
        self.lent_total = 0  # batches handed out from the ring (main process)

    @staticmethod
    def nbytes(n_workers: int, slots: int, shape: tuple[int, ...]) -> int:
        return n_workers * slots * int(np.prod(shape)) * 4

    def take(self, worker: int) -> int | None:
        """Worker side: claim a free slot of ``worker``, or None."""
        state = self.state.numpy()
        for slot in range(state.shape[1]):
            if state[worker, slot] == 0:
                state[worker, slot] = 1
                return slot
        return None

    def lend(self, ref: _RingRef) -> torch.Tensor:
        """Main side: the batch of ``ref``, a view that keeps its slot taken while it lives."""
        self._lent.add((ref.worker, ref.slot))
        self.lent_total += 1
        return self.tensors[ref.worker][ref.slot][: ref.n]

    def reclaim(self) -> None:
        """Main side: free the lent slots nothing holds any more."""
        state = self.state.numpy()
        for w, slot in list(self._lent):
            if _storage_users(self.tensors[w][slot]) == self._alone[w][slot]:
                state[w, slot] = 0
                self._lent.discard((w, slot))

    def reset(self) -> None:
        """Main side, before an epoch's iterator starts: free every slot that is not lent."""
        state = self.state.numpy()
        for w, slot in zip(*np.nonzero(state), strict=True):
            if (int(w), int(slot)) not in self._lent:
                state[w, slot] = 0
        self.reclaim()


def _dequantise(raw: npt.NDArray[Any], scale_mv: float, out: npt.NDArray[np.float32]) -> None:
    """int16 steps → float32 mV with one multiply (float32 storage is copied as is)."""
    if raw.dtype == np.int16:
        np.multiply(raw, np.float32(scale_mv), out=out)
    else:
        out[...] = raw


# --------------------------------------------------------------------------- training dataset


class ShardBlockDataset(IterableDataset[Any]):
    """Training order over one split: seeded block order per epoch, records shuffled within a
    buffer of ``shuffle_buffer`` records (see the module docstring for what it yields).

    The order is a function of ``(seed, epoch, num_workers, rank, world_size)``. Units are dealt
    round-robin to the ``world_size * num_workers`` consumers, so ranks may differ by a block's
    worth of records; DDP training should use ``drop_last`` or an uneven-inputs join.
    """

    def __init__(
        self,
        records: SplitRecords,
        batch_size: int | None = 64,
        shuffle: bool = True,
        seed: int = 0,
        shuffle_buffer: int = 512,
        drop_last: bool = False,
        num_workers: int = 0,
        rank: int = 0,
        world_size: int = 1,
        blosc_threads: int = 1,
    ) -> None:
        if batch_size is not None and batch_size < 1:
            raise LoaderError(f"batch_size: expected >= 1 or None, got {batch_size}")
        if not 0 <= rank < world_size:
            raise LoaderError(f"rank {rank} is not in 0..{world_size - 1}")
        self.records = records
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.shuffle_buffer = max(1, shuffle_buffer)
        self.drop_last = drop_last
        self.num_workers = num_workers
        self.rank = rank
        self.world_size = world_size
        self.blosc_threads = blosc_threads
        # In shared memory, so that persistent workers see a new epoch too.
        self._epoch = torch.zeros(1, dtype=torch.int64)
        self._epoch.share_memory_()  # type: ignore[no-untyped-call]
        self._units = _block_units(records)
        self.ring: _SharedRing | None = None  # set by ShardLoader for its workers

    @property
    def epoch(self) -> int:
        return int(self._epoch[0])

    @epoch.setter
    def epoch(self, value: int) -> None:
        self._epoch[0] = int(value)

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle: the next iteration uses the order of ``epoch``."""
        self.epoch = epoch

    @property
    def n_units(self) -> int:
        return len(self._units.shard)

    def _unit_order(self) -> npt.NDArray[np.int64]:
        if not self.shuffle:
            return np.arange(self.n_units, dtype=np.int64)
        return np.random.default_rng([self.seed, self.epoch]).permutation(self.n_units).astype(np.int64)

    def _consumer_units(self, worker: int, n_workers: int) -> npt.NDArray[np.int64]:
        consumer = self.rank * n_workers + worker
        return self._unit_order()[consumer :: self.world_size * n_workers]

    def records_per_worker(self) -> list[int]:
        """Records each of this rank's workers yields in the current epoch."""
        n_workers = max(1, self.num_workers)
        sizes = np.diff(self._units.start)
        return [int(sizes[self._consumer_units(w, n_workers)].sum()) for w in range(n_workers)]

    def __len__(self) -> int:
        """Batches this rank yields in the current epoch (records when ``batch_size`` is None)."""
        counts = self.records_per_worker()
        if self.batch_size is None:
            return sum(counts)
        b = self.batch_size
        return sum(c // b + int(c % b > 0 and not self.drop_last) for c in counts)

    def __iter__(self) -> Iterator[Any]:
        info = get_worker_info()
        worker, n_workers = (0, 1) if info is None else (info.id, info.num_workers)
        units = self._consumer_units(worker, n_workers)
        rng = np.random.default_rng([self.seed, self.epoch, self.rank, worker, n_workers])
        reader = BlockReader(self.records.shards, self.blosc_threads)
        try:
            yield from self._iterate(units, reader, rng)
        finally:
            reader.close()

    def _iterate(
        self, units: npt.NDArray[np.int64], reader: BlockReader, rng: np.random.Generator
    ) -> Iterator[Any]:
        rec, u = self.records, self._units
        step = self.batch_size or 64
        limit = max(self.shuffle_buffer, step) if self.shuffle else step
        # The buffer's fill level doubles from one batch up to the limit, so the first batch of
        # an epoch comes after a few blocks, not after decoding a whole buffer.
        threshold = step
        most = max((s.block_rows for s in rec.shards), default=1)
        channels, length = rec.sample_shape
        dtype = rec.shards[0].dtype if rec.shards else "int16"
        buf = np.empty((limit + most, channels, length), dtype=dtype)
        pos = np.empty(limit + most, dtype=np.int64)
        pool = _BatchPool((step, channels, length))
        fill = 0
        for unit in units:
            members = u.positions[u.start[unit] : u.start[unit + 1]]
            block = int(u.block[unit])
            shard = int(u.shard[unit])
            in_block = rec.row[members] - block * rec.shards[shard].block_rows
            reader.read(shard, block, in_block, buf[fill : fill + len(members)])
            pos[fill : fill + len(members)] = members
            fill += len(members)
            if fill >= threshold:
                order = rng.permutation(fill) if self.shuffle else np.arange(fill)
                keep = len(order) % step
                yield from self._emit(buf, pos, order[: len(order) - keep], step, pool)
                rest = order[len(order) - keep :]
                buf[:keep], pos[:keep] = buf[rest], pos[rest]
                fill = keep
                threshold = min(limit, 2 * threshold)
        order = rng.permutation(fill) if self.shuffle else np.arange(fill)
        if self.batch_size is not None and self.drop_last:
            order = order[: len(order) - len(order) % step]
        yield from self._emit(buf, pos, order, step, pool)

    def _emit(
        self,
        buf: npt.NDArray[Any],
        pos: npt.NDArray[np.int64],
        order: npt.NDArray[Any],
        step: int,
        pool: _BatchPool,
    ) -> Iterator[Any]:
        """Batches (or samples) of the buffer rows ``order``, ``step`` at a time."""
        for s in range(0, len(order), step):
            batch = self._batch(buf, pos, order[s : s + step], pool)
            if self.batch_size is not None:
                yield batch
            else:
                x, y, index = batch
                for i in range(len(index)):
                    yield x[i], y[i], int(index[i])

    def _batch(
        self, buf: npt.NDArray[Any], pos: npt.NDArray[np.int64], sel: npt.NDArray[Any], pool: _BatchPool
    ) -> Batch:
        members = pos[sel]
        info = get_worker_info()
        ref: _RingRef | None = None
        if self.batch_size is None or info is None:
            x = pool.take(len(sel))
        else:
            slot = self.ring.take(info.id) if self.ring is not None else None
            if slot is None:
                x = _shared_batch((len(sel), *buf.shape[1:]))
            else:
                assert self.ring is not None
                ref = _RingRef(info.id, slot, len(sel))
                x = self.ring.tensors[info.id][slot][: len(sel)]
        xn = x.numpy()
        scale = self.records.shards[0].scale_mv
        # One record at a time: gathering the whole batch first would allocate a temporary as big.
        for j, s in enumerate(sel):
            _dequantise(buf[s], scale, xn[j])
        y = torch.from_numpy(self.records.y[members])
        # A ring batch travels as its reference; the main process turns it back into a tensor.
        return (x if ref is None else ref), y, torch.from_numpy(members.copy())  # type: ignore[return-value]


@dataclass(frozen=True)
class _Units:
    """(shard, block) units of a split: unit ``u`` holds split positions
    ``positions[start[u]:start[u + 1]]``, all in block ``block[u]`` of shard ``shard[u]``."""

    shard: npt.NDArray[np.int64]
    block: npt.NDArray[np.int64]
    start: npt.NDArray[np.int64]
    positions: npt.NDArray[np.int64]


def _block_units(records: SplitRecords) -> _Units:
    if len(records) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return _Units(empty, empty, np.zeros(1, dtype=np.int64), empty)
    rows_per = np.asarray([s.block_rows for s in records.shards], dtype=np.int64)
    if len({s.scale_mv for s in records.shards}) > 1:
        raise LoaderError("shards of one split use different scale_mv; re-ingest the profile")
    block = records.row // rows_per[records.shard]
    order = np.lexsort((records.row, block, records.shard)).astype(np.int64)
    key = np.stack([records.shard[order], block[order]], axis=1)
    new = np.ones(len(order), dtype=bool)
    new[1:] = np.any(key[1:] != key[:-1], axis=1)
    first = np.flatnonzero(new)
    return _Units(
        shard=key[first, 0].copy(),
        block=key[first, 1].copy(),
        start=np.append(first, len(order)).astype(np.int64),
        positions=order,
    )


# --------------------------------------------------------------------------- evaluation dataset


class ShardRecordDataset(Dataset[Sample]):
    """Every record of a split in index order: item ``i`` is ``(x (C, L) float32 mV, y (K,), i)``.

    Reads whole blocks and keeps the last one decoded, so in-order access decodes each block
    once (also per DataLoader worker, whose batches are runs of consecutive indices).
    """

    def __init__(self, records: SplitRecords, blosc_threads: int = 1) -> None:
        self.records = records
        self.blosc_threads = blosc_threads
        self._reader: BlockReader | None = None
        self._cached: tuple[int, int] | None = None
        self._block: npt.NDArray[Any] | None = None

    def __len__(self) -> int:
        return len(self.records)

    def __getstate__(self) -> dict[str, Any]:
        # Open files and decoded blocks stay with the process that made them.
        return {**self.__dict__, "_reader": None, "_cached": None, "_block": None}

    def __getitem__(self, i: int) -> Sample:
        return self.__getitems__([i])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[Sample]:
        """Samples of ``indices`` (the DataLoader calls this once per batch)."""
        rec = self.records
        out: list[Sample] = []
        for i in indices:
            if not 0 <= i < len(rec):
                raise IndexError(f"record {i} of a split of {len(rec)}")
            raw = self._row(int(rec.shard[i]), int(rec.row[i]))
            x = torch.empty(rec.sample_shape, dtype=torch.float32)
            _dequantise(raw, rec.shards[int(rec.shard[i])].scale_mv, x.numpy())
            out.append((x, torch.from_numpy(rec.y[i].copy()), int(i)))
        return out

    def _row(self, shard: int, row: int) -> npt.NDArray[Any]:
        sig = self.records.shards[shard]
        block, within = divmod(row, sig.block_rows)
        if self._cached != (shard, block) or self._block is None:
            if self._reader is None:
                self._reader = BlockReader(self.records.shards, self.blosc_threads)
            self._block = np.empty((sig.block_rows, sig.channels, sig.length), dtype=sig.dtype)
            self._reader.read(shard, block, np.arange(sig.block_rows, dtype=np.int64), self._block)
            self._cached = (shard, block)
        row_data: npt.NDArray[Any] = self._block[within]
        return row_data


# --------------------------------------------------------------------------- loader


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
        # Before iter(), which starts this epoch's prefetching: no slot holds a batch of this
        # epoch yet, so every slot not lent is free (a batch of an abandoned epoch still in
        # flight is drained by iter() and never lent; its worker writes it before any new one).
        ring.reset()
        return self._lend(iter(self.loader), ring)

    def _lend(self, batches: Iterator[Any], ring: _SharedRing) -> Iterator[Batch]:
        while True:
            # Before asking for the next batch, which sends a worker its next request: a slot
            # released since is then free for it.
            ring.reclaim()
            try:
                x, y, index = next(batches)
            except StopIteration:
                return
            if isinstance(x, _RingRef):
                view = ring.lend(x)
                # Pinned memory comes from torch's caching host allocator; the slot frees at once.
                x = view.pin_memory() if self.loader.pin_memory else view
            yield x, y, index

    def __len__(self) -> int:
        ds = self.dataset
        if isinstance(ds, ShardBlockDataset) and ds.batch_size is None:
            b = int(self.loader.batch_size or 1)
            counts = ds.records_per_worker()
            return sum(c // b + int(c % b > 0 and not self.loader.drop_last) for c in counts)
        return len(self.loader)


def _make_ring(n_workers: int, slots: int, shape: tuple[int, ...]) -> _SharedRing | None:
    """A ring when torch can count storage users and shared memory has room for it (with as
    much again left for ordinary transfers); otherwise None (fresh shared batches)."""
    probe = torch.empty(1)
    if sys.platform != "linux" or _storage_users(probe) is None or not shape[-1]:
        return None
    try:
        free = shutil.disk_usage("/dev/shm").free
    except OSError:
        return None
    need = _SharedRing.nbytes(n_workers, slots, shape)
    return _SharedRing(n_workers, slots, shape) if 2 * need < free else None


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
    instead of making fresh ones (see :class:`_SharedRing`).
    """
    store = open_store(store_root, profile)
    records = load_split(store, Path(index_path), split)
    pin = resolve_pin_memory(pin_memory)
    common: dict[str, Any] = {
        "num_workers": num_workers,
        "pin_memory": pin,
        "worker_init_fn": functools.partial(init_worker, blosc_threads) if num_workers else None,
        "generator": torch.Generator().manual_seed(seed),
    }
    if num_workers:
        common["prefetch_factor"] = prefetch_factor
        common["persistent_workers"] = persistent_workers
        common["multiprocessing_context"] = multiprocessing_context
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
    )
    if collate_in_dataset:
        if num_workers and persistent_workers and shared_ring:
            slots = (prefetch_factor or 2) + 2  # queued batches + one lent + one being filled
            ds.ring = _make_ring(num_workers, slots, (batch_size, *records.sample_shape))
        return ShardLoader(records, ds, DataLoader(ds, batch_size=None, **common))
    return ShardLoader(records, ds, DataLoader(ds, batch_size=batch_size, drop_last=drop_last, **common))
