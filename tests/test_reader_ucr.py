"""UcrReader: the real ECG5000 TRAIN files in three formats, deduplication, and broken rows."""

from __future__ import annotations

import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from pipeline.core.records import Provenance, RawLabel, ReadError, Record, Rejection
from pipeline.sources.ucr import UcrReader, normalise_label

ECG5000_COUNTS = {"1": 292, "2": 177, "3": 10, "4": 19, "5": 2}
FORMAT_FILES = {"txt": "ECG5000_TRAIN.txt", "ts": "ECG5000_TRAIN.ts", "arff": "ECG5000_TRAIN.arff"}


def _read_all(reader: UcrReader) -> list[Record | Rejection]:
    discovery = reader.discover()
    out: list[Record | Rejection] = []
    for unit in discovery.units:
        out.extend(reader.read(unit, Provenance(tuple((f, "") for f in unit.files), reader.reader_id)))
    return out


def _records(items: list[Record | Rejection]) -> list[Record]:
    return [item for item in items if isinstance(item, Record)]


def _rejections(items: list[Record | Rejection]) -> list[Rejection]:
    return [item for item in items if isinstance(item, Rejection)]


def _stack(records: list[Record]) -> npt.NDArray[np.float32]:
    return np.stack([r.signal for r in records])


@pytest.fixture(scope="module")
def ucr_root(shared_data: Path) -> Path:
    return shared_data / "ucr_ecg5000"


@pytest.mark.shared_data
@pytest.mark.parametrize("fmt", ["txt", "ts", "arff"])
def test_each_format_gives_500_beats_with_the_documented_class_counts(ucr_root: Path, fmt: str) -> None:
    reader = UcrReader("ecg5000", ucr_root, prefer=(fmt,))
    items = _read_all(reader)
    records = _records(items)
    assert not _rejections(items)
    assert len(records) == 500
    assert Counter(r.raw_labels[0].code for r in records) == ECG5000_COUNTS
    first = records[0]
    assert first.record_id == "ecg5000:ECG5000_TRAIN/00000"
    assert records[-1].record_id == "ecg5000:ECG5000_TRAIN/00499"
    assert first.signal.shape == (1, 140) and first.signal.dtype == np.float32
    assert first.leads == ("ECG",)
    assert first.fs_hz is None and first.patient_id is None
    assert first.meta == {"units": "normalised", "dataset": "ECG5000", "split": "TRAIN", "row": "0"}
    assert first.raw_labels == (RawLabel("1"),)
    assert first.signal[0, 0] == np.float32(-0.11252183)


@pytest.mark.shared_data
def test_the_three_formats_hold_identical_arrays_and_labels(ucr_root: Path) -> None:
    results = {fmt: _records(_read_all(UcrReader("u", ucr_root, prefer=(fmt,)))) for fmt in FORMAT_FILES}
    txt = results["txt"]
    for fmt in ("ts", "arff"):
        np.testing.assert_array_equal(_stack(results[fmt]), _stack(txt))
        assert [r.raw_labels for r in results[fmt]] == [r.raw_labels for r in txt]
        assert [r.record_id for r in results[fmt]] == [r.record_id for r in txt]


@pytest.mark.shared_data
def test_discovery_keeps_one_file_per_dataset_split_and_rejects_the_rest_as_duplicates(
    ucr_root: Path,
) -> None:
    discovery = UcrReader("u", ucr_root, prefer=("ts", "txt", "arff")).discover()
    assert [(u.key, u.files) for u in discovery.units] == [("ECG5000_TRAIN", ("ECG5000_TRAIN.ts",))]
    rejected = {r.item: r for r in discovery.rejected}
    assert set(rejected) == {"ECG5000_TRAIN.txt", "ECG5000_TRAIN.arff"}
    for rejection in rejected.values():
        assert rejection.category == "duplicate"
        assert "ECG5000_TRAIN.ts" in rejection.reason


@pytest.mark.shared_data
def test_default_preference_reads_the_txt_file(ucr_root: Path) -> None:
    discovery = UcrReader("u", ucr_root).discover()
    assert [u.files for u in discovery.units] == [("ECG5000_TRAIN.txt",)]
    accounted = {f for u in discovery.units for f in u.files} | {r.item for r in discovery.rejected}
    assert accounted == set(FORMAT_FILES.values())


