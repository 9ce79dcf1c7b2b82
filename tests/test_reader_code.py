"""CodeReader on fixtures built in the documented CODE layouts (no public sample exists).

Layout A (CODE-15%): ``exams.csv`` + ``exams_part{k}.hdf5`` with ``tracings`` (N, 4096, 12)
float32 and ``exam_id`` (N,), the last exam_id 0 padding, short exams zero-padded on both sides.
Layout B (codesubset): WFDB ``TNMG<id>_N1`` records (format 16) + a CSV keyed by ``id_exam``.
"""

from __future__ import annotations

import csv
import pickle
from collections.abc import Iterator, Sequence
from pathlib import Path

import h5py
import numpy as np
import numpy.typing as npt
import pytest
import wfdb

import pipeline.sources.code as code_module
from pipeline.core.leads import STANDARD_12
from pipeline.core.records import InputUnit, Provenance, RawLabel, ReadError, Record, Rejection
from pipeline.sources.code import CodeReader, exam_id_of_record, iter_blocks

EXAM_COLUMNS = [
    "exam_id",
    "age",
    "is_male",
    "nn_predicted_age",
    "1dAVb",
    "RBBB",
    "LBBB",
    "SB",
    "ST",
    "AF",
    "patient_id",
    "death",
    "timey",
    "normal_ecg",
    "trace_file",
]
LEAD_NAMES = ["DI", "DII", "DIII", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]
Array = npt.NDArray[np.float32]


# ---------------------------------------------------------------------- fixture builders


