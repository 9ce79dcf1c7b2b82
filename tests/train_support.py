"""The tiny model, data and training run shared by the training-loop tests (``tests/test_train*.py``)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pipeline.training.loop import fit
from pipeline.training.optim import (
    pos_weight_from_labels,
)
from pipeline.training.options import EarlyStopping, TrainConfig, TrainResult

REPO = Path(__file__).resolve().parents[1]
N_CLASSES = 3
CFG = TrainConfig(
    task="multilabel",
    epochs=4,
    lr=3e-2,
    accumulation_steps=2,
    warmup_epochs=1.0,
    seed=7,
    device="cpu",
    early_stopping=EarlyStopping(metric="val_loss", mode="min", patience=None),
)
LINEAGE = {"manifest_hash": "0" * 64, "params": {"model": {"kind": "tiny", "width": 8}}}


class Batches:
    """``(x, y)`` batches in an order drawn from ``(seed, epoch)``, like the project's loader.

    With ``augment`` each batch gets noise from the global torch, numpy and ``random`` RNGs, so
    a resumed run only matches an uninterrupted one when all three states are restored.
    ``on_epoch`` is called from ``set_epoch`` (the tests use it to block or slow the run).
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        seed: int,
        augment: bool = True,
        on_epoch: Callable[[int], None] | None = None,
    ) -> None:
        self.x, self.y, self.batch_size, self.seed = x, y, batch_size, seed
        self.augment, self.on_epoch, self.epoch = augment, on_epoch, 0

    def set_epoch(self, epoch: int) -> None:
        if self.on_epoch is not None:
            self.on_epoch(epoch)
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(
            len(self.x), generator=torch.Generator().manual_seed(self.seed * 1009 + self.epoch)
        )
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            x = self.x[idx]
            if self.augment:
                shift = 0.01 * float(np.random.standard_normal()) + 0.01 * random.random()
                x = x + 0.05 * torch.randn_like(x) + shift
            yield x, self.y[idx]


def random_data(seed: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``x (n, 2, 16)``; label k is on when channel 0 is positive at sample k."""
    x = torch.randn(n, 2, 16, generator=torch.Generator().manual_seed(seed))
    return x, (x[:, 0, :N_CLASSES] > 0).float()


def tiny_model() -> nn.Module:
    torch.manual_seed(123)
    return nn.Sequential(
        nn.Conv1d(2, 8, 5, padding=2),
        nn.BatchNorm1d(8),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Flatten(),
        nn.Linear(8 * 16, N_CLASSES),
    )


def accuracy_metric(y: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    return {"accuracy": float(((scores > 0.5) == (y > 0.5)).mean())}


def train_tiny(
    out_dir: Path,
    resume: bool = True,
    on_epoch: Callable[[int], None] | None = None,
    cfg: TrainConfig = CFG,
) -> tuple[nn.Module, TrainResult]:
    x, y = random_data(0, 40)
    xv, yv = random_data(1, 24)
    model = tiny_model()
    result = fit(
        model,
        Batches(x, y, 8, seed=5, on_epoch=on_epoch),
        Batches(xv, yv, 12, seed=6, augment=False),
        cfg,
        out_dir,
        LINEAGE,
        accuracy_metric,
        resume,
        class_weights=pos_weight_from_labels(y.numpy()),
        progress=False,
    )
    return model, result


def never_called(epoch: int) -> None:
    raise AssertionError(f"epoch {epoch} started")
