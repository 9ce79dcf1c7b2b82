"""The records of one split: an index's rows joined with the store's labels and signal layout.

:func:`load_split` checks the index against the store (same labels, live rows, one record shape)
and describes each shard's signal once, in the parent process, for the datasets
(:mod:`pipeline.dataset.training_set`, :mod:`pipeline.dataset.eval_set`) to read block by block.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.core.errors import PipelineError
from pipeline.dataset.splits import read_index
from pipeline.store.base import Store
from pipeline.store.blocks import ShardSignal
from pipeline.store.labels import read_labels
from pipeline.store.manifest import ShardEntry


class LoaderError(PipelineError, RuntimeError):
    """An index, store or loader setting that cannot be loaded (says which and why)."""


class StaleIndexError(LoaderError):
    """The split index was made from other labels than the store holds now."""


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
    labels = read_labels(store, index.header.get("scheme"))  # indexes without it: the default scheme
    if labels is None:
        raise LoaderError(f"{store.location()}: no unified labels; run ingest first")
    made_from = index.header.get("labels_digest")
    if made_from and made_from != labels.digest:
        raise StaleIndexError(
            f"{index_path}: made from labels {str(made_from)[:12]}, the store now has {labels.digest[:12]}; "
            "re-run the split stage"
        )
    rows = index.split_rows(split)
    manifest = store.load_manifest()
    names = sorted({r.shard for r in rows})
    for name in names:
        if name not in manifest.shards:
            raise LoaderError(f"{index_path}: shard {name} is not in {store.location('manifest.json')}")
    position = {(s, int(r)): i for i, (s, r) in enumerate(zip(labels.shard, labels.row, strict=True))}
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
    shard_no = {name: i for i, name in enumerate(names)}
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


def dequantise(raw: npt.NDArray[Any], scale_mv: float, out: npt.NDArray[np.float32]) -> None:
    """int16 steps ``(..., C, L)`` → float32 mV into ``out`` with one multiply (float32 storage is
    copied as is)."""
    if raw.dtype == np.int16:
        np.multiply(raw, np.float32(scale_mv), out=out)
    else:
        out[...] = raw
