"""The run shared by the DDP test (``tests/test_ddp.py``): a tiny model trained by
:func:`pipeline.training.loop.fit`, either in one process on global batches of ``GLOBAL_BATCH``
records or under ``torchrun`` where rank ``r`` takes its ``GLOBAL_BATCH / world_size`` slice of
each global batch. Run as a script it is the torchrun child: ``ddp_support.py OUT_DIR``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

if __name__ == "__main__":  # the torchrun child: the repository on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.training import distributed
from pipeline.training.loop import fit
from pipeline.training.options import EarlyStopping, TrainConfig

GLOBAL_BATCH = 8
CFG = TrainConfig(
    task="multiclass",
    epochs=3,
    lr=1e-2,
    warmup_epochs=1.0,
    seed=11,
    device="cpu",
    early_stopping=EarlyStopping(metric="val_loss", mode="min", patience=None),
)


class SliceBatches:
    """Global batches of ``GLOBAL_BATCH`` records in a ``(seed, epoch)`` order; each rank yields
    its contiguous slice of every global batch (the whole batch with one process)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, rank: int, world: int) -> None:
        self.x, self.y, self.rank, self.world, self.epoch = x, y, rank, world, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.x) // GLOBAL_BATCH

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(self.x), generator=torch.Generator().manual_seed(100 + self.epoch))
        per = GLOBAL_BATCH // self.world
        for b in range(len(self)):
            idx = order[b * GLOBAL_BATCH + self.rank * per : b * GLOBAL_BATCH + (self.rank + 1) * per]
            yield self.x[idx], self.y[idx]


def data(seed: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``x (n, 1, 32)``, one-hot ``y (n, 3)``: the class is where the mean of three thirds peaks."""
    x = torch.randn(n, 1, 32, generator=torch.Generator().manual_seed(seed))
    cls = x[:, 0, :30].reshape(n, 3, 10).mean(dim=2).argmax(dim=1)
    return x, torch.eye(3)[cls]


def tiny_model() -> nn.Module:
    """No BatchNorm or dropout: per-rank batch statistics and random masks would differ from one
    process by design, and this run checks the gradient averaging itself."""
    torch.manual_seed(3)
    return nn.Sequential(nn.Conv1d(1, 4, 5, padding=2), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 32, 3))


def f1_like(y: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    return {"accuracy": float((y.argmax(axis=1) == scores.argmax(axis=1)).mean())}


def run(out_dir: Path) -> None:
    """Train the tiny model into ``out_dir`` (``latest.pt``), in this process or this rank."""
    x, y = data(0, 64)
    xv, yv = data(1, 16)
    rank, world = distributed.rank(), distributed.world_size()
    fit(
        tiny_model(), SliceBatches(x, y, rank, world), [(xv, yv)], CFG, out_dir,
        {"test": "ddp"}, f1_like, resume=False, progress=False,
    )  # fmt: skip


if __name__ == "__main__":
    with distributed.process_group_from_env("cpu") as on:
        if not on:
            raise SystemExit("expected to run under torchrun with WORLD_SIZE > 1")
        run(Path(sys.argv[1]))
