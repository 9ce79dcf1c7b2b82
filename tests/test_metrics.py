"""Our rules around scikit-learn's metrics: undefined values, one-column inputs, report layout, and
the bootstrap. scikit-learn's own arithmetic is not re-tested here."""

from __future__ import annotations

import json
import math

import numpy as np
import numpy.typing as npt
import pytest

from pipeline.evaluation import bootstrap as bs
from pipeline.evaluation import metrics as m
from pipeline.evaluation import task_reports as r

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


def _multilabel(seed: int, n: int = 400, k: int = 5) -> tuple[I64, F64]:
    rng = np.random.default_rng(seed)
    y = (rng.random((n, k)) < rng.uniform(0.05, 0.6, size=k)).astype(np.int64)
    return y, np.round(rng.random((n, k)) * 0.8 + 0.4 * y * rng.random((n, k)), 2)


# --------------------------------------------------------------------------- undefined values


def test_class_without_positives_is_undefined_and_left_out_of_ranking_averages() -> None:
    y, s = _multilabel(5)
    y[:, 2] = 0  # no positives: AUROC and AP undefined
    y[:, 4] = 1  # no negatives: AUROC undefined, AP defined
    report = r.multilabel_report(y, s, np.full(5, 0.5), list("ABCDE"))
    assert report["auroc"]["per_class"]["C"] is None and report["auroc"]["per_class"]["E"] is None
    assert report["ap"]["per_class"]["C"] is None
    assert report["ap"]["per_class"]["E"] == pytest.approx(1.0)
    auc = [report["auroc"]["per_class"][c] for c in "ABD"]
    assert report["auroc"]["macro"] == pytest.approx(np.mean(auc), abs=1e-12)
    ap = [report["ap"]["per_class"][c] for c in "ABDE"]
    assert report["ap"]["macro"] == pytest.approx(np.mean(ap), abs=1e-12)
    assert any(n.startswith("auroc undefined for C, E") for n in report["notes"])
    assert any(n.startswith("ap undefined for C") for n in report["notes"])


def test_all_ranking_metrics_undefined_gives_nan_not_error() -> None:
    y = np.zeros((10, 2), dtype=np.int64)
    s = np.random.default_rng(0).random((10, 2))
    assert math.isnan(m.macro_auroc(y, s)) and math.isnan(m.macro_average_precision(y, s))
    fpr, tpr, _ = m.roc_curve(y[:, 0], s[:, 0])
    assert np.isnan(tpr).all() and not np.isnan(fpr).any()
    _, recall, _ = m.precision_recall_curve(y[:, 0], s[:, 0])
    assert np.isnan(recall[:-1]).all() and recall[-1] == 0.0


def _decisions(seed: int, n: int = 300, k: int = 6) -> tuple[I64, I64]:
    rng = np.random.default_rng(seed)
    y = (rng.random((n, k)) < 0.3).astype(np.int64)
    p = np.where(rng.random((n, k)) < 0.7, y, 1 - y)
    y[:, 1] = 0  # no positives, but some positive decisions: precision 0, recall undefined
    y[:, 2] = 0
    p[:, 2] = 0  # no positives, no positive decisions: everything undefined
    p[:, 3] = 0  # positives, no positive decisions: precision undefined, recall 0
    return y, p


def test_undefined_prf_entries_are_nan_and_skipped_by_the_averages() -> None:
    y, p = _decisions(3)
    prf = m.precision_recall_f1(y, p)
    assert np.isnan(prf.recall[[1, 2]]).all() and np.isnan(prf.f1[2]) and prf.f1[1] == 0.0
    assert np.isnan(prf.precision[3]) and prf.recall[3] == 0.0
    assert prf.averages["macro"]["recall"] == pytest.approx(np.nanmean(prf.recall), abs=1e-12)
    weights = prf.support.astype(np.float64)
    ok = np.isfinite(prf.f1)
    weighted = (prf.f1[ok] * weights[ok]).sum() / weights[ok].sum()
    assert prf.averages["weighted"]["f1"] == pytest.approx(weighted, abs=1e-12)
    zero = m.precision_recall_f1(y, p, zero_division=0.0)
    assert zero.precision[3] == 0.0 and zero.averages["macro"]["f1"] == pytest.approx(zero.f1.mean())


def test_weighted_average_without_any_positive_is_undefined() -> None:
    prf = m.precision_recall_f1(np.zeros((5, 3), np.int64), np.eye(5, 3, dtype=np.int64))
    assert math.isnan(prf.averages["weighted"]["precision"])  # scikit-learn would say 0
    assert prf.averages["macro"]["precision"] == 0.0


