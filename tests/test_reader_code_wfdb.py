"""CodeReader on WFDB exams (Layout B, codesubset): ``TNMG<id>_N1`` records (format 16) + a CSV keyed
by ``id_exam``, alone and beside CODE-15% parts (Layout A, ``test_reader_code.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import wfdb

from pipeline.core.leads import STANDARD_12
from pipeline.core.records import RawLabel
from pipeline.sources.code import CodeReader, exam_id_of_record
from tests.code_support import (
    LEAD_NAMES,
    make_code15,
    read_all,
    read_unit,
    records_by_id,
    rejections_by_item,
    write_csv,
)


@pytest.fixture
def code15(tmp_path: Path) -> Path:
    return make_code15(tmp_path)


# ---------------------------------------------------------------------- Layout B: WFDB exams


def _write_exam(folder: Path, exam_id: int, seed: int, n_samples: int = 2800) -> npt.NDArray[np.float64]:
    """A 12-lead 400 Hz format-16 WFDB exam ``TNMG<id>_N1``; returns its (T, 12) signal in mV."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    signal = np.round(rng.uniform(-2.0, 2.0, size=(n_samples, 12)), 3)
    wfdb.wrsamp(
        f"TNMG{exam_id}_N1",
        fs=400,
        units=["mV"] * 12,
        sig_name=LEAD_NAMES,
        p_signal=signal,
        fmt=["16"] * 12,
        adc_gain=[1000.0] * 12,
        baseline=[0] * 12,
        write_dir=str(folder),
    )
    return signal


SUBSET_COLUMNS = ["id_exam", "id_patient", "age", "sex", "1dAVb", "RBBB", "LBBB", "SB", "AF", "ST"]


def _subset_row(exam_id: int, patient: int, sex: str, labels: Sequence[str] = ()) -> dict[str, str]:
    row = dict.fromkeys(("1dAVb", "RBBB", "LBBB", "SB", "AF", "ST"), "0")
    row.update(dict.fromkeys(labels, "1"))
    row.update(id_exam=str(exam_id), id_patient=str(patient), age="63", sex=sex)
    return row


@pytest.fixture
def codesubset(tmp_path: Path) -> tuple[Path, dict[int, npt.NDArray[np.float64]]]:
    root = tmp_path / "codesubset"
    signals = {
        11: _write_exam(root / "train", 11, 1),
        12: _write_exam(root / "train", 12, 2, n_samples=4000),
        13: _write_exam(root / "test", 13, 3),
    }
    rows = [_subset_row(11, 501, "M", ["AF"]), _subset_row(12, 502, "F", ["1dAVb", "LBBB"])]
    write_csv(root / "train.csv", rows, SUBSET_COLUMNS)
    (root / "train" / "RECORDS.txt").write_text("TNMG11_N1\nTNMG12_N1\n")
    return root, signals


def test_codesubset_discovery_has_one_unit_per_record_with_its_csv_row(
    codesubset: tuple[Path, dict[int, npt.NDArray[np.float64]]],
) -> None:
    root, _ = codesubset
    discovery = CodeReader("code", root, csv="train.csv").discover()
    units = {u.key: u for u in discovery.units}
    assert sorted(units) == ["test/TNMG13_N1", "train/TNMG11_N1", "train/TNMG12_N1"]
    assert units["train/TNMG11_N1"].files == ("train/TNMG11_N1.hea", "train/TNMG11_N1.dat")
    assert '"AF": "1"' in units["train/TNMG11_N1"].extra["csv_row"]
    assert units["train/TNMG11_N1"].extra["exam_id"] == "11"
    assert discovery.metadata_files == ("train.csv",)
    assert [(r.item, r.category) for r in discovery.rejected] == [("train/RECORDS.txt", "excluded")]


