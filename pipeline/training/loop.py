"""The training loop: seeded, resumable, AdamW + warmup/cosine, class weights, AMP on CUDA, early stopping.

:func:`fit` trains any ``nn.Module`` on iterables of ``(x, y)`` batches (a torch ``DataLoader`` or
anything iterable with ``len()``), for one of three tasks:

- ``multilabel``: logits ``(N, K)`` vs multi-hot ``y (N, K)``; ``BCEWithLogitsLoss`` with
  ``pos_weight`` from class frequencies (:func:`pos_weight_from_labels`); scores = sigmoid.
- ``multiclass``: logits ``(N, K)`` vs class indices ``y (N,)`` or one-hot ``y (N, K)``;
  ``CrossEntropyLoss`` with class weights (:func:`class_weights_from_labels`); scores = softmax.
- ``reconstruction``: ``model(x)`` has the shape of ``x (N, C, L)``; MSE; ``y`` is not used by the
  loss; the score of a sample is its mean squared reconstruction error ``(N,)`` (anomaly score).

Each epoch: train (tqdm bar), validate, update early stopping, write ``best.pt`` (on improvement)
then ``latest.pt`` (every epoch) into ``out_dir``, then log the epoch to dvclive under
``out_dir/live`` (``metrics.json`` + ``plots/metrics/<name>.tsv``, which ``dvc metrics`` /
``dvc plots`` / ``dvc exp show`` read once the stage declares them).

Resumption is exact on CPU: a run killed at any point and re-run with ``resume=True`` continues
from ``latest.pt`` and produces bitwise the same weights and metrics as an uninterrupted run with
the same seed. That needs: model, optimizer, scheduler, scaler and early-stopping state; the
global RNG states (torch, CUDA, numpy, ``random``) restored; and the data order being a function of
``(seed, epoch)``: before each epoch :func:`fit` calls ``train_batches.set_epoch(epoch)`` (or sets
``train_batches.epoch``, or ``train_batches.sampler.set_epoch``) when present, and a DataLoader
shuffling with the global torch RNG is covered by the restored RNG state. The dvclive folder is
rebuilt from the checkpoint's history on every start, so a kill between the checkpoint and the
log can neither lose nor duplicate a row.

CUDA paths (device selection, ``torch.autocast`` float16 + ``GradScaler``, ``non_blocking``
host→device copies, cuDNN determinism flags) are written but only exercised on CPU by the tests:
no GPU was available when this module was written. Pinned host memory is the loader's choice
(``DataLoader(pin_memory=True)``); ``non_blocking`` only overlaps copies when it is set.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from pipeline.models.scoring import TASKS, Task, output_scores
from pipeline.training.checkpoint import (
    CheckpointError,
    capture_rng_state,
    check_plain,
    code_lineage,
    load_checkpoint,
    remove_stale_temps,
    restore_rng_state,
    save_checkpoint,
)

log = logging.getLogger(__name__)

LATEST = "latest.pt"
BEST = "best.pt"
LIVE_DIR = "live"
# Config fields that may change between a run and its resumption without changing the result.
RESUME_FREE_FIELDS = frozenset({"device", "log_every"})
# Lineage entries that say where the inputs were, not what they were (their sha256 are compared):
# a moved workspace (dvc exp run --temp, a copy on another machine) continues its run.
RESUME_FREE_LINEAGE = frozenset({"index_path", "store"})

ValMetricFn = Callable[[np.ndarray, np.ndarray], Mapping[str, float]]


class ResumeMismatch(CheckpointError):
    """``latest.pt`` was written by a run with another config, lineage or class weights."""


# --- config -------------------------------------------------------------------------------------


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
    deterministic and no benchmark on CUDA. ``log_every``: optimizer steps between progress-bar
    loss updates.
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
    log_every: int = 50
    early_stopping: EarlyStopping = field(default_factory=EarlyStopping)

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
            (self.log_every >= 1, "log_every", ">= 1"),
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


# --- building blocks ----------------------------------------------------------------------------


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


# --- batches ------------------------------------------------------------------------------------


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


def _num_batches(batches: Iterable[Any]) -> int:
    if not isinstance(batches, Sized):
        raise TypeError("train_batches must have len() (the LR schedule is laid out per optimizer step)")
    n = len(batches)
    if n < 1:
        raise ValueError("train_batches is empty")
    return n


def _split_batch(batch: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
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
class _Run:
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

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.float16)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean loss of the batch and per-sample scores (see the module docstring)."""
        with self.autocast():
            out = self.model(x)
        out = out.float()
        task = self.cfg.task
        scores = output_scores(task, x, out)
        if task == "multilabel":
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


