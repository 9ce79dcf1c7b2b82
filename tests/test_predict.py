"""``ecgpipe predict`` on real records: reader choice, stable ids, scores equal to a direct forward
pass on the signal the training shards would hold, decisions that follow the rule, rejections.

The models are tiny but real: trained for one epoch by :func:`pipeline.training.loop.fit`, which writes
the checkpoints predict loads. The reference scores are computed independently: records decoded
by ``wfdb.rdrecord`` / ``numpy.loadtxt`` / ``h5py``, preprocessed by ``process``, written to a
shard and read back by the shard store (the int16 round trip training saw), then one forward
pass of the model loaded separately from the checkpoint. CUDA (pinned memory, non-blocking
copies) cannot run here: no GPU.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import numpy.typing as npt
import pytest
import torch
import wfdb

from pipeline.config import Profile, Quality
from pipeline.config.build import signal_plan
from pipeline.core.leads import canonical_leads
from pipeline.core.records import Provenance, Record
from pipeline.evaluation.decisions import DecisionRule, write_rule
from pipeline.evaluation.thresholds import SplitName, ThresholdSet
from pipeline.export.predict import CSV_NAME, JSON_NAME, discover_inputs, run_predict
from pipeline.models.card import ModelCard, card_from_checkpoint
from pipeline.models.scoring import Task, output_scores
from pipeline.signal.preprocess import SignalPlan, process
from pipeline.store.local import ShardStore, StorageSpec, read_signal, rows_for
from pipeline.training.checkpoint import load_checkpoint, save_checkpoint
from pipeline.training.loop import fit
from pipeline.training.options import EarlyStopping, TrainConfig

CINC = "cinc2017/training2017"
PTBXL = "ptbxl"
UCR = "ucr_ecg5000"
N_BEATS = 150
AF_CLASSES = ("NORM", "AF", "OTHER", "NOISY")
ECG12_CLASSES = ("NORM", "MI", "OTHER")
ECG12_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
STORAGE = StorageSpec(dtype="int16", scale_mv=0.001, records_per_chunk=16)

# Profiles as params.yaml declares them (built here so the test does not depend on that file).
PROFILES: dict[str, Profile] = {
    "lead1_af": Profile(
        sources=("cinc2017",),
        leads=("I",),
        lead_aliases={"I": ("ECG",)},
        fs_hz=300,
        length_s=30,
        quality=Quality(min_duration_s=5.0),
    ),
    "ecg12": Profile(
        sources=("ptbxl",), leads=ECG12_LEADS, fs_hz=500, length_s=10, quality=Quality(min_duration_s=2.0)
    ),
    "beats140": Profile(
        sources=("ucr",),
        leads=("ECG",),
        fs_hz=None,
        length_samples=140,
        baseline_hz=None,
        notch_hz=None,
        quality=Quality(max_nan_fraction=0.0, flat_ptp_mv=0.0, reject_flat=False, min_duration_s=0.0),
    ),
}

Scores = npt.NDArray[np.float64]


# --------------------------------------------------------------------------- models


@dataclasses.dataclass(frozen=True)
class Trained:
    card: ModelCard
    checkpoint: Path


def _card(
    profile: str, name: str, kind: str, kwargs: Mapping[str, Any], task: Task, classes: tuple[str, ...]
) -> ModelCard:
    plan = signal_plan(PROFILES[profile])
    return ModelCard(
        name=name,
        kind=kind,
        kwargs=dict(kwargs),
        task=task,
        classes=classes,
        vocabulary=("NORM", "AF", "MI", "BBB", "OTHER", "NOISY"),
        profile=profile,
        signal_plan=dataclasses.asdict(plan),
        input_shape=(len(plan.leads), plan.length),
        normal_class="NORM" if task == "reconstruction" else None,
    )


CARDS = {
    "crnn": _card(
        "lead1_af",
        "crnn",
        "crnn",
        {"n_classes": 4, "n_fft": 64, "hop": 32, "conv_channels": [4, 8], "rnn_hidden": 8},
        "multiclass",
        AF_CLASSES,
    ),
    "resnet": _card(
        "ecg12",
        "resnet",
        "resnet1d",
        {"n_leads": 12, "n_classes": 3, "widths": [8, 16], "kernel_size": 7},
        "multilabel",
        ECG12_CLASSES,
    ),
    "autoencoder": _card(
        "beats140",
        "autoencoder",
        "autoencoder",
        {"in_channels": 1, "length": 140, "widths": [8, 16], "latent": 8},
        "reconstruction",
        (),
    ),
}


def _batches(card: ModelCard, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One tiny batch of noise in the card's input shape, with targets of its task."""
    g = torch.Generator().manual_seed(seed)
    x = 0.3 * torch.randn(3, *card.input_shape, generator=g)
    if card.task == "multiclass":
        y = torch.arange(3)
    elif card.task == "multilabel":
        y = (torch.rand(3, len(card.classes), generator=g) > 0.5).float()
    else:
        y = torch.zeros(3)
    return [(x, y)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Trained]:
    """The three model families, trained one epoch each by ``fit`` (real ``best.pt`` files)."""
    out: dict[str, Trained] = {}
    for i, (name, card) in enumerate(CARDS.items()):
        folder = tmp_path_factory.mktemp(f"train-{name}")
        cfg = TrainConfig(
            task=card.task,
            epochs=1,
            lr=1e-2,
            device="cpu",
            amp=False,
            seed=i,
            early_stopping=EarlyStopping(patience=None),
        )
        batches = _batches(card, i)
        result = fit(card.build(), batches, batches, cfg, folder, {"card": card.to_dict()}, progress=False)
        assert result.best_path is not None
        out[name] = Trained(card, result.best_path)
    return out


