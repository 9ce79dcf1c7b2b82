"""The train stage: one model family on one profile's split index, end to end.

Loaders over the shards (shuffled block reads for training, in order for validation), the
model's targets (:mod:`pipeline.dataset.targets`), class weights from the training split, the model card
and lineage stored in every checkpoint, then :func:`pipeline.training.loop.fit`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from pipeline.core.fs import sha256_file
from pipeline.dataset.loader import ShardLoader, make_loader
from pipeline.dataset.targets import TargetBatches, Targets
from pipeline.evaluation.metrics import macro_auroc, roc_auc
from pipeline.evaluation.task_reports import multiclass_report
from pipeline.models.card import ModelCard
from pipeline.signal.preprocess import SignalPlan
from pipeline.store.labels import read_labels
from pipeline.store.remote import open_store
from pipeline.store.root import StoreRoot
from pipeline.training.loop import fit
from pipeline.training.optim import class_weights_from_labels, pos_weight_from_labels
from pipeline.training.options import TrainConfig, TrainResult


@dataclass(frozen=True)
class LoaderSettings:
    """How the stage reads shards: ``batch_size`` records per batch, ``num_workers`` decoding
    processes, ``shuffle_buffer`` records mixed across blocks."""

    batch_size: int = 32
    num_workers: int = 0
    shuffle_buffer: int = 512


def make_card(
    name: str,
    kind: str,
    model_kwargs: Mapping[str, Any],
    targets: Targets,
    profile: str,
    plan: SignalPlan,
    input_shape: tuple[int, int],
    scale_mv: float,
    tables_digest: str = "",
) -> ModelCard:
    """The card of a model about to be trained; ``n_leads``/``in_channels``/``n_classes``/``length``
    are filled in from the data so params need not repeat them."""
    kwargs = dict(model_kwargs)
    c, length = input_shape
    if kind == "resnet1d":
        kwargs.setdefault("n_leads", c)
        kwargs.setdefault("n_classes", len(targets.classes))
    elif kind == "crnn":
        kwargs.setdefault("n_classes", len(targets.classes))
    else:
        kwargs.setdefault("in_channels", c)
        kwargs.setdefault("length", length)
    return ModelCard(
        name=name, kind=kind, kwargs=kwargs, task=targets.task, classes=targets.classes,
        vocabulary=targets.vocabulary, profile=profile, signal_plan=asdict(plan),
        input_shape=input_shape, normal_class=targets.normal_class, scale_mv=scale_mv,
        labels_scheme=targets.scheme, labels_tables_digest=tables_digest,
    )  # fmt: skip


def val_metric_fn(targets: Targets, f1_classes: Sequence[str] | None) -> Callable[..., dict[str, float]]:
    """Per-epoch validation metrics: macro AUROC (multilabel), mean F1 over ``f1_classes`` and macro
    AUROC (multiclass), AUROC of the anomaly score (reconstruction)."""

    def fn(y: npt.NDArray[Any], scores: npt.NDArray[Any]) -> dict[str, float]:
        if targets.task == "multilabel":
            return {"macro_auroc": _nan_to_zero(macro_auroc(y, scores))}
        if targets.task == "multiclass":
            rep = multiclass_report(np.argmax(y, axis=1), scores, targets.classes, f1_classes)
            return {"f1_selected": float(rep["f1"]["selected"] or 0.0),
                    "macro_auroc": float(rep["auroc"]["macro"] or 0.0)}  # fmt: skip
        return {"auroc": _nan_to_zero(roc_auc(y.reshape(-1), scores.reshape(-1)))}

    return fn


def _nan_to_zero(x: float) -> float:
    return 0.0 if not np.isfinite(x) else float(x)


def loaders(
    store_root: StoreRoot | Path, profile: str, index_path: Path, seed: int, settings: LoaderSettings
) -> tuple[ShardLoader, ShardLoader]:
    train = make_loader(
        store_root, profile, index_path, "train", batch_size=settings.batch_size, shuffle=True, seed=seed,
        num_workers=settings.num_workers, shuffle_buffer=settings.shuffle_buffer,
    )  # fmt: skip
    val = make_loader(
        store_root, profile, index_path, "val", batch_size=settings.batch_size, shuffle=False, seed=seed,
        num_workers=0,
    )  # fmt: skip
    if len(train.records) == 0 or len(val.records) == 0:
        raise ValueError(
            f"{index_path}: the train split has {len(train.records)} records and val {len(val.records)}; "
            "both need at least one (more data, or other split fractions)"
        )
    return train, val


def class_weights(targets: Targets, y_vocab: npt.NDArray[Any], power: float = 1.0) -> torch.Tensor | None:
    """``pos_weight`` (multilabel) or balanced CE weights (multiclass) from the training labels,
    raised to ``power``: with 8 noisy records among 1,400 a balanced weight is ≈ 44 and a handful
    of records steer every update; ``power`` 0.5 keeps the ordering but not the extremes."""
    t = targets.of(y_vocab)
    if targets.task == "multilabel":
        return pos_weight_from_labels(t).pow(power)
    if targets.task == "multiclass":
        return class_weights_from_labels(t, len(targets.classes)).pow(power)
    return None


def train_model(
    *,
    name: str,
    kind: str,
    model_kwargs: Mapping[str, Any],
    targets: Targets,
    store_root: StoreRoot | Path,
    profile: str,
    plan: SignalPlan,
    index_path: Path,
    out_dir: Path,
    cfg: TrainConfig,
    settings: LoaderSettings,
    use_class_weights: bool,
    class_weight_power: float = 1.0,
    f1_classes: Sequence[str] | None,
    params: Mapping[str, Any],
    resume: bool = True,
    progress: bool = True,
    live_dir: Path | None = None,
) -> TrainResult:
    """Train model ``name`` on the train split of ``index_path``; checkpoints into ``out_dir``.

    ``params`` (plain values) are stored in the lineage beside the store manifest's and the
    index's sha256, so a checkpoint says exactly what it was trained from.
    """
    train, val = loaders(store_root, profile, index_path, cfg.seed, settings)
    store = open_store(store_root, profile)
    scale = train.records.shards[0].scale_mv if train.records.shards[0].dtype == "int16" else 0.0
    labels = read_labels(store, targets.scheme)
    card = make_card(
        name, kind, model_kwargs, targets, profile, plan, train.records.sample_shape, scale,
        labels.tables_digest if labels is not None else "",
    )  # fmt: skip
    weights = class_weights(targets, train.records.y, class_weight_power) if use_class_weights else None
    lineage = {
        "card": card.to_dict(),
        "manifest_sha256": store.manifest_sha256(),
        "index_sha256": sha256_file(index_path),
        "index_path": str(index_path),
        "store": store.location(),
        "params": json.loads(json.dumps(params, default=str)),
        "n_train": len(train.records),
        "n_val": len(val.records),
    }
    torch.manual_seed(cfg.seed)  # the initial weights are part of the seeded run
    model = card.build()
    return fit(
        model, TargetBatches(train, targets), TargetBatches(val, targets), cfg, out_dir, lineage,
        val_metric_fn(targets, f1_classes), resume=resume, class_weights=weights, progress=progress,
        live_dir=live_dir,
    )  # fmt: skip