def _train_epoch(run: _Run, batches: Iterable[Any], epoch: int) -> float:
    """One pass over the training batches; returns the sample-weighted mean loss."""
    set_epoch(batches, epoch)
    run.model.train()
    n_batches = _num_batches(batches)
    accum = run.cfg.accumulation_steps
    run.optimizer.zero_grad(set_to_none=True)
    loss_sum = torch.zeros((), device=run.device, dtype=torch.float64)
    n_samples, pending, steps = 0, 0, 0
    bar = tqdm(batches, total=n_batches, desc=f"epoch {epoch + 1}/{run.cfg.epochs}", leave=False,
               disable=not run.progress)  # fmt: skip
    for i, batch in enumerate(bar):
        x, y = _split_batch(batch, run.device)
        loss, _ = run.forward(x, y)
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
    return float(loss_sum.item() / n_samples)


@torch.no_grad()
def _validate(run: _Run, batches: Iterable[Any]) -> tuple[float, np.ndarray, np.ndarray]:
    """Mean validation loss, labels ``y`` and scores (see the module docstring), in batch order."""
    run.model.eval()
    loss_sum, n = 0.0, 0
    ys: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    for batch in batches:
        x, y = _split_batch(batch, run.device)
        loss, score = run.forward(x, y)
        loss_sum += float(loss) * x.shape[0]
        n += x.shape[0]
        ys.append(y.cpu().numpy())
        scores.append(score.cpu().numpy())
    if n == 0:
        raise ValueError("val_batches yielded no samples")
    return loss_sum / n, np.concatenate(ys), np.concatenate(scores)


