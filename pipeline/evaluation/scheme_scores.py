"""Each label scheme's own score, the number the field reports for that task, on plain arrays.

- ``ptbxl`` / ``multilabel_auroc``: macro AUROC over the classes with at least one positive and one
  negative (PTB-XL benchmark, Strodthoff et al. 2021: scikit-learn ``roc_auc_score`` macro), naming
  the classes left out and why.
- ``cinc2021``: the PhysioNet/CinC Challenge 2021 metric (:mod:`.scheme_scores_cinc2021`).
- ``cinc2017``: F1 per class from the 4x4 confusion ``2·C[k,k] / (row_k + col_k)`` as the 2017
  scoring (``score2017Challenge.m``) computes it; the score is the mean over N, A, O; also the mean
  over all four.
- ``aami``: AAMI EC57 beat classes N S V F Q: per class sensitivity ``Se = TP/(TP+FN)`` and positive
  predictivity ``+P = TP/(TP+FP)``, as gross statistics (TP, FN, FP summed over all records' beats
  before dividing) and, with ``groups``, the per-record average.

:func:`field_score` dispatches by family and returns a JSON-able dict whose ``score`` is the headline;
:func:`field_score_cis` gives its bootstrap CIs (:mod:`pipeline.evaluation.bootstrap`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

from pipeline.evaluation.bootstrap import bootstrap_cis
from pipeline.evaluation.metrics import confusion_matrix, macro_auroc, pair, roc_auc_per_class
from pipeline.evaluation.scheme_scores_cinc2021 import (
    ChallengeWeights,
    challenge_metric,
    cinc2021_score,
    load_challenge_weights,
    to_challenge_space,
)

FieldFamily = Literal["ptbxl", "cinc2021", "cinc2017", "aami", "multilabel_auroc"]
FIELD_FAMILIES: tuple[str, ...] = get_args(FieldFamily)
I64 = npt.NDArray[np.int64]
Json = dict[str, Any]

CINC2017_CLASSES = ("N", "A", "O", "~")
# the coarse scheme's names for the same four classes, so today's CRNN can be scored too
CINC2017_ALIASES = {
    "N": "N",
    "NORM": "N",
    "A": "A",
    "AF": "A",
    "O": "O",
    "OTHER": "O",
    "~": "~",
    "NOISY": "~",
}
AAMI_CLASSES = ("N", "S", "V", "F", "Q")


def _none(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


# --------------------------------------------------------------------------- PTB-XL: macro AUROC


def macro_auroc_score(y_true: npt.ArrayLike, scores: npt.ArrayLike, classes: Sequence[str]) -> Json:
    """Macro AUROC of ``scores`` ``(N, K)`` against multi-hot ``y_true`` ``(N, K)`` over the classes
    where it is defined; ``skipped`` names the others with the reason."""
    y, s = pair(y_true, scores)
    if y.shape[1] != len(classes):
        raise ValueError(f"{y.shape[1]} label columns for {len(classes)} classes")
    per_class = roc_auc_per_class(y, s)
    positives = y.sum(axis=0)
    skipped = [
        {"class": c, "reason": "no positive" if positives[k] == 0 else "no negative"}
        for k, c in enumerate(classes)
        if not np.isfinite(per_class[k])
    ]
    return {
        "score": _none(macro_auroc(y, s)),
        "score_name": "auroc_macro",
        "per_class": {c: _none(per_class[k]) for k, c in enumerate(classes)},
        "n_classes_scored": len(classes) - len(skipped),
        "skipped": skipped,
    }


# --------------------------------------------------------------------------- CinC 2017: F1(N, A, O)


def cinc2017_class_map(classes: Sequence[str]) -> list[int]:
    """For each model class its index in N A O ~ (also accepting NORM AF OTHER NOISY)."""
    idx = [CINC2017_CLASSES.index(CINC2017_ALIASES[c]) for c in classes if c in CINC2017_ALIASES]
    if len(idx) != len(classes) or len(set(idx)) != len(idx):
        raise ValueError(
            f"CinC 2017 score: classes {list(classes)} must be distinct among {sorted(CINC2017_ALIASES)}"
        )
    return idx


def cinc2017_f1s(true_idx: I64, pred_idx: I64) -> list[float]:
    """``[F1_N, F1_A, F1_O, F1_~, mean(N, A, O), mean of all four]`` from N A O ~ indices (NaN where
    a class is neither true nor predicted: its F1 is 0/0)."""
    cm = confusion_matrix(true_idx, pred_idx, 4).astype(np.float64)
    denom = cm.sum(axis=0) + cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(denom > 0, 2 * np.diag(cm) / np.where(denom > 0, denom, 1), np.nan)
    return [*map(float, f1), float(np.mean(f1[:3])), float(np.mean(f1))]


def cinc2017_score(true_idx: npt.ArrayLike, pred_idx: npt.ArrayLike, classes: Sequence[str]) -> Json:
    """The CinC 2017 score of predicted vs true class indices ``(N,)`` into ``classes``."""
    to_std = np.asarray(cinc2017_class_map(classes), dtype=np.int64)
    t = to_std[np.asarray(true_idx, dtype=np.int64)]
    p = to_std[np.asarray(pred_idx, dtype=np.int64)]
    f1s = cinc2017_f1s(t, p)
    return {
        "score": _none(f1s[4]),
        "score_name": "f1_NAO",
        "f1_per_class": {c: _none(v) for c, v in zip(CINC2017_CLASSES, f1s[:4], strict=True)},
        "f1_mean_4": _none(f1s[5]),
        "confusion": confusion_matrix(t, p, 4).tolist(),
        "confusion_order": list(CINC2017_CLASSES),
    }


# --------------------------------------------------------------------------- AAMI EC57: Se, +P


def aami_class_map(classes: Sequence[str]) -> list[int]:
    """For each model class its index in N S V F Q."""
    upper = [c.strip().upper() for c in classes]
    if not set(upper) <= set(AAMI_CLASSES) or len(set(upper)) != len(upper):
        raise ValueError(f"AAMI score: classes {list(classes)} must be distinct among {list(AAMI_CLASSES)}")
    return [AAMI_CLASSES.index(c) for c in upper]


def aami_se_ppv(true_idx: I64, pred_idx: I64) -> list[float]:
    """Gross ``[Se_N, +P_N, Se_S, +P_S, ...]`` over all beats (TP, FN, FP pooled before dividing)."""
    cm = confusion_matrix(true_idx, pred_idx, len(AAMI_CLASSES)).astype(np.float64)
    tp, true_n, pred_n = np.diag(cm), cm.sum(axis=1), cm.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.where(true_n > 0, tp / np.where(true_n > 0, true_n, 1), np.nan)
        ppv = np.where(pred_n > 0, tp / np.where(pred_n > 0, pred_n, 1), np.nan)
    return [float(v) for pair_ in zip(se, ppv, strict=True) for v in pair_]


def aami_keys() -> list[str]:
    return [f"{m}_{c}" for c in AAMI_CLASSES for m in ("se", "ppv")]


def aami_score(
    true_idx: npt.ArrayLike,
    pred_idx: npt.ArrayLike,
    classes: Sequence[str],
    groups: npt.ArrayLike | None = None,
) -> Json:
    """Per-class Se and +P of beat classes (indices into ``classes``, ``(N,)``): gross over all beats,
    and with ``groups`` ``(N,)`` (the record of each beat) the mean of the per-record values."""
    to_std = np.asarray(aami_class_map(classes), dtype=np.int64)
    t = to_std[np.asarray(true_idx, dtype=np.int64)]
    p = to_std[np.asarray(pred_idx, dtype=np.int64)]
    gross = aami_se_ppv(t, p)
    cm = confusion_matrix(t, p, len(AAMI_CLASSES))
    out: Json = {
        "score": None,  # EC57 has no single number; the CIs cover every gross Se and +P
        "score_name": None,
        "gross": {k: _none(v) for k, v in zip(aami_keys(), gross, strict=True)},
        "counts": {
            c: {"tp": int(cm[k, k]), "fn": int(cm[k].sum() - cm[k, k]), "fp": int(cm[:, k].sum() - cm[k, k])}
            for k, c in enumerate(AAMI_CLASSES)
        },
        "n_beats": int(t.size),
    }
    if groups is not None:
        g = np.asarray(groups).reshape(-1)
        if g.size != t.size:
            raise ValueError(f"{g.size} record ids for {t.size} beats")
        per_record = np.array([aami_se_ppv(t[g == r], p[g == r]) for r in np.unique(g)])
        with np.errstate(invalid="ignore"):
            mean = [float(np.nanmean(col)) if np.isfinite(col).any() else np.nan for col in per_record.T]
        out["record_average"] = {k: _none(v) for k, v in zip(aami_keys(), mean, strict=True)}
        out["n_records"] = int(len(per_record))
    return out


# --------------------------------------------------------------------------- dispatcher


def _check_family(family: str) -> None:
    if family not in FIELD_FAMILIES:
        raise ValueError(f"unknown field score family {family!r}; expected one of {list(FIELD_FAMILIES)}")


def _argmax(a: npt.ArrayLike) -> I64:
    arr = np.asarray(a)
    return arr.astype(np.int64).reshape(-1) if arr.ndim == 1 else np.argmax(arr, axis=1).astype(np.int64)


def field_score(
    family: str,
    classes: Sequence[str],
    y_true: npt.ArrayLike,
    scores: npt.ArrayLike,
    decisions: npt.ArrayLike | None = None,
    groups: npt.ArrayLike | None = None,
    weights: ChallengeWeights | None = None,
) -> Json:
    """The field's score of one test split. ``y_true`` ``(N, K)`` multi-hot/one-hot over ``classes``
    (or ``(N,)`` class indices for the single-label families); ``scores`` ``(N, K)``; ``decisions``
    ``(N, K)`` bool, needed for ``cinc2021`` (thresholded outputs) and used instead of the argmax of
    ``scores`` by ``cinc2017``/``aami`` when given; ``groups`` ``(N,)`` record of each beat (aami)."""
    _check_family(family)
    if family in ("ptbxl", "multilabel_auroc"):
        out = macro_auroc_score(y_true, scores, classes)
    elif family == "cinc2021":
        if decisions is None:
            raise ValueError("the Challenge 2021 metric scores thresholded outputs: pass decisions")
        out = cinc2021_score(y_true, decisions, classes, weights)
        out |= {"score": out["challenge_metric"], "score_name": "challenge_metric"}
    else:
        pred = _argmax(decisions if decisions is not None else scores)
        if family == "cinc2017":
            out = cinc2017_score(_argmax(y_true), pred, classes)
        else:
            out = aami_score(_argmax(y_true), pred, classes, groups)
    return {"family": family, **out}


def _metric_fn(
    family: str, classes: Sequence[str], weights: ChallengeWeights | None
) -> tuple[Callable[..., list[float]], list[str]]:
    """The resampled metric (rows of its arrays resampled together) and the names of its values."""
    if family in ("ptbxl", "multilabel_auroc"):
        return (lambda y, s: [macro_auroc(y, s)]), ["auroc_macro"]
    if family == "cinc2021":
        w = weights if weights is not None else load_challenge_weights()
        return (lambda lab, out: [challenge_metric(lab, out, w.weights, w.normal_index)]), [
            "challenge_metric"
        ]
    if family == "cinc2017":
        return (lambda t, p: cinc2017_f1s(t, p)[4:]), ["f1_NAO", "f1_mean_4"]
    return aami_se_ppv, aami_keys()


def field_score_cis(
    family: str,
    classes: Sequence[str],
    y_true: npt.ArrayLike,
    scores: npt.ArrayLike,
    decisions: npt.ArrayLike | None = None,
    *,
    n: int,
    alpha: float,
    seed: int,
    groups: npt.ArrayLike | None = None,
    weights: ChallengeWeights | None = None,
) -> Json:
    """Percentile bootstrap CIs (``{name: ConfidenceInterval.to_dict()}``, names prefixed ``field_``)
    of the family's headline values, resampling records (or whole ``groups``)."""
    _check_family(family)
    fn, names = _metric_fn(family, classes, weights)
    arrays: tuple[npt.NDArray[Any], ...]
    if family in ("ptbxl", "multilabel_auroc"):
        arrays = pair(y_true, scores)
    elif family == "cinc2021":
        if decisions is None:
            raise ValueError("the Challenge 2021 metric scores thresholded outputs: pass decisions")
        w = weights if weights is not None else load_challenge_weights()
        arrays = (to_challenge_space(y_true, classes, w)[0], to_challenge_space(decisions, classes, w)[0])
        fn, names = _metric_fn(family, classes, w)
    else:
        to_std = np.asarray(
            cinc2017_class_map(classes) if family == "cinc2017" else aami_class_map(classes), dtype=np.int64
        )
        pred = _argmax(decisions if decisions is not None else scores)
        arrays = (to_std[_argmax(y_true)], to_std[pred])
    cis = bootstrap_cis(fn, *arrays, n=n, alpha=alpha, seed=seed, groups=groups)
    return {f"field_{k}": ci.to_dict() for k, ci in zip(names, cis, strict=True)}


_SEGMENT = re.compile(r"/[wb]\d+$")


def source_record(record_id: str) -> str:
    """The recording a window (``<record>/w<start>``) or beat (``<record>/b<sample>``) was cut from;
    any other id is its own recording."""
    return _SEGMENT.sub("", record_id)
