"""The readers the training loader is compared with: one ``.npz`` file per record (today's notebooks) and
one zarr call per record from the same store; both map-style ``Dataset``s for a shuffling ``DataLoader``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
import zarr
from torch.utils.data import Dataset

from pipeline.store.local import ShardStore, read_signal


class NpzDataset(Dataset[tuple[torch.Tensor, torch.Tensor, int]]):
    """One ``.npz`` per record: item ``i`` is ``(signal (12, 5000) float32 mV, y (K,), i)``."""

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