def _epoch_metrics(
    run: _Run,
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


# --- checkpoints and resumption -----------------------------------------------------------------


def _state(
    run: _Run,
    stopper: EarlyStopper,
    history: list[dict[str, float]],
    finished: bool,
    lineage: Mapping[str, Any],
    class_weights: torch.Tensor | None,
) -> dict[str, Any]:
    return {
        "epoch": len(history),
        "finished": finished,
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "scaler": run.scaler.state_dict(),
        "early_stopping": stopper.state_dict(),
        "history": [dict(h) for h in history],
        "metrics": dict(history[-1]),
        "rng": capture_rng_state(),
        "config": run.cfg.to_dict(),
        "lineage": dict(lineage),
        "code": code_lineage(),
        "class_weights": None if class_weights is None else class_weights.detach().cpu().clone(),
    }


def _mismatches(ckpt: Mapping[str, Any], cfg: TrainConfig, lineage: Mapping[str, Any],
                class_weights: torch.Tensor | None) -> list[str]:  # fmt: skip
    """Why ``ckpt`` cannot be continued by this call (empty when it can)."""
    problems = []
    old_cfg, new_cfg = dict(ckpt["config"]), cfg.to_dict()
    for key in sorted(set(old_cfg) | set(new_cfg)):
        if key not in RESUME_FREE_FIELDS and old_cfg.get(key) != new_cfg.get(key):
            problems.append(f"config.{key}: checkpoint {old_cfg.get(key)!r}, now {new_cfg.get(key)!r}")
    old_lin = dict(ckpt["lineage"])
    for key in sorted(set(old_lin) | set(lineage)):
        if key not in RESUME_FREE_LINEAGE and old_lin.get(key) != lineage.get(key):
            problems.append(f"lineage.{key}: checkpoint {old_lin.get(key)!r}, now {lineage.get(key)!r}")
    old_w = ckpt["class_weights"]
    same_w = (old_w is None and class_weights is None) or (
        old_w is not None and class_weights is not None and torch.equal(old_w, class_weights.detach().cpu())
    )
    if not same_w:
        problems.append("class_weights differ")
    return problems


def _load_resumable(path: Path, cfg: TrainConfig, lineage: Mapping[str, Any],
                    class_weights: torch.Tensor | None) -> dict[str, Any] | None:  # fmt: skip
    if not path.exists():
        return None
    ckpt = load_checkpoint(path)
    problems = _mismatches(ckpt, cfg, lineage, class_weights)
    if problems:
        raise ResumeMismatch(
            f"{path}: written by a different run, cannot resume ({'; '.join(problems)}); "
            "pass resume=False to start over or use another out_dir"
        )
    return ckpt


def _restore(run: _Run, stopper: EarlyStopper, ckpt: Mapping[str, Any]) -> None:
    run.model.load_state_dict(ckpt["model"])
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.scheduler.load_state_dict(ckpt["scheduler"])
    run.scaler.load_state_dict(ckpt["scaler"])
    stopper.load_state_dict(ckpt["early_stopping"])


# --- dvclive ------------------------------------------------------------------------------------


def _open_live(live_dir: Path, history: Sequence[Mapping[str, float]]) -> Any:
    """A fresh dvclive logger holding exactly ``history`` (one step per completed epoch).

    Rebuilt from the checkpoint rather than opened with ``resume=True``, so the logged rows
    always match ``latest.pt`` whatever the moment of the kill. dvclive writes no ``dvc.yaml``
    and saves no experiment: the DVC stage declares ``live/metrics.json`` as metrics and
    ``live/plots/metrics`` as plots, and ``dvc exp run`` records the experiment.
    """
    from dvclive.live import Live  # dvclive imports dvc: only pay for it when training

    live = Live(dir=str(live_dir), resume=False, save_dvc_exp=False, dvcyaml=False)
    for metrics in history:
        _log_epoch(live, metrics)
    return live


def _log_epoch(live: Any, metrics: Mapping[str, float]) -> None:
    for name, value in metrics.items():
        if name != "epoch":
            live.log_metric(name, value)
    live.next_step()


def _close_live(live: Any, stopper: EarlyStopper, metric: str) -> None:
    if stopper.best_epoch is not None and stopper.best is not None:
        live.summary["best_epoch"] = stopper.best_epoch
        live.summary[f"best_{metric}"] = stopper.best
    live.end()


# --- determinism --------------------------------------------------------------------------------


@contextlib.contextmanager
def _determinism(enabled: bool, device: torch.device) -> Iterator[None]:
    """Deterministic kernels while training; the process-wide flags are put back afterwards."""
    previous = (
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    if enabled and device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    elif device.type == "cuda":
        # Full torch.use_deterministic_algorithms on CUDA needs CUBLAS_WORKSPACE_CONFIG set before
        # cuBLAS starts; cuDNN's flags give reproducible convolutions without that.
        torch.backends.cudnn.deterministic = enabled
        torch.backends.cudnn.benchmark = not enabled
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0])
        torch.backends.cudnn.deterministic = previous[1]
        torch.backends.cudnn.benchmark = previous[2]


# --- fit ----------------------------------------------------------------------------------------


