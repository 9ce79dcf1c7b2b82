"""What a trained model is, as plain values carried inside its checkpoint.

A checkpoint's ``lineage["card"]`` holds a :class:`ModelCard`: the model family and constructor
kwargs, the task, the output classes, and the profile's signal settings. With it, evaluation,
export and ``ecgpipe predict`` rebuild the network and preprocess new records exactly as the
training shards were, without reading ``params.yaml``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from pipeline.models import build_model
from pipeline.models.scoring import TASKS, Task
from pipeline.signal.preprocess import SignalPlan

CARD_VERSION = 1


@dataclass(frozen=True)
class ModelCard:
    """A trained model's identity.

    ``name``: the pipeline's name for it (``resnet``, ``autoencoder``, ``crnn``); ``kind`` and
    ``kwargs``: :func:`pipeline.models.build_model` arguments; ``classes``: the output columns
    (logits order) for ``multilabel``/``multiclass``, empty for ``reconstruction``;
    ``vocabulary``: the store's unified label columns the classes were taken from;
    ``normal_class``: for ``reconstruction``, the class that counts as normal (anything else is an
    anomaly); ``profile`` / ``signal_plan``: the shard profile and its preprocessing
    (:class:`SignalPlan` as a dict); ``input_shape``: ``(C, L)`` of one record; ``scale_mv``: the
    int16 step the shards stored signals at (0 for float32 storage), which prediction replays;
    ``labels_scheme`` / ``labels_tables_digest``: the label scheme the classes belong to and the
    digest of its tables, vocabulary and rule when the model was trained (cards written before
    schemes existed read as ``coarse`` with no digest).
    ``training_data``: what the model learnt from, for people reading its predictions
    (:func:`training_data_summary`): sources, records per split and source, the label set, and
    the sources that were the synthetic demo data; empty for cards written before it existed.
    """

    name: str
    kind: str
    kwargs: Mapping[str, Any]
    task: Task
    classes: tuple[str, ...]
    vocabulary: tuple[str, ...]
    profile: str
    signal_plan: Mapping[str, Any]
    input_shape: tuple[int, int]
    normal_class: str | None = None
    scale_mv: float = 0.001
    labels_scheme: str = "coarse"
    labels_tables_digest: str = ""
    version: int = field(default=CARD_VERSION)
    training_data: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"model card task must be one of {TASKS}, got {self.task!r}")
        if self.task == "reconstruction" and self.normal_class is None:
            raise ValueError("a reconstruction model card needs normal_class")
        if self.task != "reconstruction" and not self.classes:
            raise ValueError(f"a {self.task} model card needs its output classes")

    def build(self) -> nn.Module:
        """A fresh (untrained) network of this card's family."""
        return build_model(self.kind, **dict(self.kwargs))

    def plan(self) -> SignalPlan:
        """The profile's preprocessing, as used when the training shards were written."""
        d = dict(self.signal_plan)
        d["leads"] = tuple(d["leads"])
        d["lead_aliases"] = tuple((str(k), tuple(v)) for k, v in d["lead_aliases"])
        if d.get("bandpass_hz") is not None:
            d["bandpass_hz"] = tuple(d["bandpass_hz"])
        return SignalPlan(**d)

    @property
    def output_names(self) -> tuple[str, ...]:
        """Score columns: the classes, or ``("anomaly_score",)`` for a reconstruction model."""
        return self.classes if self.task != "reconstruction" else ("anomaly_score",)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (lists, not tuples), as stored in checkpoints."""
        d = dataclasses.asdict(self)
        d["signal_plan"] = _plain(d["signal_plan"])
        d["kwargs"] = _plain(d["kwargs"])
        d["training_data"] = _plain(d["training_data"])
        d["classes"] = list(self.classes)
        d["vocabulary"] = list(self.vocabulary)
        d["input_shape"] = list(self.input_shape)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelCard:
        d = dict(data)
        version = int(d.get("version", 0))
        if version != CARD_VERSION:
            raise ValueError(
                f"model card version {version}, this code reads {CARD_VERSION}: re-train the model"
            )
        d["classes"] = tuple(d["classes"])
        d["vocabulary"] = tuple(d["vocabulary"])
        c, length = d["input_shape"]
        d["input_shape"] = (int(c), int(length))
        return cls(**d)


def training_data_summary(
    records: Mapping[str, Mapping[str, int]],
    label_set: Sequence[str],
    synthetic_demo_sources: Sequence[str] = (),
) -> dict[str, Any]:
    """The card's ``training_data``: ``records`` is split → source → record count (from the
    split index), ``label_set`` the classes the model outputs (its normal class for an
    autoencoder), ``synthetic_demo_sources`` the sources whose raw tree ``ecgpipe demo-data`` wrote."""
    sources = sorted({s for per_source in records.values() for s in per_source})
    return {
        "sources": sources,
        "records": {split: dict(sorted(c.items())) for split, c in records.items()},
        "label_set": list(label_set),
        "synthetic_demo_sources": sorted(set(synthetic_demo_sources) & set(sources)),
    }


def describe_training_data(card: ModelCard) -> str:
    """One line for people: ``"trained on cinc2017 (168 train / 36 val / 36 test records); labels
    N, A, O, ~"``, with a warning when any source was the synthetic demo data."""
    td = card.training_data
    if not td:
        return f"{card.name}: this checkpoint does not say what data it was trained on"
    records = td.get("records", {})
    parts = []
    for source in td.get("sources", []):
        counts = " / ".join(f"{c.get(source, 0):,} {split}" for split, c in records.items())
        parts.append(f"{source} ({counts} records)")
    labels = ", ".join(td.get("label_set", []))
    text = f"{card.name} was trained on {', '.join(parts) or 'no records'}; labels {labels}"
    demo = td.get("synthetic_demo_sources", [])
    if demo:
        text += f"; SYNTHETIC DEMO DATA ({', '.join(demo)}): not a clinical model"
    return text


def card_from_checkpoint(ckpt: Mapping[str, Any], where: str = "checkpoint") -> ModelCard:
    """The card in a loaded checkpoint (``ckpt["lineage"]["card"]``), with a clear error if absent."""
    lineage = ckpt.get("lineage")
    if not isinstance(lineage, Mapping) or "card" not in lineage:
        raise ValueError(f"{where}: no model card in its lineage; it was not written by `ecgpipe train`")
    return ModelCard.from_dict(lineage["card"])


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
