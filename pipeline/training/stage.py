"""The train stage: one model family on one profile's split index, end to end.

Loaders over the shards (shuffled block reads for training, in order for validation), the
model's targets (:mod:`pipeline.dataset.targets`), class weights from the training split, the model card
and lineage stored in every checkpoint, then :func:`pipeline.training.loop.fit`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from pipeline.core.fs import sha256_file
from pipeline.dataset.loader import ShardLoader, load_split, make_loader
from pipeline.dataset.splits import read_index
from pipeline.dataset.targets import TargetBatches, Targets
from pipeline.evaluation.metrics import macro_auroc, roc_auc
from pipeline.evaluation.task_reports import multiclass_report
from pipeline.models.card import ModelCard, training_data_summary
from pipeline.signal.preprocess import SignalPlan
from pipeline.store.labels import read_labels
from pipeline.store.remote import open_store
from pipeline.store.root import StoreRoot
from pipeline.training import distributed
from pipeline.training.loop import fit
from pipeline.training.optim import class_weights_from_labels, pos_weight_from_labels
from pipeline.training.options import TrainConfig, TrainResult

SAMPLERS = ("shuffle", "balanced")


@dataclass(frozen=True)
class LoaderSettings:
    """How the stage reads shards: ``batch_size`` records per batch (per rank under torchrun),
    ``num_workers`` decoding processes, ``shuffle_buffer`` records mixed across blocks.
    ``sampler``: ``shuffle`` (each training record once per epoch) or ``balanced`` (records drawn
    with weight ``count(class) ** -balance_power``: 1 gives every class the same expected share,
    0 is ``shuffle``; an alternative to loss class weights, see :func:`balanced_weights`)."""

    batch_size: int = 32
    num_workers: int = 0
    shuffle_buffer: int = 512
    sampler: str = "shuffle"
    balance_power: float = 1.0

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        if not 0.0 <= self.balance_power <= 1.0:
            raise ValueError(f"balance_power must be in [0, 1], got {self.balance_power!r}")


def balanced_weights(targets: Targets, y_vocab: npt.NDArray[Any], power: float) -> npt.NDArray[np.float64]:
    """Sampling weight per training record ``(N,)``: ``count(class) ** -power`` of its class
    (multiclass), or of its rarest positive class (multilabel; a record with none counts as the
    commonest). Reconstruction has no classes to balance."""
    t = np.asarray(targets.of(y_vocab))
    if targets.task == "reconstruction" or t.ndim != 2:
        raise ValueError("the balanced sampler needs a classification task (multiclass or multilabel)")
    counts = np.maximum(t.sum(axis=0), 1.0)
    per_class = counts ** (-power)
    weights = np.where(t > 0, per_class[None, :], 0.0).max(axis=1)
    out: npt.NDArray[np.float64] = np.where(weights > 0, weights, per_class.min()).astype(np.float64)
    return out


def make_card(
    name: str,
    kind: str,
    model_kwargs: Mapping[str, Any],
    targets: Targets,
    profile: str,
    plan: SignalPlan,
    input_shape: tuple[int, int],
    scale_mv: float,
    training_data: Mapping[str, Any] | None = None,
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
        training_data=dict(training_data or {}),
        labels_scheme=targets.scheme, labels_tables_digest=tables_digest,
    )  # fmt: skip


def index_summary(
    index_path: Path, targets: Targets, synthetic_demo_sources: Sequence[str] = ()
) -> dict[str, Any]:
    """The card's training-data summary from the split index: records per split and source
    (the source is the record id's ``<source>:`` prefix)."""
    index = read_index(index_path)
    splits = dict.fromkeys(index.header.get("fractions", {}) or ("train", "val", "test"))
    records = {
        split: dict(Counter(r.record_id.split(":", 1)[0] for r in index.split_rows(split)))
        for split in splits
    }
    label_set = targets.classes or ((targets.normal_class,) if targets.normal_class else ())
    return training_data_summary(records, label_set, synthetic_demo_sources)


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
    store_root: StoreRoot | Path,
    profile: str,
    index_path: Path,
    seed: int,
    settings: LoaderSettings,
    targets: Targets | None = None,
) -> tuple[ShardLoader, ShardLoader]:
    """Training loader (this rank's blocks under torchrun; class-balanced when the settings say
    so, which needs ``targets``) and the in-order validation loader (the whole split)."""
    weights = None
    if settings.sampler == "balanced":
        if targets is None:
            raise ValueError("the balanced sampler needs the model's targets")
        records = load_split(open_store(store_root, profile), Path(index_path), "train")
        weights = balanced_weights(targets, records.y, settings.balance_power)
    train = make_loader(
        store_root, profile, index_path, "train", batch_size=settings.batch_size, shuffle=True, seed=seed,
        num_workers=settings.num_workers, shuffle_buffer=settings.shuffle_buffer,
        rank=distributed.rank(), world_size=distributed.world_size(), record_weights=weights,
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


@dataclass(frozen=True)
class TrainJob:
    """What one ``ecgpipe train`` run trains on and how: plain values from the validated params.

    ``params`` (plain values) are stored in the lineage beside the store manifest's and the index's
    sha256, so a checkpoint says exactly what it was trained from. ``synthetic_demo_sources``: sources
    whose raw tree was the demo data (named in the card).
    """

    name: str
    kind: str
    model_kwargs: Mapping[str, Any]
    targets: Targets
    store_root: StoreRoot | Path
    profile: str
    plan: SignalPlan
    index_path: Path
    out_dir: Path
    cfg: TrainConfig
    settings: LoaderSettings
    use_class_weights: bool
    f1_classes: Sequence[str] | None
    params: Mapping[str, Any]
    class_weight_power: float = 1.0
    live_dir: Path | None = None
    synthetic_demo_sources: Sequence[str] = ()


def train_model(job: TrainJob, *, resume: bool = True, progress: bool = True) -> TrainResult:
    """Train model ``job.name`` on the train split of ``job.index_path``; checkpoints into
    ``job.out_dir``. Under ``torchrun`` (``WORLD_SIZE`` > 1) each process trains data-parallel
    (:mod:`pipeline.training.distributed`)."""
    with distributed.process_group_from_env(job.cfg.device):
        return _train_model(job, resume, progress)


def _train_model(job: TrainJob, resume: bool, progress: bool) -> TrainResult:
    targets, index_path, cfg = job.targets, job.index_path, job.cfg
    train, val = loaders(job.store_root, job.profile, index_path, cfg.seed, job.settings, targets)
    store = open_store(job.store_root, job.profile)
    scale = train.records.shards[0].scale_mv if train.records.shards[0].dtype == "int16" else 0.0
    summary = index_summary(index_path, targets, job.synthetic_demo_sources)
    labels = read_labels(store, targets.scheme)
    card = make_card(
        job.name, job.kind, job.model_kwargs, targets, job.profile, job.plan, train.records.sample_shape,
        scale, summary,
        tables_digest=labels.tables_digest if labels is not None else "",
    )  # fmt: skip
    weights = (
        class_weights(targets, train.records.y, job.class_weight_power) if job.use_class_weights else None
    )
    lineage = {
        "card": card.to_dict(),
        "manifest_sha256": store.manifest_sha256(),
        "index_sha256": sha256_file(index_path),
        "index_path": str(index_path),
        "store": store.location(),
        "params": json.loads(json.dumps(job.params, default=str)),
        "n_train": len(train.records),
        "n_val": len(val.records),
    }
    torch.manual_seed(cfg.seed)  # the initial weights are part of the seeded run
    model = card.build()
    if distributed.is_distributed() and torch.cuda.is_available() and cfg.device != "cpu":
        # one set of BatchNorm statistics over the global batch (SyncBatchNorm runs on CUDA only)
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)  # type: ignore[no-untyped-call]  # untyped in torch
    return fit(
        model, TargetBatches(train, targets), TargetBatches(val, targets), cfg, job.out_dir, lineage,
        val_metric_fn(targets, job.f1_classes), resume=resume, class_weights=weights, progress=progress,
        live_dir=job.live_dir,
    )  # fmt: skip
