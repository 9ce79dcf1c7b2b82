"""PTB-XL reader on the real shared records and on a small edited copy of them."""

from __future__ import annotations

import csv
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import wfdb

from pipeline.core.records import Discovery, Provenance, RawLabel, ReadError, Record, Rejection
from pipeline.sources.base import list_files
from pipeline.sources.ptbxl import PtbXlReader, normalise_patient_id, parse_scp_codes
from tests.labels_support import DEFAULT_VOCABULARY, make_mapper, make_tables

pytestmark = pytest.mark.shared_data

LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")


def _accounted(disc: Discovery) -> list[str]:
    files = [f for u in disc.units for f in u.files] + list(disc.metadata_files)
    return sorted(files + [f for r in disc.rejected for f in r.files])


def _read(reader: PtbXlReader, disc: Discovery) -> dict[str, Record]:
    out = {}
    for unit in disc.units:
        for item in reader.read(unit, Provenance((), reader.reader_id)):
            assert isinstance(item, Record)
            out[unit.key] = item
    return out


def _mini_ptbxl(shared_data: Path, dest: Path, ids: list[int], hr_ids: list[int]) -> None:
    """A PTB-XL tree in ``dest`` with CSV rows and 100 Hz files for ``ids``, 500 Hz for ``hr_ids``."""
    source = shared_data / "ptbxl"
    with (source / "ptbxl_database.csv").open(newline="") as fh:
        rows = list(csv.reader(fh))
    with (dest / "ptbxl_database.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows([rows[0]] + [rows[i] for i in ids])
    shutil.copy(source / "scp_statements.csv", dest / "scp_statements.csv")
    for folder, suffix, chosen in (("records100", "lr", ids), ("records500", "hr", hr_ids)):
        (dest / folder / "00000").mkdir(parents=True, exist_ok=True)
        for ecg_id in chosen:
            for ext in (".hea", ".dat"):
                name = f"{folder}/00000/{ecg_id:05d}_{suffix}{ext}"
                shutil.copy(source / name, dest / name)


def _edit_row(path: Path, ecg_id: int, column: str, value: str) -> None:
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    col = rows[0].index(column)
    for row in rows[1:]:
        if row[0] == str(ecg_id):
            row[col] = value
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)


@pytest.mark.parametrize(
    ("rates", "n_units", "rejected"),
    [
        ((500, 100), 300, {"duplicate": 150}),
        ((100, 500), 300, {"duplicate": 150}),
        ((100,), 300, {"excluded": 150}),
        ((500,), 150, {"excluded": 300}),
    ],
)
def test_discover_one_unit_per_ecg_id_at_the_preferred_rate(
    shared_data: Path, rates: tuple[int, ...], n_units: int, rejected: dict[str, int]
) -> None:
    root = shared_data / "ptbxl"
    disc = PtbXlReader("ptbxl", root, rates=rates).discover()
    assert len(disc.units) == n_units
    assert Counter(r.category for r in disc.rejected) == rejected
    assert _accounted(disc) == list_files(root)
    assert sorted(disc.metadata_files) == [
        "LICENSE.txt",
        "SHA256SUMS.txt",
        "ptbxl_database.csv",
        "scp_statements.csv",
    ]
    n_files = len(list((root / "records100").rglob("*"))) + len(list((root / "records500").rglob("*")))
    assert sum(len(u.files) for u in disc.units) + sum(len(r.files) for r in disc.rejected) == n_files - 2


def test_duplicate_reason_names_the_file_used(shared_data: Path) -> None:
    disc = PtbXlReader("ptbxl", shared_data / "ptbxl").discover()
    first = next(r for r in disc.rejected if r.item == "records100/00000/00001_lr")
    assert first.files == ("records100/00000/00001_lr.hea", "records100/00000/00001_lr.dat")
    assert "records500/00000/00001_hr.dat" in first.reason
    units = {u.key: u for u in disc.units}
    assert units["00001"].files == ("records500/00000/00001_hr.hea", "records500/00000/00001_hr.dat")
    assert units["00151"].files == ("records100/00000/00151_lr.hea", "records100/00000/00151_lr.dat")


