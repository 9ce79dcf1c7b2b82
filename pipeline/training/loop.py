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
import logging
import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline.training import distributed
from pipeline.training.checkpoint import (
    check_plain,
    remove_stale_temps,
    restore_rng_state,
    save_checkpoint,
)
from pipeline.training.epoch import EpochRun, ValMetricFn, epoch_metrics, num_batches, train_epoch, validate
from pipeline.training.optim import (
    EarlyStopper,
    make_loss,
    make_optimizer,
    make_scheduler,
    resolve_device,
    seed_everything,
)
from pipeline.training.options import TrainConfig, TrainResult
from pipeline.training.resume import checkpoint_state, load_resumable, restore

log = logging.getLogger(__name__)

LATEST = "latest.pt"
BEST = "best.pt"
LIVE_DIR = "live"


# --- dvclive ------------------------------------------------------------------------------------


def _open_live(live_dir: Path, history: Sequence[Mapping[str, float]]) -> Any:
    """A fresh dvclive logger holding exactly ``history`` (one step per completed epoch).

    Rebuilt from the checkpoint rather than opened with ``resume=True``, so the logged rows
    always match ``latest.pt`` whatever the moment of the kill. dvclive writes no ``dvc.yaml``
    and saves no experiment: the DVC stage declares ``live/metrics.json`` as metrics and
    ``live/plots/metrics`` as an output that dvc.yaml's per-metric plots draw over 1-based
    epochs, and ``dvc exp run`` records the experiment.
    """
    from dvclive.live import Live  # dvclive imports dvc: only pay for it when training

    live = Live(dir=str(live_dir), resume=False, save_dvc_exp=False, dvcyaml=False)
    live.step = 1  # the logged step is the epoch number as the console counts it ("epoch 1/40")
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
def _determinism(enabled: bool, device: torch.device, threads: int) -> Iterator[None]:
    """Deterministic kernels and ``threads`` intra-op CPU threads while training (a CPU sum split over
    another number of threads rounds differently); the process-wide flags are put back afterwards."""
    previous = (
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        torch.get_num_threads(),
    )
    torch.set_num_threads(threads)
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
        torch.set_num_threads(previous[3])


# --- fit ----------------------------------------------------------------------------------------


@dataclass
class Throughput:
    """Training samples per wall-clock second: of the last epoch and over every epoch added."""

    samples: int = 0
    seconds: float = 0.0
    last: float = 0.0

    def add(self, samples: int, seconds: float) -> None:
        self.samples += samples
        self.seconds += seconds
        self.last = samples / seconds if seconds > 0 else 0.0

    @property
    def mean(self) -> float | None:
        return self.samples / self.seconds if self.seconds > 0 else None


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
    latest, best = out_dir / LATEST, out_dir / BEST
    main = distributed.is_main()  # under torchrun only rank 0 writes files
    train_batches = distributed.even(train_batches)
    ckpt = _checkpoint_to_resume(out_dir, cfg, lineage, class_weights, resume)
    run = _make_run(model, train_batches, cfg, class_weights, progress and main)
    stopper = EarlyStopper(cfg.early_stopping)
    speed = Throughput()
    history: list[dict[str, float]] = [] if ckpt is None else [dict(h) for h in ckpt["history"]]
    live_path = Path(live_dir) if live_dir is not None else out_dir / LIVE_DIR
    live = _open_live(live_path, history) if main else None
    with _determinism(cfg.deterministic, run.device, cfg.threads):
        _seed_or_restore(run, stopper, ckpt, out_dir)
        finished = ckpt is not None and bool(ckpt["finished"])
        while not finished:
            epoch = len(history)
            start = time.perf_counter()
            train_loss, samples = train_epoch(run, train_batches, epoch)
            speed.add(samples, time.perf_counter() - start)
            metrics = epoch_metrics(run, train_loss, validate(run, val_batches), val_metric_fn, epoch + 1)
            history.append(metrics)
            improved = stopper.update(_monitored(metrics, cfg.early_stopping.metric), epoch + 1)
            finished = stopper.should_stop or len(history) >= cfg.epochs
            if main:
                state = checkpoint_state(run, stopper, history, finished, lineage, class_weights)
                save_checkpoint(state, *((best, latest) if improved else (latest,)))
                _log_epoch(live, metrics)
                log.info(
                    "epoch %d/%d %s (%.1f records/s)", epoch + 1, cfg.epochs, _format(metrics), speed.last
                )
    if live is not None:
        _close_live(live, stopper, cfg.early_stopping.metric)
    distributed.barrier()  # the other ranks return once rank 0's files are written
    return replace(_result(history, cfg, stopper, ckpt, out_dir), train_records_per_s=speed.mean)


