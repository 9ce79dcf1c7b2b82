"""Ranking and thresholded metrics from scikit-learn, with the project's rules for undefined values.

Conventions:

- ``y_true`` is binary ``(N,)`` or multi-hot ``(N, K)``; ``scores`` are any real-valued ``(N,)`` /
  ``(N, K)`` (probabilities, logits, reconstruction errors): higher means "more positive".
- A decision is positive when ``score >= threshold``.
- Confusion matrices have true classes on rows and predictions on columns; a per-class 2x2 is
  ``[[tn, fp], [fn, tp]]`` (scikit-learn's ``multilabel_confusion_matrix``).

scikit-learn computes every metric; this module only decides what "undefined" means, because
scikit-learn raises or warns and substitutes a number where we want NaN (``None`` in reports),
never a silent 0: AUROC needs both classes, AP needs a positive, recall needs a positive,
precision needs a positive decision, F1 needs any of tp/fp/fn. Averages skip undefined classes
(scikit-learn's ``zero_division=np.nan``); ``zero_division=0.0`` gives its default instead.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import sklearn
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]

AVERAGES = ("macro", "micro", "weighted")


# --------------------------------------------------------------------------- input checks


def as_labels_2d(y_true: npt.ArrayLike) -> Bool:
    """Binary labels as bool ``(N, K)`` (a ``(N,)`` input becomes ``(N, 1)``); rejects non-0/1 values."""
    y = np.asarray(y_true)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2:
        raise ValueError(f"labels must be (N,) or (N, K), got shape {y.shape}")
    if y.dtype != np.bool_ and not ((y == 0) | (y == 1)).all():
        raise ValueError("labels must be binary (0/1 or bool)")
    return y.astype(np.bool_, copy=False)


def as_scores_2d(scores: npt.ArrayLike, n: int | None = None) -> F64:
    """Finite float64 scores ``(N, K)`` (a ``(N,)`` input becomes ``(N, 1)``)."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 1:
        s = s[:, None]
    if s.ndim != 2:
        raise ValueError(f"scores must be (N,) or (N, K), got shape {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite (no NaN/inf)")
    if n is not None and s.shape[0] != n:
        raise ValueError(f"scores have {s.shape[0]} rows, labels have {n}")
    return s


def pair(y_true: npt.ArrayLike, scores: npt.ArrayLike) -> tuple[Bool, F64]:
    """Labels and scores checked and shaped ``(N, K)`` alike."""
    y = as_labels_2d(y_true)
    s = as_scores_2d(scores, y.shape[0])
    if s.shape != y.shape:
        raise ValueError(f"labels {y.shape} and scores {s.shape} differ in shape")
    return y, s


# --------------------------------------------------------------------------- ranking metrics


def _per_column(score_fn: Callable[..., Any], y: Bool, s: F64, defined: Bool) -> F64:
    """``score_fn`` of each ``defined`` column, NaN elsewhere, in one scikit-learn call.

    One call with ``average=None`` validates the input once instead of once per class (2x faster in
    the bootstrap); inputs were checked by :func:`pair`, so scikit-learn's own checks are skipped.
    """
    out = np.full(y.shape[1], np.nan)
    if defined.any():
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            out[defined] = score_fn(y[:, defined], s[:, defined], average=None)
    return out


def roc_auc_per_class(y_true: npt.ArrayLike, scores: npt.ArrayLike) -> F64:
    """AUROC of each column ``(K,)``; NaN where a column lacks positives or negatives."""
    y, s = pair(y_true, scores)
    defined = np.asarray(y.any(axis=0) & ~y.all(axis=0), dtype=np.bool_)
    return _per_column(skm.roc_auc_score, y, s, defined)


def average_precision_per_class(y_true: npt.ArrayLike, scores: npt.ArrayLike) -> F64:
    """Average precision of each column ``(K,)`` (step integral over the distinct scores); NaN
    without positives."""
    y, s = pair(y_true, scores)
    defined = np.asarray(y.any(axis=0), dtype=np.bool_)
    return _per_column(skm.average_precision_score, y, s, defined)


