"""``ecgpipe predict``'s inputs and arguments: a mixed folder (readable records scored, the rest
rejected or skipped), CODE-15% parts and their ``exams.csv``, records reached twice, colliding ids,
checkpoints without a card and the exit codes. Models and references: :mod:`tests.predict_models`.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from pipeline.evaluation.decisions import DecisionRule, write_rule
from pipeline.export.predict import discover_inputs, run_predict
from pipeline.training.checkpoint import load_checkpoint, save_checkpoint
from tests.predict_models import (
    AF_CLASSES,
    CINC,
    ECG12_CLASSES,
    ECG12_LEADS,
    PTBXL,
    Trained,
    copy_record,
    csv_rows,
    read_json,
    ref_record,
    reference_scores,
    scores_of,
    train_models,
    wfdb_record,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Trained]:
    return train_models(tmp_path_factory)


@pytest.mark.shared_data
def test_mixed_folder_scores_the_readable_records_and_rejects_the_rest(
    shared_data: Path, trained: dict[str, Trained], tmp_path: Path
) -> None:
    t = trained["crnn"]
    folder = tmp_path / "mixed"
    copy_record(shared_data / CINC / "A00001", folder, (".hea", ".mat"))
    copy_record(shared_data / CINC / "A00002", folder, (".hea", ".mat"))
    copy_record(shared_data / PTBXL / "records500/00000/00001_hr", folder / "ptbxl", (".hea", ".dat"))
    copy_record(shared_data / "mitbih" / "100", folder / "mitbih", (".hea", ".dat", ".atr"))
    corrupt = folder / "A00002.mat"
    corrupt.write_bytes(corrupt.read_bytes()[:5000])  # truncated download
    (folder / "stray.dat").write_bytes(b"\x00\x01" * 50)
    (folder / "README.md").write_text("new records from the clinic\n")

    assert run_predict(t.checkpoint, [folder], tmp_path / "out", None) == 0

    rows = csv_rows(tmp_path / "out")
    assert {i: r["status"] for i, r in rows.items()} == {
        "cinc2017:A00001": "scored",
        "cinc2017:A00002": "rejected",
        "mitbih/100": "rejected",
        "ptbxl/00001_hr": "scored",
        "stray.dat": "rejected",
    }
    assert "A00002.mat" in rows["cinc2017:A00002"]["reason"] and "bytes" in rows["cinc2017:A00002"]["reason"]
    assert "missing lead(s) I" in rows["mitbih/100"]["reason"]  # MLII/V5 only: the profile needs lead I
    assert "no header" in rows["stray.dat"]["reason"]
    assert rows["ptbxl/00001_hr"]["valid_len"] == "3000"  # 10 s at 300 Hz, zero-padded to 30 s
    refs = [wfdb_record(folder / "A00001"), wfdb_record(folder / "ptbxl" / "00001_hr")]
    got = scores_of(rows, ["cinc2017:A00001", "ptbxl/00001_hr"], AF_CLASSES)
    np.testing.assert_allclose(got, reference_scores(t, refs, tmp_path), rtol=1e-5, atol=1e-7)
    report = read_json(tmp_path / "out")
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

    rows = csv_rows(tmp_path / "out")
    assert list(rows) == ["exams_part0.hdf5/101", "exams_part0.hdf5/102", "input2:exams_part0.hdf5"]
    bare = rows["input2:exams_part0.hdf5"]
    assert bare["status"] == "rejected" and "exams.csv" in bare["reason"]
    # CODE-15% tracings are stored at 2x mV (the CODE reader's documented factor 0.5).
    refs = [ref_record(str(e), 0.5 * tracings[i].T, 400.0, ECG12_LEADS) for i, e in enumerate((101, 102))]
    got = scores_of(rows, ["exams_part0.hdf5/101", "exams_part0.hdf5/102"], ECG12_CLASSES)
    np.testing.assert_allclose(got, reference_scores(t, refs, tmp_path), rtol=1e-5, atol=1e-7)
    assert {rows[i]["valid_len"] for i in ("exams_part0.hdf5/101", "exams_part0.hdf5/102")} == {"5000"}


@pytest.mark.shared_data
def test_a_record_reached_twice_is_scored_once_and_colliding_ids_name_their_input(
    shared_data: Path, tmp_path: Path
) -> None:
    for folder in ("a", "b"):
        copy_record(shared_data / CINC / "A00001", tmp_path / folder, (".hea", ".mat"))
    scan = discover_inputs([tmp_path / "a", tmp_path / "a" / "A00001.mat", tmp_path / "b"])
    assert [getattr(e, "uid", None) for e in scan.entries] == ["cinc2017:A00001", "input3:cinc2017:A00001"]
    assert [(Path(s.path).name, s.reason) for s in scan.skipped] == [
        ("A00001.mat", "already listed as cinc2017:A00001")
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
    assert read_json(tmp_path / "out")["counts"] == {"scored": 0, "rejected": 1, "skipped_files": 0}
    assert csv_rows(tmp_path / "out")["orphan.dat"]["status"] == "rejected"