def _tracing(seed: int, n_active: int, n_samples: int = 4096) -> Array:
    """One exam ``(n_samples, 12)``: ``n_active`` non-zero samples centred in zero padding."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n_samples, 12), dtype=np.float32)
    pad = (n_samples - n_active) // 2
    out[pad : pad + n_active] = rng.uniform(0.1, 3.0, size=(n_active, 12)).astype(np.float32)
    return out


def _write_part(path: Path, exam_ids: Sequence[int], tracings: Array) -> None:
    with h5py.File(path, "w") as handle:
        handle.create_dataset("tracings", data=tracings.astype(np.float32))
        handle.create_dataset("exam_id", data=np.asarray(exam_ids, dtype=np.int64))


def _exam_row(
    exam_id: int, patient: int, labels: Sequence[str] = (), part: str = "exams_part0.hdf5"
) -> dict[str, str]:
    row = dict.fromkeys(("1dAVb", "RBBB", "LBBB", "SB", "ST", "AF"), "False")
    row.update(dict.fromkeys(labels, "True"))
    row.update(
        exam_id=str(exam_id),
        age=str(40 + exam_id % 50),
        is_male="True" if exam_id % 2 else "False",
        nn_predicted_age="51.3",
        patient_id=str(patient),
        death="",
        timey="",
        normal_ecg="False" if labels else "True",
        trace_file=part,
    )
    return row


def _write_csv(path: Path, rows: list[dict[str, str]], columns: Sequence[str] = EXAM_COLUMNS) -> None:
    with Path(path).open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with Path(path).open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def code15(tmp_path: Path) -> Path:
    """Two parts: part0 exams 101 (7 s), 102, 103 (10 s) + padding 0; part1 exams 201, 202 + 0."""
    root = tmp_path / "code15"
    root.mkdir()
    part0 = np.stack([_tracing(1, 2800), _tracing(2, 4000), _tracing(3, 4000), np.zeros((4096, 12))])
    part1 = np.stack([_tracing(4, 4000), _tracing(5, 2800), np.zeros((4096, 12))])
    _write_part(root / "exams_part0.hdf5", [101, 102, 103, 0], part0.astype(np.float32))
    _write_part(root / "exams_part1.hdf5", [201, 202, 0], part1.astype(np.float32))
    rows = [
        _exam_row(101, 9001, ["1dAVb"]),
        _exam_row(102, 9001, ["RBBB", "AF"]),
        _exam_row(103, 9002),
        _exam_row(201, 9003, part="exams_part1.hdf5"),
        _exam_row(202, 9004, ["ST"], part="exams_part1.hdf5"),
        _exam_row(999, 9005, ["SB"], part="exams_part9.hdf5"),  # exam in a part not downloaded
    ]
    _write_csv(root / "exams.csv", rows)
    return root


def _read(reader: CodeReader, unit: InputUnit) -> list[Record | Rejection]:
    return list(reader.read(unit, Provenance(tuple((f, "") for f in unit.files), reader.reader_id)))


def _read_all(reader: CodeReader) -> list[Record | Rejection]:
    return [item for unit in reader.discover().units for item in _read(reader, unit)]


def _records(items: list[Record | Rejection]) -> dict[str, Record]:
    return {item.record_id: item for item in items if isinstance(item, Record)}


def _rejections(items: list[Record | Rejection]) -> dict[str, Rejection]:
    return {item.item: item for item in items if isinstance(item, Rejection)}


def _unit(reader: CodeReader, key: str) -> InputUnit:
    return next(u for u in reader.discover().units if u.key == key)


def _stored(root: Path, part: str, row: int) -> Array:
    with h5py.File(root / part, "r") as handle:
        return np.asarray(handle["tracings"][row], dtype=np.float32)


# ---------------------------------------------------------------------- Layout A: CODE-15%


def test_code15_discovery_has_one_unit_per_part_and_the_csv_as_metadata(code15: Path) -> None:
    discovery = CodeReader("code", code15).discover()
    assert [(u.key, u.files) for u in discovery.units] == [
        ("exams_part0.hdf5", ("exams_part0.hdf5",)),
        ("exams_part1.hdf5", ("exams_part1.hdf5",)),
    ]
    assert discovery.metadata_files == ("exams.csv",)
    assert discovery.rejected == ()
    hashes = {u.extra["csv_rows_sha256"] for u in discovery.units}
    assert len(hashes) == 2 and all(len(h) == 64 for h in hashes)


def test_code15_csv_hash_changes_only_for_the_part_whose_exam_rows_changed(code15: Path) -> None:
    before = {u.key: u.extra["csv_rows_sha256"] for u in CodeReader("code", code15).discover().units}
    rows = _csv_rows(code15 / "exams.csv")
    rows[3]["patient_id"] = "9013"  # exam 201, in part 1
    _write_csv(code15 / "exams.csv", rows)
    after = {u.key: u.extra["csv_rows_sha256"] for u in CodeReader("code", code15).discover().units}
    assert after["exams_part0.hdf5"] == before["exams_part0.hdf5"]
    assert after["exams_part1.hdf5"] != before["exams_part1.hdf5"]


def test_code15_exams_become_records_with_labels_patients_and_meta(code15: Path) -> None:
    items = _read_all(CodeReader("code", code15))
    records = _records(items)
    assert sorted(records) == ["code:101", "code:102", "code:103", "code:201", "code:202"]
    assert not _rejections(items)  # exam_id 0 padding is skipped silently
    assert records["code:101"].raw_labels == (RawLabel("1dAVb"),)
    assert records["code:102"].raw_labels == (RawLabel("RBBB"), RawLabel("AF"))
    assert records["code:103"].raw_labels == ()
    assert records["code:202"].raw_labels == (RawLabel("ST"),)
    assert records["code:101"].patient_id == records["code:102"].patient_id == "9001"
    record = records["code:101"]
    assert record.signal.shape == (12, 4096) and record.signal.dtype == np.float32
    assert record.fs_hz == 400.0
    assert record.leads == STANDARD_12
    assert record.source == "code"
    assert record.meta["age"] == "41" and record.meta["sex"] == "M"
    assert records["code:102"].meta["sex"] == "F"
    assert record.meta["units"] == "mV" and record.meta["exam_id"] == "101"


def test_code15_signal_is_the_stored_tracing_transposed_and_scaled_to_mv(code15: Path) -> None:
    records = _records(_read_all(CodeReader("code", code15)))
    stored = _stored(code15, "exams_part0.hdf5", 1)
    np.testing.assert_array_equal(records["code:102"].signal, (stored * np.float32(0.5)).T)
    unscaled = _records(_read_all(CodeReader("code", code15, hdf5_scale_to_mv=1.0)))
    np.testing.assert_array_equal(unscaled["code:102"].signal, stored.T)
    assert unscaled["code:102"].meta["hdf5_scale_to_mv"] == "1.0"


def test_code15_padding_is_kept_and_the_original_length_recorded(code15: Path) -> None:
    records = _records(_read_all(CodeReader("code", code15)))
    seven, ten = records["code:101"], records["code:102"]
    assert seven.meta["original_length"] == "2800" and seven.meta["pad_start"] == "648"
    assert ten.meta["original_length"] == "4000" and ten.meta["pad_start"] == "48"
    assert not seven.signal[:, :648].any() and not seven.signal[:, 648 + 2800 :].any()
    assert records["code:202"].meta["hdf5_row"] == "1"


def test_code15_exam_without_csv_row_is_rejected_and_the_rest_still_read(code15: Path) -> None:
    _write_part(code15 / "exams_part1.hdf5", [201, 777, 0], np.stack([_tracing(i, 4000) for i in range(3)]))
    reader = CodeReader("code", code15)
    items = _read(reader, _unit(reader, "exams_part1.hdf5"))
    assert sorted(_records(items)) == ["code:201"]
    rejection = _rejections(items)["code:777"]
    assert "exam_id 777 has no row in exams.csv" in rejection.reason
    assert rejection.files == ("exams_part1.hdf5", "exams.csv")


def test_code15_trace_file_escaping_the_root_rejects_the_exam(code15: Path) -> None:
    rows = _csv_rows(code15 / "exams.csv")
    rows[2]["trace_file"] = "../../etc/passwd"
    rows[1]["trace_file"] = "exams_part1.hdf5"
    _write_csv(code15 / "exams.csv", rows)
    reader = CodeReader("code", code15)
    items = _read(reader, _unit(reader, "exams_part0.hdf5"))
    rejected = _rejections(items)
    assert "escapes the source root" in rejected["code:103"].reason
    assert (
        "trace_file names exams_part1.hdf5 but the exam is in exams_part0.hdf5" in rejected["code:102"].reason
    )
    assert sorted(_records(items)) == ["code:101"]


def test_code15_label_value_that_is_not_0_or_1_rejects_the_exam(code15: Path) -> None:
    rows = _csv_rows(code15 / "exams.csv")
    rows[0]["AF"] = "maybe"
    _write_csv(code15 / "exams.csv", rows)
    items = _read_all(CodeReader("code", code15))
    assert "AF = 'maybe'" in _rejections(items)["code:101"].reason
    assert len(_records(items)) == 4


def test_code15_numeric_label_columns_read_like_booleans(code15: Path) -> None:
    rows = _csv_rows(code15 / "exams.csv")
    for row in rows:
        for column in ("1dAVb", "RBBB", "LBBB", "SB", "ST", "AF"):
            row[column] = "1" if row[column] == "True" else "0"
    _write_csv(code15 / "exams.csv", rows)
    records = _records(_read_all(CodeReader("code", code15)))
    assert records["code:102"].raw_labels == (RawLabel("RBBB"), RawLabel("AF"))


def test_code15_repeated_exam_id_in_a_part_is_a_duplicate(code15: Path) -> None:
    _write_part(code15 / "exams_part1.hdf5", [201, 201, 0], np.stack([_tracing(i, 4000) for i in range(3)]))
    reader = CodeReader("code", code15)
    items = list(reader.read(_unit(reader, "exams_part1.hdf5"), Provenance((), reader.reader_id)))
    assert [type(i).__name__ for i in items] == ["Record", "Rejection"]
    rejection = items[1]
    assert isinstance(rejection, Rejection) and rejection.category == "duplicate"


@pytest.mark.parametrize(
    ("tracings", "exam_ids", "message"),
    [
        (
            np.zeros((3, 4096, 8), np.float32),
            [1, 2, 0],
            r"'tracings' has shape \(3, 4096, 8\); expected \(N, 4096, 12\)",
        ),
        (
            np.zeros((3, 4096), np.float32),
            [1, 2, 0],
            r"'tracings' has shape \(3, 4096\); expected \(N, 4096, 12\)",
        ),
        (np.zeros((3, 4096, 12), np.int16), [1, 2, 0], r"'tracings' has dtype int16"),
        (np.zeros((3, 4096, 12), np.float32), [1, 2], r"'exam_id' has shape \(2,\).*expected \(3,\)"),
    ],
)
def test_code15_wrong_shape_hdf5_is_a_read_error_naming_the_dataset(
    code15: Path, tracings: npt.NDArray[np.generic], exam_ids: list[int], message: str
) -> None:
    path = code15 / "exams_part1.hdf5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("tracings", data=tracings)
        handle.create_dataset("exam_id", data=np.asarray(exam_ids, dtype=np.int64))
    reader = CodeReader("code", code15)
    with pytest.raises(ReadError, match=message):
        _read(reader, _unit(reader, "exams_part1.hdf5"))


def test_code15_file_that_is_not_hdf5_is_a_read_error(code15: Path) -> None:
    (code15 / "exams_part1.hdf5").write_bytes(b"not an hdf5 file")
    reader = CodeReader("code", code15)
    with pytest.raises(ReadError, match="exams_part1.hdf5: cannot open as HDF5"):
        _read(reader, _unit(reader, "exams_part1.hdf5"))


def test_code15_csv_changed_after_discovery_is_a_read_error(code15: Path) -> None:
    reader = CodeReader("code", code15)
    unit = _unit(reader, "exams_part0.hdf5")
    rows = _csv_rows(code15 / "exams.csv")
    rows[0]["RBBB"] = "True"
    _write_csv(code15 / "exams.csv", rows)
    with pytest.raises(ReadError, match="changed since discovery"):
        _read(reader, unit)


def test_code15_parts_without_a_usable_csv_are_rejected_at_discovery(code15: Path) -> None:
    (code15 / "exams.csv").unlink()
    discovery = CodeReader("code", code15).discover()
    assert discovery.units == ()
    assert {r.item for r in discovery.rejected} == {"exams_part0.hdf5", "exams_part1.hdf5"}
    assert all("exams.csv: CSV not found" in r.reason for r in discovery.rejected)


def test_code15_csv_without_label_columns_is_reported(code15: Path) -> None:
    _write_csv(code15 / "exams.csv", [{"exam_id": "101", "age": "50"}], columns=["exam_id", "age"])
    discovery = CodeReader("code", code15).discover()
    assert discovery.units == ()
    assert all("missing label columns" in r.reason for r in discovery.rejected)


def test_iter_blocks_covers_the_range_in_bounded_blocks() -> None:
    assert list(iter_blocks(600, 256)) == [(0, 256), (256, 512), (512, 600)]
    assert list(iter_blocks(0, 256)) == []


def test_code15_is_read_in_blocks_with_identical_results(
    code15: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = 600
    tracings = np.stack([_tracing(i, 48, n_samples=64) for i in range(n)])
    ids = list(range(1000, 1000 + n - 1)) + [0]
    _write_part(code15 / "exams_part1.hdf5", ids, tracings)
    rows = [_exam_row(i, i, ["SB"] if i % 7 == 0 else [], part="exams_part1.hdf5") for i in ids[:-1]]
    _write_csv(code15 / "exams.csv", rows)
    block_rows: list[int] = []
    real_span = code_module.active_span

    def spy(block: Array) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        block_rows.append(block.shape[0])
        return real_span(block)

    monkeypatch.setattr(code_module, "active_span", spy)
    reader = CodeReader("code", code15, block_size=256)
    records = _records(_read(reader, _unit(reader, "exams_part1.hdf5")))
    assert block_rows == [256, 256, 88]
    assert len(records) == n - 1
    small = CodeReader("code", code15, block_size=7)
    small_records = _records(_read(small, _unit(small, "exams_part1.hdf5")))
    assert max(block_rows[3:]) == 7
    assert records.keys() == small_records.keys()
    for key, record in records.items():
        np.testing.assert_array_equal(record.signal, small_records[key].signal)
        assert record.raw_labels == small_records[key].raw_labels
    assert records["code:1001"].raw_labels == (RawLabel("SB"),)
    assert records["code:1598"].meta["hdf5_row"] == "598"


def test_reader_pickles_without_its_csv_cache(code15: Path) -> None:
    reader = CodeReader("code", code15)
    unit = _unit(reader, "exams_part0.hdf5")
    # Readers travel to worker processes by pickle; these bytes were made just above.
    clone = pickle.loads(pickle.dumps(reader))  # noqa: S301
    assert clone._tables == {}
    assert sorted(_records(_read(clone, unit))) == ["code:101", "code:102", "code:103"]


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
    _write_csv(root / "train.csv", rows, SUBSET_COLUMNS)
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
    items = _read_all(CodeReader("code", root, csv="train.csv"))
    records = _records(items)
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
    items = _read_all(CodeReader("code", root, csv="train.csv"))
    rejection = _rejections(items)["code:13"]
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
    records = _records([item for unit in discovery.units for item in _read(reader, unit)])
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