def _loaded_model(t: Trained) -> torch.nn.Module:
    """The network from the checkpoint, loaded the way any consumer would (not via predict)."""
    ckpt = load_checkpoint(t.checkpoint)
    model = card_from_checkpoint(ckpt).build()
    model.load_state_dict(ckpt["model"])
    return model.eval()


# --------------------------------------------------------------------------- references


def _record(rid: str, signal: npt.NDArray[np.float32], fs: float | None, leads: Sequence[str]) -> Record:
    return Record(
        rid,
        "ref",
        np.ascontiguousarray(signal, dtype=np.float32),
        fs,
        tuple(leads),
        None,
        (),
        Provenance(files=(), reader="ref"),
    )


def _wfdb_record(path: Path, samples: int | None = None) -> Record:
    """A record decoded by ``wfdb.rdrecord`` (an independent decoder), optionally its first samples."""
    rec = wfdb.rdrecord(str(path), sampto=samples)
    leads = canonical_leads(list(rec.sig_name))
    return _record(path.name, np.asarray(rec.p_signal, dtype=np.float64).T.astype(np.float32), rec.fs, leads)


def _reference_scores(t: Trained, records: Sequence[Record], tmp: Path) -> Scores:
    """Scores of a direct forward pass on the signal as a training shard stores it."""
    plan: SignalPlan = t.card.plan()
    batch, rejected = process(list(records), plan)
    assert not rejected, rejected
    store = ShardStore(tmp / f"store-{len(list(tmp.iterdir()))}", t.card.profile)
    rows = rows_for(batch.records, [r.record_id for r in batch.records], batch.valid_len)
    store.write_shard("part-000000", batch.signal, rows, STORAGE, {})
    x = torch.from_numpy(read_signal(store.open_shard("part-000000")))
    with torch.inference_mode():
        scores = output_scores(t.card.task, x, _loaded_model(t)(x))
    return np.asarray(scores.double().numpy()).reshape(len(records), -1)


# --------------------------------------------------------------------------- output helpers


def _csv_rows(out: Path) -> dict[str, dict[str, str]]:
    with open(out / CSV_NAME, newline="") as fh:
        return {row["record_id"]: row for row in csv.DictReader(fh)}


def _json(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / JSON_NAME).read_text())
    return data


def _scores_of(rows: Mapping[str, Mapping[str, str]], ids: Sequence[str], names: Sequence[str]) -> Scores:
    return np.array([[float(rows[i][n]) for n in names] for i in ids], dtype=np.float64)