def roc_auc(y_true: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Binary AUROC of ``(N,)`` labels and scores; NaN if only one class is present."""
    return float(roc_auc_per_class(np.ravel(y_true), np.ravel(scores))[0])


def average_precision(y_true: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Binary average precision of ``(N,)`` labels and scores; NaN if there is no positive."""
    return float(average_precision_per_class(np.ravel(y_true), np.ravel(scores))[0])


def nanmean_or_nan(values: F64, weights: F64 | None = None) -> float:
    """Mean (or weighted mean) over the finite entries; NaN when none is finite or weights sum to 0."""
    ok = np.isfinite(values)
    w = np.ones_like(values) if weights is None else np.asarray(weights, dtype=np.float64)
    total = float(w[ok].sum())
    if not ok.any() or total <= 0:
        return math.nan
    return float((values[ok] * w[ok]).sum() / total)


def macro_auroc(y_true: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Unweighted mean AUROC over the classes where it is defined (NaN if none is)."""
    return nanmean_or_nan(roc_auc_per_class(y_true, scores))


def macro_average_precision(y_true: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Unweighted mean AP over the classes that have positives (NaN if none has)."""
    return nanmean_or_nan(average_precision_per_class(y_true, scores))


# --------------------------------------------------------------------------- curves


def roc_curve(y_true: npt.ArrayLike, scores: npt.ArrayLike) -> tuple[F64, F64, F64]:
    """``(fpr, tpr, thresholds)`` of a binary problem (scikit-learn's, collinear points dropped).

    Starts at (0, 0) with threshold +inf. fpr (tpr) is all NaN when there is no negative (positive).
    """
    y, s = pair(np.ravel(y_true), np.ravel(scores))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)  # one-class input: NaN, as documented
        fpr, tpr, thr = skm.roc_curve(y[:, 0], s[:, 0], drop_intermediate=True)
    return fpr.astype(np.float64), tpr.astype(np.float64), thr.astype(np.float64)


def precision_recall_curve(y_true: npt.ArrayLike, scores: npt.ArrayLike) -> tuple[F64, F64, F64]:
    """``(precision, recall, thresholds)`` as scikit-learn's, recall decreasing along the arrays.

    The last point is (precision 1, recall 0) with no threshold, so ``thresholds`` is one shorter.
    Recall is NaN when there is no positive (scikit-learn uses 1, which would draw a false curve).
    """
    y, s = pair(np.ravel(y_true), np.ravel(scores))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "no positive class found": handled below
        precision, recall, thr = skm.precision_recall_curve(y[:, 0], s[:, 0])
    if not y.any():
        recall = np.r_[np.full(recall.size - 1, np.nan), 0.0]
    return precision.astype(np.float64), recall.astype(np.float64), thr.astype(np.float64)


# --------------------------------------------------------------------------- thresholded metrics


def multilabel_confusion(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> I64:
    """Per-class ``[[tn, fp], [fn, tp]]`` counts ``(K, 2, 2)`` of binary ``(N, K)`` truth and decisions."""
    y = as_labels_2d(y_true)
    p = as_labels_2d(y_pred)
    if p.shape != y.shape:
        raise ValueError(f"labels {y.shape} and decisions {p.shape} differ in shape")
    if y.shape[0] == 0:
        return np.zeros((y.shape[1], 2, 2), dtype=np.int64)
    if y.shape[1] == 1:  # scikit-learn reads one column as a binary vector, not as one label
        one: I64 = skm.confusion_matrix(y[:, 0], p[:, 0], labels=[False, True])[None].astype(np.int64)
        return one
    cms: I64 = skm.multilabel_confusion_matrix(y, p).astype(np.int64)
    return cms


def confusion_matrix(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, n_classes: int) -> I64:
    """Single-label confusion counts ``(K, K)``: row = true class index, column = predicted index."""
    t = np.asarray(y_true, dtype=np.int64).ravel()
    p = np.asarray(y_pred, dtype=np.int64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"{t.size} true labels but {p.size} predictions")
    if t.size and (min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= n_classes):
        raise ValueError(f"class indices must lie in [0, {n_classes})")
    if t.size == 0:
        return np.zeros((n_classes, n_classes), dtype=np.int64)
    cm: I64 = skm.confusion_matrix(t, p, labels=np.arange(n_classes)).astype(np.int64)
    return cm


@dataclass(frozen=True)
class PRF:
    """Precision, recall, F1 per class ``(K,)`` (NaN = undefined) and their averages.

    ``averages[name]`` for name in macro/micro/weighted maps precision/recall/f1 to a float
    (NaN when undefined); ``support`` is the number of positives in ``y_true`` per class.
    """

    precision: F64
    recall: F64
    f1: F64
    support: I64
    averages: dict[str, dict[str, float]]


def precision_recall_f1(
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike,
    zero_division: float | None = None,
    n_classes: int | None = None,
) -> PRF:
    """Per-class and averaged precision/recall/F1.

    Multi-label: binary ``(N, K)`` truth and decisions. Single-label (``n_classes`` given): ``(N,)``
    class indices, where micro precision = recall = F1 = accuracy. ``zero_division=None`` leaves
    0/0 metrics NaN and averages skip them; a number replaces them and averages include it.
    """
    t: npt.NDArray[Any]
    p: npt.NDArray[Any]
    if n_classes is None:
        t, p = as_labels_2d(y_true), as_labels_2d(y_pred)
        if p.shape != t.shape:
            raise ValueError(f"labels {t.shape} and decisions {p.shape} differ in shape")
        labels = np.arange(t.shape[1])
        if t.shape[1] == 1:  # one column is a binary vector to scikit-learn: score its class 1
            t, p, labels = t[:, 0].astype(np.int64), p[:, 0].astype(np.int64), np.array([1])
    else:
        t = np.asarray(y_true, dtype=np.int64).ravel()
        p = np.asarray(y_pred, dtype=np.int64).ravel()
        labels = np.arange(n_classes)
    zd = np.nan if zero_division is None else float(zero_division)
    if t.shape[0] == 0:
        return _empty_prf(labels.size, zd)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        per_class = skm.precision_recall_fscore_support(t, p, labels=labels, average=None, zero_division=zd)
        micro = skm.precision_recall_fscore_support(t, p, labels=labels, average="micro", zero_division=zd)
    precision, recall, f1 = (np.asarray(v, dtype=np.float64) for v in per_class[:3])
    support = np.asarray(per_class[3], dtype=np.int64)
    return PRF(precision, recall, f1, support, _averages(precision, recall, f1, support, micro[:3]))


def _averages(
    precision: F64, recall: F64, f1: F64, support: I64, micro: Sequence[float]
) -> dict[str, dict[str, float]]:
    """Macro and support-weighted means over the defined classes, and scikit-learn's micro values.

    Our own means, not scikit-learn's: a weighted mean with no positives at all is undefined (NaN),
    where scikit-learn reports 0.
    """
    names = ("precision", "recall", "f1")
    per_class = (precision, recall, f1)
    weights = support.astype(np.float64)
    return {
        "macro": {m: nanmean_or_nan(v) for m, v in zip(names, per_class, strict=True)},
        "micro": {m: float(v) for m, v in zip(names, micro, strict=True)},
        "weighted": {m: nanmean_or_nan(v, weights) for m, v in zip(names, per_class, strict=True)},
    }


def _empty_prf(k: int, zd: float) -> PRF:
    """No records: every ratio is 0/0 (scikit-learn refuses empty input)."""
    nan = np.full(k, zd)
    avg = {name: dict.fromkeys(("precision", "recall", "f1"), zd if k else math.nan) for name in AVERAGES}
    return PRF(nan, nan.copy(), nan.copy(), np.zeros(k, dtype=np.int64), avg)


def macro_f1(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """Macro F1 of binary ``(N, K)`` truth and decisions over classes where F1 is defined."""
    return precision_recall_f1(y_true, y_pred).averages["macro"]["f1"]


def apply_threshold_values(scores: npt.ArrayLike, thresholds: npt.ArrayLike) -> Bool:
    """Decisions ``scores >= thresholds`` (thresholds broadcast over the last axis)."""
    return np.asarray(scores, dtype=np.float64) >= np.asarray(thresholds, dtype=np.float64)
