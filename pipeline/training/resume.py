"""Checkpoint state of a run and the rule for continuing it: a ``latest.pt`` is resumed only when
it was written with the same config (``device`` and ``log_every`` aside), lineage (input
locations aside) and class weights."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from pipeline.training.checkpoint import (
    capture_rng_state,
    code_lineage,
    load_checkpoint,
)
from pipeline.training.epoch import EpochRun
from pipeline.training.optim import EarlyStopper
from pipeline.training.options import ResumeMismatch, TrainConfig

# Config fields that may change between a run and its resumption without changing the result.
RESUME_FREE_FIELDS = frozenset({"device", "log_every"})
# Lineage entries that say where the inputs were, not what they were (their sha256 are compared):
# a moved workspace (dvc exp run --temp, a copy on another machine) continues its run.
RESUME_FREE_LINEAGE = frozenset({"index_path", "store"})


def checkpoint_state(
    run: EpochRun,
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
    # A key the checkpoint lacks was added to TrainConfig later: the old run had its default.
    defaults = TrainConfig(task=cfg.task).to_dict()
    old_cfg, new_cfg = {**defaults, **dict(ckpt["config"])}, cfg.to_dict()
    for key in sorted(set(old_cfg) | set(new_cfg)):
        if key not in RESUME_FREE_FIELDS and old_cfg.get(key) != new_cfg.get(key):
            problems.append(describe_change(f"config.{key}", old_cfg.get(key), new_cfg.get(key)))
    old_lin = dict(ckpt["lineage"])
    for key in sorted(set(old_lin) | set(lineage)):
        if key not in RESUME_FREE_LINEAGE and old_lin.get(key) != lineage.get(key):
            problems.append(describe_change(f"lineage.{key}", old_lin.get(key), lineage.get(key)))
    old_w = ckpt["class_weights"]
    same_w = (old_w is None and class_weights is None) or (
        old_w is not None and class_weights is not None and torch.equal(old_w, class_weights.detach().cpu())
    )
    if not same_w:
        problems.append("class_weights differ")
    return problems


SHORT_VALUE = 40  # characters: longer values (digests, whole params sections) are named, not printed
MAX_KEYS = 4


def describe_change(name: str, old: Any, new: Any) -> str:
    """One short phrase for a changed setting: ``"config.epochs 40 → 1"``; for mappings, the
    nested keys that changed (``"lineage.params changed: train.epochs, train.lr"``); for long
    values (sha256 digests, lists) only that they changed."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        keys = _changed_keys(old, new)
        more = f" and {len(keys) - MAX_KEYS} more" if len(keys) > MAX_KEYS else ""
        return f"{name} changed: {', '.join(keys[:MAX_KEYS])}{more}"
    a, b = repr(old), repr(new)
    if len(a) <= SHORT_VALUE and len(b) <= SHORT_VALUE:
        return f"{name} {a} → {b}"
    return f"{name} changed"


def _changed_keys(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    out: list[str] = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += _changed_keys(a, b, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}")
    return out


def load_resumable(path: Path, cfg: TrainConfig, lineage: Mapping[str, Any],
                    class_weights: torch.Tensor | None) -> dict[str, Any] | None:  # fmt: skip
    if not path.exists():
        return None
    ckpt = load_checkpoint(path)
    problems = _mismatches(ckpt, cfg, lineage, class_weights)
    if problems:
        raise ResumeMismatch(path, problems)
    return ckpt


def restore(run: EpochRun, stopper: EarlyStopper, ckpt: Mapping[str, Any]) -> None:
    run.model.load_state_dict(ckpt["model"])
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.scheduler.load_state_dict(ckpt["scheduler"])
    run.scaler.load_state_dict(ckpt["scaler"])
    stopper.load_state_dict(ckpt["early_stopping"])