def _thresholds(
    classes: Sequence[str], values: Sequence[float], chosen_on: SplitName = "val"
) -> ThresholdSet:
    values = tuple(float(v) for v in values)
    return ThresholdSet(tuple(classes), values, chosen_on, n=10, method="test", ids_digest="0" * 64)


def _copy_record(src: Path, dest: Path, suffixes: Sequence[str]) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for suffix in suffixes:
        shutil.copy(src.with_name(src.name + suffix), dest / (src.name + suffix))


def _ucr_head(src: Path, dest: Path, n: int) -> tuple[Path, Path]:
    """The first ``n`` beats of the real ECG5000 ``.txt`` and ``.arff`` files (same values)."""
    dest.mkdir()
    txt_lines = (src / "ECG5000_TRAIN.txt").read_text().splitlines(keepends=True)
    (dest / "ECG5000_TRAIN.txt").write_text("".join(txt_lines[:n]))
    arff_lines = (src / "ECG5000_TRAIN.arff").read_text().splitlines(keepends=True)
    data = next(i for i, line in enumerate(arff_lines) if line.strip().lower() == "@data") + 1
    (dest / "ECG5000_TRAIN.arff").write_text("".join(arff_lines[: data + n]))
    return dest / "ECG5000_TRAIN.txt", dest / "ECG5000_TRAIN.arff"


# --------------------------------------------------------------------------- tests


@pytest.mark.shared_data
def test_cinc2017_folder_scores_equal_a_direct_forward_and_argmax_decides(
    shared_data: Path, trained: dict[str, Trained], tmp_path: Path
) -> None:
    t = trained["crnn"]
    folder = tmp_path / "new"
    for name in ("A00001", "A00002", "A00003"):
        _copy_record(shared_data / CINC / name, folder, (".hea", ".mat"))
    _copy_record(shared_data / CINC / "A00005", folder / "sub", (".hea", ".mat"))
    rule = write_rule(DecisionRule("crnn", "multiclass", AF_CLASSES, None), tmp_path / "thresholds.json")

    assert run_predict(t.checkpoint, [folder], tmp_path / "out", rule) == 0

    rows = _csv_rows(tmp_path / "out")
    ids = ["A00001", "A00002", "A00003", "sub/A00005"]
    assert list(rows) == ids
    assert all(rows[i]["status"] == "scored" for i in ids)
    # A00003 and A00005 are 60 s: cropped to the profile's first 30 s, exactly as training did,
    # so a record cut to its first 9000 samples before preprocessing scores the same.
    refs = [
        _wfdb_record(folder / "A00001"),
        _wfdb_record(folder / "A00002"),
        _wfdb_record(folder / "A00003", samples=9000),
        _wfdb_record(folder / "sub" / "A00005", samples=9000),
    ]
    expected = _reference_scores(t, refs, tmp_path)
    np.testing.assert_allclose(_scores_of(rows, ids, AF_CLASSES), expected, rtol=1e-5, atol=1e-7)
    assert [rows[i]["predicted"] for i in ids] == [AF_CLASSES[k] for k in expected.argmax(axis=1)]
    assert {rows[i]["valid_len"] for i in ids} == {"9000"}
    assert rows["sub/A00005"]["files"] == f"{folder}/sub/A00005.hea;{folder}/sub/A00005.mat"
    report = _json(tmp_path / "out")
    assert report["counts"] == {"scored": 4, "rejected": 0, "skipped_files": 0}
    assert report["decision_rule"]["task"] == "multiclass"
    assert report["preprocessing"]["crop"] == "start" and "cropped" in report["preprocessing"]["long_records"]
    assert report["rows"][0]["predicted"] == rows["A00001"]["predicted"]


