"""The generic WFDB-folder reader on assorted real WFDB records (non-voltage channels; multi-rate
and multi-segment records have their own test modules) and on hand-built folders for the RECORDS,
unreadable-file, NaN-window, channel-dropping and options rules.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.records import ReadError, Record, Rejection
from pipeline.sources.base import list_files
from pipeline.sources.wfdb_folder import WfdbFolderReader
from tests.wfdb_folder_support import (
    CPSC_PATIENT,
    accounted_files,
    copy_records,
    read_all,
    records_of,
    unit_named,
    wfdb_physical,
    write_record,
)


@pytest.fixture(scope="module")
def cpsc(shared_data: Path) -> Path:
    return shared_data / "cpsc2021"


# ------------------------------------------------------------------ assorted WFDB records


@pytest.fixture(scope="module")
def misc(shared_data: Path) -> Path:
    return shared_data / "wfdb_misc"


SINGLE_SEGMENT = ["3000003_0003", "a103l", "v102s"]


@pytest.mark.shared_data
def test_misc_records_drop_non_voltage_channels_and_equal_wfdb(misc: Path) -> None:
    reader = WfdbFolderReader("misc", misc)
    discovery = reader.discover()
    assert accounted_files(discovery) == list_files(misc)
    got = {key: records_of(read_all(reader, unit_named(discovery, key)))[0] for key in SINGLE_SEGMENT}
    kept = {"3000003_0003": [0, 1], "a103l": [0, 1], "v102s": [0, 1]}
    for key, record in got.items():
        np.testing.assert_array_equal(record.signal, wfdb_physical(misc / key)[kept[key]])
        assert record.leads == ("II", "V")
    assert got["a103l"].meta["dropped_channels"] == "PLETH"
    assert got["v102s"].meta["dropped_channels"] == "PLETH,RESP"
    assert "dropped_channels" not in got["3000003_0003"].meta
    assert [label.code for label in got["a103l"].raw_labels] == ["Asystole", "False alarm"]
    assert [label.code for label in got["v102s"].raw_labels] == ["Ventricular_Tachycardia", "False alarm"]
    assert got["3000003_0003"].raw_labels == ()
    assert got["3000003_0003"].signal.shape == (2, 1028) and got["3000003_0003"].fs_hz == 125.0


@pytest.mark.shared_data
def test_misc_voltage_only_off_keeps_every_channel_and_names_units(misc: Path) -> None:
    reader = WfdbFolderReader("misc", misc, voltage_only=False, header_labels=False)
    (record,) = records_of(read_all(reader, unit_named(reader.discover(), "v102s")))
    assert record.leads == ("II", "V", "PLETH", "RESP")
    assert record.meta["units"] == "mV,mV,NU,NU"
    assert record.raw_labels == ()
    np.testing.assert_array_equal(record.signal, wfdb_physical(misc / "v102s"))


# ------------------------------------------------------------------ RECORDS and unreadable files


@pytest.mark.shared_data
def test_records_file_decides_the_records_and_every_file_is_accounted_for(cpsc: Path, tmp_path: Path) -> None:
    root = tmp_path / "cpsc"
    copy_records(cpsc, root, ["data_8_2", "data_8_4", "data_35_6"])
    (root / "RECORDS").write_text("data_8_2\ndata_8_4\ndata_99_1\n")
    (root / "ANNOTATORS").write_text("atr\treference annotation\n")
    (root / "README.txt").write_text("notes\n")
    (root / "data_8_2.qrs").write_bytes(b"\x00\x00")
    (root / "stray.dat").write_bytes(b"\x00" * 10)
    discovery = WfdbFolderReader("cpsc", root).discover()
    assert [u.key for u in discovery.units] == ["data_8_2", "data_8_4"]
    assert sorted(discovery.metadata_files) == ["ANNOTATORS", "README.txt", "RECORDS"]
    reasons = {r.item: r for r in discovery.rejected}
    for ext in ("hea", "dat", "atr"):
        assert "not listed in RECORDS" in reasons[f"data_35_6.{ext}"].reason
        assert reasons[f"data_35_6.{ext}"].category == "excluded"
    assert "not read" in reasons["data_8_2.qrs"].reason
    assert "no WFDB header" in reasons["stray.dat"].reason
    assert reasons["data_99_1"].files == () and "does not exist" in reasons["data_99_1"].reason
    assert accounted_files(discovery) == list_files(root)
    # Without the RECORDS file every header found by the glob is a record.
    assert len(WfdbFolderReader("cpsc", root, use_records_file=False).discover().units) == 3


@pytest.mark.shared_data
def test_records_file_in_a_subfolder_and_folder_entries(cpsc: Path, tmp_path: Path) -> None:
    copy_records(cpsc, tmp_path / "p08", ["data_8_2", "data_8_4"])
    copy_records(cpsc, tmp_path / "p35", ["data_35_6"])
    (tmp_path / "RECORDS").write_text("p35/\n")
    (tmp_path / "p08" / "RECORDS").write_text("data_8_4\n")
    discovery = WfdbFolderReader("nested", tmp_path, patient_regex=CPSC_PATIENT).discover()
    assert [u.key for u in discovery.units] == ["p08/data_8_4", "p35/data_35_6"]
    assert {r.item for r in discovery.rejected} == {
        "p08/data_8_2.hea",
        "p08/data_8_2.dat",
        "p08/data_8_2.atr",
    }
    assert accounted_files(discovery) == list_files(tmp_path)


@pytest.mark.shared_data
def test_truncated_dat_raises_read_error_while_other_records_read(cpsc: Path, tmp_path: Path) -> None:
    copy_records(cpsc, tmp_path, ["data_8_2", "data_8_4", "data_35_6"])
    dat = tmp_path / "data_8_4.dat"
    dat.write_bytes(dat.read_bytes()[:1000])
    reader = WfdbFolderReader("cpsc", tmp_path, window_s=10.0)
    discovery = reader.discover()
    assert len(discovery.units) == 3
    with pytest.raises(ReadError, match="data_8_4.dat"):
        read_all(reader, unit_named(discovery, "data_8_4"))
    for key in ("data_8_2", "data_35_6"):
        assert records_of(read_all(reader, unit_named(discovery, key)))


@pytest.mark.shared_data
def test_header_naming_a_missing_or_escaping_signal_file_is_rejected(cpsc: Path, tmp_path: Path) -> None:
    copy_records(cpsc, tmp_path, ["data_8_4", "data_35_6"])
    (tmp_path / "data_35_6.dat").unlink()
    hea = tmp_path / "data_8_4.hea"
    hea.write_text(hea.read_text().replace("data_8_4.dat", "../../etc/passwd"))
    discovery = WfdbFolderReader("cpsc", tmp_path).discover()
    assert discovery.units == ()
    reasons = {r.item: r.reason for r in discovery.rejected}
    assert "missing" in reasons["data_35_6.hea"]
    assert "escapes" in reasons["data_8_4.hea"]
    assert "rejected" in reasons["data_8_4.dat"] and "rejected" in reasons["data_35_6.atr"]
    assert accounted_files(discovery) == list_files(tmp_path)


# ------------------------------------------------------------------ hand-built records


def test_all_nan_window_is_rejected_and_the_other_windows_still_yield(tmp_path: Path) -> None:
    digital = np.tile(np.arange(1000, dtype=np.int16), (2, 1))
    digital[:, 300:600] = -32768  # format 16's invalid-sample code
    digital[0, 600:700] = -32768  # one channel invalid: the window is still usable
    write_record(tmp_path, "rec", digital, ["1000/mV 16 0 0 0 0 I", "500/mV 16 0 0 0 0 II"])
    reader = WfdbFolderReader("hand", tmp_path, window_s=1.0)
    items = read_all(reader, unit_named(reader.discover(), "rec"))
    rejected = [i for i in items if isinstance(i, Rejection)]
    kept = [i for i in items if isinstance(i, Record)]
    assert [r.item for r in rejected] == ["hand:rec/w0300", "hand:rec/w0400", "hand:rec/w0500"]
    assert all("NaN" in r.reason and r.files == ("rec.hea", "rec.dat") for r in rejected)
    assert [r.provenance.window for r in kept] == [(0, 100), (100, 200), (200, 300)] + [
        (s, s + 100) for s in range(600, 1000, 100)
    ]
    assert np.isnan(kept[3].signal[0]).all() and not np.isnan(kept[3].signal[1]).any()
    np.testing.assert_allclose(kept[1].signal[1], np.arange(100, 200) / 500.0, rtol=1e-6)


def test_record_shorter_than_a_window_is_excluded_unless_partial_windows_are_kept(tmp_path: Path) -> None:
    write_record(tmp_path, "short", np.ones((1, 250), dtype=np.int16), ["200/mV 16 0 0 0 0 II"])
    items = read_all(
        reader := WfdbFolderReader("hand", tmp_path, window_s=3.0), unit_named(reader.discover(), "short")
    )
    assert len(items) == 1 and isinstance(items[0], Rejection) and items[0].category == "excluded"
    partial = WfdbFolderReader("hand", tmp_path, window_s=2.0, keep_partial=True)
    windows = records_of(read_all(partial, unit_named(partial.discover(), "short")))
    assert [w.provenance.window for w in windows] == [(0, 200), (200, 250)]
    assert windows[1].signal.shape == (1, 50)


def test_record_without_a_voltage_channel_raises_read_error(tmp_path: Path) -> None:
    write_record(
        tmp_path, "pleth", np.ones((2, 100), dtype=np.int16), ["100/NU 16 0 0 0 0 PLETH", "10/mmHg 16"]
    )
    reader = WfdbFolderReader("hand", tmp_path)
    with pytest.raises(ReadError, match=r"pleth.hea: no voltage channel .*PLETH \[NU\]"):
        read_all(reader, unit_named(reader.discover(), "pleth"))
    everything = WfdbFolderReader("hand", tmp_path, voltage_only=False)
    (record,) = records_of(read_all(everything, unit_named(everything.discover(), "pleth")))
    assert record.meta["units"] == "NU,mmHg"


def test_patient_regex_without_match_gives_no_patient(tmp_path: Path) -> None:
    write_record(tmp_path, "xyz", np.ones((1, 100), dtype=np.int16), ["200/mV 16 0 0 0 0 II"])
    reader = WfdbFolderReader("hand", tmp_path, patient_regex=CPSC_PATIENT)
    (record,) = records_of(read_all(reader, unit_named(reader.discover(), "xyz")))
    assert record.patient_id is None


def test_invalid_options_are_refused() -> None:
    with pytest.raises(ValueError, match="exactly one group"):
        WfdbFolderReader("x", Path(), patient_regex=r"data_\d+")
    with pytest.raises(ValueError, match="not a valid regular expression"):
        WfdbFolderReader("x", Path(), patient_regex=r"(")
    with pytest.raises(ValueError, match="hop_s is set but window_s is not"):
        WfdbFolderReader("x", Path(), hop_s=1.0)
    with pytest.raises(ValueError, match="window_s\n.*greater than 0"):
        WfdbFolderReader("x", Path(), window_s=0.0)
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        WfdbFolderReader("x", Path(), window=10.0)
    with pytest.raises(ValueError, match="relative to the root"):
        WfdbFolderReader("x", Path(), pattern="../**/*.hea")
    with pytest.raises(ValueError, match="bare extension"):
        WfdbFolderReader("x", Path(), annotation_ext="../atr")


def test_reader_is_picklable_with_its_options(tmp_path: Path) -> None:
    reader = WfdbFolderReader("x", tmp_path, window_s=10.0, hop_s=5.0, patient_regex=CPSC_PATIENT)
    # Round trip of bytes this test has just written, as a worker process would receive them.
    clone = pickle.loads(pickle.dumps(reader))  # noqa: S301  # bytes pickled here, not untrusted input
    assert clone.options == reader.options
    assert (clone.options.window_s, clone.options.hop, clone.options.patient_regex, clone.reader_id) == (
        10.0,
        5.0,
        CPSC_PATIENT,
        "wfdb@3",
    )
