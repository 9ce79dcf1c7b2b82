"""One epoch: batches to ``(x, y)`` on the device, the training pass (gradient accumulation, AMP
scaling, per-step schedule) and the validation pass with its metrics.

Shapes per task are in :mod:`pipeline.training.loop`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence, Sized
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from pipeline.models.scoring import output_scores
from pipeline.training.augment import augment_signal, mixup
from pipeline.training.distributed import all_reduce_sum
from pipeline.training.options import TrainConfig

ValMetricFn = Callable[[np.ndarray, np.ndarray], Mapping[str, float]]


def set_epoch(batches: object, epoch: int) -> None:
    """Tell a loader which epoch starts, so its shuffle is a function of (seed, epoch)."""
    method = getattr(batches, "set_epoch", None)
    if callable(method):
        method(epoch)
        return
    if hasattr(batches, "epoch"):
        batches.epoch = epoch
        return
    sampler_method = getattr(getattr(batches, "sampler", None), "set_epoch", None)
    if callable(sampler_method):
        sampler_method(epoch)


def num_batches(batches: Iterable[Any]) -> int:
    if not isinstance(batches, Sized):
        raise TypeError("train_batches must have len() (the LR schedule is laid out per optimizer step)")
    n = len(batches)
    if n < 1:
        raise ValueError("train_batches is empty")
    return n


def split_batch(batch: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` from a batch tuple/list (extra items are ignored), on ``device``."""
    if not isinstance(batch, Sequence) or len(batch) < 2:
        raise TypeError(f"a batch must be an (x, y) tuple or list, got {type(batch).__name__}")
    non_blocking = device.type == "cuda"
    x = torch.as_tensor(batch[0]).to(device, non_blocking=non_blocking)
    y = torch.as_tensor(batch[1]).to(device, non_blocking=non_blocking)
    return x, y


def class_indices(y: torch.Tensor) -> torch.Tensor:
    """Class index per sample from ``y (N,)`` indices or one-hot ``y (N, K)``.

    A row with no label or several labels is refused rather than silently becoming class 0 or
    its first label: a multiclass task needs its labels reduced to one class per record first.
    """
    if y.ndim == 1:
        return y.long()
    if y.ndim != 2 or not bool((y.sum(dim=1) == 1).all()):
        raise ValueError(
            "multiclass targets must be class indices (N,) or one-hot (N, K) with exactly one 1 per row"
        )
    return y.argmax(dim=1)


# --- one step, one epoch ------------------------------------------------------------------------