def test_one_column_is_scored_as_that_class_not_as_a_binary_vector() -> None:
    y, p = _decisions(6)
    wide = m.precision_recall_f1(y, p)
    wide_cm = m.multilabel_confusion(y, p)
    for k in (0, 1, 3):
        one = m.precision_recall_f1(y[:, [k]], p[:, [k]])
        np.testing.assert_array_equal(one.f1, wide.f1[[k]])
        np.testing.assert_array_equal(one.precision, wide.precision[[k]])
        np.testing.assert_array_equal(m.multilabel_confusion(y[:, [k]], p[:, [k]]), wide_cm[[k]])
    cm = m.multilabel_confusion([0, 0, 1, 1, 1], [0, 1, 0, 1, 1])
    assert cm.tolist() == [[[1, 1], [1, 2]]]  # [[tn, fp], [fn, tp]]


def test_no_records_gives_undefined_ratios_and_zero_counts() -> None:
    prf = m.precision_recall_f1(np.zeros((0, 2)), np.zeros((0, 2)))
    assert np.isnan(prf.f1).all() and prf.support.tolist() == [0, 0]
    assert m.confusion_matrix([], [], 3).tolist() == [[0] * 3] * 3


def test_invalid_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="finite"):
        m.roc_auc([0, 1], [0.1, float("nan")])
    with pytest.raises(ValueError, match="binary"):
        m.roc_auc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="shape"):
        m.roc_auc_per_class(np.zeros((4, 2)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="lie in"):
        m.confusion_matrix([0, 3], [0, 1], 3)


# --------------------------------------------------------------------------- report layout


def test_multilabel_report_layout_is_strict_json() -> None:
    y, p = _decisions(4)
    report = r.multilabel_report(y, p.astype(np.float64), np.full(6, 0.5), [f"c{i}" for i in range(6)])
    text = json.dumps(report, allow_nan=False)
    assert report["recall"]["per_class"]["c2"] is None and "null" in text
    assert any(n.startswith("recall undefined for c1, c2") for n in report["notes"])
    assert report["support"]["c0"] == int(y[:, 0].sum()) and report["thresholds"]["c0"] == 0.5
    assert report["confusion"]["c0"] == m.multilabel_confusion(y[:, 0], p[:, 0])[0].tolist()
    assert set(report["f1"]) == {"macro", "micro", "weighted", "per_class"}


def _multiclass(seed: int, n: int = 500, k: int = 4) -> tuple[I64, F64]:
    rng = np.random.default_rng(seed)
    t = rng.choice(k, size=n, p=[0.55, 0.1, 0.25, 0.1][:k])
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), t] += 1.2
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return t, probs


def test_multiclass_report_selected_f1_accuracy_and_confusion_layout() -> None:
    t, probs = _multiclass(8)
    report = r.multiclass_report(
        t, probs, ["NORM", "AF", "OTHER", "NOISY"], f1_classes=["NORM", "AF", "OTHER"]
    )
    pred = probs.argmax(axis=1)
    per_class = [report["f1"]["per_class"][c] for c in ("NORM", "AF", "OTHER")]
    assert report["f1"]["selected"] == pytest.approx(np.mean(per_class))  # CinC 2017 score
    assert report["accuracy"] == pytest.approx(np.mean(pred == t))
    assert report["f1"]["micro"] == pytest.approx(report["accuracy"])
    counts = np.asarray(report["confusion_matrix"]["counts"])
    assert counts[1, 2] == np.sum((t == 1) & (pred == 2))  # row = true, column = predicted
    np.testing.assert_allclose(
        report["confusion_matrix"]["normalized"], counts / counts.sum(1, keepdims=True)
    )
    json.dumps(report, allow_nan=False)


def test_multiclass_report_absent_class_is_noted() -> None:
    t, probs = _multiclass(9)
    t[t == 3] = 0
    report = r.multiclass_report(t, probs, ["N", "A", "O", "~"])
    assert report["auroc"]["per_class"]["~"] is None and report["recall"]["per_class"]["~"] is None
    assert report["support"]["~"] == 0
    assert report["confusion_matrix"]["normalized"][3] is None
    assert any("~" in n for n in report["notes"])


def test_multiclass_report_rejects_unknown_selected_class() -> None:
    t, probs = _multiclass(10)
    with pytest.raises(ValueError, match="not among"):
        r.multiclass_report(t, probs, ["N", "A", "O", "~"], f1_classes=["N", "X"])


def test_anomaly_report_counts_and_specificity() -> None:
    flags = np.array([0, 0, 0, 1, 1, 0, 1, 0])
    score = np.array([0.1, 0.5, 0.2, 0.9, 0.3, 0.6, 0.8, 0.0])
    report = r.anomaly_report(flags, score, threshold=0.5)
    assert report["confusion"] == [[3, 2], [1, 2]]
    assert report["specificity"] == pytest.approx(3 / 5) and report["recall"] == pytest.approx(2 / 3)
    assert report["n_anomalous"] == 3 and report["n_normal"] == 5 and report["flagged"] == 4
    json.dumps(report, allow_nan=False)


