"""From the store's unified multi-hot labels to what one model learns and is scored on.

- ``multilabel``: the model's classes, a column subset of the vocabulary: ``(N, K)`` multi-hot.
- ``multiclass``: exactly one of the model's classes per record: one-hot ``(N, K)``; a record
  with none or several of them cannot be scored and is left out of the model's index.
- ``reconstruction``: is-anomalous ``(N,)``: anything but exactly the normal class (a record with
  no label is not known to be normal, so it counts as anomalous and never enters training).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from pipeline.models.scoring import Task


@dataclass(frozen=True)
class Targets:
    """Column selection of one model: ``columns[k]`` is the vocabulary index of output ``k``;
    ``scheme`` names the label scheme whose ``vocabulary`` it is."""

    task: Task
    vocabulary: tuple[str, ...]
    classes: tuple[str, ...]
    normal_class: str | None = None
    scheme: str = "coarse"

    @property
    def columns(self) -> list[int]:
        return [self.vocabulary.index(c) for c in self.classes]

    def usable(self, y: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
        """Which records ``y (N, V)`` this model can learn from / be scored on ``(N,)``."""
        y = np.asarray(y)
        if self.task == "multiclass":
            return np.asarray(y[:, self.columns].sum(axis=1) == 1)
        return np.ones(len(y), dtype=bool)

    def of(self, y: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
        """Targets from vocabulary labels ``y (N, V)``: ``(N, K)`` or ``(N,)`` is-anomalous."""
        y = np.asarray(y, dtype=np.float32)
        if self.task == "reconstruction":
            assert self.normal_class is not None
            normal = np.zeros(y.shape[1], dtype=np.float32)
            normal[self.vocabulary.index(self.normal_class)] = 1.0
            return np.asarray((y != normal[None, :]).any(axis=1), dtype=np.float32)
        return np.ascontiguousarray(y[:, self.columns])

    def of_tensor(self, y: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.of(y.numpy()))


class TargetBatches:
    """Wraps a loader of ``(x, y_vocab, index)`` batches into ``(x, targets, index)`` batches,
    keeping its ``len()`` and ``set_epoch`` so training can reshuffle and resume exactly."""

    def __init__(self, loader: Any, targets: Targets) -> None:
        self.loader = loader
        self.targets = targets

    def __len__(self) -> int:
        return len(self.loader)

    def set_epoch(self, epoch: int) -> None:
        self.loader.set_epoch(epoch)

    def __iter__(self) -> Any:
        for x, y, index in self.loader:
            yield x, self.targets.of_tensor(y), index


def labels_of(targets: Targets, y: npt.NDArray[Any]) -> list[list[str]]:
    """Vocabulary names of each record's labels (for strip titles and score tables)."""
    vocab: Sequence[str] = targets.vocabulary
    return [[vocab[int(j)] for j in np.flatnonzero(row)] for row in np.asarray(y)]
