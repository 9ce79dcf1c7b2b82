"""Data files DVC's own plots render (``dvc plots show|diff``), written beside the PNGs.

The ``*_rows`` helpers return lists of flat dicts: every exact ROC / PR point in long format with a
``class`` column (dvc.yaml's ``curve_by_class`` template reads them), confusion cells with their
counts in the classes' clinical order (the ``confusion_counts`` template), score histogram bins.
:func:`write_datapoints` writes them as CSV or JSON.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.evaluation.jsonable import json_float
from pipeline.evaluation.metrics import (
    F64,
    I64,
    as_labels_2d,
    as_scores_2d,
    confusion_matrix,
    precision_recall_curve,
    roc_curve,
)

Row = dict[str, Any]


def _class_pairs(
    y_true: npt.ArrayLike, scores: npt.ArrayLike, classes: Sequence[str]
) -> list[tuple[str, Any, F64]]:
    y = as_labels_2d(y_true)
    s = as_scores_2d(scores, y.shape[0])
    if s.shape != y.shape or len(classes) != y.shape[1]:
        raise ValueError(f"labels {y.shape}, scores {s.shape} and {len(classes)} classes disagree")
    return [(name, y[:, k], s[:, k]) for k, name in enumerate(classes)]


def roc_rows(y_true: npt.ArrayLike, scores: npt.ArrayLike, classes: Sequence[str]) -> list[Row]:
    """Exact ROC points, long format: ``{fpr, tpr, threshold, class}`` (threshold None at the origin).

    Classes lacking positives or negatives contribute no rows; collinear points are dropped.
    """
    rows: list[Row] = []
    for name, y, s in _class_pairs(y_true, scores, classes):
        if y.all() or not y.any():
            continue
        fpr, tpr, thr = roc_curve(y, s)
        rows += [
            {"fpr": float(a), "tpr": float(b), "threshold": json_float(float(c)), "class": name}
            for a, b, c in zip(fpr, tpr, thr, strict=True)
        ]
    return rows


def pr_rows(y_true: npt.ArrayLike, scores: npt.ArrayLike, classes: Sequence[str]) -> list[Row]:
    """Exact precision-recall points, long format: ``{recall, precision, threshold, class}``.

    The final (recall 0, precision 1) point has threshold None; classes without positives are skipped.
    """
    rows: list[Row] = []
    for name, y, s in _class_pairs(y_true, scores, classes):
        if not y.any():
            continue
        precision, recall, thr = precision_recall_curve(y, s)
        thr_all = [json_float(float(v)) for v in thr] + [None]
        rows += [
            {"recall": float(r), "precision": float(p), "threshold": t, "class": name}
            for r, p, t in zip(recall, precision, thr_all, strict=True)
        ]
    return rows


def confusion_rows(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, classes: Sequence[str]) -> list[Row]:
    """Every cell of the single-label confusion matrix, zero cells included, row-major:
    ``{actual, predicted, count, actual_order, predicted_order}``.

    ``y_true``/``y_pred`` ``(N,)`` class indices into ``classes``. The ``*_order`` fields are the
    class positions in ``classes`` (the model's clinical order, e.g. N, A, O, ~), which the
    ``confusion_counts`` template sorts by; DVC's stock template sorts names alphabetically.
    """
    t = np.asarray(y_true, dtype=np.int64).ravel()
    p = np.asarray(y_pred, dtype=np.int64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"{t.size} true labels but {p.size} predictions")
    cm = confusion_matrix(t, p, len(classes))
    return [
        {"actual": a, "predicted": b, "count": int(cm[i, j]), "actual_order": i, "predicted_order": j}
        for i, a in enumerate(classes)
        for j, b in enumerate(classes)
    ]


def histogram_rows(
    scores: npt.ArrayLike, is_anomaly: npt.ArrayLike, threshold: float, bins: int = 50
) -> list[Row]:
    """Score histogram, wide format: ``{score (bin centre), normal, anomalous, above_threshold}`` counts."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    flags = np.asarray(is_anomaly).astype(np.bool_).ravel()
    edges = np.histogram_bin_edges(np.append(s, threshold), bins=bins)
    normal: I64 = np.histogram(s[~flags], bins=edges)[0]
    anomalous: I64 = np.histogram(s[flags], bins=edges)[0]
    centres = (edges[:-1] + edges[1:]) / 2
    return [
        {"score": float(c), "normal": int(a), "anomalous": int(b), "above_threshold": int(c >= threshold)}
        for c, a, b in zip(centres, normal, anomalous, strict=True)
    ]


def write_datapoints(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Write rows as ``.csv`` (header from the first row, None → empty) or ``.json`` (a list)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".json":
        out.write_text(json.dumps(list(rows), indent=1) + "\n")
        return out
    if out.suffix != ".csv":
        raise ValueError(f"data points go to .csv or .json, not {out.name}")
    fields = list(rows[0]) if rows else []
    with out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out