def _result(
    history: list[dict[str, float]],
    cfg: TrainConfig,
    stopper: EarlyStopper,
    ckpt: Mapping[str, Any] | None,
    out_dir: Path,
) -> TrainResult:
    """What :func:`fit` returns once the last epoch is written."""
    best = out_dir / BEST
    return TrainResult(
        history=tuple(history),
        metric=cfg.early_stopping.metric,
        best_epoch=stopper.best_epoch,
        best_value=stopper.best,
        stopped_early=stopper.should_stop and len(history) < cfg.epochs,
        resumed_from_epoch=None if ckpt is None else int(ckpt["epoch"]),
        latest_path=out_dir / LATEST,
        best_path=best if best.exists() else None,
    )


def _checkpoint_to_resume(
    out_dir: Path,
    cfg: TrainConfig,
    lineage: Mapping[str, Any],
    class_weights: torch.Tensor | None,
    resume: bool,
) -> dict[str, Any] | None:
    """The ``latest.pt`` to continue (None: start over, with the old checkpoints removed).

    Distributed: every rank reads the same ``latest.pt`` (so all resume or all raise), then
    rank 0 alone tidies the folder."""
    main = distributed.is_main()
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(out_dir)
    distributed.barrier()
    latest, best = out_dir / LATEST, out_dir / BEST
    check_plain(dict(lineage), "lineage")  # fail now, not when the first checkpoint is written
    ckpt = load_resumable(latest, cfg, lineage, class_weights) if resume else None
    distributed.barrier()
    if ckpt is None and main:
        # starting over: a kill before the first new checkpoint must not revive the old run
        latest.unlink(missing_ok=True)
        best.unlink(missing_ok=True)
    return ckpt


def _seed_or_restore(
    run: EpochRun, stopper: EarlyStopper, ckpt: Mapping[str, Any] | None, out_dir: Path
) -> None:
    if ckpt is None:
        seed_everything(run.cfg.seed)
        return
    restore(run, stopper, ckpt)
    # last: nothing between here and the first batch may draw random numbers
    restore_rng_state(ckpt["rng"])
    log.info("resuming %s after epoch %d", out_dir, int(ckpt["epoch"]))


def _make_run(
    model: nn.Module,
    train_batches: Iterable[Any],
    cfg: TrainConfig,
    class_weights: torch.Tensor | None,
    progress: bool,
) -> EpochRun:
    device = resolve_device(cfg.device)
    amp = cfg.amp and device.type == "cuda"
    model.to(device)
    steps_per_epoch = math.ceil(num_batches(train_batches) / cfg.accumulation_steps)
    optimizer = make_optimizer(model, cfg)
    criterion = make_loss(cfg.task, class_weights).to(device)
    return EpochRun(
        model=model,
        cfg=cfg,
        device=device,
        amp=amp,
        criterion=criterion,
        optimizer=optimizer,
        scheduler=make_scheduler(optimizer, cfg, steps_per_epoch),
        scaler=torch.amp.GradScaler(device.type, enabled=amp),
        progress=progress,
        net=distributed.wrap(model, device),
    )


def _monitored(metrics: Mapping[str, float], name: str) -> float:
    if name not in metrics:
        names = ", ".join(sorted(k for k in metrics if k != "epoch"))
        raise ValueError(f"early_stopping.metric {name!r} is not logged; available: {names}")
    return metrics[name]


def _format(metrics: Mapping[str, float]) -> str:
    return " ".join(f"{k}={v:.5g}" for k, v in metrics.items() if k != "epoch")
