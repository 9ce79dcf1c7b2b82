"""pipeline.evaluation.metrics against scikit-learn on random and edge-case inputs, and the bootstrap."""

from __future__ import annotations

import json
import math
import time
import warnings
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from sklearn import metrics as skm

from pipeline.evaluation import metrics as m

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


def _multilabel(seed: int, n: int = 400, k: int = 5, decimals: int = 2) -> tuple[I64, F64]:
    """Labels with varied prevalence and scores rounded so that ties are common."""
    rng = np.random.default_rng(seed)
    prevalence = rng.uniform(0.05, 0.6, size=k)
    y = (rng.random((n, k)) < prevalence).astype(np.int64)
    s = np.round(rng.random((n, k)) * 0.8 + 0.4 * y * rng.random((n, k)), decimals)
    return y, s


def _sk_quiet(fn: Any, *args: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


# --------------------------------------------------------------------------- ranking metrics


@pytest.mark.parametrize("seed", range(8))
def test_auroc_and_ap_per_class_equal_sklearn_with_ties(seed: int) -> None:
    y, s = _multilabel(seed, decimals=1 + seed % 3)
    for k in range(y.shape[1]):
        assert m.roc_auc_per_class(y, s)[k] == pytest.approx(skm.roc_auc_score(y[:, k], s[:, k]), abs=1e-12)
        assert m.average_precision_per_class(y, s)[k] == pytest.approx(
            skm.average_precision_score(y[:, k], s[:, k]), abs=1e-12
        )


@pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
def test_auroc_and_ap_averages_in_report_equal_sklearn(average: str) -> None:
    y, s = _multilabel(11)
    report = m.multilabel_report(y, s, np.full(5, 0.5), list("ABCDE"))
    assert report["auroc"][average] == pytest.approx(skm.roc_auc_score(y, s, average=average), abs=1e-12)
    assert report["ap"][average] == pytest.approx(
        skm.average_precision_score(y, s, average=average), abs=1e-12
    )


@pytest.mark.parametrize(
    ("y", "s"),
    [
        pytest.param([0, 0, 1, 1], [0.5, 0.5, 0.5, 0.5], id="constant-scores"),
        pytest.param([0, 1, 0, 1, 1], [0.1, 0.9, 0.2, 0.8, 0.7], id="perfect-separation"),
        pytest.param([1, 0, 1, 0], [0.1, 0.9, 0.2, 0.8], id="perfectly-inverted"),
        pytest.param([0, 1, 1, 0, 1, 0], [1, 1, 2, 2, 3, 3], id="ties-across-classes"),
        pytest.param([1, 0, 0, 0, 0, 0, 0, 0], [0.3, 0.3, 0.1, 0.2, 0.3, 0.0, 0.3, 0.3], id="one-positive"),
        pytest.param([0, 1], [-5.0, 1e9], id="unbounded-scores"),
    ],
)
def test_binary_edge_cases_equal_sklearn(y: list[int], s: list[float]) -> None:
    assert m.roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert m.average_precision(y, s) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)


def test_constant_scores_give_half_auroc_and_prevalence_ap() -> None:
    y = np.array([0, 1, 0, 0, 1])
    assert m.roc_auc(y, np.zeros(5)) == 0.5
    assert m.average_precision(y, np.zeros(5)) == pytest.approx(0.4)


