"""The landing-zone take on real records, continued: simulated crashes at every step resume exactly
once, a second take waits for the ledger lock, dry runs move nothing, RECORDS files get the record,
moves that fail or race are left with a reason, and the ledger and report hold what happened.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import pipeline.landing.take as landing
from pipeline.core.fs import sha256_file
from pipeline.landing.check import check_record
from pipeline.landing.ledger import (
    LandingLedger,
    LedgerError,
    LedgerLockedError,
    LedgerVersionError,
    ledger_lock,
)
from pipeline.landing.take import landing_status
from pipeline.sources.registry import make_reader
from tests.landing_support import (
    CINC,
    CPSC,
    MITBIH,
    NOW,
    PTB,
    SETTLE_S,
    Kind,
    Zone,
    age,
    assert_taken_intact,
    keys,
    left_of,
)

pytestmark = pytest.mark.shared_data


@pytest.fixture
def zone(tmp_path: Path, shared_data: Path) -> Zone:
    return Zone(tmp_path, shared_data)


# --------------------------------------------------------------------------- crash windows


class Crash(BaseException):
    """Stands for the process dying at a chosen point."""


def test_crash_after_move_before_ledger_row_is_adopted_on_the_next_run(
    zone: Zone, monkeypatch: pytest.MonkeyPatch
) -> None:
    zone.drop(MITBIH)

    def die(self: LandingLedger, entry: object) -> None:
        raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(LandingLedger, "add", die)
        with pytest.raises(Crash):
            zone.take(MITBIH)
    assert (zone.dest(MITBIH) / "100.hea").exists() and zone.landed(MITBIH, "100.hea").exists()
    with LandingLedger(zone.ledger) as ledger:
        assert ledger.get("mitbih", "100") is None
    report = zone.take(MITBIH, now=NOW + 60)
    assert keys(report.taken) == ["100"]
    assert report.taken[0].note.startswith("destination already held identical files")
    assert_taken_intact(zone, MITBIH)
    with LandingLedger(zone.ledger) as ledger:
        assert ledger.get("mitbih", "100") is not None
    assert zone.take(MITBIH, now=NOW + 120).taken == ()


def test_crash_midway_through_the_move_resumes_without_a_header_seen_early(
    zone: Zone, monkeypatch: pytest.MonkeyPatch
) -> None:
    zone.drop(PTB)
    real_place = landing._place
    placed: list[str] = []

    def place_two_then_die(src: Path, dest: Path, sha256: str) -> None:
        if len(placed) == 2:
            raise Crash
        real_place(src, dest, sha256)
        placed.append(dest.name)

    with monkeypatch.context() as patch:
        patch.setattr(landing, "_place", place_two_then_die)
        with pytest.raises(Crash):
            zone.take(PTB)
    assert placed == ["s0010_re.dat", "s0010_re.xyz"], "signal files first"
    assert not (zone.dest(PTB) / "patient001" / "s0010_re.hea").exists(), "header last"
    report = zone.take(PTB, now=NOW + 60)
    assert keys(report.taken) == ["patient001/s0010_re"]
    assert report.taken[0].note == "resumed: 2 file(s) were already at the destination"
    assert_taken_intact(zone, PTB)


def test_crash_after_ledger_row_before_landing_cleanup_is_already_taken(
    zone: Zone, monkeypatch: pytest.MonkeyPatch
) -> None:
    zone.drop(CPSC)

    def die(self: object, rels: object) -> None:
        raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(landing._SourceTake, "_remove", die)
        with pytest.raises(Crash):
            zone.take(CPSC)
    assert all(zone.landed(CPSC, n).exists() for n in CPSC.names)
    report = zone.take(CPSC, now=NOW + 60)
    assert (keys(report.taken), keys(report.already_taken)) == ([], ["data_8_2"])
    assert_taken_intact(zone, CPSC)


def test_crash_midway_through_landing_cleanup_leaves_nothing_behind(zone: Zone) -> None:
    zone.drop(CPSC)
    zone.take(CPSC)
    zone.drop(CPSC, ["data_8_2.atr"])  # the header was deleted, the annotation was not
    report = zone.take(CPSC, now=NOW + 60)
    assert keys(report.already_taken) == ["data_8_2"]
    assert "leftover file data_8_2.atr" in report.already_taken[0].note
    assert not zone.landed(CPSC, "data_8_2.atr").exists()


# --------------------------------------------------------------------------- lock, dry run, RECORDS


def test_a_concurrent_take_fails_at_once_naming_the_ledger_and_holder(zone: Zone) -> None:
    zone.drop(CINC)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from pipeline.landing.ledger import ledger_lock\n"
            "with ledger_lock(Path(sys.argv[1])):\n    print('held', flush=True); sys.stdin.read()",
            str(zone.ledger),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        with pytest.raises(LedgerLockedError) as err:
            zone.take(CINC)
        assert str(zone.ledger) in str(err.value)
        assert f"pid {holder.pid}" in str(err.value)
        assert zone.landed(CINC, "E00271.hea").exists()
    finally:
        holder.communicate(b"", timeout=30)
    assert keys(zone.take(CINC).taken) == ["E00271"]


def test_the_lock_is_exclusive_within_one_process_too(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite"
    with (
        ledger_lock(ledger),
        pytest.raises(LedgerLockedError, match=f"pid {os.getpid()}"),
        ledger_lock(ledger),
    ):
        pass
    with ledger_lock(ledger):
        pass  # released


def test_dry_run_moves_nothing_and_writes_no_ledger(zone: Zone) -> None:
    zone.drop(MITBIH)
    zone.drop(CPSC, ["data_8_2.dat"])
    report = landing_status(
        zone.root, [zone.target(MITBIH), zone.target(CPSC)], zone.ledger, settle_s=SETTLE_S, now=NOW
    )
    assert report.dry_run
    assert keys(report.taken) == ["100"]
    assert report.taken[0].note == "dry run: complete and settled, would be taken"
    assert left_of(report)["data_8_2.dat"][0] == "orphan"
    assert all(zone.landed(MITBIH, n).exists() for n in MITBIH.names)
    assert not zone.dest(MITBIH).exists()
    assert not zone.ledger.exists()
    assert "(dry run)" in report.markdown() and "would take 1 record(s)" in report.markdown()


def test_records_file_governing_the_destination_gets_the_record_appended(zone: Zone) -> None:
    dest = zone.dest(MITBIH)
    dest.mkdir(parents=True)
    (dest / "RECORDS").write_text("101\n")
    for name in ("101.hea", "101.dat"):  # a listed record already there, to show the list still governs
        shutil.copyfile(zone.shared / "mitbih" / name.replace("101", "104"), dest / name)
    (dest / "101.hea").write_text((dest / "101.hea").read_text().replace("104", "101"))
    zone.drop(MITBIH)
    assert keys(zone.take(MITBIH).taken) == ["100"]
    assert (dest / "RECORDS").read_text() == "101\n100\n"
    reader = make_reader("mitbih", "wfdb", dest, {})
    assert sorted(u.key for u in reader.discover().units) == ["100", "101"]


def test_records_entry_is_relative_to_the_records_file_folder(zone: Zone) -> None:
    kind = Kind("cpsc2021", "wfdb", "cpsc2021", "p8/data_8_2", "data_8_2.dat", "atr")
    dest = zone.dest(kind)
    dest.mkdir(parents=True)
    (dest / "RECORDS").write_text("p21/data_21_7")  # no final newline
    zone.drop(kind)
    assert keys(zone.take(kind).taken) == ["p8/data_8_2"]
    assert (dest / "RECORDS").read_text() == "p21/data_21_7\np8/data_8_2\n"


def test_unknown_subfolder_and_files_in_the_landing_root_are_reported(zone: Zone) -> None:
    zone.drop(MITBIH)
    (zone.root / "ptbxl" / "records100").mkdir(parents=True)
    (zone.root / "ptbxl" / "records100" / "00001_lr.hea").write_text("x\n")
    (zone.root / "stray.csv").write_text("a,b\n")
    report = zone.take(MITBIH)
    left = {i.item: i for i in report.left}
    assert left["ptbxl"].category == "unknown_source"
    assert left["ptbxl"].files == ("ptbxl/records100/00001_lr.hea",)
    assert "not a landing target (targets: mitbih)" in left["ptbxl"].reason
    assert left["stray.csv"].category == "unknown_source"
    assert keys(report.taken) == ["100"]
    assert (zone.root / "ptbxl" / "records100" / "00001_lr.hea").exists()


def test_header_naming_a_file_outside_its_folder_is_invalid(zone: Zone) -> None:
    zone.drop(MITBIH)
    header = zone.landed(MITBIH, "100.hea")
    header.write_text(header.read_text().replace("100.dat 212", "../../outside.dat 212", 1))
    age(header, 3600)
    category, reason = left_of(zone.take(MITBIH))["100"]
    assert category == "invalid"
    assert "escapes the source root" in reason


def test_copy_path_when_hard_links_are_impossible(zone: Zone, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_link(*args: object, **kwargs: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    zone.drop(PTB)
    assert keys(zone.take(PTB).taken) == ["patient001/s0010_re"]
    assert_taken_intact(zone, PTB)
    assert not list(zone.dest(PTB).rglob(".*")), "no temporary files left"
    landed_mtime = NOW - 3600
    assert (zone.dest(PTB) / "patient001" / "s0010_re.hea").stat().st_mtime == pytest.approx(landed_mtime)


def test_an_os_error_while_moving_is_reported_and_retried(
    zone: Zone, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(*args: object, **kwargs: object) -> str:
        raise OSError(28, "No space left on device")

    zone.drop(CINC)
    with monkeypatch.context() as patch:
        patch.setattr(os, "link", disk_full)
        patch.setattr(landing, "_copy_fsync", disk_full)
        category, reason = left_of(zone.take(CINC))["E00271"]
    assert category == "error"
    assert "No space left on device; retried next run" in reason
    assert not any(zone.dest(CINC).iterdir()), "no partial or temporary file left behind"
    assert keys(zone.take(CINC, now=NOW + 60).taken) == ["E00271"]


def test_file_changed_between_check_and_move_is_left(zone: Zone, monkeypatch: pytest.MonkeyPatch) -> None:
    zone.drop(CINC)
    real_check = check_record

    def check_then_write(root: Path, header_rel: str, **kwargs: Any) -> Any:
        result = real_check(root, header_rel, **kwargs)
        with (root / "E00271.mat").open("ab") as fh:  # an uploader appending during the check
            fh.write(b"\0\0")
        return result

    monkeypatch.setattr("pipeline.landing.take.check_record", check_then_write)
    category, reason = left_of(zone.take(CINC))["E00271"]
    assert category == "settling"
    assert reason == "E00271.mat changed during the check (120,024 -> 120,026 bytes); retried next run"
    assert not zone.dest(CINC).exists() or not any(zone.dest(CINC).iterdir())


def test_signal_file_arriving_during_the_scan_is_not_taken_this_run(
    zone: Zone, monkeypatch: pytest.MonkeyPatch
) -> None:
    zone.drop(MITBIH, ["100.atr", "100.hea"])
    real_check = check_record

    def arrive_then_check(root: Path, header_rel: str, **kwargs: Any) -> Any:
        zone.drop(MITBIH, ["100.dat"])  # lands after the folder was listed, before the check
        return real_check(root, header_rel, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr("pipeline.landing.take.check_record", arrive_then_check)
        category, reason = left_of(zone.take(MITBIH))["100"]
    assert (category, reason) == ("settling", "100.dat appeared while the folder was scanned; taken next run")
    assert not zone.dest(MITBIH).exists() or not any(zone.dest(MITBIH).iterdir())
    assert keys(zone.take(MITBIH).taken) == ["100"]


def test_an_unrequired_annotation_after_its_record_was_taken_is_an_orphan_saying_so(zone: Zone) -> None:
    kind = Kind("mitbih", "wfdb", "mitbih", "100", "100.dat")  # no annotation required
    zone.drop(kind)
    assert keys(zone.take(kind).taken) == ["100"]
    zone.drop(MITBIH, ["100.atr"])
    category, reason = left_of(zone.take(kind))["100.atr"]
    assert category == "orphan"
    assert reason.startswith("its record 100 was taken at 2025-06-15T15:06:40Z by run ")


# --------------------------------------------------------------------------- ledger and report


def test_a_ledger_of_another_schema_version_is_an_error_naming_the_file(zone: Zone) -> None:
    zone.take(MITBIH)
    with sqlite3.connect(zone.ledger) as conn:
        conn.execute("UPDATE ledger_meta SET value = '99' WHERE key = 'schema_version'")
    conn.close()
    with pytest.raises(LedgerVersionError, match=f"{zone.ledger}: landing ledger schema version 99"):
        zone.take(MITBIH)
    other = zone.tmp / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    with pytest.raises(LedgerVersionError, match="not a landing ledger"):
        LandingLedger(other)


def test_ledger_refuses_a_second_row_for_a_record(zone: Zone) -> None:
    zone.drop(CINC)
    zone.take(CINC)
    with LandingLedger(zone.ledger) as ledger:
        entry = ledger.get("cinc2021", "E00271")
        assert entry is not None
        with pytest.raises(LedgerError, match="already recorded"):
            ledger.add(entry)
        found = ledger.find_file("cinc2021", "E00271.mat")
        assert found is not None and found.record_key == "E00271"


def test_report_json_and_markdown(zone: Zone) -> None:
    zone.drop(MITBIH)
    zone.drop(CPSC, ["data_8_2.dat"])
    report = zone.take(MITBIH, CPSC, run_id="nightly-1")
    data = json.loads(json.dumps(report.to_json()))
    assert data["run_id"] == "nightly-1" and data["dry_run"] is False
    assert data["counts"]["taken"] == 1 and data["counts"]["orphan"] == 1 and data["counts"]["conflict"] == 0
    assert data["taken"][0]["files"][0] == {
        "path": "100.dat",
        "dest": str(zone.dest(MITBIH) / "100.dat"),
        "sha256": sha256_file(zone.shared / "mitbih" / "100.dat"),
        "size": 1_950_000,
    }
    assert data["left"] == [
        {
            "source": "cpsc2021",
            "item": "data_8_2.dat",
            "category": "orphan",
            "reason": "waiting for its header data_8_2.hea",
            "files": ["data_8_2.dat"],
        }
    ]
    text = report.markdown()
    total = sum((zone.shared / "mitbih" / n).stat().st_size for n in MITBIH.names)
    assert f"| mitbih | 100 | 3 | {total:,} |  |" in text
    assert "| cpsc2021 | data_8_2.dat | orphan | waiting for its header data_8_2.hea |" in text