@pytest.mark.shared_data
def test_reading_500_rows_takes_milliseconds(ucr_root: Path) -> None:
    reader = UcrReader("u", ucr_root, prefer=("txt",))
    unit = reader.discover().units[0]
    provenance = Provenance((), reader.reader_id)
    start = time.perf_counter()
    n = sum(1 for _ in reader.read(unit, provenance))
    elapsed = time.perf_counter() - start
    assert n == 500
    assert elapsed < 0.5, f"reading 500 x 140 took {elapsed:.3f} s"


def test_fs_hz_option_is_attached_to_every_record(tmp_path: Path) -> None:
    (tmp_path / "Beats_TEST.txt").write_text("1 0.5 0.25\n2 1 2\n")
    records = _records(_read_all(UcrReader("u", tmp_path, fs_hz=250.0)))
    assert [r.fs_hz for r in records] == [250.0, 250.0]
    assert [r.meta["split"] for r in records] == ["TEST", "TEST"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", "1"), ("1.0", "1"), ("1.0000000e+00", "1"), ("'2'", "2"), (" 0.50 ", "0.5"), ("normal", "normal")],
)
def test_labels_are_normalised_to_one_form(text: str, expected: str) -> None:
    assert normalise_label(text) == expected


def _copy(ucr_root: Path, tmp_path: Path, fmt: str) -> Path:
    target = tmp_path / FORMAT_FILES[fmt]
    shutil.copyfile(ucr_root / FORMAT_FILES[fmt], target)
    return target


def _replace_line(path: Path, line_number: int, edit: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines[line_number - 1] = edit
    path.write_text("".join(lines))


@pytest.mark.shared_data
def test_short_row_and_non_numeric_value_are_rejected_alone(ucr_root: Path, tmp_path: Path) -> None:
    path = _copy(ucr_root, tmp_path, "txt")
    lines = path.read_text().splitlines(keepends=True)
    lines[4] = " ".join(lines[4].split()[:-3]) + "\n"  # row 4 (line 5): three values short
    fields = lines[9].split()
    fields[7] = "abc"
    lines[9] = " ".join(fields) + "\n"  # row 9 (line 10): a non-numeric value
    path.write_text("".join(lines))
    items = _read_all(UcrReader("u", tmp_path))
    rejected = {r.item: r.reason for r in _rejections(items)}
    assert set(rejected) == {"u:ECG5000_TRAIN/00004", "u:ECG5000_TRAIN/00009"}
    assert "ECG5000_TRAIN.txt: line 5" in rejected["u:ECG5000_TRAIN/00004"]
    assert "137 values; expected 140" in rejected["u:ECG5000_TRAIN/00004"]
    assert "line 10" in rejected["u:ECG5000_TRAIN/00009"] and "'abc'" in rejected["u:ECG5000_TRAIN/00009"]
    records = _records(items)
    assert len(records) == 498
    assert records[4].record_id == "u:ECG5000_TRAIN/00005"


@pytest.mark.shared_data
def test_arff_rows_with_unknown_class_or_wrong_length_are_rejected(ucr_root: Path, tmp_path: Path) -> None:
    path = _copy(ucr_root, tmp_path, "arff")
    lines = path.read_text().splitlines(keepends=True)
    first_data = next(i for i, line in enumerate(lines) if line.lower().startswith("@data")) + 1
    fields = lines[first_data].rstrip("\n").split(",")
    _replace_line(path, first_data + 1, ",".join([*fields[:-1], "7"]) + "\n")
    _replace_line(path, first_data + 2, ",".join(fields[5:]) + "\n")
    items = _read_all(UcrReader("u", tmp_path, prefer=("arff",)))
    rejected = {r.item: r.reason for r in _rejections(items)}
    assert "not in the declared classes {1,2,3,4,5}" in rejected["u:ECG5000_TRAIN/00000"]
    assert f"line {first_data + 1}" in rejected["u:ECG5000_TRAIN/00000"]
    assert "135 values; expected 140" in rejected["u:ECG5000_TRAIN/00001"]
    assert len(_records(items)) == 498


@pytest.mark.shared_data
def test_ts_missing_marker_reads_as_nan(ucr_root: Path, tmp_path: Path) -> None:
    path = _copy(ucr_root, tmp_path, "ts")
    lines = path.read_text().splitlines(keepends=True)
    data = next(i for i, line in enumerate(lines) if line.startswith("@data")) + 1
    values, label = lines[data].rstrip("\n").split(":")
    parts = values.split(",")
    parts[3] = "?"
    lines[data] = ",".join(parts) + ":" + label + "\n"
    path.write_text("".join(lines))
    records = _records(_read_all(UcrReader("u", tmp_path, prefer=("ts",))))
    assert len(records) == 500
    assert np.isnan(records[0].signal[0, 3])
    assert np.isfinite(records[0].signal[0, :3]).all()


def test_ts_unequal_length_series_are_read_when_the_header_allows_them(tmp_path: Path) -> None:
    (tmp_path / "Var_TRAIN.ts").write_text(
        "#comment\n@problemName Var\n@univariate true\n@equalLength false\n@classLabel true a b\n@data\n"
        "1,2,3:a\n4,5:b\n6,?,8,9:a\n"
    )
    items = _read_all(UcrReader("u", tmp_path))
    records = _records(items)
    assert [r.signal.shape for r in records] == [(1, 3), (1, 2), (1, 4)]
    assert [r.raw_labels[0].code for r in records] == ["a", "b", "a"]


def test_ts_equal_length_rows_of_another_length_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "Eq_TRAIN.ts").write_text("@equalLength true\n@seriesLength 3\n@data\n1,2,3:1\n4,5:1\n")
    items = _read_all(UcrReader("u", tmp_path))
    assert len(_records(items)) == 1
    (rejection,) = _rejections(items)
    assert rejection.item == "u:Eq_TRAIN/00001"
    assert "Eq_TRAIN.ts: line 5: 2 values; expected 3" in rejection.reason