@dataclass
class EpochRun:
    """Everything an epoch needs, built once per :func:`fit` call."""

    model: nn.Module
    cfg: TrainConfig
    device: torch.device
    amp: bool
    criterion: nn.Module
    optimizer: torch.optim.AdamW
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    progress: bool
    # What forward passes go through when it is not ``model`` itself (DistributedDataParallel's
    # wrapper); checkpoints always hold ``model``'s own state.
    net: nn.Module | None = None

    @property
    def forward_module(self) -> nn.Module:
        return self.model if self.net is None else self.net

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.float16)

    def forward(
        self, x: torch.Tensor, y: torch.Tensor, soft: bool = False, local: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean loss of the batch and per-sample scores (see the module docstring). ``soft``:
        multiclass ``y (N, K)`` holds class probabilities (mixup), not one label per row.
        ``local``: through ``model`` itself, never the DDP wrapper (validation: every rank scores
        the whole split, no gradients, so nothing is to be synchronised)."""
        with self.autocast():
            out = (self.model if local else self.forward_module)(x)
        out = out.float()
        task = self.cfg.task
        scores = output_scores(task, x, out)
        if task == "multilabel":
            return self.criterion(out, y.float()), scores
        if task == "multiclass" and soft:
            return self.criterion(out, y.float()), scores
        if task == "multiclass":
            return self.criterion(out, class_indices(y)), scores
        return self.criterion(out, x.float()), scores

    def optimizer_step(self) -> None:
        if self.cfg.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()


def augmented(run: EpochRun, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """The batch after ``run.cfg.augment`` (untouched when it is all off) and whether ``y`` became
    soft class probabilities (mixup of a multiclass batch)."""
    aug = run.cfg.augment
    if not aug.enabled:
        return x, y, False
    x = augment_signal(x, aug)
    if not aug.mixup:
        return x, y, False
    if run.cfg.task == "multiclass" and y.ndim != 2:
        raise ValueError("mixup of a multiclass batch needs one-hot targets (N, K), got class indices")
    x, y = mixup(x, y.float(), aug.mixup_alpha)
    return x, y, run.cfg.task == "multiclass"


def train_epoch(run: EpochRun, batches: Iterable[Any], epoch: int) -> tuple[float, int]:
    """One pass over the training batches; returns the sample-weighted mean loss and the number of
    samples (both over every rank's samples when training is distributed)."""
    set_epoch(batches, epoch)
    run.forward_module.train()
    n_batches = num_batches(batches)
    accum = run.cfg.accumulation_steps
    run.optimizer.zero_grad(set_to_none=True)
    loss_sum = torch.zeros((), device=run.device, dtype=torch.float64)
    n_samples, pending, steps = 0, 0, 0
    bar = tqdm(batches, total=n_batches, desc=f"epoch {epoch + 1}/{run.cfg.epochs}", leave=False,
               disable=not run.progress)  # fmt: skip
    for i, batch in enumerate(bar):
        x, y = split_batch(batch, run.device)
        x, y, soft = augmented(run, x, y)
        loss, _ = run.forward(x, y, soft)
        group_start = (i // accum) * accum
        group_size = max(min(accum, n_batches - group_start), 1)
        torch.autograd.backward(run.scaler.scale(loss / group_size))
        pending += 1
        loss_sum += loss.detach().double() * x.shape[0]
        n_samples += x.shape[0]
        if pending == accum or i + 1 == n_batches:
            run.optimizer_step()
            pending, steps = 0, steps + 1
            if steps % run.cfg.log_every == 0:
                bar.set_postfix(loss=f"{loss_sum.item() / n_samples:.4g}")
    if pending:  # the iterable yielded more batches than len() said
        run.optimizer_step()
    if n_samples == 0:
        raise ValueError("train_batches yielded no samples")
    total, count = all_reduce_sum([float(loss_sum.item()), float(n_samples)])
    return total / count, int(count)


@torch.no_grad()
def validate(run: EpochRun, batches: Iterable[Any]) -> tuple[float, np.ndarray, np.ndarray]:
    """Mean validation loss, labels ``y`` and scores (see the module docstring), in batch order."""
    run.forward_module.eval()
    loss_sum, n = 0.0, 0
    ys: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    for batch in batches:
        x, y = split_batch(batch, run.device)
        loss, score = run.forward(x, y, local=True)
        loss_sum += float(loss) * x.shape[0]
        n += x.shape[0]
        ys.append(y.cpu().numpy())
        scores.append(score.cpu().numpy())
    if n == 0:
        raise ValueError("val_batches yielded no samples")
    return loss_sum / n, np.concatenate(ys), np.concatenate(scores)


def epoch_metrics(
    run: EpochRun,
    train_loss: float,
    val: tuple[float, np.ndarray, np.ndarray],
    fn: ValMetricFn | None,
    epoch: int,
) -> dict[str, float]:
    val_loss, y, scores = val
    metrics: dict[str, float] = {
        "epoch": float(epoch),
        "train_loss": train_loss,
        "val_loss": val_loss,
        "lr": float(run.optimizer.param_groups[0]["lr"]),
    }
    for key, value in (fn(y, scores) if fn is not None else {}).items():
        metrics[f"val_{key}"] = float(value)
    return metrics