@pytest.mark.parametrize("drop", [True, False])
def test_roc_curve_equals_sklearn(drop: bool) -> None:
    y, s = _multilabel(3, n=300, k=1, decimals=2)
    ours = m.roc_curve(y[:, 0], s[:, 0], drop_intermediate=drop)
    theirs = skm.roc_curve(y[:, 0], s[:, 0], drop_intermediate=drop)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_precision_recall_curve_equals_sklearn() -> None:
    y, s = _multilabel(4, n=300, k=1, decimals=2)
    ours = m.precision_recall_curve(y[:, 0], s[:, 0])
    theirs = skm.precision_recall_curve(y[:, 0], s[:, 0])
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_class_without_positives_is_undefined_and_left_out_of_ranking_averages() -> None:
    y, s = _multilabel(5)
    y[:, 2] = 0  # no positives: AUROC and AP undefined
    y[:, 4] = 1  # no negatives: AUROC undefined, AP defined
    report = m.multilabel_report(y, s, np.full(5, 0.5), list("ABCDE"))
    assert report["auroc"]["per_class"]["C"] is None
    assert report["auroc"]["per_class"]["E"] is None
    assert report["ap"]["per_class"]["C"] is None
    assert report["ap"]["per_class"]["E"] == pytest.approx(1.0)
    auroc_ok = [0, 1, 3]
    assert report["auroc"]["macro"] == pytest.approx(
        skm.roc_auc_score(y[:, auroc_ok], s[:, auroc_ok], average="macro"), abs=1e-12
    )
    ap_ok = [0, 1, 3, 4]
    assert report["ap"]["macro"] == pytest.approx(
        skm.average_precision_score(y[:, ap_ok], s[:, ap_ok], average="macro"), abs=1e-12
    )
    assert any(n.startswith("auroc undefined for C, E") for n in report["notes"])
    assert any(n.startswith("ap undefined for C") for n in report["notes"])


def test_all_ranking_metrics_undefined_gives_nan_not_error() -> None:
    y = np.zeros((10, 2), dtype=np.int64)
    s = np.random.default_rng(0).random((10, 2))
    assert math.isnan(m.macro_auroc(y, s))
    assert math.isnan(m.macro_average_precision(y, s))


def test_invalid_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="finite"):
        m.roc_auc([0, 1], [0.1, float("nan")])
    with pytest.raises(ValueError, match="binary"):
        m.roc_auc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="shape"):
        m.roc_auc_per_class(np.zeros((4, 2)), np.zeros((4, 3)))


# --------------------------------------------------------------------------- thresholded metrics


def _decisions(seed: int, n: int = 300, k: int = 6) -> tuple[I64, I64]:
    rng = np.random.default_rng(seed)
    y = (rng.random((n, k)) < 0.3).astype(np.int64)
    p = np.where(rng.random((n, k)) < 0.7, y, 1 - y)
    y[:, 1] = 0  # no positives, but some positive decisions: precision 0, recall undefined
    y[:, 2] = 0
    p[:, 2] = 0  # no positives, no positive decisions: everything undefined
    p[:, 3] = 0  # positives, no positive decisions: precision undefined, recall 0
    return y, p


@pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
def test_prf_averages_equal_sklearn_with_nan_zero_division(average: str) -> None:
    y, p = _decisions(1)
    ours = m.precision_recall_f1(y, p)
    theirs = _sk_quiet(skm.precision_recall_fscore_support, y, p, average=average, zero_division=np.nan)
    for metric, value in zip(("precision", "recall", "f1"), theirs[:3], strict=True):
        assert ours.averages[average][metric] == pytest.approx(value, abs=1e-12)


@pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
def test_f1_equals_sklearn_default_with_zero_division_zero(average: str) -> None:
    y, p = _decisions(2)
    ours = m.precision_recall_f1(y, p, zero_division=0.0)
    assert ours.averages[average]["f1"] == pytest.approx(_sk_quiet(skm.f1_score, y, p, average=average))
    assert ours.averages[average]["precision"] == pytest.approx(
        _sk_quiet(skm.precision_score, y, p, average=average)
    )
    assert ours.averages[average]["recall"] == pytest.approx(
        _sk_quiet(skm.recall_score, y, p, average=average)
    )


