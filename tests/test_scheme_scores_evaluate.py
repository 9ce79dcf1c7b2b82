"""The field score inside the evaluate stage: ``evaluate.field_score`` in params → ``EvalSettings``
→ ``report.json`` / ``metrics.json``; unset, the evaluation is what it was.

Scores are made up here (no model is trained): the stage's evaluate() is a function of the scores.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.cli.models import eval_settings
from pipeline.config.base import ConfigError
from pipeline.config.load import load_params
from pipeline.evaluation.evaluate import EvalSettings, SplitScores, evaluate
from pipeline.evaluation.report import metrics_summary
from pipeline.evaluation.scheme_scores import field_score
from tests.predict_models import make_card

REPO = Path(__file__).resolve().parents[1]
VOCAB = ("NORM", "AF", "MI", "BBB", "OTHER", "NOISY")


def _split(name: str, y: np.ndarray, scores: np.ndarray, ids: list[str]) -> SplitScores:
    return SplitScores(
        split=name,  # type: ignore[arg-type]  # a literal chosen by the caller
        record_ids=tuple(ids),
        y=y.astype(np.float32),
        scores=scores.astype(np.float64),
        x=np.zeros((0, 1, 1), np.float32),
        out=np.zeros((0, scores.shape[1]), np.float32),
    )


def _multiclass_splits(n: int = 120) -> tuple[SplitScores, SplitScores]:
    rng = np.random.default_rng(0)
    t = rng.choice([0, 1, 4, 5], size=n)  # NORM AF OTHER NOISY columns of the vocabulary
    y = np.eye(len(VOCAB))[t]
    cols = [0, 1, 4, 5]
    scores = y[:, cols] + rng.random((n, 4)) * 1.2
    ids = [f"cinc2017:A{i:05d}" for i in range(n)]
    return _split("val", y, scores, ids), _split("test", y, scores, ids)  # argmax: no val thresholds


def test_crnn_with_cinc2017_field_score_reports_f1_nao_with_its_ci() -> None:
    card = make_card("lead1_af", "crnn", "crnn", {}, "multiclass", ("NORM", "AF", "OTHER", "NOISY"))
    val, test = _multiclass_splits()
    ev = evaluate(card, val, test, EvalSettings(bootstrap=40, field_score="cinc2017"))
    fs = ev.report["field_score"]
    t = np.argmax(test.y[:, [0, 1, 4, 5]], axis=1)
    expected = field_score("cinc2017", card.classes, t, test.scores)
    assert fs == expected and fs["family"] == "cinc2017"
    # the same numbers as the stage's own per-class F1 (scikit-learn) averaged over NORM AF OTHER / all four
    per_class = ev.report["f1"]["per_class"]
    assert ev.headline["field_f1_NAO"] == pytest.approx(
        np.mean([per_class[c] for c in ("NORM", "AF", "OTHER")])
    )
    assert fs["f1_mean_4"] == pytest.approx(ev.report["f1"]["macro"])
    summary = metrics_summary(card, ev, test)
    assert summary["test_ci"]["field_f1_NAO_low"] <= fs["score"] <= summary["test_ci"]["field_f1_NAO_high"]


def test_without_field_score_the_evaluation_has_no_field_keys() -> None:
    card = make_card("lead1_af", "crnn", "crnn", {}, "multiclass", ("NORM", "AF", "OTHER", "NOISY"))
    val, test = _multiclass_splits()
    ev = evaluate(card, val, test, EvalSettings(bootstrap=10))
    assert "field_score" not in ev.report
    assert not [k for k in [*ev.headline, *ev.report["ci"]] if k.startswith("field_")]


def test_multilabel_ptbxl_field_score_skips_a_class_with_no_positive() -> None:
    card = make_card("ecg12", "resnet", "resnet1d", {}, "multilabel", VOCAB)
    rng = np.random.default_rng(1)
    y = (rng.random((90, 6)) < 0.3).astype(np.float32)
    y[:, 5] = 0  # no NOISY record
    scores = y + rng.random((90, 6))
    val = _split("val", y, scores, [f"ptbxl:{i:05d}" for i in range(90)])
    test = _split("test", y, scores, [f"ptbxl:{i:05d}" for i in range(100, 190)])
    ev = evaluate(card, val, test, EvalSettings(bootstrap=20, field_score="ptbxl"))
    fs = ev.report["field_score"]
    assert fs["skipped"] == [{"class": "NOISY", "reason": "no positive"}]
    assert ev.headline["field_auroc_macro"] == pytest.approx(ev.headline["auroc_macro"])
    assert "field_auroc_macro" in ev.report["ci"]


def test_params_feed_field_score_per_model() -> None:
    params = load_params(REPO / "params.yaml", ["evaluate.field_score={crnn: cinc2017, resnet: ptbxl}"])
    assert eval_settings(params, "crnn").field_score == "cinc2017"
    assert eval_settings(params, "resnet").field_score == "ptbxl"
    assert eval_settings(params, "autoencoder").field_score is None


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("evaluate.field_score={crnn: cinc2016}", "evaluate.field_score.crnn"),
        ("evaluate.field_score={lstm: cinc2017}", "evaluate.field_score names 'lstm', not in train.models"),
        (
            "evaluate.field_score={resnet: cinc2017}",
            "evaluate.field_score.resnet: 'cinc2017' scores ['multiclass']",
        ),
    ],
)
def test_bad_field_score_params_fail_naming_the_key(override: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        load_params(REPO / "params.yaml", [override])