@pytest.mark.shared_data
def test_ptbxl_records_scored_without_a_rule_then_decided_by_per_class_thresholds(
    shared_data: Path, trained: dict[str, Trained], tmp_path: Path
) -> None:
    t = trained["resnet"]
    hr, lr = shared_data / PTBXL / "records500/00000", shared_data / PTBXL / "records100/00000"
    # A header, a signal file standing for its record, and a 100 Hz record (resampled to 500 Hz).
    inputs = [hr / "00001_hr.hea", hr / "00002_hr.dat", lr / "00003_lr.hea"]
    ids = ["00001_hr", "00002_hr", "00003_lr"]

    assert run_predict(t.checkpoint, inputs, tmp_path / "plain", tmp_path / "absent.json") == 0
    plain = _csv_rows(tmp_path / "plain")
    assert list(plain) == ids and "predicted" not in plain["00001_hr"]
    report = _json(tmp_path / "plain")
    assert report["decision_rule"] is None
    assert "no decision rule was available" in report["decision_rule_note"]
    assert "absent.json" in report["decision_rule_note"]
    scores = _scores_of(plain, ids, ECG12_CLASSES)
    refs = [_wfdb_record(hr / "00001_hr"), _wfdb_record(hr / "00002_hr"), _wfdb_record(lr / "00003_lr")]
    np.testing.assert_allclose(scores, _reference_scores(t, refs, tmp_path), rtol=1e-5, atol=1e-7)

    # Thresholds between the records' scores, so each class is predicted for some and not others.
    cut = np.median(scores, axis=0)
    rule = DecisionRule("resnet", "multilabel", ECG12_CLASSES, _thresholds(ECG12_CLASSES, cut.tolist()))
    # The training folder stands for its best.pt.
    rule_path = write_rule(rule, tmp_path / "t.json")
    assert run_predict(t.checkpoint.parent, inputs, tmp_path / "ruled", rule_path) == 0
    assert _json(tmp_path / "ruled")["checkpoint"]["path"] == str(t.checkpoint)
    ruled = _csv_rows(tmp_path / "ruled")
    np.testing.assert_array_equal(_scores_of(ruled, ids, ECG12_CLASSES), scores)
    for i, rid in enumerate(ids):
        expected = [c for c, s, k in zip(ECG12_CLASSES, scores[i], cut, strict=True) if s >= k]
        assert ruled[rid]["predicted"] == ";".join(expected)
    by_id = {r["record_id"]: r for r in _json(tmp_path / "ruled")["rows"]}
    assert by_id["00001_hr"]["predicted"] == [c for c in ruled["00001_hr"]["predicted"].split(";") if c]
    assert {c for r in by_id.values() for c in r["predicted"]} == set(ECG12_CLASSES)
    assert not all(set(r["predicted"]) == set(ECG12_CLASSES) for r in by_id.values())


@pytest.mark.shared_data
def test_ucr_beats_are_flagged_anomalous_at_the_rule_threshold(
    shared_data: Path, trained: dict[str, Trained], tmp_path: Path
) -> None:
    t = trained["autoencoder"]
    txt, arff = _ucr_head(shared_data / UCR, tmp_path / "ucr", N_BEATS)
    assert run_predict(t.checkpoint, [txt], tmp_path / "plain", None) == 0
    plain = _csv_rows(tmp_path / "plain")
    ids = [f"ECG5000_TRAIN.txt/{i:05d}" for i in range(N_BEATS)]
    assert list(plain) == ids
    scores = _scores_of(plain, ids, ["anomaly_score"])[:, 0]
    beats = np.loadtxt(txt, dtype=np.float64)[:, 1:]  # column 0 is the class label, ignored
    refs = [_record(str(i), b[None, :].astype(np.float32), None, ["ECG"]) for i, b in enumerate(beats)]
    np.testing.assert_allclose(scores, _reference_scores(t, refs, tmp_path)[:, 0], rtol=1e-5, atol=1e-9)

    threshold = float(np.median(scores))
    rule = DecisionRule(
        "autoencoder", "reconstruction", ("anomaly",), _thresholds(("anomaly",), [threshold], "train")
    )
    rule_path = write_rule(rule, tmp_path / "t.json")
    assert run_predict(t.checkpoint, [txt, arff], tmp_path / "ruled", rule_path, batch_size=96) == 0
    ruled = _csv_rows(tmp_path / "ruled")
    arff_ids = [f"ECG5000_TRAIN.arff/{i:05d}" for i in range(N_BEATS)]
    assert list(ruled) == ids + arff_ids
    # The .arff file holds the same values as the .txt: the same scores, whatever the reader.
    np.testing.assert_allclose(_scores_of(ruled, arff_ids, ["anomaly_score"])[:, 0], scores, rtol=1e-6)
    flags = [ruled[i]["is_anomaly"] == "true" for i in ids]
    assert flags == list(scores >= threshold)
    assert 0.4 * N_BEATS < sum(flags) < 0.6 * N_BEATS
    assert {ruled[i]["threshold"] for i in ids} == {repr(threshold)}
    row = _json(tmp_path / "ruled")["rows"][0]
    assert row["is_anomaly"] is bool(scores[0] >= threshold) and row["threshold"] == threshold


