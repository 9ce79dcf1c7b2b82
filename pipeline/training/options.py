"""What :func:`pipeline.training.loop.fit` is told and what it returns: :class:`TrainConfig`
(with :class:`EarlyStopping`), :class:`TrainResult`, and :class:`ResumeMismatch`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pipeline.models.scoring import TASKS, Task
from pipeline.training.augment import Augment
from pipeline.training.checkpoint import (
    CheckpointError,
)


class ResumeMismatch(CheckpointError):
    """``latest.pt`` was written by a run with another config, lineage or class weights.

    ``problems``: one short phrase per difference (``"config.epochs 40 → 1"``), for people.
    """

    def __init__(self, path: Path, problems: Sequence[str]) -> None:
        self.path = path
        self.problems = tuple(problems)
        super().__init__(
            f"{path}: written by a different run, cannot resume ({self.changes}); "
            "pass resume=False to start over or use another out_dir"
        )

    @property
    def changes(self) -> str:
        return "; ".join(self.problems)


@dataclass(frozen=True)
class EarlyStopping:
    """Stop after ``patience`` epochs without improvement of ``metric``; ``best.pt`` tracks it too.

    ``metric`` is a name logged each epoch: ``val_loss``, ``train_loss``, ``lr`` or
    ``val_<key>`` for every key the validation metric function returns. An improvement must
    beat the best value by more than ``min_delta`` (in the metric's units). ``patience=None``
    never stops early but still keeps ``best.pt``.
    """

    metric: str = "val_loss"
    mode: Literal["min", "max"] = "min"
    patience: int | None = 10
    min_delta: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in ("min", "max"):
            raise ValueError(f"early_stopping.mode must be 'min' or 'max', got {self.mode!r}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"early_stopping.patience must be >= 1 or None, got {self.patience}")
        if not self.min_delta >= 0:
            raise ValueError(f"early_stopping.min_delta must be >= 0, got {self.min_delta}")


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of :func:`fit`; stored in each checkpoint as a plain dict.

    ``accumulation_steps``: batches per optimizer step (the loss of each batch is divided by the
    size of its group, so a short last group is not under-weighted). ``warmup_epochs``: linear
    warm-up from 0 (may be fractional), then cosine decay to ``lr * min_lr_ratio`` at the last
    optimizer step; the schedule advances per optimizer step. ``weight_decay`` applies to weights
    of rank >= 2 only (not biases or norm scales). ``grad_clip``: max global L2 norm of the
    gradients, None for no clipping. ``amp``: float16 autocast + GradScaler when the device is
    CUDA; ignored on CPU. ``device``: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``,
    ``"cuda"``, ``"cuda:1"``... ``deterministic``: deterministic algorithms on CPU, cuDNN
    deterministic and no benchmark on CUDA. ``threads``: torch intra-op CPU threads while training
    (float sums are split per thread, so the same seed gives the same weights only with the same
    count; torch's own default is the machine's core count). ``log_every``: optimizer steps between
    progress-bar loss updates. ``augment``: training-batch augmentation (:class:`Augment`, off by
    default; mixup needs a classification task).
    """

    task: Task
    epochs: int = 30
    lr: float = 1e-3
    weight_decay: float = 1e-2
    accumulation_steps: int = 1
    warmup_epochs: float = 0.0
    min_lr_ratio: float = 0.0
    grad_clip: float | None = 1.0
    amp: bool = True
    seed: int = 0
    device: str = "auto"
    deterministic: bool = True
    threads: int = 2
    log_every: int = 50
    early_stopping: EarlyStopping = field(default_factory=EarlyStopping)
    augment: Augment = field(default_factory=Augment)

    def __post_init__(self) -> None:
        checks: list[tuple[bool, str, str]] = [
            (self.task in TASKS, "task", f"one of {TASKS}"),
            (self.epochs >= 1, "epochs", ">= 1"),
            (self.lr > 0, "lr", "> 0"),
            (self.weight_decay >= 0, "weight_decay", ">= 0"),
            (self.accumulation_steps >= 1, "accumulation_steps", ">= 1"),
            (0 <= self.warmup_epochs <= self.epochs, "warmup_epochs", "in [0, epochs]"),
            (0 <= self.min_lr_ratio <= 1, "min_lr_ratio", "in [0, 1]"),
            (self.grad_clip is None or self.grad_clip > 0, "grad_clip", "> 0 or None"),
            (self.threads >= 1, "threads", ">= 1"),
            (self.log_every >= 1, "log_every", ">= 1"),
            (
                not (self.augment.enabled and self.task == "reconstruction"),
                "augment",
                "all off for task reconstruction (its target is its input)",
            ),
        ]
        for ok, name, rule in checks:
            if not ok:
                raise ValueError(f"TrainConfig.{name} must be {rule}, got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (stored in checkpoints; ``from_dict`` inverts it)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        fields = dict(data)
        stopping = fields.pop("early_stopping", None)
        if isinstance(stopping, Mapping):
            fields["early_stopping"] = EarlyStopping(**stopping)
        augment = fields.pop("augment", None)
        if isinstance(augment, Mapping):
            fields["augment"] = Augment(**augment)
        return cls(**fields)


@dataclass(frozen=True)
class TrainResult:
    """What :func:`fit` did. ``history`` holds one dict per completed epoch (``epoch`` is 1-based)."""

    history: tuple[dict[str, float], ...]
    metric: str
    best_epoch: int | None
    best_value: float | None
    stopped_early: bool
    resumed_from_epoch: int | None
    latest_path: Path
    best_path: Path | None
    # training samples per wall-clock second over the epochs this call ran (all ranks; forward,
    # backward and optimizer step, not validation); None when it ran none (a finished run resumed).
    # Printed, never written to the checkpoints or metrics, which stay byte-reproducible.
    train_records_per_s: float | None = None

    @property
    def epochs_completed(self) -> int:
        return len(self.history)

    @property
    def final_metrics(self) -> dict[str, float]:
        return dict(self.history[-1]) if self.history else {}

    @property
    def best_metrics(self) -> dict[str, float]:
        if self.best_epoch is None:
            return {}
        return dict(self.history[self.best_epoch - 1])
