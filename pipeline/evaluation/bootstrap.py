"""Percentile bootstrap confidence intervals, plain or resampling whole patients, and the headline
CIs of each task (the ``ci`` section of the evaluate stage's report).

scikit-learn has no bootstrap; the resampling rule (records or whole groups, undefined resamples
left out and counted) is the project's own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.evaluation.jsonable import json_float
from pipeline.evaluation.metrics import (
    F64,
    I64,
    Bool,
    apply_threshold_values,
    as_scores_2d,
    average_precision,
    macro_auroc,
    macro_average_precision,
    nanmean_or_nan,
    pair,
    precision_recall_f1,
    roc_auc,
)

Json = dict[str, Any]


@dataclass(frozen=True)
class ConfidenceInterval:
    """Percentile bootstrap interval of one metric.

    ``estimate`` is the metric on the full data; ``low``/``high`` the ``alpha/2`` and ``1 - alpha/2``
    percentiles over the ``n_valid`` of ``n_boot`` resamples where the metric was defined (a
    resample can lose every positive of a rare class). NaN where nothing was defined.
    """

    estimate: float
    low: float
    high: float
    alpha: float
    n_boot: int
    n_valid: int

    def to_dict(self) -> Json:
        """JSON form: {estimate, low, high, level (e.g. 0.95), n_boot, n_valid}."""
        return {
            "estimate": json_float(self.estimate),
            "low": json_float(self.low),
            "high": json_float(self.high),
            "level": 1.0 - self.alpha,
            "n_boot": self.n_boot,
            "n_valid": self.n_valid,
        }


@dataclass(frozen=True)
class _Clusters:
    """Rows sorted by group (``order``) and each group's ``start`` and ``count`` in that order."""

    order: I64
    start: I64
    count: I64


