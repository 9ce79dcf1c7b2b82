"""PTB Diagnostic reader on the real shared record and on edited copies of it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import wfdb

from pipeline.core.records import Discovery, Provenance, RawLabel, ReadError, Record, Rejection
from pipeline.sources.base import list_files
from pipeline.sources.ptb_diagnostic import PtbDiagnosticReader

pytestmark = pytest.mark.shared_data

LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6", "vx", "vy", "vz")


def _accounted(disc: Discovery) -> list[str]:
    files = [f for u in disc.units for f in u.files] + list(disc.metadata_files)
    return sorted(files + [f for r in disc.rejected for f in r.files])


def _copy_record(shared_data: Path, dest: Path, name: str = "s0010_re") -> None:
    """Copy s0010_re into ``dest`` as record ``name`` (header file names rewritten)."""
    source = shared_data / "ptb_diagnostic" / "patient001"
    dest.mkdir(parents=True, exist_ok=True)
    for suffix in (".dat", ".xyz"):
        shutil.copy(source / f"s0010_re{suffix}", dest / f"{name}{suffix}")
    text = (source / "s0010_re.hea").read_bytes().decode("ascii")
    (dest / f"{name}.hea").write_bytes(text.replace("s0010_re", name).encode("ascii"))


def _read_one(reader: PtbDiagnosticReader, key: str) -> Record:
    units = {u.key: u for u in reader.discover().units}
    (record,) = reader.read(units[key], Provenance((), reader.reader_id))
    assert isinstance(record, Record)
    return record


def test_discovers_the_record_with_both_signal_files(shared_data: Path) -> None:
    root = shared_data / "ptb_diagnostic"
    disc = PtbDiagnosticReader("ptbdb", root).discover()
    assert [(u.key, u.files) for u in disc.units] == [
        (
            "patient001/s0010_re",
            ("patient001/s0010_re.hea", "patient001/s0010_re.dat", "patient001/s0010_re.xyz"),
        )
    ]
    assert disc.rejected == () and _accounted(disc) == list_files(root)


def test_reads_15_channels_in_mv_equal_to_wfdb(shared_data: Path) -> None:
    record = _read_one(PtbDiagnosticReader("ptbdb", shared_data / "ptb_diagnostic"), "patient001/s0010_re")
    assert record.record_id == "ptbdb:patient001/s0010_re"
    assert record.signal.shape == (15, 38400) and record.signal.dtype == np.float32
    assert record.fs_hz == 1000.0
    assert record.leads == LEADS
    assert record.patient_id == "patient001"
    assert record.raw_labels == (RawLabel("Myocardial infarction"),)
    assert dict(record.meta) == {"age": "81", "sex": "female"}
    expected = wfdb.rdrecord(str(shared_data / "ptb_diagnostic" / "patient001" / "s0010_re")).p_signal
    np.testing.assert_array_equal(record.signal, expected.T.astype(np.float32))


def test_unknown_reason_gives_no_label(shared_data: Path, tmp_path: Path) -> None:
    _copy_record(shared_data, tmp_path / "patient002", "s0020_re")
    hea = tmp_path / "patient002" / "s0020_re.hea"
    hea.write_text(
        hea.read_text().replace("Reason for admission: Myocardial infarction", "Reason for admission: n/a")
    )
    record = _read_one(PtbDiagnosticReader("ptbdb", tmp_path), "patient002/s0020_re")
    assert record.raw_labels == ()


def test_missing_xyz_raises_and_orphans_are_rejected(shared_data: Path, tmp_path: Path) -> None:
    _copy_record(shared_data, tmp_path / "patient001", "s0010_re")
    _copy_record(shared_data, tmp_path / "patient002", "s0020_re")
    _copy_record(shared_data, tmp_path / "patient003", "s0030_re")
    (tmp_path / "patient002" / "s0020_re.xyz").unlink()
    (tmp_path / "patient003" / "s0030_re.hea").unlink()
    (tmp_path / "RECORDS").write_text("patient001/s0010_re\n")
    reader = PtbDiagnosticReader("ptbdb", tmp_path)
    disc = reader.discover()
    assert _accounted(disc) == list_files(tmp_path)
    assert disc.metadata_files == ("RECORDS",)
    assert [r.item for r in disc.rejected] == ["patient003/s0030_re.dat", "patient003/s0030_re.xyz"]
    assert all("signal file with no header" in r.reason for r in disc.rejected)
    units = {u.key: u for u in disc.units}
    with pytest.raises(
        ReadError, match=r"^patient002/s0020_re.xyz: signal file named by header .* does not exist"
    ):
        list(reader.read(units["patient002/s0020_re"], Provenance((), reader.reader_id)))


def test_truncated_xyz_raises_while_the_other_record_reads(shared_data: Path, tmp_path: Path) -> None:
    _copy_record(shared_data, tmp_path / "patient001", "s0010_re")
    _copy_record(shared_data, tmp_path / "patient001", "s0011_re")
    xyz = tmp_path / "patient001" / "s0011_re.xyz"
    xyz.write_bytes(xyz.read_bytes()[:-2])
    reader = PtbDiagnosticReader("ptbdb", tmp_path)
    read: list[Record | Rejection] = []
    errors: dict[str, str] = {}
    for unit in reader.discover().units:
        try:
            read.extend(reader.read(unit, Provenance((), reader.reader_id)))
        except ReadError as exc:
            errors[unit.key] = str(exc)
    assert len(read) == 1 and list(errors) == ["patient001/s0011_re"]
    assert errors["patient001/s0011_re"] == (
        "patient001/s0011_re.xyz: header declares 38400 samples x 3 signals (230400 bytes) "
        "but the file holds only 230398 bytes"
    )
