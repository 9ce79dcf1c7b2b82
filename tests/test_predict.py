"""``ecgpipe predict`` on real records: reader choice, stable ids, scores equal to a direct forward
pass on the signal the training shards would hold, decisions that follow the rule (inputs, rejections
and exit codes: tests/test_predict_inputs.py).

The models are tiny but real: trained for one epoch by :func:`pipeline.training.loop.fit`, which writes
the checkpoints predict loads. The reference scores are computed independently: records decoded
by ``wfdb.rdrecord`` / ``numpy.loadtxt`` / ``h5py``, preprocessed by ``process``, written to a
shard and read back by the shard store (the int16 round trip training saw), then one forward
pass of the model loaded separately from the checkpoint. CUDA (pinned memory, non-blocking
copies) cannot run here: no GPU.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.evaluation.decisions import DecisionRule, write_rule
from pipeline.export.predict import run_predict
from tests.predict_models import (
    AF_CLASSES,
    CINC,
    ECG12_CLASSES,
    N_BEATS,
    PTBXL,
    UCR,
    Trained,
    copy_record,
    csv_rows,
    read_json,
    ref_record,
    reference_scores,
    scores_of,
    thresholds,
    train_models,
    ucr_head,
    wfdb_record,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Trained]:
    return train_models(tmp_path_factory)


@pytest.mark.shared_data
def test_cinc2017_folder_scores_equal_a_direct_forward_and_argmax_decides(
    shared_data: Path, trained: dict[str, Trained], tmp_path: Path
) -> None:
    t = trained["crnn"]
    folder = tmp_path / "new"
    for name in ("A00001", "A00002", "A00003"):
        copy_record(shared_data / CINC / name, folder, (".hea", ".mat"))
    copy_record(shared_data / CINC / "A00005", folder / "sub", (".hea", ".mat"))
    rule = write_rule(DecisionRule("crnn", "multiclass", AF_CLASSES, None), tmp_path / "thresholds.json")

    assert run_predict(t.checkpoint, [folder], tmp_path / "out", rule) == 0

    rows = csv_rows(tmp_path / "out")
    ids = ["cinc2017:A00001", "cinc2017:A00002", "cinc2017:A00003", "cinc2017:A00005"]  # the store's ids
    assert list(rows) == ids
    assert all(rows[i]["status"] == "scored" for i in ids)
    # A00003 and A00005 are 60 s: cropped to the profile's first 30 s, exactly as training did,
    # so a record cut to its first 9000 samples before preprocessing scores the same.
    refs = [
        wfdb_record(folder / "A00001"),
        wfdb_record(folder / "A00002"),
        wfdb_record(folder / "A00003", samples=9000),
        wfdb_record(folder / "sub" / "A00005", samples=9000),
    ]
    expected = reference_scores(t, refs, tmp_path)
    np.testing.assert_allclose(scores_of(rows, ids, AF_CLASSES), expected, rtol=1e-5, atol=1e-7)
    assert [rows[i]["predicted"] for i in ids] == [AF_CLASSES[k] for k in expected.argmax(axis=1)]
    assert {rows[i]["valid_len"] for i in ids} == {"9000"}
    assert rows["cinc2017:A00005"]["files"] == f"{folder}/sub/A00005.hea;{folder}/sub/A00005.mat"
    report = read_json(tmp_path / "out")
    assert report["counts"] == {"scored": 4, "rejected": 0, "skipped_files": 0}
    assert report["decision_rule"]["task"] == "multiclass"
    assert report["preprocessing"]["crop"] == "start" and "cropped" in report["preprocessing"]["long_records"]
    assert report["rows"][0]["predicted"] == rows["cinc2017:A00001"]["predicted"]


@pytest.mark.shared_data
def test_ptbxl_records_scored_without_a_rule_then_decided_by_per_class_thresholds(
    shared_data: Path, trained: dict[str, Trained], tmp_path: Path
) -> None:
    t = trained["resnet"]
    hr, lr = shared_data / PTBXL / "records500/00000", shared_data / PTBXL / "records100/00000"
    # A header, a signal file standing for its record, and a 100 Hz record (resampled to 500 Hz).
    inputs = [hr / "00001_hr.hea", hr / "00002_hr.dat", lr / "00003_lr.hea"]
    ids = ["ptbxl:00001", "ptbxl:00002", "ptbxl:00003"]  # PTB-XL's layout: the store's ids

    assert run_predict(t.checkpoint, inputs, tmp_path / "plain", tmp_path / "absent.json") == 0
    plain = csv_rows(tmp_path / "plain")
    assert list(plain) == ids and "predicted" not in plain["ptbxl:00001"]
    report = read_json(tmp_path / "plain")
    assert report["decision_rule"] is None
    assert "no decision rule was available" in report["decision_rule_note"]
    assert "absent.json" in report["decision_rule_note"]
    scores = scores_of(plain, ids, ECG12_CLASSES)
    refs = [wfdb_record(hr / "00001_hr"), wfdb_record(hr / "00002_hr"), wfdb_record(lr / "00003_lr")]
    np.testing.assert_allclose(scores, reference_scores(t, refs, tmp_path), rtol=1e-5, atol=1e-7)

    # Thresholds between the records' scores, so each class is predicted for some and not others.
    cut = np.median(scores, axis=0)
    rule = DecisionRule("resnet", "multilabel", ECG12_CLASSES, thresholds(ECG12_CLASSES, cut.tolist()))
    # The training folder stands for its best.pt.
    rule_path = write_rule(rule, tmp_path / "t.json")
    assert run_predict(t.checkpoint.parent, inputs, tmp_path / "ruled", rule_path) == 0
    assert read_json(tmp_path / "ruled")["checkpoint"]["path"] == str(t.checkpoint)
    ruled = csv_rows(tmp_path / "ruled")
    np.testing.assert_array_equal(scores_of(ruled, ids, ECG12_CLASSES), scores)
    for i, rid in enumerate(ids):
        expected = [c for c, s, k in zip(ECG12_CLASSES, scores[i], cut, strict=True) if s >= k]
        assert ruled[rid]["predicted"] == ";".join(expected)
    by_id = {r["record_id"]: r for r in read_json(tmp_path / "ruled")["rows"]}
    assert by_id["ptbxl:00001"]["predicted"] == [c for c in ruled["ptbxl:00001"]["predicted"].split(";") if c]
    assert {c for r in by_id.values() for c in r["predicted"]} == set(ECG12_CLASSES)
    assert not all(set(r["predicted"]) == set(ECG12_CLASSES) for r in by_id.values())


@pytest.mark.shared_data
def test_ucr_beats_are_flagged_anomalous_at_the_rule_threshold(
    shared_data: Path, trained: dict[str, Trained], tmp_path: Path
) -> None:
    t = trained["autoencoder"]
    txt, arff = ucr_head(shared_data / UCR, tmp_path / "ucr", N_BEATS)
    assert run_predict(t.checkpoint, [txt], tmp_path / "plain", None) == 0
    plain = csv_rows(tmp_path / "plain")
    ids = [f"ECG5000_TRAIN.txt/{i:05d}" for i in range(N_BEATS)]
    assert list(plain) == ids
    scores = scores_of(plain, ids, ["anomaly_score"])[:, 0]
    beats = np.loadtxt(txt, dtype=np.float64)[:, 1:]  # column 0 is the class label, ignored
    refs = [ref_record(str(i), b[None, :].astype(np.float32), None, ["ECG"]) for i, b in enumerate(beats)]
    np.testing.assert_allclose(scores, reference_scores(t, refs, tmp_path)[:, 0], rtol=1e-5, atol=1e-9)

    threshold = float(np.median(scores))
    rule = DecisionRule(
        "autoencoder", "reconstruction", ("anomaly",), thresholds(("anomaly",), [threshold], "train")
    )
    rule_path = write_rule(rule, tmp_path / "t.json")
    assert run_predict(t.checkpoint, [txt, arff], tmp_path / "ruled", rule_path, batch_size=96) == 0
    ruled = csv_rows(tmp_path / "ruled")
    arff_ids = [f"ECG5000_TRAIN.arff/{i:05d}" for i in range(N_BEATS)]
    assert list(ruled) == ids + arff_ids
    # The .arff file holds the same values as the .txt: the same scores, whatever the reader.
    np.testing.assert_allclose(scores_of(ruled, arff_ids, ["anomaly_score"])[:, 0], scores, rtol=1e-6)
    flags = [ruled[i]["is_anomaly"] == "true" for i in ids]
    assert flags == list(scores >= threshold)
    assert 0.4 * N_BEATS < sum(flags) < 0.6 * N_BEATS
    assert {ruled[i]["threshold"] for i in ids} == {repr(threshold)}
    row = read_json(tmp_path / "ruled")["rows"][0]
    assert row["is_anomaly"] is bool(scores[0] >= threshold) and row["threshold"] == threshold
