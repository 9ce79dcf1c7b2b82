"""Security (c): paths read from CSVs and headers (PTB-XL ``filename_lr``, CODE ``trace_file``/
``wfdb_csv``, CinC 2017 ``REFERENCE.csv`` names, WFDB ``RECORDS``) that escape the source root
(``../``, absolute paths, symbolic links pointing outside) are rejected with a reason, and no file
outside the root is opened. "Opened" is observed with a Python audit hook on ``open`` (every
``open``/``os.open``/``Path.read_*`` in-process) plus a spy on ``h5py.File`` (HDF5 opens files in C),
see :mod:`tests.security_support`.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from pipeline.core.records import ReadError
from pipeline.ingest.batch import run_batch
from pipeline.ingest.plan import plan_ingest
from pipeline.signal.preprocess import SignalPlan
from pipeline.sources.base import SourceLayoutError, SourceReader
from pipeline.sources.cinc2017 import Cinc2017Reader
from pipeline.sources.code import CodeReader
from pipeline.sources.ptbxl import PtbXlReader
from pipeline.sources.wfdb_folder import WfdbFolderReader
from pipeline.store.local import ShardStore, StorageSpec
from pipeline.store.manifest import Manifest
from tests.security_support import code15_part, exams_csv, opened_under, read_all, recorded_opens


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """(source root, a sibling folder outside it) under tmp_path."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    return root, outside


# --------------------------------------------------------------------------- (c) PTB-XL


