"""Threshold selection uses validation (or training normals) only, and cannot be pointed at test."""

from __future__ import annotations

import json

import numpy as np
import numpy.typing as npt
import pytest
from sklearn.metrics import f1_score

from pipeline.evaluation.task_reports import multilabel_report
from pipeline.evaluation.thresholds import (
    ScoredSplit,
    SplitName,
    ThresholdLeakError,
    ThresholdSet,
    anomaly_threshold,
    choose_thresholds,
    max_f1_threshold,
)

CLASSES = ("NORM", "AF", "MI", "STTC")


def _split(name: SplitName, seed: int, n: int = 300, prefix: str | None = None) -> ScoredSplit:
    rng = np.random.default_rng(seed)
    y = (rng.random((n, len(CLASSES))) < [0.4, 0.1, 0.2, 0.05]).astype(np.uint8)
    s = np.round(rng.random(y.shape) * 0.7 + 0.35 * y, 2)
    ids = tuple(f"{prefix or name}:{i:05d}" for i in range(n))
    return ScoredSplit(name, y, s, ids)


def _brute_force_best_f1(y: npt.NDArray[np.uint8], s: npt.NDArray[np.float64]) -> float:
    return max(float(f1_score(y, (s >= t).astype(np.uint8), zero_division=0.0)) for t in np.unique(s))


def test_thresholds_maximise_f1_on_validation() -> None:
    val = _split("val", 0)
    ts = choose_thresholds(val, CLASSES)
    assert ts.chosen_on == "val" and ts.n == 300 and ts.method == "max_f1"
    for k in range(len(CLASSES)):
        y, s = val.labels[:, k].astype(np.uint8), val.scores_2d[:, k]
        achieved = f1_score(y, (s >= ts.values[k]).astype(np.uint8))
        assert achieved == pytest.approx(_brute_force_best_f1(y, s))


def test_f1_ties_go_to_the_lowest_threshold() -> None:
    # s >= 0.8 -> tp 1, fp 0, fn 1: F1 2/3; s >= 0.4 -> tp 2, fp 2, fn 0: F1 2/3 as well.
    y = np.array([1, 0, 0, 1, 0], dtype=np.bool_)
    s = np.array([0.8, 0.6, 0.5, 0.4, 0.1])
    threshold, f1 = max_f1_threshold(y, s)
    assert f1 == pytest.approx(2 / 3)
    assert threshold == 0.4


def test_class_absent_from_validation_gets_the_default_and_a_note() -> None:
    val = _split("val", 1)
    y = val.labels.astype(np.uint8)
    y[:, 3] = 0
    ts = choose_thresholds(ScoredSplit("val", y, val.scores, val.record_ids), CLASSES, default=0.5)
    assert ts.values[3] == 0.5
    assert len(ts.notes) == 1 and ts.notes[0].startswith("STTC: no positives in val")


@pytest.mark.parametrize("name", ["test", "train"])
def test_choosing_on_any_split_but_val_is_refused(name: SplitName) -> None:
    with pytest.raises(ThresholdLeakError, match="'val' split"):
        choose_thresholds(_split(name, 2), CLASSES)


def test_raw_arrays_are_not_accepted_for_selection() -> None:
    val = _split("val", 3)
    with pytest.raises(TypeError, match="ScoredSplit"):
        choose_thresholds((val.y_true, val.scores), CLASSES)  # type: ignore[arg-type]  # wrong type on purpose: the runtime check is under test


def test_applying_to_the_selection_split_is_refused() -> None:
    val = _split("val", 4)
    ts = choose_thresholds(val, CLASSES)
    with pytest.raises(ThresholdLeakError, match="chosen on 'val'"):
        ts.apply(val)


def test_test_split_sharing_records_with_val_is_refused() -> None:
    val = _split("val", 5)
    ts = choose_thresholds(val, CLASSES)
    test = _split("test", 6)
    leaky_ids = (val.record_ids[0],) + test.record_ids[1:]
    with pytest.raises(ThresholdLeakError, match="1 records of split 'test'"):
        ts.apply(ScoredSplit("test", test.y_true, test.scores, leaky_ids))


def test_val_relabelled_as_test_is_refused_even_after_a_json_round_trip() -> None:
    val = _split("val", 7)
    ts = ThresholdSet.from_dict(json.loads(json.dumps(choose_thresholds(val, CLASSES).to_dict())))
    with pytest.raises(ThresholdLeakError, match="exactly the records"):
        ts.apply(ScoredSplit("test", val.y_true, val.scores, val.record_ids))