def test_reads_all_records_with_scp_codes_patient_and_meta(shared_data: Path) -> None:
    reader = PtbXlReader("ptbxl", shared_data / "ptbxl")
    records = _read(reader, reader.discover())
    assert len(records) == 300
    shapes = Counter((r.fs_hz, r.signal.shape) for r in records.values())
    assert shapes == {(500.0, (12, 5000)): 150, (100.0, (12, 1000)): 150}
    assert all(r.leads == LEADS and r.signal.dtype == np.float32 for r in records.values())
    # SOURCES.md: NORM superclass 186 (NORM is that class's only SCP code)
    assert sum(any(lab.code == "NORM" for lab in r.raw_labels) for r in records.values()) == 186
    first = records["00001"]
    assert first.record_id == "ptbxl:00001"
    assert first.raw_labels == (
        RawLabel("NORM", 100.0),
        RawLabel("LVOLT", 0.0),
        RawLabel("SR", 0.0),
        RawLabel("static_noise"),  # its static_noise column names leads I-V1
    )
    assert first.patient_id == "15709"
    assert dict(first.meta) == {
        "strat_fold": "3",
        "age": "56.0",
        "sex": "1",
        "rate_hz": "500",
        "filename": "records500/00000/00001_hr",
    }
    assert records["00300"].meta["rate_hz"] == "100"
    assert {r.meta["strat_fold"] for r in records.values()} == {str(i) for i in range(1, 11)}
    # signal-quality columns (default: all but baseline_drift) as record-scope raw labels, shared rows:
    # static_noise 67, burst_noise 8, electrodes_problems 3 rows, 76 records with at least one
    quality = Counter(lab.code for r in records.values() for lab in r.raw_labels if lab.likelihood is None)
    assert quality == {"static_noise": 67, "burst_noise": 8, "electrodes_problems": 3}
    mapper, noisy = make_mapper(make_tables()), DEFAULT_VOCABULARY.index("NOISY")
    assert sum(int(mapper.map_labels("ptbxl", r.raw_labels).labels[noisy]) for r in records.values()) == 76


def test_noise_columns_choose_which_quality_columns_become_raw_labels(
    shared_data: Path, tmp_path: Path
) -> None:
    """ecg_id 4 states only baseline drift: NOISY only when noise_columns names baseline_drift; the
    option is in the unit's fingerprint, so changing it re-reads the records."""
    _mini_ptbxl(shared_data, tmp_path, [1, 4], [])
    mapper = make_mapper(make_tables())
    noisy = DEFAULT_VOCABULARY.index("NOISY")
    default = PtbXlReader("ptbxl", tmp_path)
    drift = PtbXlReader("ptbxl", tmp_path, noise_columns=("baseline_drift",))
    got = {name: _read(r, r.discover()) for name, r in (("default", default), ("drift", drift))}
    assert [lab.code for lab in got["drift"]["00004"].raw_labels][-1] == "baseline_drift"
    assert not mapper.map_labels("ptbxl", got["default"]["00004"].raw_labels).labels[noisy]
    assert mapper.map_labels("ptbxl", got["drift"]["00004"].raw_labels).labels[noisy]
    assert mapper.map_labels("ptbxl", got["default"]["00001"].raw_labels).labels[noisy]
    assert default.discover().units[0].extra != drift.discover().units[0].extra


@pytest.mark.parametrize(
    "stem", ["records500/00000/00001_hr", "records500/00000/00150_hr", "records100/00000/00300_lr"]
)
def test_signals_equal_wfdb_p_signal(shared_data: Path, stem: str) -> None:
    reader = PtbXlReader("ptbxl", shared_data / "ptbxl")
    unit = next(u for u in reader.discover().units if u.files[0] == f"{stem}.hea")
    (record,) = reader.read(unit, Provenance((), reader.reader_id))
    assert isinstance(record, Record)
    expected = wfdb.rdrecord(str(shared_data / "ptbxl" / stem)).p_signal.T.astype(np.float32)
    np.testing.assert_array_equal(record.signal, expected)


def test_unit_extra_is_the_csv_row_so_edits_change_only_that_unit(shared_data: Path, tmp_path: Path) -> None:
    _mini_ptbxl(shared_data, tmp_path, [1, 2, 3], [1])
    before = {u.key: dict(u.extra) for u in PtbXlReader("ptbxl", tmp_path).discover().units}
    assert before["00002"]["scp_codes"] == "{'NORM': 80.0, 'SBRAD': 0.0}"
    _edit_row(tmp_path / "ptbxl_database.csv", 2, "strat_fold", "9")
    after = {u.key: dict(u.extra) for u in PtbXlReader("ptbxl", tmp_path).discover().units}
    assert before["00001"] == after["00001"] and before["00003"] == after["00003"]
    assert after["00002"]["strat_fold"] == "9" != before["00002"]["strat_fold"]


def test_malformed_scp_codes_raise_with_a_reason(shared_data: Path, tmp_path: Path) -> None:
    _mini_ptbxl(shared_data, tmp_path, [1, 2], [])
    _edit_row(tmp_path / "ptbxl_database.csv", 2, "scp_codes", "{'NORM': 80.0, 'SBRAD'")
    reader = PtbXlReader("ptbxl", tmp_path)
    units = {u.key: u for u in reader.discover().units}
    assert len(list(reader.read(units["00001"], Provenance((), reader.reader_id)))) == 1
    with pytest.raises(ReadError, match=r"^ptbxl_database.csv: ecg_id 2: scp_codes .* is not a dict literal"):
        list(reader.read(units["00002"], Provenance((), reader.reader_id)))


