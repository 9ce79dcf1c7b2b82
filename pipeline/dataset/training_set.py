"""The training dataset: seeded block order per epoch, records shuffled within a buffer.

Training reads whole inner chunks ("blocks") of the signal, in a seeded random block order,
keeps them int16 in a buffer of ``shuffle_buffer`` records, shuffles the records within that
buffer, and dequantises each batch with one multiply into float32 mV.

Batch memory. In the main process (``num_workers=0``) each batch is a fresh tensor: as fast as
reusing a few (loader benchmark). DataLoader workers fill the slots of a :class:`SharedRing`, a
few batches per worker made once in shared memory, and send only the slot's number; the main
process copies the batch out (into pinned memory when pinning, which copies anyway) and frees the
slot at once. A fresh shared-memory batch per worker batch instead costs about 2.4x the CPU per
record; lending the slot itself, as before, needed torch's private storage use count to know
when the consumer let go of it (``benchmarks/loader/RESULTS.md``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch.utils.data import IterableDataset, get_worker_info

from pipeline.dataset.records import LoaderError, SplitRecords, dequantise
from pipeline.store.blocks import BlockReader

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


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


def _check_weights(weights: npt.NDArray[Any] | None, n: int) -> npt.NDArray[np.float64] | None:
    if weights is None:
        return None
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0) or not w.sum() > 0:
        raise LoaderError(
            f"record_weights: expected {n} finite weights >= 0 (one per split record, not all 0), "
            f"got shape {w.shape}"
        )
    return w


def new_batch(shape: tuple[int, ...], shared: bool) -> torch.Tensor:
    """An uninitialised float32 batch ``shape``; in shared memory when ``shared`` (a DataLoader
    worker's batch, which then reaches the main process without another copy)."""
    x = torch.empty(shape, dtype=torch.float32)
    return x.share_memory_() if shared else x  # type: ignore[no-untyped-call]  # untyped in torch


@dataclass(frozen=True)
class RingRef:
    """A batch of ``n`` records left in slot ``slot`` of worker ``worker``'s ring."""

    worker: int
    slot: int
    n: int


class SharedRing:
    """A few shared-memory batch tensors ``(slots, B, C, L)`` per DataLoader worker, reused.

    ``state[w, s]`` is 0 (free) or 1 (taken: being filled or in flight). A worker claims a free
    slot of its own, fills it, and sends a :class:`RingRef`; the main process copies the batch out
    and frees the slot (:meth:`copy_out`). Each slot has one writer, its worker, which fills one
    batch at a time; a worker that finds no free slot makes a fresh shared batch, so a full ring
    never blocks. Used with persistent workers only (one iterator at a time).
    """

    def __init__(self, n_workers: int, slots: int, shape: tuple[int, ...]) -> None:
        self.tensors = [[new_batch(shape, shared=True) for _ in range(slots)] for _ in range(n_workers)]
        self.state = torch.zeros((n_workers, slots), dtype=torch.int8)
        self.state.share_memory_()  # type: ignore[no-untyped-call]  # untyped in torch
        self.copied = 0  # batches that came through the ring (main process)

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

    def copy_out(self, ref: RingRef, pin: bool) -> torch.Tensor:
        """Main side: the batch of ``ref`` as a tensor of its own (pinned when ``pin``); frees the slot."""
        view = self.tensors[ref.worker][ref.slot][: ref.n]
        x = view.pin_memory() if pin else view.clone()
        self.state[ref.worker, ref.slot] = 0
        self.copied += 1
        return x

    def reset(self) -> None:
        """Main side, before an epoch's iterator starts: every slot is free (a batch of an abandoned
        epoch still in flight is drained by the new iterator and never copied)."""
        self.state.zero_()


class ShardBlockDataset(IterableDataset[Any]):
    """Training order over one split: seeded block order per epoch, records shuffled within a
    buffer of ``shuffle_buffer`` records.

    Yields whole batches ``(x (B, C, L) float32 mV, y (B, K) float32, index (B,) int64)`` (use
    ``DataLoader(batch_size=None)``), or single samples ``(x (C, L), y (K,), index)`` when
    ``batch_size`` is None. ``index`` is the record's position in the split.

    The order is a function of ``(seed, epoch, num_workers, rank, world_size)``. Units are dealt
    round-robin to the ``world_size * num_workers`` consumers, so ranks may differ by a block's
    worth of records; DDP training should use ``drop_last`` or an uneven-inputs join.
    ``record_weights (N,)``: sample the split's records in proportion to these weights each
    epoch (:meth:`repeats`) instead of once each; None: once each.
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
        record_weights: npt.NDArray[np.float64] | None = None,
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
        self._epoch.share_memory_()  # type: ignore[no-untyped-call]  # untyped in torch
        self._units = _block_units(records)
        self.ring: SharedRing | None = None  # set by make_loader for persistent workers
        self.record_weights = _check_weights(record_weights, len(records))

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

    def repeats(self) -> npt.NDArray[np.int64] | None:
        """Copies of each split position this epoch under ``record_weights`` (None: one each).

        Repeat-factor sampling: position ``i`` appears ``w_i * N / sum(w)`` times in expectation,
        rounded stochastically from ``(seed, epoch)``, so the epoch keeps about ``N`` records,
        every block is still read once, and the count is known before iterating (``len()``)."""
        if self.record_weights is None:
            return None
        w = self.record_weights
        expected = w * (len(w) / w.sum())
        rng = np.random.default_rng([self.seed, self.epoch, 0x5A3])
        base = np.floor(expected)
        reps: npt.NDArray[np.int64] = (base + (rng.random(len(w)) < expected - base)).astype(np.int64)
        return reps

    def _unit_sizes(self) -> npt.NDArray[np.int64]:
        """Records each unit yields this epoch (its members times their repeats)."""
        reps = self.repeats()
        if reps is None:
            return np.diff(self._units.start)
        counts = np.concatenate([[0], np.cumsum(reps[self._units.positions])]).astype(np.int64)
        sizes: npt.NDArray[np.int64] = counts[self._units.start[1:]] - counts[self._units.start[:-1]]
        return sizes

    def _consumer_units(self, worker: int, n_workers: int) -> npt.NDArray[np.int64]:
        consumer = self.rank * n_workers + worker
        return self._unit_order()[consumer :: self.world_size * n_workers]

    def records_per_worker(self) -> list[int]:
        """Records each of this rank's workers yields in the current epoch."""
        n_workers = max(1, self.num_workers)
        sizes = self._unit_sizes()
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
        # A worker's whole batches go to the main process: made in shared memory at once.
        shared = info is not None and self.batch_size is not None
        try:
            yield from self._iterate(units, reader, rng, shared)
        finally:
            reader.close()

    def _iterate(
        self, units: npt.NDArray[np.int64], reader: BlockReader, rng: np.random.Generator, shared: bool
    ) -> Iterator[Any]:
        rec, u = self.records, self._units
        step = self.batch_size or 64
        limit = max(self.shuffle_buffer, step) if self.shuffle else step
        # The buffer's fill level doubles from one batch up to the limit, so the first batch of
        # an epoch comes after a few blocks, not after decoding a whole buffer.
        threshold = step
        reps = self.repeats()
        most = max((s.block_rows for s in rec.shards), default=1)
        if reps is not None and len(units):
            most = max(most, int(self._unit_sizes()[units].max()))
        dtype = rec.shards[0].dtype if rec.shards else "int16"
        buf = np.empty((limit + most, *rec.sample_shape), dtype=dtype)
        pos = np.empty(limit + most, dtype=np.int64)
        fill = 0
        for unit in units:
            members = u.positions[u.start[unit] : u.start[unit + 1]]
            if reps is not None:
                members = np.repeat(members, reps[members])
                if not len(members):
                    continue
            shard, block = int(u.shard[unit]), int(u.block[unit])
            in_block = rec.row[members] - block * rec.shards[shard].block_rows
            reader.read(shard, block, in_block, buf[fill : fill + len(members)])
            pos[fill : fill + len(members)] = members
            fill += len(members)
            if fill >= threshold:
                order = rng.permutation(fill) if self.shuffle else np.arange(fill)
                keep = len(order) % step
                yield from self._emit(buf, pos, order[: len(order) - keep], step, shared)
                rest = order[len(order) - keep :]
                buf[:keep], pos[:keep] = buf[rest], pos[rest]
                fill = keep
                threshold = min(limit, 2 * threshold)
        order = rng.permutation(fill) if self.shuffle else np.arange(fill)
        if self.batch_size is not None and self.drop_last:
            order = order[: len(order) - len(order) % step]
        yield from self._emit(buf, pos, order, step, shared)

    def _emit(
        self,
        buf: npt.NDArray[Any],
        pos: npt.NDArray[np.int64],
        order: npt.NDArray[Any],
        step: int,
        shared: bool,
    ) -> Iterator[Any]:
        """Batches (or samples) of the buffer rows ``order``, ``step`` at a time."""
        for s in range(0, len(order), step):
            batch = self._batch(buf, pos, order[s : s + step], shared)
            if self.batch_size is not None:
                yield batch
            else:
                x, y, index = batch
                for i in range(len(index)):
                    yield x[i], y[i], int(index[i])

    def _batch(
        self, buf: npt.NDArray[Any], pos: npt.NDArray[np.int64], sel: npt.NDArray[Any], shared: bool
    ) -> Batch:
        """The batch of buffer rows ``sel``: ``(x (B, C, L) float32 mV, y (B, K), index (B,))``."""
        members = pos[sel]
        info = get_worker_info() if shared else None
        slot = self.ring.take(info.id) if self.ring is not None and info is not None else None
        if slot is None or self.ring is None or info is None:
            x = new_batch((len(sel), *buf.shape[1:]), shared)
        else:
            x = self.ring.tensors[info.id][slot][: len(sel)]
        xn = x.numpy()
        scale = self.records.shards[0].scale_mv
        # One record at a time: gathering the whole batch first would allocate a temporary as big.
        for j, s in enumerate(sel):
            dequantise(buf[s], scale, xn[j])
        y, index = torch.from_numpy(self.records.y[members]), torch.from_numpy(members.copy())
        if slot is not None and info is not None:  # a ring batch travels as its reference
            return RingRef(info.id, slot, len(sel)), y, index  # type: ignore[return-value]  # see ShardLoader
        return x, y, index
