"""Decision thresholds chosen where they may be chosen, and nowhere else.

Thresholds tuned on the data they are evaluated on inflate every thresholded metric, so the API
makes that hard to do by mistake:

- Scores travel with their split name and record ids in a :class:`ScoredSplit`.
- :func:`choose_thresholds` (classifiers: per-class F1-optimal) accepts only the ``"val"`` split;
  :func:`anomaly_threshold` (autoencoder: from training normals) accepts only ``"train"``.
  Neither has a raw-array form.
- The resulting :class:`ThresholdSet` remembers where it was chosen (``chosen_on``, ``n``, a digest
  of the record ids, and in memory the ids themselves); :meth:`ThresholdSet.apply` refuses the
  split it was chosen on and any split sharing a record with it.

Decisions are ``score >= threshold`` throughout (as in ``pipeline.evaluation.metrics``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from pipeline.evaluation.metrics import F64, Bool, apply_threshold_values, as_labels_2d, as_scores_2d

SplitName = Literal["train", "val", "test"]
SPLITS: tuple[str, ...] = ("train", "val", "test")
AnomalyMethod = Literal["percentile", "mean_k_sigma"]


class ThresholdLeakError(ValueError):
    """Thresholds would be chosen on, or applied to, data they must not see."""


def ids_digest(record_ids: Sequence[str]) -> str:
    """sha256 of the sorted record ids: identifies a split without storing it."""
    return hashlib.sha256("\n".join(sorted(record_ids)).encode()).hexdigest()


@dataclass(frozen=True, eq=False)
class ScoredSplit:
    """Labels and model scores of one split.

    ``y_true`` ``(N, K)`` multi-hot (or ``(N,)`` 0/1, e.g. is-anomalous), ``scores`` of the same
    shape (higher = more positive), ``record_ids`` ``(N,)`` unique, in row order.
    """

    name: SplitName
    y_true: npt.NDArray[Any]
    scores: npt.NDArray[Any]
    record_ids: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.name not in SPLITS:
            raise ValueError(f"split name must be one of {SPLITS}, got {self.name!r}")
        y = as_labels_2d(self.y_true)
        s = as_scores_2d(self.scores, y.shape[0])
        if s.shape != y.shape:
            raise ValueError(f"labels {y.shape} and scores {s.shape} differ in shape")
        if len(self.record_ids) != y.shape[0] or len(set(self.record_ids)) != y.shape[0]:
            raise ValueError(f"need {y.shape[0]} unique record ids, got {len(self.record_ids)}")

    @property
    def labels(self) -> Bool:
        """``(N, K)`` bool."""
        return as_labels_2d(self.y_true)

    @property
    def scores_2d(self) -> F64:
        """``(N, K)`` float64."""
        return as_scores_2d(self.scores)


@dataclass(frozen=True)
class ThresholdSet:
    """Thresholds ``(K,)`` with their provenance.

    ``chosen_on`` is the split name, ``n`` the number of records used (for the autoencoder: the
    training normals), ``method`` "max_f1", "percentile" or "mean_k_sigma", ``params`` its
    settings, ``notes`` what fell back to a default. ``selection_ids`` (not serialised) lets
    :meth:`apply` detect overlap record by record; after :meth:`from_dict` only the digest and
    split name are checked.
    """

    classes: tuple[str, ...]
    values: tuple[float, ...]
    chosen_on: SplitName
    n: int
    method: str
    ids_digest: str
    params: Mapping[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    selection_ids: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.classes) != len(self.values):
            raise ValueError(f"{len(self.classes)} classes but {len(self.values)} thresholds")

    def as_array(self) -> F64:
        """Threshold values ``(K,)``."""
        return np.asarray(self.values, dtype=np.float64)

    def check_unseen(self, split: ScoredSplit) -> None:
        """Raise :class:`ThresholdLeakError` if ``split`` is (or overlaps) the selection data."""
        if split.name == self.chosen_on:
            raise ThresholdLeakError(
                f"thresholds were chosen on {self.chosen_on!r}; evaluate on another split"
            )
        if ids_digest(split.record_ids) == self.ids_digest:
            raise ThresholdLeakError(
                f"split {split.name!r} holds exactly the records thresholds were chosen on"
            )
        shared = self.selection_ids.intersection(split.record_ids)
        if shared:
            example = sorted(shared)[0]
            raise ThresholdLeakError(
                f"{len(shared)} records of split {split.name!r} were used for selection (e.g. {example})"
            )

    def apply(self, split: ScoredSplit) -> Bool:
        """Decisions ``(N, K)`` (or ``(N,)`` for 1-D scores) on a split the thresholds never saw."""
        self.check_unseen(split)
        if split.scores_2d.shape[1] != len(self.values):
            raise ValueError(f"{split.scores_2d.shape[1]} score columns but {len(self.values)} thresholds")
        return apply_threshold_values(split.scores, self.as_array())

    def to_dict(self) -> dict[str, Any]:
        """JSON form (without the record ids); :meth:`from_dict` reads it back."""
        return {
            "classes": list(self.classes),
            "values": [float(v) for v in self.values],
            "chosen_on": self.chosen_on,
            "n": self.n,
            "method": self.method,
            "ids_digest": self.ids_digest,
            "params": {k: float(v) for k, v in self.params.items()},
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ThresholdSet:
        """Inverse of :meth:`to_dict`."""
        chosen_on = str(data["chosen_on"])
        if chosen_on not in ("train", "val"):
            raise ThresholdLeakError(f"thresholds chosen on {chosen_on!r} are not acceptable")
        return cls(
            classes=tuple(str(c) for c in data["classes"]),
            values=tuple(float(v) for v in data["values"]),
            chosen_on=chosen_on,  # type: ignore[arg-type]  # checked just above
            n=int(data["n"]),
            method=str(data["method"]),
            ids_digest=str(data["ids_digest"]),
            params={str(k): float(v) for k, v in dict(data.get("params", {})).items()},
            notes=tuple(str(x) for x in data.get("notes", [])),
        )


# --------------------------------------------------------------------------- classifiers


def max_f1_threshold(y: Bool, s: F64) -> tuple[float, float]:
    """The threshold (one of the scores) maximising F1 of ``s >= threshold``, and that F1.

    ``y``, ``s`` ``(N,)``, at least one positive. Ties in F1 go to the lowest threshold, i.e. the
    highest recall at that F1: in screening a missed finding costs more than a second look.
    """
    order = np.argsort(-s)
    sv = s[order]
    ends = np.flatnonzero(np.r_[sv[1:] != sv[:-1], True])
    tp = np.cumsum(y[order], dtype=np.float64)[ends]
    predicted = ends + 1.0
    f1 = 2 * tp / (predicted + float(y.sum()))
    best = int(np.flatnonzero(f1 == f1.max())[-1])
    return float(sv[ends[best]]), float(f1[best])


def _require(split: ScoredSplit, expected: SplitName, what: str) -> None:
    if not isinstance(split, ScoredSplit):
        raise TypeError(f"{what} takes a ScoredSplit, got {type(split).__name__}")
    if split.name != expected:
        raise ThresholdLeakError(f"{what} must use the {expected!r} split, got {split.name!r}")


def choose_thresholds(val: ScoredSplit, classes: Sequence[str], default: float = 0.5) -> ThresholdSet:
    """Per-class F1-maximising thresholds from the validation split only.

    A class with no positive in ``val`` gets ``default`` (F1 is 0 or undefined at every
    threshold there) and a note saying so.
    """
    _require(val, "val", "choose_thresholds")
    y, s = val.labels, val.scores_2d
    if len(classes) != y.shape[1]:
        raise ValueError(f"{len(classes)} class names for {y.shape[1]} score columns")
    values: list[float] = []
    notes: list[str] = []
    for k, name in enumerate(classes):
        if not y[:, k].any():
            values.append(float(default))
            notes.append(f"{name}: no positives in val ({y.shape[0]} records); default threshold {default}")
            continue
        values.append(max_f1_threshold(y[:, k], s[:, k])[0])
    return ThresholdSet(
        classes=tuple(str(c) for c in classes),
        values=tuple(values),
        chosen_on="val",
        n=int(y.shape[0]),
        method="max_f1",
        ids_digest=ids_digest(val.record_ids),
        params={"default": float(default)},
        notes=tuple(notes),
        selection_ids=frozenset(val.record_ids),
    )


# --------------------------------------------------------------------------- autoencoder


def normal_score_threshold(normal_scores: F64, method: AnomalyMethod, p: float, k: float) -> float:
    """Threshold from scores of normal records ``(N,)``.

    ``percentile``: the ``p``-th percentile (linear interpolation), so about ``100 - p`` % of
    training normals are flagged. ``mean_k_sigma``: mean + ``k`` x the sample standard deviation
    (ddof=1).
    """
    if normal_scores.size == 0:
        raise ValueError("no normal records to set an anomaly threshold from")
    if method == "percentile":
        if not 0 <= p <= 100:
            raise ValueError(f"percentile p must lie in [0, 100], got {p}")
        return float(np.percentile(normal_scores, p))
    if method == "mean_k_sigma":
        sd = float(np.std(normal_scores, ddof=1)) if normal_scores.size > 1 else 0.0
        return float(np.mean(normal_scores)) + k * sd
    raise ValueError(f"unknown anomaly threshold method {method!r}; use 'percentile' or 'mean_k_sigma'")


def anomaly_threshold(
    train: ScoredSplit,
    method: AnomalyMethod = "percentile",
    p: float = 99.0,
    k: float = 3.0,
) -> ThresholdSet:
    """Anomaly-score threshold from the normal records (``y_true == 0``) of the training split.

    ``train.y_true`` ``(N,)`` is-anomalous, ``train.scores`` ``(N,)`` reconstruction errors.
    Anomalous training records, if any, are ignored: the autoencoder's threshold describes normals.
    """
    _require(train, "train", "anomaly_threshold")
    y, s = train.labels, train.scores_2d
    if y.shape[1] != 1:
        raise ValueError(f"anomaly scores must be one column, got {y.shape[1]}")
    normal = ~y[:, 0]
    value = normal_score_threshold(s[normal, 0], method, p, k)
    if not math.isfinite(value):
        raise ValueError(f"anomaly threshold is not finite ({value})")
    ids = [rid for rid, is_normal in zip(train.record_ids, normal, strict=True) if is_normal]
    skipped = int((~normal).sum())
    notes = (f"{skipped} anomalous training records ignored",) if skipped else ()
    return ThresholdSet(
        classes=("anomalous",),
        values=(value,),
        chosen_on="train",
        n=len(ids),
        method=method,
        ids_digest=ids_digest(ids),
        params={"p": float(p)} if method == "percentile" else {"k": float(k)},
        notes=notes,
        selection_ids=frozenset(train.record_ids),
    )
