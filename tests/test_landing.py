"""The landing-zone take on real records: half-written files are never taken half, arrival order
does not matter, every take is exactly once, and what is left is reported with its category and
reason. Taken records are byte-identical at the destination and the destination reader discovers
and reads each as one unit. Crash windows, the lock, dry runs, RECORDS files and the ledger are in
test_landing_recovery.py; shared helpers in tests/landing_support.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline.core.fs import sha256_file
from pipeline.landing.ledger import (
    LandingLedger,
)
from tests.landing_support import (
    CINC,
    CPSC,
    KINDS,
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


# --------------------------------------------------------------------------- half-written files


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.source)
def test_half_written_signal_file_is_never_taken_then_the_whole_record_is(zone: Zone, kind: Kind) -> None:
    zone.drop(kind)
    full = zone.original(kind, kind.data_file)
    path = zone.landed(kind, kind.data_file)
    for cut in (0, 1, len(full) // 2, len(full) - 1):
        path.write_bytes(full[:cut])
        age(path, 3600)
        report = zone.take(kind)
        assert report.taken == ()
        assert left_of(report)[kind.record][0] == "incomplete", cut
        assert kind.data_file in left_of(report)[kind.record][1]
        assert not zone.dest(kind).exists() or not any(zone.dest(kind).rglob("*.hea"))
    path.write_bytes(full)
    age(path, 0)  # completed "now": settling first
    report = zone.take(kind)
    assert left_of(report)[kind.record][0] == "settling"
    assert "waits until unchanged for settle_s=30 s" in left_of(report)[kind.record][1]
    report = zone.take(kind, now=NOW + SETTLE_S + 1)
    assert keys(report.taken) == [kind.record]
    assert report.left == ()
    assert_taken_intact(zone, kind)


@pytest.mark.parametrize("kind", [MITBIH, CINC, PTB], ids=lambda k: k.source)
def test_header_cut_mid_signal_line_is_incomplete_until_written_whole(zone: Zone, kind: Kind) -> None:
    zone.drop(kind)
    header = zone.landed(kind, kind.names[-1])
    whole = header.read_bytes()  # bytes: the PTB header has CRLF line endings
    second_line_end = whole.index(b"\n", whole.index(b"\n") + 1)
    header.write_bytes(whole[: second_line_end + 12])
    age(header, 3600)
    report = zone.take(kind)
    category, reason = left_of(report)[kind.record]
    assert category == "incomplete"
    assert "ends mid-line" in reason
    header.write_bytes(whole)
    age(header, 3600)
    assert keys(zone.take(kind).taken) == [kind.record]
    assert_taken_intact(zone, kind)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.source)
def test_preallocated_zero_filled_signal_file_is_caught_by_the_checksum(zone: Zone, kind: Kind) -> None:
    zone.drop(kind)
    path = zone.landed(kind, kind.data_file)
    full = zone.original(kind, kind.data_file)
    keep = 24 if kind.data_file.endswith(".mat") else 0
    path.write_bytes(full[:keep] + bytes(len(full) - keep))
    age(path, 3600)
    category, reason = left_of(zone.take(kind))[kind.record]
    assert category == "incomplete"
    assert f"{kind.data_file}: checksum of signal" in reason
    path.write_bytes(full)
    age(path, 3600)
    assert keys(zone.take(kind).taken) == [kind.record]
    assert_taken_intact(zone, kind)


def test_missing_annotation_is_incomplete_until_it_arrives(zone: Zone) -> None:
    zone.drop(MITBIH, ["100.dat", "100.hea"])
    category, reason = left_of(zone.take(MITBIH))["100"]
    assert (category, reason) == ("incomplete", "100.atr: missing; this source requires the annotation file")
    zone.drop(MITBIH, ["100.atr"])
    assert keys(zone.take(MITBIH).taken) == ["100"]
    record = assert_taken_intact(zone, MITBIH)
    assert "N" in {label.code for label in record.raw_labels}


def test_temporary_upload_names_are_never_taken(zone: Zone) -> None:
    zone.drop(MITBIH, ["100.atr", "100.hea"])
    part = zone.landed(MITBIH, "100.dat.part")
    shutil.copyfile(zone.shared / "mitbih" / "100.dat", part)
    age(part, 3600)
    (zone.root / "mitbih" / ".DS_Store").write_bytes(b"x")
    (zone.root / "mitbih" / "notes.txt~").write_bytes(b"x")
    report = zone.take(MITBIH)
    left = left_of(report)
    assert left["100"][0] == "incomplete"
    assert left["100.dat.part"] == (
        "settling",
        "temporary (.part) file or folder; ignored, never taken on its own",
    )
    assert left[".DS_Store"][0] == "settling"
    assert left["notes.txt~"][0] == "settling"
    part.rename(zone.landed(MITBIH, "100.dat"))
    assert keys(zone.take(MITBIH).taken) == ["100"]


# --------------------------------------------------------------------------- arrival order


def test_data_before_header_waits_as_orphan(zone: Zone) -> None:
    zone.drop(CPSC, ["data_8_2.dat", "data_8_2.atr"])
    report = zone.take(CPSC)
    assert left_of(report) == {
        "data_8_2.atr": ("orphan", "waiting for its header data_8_2.hea"),
        "data_8_2.dat": ("orphan", "waiting for its header data_8_2.hea"),
    }
    zone.drop(CPSC, ["data_8_2.hea"])
    assert keys(zone.take(CPSC).taken) == ["data_8_2"]
    assert_taken_intact(zone, CPSC)


def test_header_before_data_waits_as_incomplete(zone: Zone) -> None:
    zone.drop(PTB, ["s0010_re.hea", "s0010_re.dat"])
    category, reason = left_of(zone.take(PTB))["patient001/s0010_re"]
    assert category == "incomplete"
    assert reason == "patient001/s0010_re.xyz: missing (named by patient001/s0010_re.hea)"
    zone.drop(PTB, ["s0010_re.xyz"])
    assert keys(zone.take(PTB).taken) == ["patient001/s0010_re"]
    assert_taken_intact(zone, PTB)


# --------------------------------------------------------------------------- exactly once


def test_second_take_takes_nothing(zone: Zone) -> None:
    for kind in KINDS:
        zone.drop(kind)
    first = zone.take()
    assert sorted(keys(first.taken)) == sorted(k.record for k in KINDS)
    assert first.counts["taken"] == 4 and first.left == ()
    second = zone.take(now=NOW + 10)
    assert (second.taken, second.already_taken, second.left) == ((), (), ())
    with LandingLedger(zone.ledger) as ledger:
        assert [(e.source, e.record_key) for e in ledger.entries()] == sorted(
            (k.source, k.record) for k in KINDS
        )
        entry = ledger.get("mitbih", "100")
        assert entry is not None and entry.run_id == first.run_id
        assert [f.rel_path for f in entry.files] == ["100.dat", "100.atr", "100.hea"]
        assert entry.files[0].sha256 == sha256_file(zone.shared / "mitbih" / "100.dat")
        assert entry.files[0].size == 1_950_000
        assert entry.files[0].dest_path == str(zone.dest(MITBIH) / "100.dat")
    for kind in KINDS:
        assert_taken_intact(zone, kind)


def test_identical_record_dropped_again_is_already_taken_and_removed(zone: Zone) -> None:
    zone.drop(CINC)
    first = zone.take(CINC, run_id="run-1")
    zone.drop(CINC)
    report = zone.take(CINC, now=NOW + 60)
    assert keys(report.already_taken) == ["E00271"]
    assert report.already_taken[0].run_id == "run-1"
    assert report.taken == () and report.left == ()
    assert not any((zone.root / "cinc2021").iterdir())
    assert report.already_taken[0].files == first.taken[0].files


def test_a_taken_record_gone_from_the_destination_keeps_its_landing_copy(zone: Zone) -> None:
    zone.drop(CINC)
    zone.take(CINC, run_id="run-1")
    (zone.dest(CINC) / "E00271.mat").unlink()
    zone.drop(CINC)
    category, reason = left_of(zone.take(CINC, now=NOW + 60))["E00271"]
    assert category == "conflict"
    assert (
        f"{zone.dest(CINC) / 'E00271.mat'} is gone from the destination; the landing copy is kept" in reason
    )
    assert all(zone.landed(CINC, n).exists() for n in CINC.names)


def test_different_content_under_a_taken_key_is_a_conflict_and_raw_data_is_untouched(zone: Zone) -> None:
    zone.drop(CINC)
    zone.take(CINC, run_id="run-1")
    before = {p.name: p.read_bytes() for p in zone.dest(CINC).iterdir()}
    zone.drop(CINC)
    header = zone.landed(CINC, "E00271.hea")
    header.write_text(header.read_text().replace("#Dx: 59118001", "#Dx: 426783006"))
    age(header, 3600)
    report = zone.take(CINC, now=NOW + 60)
    category, reason = left_of(report)["E00271"]
    assert category == "conflict"
    assert "was taken at 2025-06-15T15:06:40Z by run run-1 with different content" in reason
    assert "E00271.hea: sha256" in reason
    assert {p.name: p.read_bytes() for p in zone.dest(CINC).iterdir()} == before
    assert header.exists() and zone.landed(CINC, "E00271.mat").exists()


def test_same_cinc_name_in_another_folder_is_a_conflict(zone: Zone) -> None:
    zone.drop(CINC)
    zone.take(CINC)
    for name in CINC.names:
        path = zone.root / "cinc2021" / "georgia" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(zone.shared / "cinc2021" / name, path)
        age(path, 3600)
    category, reason = left_of(zone.take(CINC))["georgia/E00271"]
    assert category == "conflict"
    assert "record name E00271 already exists as E00271 in the destination" in reason


def test_a_destination_file_with_other_content_is_never_overwritten(zone: Zone) -> None:
    zone.drop(MITBIH)
    zone.dest(MITBIH).mkdir(parents=True)
    (zone.dest(MITBIH) / "100.dat").write_bytes(b"other")
    category, reason = left_of(zone.take(MITBIH))["100"]
    assert category == "conflict"
    assert "already exists with different content" in reason
    assert (zone.dest(MITBIH) / "100.dat").read_bytes() == b"other"
    assert not (zone.dest(MITBIH) / "100.hea").exists()