@pytest.mark.shared_data
def test_mixed_folder_scores_the_readable_records_and_rejects_the_rest(
    shared_data: Path, trained: dict[str, Trained], tmp_path: Path
) -> None:
    t = trained["crnn"]
    folder = tmp_path / "mixed"
    _copy_record(shared_data / CINC / "A00001", folder, (".hea", ".mat"))
    _copy_record(shared_data / CINC / "A00002", folder, (".hea", ".mat"))
    _copy_record(shared_data / PTBXL / "records500/00000/00001_hr", folder / "ptbxl", (".hea", ".dat"))
    _copy_record(shared_data / "mitbih" / "100", folder / "mitbih", (".hea", ".dat", ".atr"))
    corrupt = folder / "A00002.mat"
    corrupt.write_bytes(corrupt.read_bytes()[:5000])  # truncated download
    (folder / "stray.dat").write_bytes(b"\x00\x01" * 50)
    (folder / "README.md").write_text("new records from the clinic\n")

    assert run_predict(t.checkpoint, [folder], tmp_path / "out", None) == 0

    rows = _csv_rows(tmp_path / "out")
    assert {i: r["status"] for i, r in rows.items()} == {
        "A00001": "scored",
        "A00002": "rejected",
        "mitbih/100": "rejected",
        "ptbxl/00001_hr": "scored",
        "stray.dat": "rejected",
    }
    assert "A00002.mat" in rows["A00002"]["reason"] and "bytes" in rows["A00002"]["reason"]
    assert "missing lead(s) I" in rows["mitbih/100"]["reason"]  # MLII/V5 only: the profile needs lead I
    assert "no header" in rows["stray.dat"]["reason"]
    assert rows["ptbxl/00001_hr"]["valid_len"] == "3000"  # 10 s at 300 Hz, zero-padded to 30 s
    refs = [_wfdb_record(folder / "A00001"), _wfdb_record(folder / "ptbxl" / "00001_hr")]
    got = _scores_of(rows, ["A00001", "ptbxl/00001_hr"], AF_CLASSES)
    np.testing.assert_allclose(got, _reference_scores(t, refs, tmp_path), rtol=1e-5, atol=1e-7)
    report = _json(tmp_path / "out")
    assert report["counts"] == {"scored": 2, "rejected": 3, "skipped_files": 2}
    skipped = {Path(s["path"]).name: s["reason"] for s in report["skipped"]}
    assert skipped.keys() == {"README.md", "100.atr"}
    assert "belongs to record mitbih/100" in skipped["100.atr"]
    assert len(report["checkpoint"]["sha256"]) == 64
    assert report["model"]["name"] == "crnn" and report["model"]["output_names"] == list(AF_CLASSES)