def _clusters(groups: npt.ArrayLike, n_rows: int) -> _Clusters:
    g = np.asarray(groups).reshape(-1)
    if g.size != n_rows:
        raise ValueError(f"{g.size} group labels for {n_rows} records")
    _, inverse, count = np.unique(g, return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable").astype(np.int64)
    start = (np.cumsum(count) - count).astype(np.int64)
    return _Clusters(order, start, count.astype(np.int64))


def _draw_rows(rng: np.random.Generator, n_rows: int, clusters: _Clusters | None) -> I64:
    """Row indices of one resample: records, or whole groups, drawn with replacement."""
    if clusters is None:
        return rng.integers(0, n_rows, size=n_rows, dtype=np.int64)
    picked = rng.integers(0, clusters.start.size, size=clusters.start.size)
    count = clusters.count[picked]
    # position i inside picked group j maps to start[j] + i in the group-sorted order
    shift = np.repeat(clusters.start[picked] - (np.cumsum(count) - count), count)
    return clusters.order[shift + np.arange(int(count.sum()))]


def _resample_values(
    metric_fn: Callable[..., Any],
    arrays: Sequence[npt.NDArray[Any]],
    n: int,
    seed: int,
    clusters: _Clusters | None,
) -> F64:
    """``(n, M)`` metric values over ``n`` resamples of the records (rows), with replacement."""
    rng = np.random.default_rng(seed)
    rows = arrays[0].shape[0]
    out: list[F64] = []
    for _ in range(n):
        idx = _draw_rows(rng, rows, clusters)
        out.append(np.atleast_1d(np.asarray(metric_fn(*(a[idx] for a in arrays)), dtype=np.float64)))
    return np.stack(out)


def _check_bootstrap_args(arrays: Sequence[npt.ArrayLike], n: int, alpha: float) -> list[npt.NDArray[Any]]:
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    arrs = [np.asarray(a) for a in arrays]
    if not arrs or any(a.ndim == 0 or a.shape[0] != arrs[0].shape[0] for a in arrs):
        raise ValueError("need one or more arrays with the same number of records (rows)")
    if arrs[0].shape[0] == 0:
        raise ValueError("cannot bootstrap zero records")
    return arrs


def bootstrap_cis(
    metric_fn: Callable[..., npt.ArrayLike],
    *arrays: npt.ArrayLike,
    n: int = 1000,
    alpha: float = 0.05,
    seed: int,
    groups: npt.ArrayLike | None = None,
) -> list[ConfidenceInterval]:
    """Percentile bootstrap CIs of a vector-valued metric ``metric_fn(*arrays) -> (M,)``.

    Records (rows of every array, resampled together) are drawn with replacement ``n`` times from
    ``np.random.default_rng(seed)``, so the result is deterministic. NaN metric values (undefined
    on a resample) are left out and counted in ``n_valid``.

    ``groups`` ``(N,)`` (e.g. patient ids) resamples whole groups instead of records: records of
    one patient are correlated, and treating them as independent makes intervals too narrow.
    Give records of unknown patients their own record id as group.
    """
    arrs = _check_bootstrap_args(arrays, n, alpha)
    clusters = None if groups is None else _clusters(groups, arrs[0].shape[0])
    estimate = np.atleast_1d(np.asarray(metric_fn(*arrs), dtype=np.float64))
    values = _resample_values(metric_fn, arrs, n, seed, clusters)
    cis: list[ConfidenceInterval] = []
    for j, est in enumerate(estimate):
        valid = values[:, j][np.isfinite(values[:, j])]
        low, high = (
            np.percentile(valid, [100 * alpha / 2, 100 * (1 - alpha / 2)]) if valid.size else (np.nan, np.nan)
        )
        cis.append(ConfidenceInterval(float(est), float(low), float(high), alpha, n, int(valid.size)))
    return cis


def bootstrap_ci(
    metric_fn: Callable[..., float],
    *arrays: npt.ArrayLike,
    n: int = 1000,
    alpha: float = 0.05,
    seed: int,
    groups: npt.ArrayLike | None = None,
) -> ConfidenceInterval:
    """Percentile bootstrap CI of a scalar metric, e.g. ``bootstrap_ci(macro_auroc, y, s, seed=0)``.

    See :func:`bootstrap_cis` for the resampling. 1000 resamples of :func:`macro_auroc` over
    2,000 x 6 take well under a second on one core.
    """
    return bootstrap_cis(metric_fn, *arrays, n=n, alpha=alpha, seed=seed, groups=groups)[0]


def multilabel_cis(
    y_true: npt.ArrayLike,
    scores: npt.ArrayLike,
    thresholds: npt.ArrayLike,
    *,
    n: int = 1000,
    alpha: float = 0.05,
    seed: int,
    groups: npt.ArrayLike | None = None,
) -> Json:
    """Bootstrap CIs of the headline multi-label metrics: {auroc_macro, ap_macro, f1_macro, f1_micro}.

    Each value is :meth:`ConfidenceInterval.to_dict`; ``groups`` as in :func:`bootstrap_cis`.
    """
    thr = np.asarray(thresholds, dtype=np.float64)

    def headline(y: Bool, s: F64) -> list[float]:
        prf = precision_recall_f1(y, apply_threshold_values(s, thr))
        return [macro_auroc(y, s), macro_average_precision(y, s)] + [
            prf.averages[a]["f1"] for a in ("macro", "micro")
        ]

    y, s = pair(y_true, scores)
    cis = bootstrap_cis(headline, y, s, n=n, alpha=alpha, seed=seed, groups=groups)
    keys = ("auroc_macro", "ap_macro", "f1_macro", "f1_micro")
    return {k: ci.to_dict() for k, ci in zip(keys, cis, strict=True)}


def multiclass_cis(
    y_true: npt.ArrayLike,
    probs: npt.ArrayLike,
    selected: Sequence[int] | None = None,
    *,
    n: int = 1000,
    alpha: float = 0.05,
    seed: int,
    groups: npt.ArrayLike | None = None,
) -> Json:
    """Bootstrap CIs of {accuracy, auroc_macro, f1_macro, f1_selected} of a single-label task.

    ``selected`` are the class indices averaged into ``f1_selected`` (all by default);
    ``groups`` as in :func:`bootstrap_cis`.
    """
    p = as_scores_2d(probs)
    k = p.shape[1]
    sel = np.arange(k) if selected is None else np.asarray(selected, dtype=np.int64)

    def headline(t: I64, q: F64) -> list[float]:
        predicted = np.argmax(q, axis=1)
        prf = precision_recall_f1(t, predicted, n_classes=k)
        onehot = np.eye(k, dtype=np.bool_)[t]
        accuracy = float(np.mean(predicted == t))
        return [accuracy, macro_auroc(onehot, q), prf.averages["macro"]["f1"], nanmean_or_nan(prf.f1[sel])]

    t = np.asarray(y_true, dtype=np.int64).reshape(-1)
    cis = bootstrap_cis(headline, t, p, n=n, alpha=alpha, seed=seed, groups=groups)
    keys = ("accuracy", "auroc_macro", "f1_macro", "f1_selected")
    return {k_: ci.to_dict() for k_, ci in zip(keys, cis, strict=True)}


def anomaly_cis(
    is_anomaly: npt.ArrayLike,
    score: npt.ArrayLike,
    threshold: float,
    *,
    n: int = 1000,
    alpha: float = 0.05,
    seed: int,
    groups: npt.ArrayLike | None = None,
) -> Json:
    """Bootstrap CIs of {auroc, auprc, f1} of anomaly detection at a fixed ``threshold``.

    ``groups`` as in :func:`bootstrap_cis` (beats of one recording are correlated).
    """

    def headline(y: Bool, s: F64) -> list[float]:
        f1 = precision_recall_f1(y, apply_threshold_values(s, threshold)).f1[0]
        return [roc_auc(y, s), average_precision(y, s), float(f1)]

    y, s = pair(np.ravel(is_anomaly), np.ravel(score))
    cis = bootstrap_cis(headline, y, s, n=n, alpha=alpha, seed=seed, groups=groups)
    return {k: ci.to_dict() for k, ci in zip(("auroc", "auprc", "f1"), cis, strict=True)}
