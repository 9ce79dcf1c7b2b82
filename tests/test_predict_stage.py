"""``ecgpipe predict`` on raw records of the demo store after ``split | train | evaluate``
(:mod:`tests.model_stages`): the same scores and decisions as the evaluated test split, and no rule
applied that was evaluated on another checkpoint."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from pipeline.cli.main import main
from tests.model_stages import (
    MODELS,
    Stage,
    read_csv,
    run_stages,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Stage:
    return run_stages(tmp_path_factory)


# --------------------------------------------------------------------------- predict


def _raw_files(stage: Stage, model: str, record_ids: Sequence[str]) -> tuple[list[Path], dict[str, str]]:
    """Raw demo files holding ``record_ids`` and predict's id → store id."""
    raw = stage.root / "raw"
    if model == "crnn":  # CinC 2017 and PTB-XL layouts: predict gives the store's own ids
        locals_ = [rid.split(":", 1)[1] for rid in record_ids]
        return [raw / "cinc2017" / "training2017" / f"{n}.hea" for n in locals_], {r: r for r in record_ids}
    if model == "resnet":
        files = [
            next((raw / "ptbxl" / "records500").rglob(f"{rid.split(':', 1)[1]}_hr.hea")) for rid in record_ids
        ]
        return files, {r: r for r in record_ids}
    # UCR: one file holds many beats; predict names a row <file>/<local id>
    files = sorted({raw / "ucr" / f"{rid.split(':', 1)[1].split('/')[0]}.txt" for rid in record_ids})
    return files, {
        f"{rid.split(':', 1)[1].split('/')[0]}.txt/{rid.split('/')[-1]}": rid for rid in record_ids
    }


@pytest.mark.parametrize("model", MODELS)
def test_predict_on_raw_records_gives_the_test_scores_and_decisions(
    stage: Stage, model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card = stage.card(model)
    test_rows = {r["record_id"]: r for r in read_csv(stage.eval_dir(model) / "test_scores.csv")}
    chosen = list(test_rows)[:3]
    files, to_store_id = _raw_files(stage, model, chosen)
    # no --rule: predict finds eval/<model>/thresholds.json through params
    args = [
        "predict",
        "--model",
        str(stage.params.train.out_dir / model),
        "--out",
        str(tmp_path),
        *map(str, files),
    ]
    assert main([*args, *stage.args()]) == 0
    predicted = {
        to_store_id[r["record_id"]]: r
        for r in read_csv(tmp_path / "predictions.csv")
        if r["record_id"] in to_store_id
    }
    assert set(chosen) <= set(predicted)
    report = json.loads((tmp_path / "predictions.json").read_text())
    assert report["decision_rule"] is not None
    # Honest about its training data: the demo tree's marker made every source synthetic.
    trained = report["training_data"]
    assert trained["sources"] == trained["synthetic_demo_sources"] != []
    assert sum(trained["records"]["train"].values()) > 0
    assert "SYNTHETIC DEMO DATA" in trained["summary"] and "SYNTHETIC DEMO DATA" in capsys.readouterr().err
    preamble = (tmp_path / "predictions.csv").read_text().splitlines()[:4]
    assert preamble[2].startswith("# trained_on: ") and "SYNTHETIC DEMO DATA" in preamble[2]
    for rid in chosen:
        got, want = predicted[rid], test_rows[rid]
        assert got["status"] == "scored"
        for name in card.output_names:
            assert float(got[name]) == pytest.approx(float(want[name]), abs=1e-6), (rid, name)
        if card.task == "reconstruction":
            assert (got["is_anomaly"] == "true") == (want["is_anomaly_pred"] == "True")
        else:
            # predictions.csv joins several classes with ";", test_scores.csv with " "
            assert [c for c in got["predicted"].split(";") if c] == want["predicted"].split()


def test_predict_does_not_apply_a_rule_evaluated_on_another_checkpoint(stage: Stage, tmp_path: Path) -> None:
    # Retrain the autoencoder elsewhere (another seed): eval/autoencoder/thresholds.json was
    # chosen for the first checkpoint's score scale, not this one's.
    other = tmp_path / "models"
    retrain = stage.args(f"train.out_dir={other}", f"train.live_dir={tmp_path / 'live'}",
                         "train.models.autoencoder.seed=1", "train.models.autoencoder.lr=0.01")  # fmt: skip
    assert main(["train", "autoencoder", *retrain]) == 0
    ucr = stage.root / "raw" / "ucr" / "ECG5000_TEST.txt"
    out = tmp_path / "pred"
    rc = main(["predict", "--model", str(other / "autoencoder"), "--out", str(out), str(ucr), *stage.args()])
    if rc == 2:
        return  # refused, naming the mismatch: acceptable
    report = json.loads((out / "predictions.json").read_text())
    assert report["decision_rule"] is None, (
        "predict applied eval/autoencoder/thresholds.json, which evaluation chose for another checkpoint"
    )