def test_per_class_prf_and_undefined_entries_match_sklearn() -> None:
    y, p = _decisions(3)
    ours = m.precision_recall_f1(y, p)
    precision, recall, f1, support = _sk_quiet(
        skm.precision_recall_fscore_support, y, p, average=None, zero_division=np.nan
    )
    np.testing.assert_allclose(ours.precision, precision, atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(ours.recall, recall, atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(ours.f1, f1, atol=1e-12, equal_nan=True)
    np.testing.assert_array_equal(ours.support, support)
    assert np.isnan(ours.recall[[1, 2]]).all() and np.isnan(ours.f1[2]) and ours.f1[1] == 0.0
    assert np.isnan(ours.precision[3]) and ours.recall[3] == 0.0


def test_multilabel_report_thresholds_and_confusion_equal_sklearn() -> None:
    y, s = _multilabel(6, k=4)
    thr = np.array([0.3, 0.5, 0.55, 0.7])
    report = m.multilabel_report(y, s, thr, ["NORM", "AF", "MI", "STTC"])
    pred = (s >= thr).astype(np.int64)
    for average in ("macro", "micro", "weighted"):
        assert report["f1"][average] == pytest.approx(_sk_quiet(skm.f1_score, y, pred, average=average))
    cms = skm.multilabel_confusion_matrix(y, pred)
    for k, name in enumerate(report["classes"]):
        assert report["confusion"][name] == cms[k].tolist()
        assert report["thresholds"][name] == thr[k]
        assert report["support"][name] == int(y[:, k].sum())
    json.dumps(report, allow_nan=False)


def test_multilabel_report_with_undefined_values_is_strict_json() -> None:
    y, p = _decisions(4)
    report = m.multilabel_report(y, p.astype(np.float64), np.full(6, 0.5), [f"c{i}" for i in range(6)])
    text = json.dumps(report, allow_nan=False)
    assert report["recall"]["per_class"]["c2"] is None
    assert "null" in text
    assert any(n.startswith("recall undefined for c1, c2") for n in report["notes"])


def test_confusion_matrices_equal_sklearn() -> None:
    rng = np.random.default_rng(7)
    t, p = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    np.testing.assert_array_equal(m.confusion_matrix(t, p, 4), skm.confusion_matrix(t, p, labels=range(4)))
    y, d = _decisions(5)
    np.testing.assert_array_equal(m.multilabel_confusion(y, d), skm.multilabel_confusion_matrix(y, d))


def _multiclass(seed: int, n: int = 500, k: int = 4) -> tuple[I64, F64]:
    rng = np.random.default_rng(seed)
    t = rng.choice(k, size=n, p=[0.55, 0.1, 0.25, 0.1][:k])
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), t] += 1.2
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return t, probs


def test_multiclass_report_equals_sklearn() -> None:
    t, probs = _multiclass(8)
    report = m.multiclass_report(
        t, probs, ["NORM", "AF", "OTHER", "NOISY"], f1_classes=["NORM", "AF", "OTHER"]
    )
    pred = probs.argmax(axis=1)
    for average in ("macro", "micro", "weighted"):
        assert report["f1"][average] == pytest.approx(skm.f1_score(t, pred, average=average), abs=1e-12)
        assert report["recall"][average] == pytest.approx(
            skm.recall_score(t, pred, average=average), abs=1e-12
        )
    assert report["accuracy"] == pytest.approx(skm.accuracy_score(t, pred))
    per_class_f1 = skm.f1_score(t, pred, average=None)
    assert report["f1"]["selected"] == pytest.approx(per_class_f1[:3].mean())  # CinC 2017 score
    assert report["f1"]["per_class"]["AF"] == pytest.approx(per_class_f1[1])
    assert report["auroc"]["macro"] == pytest.approx(
        skm.roc_auc_score(t, probs, multi_class="ovr", average="macro"), abs=1e-12
    )
    assert report["auroc"]["weighted"] == pytest.approx(
        skm.roc_auc_score(t, probs, multi_class="ovr", average="weighted"), abs=1e-12
    )
    assert report["confusion_matrix"]["counts"] == skm.confusion_matrix(t, pred).tolist()
    np.testing.assert_allclose(
        report["confusion_matrix"]["normalized"], skm.confusion_matrix(t, pred, normalize="true")
    )
    json.dumps(report, allow_nan=False)