def test_codesubset_records_carry_mv_signal_labels_and_patient(
    codesubset: tuple[Path, dict[int, npt.NDArray[np.float64]]],
) -> None:
    root, signals = codesubset
    items = read_all(CodeReader("code", root, csv="train.csv"))
    records = records_by_id(items)
    assert sorted(records) == ["code:11", "code:12"]
    record = records["code:12"]
    assert record.signal.shape == (12, 4000) and record.signal.dtype == np.float32
    np.testing.assert_allclose(record.signal, signals[12].T, atol=1e-6)
    assert record.fs_hz == 400.0
    assert record.leads == STANDARD_12
    assert record.raw_labels == (RawLabel("1dAVb"), RawLabel("LBBB"))
    assert record.patient_id == "502"
    assert record.meta["sex"] == "F" and record.meta["age"] == "63"
    assert records["code:11"].raw_labels == (RawLabel("AF"),)
    assert records["code:11"].meta["sex"] == "M"


def test_codesubset_exam_without_csv_row_is_rejected(
    codesubset: tuple[Path, dict[int, npt.NDArray[np.float64]]],
) -> None:
    root, _ = codesubset
    items = read_all(CodeReader("code", root, csv="train.csv"))
    rejection = rejections_by_item(items)["code:13"]
    assert "exam 13 has no row in train.csv" in rejection.reason


def test_codesubset_stray_signal_file_and_escaping_header_path_are_rejected(
    codesubset: tuple[Path, dict[int, npt.NDArray[np.float64]]],
) -> None:
    root, _ = codesubset
    (root / "test" / "orphan.dat").write_bytes(b"\x00" * 48)
    header = (root / "test" / "TNMG13_N1.hea").read_text()
    (root / "test" / "TNMG13_N1.hea").write_text(header.replace("TNMG13_N1.dat", "../../outside.dat"))
    discovery = CodeReader("code", root, csv="train.csv").discover()
    rejected = {r.item: r for r in discovery.rejected}
    assert "escapes the source root" in rejected["test/TNMG13_N1.hea"].reason
    assert "named by no header" in rejected["test/orphan.dat"].reason
    assert "test/TNMG13_N1.dat" in rejected  # its header no longer names it
    assert sorted(u.key for u in discovery.units) == ["train/TNMG11_N1", "train/TNMG12_N1"]


def test_both_layouts_under_one_root_are_discovered(
    code15: Path, codesubset: tuple[Path, dict[int, npt.NDArray[np.float64]]]
) -> None:
    root, _ = codesubset
    for part in ("exams_part0.hdf5", "exams_part1.hdf5", "exams.csv"):
        (root / part).write_bytes((code15 / part).read_bytes())
    reader = CodeReader("code", root, wfdb_csv="train.csv")
    discovery = reader.discover()
    layouts = sorted(u.extra["layout"] for u in discovery.units)
    assert layouts == ["hdf5", "hdf5", "wfdb", "wfdb", "wfdb"]
    assert discovery.metadata_files == ("exams.csv", "train.csv")
    records = records_by_id([item for unit in discovery.units for item in read_unit(reader, unit)])
    assert {"code:101", "code:202", "code:11", "code:12"} <= set(records)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("TNMG437332_N1", "437332"), ("TNMG0042_N2", "42"), ("0042", "42"), ("00001_hr", "00001_hr")],
)
def test_exam_id_comes_from_the_tnmg_record_name(name: str, expected: str) -> None:
    assert exam_id_of_record(name) == expected


def _all_files(root: Path) -> Iterator[str]:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            yield path.relative_to(root).as_posix()


def test_discovery_accounts_for_every_file(
    code15: Path, codesubset: tuple[Path, dict[int, npt.NDArray[np.float64]]]
) -> None:
    root, _ = codesubset
    (root / "README.txt").write_text("about")
    for part in ("exams_part0.hdf5", "exams.csv"):
        (root / part).write_bytes((code15 / part).read_bytes())
    discovery = CodeReader("code", root, wfdb_csv="train.csv").discover()
    places = [f for u in discovery.units for f in u.files]
    places += list(discovery.metadata_files) + [r.item for r in discovery.rejected]
    assert sorted(places) == sorted(_all_files(root))