def test_code15_part_is_read_with_its_exams_csv_and_rejected_without_it(
    trained: dict[str, Trained], tmp_path: Path
) -> None:
    t = trained["resnet"]
    rng = np.random.default_rng(3)
    t_axis = np.arange(4096) / 400.0
    tracings = np.zeros((3, 4096, 12), dtype=np.float32)  # exam, sample, lead; row 3 is padding
    tracings[:2] = np.sin(2 * np.pi * 1.2 * t_axis)[None, :, None] + 0.1 * rng.standard_normal((2, 4096, 12))
    for folder, with_csv in (("code", True), ("bare", False)):
        (tmp_path / folder).mkdir()
        with h5py.File(tmp_path / folder / "exams_part0.hdf5", "w") as fh:
            fh["tracings"] = tracings
            fh["exam_id"] = np.array([101, 102, 0], dtype=np.int64)
        if with_csv:
            header = (
                "exam_id,age,is_male,nn_predicted_age,1dAVb,RBBB,LBBB,SB,ST,AF,"
                "patient_id,death,timey,normal_ecg,trace_file"
            )
            row = "{e},60,True,61,False,False,False,False,False,False,{p},,,True,exams_part0.hdf5"
            lines = [row.format(e=e, p=e + 7) for e in (101, 102)]
            (tmp_path / folder / "exams.csv").write_text("\n".join([header, *lines]) + "\n")

    assert run_predict(t.checkpoint, [tmp_path / "code", tmp_path / "bare"], tmp_path / "out", None) == 0

    rows = _csv_rows(tmp_path / "out")
    assert list(rows) == ["exams_part0.hdf5/101", "exams_part0.hdf5/102", "input2:exams_part0.hdf5"]
    bare = rows["input2:exams_part0.hdf5"]
    assert bare["status"] == "rejected" and "exams.csv" in bare["reason"]
    # CODE-15% tracings are stored at 2x mV (the CODE reader's documented factor 0.5).
    refs = [_record(str(e), 0.5 * tracings[i].T, 400.0, ECG12_LEADS) for i, e in enumerate((101, 102))]
    got = _scores_of(rows, ["exams_part0.hdf5/101", "exams_part0.hdf5/102"], ECG12_CLASSES)
    np.testing.assert_allclose(got, _reference_scores(t, refs, tmp_path), rtol=1e-5, atol=1e-7)
    assert {rows[i]["valid_len"] for i in ("exams_part0.hdf5/101", "exams_part0.hdf5/102")} == {"5000"}


@pytest.mark.shared_data
def test_a_record_reached_twice_is_scored_once_and_colliding_ids_name_their_input(
    shared_data: Path, tmp_path: Path
) -> None:
    for folder in ("a", "b"):
        _copy_record(shared_data / CINC / "A00001", tmp_path / folder, (".hea", ".mat"))
    scan = discover_inputs([tmp_path / "a", tmp_path / "a" / "A00001.mat", tmp_path / "b"])
    assert [getattr(e, "uid", None) for e in scan.entries] == ["A00001", "input3:A00001"]
    assert [(Path(s.path).name, s.reason) for s in scan.skipped] == [
        ("A00001.mat", "already listed as A00001")
    ]


def test_checkpoint_without_a_card_is_refused_naming_the_file(
    trained: dict[str, Trained], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = load_checkpoint(trained["autoencoder"].checkpoint)
    bare = tmp_path / "old.pt"
    save_checkpoint(
        {"model": ckpt["model"], "lineage": {"manifest_hash": "0" * 64}, "config": {}, "history": []}, bare
    )
    (tmp_path / "in").mkdir()
    assert run_predict(bare, [tmp_path / "in"], tmp_path / "out", None) == 2
    err = capsys.readouterr().err
    assert str(bare) in err and "no model card" in err
    assert not (tmp_path / "out").exists()


def test_bad_arguments_exit_2_and_nothing_scored_exits_1(
    trained: dict[str, Trained], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t = trained["autoencoder"]
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "orphan.dat").write_bytes(b"\x00" * 64)
    missing = tmp_path / "nope.pt"
    assert run_predict(missing, [folder], tmp_path / "out", None) == 2
    assert str(missing) in capsys.readouterr().err
    assert run_predict(t.checkpoint, [tmp_path / "nothing-here"], tmp_path / "out", None) == 2
    assert "nothing-here: no such file or folder" in capsys.readouterr().err
    wrong = write_rule(DecisionRule("crnn", "multiclass", AF_CLASSES, None), tmp_path / "wrong.json")
    assert run_predict(t.checkpoint, [folder], tmp_path / "out", wrong) == 2
    assert "wrong.json" in capsys.readouterr().err

    assert run_predict(t.checkpoint, [folder], tmp_path / "out", None) == 1
    assert _json(tmp_path / "out")["counts"] == {"scored": 0, "rejected": 1, "skipped_files": 0}
    assert _csv_rows(tmp_path / "out")["orphan.dat"]["status"] == "rejected"
