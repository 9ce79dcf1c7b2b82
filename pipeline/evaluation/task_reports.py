"""Test-split reports per task: multi-label, single-label (multiclass) and anomaly detection.

Reports are plain dicts of floats, ints, strings and lists (``json.dumps`` works on them, undefined
values are ``None``); their keys are documented on each ``*_report`` function. The numbers come from
:mod:`pipeline.evaluation.metrics`; this module lays them out and says which classes were undefined.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.evaluation.jsonable import json_float
from pipeline.evaluation.metrics import (
    AVERAGES,
    F64,
    I64,
    PRF,
    Bool,
    apply_threshold_values,
    as_scores_2d,
    average_precision,
    average_precision_per_class,
    confusion_matrix,
    multilabel_confusion,
    nanmean_or_nan,
    pair,
    precision_recall_f1,
    roc_auc,
    roc_auc_per_class,
)

Json = dict[str, Any]


def _per_class(values: F64, classes: Sequence[str]) -> dict[str, float | None]:
    return {c: json_float(float(v)) for c, v in zip(classes, values, strict=True)}


def _summary(per_class: F64, averages: dict[str, float], classes: Sequence[str]) -> Json:
    out: Json = {name: json_float(v) for name, v in averages.items()}
    out["per_class"] = _per_class(per_class, classes)
    return out


def _undefined_notes(metric: str, values: F64, classes: Sequence[str], why: str) -> list[str]:
    missing = [c for c, v in zip(classes, values, strict=True) if not math.isfinite(float(v))]
    if not missing:
        return []
    return [f"{metric} undefined for {', '.join(missing)} ({why}); excluded from the averages"]


def _prf_section(prf: PRF, classes: Sequence[str]) -> tuple[Json, list[str]]:
    section: Json = {}
    for metric in ("precision", "recall", "f1"):
        avgs = {name: prf.averages[name][metric] for name in AVERAGES}
        section[metric] = _summary(getattr(prf, metric), avgs, classes)
    notes = (
        _undefined_notes("precision", prf.precision, classes, "no positive decisions")
        + _undefined_notes("recall", prf.recall, classes, "no positives in y_true")
        + _undefined_notes("f1", prf.f1, classes, "no positives and no positive decisions")
    )
    return section, notes


def _ranking_averages(per_class: F64, micro: float, support: I64) -> dict[str, float]:
    """``macro`` (unweighted), ``micro`` (given) and ``weighted`` (by positives) over defined classes.

    scikit-learn's own averages raise on a class without positives; ours skip it and say so.
    """
    return {
        "macro": nanmean_or_nan(per_class),
        "micro": micro,
        "weighted": nanmean_or_nan(per_class, support.astype(np.float64)),
    }


def _ranking_section(y: Bool, s: F64, classes: Sequence[str]) -> tuple[Json, list[str]]:
    support = y.sum(axis=0).astype(np.int64)
    auc = roc_auc_per_class(y, s)
    ap = average_precision_per_class(y, s)
    section: Json = {
        "auroc": _summary(auc, _ranking_averages(auc, roc_auc(y.ravel(), s.ravel()), support), classes),
        "ap": _summary(ap, _ranking_averages(ap, average_precision(y.ravel(), s.ravel()), support), classes),
    }
    notes = _undefined_notes("auroc", auc, classes, "needs positives and negatives") + _undefined_notes(
        "ap", ap, classes, "no positives in y_true"
    )
    return section, notes


def _check_classes(classes: Sequence[str], k: int) -> list[str]:
    names = [str(c) for c in classes]
    if len(names) != k or len(set(names)) != k:
        raise ValueError(f"need {k} distinct class names, got {names}")
    return names


def multilabel_report(
    y_true: npt.ArrayLike,
    scores: npt.ArrayLike,
    thresholds: npt.ArrayLike,
    classes: Sequence[str],
    zero_division: float | None = None,
) -> Json:
    """Metrics of a multi-label task: ``y_true`` ``(N, K)`` multi-hot, ``scores`` ``(N, K)``.

    ``thresholds`` ``(K,)`` turn scores into decisions (``score >= threshold``); they must have been
    chosen on validation data (see ``pipeline.evaluation.thresholds``). Keys:

    - ``task`` = "multilabel", ``n_records``, ``classes``, ``thresholds`` {class: value},
      ``support`` {class: positives in y_true}
    - ``auroc``, ``ap``: {macro, micro, weighted, per_class: {class: value}} from the scores
    - ``precision``, ``recall``, ``f1``: {macro, micro, weighted, per_class} from the decisions
    - ``confusion``: {class: [[tn, fp], [fn, tp]]}
    - ``notes``: which classes were undefined for which metric and therefore left out of averages

    Undefined values are ``None``; "weighted" weights by support.
    """
    y, s = pair(y_true, scores)
    names = _check_classes(classes, y.shape[1])
    thr = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    if thr.shape != (y.shape[1],):
        raise ValueError(f"need {y.shape[1]} thresholds, got {thr.shape}")
    decisions = apply_threshold_values(s, thr)
    cm = multilabel_confusion(y, decisions)
    prf = precision_recall_f1(y, decisions, zero_division)
    ranking, rank_notes = _ranking_section(y, s, names)
    thresholded, prf_notes = _prf_section(prf, names)
    return {
        "task": "multilabel",
        "n_records": int(y.shape[0]),
        "classes": names,
        "thresholds": _per_class(thr, names),
        "support": {c: int(v) for c, v in zip(names, prf.support, strict=True)},
        **ranking,
        **thresholded,
        "confusion": {c: cm[i].tolist() for i, c in enumerate(names)},
        "notes": rank_notes + prf_notes,
    }


def multiclass_report(
    y_true: npt.ArrayLike,
    probs: npt.ArrayLike,
    classes: Sequence[str],
    f1_classes: Sequence[str] | None = None,
    zero_division: float | None = None,
) -> Json:
    """Metrics of a single-label task: ``y_true`` ``(N,)`` class indices, ``probs`` ``(N, K)``.

    The decision is the argmax. ``f1_classes`` names the classes whose F1 is averaged into
    ``f1.selected`` (the CinC 2017 score is the mean F1 over N, A, O; the noisy class is left out);
    by default all classes. Keys, besides those of :func:`multilabel_report` (where AUROC/AP are
    one-vs-rest, and micro precision = recall = F1 = accuracy):

    - ``task`` = "multiclass", ``accuracy``, ``selected_classes`` (list), ``f1.selected``
    - ``confusion_matrix``: {labels: classes, counts: K x K (row = true, column = predicted),
      normalized: rows divided by their totals (None for an empty row)}
    """
    p = as_scores_2d(probs)
    n, k = p.shape
    names = _check_classes(classes, k)
    t = np.asarray(y_true, dtype=np.int64).reshape(-1)
    if t.size != n:
        raise ValueError(f"{t.size} labels but {n} rows of probabilities")
    predicted = np.argmax(p, axis=1)
    cm = confusion_matrix(t, predicted, k)
    prf = precision_recall_f1(t, predicted, zero_division, n_classes=k)
    ranking, rank_notes = _ranking_section(np.eye(k, dtype=np.bool_)[t], p, names)
    thresholded, prf_notes = _prf_section(prf, names)
    selected = list(names if f1_classes is None else f1_classes)
    unknown = sorted(set(selected) - set(names))
    if unknown:
        raise ValueError(f"f1_classes {unknown} not among {names}")
    thresholded["f1"]["selected"] = json_float(nanmean_or_nan(prf.f1[[names.index(c) for c in selected]]))
    return {
        "task": "multiclass",
        "n_records": int(n),
        "classes": names,
        "support": {c: int(v) for c, v in zip(names, prf.support, strict=True)},
        "accuracy": json_float(float(np.trace(cm) / n) if n else math.nan),
        "selected_classes": selected,
        **ranking,
        **thresholded,
        "confusion_matrix": {"labels": names, "counts": cm.tolist(), "normalized": _row_normalized(cm)},
        "notes": rank_notes + prf_notes,
    }


def _row_normalized(cm: I64) -> list[list[float] | None]:
    totals = cm.sum(axis=1)
    return [(row / tot).tolist() if tot else None for row, tot in zip(cm, totals, strict=True)]


def anomaly_report(is_anomaly: npt.ArrayLike, score: npt.ArrayLike, threshold: float) -> Json:
    """Anomaly-detection metrics: ``is_anomaly`` ``(N,)`` 0/1, ``score`` ``(N,)`` (higher = more anomalous).

    ``threshold`` flags ``score >= threshold``; it must come from training normals (see
    ``pipeline.evaluation.thresholds.anomaly_threshold``). Keys: ``task`` = "anomaly", ``n_records``,
    ``n_anomalous``, ``n_normal``, ``threshold``, ``auroc``, ``auprc`` (average precision),
    ``precision``, ``recall`` (sensitivity), ``specificity``, ``f1``, ``flagged`` (number of
    decisions "anomalous"), ``confusion`` [[tn, fp], [fn, tp]] with anomalous = positive, ``notes``.
    """
    y, s = pair(np.ravel(is_anomaly), np.ravel(score))
    decisions = apply_threshold_values(s, float(threshold))
    cm = multilabel_confusion(y, decisions)[0]
    (tn, fp), (fn, tp) = cm.tolist()
    prf = precision_recall_f1(y, decisions)
    specificity = np.array([tn / (tn + fp) if tn + fp else math.nan])
    name = ["anomalous"]
    auc, ap = roc_auc_per_class(y, s), average_precision_per_class(y, s)
    notes = (
        _undefined_notes("auroc", auc, name, "needs anomalous and normal records")
        + _undefined_notes("auprc", ap, name, "no anomalous records")
        + _prf_section(prf, name)[1]
        + _undefined_notes("specificity", specificity, name, "no normal records")
    )
    return {
        "task": "anomaly",
        "n_records": int(y.shape[0]),
        "n_anomalous": int(tp + fn),
        "n_normal": int(tn + fp),
        "threshold": json_float(float(threshold)),
        "auroc": json_float(float(auc[0])),
        "auprc": json_float(float(ap[0])),
        "precision": json_float(float(prf.precision[0])),
        "recall": json_float(float(prf.recall[0])),
        "specificity": json_float(float(specificity[0])),
        "f1": json_float(float(prf.f1[0])),
        "flagged": int(tp + fp),
        "confusion": cm.tolist(),
        "notes": notes,
    }