@pytest.mark.parametrize(
    "text", ["['NORM']", "{'NORM': 'high'}", "{1: 2.0}", "{'X': nan}", "__import__('os')", ""]
)
def test_parse_scp_codes_rejects_non_dict_literals(text: str) -> None:
    with pytest.raises(ReadError, match="^where: scp_codes"):
        parse_scp_codes(text, "where")


def test_parse_scp_codes_and_patient_id_normalisation() -> None:
    assert parse_scp_codes("{'IMI': 35.0, 'SR': 0}", "w") == (RawLabel("IMI", 35.0), RawLabel("SR", 0.0))
    assert parse_scp_codes("{}", "w") == ()
    assert normalise_patient_id("15709.0") == "15709"
    assert normalise_patient_id(" 42 ") == "42"
    assert normalise_patient_id("") is None
    assert normalise_patient_id("p-7") == "p-7"


def test_files_without_rows_incomplete_records_and_strays(shared_data: Path, tmp_path: Path) -> None:
    _mini_ptbxl(shared_data, tmp_path, [1, 2, 3], [1, 2])
    _edit_row(tmp_path / "ptbxl_database.csv", 3, "ecg_id", "x3")  # record 3 loses its row
    (tmp_path / "records500" / "00000" / "00002_hr.dat").unlink()  # 500 Hz header without data
    (tmp_path / "records100" / "00000" / "notes.bin").write_bytes(b"x")
    reader = PtbXlReader("ptbxl", tmp_path)
    disc = reader.discover()
    assert _accounted(disc) == list_files(tmp_path)
    units = {u.key: u for u in disc.units}
    assert set(units) == {"00001", "00002"}
    assert units["00002"].files[0] == "records100/00000/00002_lr.hea"  # falls back to the complete rate
    reasons = {r.item: r.reason for r in disc.rejected}
    assert "only records500/00000/00002_hr.hea exists" in reasons["records500/00000/00002_hr"]
    assert reasons["records100/00000/00003_lr.dat"].endswith("record file with no row in ptbxl_database.csv")
    assert (
        reasons["ptbxl_database.csv:4"] == "ptbxl_database.csv: line 4: ecg_id 'x3' is not a positive integer"
    )
    assert reasons["records100/00000/notes.bin"].endswith("not a PTB-XL record or metadata file")
    assert len(_read(reader, disc)) == 2


def test_filename_escaping_the_root_is_refused(shared_data: Path, tmp_path: Path) -> None:
    _mini_ptbxl(shared_data, tmp_path, [1], [])
    _edit_row(tmp_path / "ptbxl_database.csv", 1, "filename_hr", "../../etc/passwd")
    disc = PtbXlReader("ptbxl", tmp_path).discover()
    assert [u.key for u in disc.units] == ["00001"]
    (rejection,) = disc.rejected
    assert rejection.item == "ptbxl_database.csv:ecg_id=1" and "escapes the source root" in rejection.reason


def test_truncated_record_raises_while_the_others_read(shared_data: Path, tmp_path: Path) -> None:
    _mini_ptbxl(shared_data, tmp_path, [1, 2, 3, 4], [1, 2])
    dat = tmp_path / "records500" / "00000" / "00002_hr.dat"
    dat.write_bytes(dat.read_bytes()[:50_000])
    reader = PtbXlReader("ptbxl", tmp_path)
    read: list[Record | Rejection] = []
    errors: dict[str, str] = {}
    for unit in reader.discover().units:
        try:
            read.extend(reader.read(unit, Provenance((), reader.reader_id)))
        except ReadError as exc:
            errors[unit.key] = str(exc)
    assert len(read) == 3 and list(errors) == ["00002"]
    assert errors["00002"] == (
        "records500/00000/00002_hr.dat: header declares 5000 samples x 12 signals (120000 bytes) "
        "but the file holds only 50000 bytes"
    )


def test_missing_database_csv_rejects_every_record_file(shared_data: Path, tmp_path: Path) -> None:
    _mini_ptbxl(shared_data, tmp_path, [1], [])
    (tmp_path / "ptbxl_database.csv").unlink()
    disc = PtbXlReader("ptbxl", tmp_path).discover()
    assert disc.units == ()
    assert _accounted(disc) == list_files(tmp_path)
    assert all("no row in ptbxl_database.csv" in r.reason for r in disc.rejected)


def test_scp_statements_table(shared_data: Path) -> None:
    statements = PtbXlReader("ptbxl", shared_data / "ptbxl").scp_statements()
    assert statements["NORM"]["diagnostic_class"] == "NORM"
    assert statements["IMI"]["diagnostic_class"] == "MI"


@pytest.mark.parametrize(
    ("rates", "message"),
    [
        ((), "rates must be distinct"),
        ((250,), "Input should be 100 or 500"),
        ((500, 500), "rates must be distinct"),
    ],
)
def test_invalid_rates_are_refused(tmp_path: Path, rates: tuple[int, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PtbXlReader("ptbxl", tmp_path, rates=rates)
