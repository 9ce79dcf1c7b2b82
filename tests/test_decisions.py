"""The decision rule evaluation writes (``thresholds.json``) and ``ecgpipe predict`` applies:
per-class thresholds (multilabel), argmax (multiclass), one anomaly threshold (reconstruction);
its JSON round trip; and clear errors, naming the file, for a rule that cannot be used."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.evaluation.decisions import RULE_FORMAT, DecisionRule, read_rule, write_rule
from pipeline.evaluation.thresholds import ThresholdSet, ids_digest

CLASSES = ("NORM", "AF", "MI")


def _thresholds(classes: tuple[str, ...], values: tuple[float, ...], chosen_on: str = "val") -> ThresholdSet:
    return ThresholdSet(
        classes=classes,
        values=values,
        chosen_on=chosen_on,  # type: ignore[arg-type]  # the caller passes any string, some invalid on purpose
        n=10,
        method="max_f1" if chosen_on == "val" else "percentile",
        ids_digest=ids_digest([f"r{i}" for i in range(10)]),
        params={"default": 0.5},
        notes=("MI: no positives in val (10 records); default threshold 0.5",),
    )


def _multilabel() -> DecisionRule:
    return DecisionRule("resnet", "multilabel", CLASSES, _thresholds(CLASSES, (0.3, 0.7, 0.5)))


def _anomaly() -> DecisionRule:
    return DecisionRule("autoencoder", "reconstruction", (), _thresholds(("anomalous",), (0.25,), "train"))


def test_multilabel_decides_each_class_at_or_above_its_own_threshold() -> None:
    scores = np.array([[0.3, 0.69, 0.5], [0.29, 0.7, 0.49], [0.9, 0.9, 0.9], [0.0, 0.0, 0.0]])
    got = _multilabel().decide(scores)
    assert got.dtype == np.bool_
    assert got.tolist() == [
        [True, False, True],
        [False, True, False],
        [True, True, True],
        [False, False, False],
    ]


def test_multilabel_refuses_scores_with_another_number_of_columns() -> None:
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        _multilabel().decide(np.zeros((2, 4)))


def test_multiclass_decides_exactly_the_argmax_class_whatever_its_value() -> None:
    rule = DecisionRule("crnn", "multiclass", CLASSES, None)
    scores = np.array([[0.2, 0.5, 0.3], [0.34, 0.33, 0.33], [0.1, 0.1, 0.8]])
    got = rule.decide(scores)
    assert got.tolist() == [[False, True, False], [True, False, False], [False, False, True]]
    assert (got.sum(axis=1) == 1).all()
    assert rule.decide(np.zeros((0, 3))).shape == (0, 3)
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        rule.decide(np.zeros((2, 2)))


def test_reconstruction_flags_scores_at_or_above_the_threshold() -> None:
    rule = _anomaly()
    assert rule.decide(np.array([0.1, 0.25, 0.26, 3.0])).tolist() == [False, True, True, True]
    assert rule.decide(np.array([[0.1], [0.3]])).tolist() == [False, True]


def test_a_rule_needs_a_known_task_and_thresholds_unless_multiclass() -> None:
    with pytest.raises(ValueError, match="task"):
        DecisionRule("m", "regression", CLASSES, None)  # type: ignore[arg-type]  # an unknown task on purpose
    with pytest.raises(ValueError, match="needs thresholds"):
        DecisionRule("m", "multilabel", CLASSES, None)
    with pytest.raises(ValueError, match="needs thresholds"):
        DecisionRule("m", "reconstruction", (), None)


@pytest.mark.parametrize(
    "make", [_multilabel, _anomaly, lambda: DecisionRule("crnn", "multiclass", CLASSES, None)]
)
def test_json_round_trip_gives_the_same_rule_and_decisions(tmp_path: Path, make: Any) -> None:
    rule: DecisionRule = make()
    path = write_rule(rule, tmp_path / "eval" / "m" / "thresholds.json")
    data = json.loads(path.read_text())
    assert data["format"] == RULE_FORMAT and data["task"] == rule.task and data["model"] == rule.model
    back = read_rule(path)
    assert back == rule and back.to_dict() == rule.to_dict()
    scores = np.random.default_rng(0).random((20, max(1, len(rule.classes))))
    if rule.task == "reconstruction":
        scores = scores[:, 0]
    np.testing.assert_array_equal(back.decide(scores), rule.decide(scores))


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "thresholds.json"
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def _edited(**changes: Any) -> dict[str, Any]:
    data = _multilabel().to_dict()
    data.update(changes)
    return data


def test_a_file_that_is_not_json_is_refused_naming_it(tmp_path: Path) -> None:
    path = _write(tmp_path, "{not json")
    with pytest.raises(ValueError, match="thresholds.json"):
        read_rule(path)
    with pytest.raises(ValueError, match="thresholds.json"):
        read_rule(tmp_path / "missing" / "thresholds.json")


def test_a_wrong_format_is_refused_naming_the_file_and_the_expected_format(tmp_path: Path) -> None:
    path = _write(tmp_path, _edited(format="ecgpipe-decision-rule/0"))
    with pytest.raises(ValueError, match="thresholds.json") as info:
        read_rule(path)
    assert RULE_FORMAT in str(info.value)


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"thresholds": None}, "thresholds"),  # a multilabel rule without thresholds
        ({"task": "reconstruction", "thresholds": None}, "thresholds"),
        ({"task": "regression"}, "task"),
        ({"classes": ["NORM", "AF"]}, "classes"),  # 3 thresholds for 2 classes
        ({"classes": ["NORM", "MI", "AF"]}, "classes"),  # thresholds for the classes in another order
    ],
)
def test_a_task_or_threshold_mismatch_is_refused_naming_the_file(
    tmp_path: Path, changes: dict[str, Any], needle: str
) -> None:
    path = _write(tmp_path, _edited(**changes))
    with pytest.raises(ValueError) as info:
        read_rule(path)
    message = str(info.value)
    assert str(path) in message and needle in message


def test_a_rule_missing_a_key_is_refused_naming_the_file_and_the_key(tmp_path: Path) -> None:
    data = _edited()
    del data["classes"]
    path = _write(tmp_path, data)
    with pytest.raises(ValueError) as info:
        read_rule(path)
    assert str(path) in str(info.value) and "classes" in str(info.value)


def test_thresholds_chosen_on_the_test_split_are_refused_naming_the_file(tmp_path: Path) -> None:
    data = _edited()
    data["thresholds"]["chosen_on"] = "test"
    path = _write(tmp_path, data)
    with pytest.raises(ValueError) as info:
        read_rule(path)
    assert str(path) in str(info.value) and "test" in str(info.value)
