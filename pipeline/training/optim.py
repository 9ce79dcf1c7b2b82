"""Building blocks of a training run: seeding, device choice, class weights, the loss, AdamW,
the warm-up + cosine schedule and the early-stopping tracker."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from pipeline.models.scoring import Task
from pipeline.training.options import EarlyStopping, TrainConfig


def seed_everything(seed: int) -> None:
    """Seed Python ``random``, numpy's global RNG and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(spec: str) -> torch.device:
    """``"auto"`` → CUDA when available else CPU; otherwise the named device, which must exist."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {spec!r} requested but CUDA is not available")
    return device


def pos_weight_from_labels(y: np.ndarray) -> torch.Tensor:
    """``pos_weight`` for BCE-with-logits from multi-hot training labels ``y (N, K)``: negatives / positives.

    A class with no positive gets ``N`` (as if it had one): it has no positive term to weight
    during training, and a finite value keeps the loss finite.
    """
    labels = np.asarray(y)
    if labels.ndim != 2:
        raise ValueError(f"multi-hot labels must be (N, K), got shape {labels.shape}")
    positives = (labels > 0).sum(axis=0).astype(np.float64)
    negatives = labels.shape[0] - positives
    return torch.tensor(negatives / np.maximum(positives, 1.0), dtype=torch.float32)


def class_weights_from_labels(y: np.ndarray, num_classes: int) -> torch.Tensor:
    """ "Balanced" CE class weights ``N / (K * count_c)`` from ``y (N,)`` indices or one-hot ``(N, K)``.

    Same values as scikit-learn's ``compute_class_weight("balanced")``; an absent class counts
    as one sample so its weight stays finite.
    """
    labels = np.asarray(y)
    indices = labels.argmax(axis=1) if labels.ndim == 2 else labels.astype(np.int64)
    if indices.size and (indices.min() < 0 or indices.max() >= num_classes):
        raise ValueError(f"class indices must be in [0, {num_classes}), got {indices.min()}..{indices.max()}")
    counts = np.bincount(indices, minlength=num_classes).astype(np.float64)
    weights = indices.size / (num_classes * np.maximum(counts, 1.0))
    return torch.tensor(weights, dtype=torch.float32)


def make_loss(task: Task, class_weights: torch.Tensor | None = None) -> nn.Module:
    """The criterion of a task; ``class_weights``: ``pos_weight`` (multilabel) or ``weight`` (multiclass)."""
    if task == "multilabel":
        return nn.BCEWithLogitsLoss(pos_weight=class_weights)
    if task == "multiclass":
        return nn.CrossEntropyLoss(weight=class_weights)
    if class_weights is not None:
        raise ValueError("class weights do not apply to the reconstruction task")
    return nn.MSELoss()


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on weights of rank >= 2 only (biases and norm scales are not shrunk)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [
        {"params": group, "weight_decay": wd}
        for group, wd in ((decay, cfg.weight_decay), (no_decay, 0.0))
        if group
    ]
    if not groups:
        raise ValueError("the model has no trainable parameters")
    return torch.optim.AdamW(groups, lr=cfg.lr)


class WarmupCosine:
    """LR multiplier per optimizer step: linear warm-up to 1, then cosine down to ``min_ratio``.

    A class rather than a closure so ``LambdaLR.state_dict`` stores its (plain) attributes.
    """

    def __init__(self, total_steps: int, warmup_steps: int, min_ratio: float) -> None:
        self.total_steps = max(int(total_steps), 1)
        self.warmup_steps = min(max(int(warmup_steps), 0), self.total_steps)
        self.min_ratio = float(min_ratio)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        span = max(self.total_steps - self.warmup_steps, 1)
        progress = min((step - self.warmup_steps) / span, 1.0)
        return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    total = cfg.epochs * steps_per_epoch
    warmup = round(cfg.warmup_epochs * steps_per_epoch)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(total, warmup, cfg.min_lr_ratio))


class EarlyStopper:
    """Tracks the best value of one metric and the epochs since it last improved.

    NaN never counts as an improvement (an undefined AUROC must not become the best epoch).
    """

    def __init__(self, cfg: EarlyStopping) -> None:
        self.cfg = cfg
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.bad_epochs = 0

    def update(self, value: float, epoch: int) -> bool:
        """Record epoch ``epoch`` (1-based); True when it is the new best."""
        if self._improves(value):
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    def _improves(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        if self.cfg.mode == "max":
            return value > self.best + self.cfg.min_delta
        return value < self.best - self.cfg.min_delta

    @property
    def should_stop(self) -> bool:
        return self.cfg.patience is not None and self.bad_epochs >= self.cfg.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best = None if state["best"] is None else float(state["best"])
        self.best_epoch = None if state["best_epoch"] is None else int(state["best_epoch"])
        self.bad_epochs = int(state["bad_epochs"])
