"""CinC 2017 reader on the real shared records and on edited copies of them."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import wfdb

from pipeline.core.records import Discovery, Provenance, RawLabel, ReadError, Record, Rejection
from pipeline.sources.base import list_files
from pipeline.sources.cinc2017 import Cinc2017Reader

pytestmark = pytest.mark.shared_data

# SOURCES.md (b), over the 7,500 records A00001-A07500.
V1_COUNTS = {"N": 4577, "A": 657, "O": 2227, "~": 39}
V3_COUNTS = {"N": 4508, "A": 655, "O": 2096, "~": 241}
LABEL_FILES = {"v1": "REFERENCE.csv", "v3": "REFERENCE-v3.csv"}

# Reading all 7,500 records takes about 20 s; tests about what a read record looks like read this
# fixed sample instead: every 75th record (A00001, A00076, ..., A07426) and the records at both ends
# of the two stagings in SOURCES.md (A02000, A02001, A07500).
SAMPLE = sorted({f"A{i:05d}" for i in range(1, 7501, 75)} | {"A02000", "A02001", "A07500"})


def _accounted(disc: Discovery) -> list[str]:
    files = [f for u in disc.units for f in u.files] + list(disc.metadata_files)
    return sorted(files + [f for r in disc.rejected for f in r.files])


def _read(reader: Cinc2017Reader, disc: Discovery, keys: list[str] | None = None) -> dict[str, Record]:
    """Read the units named in ``keys`` (all of them when None), keyed by record name."""
    out = {}
    for unit in disc.units:
        if keys is not None and unit.key not in keys:
            continue
        for item in reader.read(unit, Provenance((), reader.reader_id)):
            assert isinstance(item, Record)
            out[unit.key] = item
    return out


def _copy(shared_data: Path, names: list[str], dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        for suffix in (".hea", ".mat"):
            shutil.copy(
                shared_data / "cinc2017" / "training2017" / f"{name}{suffix}", dest / f"{name}{suffix}"
            )


def _reference(folder: Path, labels: str) -> dict[str, str]:
    """The label file parsed here, independently of the reader: record name -> label code."""
    lines = (folder / LABEL_FILES[labels]).read_text().splitlines()
    return dict(line.split(",")[:2] for line in lines if line.strip())


@pytest.mark.parametrize(("labels", "expected"), [("v1", V1_COUNTS), ("v3", V3_COUNTS)])
def test_label_counts_match_sources_md(shared_data: Path, labels: str, expected: dict[str, int]) -> None:
    root = shared_data / "cinc2017"
    folder = root / "training2017"
    reader = Cinc2017Reader("c17", root, labels=labels)
    disc = reader.discover()
    listed = (folder / "RECORDS").read_text().split()
    assert [u.key for u in disc.units] == listed
    assert len(listed) == len(list(root.rglob("*.mat")))
    assert _accounted(disc) == list_files(root)
    other = LABEL_FILES["v3" if labels == "v1" else "v1"]
    assert [(r.item, r.category) for r in disc.rejected] == [(f"training2017/{other}", "excluded")]
    reference = _reference(folder, labels)
    assert Counter(reference.values()) == expected
    # Discovery carries every record's label; reading (on the sample) yields the same one.
    assert {u.key: u.extra["label"] for u in disc.units} == reference
    records = _read(reader, disc, SAMPLE)
    assert {k: [lab.code for lab in r.raw_labels] for k, r in records.items()} == {
        k: [reference[k]] for k in SAMPLE
    }


def test_records_are_single_lead_300_hz_and_equal_wfdb(shared_data: Path) -> None:
    folder = shared_data / "cinc2017" / "training2017"
    reader = Cinc2017Reader("c17", folder)  # the root may be the folder itself
    records = _read(reader, reader.discover(), SAMPLE)
    assert sorted(records) == SAMPLE
    for record in records.values():
        assert record.fs_hz == 300.0 and record.leads == ("ECG",) and record.patient_id is None
        assert record.signal.dtype == np.float32 and record.signal.shape[0] == 1
        assert 9 * 300 <= record.signal.shape[1] <= 61 * 300
    for name in ["A00001", "A00751", "A02000", "A02001", "A05026", "A07500"]:
        expected = wfdb.rdrecord(str(folder / name)).p_signal.T.astype(np.float32)
        np.testing.assert_array_equal(records[name].signal, expected)
    assert records["A00001"].record_id == "c17:A00001"
    assert records["A00001"].raw_labels == (RawLabel("N"),)


def test_initial_value_mismatch_is_not_an_error(shared_data: Path) -> None:
    folder = shared_data / "cinc2017" / "training2017"
    mismatched = []
    for name in (f"A{i:05d}" for i in range(1, 200)):
        header = wfdb.rdheader(str(folder / name))
        first = wfdb.rdrecord(str(folder / name), sampto=1, physical=False).d_signal[0, 0]
        if header.init_value[0] != first:
            mismatched.append(name)
    assert mismatched  # SOURCES.md: ~4% of headers
    reader = Cinc2017Reader("c17", shared_data / "cinc2017")
    units = {u.key: u for u in reader.discover().units}
    for name in mismatched:
        (record,) = reader.read(units[name], Provenance((), reader.reader_id))
        assert isinstance(record, Record) and record.signal.shape[0] == 1


def test_record_without_reference_line_is_rejected(shared_data: Path, tmp_path: Path) -> None:
    _copy(shared_data, ["A00001", "A00002", "A00003"], tmp_path / "training2017")
    (tmp_path / "training2017" / "REFERENCE.csv").write_bytes(b"A00001,N\r\nA00003,A\r\nA09999,O\r\n")
    disc = Cinc2017Reader("c17", tmp_path).discover()
    assert [u.key for u in disc.units] == ["A00001", "A00003"]
    (rejection,) = disc.rejected
    assert rejection.files == ("training2017/A00002.hea", "training2017/A00002.mat")
    assert rejection.reason == (
        "training2017/A00002.hea: no label line for A00002 in training2017/REFERENCE.csv"
    )
    assert _accounted(disc) == list_files(tmp_path)


def test_conflicting_and_missing_label_files_are_rejected(shared_data: Path, tmp_path: Path) -> None:
    _copy(shared_data, ["A00001", "A00002"], tmp_path)
    (tmp_path / "REFERENCE.csv").write_text("A00001,N\nA00001,A\nA00002,O\nA00002,O\n")
    disc = Cinc2017Reader("c17", tmp_path).discover()
    assert [u.key for u in disc.units] == ["A00002"]
    assert "conflicting label lines for A00001" in disc.rejected[0].reason
    disc_v3 = Cinc2017Reader("c17", tmp_path, labels="v3").discover()
    assert disc_v3.units == ()
    assert {r.reason for r in disc_v3.rejected if r.item.startswith("A0")} == {
        "A00001.hea: no REFERENCE-v3.csv for this record under the root",
        "A00002.hea: no REFERENCE-v3.csv for this record under the root",
    }


def test_v3_file_in_parent_folder_with_published_path_names(shared_data: Path, tmp_path: Path) -> None:
    _copy(shared_data, ["A00001", "A00002"], tmp_path / "training2017")
    (tmp_path / "REFERENCE-v3.csv").write_bytes(b"A00/A00001,N,0\r\nA00/A00002,~,1\r\n")
    reader = Cinc2017Reader("c17", tmp_path, labels="v3")
    disc = reader.discover()
    assert disc.metadata_files == ("REFERENCE-v3.csv",)
    records = _read(reader, disc)
    assert {k: r.raw_labels for k, r in records.items()} == {
        "A00001": (RawLabel("N"),),
        "A00002": (RawLabel("~"),),
    }


def test_editing_one_line_changes_only_that_units_extra(shared_data: Path, tmp_path: Path) -> None:
    _copy(shared_data, ["A00001", "A00002"], tmp_path)
    (tmp_path / "REFERENCE.csv").write_text("A00001,N\nA00002,N\n")
    before = {u.key: dict(u.extra) for u in Cinc2017Reader("c17", tmp_path).discover().units}
    (tmp_path / "REFERENCE.csv").write_text("A00001,N\nA00002,A\n")
    after = {u.key: dict(u.extra) for u in Cinc2017Reader("c17", tmp_path).discover().units}
    assert before["A00001"] == after["A00001"]
    assert before["A00002"] != after["A00002"] and after["A00002"]["label"] == "A"


def test_orphans_and_missing_signal_file(shared_data: Path, tmp_path: Path) -> None:
    _copy(shared_data, ["A00001", "A00002", "A00003"], tmp_path)
    (tmp_path / "REFERENCE.csv").write_text("A00001,N\nA00002,N\nA00003,N\n")
    (tmp_path / "A00002.hea").unlink()
    (tmp_path / "A00003.mat").unlink()
    reader = Cinc2017Reader("c17", tmp_path)
    disc = reader.discover()
    assert _accounted(disc) == list_files(tmp_path)
    assert [(r.item, r.reason) for r in disc.rejected] == [
        ("A00002.mat", "A00002.mat: signal file with no header; expected A00002.hea")
    ]
    units = {u.key: u for u in disc.units}
    with pytest.raises(
        ReadError, match=r"^A00003.mat: signal file named by header A00003.hea does not exist"
    ):
        list(reader.read(units["A00003"], Provenance((), reader.reader_id)))


def test_truncated_record_raises_while_the_others_read(shared_data: Path, tmp_path: Path) -> None:
    names = ["A00001", "A00002", "A00003", "A00004"]
    _copy(shared_data, names, tmp_path)
    shutil.copy(shared_data / "cinc2017" / "training2017" / "REFERENCE.csv", tmp_path / "REFERENCE.csv")
    data = (tmp_path / "A00003.mat").read_bytes()
    (tmp_path / "A00003.mat").write_bytes(data[:1000])
    reader = Cinc2017Reader("c17", tmp_path)
    read: list[Record | Rejection] = []
    errors: dict[str, str] = {}
    for unit in reader.discover().units:
        try:
            read.extend(reader.read(unit, Provenance((), reader.reader_id)))
        except ReadError as exc:
            errors[unit.key] = str(exc)
    assert len(read) == 3 and list(errors) == ["A00003"]
    assert "A00003.mat: header declares" in errors["A00003"]
    assert errors["A00003"].endswith("but the file holds only 1000 bytes")


def test_unknown_labels_option_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="labels\n.*'v1' or 'v3'"):
        Cinc2017Reader("c17", tmp_path, labels="v2")