def test_multiclass_report_absent_class_is_noted() -> None:
    t, probs = _multiclass(9)
    t[t == 3] = 0
    report = m.multiclass_report(t, probs, ["N", "A", "O", "~"])
    assert report["auroc"]["per_class"]["~"] is None
    assert report["recall"]["per_class"]["~"] is None
    assert report["support"]["~"] == 0
    assert report["auroc"]["macro"] == pytest.approx(
        np.mean([skm.roc_auc_score(t == k, probs[:, k]) for k in range(3)]), abs=1e-12
    )
    assert any("~" in n for n in report["notes"])


def test_multiclass_report_rejects_unknown_selected_class() -> None:
    t, probs = _multiclass(10)
    with pytest.raises(ValueError, match="not among"):
        m.multiclass_report(t, probs, ["N", "A", "O", "~"], f1_classes=["N", "X"])


def test_anomaly_report_equals_sklearn() -> None:
    rng = np.random.default_rng(12)
    flags = (rng.random(600) < 0.2).astype(np.int64)
    score = rng.gamma(2.0, 1.0, 600) + 2.0 * flags
    report = m.anomaly_report(flags, score, threshold=4.0)
    pred = (score >= 4.0).astype(np.int64)
    assert report["auroc"] == pytest.approx(skm.roc_auc_score(flags, score), abs=1e-12)
    assert report["auprc"] == pytest.approx(skm.average_precision_score(flags, score), abs=1e-12)
    assert report["f1"] == pytest.approx(skm.f1_score(flags, pred))
    assert report["precision"] == pytest.approx(skm.precision_score(flags, pred))
    assert report["recall"] == pytest.approx(skm.recall_score(flags, pred))
    assert report["specificity"] == pytest.approx(skm.recall_score(1 - flags, 1 - pred))
    assert report["confusion"] == skm.confusion_matrix(flags, pred).tolist()
    assert report["n_anomalous"] == flags.sum() and report["flagged"] == pred.sum()
    json.dumps(report, allow_nan=False)


def test_anomaly_report_nothing_flagged_has_undefined_precision() -> None:
    report = m.anomaly_report([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], threshold=1.0)
    assert report["precision"] is None and report["recall"] == 0.0 and report["f1"] == 0.0
    assert any(n.startswith("precision undefined") for n in report["notes"])


# --------------------------------------------------------------------------- bootstrap


def _separable(n: int, seed: int, k: int = 6) -> tuple[I64, F64]:
    rng = np.random.default_rng(seed)
    y = (rng.random((n, k)) < 0.2).astype(np.int64)
    return y, rng.normal(size=(n, k)) + 1.0 * y


def test_bootstrap_is_deterministic_and_contains_the_estimate() -> None:
    y, s = _separable(500, 0)
    a = m.bootstrap_ci(m.macro_auroc, y, s, n=200, seed=3)
    b = m.bootstrap_ci(m.macro_auroc, y, s, n=200, seed=3)
    c = m.bootstrap_ci(m.macro_auroc, y, s, n=200, seed=4)
    assert a == b and a != c
    assert a.low < a.estimate < a.high
    assert a.estimate == pytest.approx(skm.roc_auc_score(y, s, average="macro"))
    assert a.n_valid == a.n_boot == 200


def test_bootstrap_interval_narrows_with_more_records() -> None:
    small = m.bootstrap_ci(m.macro_auroc, *_separable(200, 1), n=300, seed=0)
    large = m.bootstrap_ci(m.macro_auroc, *_separable(3000, 1), n=300, seed=0)
    assert (large.high - large.low) < 0.5 * (small.high - small.low)


