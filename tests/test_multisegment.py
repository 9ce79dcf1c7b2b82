"""Multi-segment WFDB records read as one recording: the shared MIMIC records (fixed layout ``041s``,
variable layout ``s25047``) against wfdb-python, generated records (``wfdb.wrsamp``/``wrheader``)
for gaps, signals matched by name, annotations and the NaN quality gate, damaged ones refused with
a reason, and the ambiguous-header rule (the header named like the data file reads it).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import wfdb

from pipeline.core.records import ReadError, Record, Rejection
from pipeline.signal.preprocess import SignalPlan, prepare
from pipeline.sources.base import list_files
from pipeline.sources.wfdb_folder import WfdbFolderReader
from tests.multisegment_support import fixed_record, ramp, variable_record, write_master, write_segment
from tests.wfdb_folder_support import accounted_files, read_all, records_of, unit_named

PART_OF = "part of multi-segment record"


@pytest.mark.shared_data
def test_the_shared_fixed_layout_record_is_one_500_hz_recording_of_both_segments(shared_data: Path) -> None:
    folder = shared_data / "wfdb_misc" / "multi-segment" / "041s"
    reader = WfdbFolderReader("ms", folder)
    disc = reader.discover()
    assert [u.key for u in disc.units] == ["041s"]
    assert sorted(disc.units[0].files) == sorted(list_files(folder))
    assert {r.item: r.reason.startswith(PART_OF) for r in disc.rejected} == {
        "041s01.hea": True,
        "041s02.hea": True,
    }
    (record,) = records_of(read_all(reader, disc.units[0]))
    assert record.leads == ("III", "I", "V") and record.fs_hz == 500.0 and record.signal.shape == (3, 8000)
    parts = [wfdb.rdrecord(str(folder / s), smooth_frames=False, return_res=64) for s in ("041s01", "041s02")]
    expected = np.stack([np.concatenate([p.e_p_signal[i] for p in parts]) for i in range(3)])
    np.testing.assert_array_equal(record.signal, expected.astype(np.float32))


@pytest.mark.shared_data
def test_the_shared_variable_layout_record_matches_wfdb_with_its_gaps_as_nan(shared_data: Path) -> None:
    folder = shared_data / "wfdb_misc" / "multi-segment" / "s25047"
    reader = WfdbFolderReader("ms", folder)
    disc = reader.discover()
    master = "s25047-2704-05-04-10-44"
    assert [u.key for u in disc.units] == [master, f"{master}n"]
    parts = {r.item for r in disc.rejected if r.reason.startswith(PART_OF)}
    assert parts == {p.name for p in folder.glob("3234460_*.hea")}  # the layout header and 18 segments
    assert accounted_files(disc) == list_files(folder)
    (record,) = records_of(read_all(reader, unit_named(disc, master)))
    assert record.leads == ("II", "V") and record.fs_hz == 125.0 and record.meta["dropped_channels"] == "ABP"
    expected = wfdb.rdrecord(str(folder / master), m2s=True, return_res=64).p_signal[:, :2].T
    np.testing.assert_array_equal(record.signal, expected.astype(np.float32))
    assert 0.04 < np.isnan(record.signal).mean() < 0.06


def test_a_variable_layout_fills_gaps_and_missing_signals_with_nan_and_matches_names(tmp_path: Path) -> None:
    variable_record(tmp_path)
    reader = WfdbFolderReader("g", tmp_path)
    disc = reader.discover()
    assert [u.key for u in disc.units] == ["ms"]
    assert accounted_files(disc) == list_files(tmp_path)
    (record,) = records_of(read_all(reader, disc.units[0]))
    assert record.leads == ("II", "V") and record.signal.shape == (2, 200) and record.fs_hz == 100.0
    np.testing.assert_allclose(record.signal[:, :100], ramp(100, 2).T / 100.0, rtol=1e-6)
    assert np.isnan(record.signal[:, 100:130]).all()
    seg1 = ramp(50, 2, 1000)  # stored as V, II: matched by name, not by position
    np.testing.assert_allclose(record.signal[0, 130:180], seg1[:, 1] / 100.0)
    np.testing.assert_allclose(record.signal[1, 130:180], seg1[:, 0] / 100.0)
    assert np.isnan(record.signal[0, 180:]).all() and not np.isnan(record.signal[1, 180:]).any()
    expected = wfdb.rdrecord(str(tmp_path / "ms"), m2s=True, return_res=64).p_signal.T
    np.testing.assert_allclose(record.signal, expected, rtol=1e-6)


def test_a_fixed_layout_record_concatenates_its_segments(tmp_path: Path) -> None:
    fixed_record(tmp_path)
    reader = WfdbFolderReader("g", tmp_path)
    (record,) = records_of(read_all(reader, unit_named(reader.discover(), "fx")))
    expected = np.concatenate([ramp(60, 2), ramp(40, 2, 500)]).T / 100.0
    np.testing.assert_allclose(record.signal, expected, rtol=1e-6)


def test_the_masters_annotations_are_attached_and_windows_cut_across_segments(tmp_path: Path) -> None:
    variable_record(tmp_path)
    wfdb.wrann("ms", "atr", np.array([10, 110, 150, 190]), ["N", "V", "A", "N"], write_dir=str(tmp_path))
    reader = WfdbFolderReader("g", tmp_path, window_s=0.5)
    disc = reader.discover()
    assert "ms.atr" in disc.units[0].files
    items = read_all(reader, disc.units[0])
    records = [i for i in items if isinstance(i, Record)]
    assert [(r.record_id, [label.code for label in r.raw_labels]) for r in records] == [
        ("g:ms/w000", ["N"]),
        ("g:ms/w050", []),
        ("g:ms/w100", ["V"]),
        ("g:ms/w150", ["A", "N"]),
    ]


def _plan(max_nan_fraction: float) -> SignalPlan:
    return SignalPlan(
        leads=("II", "V"),
        lead_aliases=(),
        fs_hz=None,
        length=200,
        crop="start",
        baseline_hz=None,
        notch_hz=None,
        notch_q=30.0,
        bandpass_hz=None,
        filter_order=2,
        normalise="none",
        max_nan_fraction=max_nan_fraction,
        flat_ptp_mv=0.0,
        reject_flat=False,
        min_duration_s=0.0,
    )


def test_gaps_reach_the_nan_quality_gate_downstream(tmp_path: Path) -> None:
    variable_record(tmp_path)
    reader = WfdbFolderReader("g", tmp_path)
    (record,) = records_of(read_all(reader, reader.discover().units[0]))
    assert np.isnan(record.signal).mean() == pytest.approx(80 / 400)  # the 30-sample gap + II absent in seg2
    refused = prepare(record, _plan(0.1))
    assert isinstance(refused, Rejection) and "20.0% of samples are NaN" in refused.reason
    kept = prepare(record, _plan(0.25))
    assert not isinstance(kept, Rejection) and not np.isnan(kept.x).any()


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("missing_segment", r"segment seg1\.hea is missing"),
        ("layout_mismatch", r"do not match the layout"),
        ("segment_longer", r"segment holds 50 samples but the master ms lists 40"),
        ("fixed_mismatch", r"expected the same signals in order"),
    ],
)
def test_a_damaged_multi_segment_record_is_refused_with_a_reason_while_the_rest_lands(
    tmp_path: Path, damage: str, reason: str
) -> None:
    variable_record(tmp_path)
    fixed_record(tmp_path)
    if damage == "missing_segment":
        (tmp_path / "seg1.hea").unlink()
    elif damage == "layout_mismatch":
        write_segment(tmp_path, "seg1", ["V", "AVR"], ramp(50, 2))
    elif damage == "segment_longer":
        segments = [("ms_layout", 0), ("seg0", 100), ("~", 30), ("seg1", 40), ("seg2", 20)]
        write_master(tmp_path, "ms", 2, segments)
    else:
        write_segment(tmp_path, "fx_1", ["II", "I"], ramp(40, 2))
    reader = WfdbFolderReader("g", tmp_path)
    disc = reader.discover()
    assert accounted_files(disc) == list_files(tmp_path)
    outcomes = {r.item: r.reason for r in disc.rejected}
    for unit in disc.units:
        try:
            outcomes[unit.key] = "ok" if records_of(read_all(reader, unit)) else "none"
        except ReadError as exc:  # the quarantine reason
            outcomes[unit.key] = str(exc)
    damaged, intact = ("fx", "ms") if damage == "fixed_mismatch" else ("ms", "fx")
    assert outcomes[intact] == "ok"
    assert re.search(reason, outcomes.get(damaged, outcomes.get(f"{damaged}.hea", ""))), outcomes
    # its segments are never read as records of their own
    assert set(outcomes) & {"seg0", "seg2", "fx_0"} == set()


@pytest.mark.shared_data
def test_of_two_headers_naming_one_data_file_the_one_named_like_it_reads_it(
    shared_data: Path, tmp_path: Path
) -> None:
    for suffix in (".hea", ".dat", ".atr"):
        shutil.copy2(shared_data / "mitbih" / f"100{suffix}", tmp_path / f"100{suffix}")
    lines = (tmp_path / "100.hea").read_text().splitlines()
    lines[0] = "100-no-len 2 360"
    (tmp_path / "100-no-len.hea").write_text("\n".join(lines) + "\n")  # sorts before 100.hea
    reader = WfdbFolderReader("mit", tmp_path)
    disc = reader.discover()
    assert [u.key for u in disc.units] == ["100"] and "100.atr" in disc.units[0].files
    (dup,) = disc.rejected
    assert dup.item == "100-no-len.hea" and dup.category == "duplicate" and "record 100 reads" in dup.reason
    (record,) = records_of(read_all(reader, disc.units[0]))
    assert record.signal.shape == (2, 650_000) and any(label.code == "N" for label in record.raw_labels)
