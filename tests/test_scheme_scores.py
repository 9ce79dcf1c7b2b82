"""The field's own scores (pipeline.evaluation.scheme_scores*) against cases worked out by hand.

The CinC 2021 metric is also checked against a loop-by-loop transcription of its published
definition (one record at a time), and the committed weights against their recorded sha256.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.evaluation.scheme_scores import (
    FIELD_FAMILIES,
    field_score,
    field_score_cis,
    source_record,
)
from pipeline.evaluation.scheme_scores_cinc2021 import (
    DEFAULT_WEIGHTS,
    NORMAL_CODE,
    WeightsFileError,
    challenge_metric,
    load_challenge_weights,
    modified_confusion,
    to_challenge_space,
)

# --------------------------------------------------------------------------- CinC 2021


def test_committed_challenge_weights_are_the_26_symmetric_scored_groups() -> None:
    w = load_challenge_weights()
    assert len(w.groups) == 26 and w.weights.shape == (26, 26)
    np.testing.assert_array_equal(w.weights, w.weights.T)
    assert w.names[w.normal_index] == NORMAL_CODE
    merged = {g for g in w.names if "|" in g}
    assert merged == {"733534002|164909002", "713427006|59118001", "284470004|63593006", "427172004|17338001"}
    # two published entries, read off weights.csv by eye
    assert w.weights[w.group_of("AF"), w.group_of("NSR")] == 0.25
    assert w.weights[w.group_of("270492004"), w.group_of("426783006")] == 0.45


def test_perfect_outputs_score_one_and_inactive_outputs_score_zero() -> None:
    classes = ["AF", "NSR", "IAVB", "RBBB"]
    y = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1], [1, 0, 0, 1]], dtype=bool)
    assert field_score("cinc2021", classes, y, y.astype(float), y)["score"] == pytest.approx(1.0)
    inactive = np.zeros_like(y)
    inactive[:, 1] = True
    assert field_score("cinc2021", classes, y, inactive.astype(float), inactive)["score"] == pytest.approx(
        0.0
    )


def test_challenge_metric_of_a_mixed_case_worked_on_paper() -> None:
    """Classes AF, NSR (normal), IAVB; W[AF,NSR] = 0.25, W[IAVB,NSR] = 0.45, W[k,k] = 1.

    Record 1: label {AF}, output {AF}: |L ∪ O| = 1, A[AF,AF] += 1 → 1.
    Record 2: label {IAVB}, output {NSR}: |L ∪ O| = 2, A[IAVB,NSR] += 1/2 → 0.5 · 0.45 = 0.225.
    observed = 1.225. Correct outputs: 1 + 1 = 2. Inactive (NSR only): record 1 gives
    0.5 · W[AF,NSR] = 0.125, record 2 gives 0.225: 0.35. Score = (1.225 - 0.35) / (2 - 0.35) = 0.875 / 1.65.
    """
    y = np.array([[1, 0, 0], [0, 0, 1]], dtype=bool)
    out = np.array([[1, 0, 0], [0, 1, 0]], dtype=bool)
    got = field_score("cinc2021", ["164889003", "426783006", "270492004"], y, out.astype(float), out)
    assert got["score"] == pytest.approx(0.875 / 1.65, abs=1e-12)
    assert got["score_name"] == "challenge_metric" and got["unscored_classes"] == []


def test_equivalent_codes_are_one_class_and_unscored_classes_are_listed() -> None:
    # label says RBBB (59118001), the model answers CRBBB (713427006): the Challenge scores them as one
    classes = ["59118001", "713427006", "NSR", "MI"]
    y = np.array([[1, 0, 0, 1], [0, 0, 1, 0]], dtype=bool)
    out = np.array([[0, 1, 0, 0], [0, 0, 1, 1]], dtype=bool)
    got = field_score("cinc2021", classes, y, out.astype(float), out)
    assert got["score"] == pytest.approx(1.0)
    assert got["unscored_classes"] == ["MI"]
    assert "713427006|59118001" in got["scored_groups_in_model"]
    w = load_challenge_weights()
    assert w.group_of("713427006|59118001") == w.group_of("RBBB") == w.group_of("CRBBB") is not None
    assert w.group_of("MI") is None


def _loop_metric(labels: np.ndarray, outputs: np.ndarray, w: np.ndarray, normal: int) -> float:
    def raw(o: np.ndarray) -> float:
        total = 0.0
        for i in range(labels.shape[0]):
            n = max(int(np.sum(labels[i] | o[i])), 1)
            for j in np.flatnonzero(labels[i]):
                for k in np.flatnonzero(o[i]):
                    total += w[j, k] / n
        return total

    inactive = np.zeros_like(labels)
    inactive[:, normal] = True
    return (raw(outputs) - raw(inactive)) / (raw(labels) - raw(inactive))


def test_vectorised_challenge_metric_equals_the_record_by_record_definition() -> None:
    rng = np.random.default_rng(3)
    w = load_challenge_weights()
    labels = rng.random((60, 26)) < 0.1
    outputs = rng.random((60, 26)) < 0.15
    got = challenge_metric(labels, outputs, w.weights, w.normal_index)
    assert got == pytest.approx(_loop_metric(labels, outputs, w.weights, w.normal_index), abs=1e-12)
    # a record with labels {a, b} and the same outputs adds 1/2 to each of the four pairs
    two = np.zeros((1, 26), dtype=bool)
    two[0, :2] = True
    np.testing.assert_allclose(modified_confusion(two, two)[:2, :2], [[0.5, 0.5], [0.5, 0.5]])


def test_weights_file_with_an_edited_table_fails_its_sha256(tmp_path: Path) -> None:
    text = DEFAULT_WEIGHTS.read_text()
    bad = tmp_path / "weights.csv"
    bad.write_text(text.replace("0.4125", "0.4126", 1))
    with pytest.raises(WeightsFileError, match="sha256"):
        load_challenge_weights(bad)


def test_weights_file_with_a_short_row_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "weights.csv"
    bad.write_text(",a,b\na,1,0.5\nb,0.5\n")
    with pytest.raises(WeightsFileError, match=r"weights.csv:3: expected row 'b' with 2 values"):
        load_challenge_weights(bad)


def test_to_challenge_space_rejects_a_label_matrix_of_the_wrong_width() -> None:
    with pytest.raises(ValueError, match=r"expected \(N, 2\)"):
        to_challenge_space(np.zeros((3, 3)), ["AF", "NSR"], load_challenge_weights())


# --------------------------------------------------------------------------- CinC 2017


def test_cinc2017_f1_from_a_confusion_matrix_worked_on_paper() -> None:
    """true N N N A A O ~, predicted N N A A O O N. Confusion (rows true N A O ~):
    [2 1 0 0; 0 1 1 0; 0 0 1 0; 1 0 0 0]. F1_N = 2·2/(3+3) = 2/3, F1_A = 2·1/(2+2) = 1/2,
    F1_O = 2·1/(1+2) = 2/3, F1_~ = 0/(1+0) = 0. Mean N,A,O = 11/18, mean of four = 11/24."""
    t = np.array([0, 0, 0, 1, 1, 2, 3])
    pred = np.eye(4)[[0, 0, 1, 1, 2, 2, 0]]
    got = field_score("cinc2017", ["N", "A", "O", "~"], t, pred)
    assert got["score"] == pytest.approx(11 / 18)
    assert got["f1_mean_4"] == pytest.approx(11 / 24)
    assert got["f1_per_class"] == pytest.approx({"N": 2 / 3, "A": 0.5, "O": 2 / 3, "~": 0.0})
    assert got["confusion"] == [[2, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0], [1, 0, 0, 0]]


def test_cinc2017_accepts_the_coarse_names_in_any_column_order() -> None:
    classes = ["OTHER", "NORM", "NOISY", "AF"]  # column k of the model is class classes[k]
    t = np.array([1, 1, 1, 3, 3, 0, 2])  # N N N A A O ~ in that order
    pred = np.eye(4)[[1, 1, 3, 3, 0, 0, 1]]  # N N A A O O N
    assert field_score("cinc2017", classes, t, pred)["score"] == pytest.approx(11 / 18)


def test_cinc2017_score_is_undefined_when_a_scored_class_never_occurs() -> None:
    got = field_score("cinc2017", ["N", "A", "O", "~"], np.array([0, 0, 2]), np.eye(4)[[0, 0, 2]])
    assert got["f1_per_class"]["A"] is None and got["score"] is None


def test_cinc2017_rejects_classes_it_cannot_name() -> None:
    with pytest.raises(ValueError, match="must be distinct among"):
        field_score("cinc2017", ["N", "A", "MI"], np.array([0]), np.eye(3)[[0]])


# --------------------------------------------------------------------------- AAMI EC57


def test_aami_gross_and_record_average_worked_on_paper() -> None:
    """Record r1: true N N N, predicted N N V. Record r2: true V V S, predicted V N S.
    Gross: N tp 2 fn 1 fp 1 → Se 2/3, +P 2/3; V tp 1 fn 1 fp 1 → 1/2, 1/2; S 1, 1; F, Q undefined.
    Per record: r1 Se_N 2/3, +P_N 1, +P_V 0; r2 +P_N 0, Se_V 1/2, +P_V 1 → average +P_N 1/2, +P_V 1/2."""
    classes = ["N", "S", "V", "F", "Q"]
    t = np.array([0, 0, 0, 2, 2, 1])
    p = np.array([0, 0, 2, 2, 0, 1])
    groups = np.array(["r1"] * 3 + ["r2"] * 3)
    got = field_score("aami", classes, t, np.eye(5)[p], groups=groups)
    gross = got["gross"]
    assert gross["se_N"] == pytest.approx(2 / 3) and gross["ppv_N"] == pytest.approx(2 / 3)
    assert gross["se_V"] == pytest.approx(0.5) and gross["ppv_V"] == pytest.approx(0.5)
    assert gross["se_S"] == 1.0 and gross["ppv_S"] == 1.0
    assert gross["se_F"] is None and gross["ppv_Q"] is None
    assert got["counts"]["N"] == {"tp": 2, "fn": 1, "fp": 1}
    avg = got["record_average"]
    assert avg["se_N"] == pytest.approx(2 / 3) and avg["ppv_N"] == pytest.approx(0.5)
    assert avg["se_V"] == pytest.approx(0.5) and avg["ppv_V"] == pytest.approx(0.5)
    assert got["n_records"] == 2 and got["n_beats"] == 6


def test_aami_rejects_non_aami_classes() -> None:
    with pytest.raises(ValueError, match="AAMI"):
        field_score("aami", ["N", "AF"], np.array([0]), np.eye(2)[[0]])


# --------------------------------------------------------------------------- PTB-XL and dispatch


def test_ptbxl_macro_auroc_skips_classes_without_both_kinds_and_says_why() -> None:
    """Class 0: positives 0.9, 0.8 above negatives 0.1, 0.2 → 1. Class 1: positives 0.6, 0.4 vs
    negatives 0.2, 0.5: 3 of 4 pairs ordered → 0.75. Class 2 has no positive. Macro = 0.875."""
    y = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    s = np.array([[0.9, 0.2, 0.1], [0.1, 0.6, 0.3], [0.8, 0.4, 0.2], [0.2, 0.5, 0.4]])
    got = field_score("ptbxl", ["NORM", "MI", "HYP"], y, s)
    assert got["score"] == pytest.approx(0.875)
    assert got["per_class"] == pytest.approx({"NORM": 1.0, "MI": 0.75, "HYP": None})
    assert got["skipped"] == [{"class": "HYP", "reason": "no positive"}] and got["n_classes_scored"] == 2


def test_unknown_family_and_missing_decisions_are_refused() -> None:
    y = np.eye(2)
    with pytest.raises(ValueError, match="unknown field score family 'cinc2020'"):
        field_score("cinc2020", ["AF", "NSR"], y, y)
    with pytest.raises(ValueError, match="pass decisions"):
        field_score("cinc2021", ["AF", "NSR"], y, y)


@pytest.mark.parametrize("family", FIELD_FAMILIES)
def test_every_family_gives_bootstrap_cis_around_its_estimate(family: str) -> None:
    rng = np.random.default_rng(0)
    classes = {"cinc2017": ["N", "A", "O", "~"], "aami": ["N", "S", "V", "F", "Q"]}.get(
        family, ["AF", "NSR", "IAVB"]
    )
    k, n = len(classes), 80
    t = rng.integers(0, k, n)
    y = np.eye(k)[t]
    scores = y * 0.6 + rng.random((n, k)) * 0.7
    dec = scores >= 0.65
    full = field_score(family, classes, y, scores, dec)
    cis = field_score_cis(family, classes, y, scores, dec, n=50, alpha=0.1, seed=1)
    assert cis and all(name.startswith("field_") for name in cis)
    for ci in cis.values():
        assert ci["n_valid"] > 0 and ci["low"] <= ci["estimate"] <= ci["high"]
    if full["score_name"] is not None:
        assert cis[f"field_{full['score_name']}"]["estimate"] == pytest.approx(full["score"])


def test_source_record_strips_window_and_beat_suffixes_only() -> None:
    assert source_record("mitdb:100/w000360") == "mitdb:100"
    assert source_record("cpsc2021:data_0_1/b1234") == "cpsc2021:data_0_1"
    assert source_record("ucr:ECG5000_TEST/00007") == "ucr:ECG5000_TEST/00007"
