"""The evaluation dataset: every record of a split in index order, read block by block."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch.utils.data import Dataset

from pipeline.dataset.records import SplitRecords, dequantise
from pipeline.store.blocks import BlockReader

Sample = tuple[torch.Tensor, torch.Tensor, int]


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
            dequantise(raw, rec.shards[int(rec.shard[i])].scale_mv, x.numpy())
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