def test_anomaly_report_nothing_flagged_has_undefined_precision() -> None:
    report = r.anomaly_report([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], threshold=1.0)
    assert report["precision"] is None and report["recall"] == 0.0 and report["f1"] == 0.0
    assert any(n.startswith("precision undefined") for n in report["notes"])


# --------------------------------------------------------------------------- bootstrap


def _separable(n: int, seed: int, k: int = 6) -> tuple[I64, F64]:
    rng = np.random.default_rng(seed)
    y = (rng.random((n, k)) < 0.2).astype(np.int64)
    return y, rng.normal(size=(n, k)) + 1.0 * y


def test_bootstrap_is_deterministic_and_contains_the_estimate() -> None:
    y, s = _separable(500, 0)
    a = bs.bootstrap_ci(m.macro_auroc, y, s, n=200, seed=3)
    b = bs.bootstrap_ci(m.macro_auroc, y, s, n=200, seed=3)
    c = bs.bootstrap_ci(m.macro_auroc, y, s, n=200, seed=4)
    assert a == b and a != c
    assert a.low < a.estimate < a.high
    assert a.estimate == pytest.approx(m.macro_auroc(y, s))
    assert a.n_valid == a.n_boot == 200


def test_bootstrap_interval_narrows_with_more_records() -> None:
    small = bs.bootstrap_ci(m.macro_auroc, *_separable(200, 1), n=300, seed=0)
    large = bs.bootstrap_ci(m.macro_auroc, *_separable(3000, 1), n=300, seed=0)
    assert (large.high - large.low) < 0.5 * (small.high - small.low)


def test_bootstrap_counts_resamples_where_the_metric_is_undefined() -> None:
    y = np.zeros(60, dtype=np.int64)
    y[0] = 1  # one positive: lost in ~37% of resamples
    s = np.random.default_rng(0).random(60)
    ci = bs.bootstrap_ci(m.roc_auc, y, s, n=300, seed=0)
    assert 100 < ci.n_boot - ci.n_valid < 150
    assert ci.to_dict()["level"] == pytest.approx(0.95)


def test_headline_cis_are_json_and_bracket_the_report_values() -> None:
    y, s = _separable(400, 5, k=3)
    thr = np.zeros(3)
    cis = bs.multilabel_cis(y, s, thr, n=100, seed=0)
    report = r.multilabel_report(y, s, thr, ["a", "b", "c"])
    assert cis["auroc_macro"]["estimate"] == pytest.approx(report["auroc"]["macro"])
    assert cis["f1_micro"]["estimate"] == pytest.approx(report["f1"]["micro"])
    for ci in cis.values():
        assert ci["low"] <= ci["estimate"] <= ci["high"]
    t, probs = _multiclass(6)
    mc = bs.multiclass_cis(t, probs, selected=[0, 1, 2], n=100, seed=0)
    assert mc["f1_selected"]["estimate"] == pytest.approx(
        r.multiclass_report(t, probs, list("NAO~"), ["N", "A", "O"])["f1"]["selected"]
    )
    an = bs.anomaly_cis(y[:, 0], s[:, 0], 0.5, n=100, seed=0)
    json.dumps({"ml": cis, "mc": mc, "an": an}, allow_nan=False)


def test_grouped_bootstrap_resamples_whole_patients() -> None:
    # 80 patients with 10 identical records each: the records carry the information of 80, not 800.
    y, s = _separable(80, 6, k=1)
    y_rep, s_rep, patient = np.repeat(y, 10, axis=0), np.repeat(s, 10, axis=0), np.repeat(np.arange(80), 10)
    by_record = bs.bootstrap_ci(m.macro_auroc, y_rep, s_rep, n=300, seed=0)
    by_patient = bs.bootstrap_ci(m.macro_auroc, y_rep, s_rep, n=300, seed=0, groups=patient)
    per_patient = bs.bootstrap_ci(m.macro_auroc, y, s, n=300, seed=0)
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

    bs.bootstrap_ci(record, groups, n=20, seed=0, groups=groups)
    size = {"p1": 3, "p2": 2, "p3": 1}
    for drawn in seen[1:]:  # the first call is the estimate on all rows
        for g in set(drawn):
            assert drawn.count(g) % size[g] == 0


def test_bootstrap_rejects_mismatched_arrays() -> None:
    with pytest.raises(ValueError, match="same number"):
        bs.bootstrap_ci(m.roc_auc, np.zeros(5), np.zeros(6), seed=0)