def test_tsv_from_the_2018_archive_is_read_with_nan_padding(tmp_path: Path) -> None:
    (tmp_path / "Gun_TEST.tsv").write_text("1\t0.5\t-0.5\tNaN\n2.0\t1e-1\t2\t3\n")
    records = _records(_read_all(UcrReader("u", tmp_path)))
    assert [r.raw_labels[0].code for r in records] == ["1", "2"]
    assert np.isnan(records[0].signal[0, 2])
    np.testing.assert_allclose(records[1].signal[0], [0.1, 2, 3])


@pytest.mark.parametrize("content", [b"", b"   \n\n", b"\x00\x01\x02binary\x00", b"\xff\xfe\xfa junk"])
def test_empty_or_binary_file_is_a_read_error(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "Bad_TRAIN.txt").write_bytes(content)
    reader = UcrReader("u", tmp_path)
    (unit,) = reader.discover().units
    with pytest.raises(ReadError, match="Bad_TRAIN.txt"):
        list(reader.read(unit, Provenance((), reader.reader_id)))


@pytest.mark.shared_data
def test_empty_copy_of_the_real_file_is_a_read_error(ucr_root: Path, tmp_path: Path) -> None:
    _copy(ucr_root, tmp_path, "txt").write_bytes(b"")
    reader = UcrReader("u", tmp_path)
    (unit,) = reader.discover().units
    with pytest.raises(ReadError, match="empty file"):
        list(reader.read(unit, Provenance((), reader.reader_id)))


def test_files_that_are_not_ucr_or_not_preferred_are_accounted_for(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("notes")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "Only_TEST.arff").write_text("@attribute a numeric\n@attribute c {1}\n@data\n1,1\n")
    (tmp_path / "Beats_TRAIN.txt").write_text("1 2 3\n")
    discovery = UcrReader("u", tmp_path, prefer=("txt",)).discover()
    assert [u.files for u in discovery.units] == [("Beats_TRAIN.txt",)]
    rejected = {r.item: r for r in discovery.rejected}
    assert set(rejected) == {"README.md", "sub/Only_TEST.arff"}
    assert all(r.category == "excluded" for r in rejected.values())
    assert "not a UCR file" in rejected["README.md"].reason
    assert "not in prefer" in rejected["sub/Only_TEST.arff"].reason


def test_unknown_preferred_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="prefer"):
        UcrReader("u", tmp_path, prefer=("csv",))