def test_thresholds_are_a_function_of_the_validation_split_alone() -> None:
    first = choose_thresholds(_split("val", 10), CLASSES)
    again = choose_thresholds(_split("val", 10), CLASSES)
    other = choose_thresholds(_split("val", 11), CLASSES)
    assert first.values == again.values and first.ids_digest == again.ids_digest
    assert first.values != other.values


def test_threshold_set_round_trips_through_json() -> None:
    ts = choose_thresholds(_split("val", 12), CLASSES)
    back = ThresholdSet.from_dict(json.loads(json.dumps(ts.to_dict())))
    assert back == ts
    assert back.to_dict()["chosen_on"] == "val" and back.to_dict()["n"] == 300


def test_a_threshold_set_claiming_test_provenance_is_rejected() -> None:
    data = choose_thresholds(_split("val", 13), CLASSES).to_dict()
    data["chosen_on"] = "test"
    with pytest.raises(ThresholdLeakError):
        ThresholdSet.from_dict(data)


def test_scored_split_validates_its_arrays() -> None:
    y, s = np.zeros((3, 2)), np.zeros((3, 2))
    with pytest.raises(ValueError, match="unique record ids"):
        ScoredSplit("val", y, s, ("a", "a", "b"))
    with pytest.raises(ValueError, match="differ in shape"):
        ScoredSplit("val", y, np.zeros((3, 3)), ("a", "b", "c"))
    with pytest.raises(ValueError, match="split name"):
        ScoredSplit("holdout", y, s, ("a", "b", "c"))  # type: ignore[arg-type]  # an unknown split name on purpose


# --------------------------------------------------------------------------- autoencoder


def _ae_split(name: SplitName, seed: int, n: int = 500, anomalous: float = 0.0) -> ScoredSplit:
    rng = np.random.default_rng(seed)
    flags = (rng.random(n) < anomalous).astype(np.uint8)
    score = rng.gamma(2.0, 0.01, n) + 0.05 * flags
    return ScoredSplit(name, flags, score, tuple(f"{name}:{i}" for i in range(n)))


def test_percentile_threshold_from_training_normals() -> None:
    train = _ae_split("train", 0, anomalous=0.1)
    ts = anomaly_threshold(train, method="percentile", p=95.0)
    normals = train.scores[train.y_true == 0]
    assert ts.values[0] == pytest.approx(np.percentile(normals, 95.0))
    assert ts.chosen_on == "train" and ts.n == normals.size and ts.params == {"p": 95.0}
    assert ts.notes and "anomalous training records ignored" in ts.notes[0]


def test_mean_k_sigma_threshold_from_training_normals() -> None:
    train = _ae_split("train", 1)
    ts = anomaly_threshold(train, method="mean_k_sigma", k=2.5)
    assert ts.values[0] == pytest.approx(train.scores.mean() + 2.5 * train.scores.std(ddof=1))
    assert ts.params == {"k": 2.5} and ts.notes == ()


@pytest.mark.parametrize("name", ["val", "test"])
def test_anomaly_threshold_refuses_anything_but_train(name: SplitName) -> None:
    with pytest.raises(ThresholdLeakError, match="'train' split"):
        anomaly_threshold(_ae_split(name, 2))


def test_anomaly_threshold_applies_to_test_but_not_to_train() -> None:
    train, test = _ae_split("train", 3), _ae_split("test", 4, anomalous=0.2)
    ts = anomaly_threshold(train)
    flagged = ts.apply(test)
    assert flagged.shape == (500,)
    np.testing.assert_array_equal(flagged, test.scores >= ts.values[0])
    with pytest.raises(ThresholdLeakError):
        ts.apply(train)


def test_unknown_anomaly_method_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown anomaly threshold method"):
        anomaly_threshold(_ae_split("train", 5), method="median")  # type: ignore[arg-type]  # an unknown method on purpose


def test_thresholds_from_val_apply_to_test_and_feed_the_report() -> None:
    val, test = _split("val", 8), _split("test", 9)
    ts = choose_thresholds(val, CLASSES)
    decisions = ts.apply(test)
    np.testing.assert_array_equal(decisions, test.scores_2d >= np.array(ts.values))
    report = multilabel_report(test.y_true, test.scores, ts.as_array(), CLASSES)
    assert report["f1"]["macro"] == pytest.approx(
        f1_score(test.y_true, decisions.astype(np.uint8), average="macro", zero_division=np.nan)
    )