def fit(
    model: nn.Module,
    train_batches: Iterable[Any],
    val_batches: Iterable[Any],
    cfg: TrainConfig,
    out_dir: Path,
    lineage: Mapping[str, Any],
    val_metric_fn: ValMetricFn | None = None,
    resume: bool = True,
    *,
    class_weights: torch.Tensor | None = None,
    progress: bool = True,
    live_dir: Path | None = None,
) -> TrainResult:
    """Train ``model`` in place; checkpoints and dvclive logs go to ``out_dir``.

    ``train_batches`` / ``val_batches``: iterables of ``(x, y)`` (see the module docstring for the
    shapes per task); the training iterable needs ``len()``. ``lineage``: plain values describing
    the inputs (e.g. ``manifest_hash``, ``split_hash``, ``params`` including the model kind and
    kwargs) stored in every checkpoint beside the code's git commit, dirty flag and time.
    ``val_metric_fn(y, scores) -> {name: float}``: computed on the whole validation set each epoch
    and logged as ``val_<name>``. ``class_weights``: ``pos_weight (K,)`` for multilabel or CE
    ``weight (K,)`` for multiclass (see :func:`pos_weight_from_labels`,
    :func:`class_weights_from_labels`).

    With ``resume`` and an existing ``latest.pt`` from the same config (``device`` and
    ``log_every`` aside), lineage and class weights, training continues after its last completed
    epoch (a finished run returns at once); a mismatch raises :class:`ResumeMismatch`. Without
    ``resume`` (or without ``latest.pt``) training starts from the seed and old checkpoints are
    removed. On return the model holds the last epoch's weights; ``best.pt`` holds the best.
    ``live_dir``: where dvclive writes (default ``out_dir/live``; a DVC stage keeps it apart from
    the checkpoints so that metrics and plots are not outputs inside another output).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out_dir)
    latest, best = out_dir / LATEST, out_dir / BEST
    check_plain(dict(lineage), "lineage")  # fail now, not when the first checkpoint is written
    ckpt = _load_resumable(latest, cfg, lineage, class_weights) if resume else None
    if ckpt is None:
        # starting over: a kill before the first new checkpoint must not revive the old run
        latest.unlink(missing_ok=True)
        best.unlink(missing_ok=True)
    run = _make_run(model, train_batches, cfg, class_weights, progress)
    stopper = EarlyStopper(cfg.early_stopping)
    history: list[dict[str, float]] = [] if ckpt is None else [dict(h) for h in ckpt["history"]]
    live = _open_live(Path(live_dir) if live_dir is not None else out_dir / LIVE_DIR, history)
    with _determinism(cfg.deterministic, run.device):
        if ckpt is None:
            seed_everything(cfg.seed)
        else:
            _restore(run, stopper, ckpt)
            # last: nothing between here and the first batch may draw random numbers
            restore_rng_state(ckpt["rng"])
            log.info("resuming %s after epoch %d", out_dir, len(history))
        finished = ckpt is not None and bool(ckpt["finished"])
        while not finished:
            epoch = len(history)
            train_loss = _train_epoch(run, train_batches, epoch)
            metrics = _epoch_metrics(run, train_loss, _validate(run, val_batches), val_metric_fn, epoch + 1)
            history.append(metrics)
            improved = stopper.update(_monitored(metrics, cfg.early_stopping.metric), epoch + 1)
            finished = stopper.should_stop or len(history) >= cfg.epochs
            state = _state(run, stopper, history, finished, lineage, class_weights)
            save_checkpoint(state, *((best, latest) if improved else (latest,)))
            _log_epoch(live, metrics)
            log.info("epoch %d/%d %s", epoch + 1, cfg.epochs, _format(metrics))
    _close_live(live, stopper, cfg.early_stopping.metric)
    return TrainResult(
        history=tuple(history),
        metric=cfg.early_stopping.metric,
        best_epoch=stopper.best_epoch,
        best_value=stopper.best,
        stopped_early=stopper.should_stop and len(history) < cfg.epochs,
        resumed_from_epoch=None if ckpt is None else int(ckpt["epoch"]),
        latest_path=latest,
        best_path=best if best.exists() else None,
    )


def _make_run(
    model: nn.Module,
    train_batches: Iterable[Any],
    cfg: TrainConfig,
    class_weights: torch.Tensor | None,
    progress: bool,
) -> _Run:
    device = resolve_device(cfg.device)
    amp = cfg.amp and device.type == "cuda"
    model.to(device)
    steps_per_epoch = math.ceil(_num_batches(train_batches) / cfg.accumulation_steps)
    optimizer = make_optimizer(model, cfg)
    criterion = make_loss(cfg.task, class_weights).to(device)
    return _Run(
        model=model,
        cfg=cfg,
        device=device,
        amp=amp,
        criterion=criterion,
        optimizer=optimizer,
        scheduler=make_scheduler(optimizer, cfg, steps_per_epoch),
        scaler=torch.amp.GradScaler(device.type, enabled=amp),
        progress=progress,
    )


def _monitored(metrics: Mapping[str, float], name: str) -> float:
    if name not in metrics:
        names = ", ".join(sorted(k for k in metrics if k != "epoch"))
        raise ValueError(f"early_stopping.metric {name!r} is not logged; available: {names}")
    return metrics[name]


def _format(metrics: Mapping[str, float]) -> str:
    return " ".join(f"{k}={v:.5g}" for k, v in metrics.items() if k != "epoch")