def test_bootstrap_counts_resamples_where_the_metric_is_undefined() -> None:
    y = np.zeros(60, dtype=np.int64)
    y[0] = 1  # one positive: lost in ~37% of resamples
    s = np.random.default_rng(0).random(60)
    ci = m.bootstrap_ci(m.roc_auc, y, s, n=300, seed=0)
    assert 100 < ci.n_boot - ci.n_valid < 150
    assert ci.to_dict()["level"] == pytest.approx(0.95)


def test_bootstrap_of_1000_resamples_of_macro_auroc_over_2000x6_is_fast() -> None:
    y, s = _separable(2000, 2)
    t0 = time.perf_counter()
    ci = m.bootstrap_ci(m.macro_auroc, y, s, n=1000, seed=0)
    assert time.perf_counter() - t0 < 8.0  # ~1 s on one core; slack for a shared machine
    assert ci.low < ci.estimate < ci.high


def test_headline_cis_are_json_and_bracket_the_report_values() -> None:
    y, s = _separable(400, 5, k=3)
    thr = np.zeros(3)
    cis = m.multilabel_cis(y, s, thr, n=100, seed=0)
    report = m.multilabel_report(y, s, thr, ["a", "b", "c"])
    assert cis["auroc_macro"]["estimate"] == pytest.approx(report["auroc"]["macro"])
    assert cis["f1_micro"]["estimate"] == pytest.approx(report["f1"]["micro"])
    for ci in cis.values():
        assert ci["low"] <= ci["estimate"] <= ci["high"]
    t, probs = _multiclass(6)
    mc = m.multiclass_cis(t, probs, selected=[0, 1, 2], n=100, seed=0)
    assert mc["f1_selected"]["estimate"] == pytest.approx(
        m.multiclass_report(t, probs, list("NAO~"), ["N", "A", "O"])["f1"]["selected"]
    )
    an = m.anomaly_cis(y[:, 0], s[:, 0], 0.5, n=100, seed=0)
    json.dumps({"ml": cis, "mc": mc, "an": an}, allow_nan=False)


def test_grouped_bootstrap_resamples_whole_patients() -> None:
    # 80 patients with 10 identical records each: the records carry the information of 80, not 800.
    y, s = _separable(80, 6, k=1)
    y_rep, s_rep, patient = np.repeat(y, 10, axis=0), np.repeat(s, 10, axis=0), np.repeat(np.arange(80), 10)
    by_record = m.bootstrap_ci(m.macro_auroc, y_rep, s_rep, n=300, seed=0)
    by_patient = m.bootstrap_ci(m.macro_auroc, y_rep, s_rep, n=300, seed=0, groups=patient)
    per_patient = m.bootstrap_ci(m.macro_auroc, y, s, n=300, seed=0)
    assert by_patient.estimate == by_record.estimate == pytest.approx(per_patient.estimate)
    width = {k: ci.high - ci.low for k, ci in (("rec", by_record), ("pat", by_patient), ("one", per_patient))}
    assert width["pat"] > 2 * width["rec"]
    assert width["pat"] == pytest.approx(width["one"], rel=0.3)


def test_grouped_resample_draws_complete_groups() -> None:
    groups = np.array(["p1", "p2", "p1", "p3", "p2", "p1"])
    seen: list[tuple[str, ...]] = []

    def record(rows: npt.NDArray[np.str_]) -> float:
        seen.append(tuple(sorted(rows.tolist())))
        return 0.0

    m.bootstrap_ci(record, groups, n=20, seed=0, groups=groups)
    size = {"p1": 3, "p2": 2, "p3": 1}
    for drawn in seen[1:]:  # the first call is the estimate on all rows
        for g in set(drawn):
            assert drawn.count(g) % size[g] == 0


def test_bootstrap_rejects_mismatched_arrays() -> None:
    with pytest.raises(ValueError, match="same number"):
        m.bootstrap_ci(m.roc_auc, np.zeros(5), np.zeros(6), seed=0)