def _ptbxl_tree(shared: Path, root: Path, outside: Path, ids: list[int]) -> None:
    """``ptbxl_database.csv`` (rows ``ids``, 100 Hz only) and their 100 Hz records under ``root``;
    a copy of record 1 under ``outside`` as ``secret.{hea,dat}``."""
    src = shared / "ptbxl"
    with (src / "ptbxl_database.csv").open(newline="", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    rows = [row | {"filename_hr": ""} for row in table if int(row["ecg_id"]) in ids]
    with (root / "ptbxl_database.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(rows)
    (root / "records100" / "00000").mkdir(parents=True)
    for i in ids:
        for suffix in (".hea", ".dat"):
            rel = f"records100/00000/{i:05d}_lr{suffix}"
            shutil.copy2(src / rel, root / rel)
    for suffix in (".hea", ".dat"):
        shutil.copy2(src / f"records100/00000/00001_lr{suffix}", outside / f"secret{suffix}")


def _set_column(path: Path, ecg_id: int, column: str, value: str) -> None:
    with path.open(newline="", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    for row in table:
        if int(row["ecg_id"]) == ecg_id:
            row[column] = value
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)


def _link_outside(root: Path, rel: str, target: Path) -> None:
    (root / rel).unlink()
    (root / rel).symlink_to(target)


@pytest.mark.shared_data
def test_ptbxl_filenames_escaping_the_root_are_rejected_and_nothing_outside_is_opened(
    shared_data: Path, layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = layout
    _ptbxl_tree(shared_data, root, outside, [1, 2, 3, 4, 5])
    db = root / "ptbxl_database.csv"
    _set_column(db, 1, "filename_lr", "../outside/secret")
    _set_column(db, 2, "filename_lr", str(outside / "secret"))
    _set_column(db, 5, "filename_hr", "../outside/secret")  # checked even at a rate not read
    _link_outside(root, "records100/00000/00003_lr.dat", outside / "secret.dat")
    _link_outside(root, "records100/00000/00004_lr.hea", outside / "secret.hea")
    reader = PtbXlReader("ptbxl", root, rates=(100,))
    with recorded_opens(monkeypatch) as opened:
        disc = reader.discover()
        records, reasons = read_all(reader, disc)
    assert opened_under(opened, outside) == []
    assert [r.record_id for r in records] == ["ptbxl:00005"]
    row_reasons = " | ".join(r.reason for r in disc.rejected)
    assert "'../outside/secret' escapes the source root" in row_reasons
    assert f"{str(outside / 'secret')!r} is absolute" in row_reasons
    assert "filename_hr: path '../outside/secret' escapes the source root" in row_reasons
    assert "escapes the source root" in reasons["00003"] and "escapes the source root" in reasons["00004"]


@pytest.mark.shared_data
def test_ingest_never_opens_a_symlinked_file_outside_the_source_root(
    shared_data: Path, layout: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = layout
    _ptbxl_tree(shared_data, root, outside, [3])
    _link_outside(root, "records100/00000/00003_lr.dat", outside / "secret.dat")
    plan = SignalPlan(
        leads=("I",), lead_aliases=(), fs_hz=None, length=1000, crop="start", baseline_hz=None,
        notch_hz=None, notch_q=30.0, bandpass_hz=None, filter_order=2, normalise="none",
        max_nan_fraction=1.0, flat_ptp_mv=0.0, reject_flat=False, min_duration_s=0.0,
    )  # fmt: skip
    readers: dict[str, SourceReader] = {"ptbxl": PtbXlReader("ptbxl", root, rates=(100,))}
    store = ShardStore(tmp_path / "store" / "p", "p")
    storage = StorageSpec("int16", 0.001, 16)
    with recorded_opens(monkeypatch) as opened:
        ingest_plan = plan_ingest("p", plan, storage, readers, Manifest(profile="p"), batch_units=8)
        results = [run_batch(b, readers, plan, storage, store, {}) for b in ingest_plan.batches]
    assert results and results[0].n_records == 0  # the unit itself is refused by the reader
    assert opened_under(opened, outside) == []


# --------------------------------------------------------------------------- (c) CinC 2017


@pytest.mark.shared_data
def test_cinc2017_reference_names_and_symlinked_files_never_reach_outside_the_root(
    shared_data: Path, layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = layout
    src = shared_data / "cinc2017" / "training2017"
    for name in ("A00001", "A00002"):
        for suffix in (".hea", ".mat"):
            shutil.copy2(src / f"{name}{suffix}", root / f"{name}{suffix}")
    for suffix in (".hea", ".mat"):
        shutil.copy2(src / f"A00003{suffix}", outside / f"secret{suffix}")
    _link_outside(root, "A00002.mat", outside / "secret.mat")
    (root / "REFERENCE.csv").write_text(
        f"A00001,N\r\nA00002,A\r\n../outside/secret,O\r\n{outside / 'secret'},~\r\n", encoding="utf-8"
    )
    reader = Cinc2017Reader("cinc2017", root)
    with recorded_opens(monkeypatch) as opened:
        disc = reader.discover()
        records, reasons = read_all(reader, disc)
    assert opened_under(opened, outside) == []
    assert [r.record_id for r in records] == ["cinc2017:A00001"]
    assert "escapes the source root" in reasons["A00002"]
    assert {u.key for u in disc.units} == {"A00001", "A00002"}  # the path-like names matched no record


@pytest.mark.shared_data
def test_a_cinc2017_label_file_linked_outside_the_root_fails_the_source_unread(
    shared_data: Path, layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = layout
    src = shared_data / "cinc2017" / "training2017"
    for suffix in (".hea", ".mat"):
        shutil.copy2(src / f"A00001{suffix}", root / f"A00001{suffix}")
    (outside / "labels.csv").write_text("A00001,A\r\n")
    (root / "REFERENCE.csv").symlink_to(outside / "labels.csv")
    reader = Cinc2017Reader("cinc2017", root)
    # the label file is the whole source's: refusing it is a structural error, not one rejection
    with recorded_opens(monkeypatch) as opened, pytest.raises(SourceLayoutError) as err:
        reader.discover()
    assert opened_under(opened, outside) == []
    assert "REFERENCE.csv" in str(err.value) and "escapes the source root" in str(err.value)


# --------------------------------------------------------------------------- (c) WFDB RECORDS


def _wfdb_tree(shared: Path, root: Path, outside: Path) -> None:
    src = shared / "wfdb_misc"
    for suffix in (".hea", ".dat"):
        shutil.copy2(src / f"3000003_0003{suffix}", root / f"3000003_0003{suffix}")
        shutil.copy2(src / f"3000003_0003{suffix}", outside / f"3000003_0003{suffix}")


@pytest.mark.shared_data
def test_wfdb_records_entries_and_linked_headers_outside_the_root_are_never_opened(
    shared_data: Path, layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = layout
    _wfdb_tree(shared_data, root, outside)
    (root / "linked.hea").symlink_to(outside / "3000003_0003.hea")
    (root / "RECORDS").write_text(
        f"3000003_0003\nlinked\n../outside/3000003_0003\n{outside / '3000003_0003'}\n"
    )
    reader = WfdbFolderReader("wfdb", root)
    with recorded_opens(monkeypatch) as opened:
        disc = reader.discover()
        records, _ = read_all(reader, disc)
    assert opened_under(opened, outside) == []
    assert [r.record_id for r in records] == ["wfdb:3000003_0003"]
    reasons = {r.item: r.reason for r in disc.rejected}
    assert "escapes the source root" in reasons["linked.hea"]


@pytest.mark.shared_data
def test_a_records_entry_escaping_the_root_is_rejected_with_a_reason(
    shared_data: Path, layout: tuple[Path, Path]
) -> None:
    root, outside = layout
    _wfdb_tree(shared_data, root, outside)
    (root / "RECORDS").write_text("3000003_0003\n../outside/3000003_0003\n")
    disc = WfdbFolderReader("wfdb", root).discover()
    assert any(
        "../outside/3000003_0003" in r.reason or r.item == "../outside/3000003_0003" for r in disc.rejected
    )


@pytest.mark.shared_data
def test_a_records_file_linked_outside_the_root_is_refused_unread(
    shared_data: Path, layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = layout
    _wfdb_tree(shared_data, root, outside)
    (outside / "RECORDS").write_text("3000003_0003\n")
    (root / "RECORDS").symlink_to(outside / "RECORDS")
    reader = WfdbFolderReader("wfdb", root)
    # the whole discovery fails naming the link (ingest reports it as "discovery failed")
    with recorded_opens(monkeypatch) as opened, pytest.raises(ReadError, match="escapes the source root"):
        reader.discover()
    assert opened_under(opened, outside) == []


# --------------------------------------------------------------------------- (c) CODE


def test_code_trace_files_escaping_the_root_are_rejected_and_nothing_outside_is_opened(
    layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = layout
    code15_part(root, "exams_part0.hdf5", [1, 2, 3, 0])
    code15_part(outside, "secret.hdf5", [2, 3])
    secret = outside / "secret.hdf5"
    exams_csv(root / "exams.csv", [(1, "exams_part0.hdf5"), (2, "../outside/secret.hdf5"), (3, str(secret))])
    reader = CodeReader("code", root)
    with recorded_opens(monkeypatch) as opened:
        disc = reader.discover()
        records, reasons = read_all(reader, disc)
    assert opened_under(opened, outside) == []
    assert [r.record_id for r in records] == ["code:1"]
    assert "escapes the source root" in reasons["code:2"]
    assert "is absolute" in reasons["code:3"]


def test_code_wfdb_csv_option_escaping_the_root_fails_discovery_unread(
    layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = layout
    exams_csv(outside / "secret.csv", [(1, "")])
    (root / "TNMG1_N1.hea").write_text("TNMG1_N1 1 400 2\nTNMG1_N1.dat 16 1000/mV 16 0 0 0 0 DI\n")
    (root / "TNMG1_N1.dat").write_bytes(b"\x00" * 4)
    for option in ("../outside/secret.csv", str(outside / "secret.csv")):
        reader = CodeReader("code", root, wfdb_csv=option)
        with recorded_opens(monkeypatch) as opened, pytest.raises(ReadError, match="escapes|absolute"):
            reader.discover()
        assert opened_under(opened, outside) == []


def test_a_code_exam_table_linked_outside_the_root_is_refused_unread(
    layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = layout
    code15_part(root, "exams_part0.hdf5", [1, 0])
    exams_csv(outside / "secret.csv", [(1, "exams_part0.hdf5")])
    (root / "exams.csv").symlink_to(outside / "secret.csv")
    reader = CodeReader("code", root)
    # the whole discovery fails naming the link (ingest reports it as "discovery failed")
    with recorded_opens(monkeypatch) as opened, pytest.raises(ReadError, match="escapes the source root"):
        reader.discover()
    assert opened_under(opened, outside) == []


def test_code_wfdb_header_whose_signal_file_links_outside_is_rejected_unread(
    layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = layout
    exams_csv(root / "exams.csv", [(1, ""), (2, "")])
    for exam in (1, 2):
        (root / f"TNMG{exam}_N1.hea").write_text(
            f"TNMG{exam}_N1 1 400 2\nTNMG{exam}_N1.dat 16 1000/mV 16 0 0 0 0 DI\n"
        )
    (root / "TNMG1_N1.dat").write_bytes(b"\x01\x00\x02\x00")
    (outside / "secret.dat").write_bytes(b"\x07\x00\x07\x00")
    (root / "TNMG2_N1.dat").symlink_to(outside / "secret.dat")
    reader = CodeReader("code", root)
    with recorded_opens(monkeypatch) as opened:
        disc = reader.discover()
        records, _ = read_all(reader, disc)
    assert opened_under(opened, outside) == []
    assert [r.record_id for r in records] == ["code:1"]
    assert "escapes the source root" in {r.item: r.reason for r in disc.rejected}["TNMG2_N1.hea"]


def test_a_code_hdf5_part_linked_outside_the_root_is_never_opened(
    layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = layout
    code15_part(outside, "secret.hdf5", [11, 12])
    (root / "exams_part0.hdf5").symlink_to(outside / "secret.hdf5")
    exams_csv(root / "exams.csv", [(11, "exams_part0.hdf5")])
    reader = CodeReader("code", root)
    with recorded_opens(monkeypatch) as opened:
        disc = reader.discover()
        read_all(reader, disc)
    assert opened_under(opened, outside) == []
