"""CodeReader on CODE-15% fixtures built in the documented layout (no public sample exists).

Layout A (CODE-15%): ``exams.csv`` + ``exams_part{k}.hdf5`` with ``tracings`` (N, 4096, 12)
float32 and ``exam_id`` (N,), the last exam_id 0 padding, short exams zero-padded on both sides.
Layout B (WFDB exams) is tested in ``test_reader_code_wfdb.py``; builders in ``code_support.py``.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import h5py
import numpy as np
import numpy.typing as npt
import pytest

import pipeline.sources.code as code_module
from pipeline.core.leads import STANDARD_12
from pipeline.core.records import Provenance, RawLabel, ReadError, Rejection
from pipeline.sources.base import SourceLayoutError
from pipeline.sources.code import CodeReader, iter_blocks
from tests.code_support import (
    Array,
    csv_rows,
    exam_row,
    make_code15,
    read_all,
    read_unit,
    records_by_id,
    rejections_by_item,
    stored_tracing,
    tracing,
    unit_named,
    write_csv,
    write_part,
)


@pytest.fixture
def code15(tmp_path: Path) -> Path:
    return make_code15(tmp_path)


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
    rows = csv_rows(code15 / "exams.csv")
    rows[3]["patient_id"] = "9013"  # exam 201, in part 1
    write_csv(code15 / "exams.csv", rows)
    after = {u.key: u.extra["csv_rows_sha256"] for u in CodeReader("code", code15).discover().units}
    assert after["exams_part0.hdf5"] == before["exams_part0.hdf5"]
    assert after["exams_part1.hdf5"] != before["exams_part1.hdf5"]


def test_code15_exams_become_records_with_labels_patients_and_meta(code15: Path) -> None:
    items = read_all(CodeReader("code", code15))
    records = records_by_id(items)
    assert sorted(records) == ["code:101", "code:102", "code:103", "code:201", "code:202"]
    assert not rejections_by_item(items)  # exam_id 0 padding is skipped silently
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
    records = records_by_id(read_all(CodeReader("code", code15)))
    stored = stored_tracing(code15, "exams_part0.hdf5", 1)
    np.testing.assert_array_equal(records["code:102"].signal, (stored * np.float32(0.5)).T)
    unscaled = records_by_id(read_all(CodeReader("code", code15, hdf5_scale_to_mv=1.0)))
    np.testing.assert_array_equal(unscaled["code:102"].signal, stored.T)
    assert unscaled["code:102"].meta["hdf5_scale_to_mv"] == "1.0"


def test_code15_padding_is_kept_and_the_original_length_recorded(code15: Path) -> None:
    records = records_by_id(read_all(CodeReader("code", code15)))
    seven, ten = records["code:101"], records["code:102"]
    assert seven.meta["original_length"] == "2800" and seven.meta["pad_start"] == "648"
    assert ten.meta["original_length"] == "4000" and ten.meta["pad_start"] == "48"
    assert not seven.signal[:, :648].any() and not seven.signal[:, 648 + 2800 :].any()
    assert records["code:202"].meta["hdf5_row"] == "1"


def test_code15_exam_without_csv_row_is_rejected_and_the_rest_still_read(code15: Path) -> None:
    write_part(code15 / "exams_part1.hdf5", [201, 777, 0], np.stack([tracing(i, 4000) for i in range(3)]))
    reader = CodeReader("code", code15)
    items = read_unit(reader, unit_named(reader, "exams_part1.hdf5"))
    assert sorted(records_by_id(items)) == ["code:201"]
    rejection = rejections_by_item(items)["code:777"]
    assert "exam_id 777 has no row in exams.csv" in rejection.reason
    assert rejection.files == ("exams_part1.hdf5", "exams.csv")


def test_code15_trace_file_escaping_the_root_rejects_the_exam(code15: Path) -> None:
    rows = csv_rows(code15 / "exams.csv")
    rows[2]["trace_file"] = "../../etc/passwd"
    rows[1]["trace_file"] = "exams_part1.hdf5"
    write_csv(code15 / "exams.csv", rows)
    reader = CodeReader("code", code15)
    items = read_unit(reader, unit_named(reader, "exams_part0.hdf5"))
    rejected = rejections_by_item(items)
    assert "escapes the source root" in rejected["code:103"].reason
    assert (
        "trace_file names exams_part1.hdf5 but the exam is in exams_part0.hdf5" in rejected["code:102"].reason
    )
    assert sorted(records_by_id(items)) == ["code:101"]


def test_code15_label_value_that_is_not_0_or_1_rejects_the_exam(code15: Path) -> None:
    rows = csv_rows(code15 / "exams.csv")
    rows[0]["AF"] = "maybe"
    write_csv(code15 / "exams.csv", rows)
    items = read_all(CodeReader("code", code15))
    assert "AF = 'maybe'" in rejections_by_item(items)["code:101"].reason
    assert len(records_by_id(items)) == 4


def test_code15_numeric_label_columns_read_like_booleans(code15: Path) -> None:
    rows = csv_rows(code15 / "exams.csv")
    for row in rows:
        for column in ("1dAVb", "RBBB", "LBBB", "SB", "ST", "AF"):
            row[column] = "1" if row[column] == "True" else "0"
    write_csv(code15 / "exams.csv", rows)
    records = records_by_id(read_all(CodeReader("code", code15)))
    assert records["code:102"].raw_labels == (RawLabel("RBBB"), RawLabel("AF"))


def test_code15_repeated_exam_id_in_a_part_is_a_duplicate(code15: Path) -> None:
    write_part(code15 / "exams_part1.hdf5", [201, 201, 0], np.stack([tracing(i, 4000) for i in range(3)]))
    reader = CodeReader("code", code15)
    items = list(reader.read(unit_named(reader, "exams_part1.hdf5"), Provenance((), reader.reader_id)))
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
        read_unit(reader, unit_named(reader, "exams_part1.hdf5"))


def test_code15_file_that_is_not_hdf5_is_a_read_error(code15: Path) -> None:
    (code15 / "exams_part1.hdf5").write_bytes(b"not an hdf5 file")
    reader = CodeReader("code", code15)
    with pytest.raises(ReadError, match="exams_part1.hdf5: cannot open as HDF5"):
        read_unit(reader, unit_named(reader, "exams_part1.hdf5"))


def test_code15_csv_changed_after_discovery_is_a_read_error(code15: Path) -> None:
    reader = CodeReader("code", code15)
    unit = unit_named(reader, "exams_part0.hdf5")
    rows = csv_rows(code15 / "exams.csv")
    rows[0]["RBBB"] = "True"
    write_csv(code15 / "exams.csv", rows)
    with pytest.raises(ReadError, match="changed since discovery"):
        read_unit(reader, unit)


def test_code15_parts_without_their_exam_table_fail_the_source_naming_the_csv(code15: Path) -> None:
    """The exam table holds every part's ids and labels: without it the source fails loudly (a
    SourceLayoutError, exit 2 from `ecgpipe ingest`), not one quarantine entry per part."""
    (code15 / "exams.csv").unlink()
    with pytest.raises(SourceLayoutError, match=r"exams\.csv: CSV not found.*need a usable exam table"):
        CodeReader("code", code15).discover()


def test_code15_exam_table_without_label_columns_fails_the_source(code15: Path) -> None:
    write_csv(code15 / "exams.csv", [{"exam_id": "101", "age": "50"}], columns=["exam_id", "age"])
    with pytest.raises(SourceLayoutError, match="missing label columns"):
        CodeReader("code", code15).discover()


def test_iter_blocks_covers_the_range_in_bounded_blocks() -> None:
    assert list(iter_blocks(600, 256)) == [(0, 256), (256, 512), (512, 600)]
    assert list(iter_blocks(0, 256)) == []


def test_code15_is_read_in_blocks_with_identical_results(
    code15: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = 600
    tracings = np.stack([tracing(i, 48, n_samples=64) for i in range(n)])
    ids = list(range(1000, 1000 + n - 1)) + [0]
    write_part(code15 / "exams_part1.hdf5", ids, tracings)
    rows = [exam_row(i, i, ["SB"] if i % 7 == 0 else [], part="exams_part1.hdf5") for i in ids[:-1]]
    write_csv(code15 / "exams.csv", rows)
    block_rows: list[int] = []
    real_span = code_module.active_span

    def spy(block: Array) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        block_rows.append(block.shape[0])
        return real_span(block)

    monkeypatch.setattr(code_module, "active_span", spy)
    reader = CodeReader("code", code15, block_size=256)
    records = records_by_id(read_unit(reader, unit_named(reader, "exams_part1.hdf5")))
    assert block_rows == [256, 256, 88]
    assert len(records) == n - 1
    small = CodeReader("code", code15, block_size=7)
    small_records = records_by_id(read_unit(small, unit_named(small, "exams_part1.hdf5")))
    assert max(block_rows[3:]) == 7
    assert records.keys() == small_records.keys()
    for key, record in records.items():
        np.testing.assert_array_equal(record.signal, small_records[key].signal)
        assert record.raw_labels == small_records[key].raw_labels
    assert records["code:1001"].raw_labels == (RawLabel("SB"),)
    assert records["code:1598"].meta["hdf5_row"] == "598"


def test_reader_pickles_without_its_csv_cache(code15: Path) -> None:
    reader = CodeReader("code", code15)
    unit = unit_named(reader, "exams_part0.hdf5")
    # Readers travel to worker processes by pickle; these bytes were made just above.
    clone = pickle.loads(pickle.dumps(reader))  # noqa: S301  # bytes pickled here, not untrusted input
    assert clone._tables == {}
    assert sorted(records_by_id(read_unit(clone, unit))) == ["code:101", "code:102", "code:103"]
