"""The generic WFDB-folder reader on real MIT-BIH and CPSC 2021 records: discovery, whole records and
windows equal to wfdb-python, labels from annotations and header comments. Assorted records and
the RECORDS, NaN-window and channel-dropping rules are in ``test_reader_wfdb_folder_rules.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import wfdb

from pipeline.sources.base import list_files
from pipeline.sources.wfdb_folder import WfdbFolderReader
from pipeline.sources.wfdb_text import header_comment_labels
from tests.wfdb_folder_support import (
    CPSC_PATIENT,
    accounted_files,
    expected_window_labels,
    provenance_of,
    read_all,
    records_of,
    unit_named,
    wfdb_physical,
)


@pytest.fixture(scope="module")
def cpsc(shared_data: Path) -> Path:
    return shared_data / "cpsc2021"


# ------------------------------------------------------------------ MIT-BIH


@pytest.fixture(scope="module")
def mitbih(shared_data: Path) -> Path:
    return shared_data / "mitbih"


@pytest.fixture(scope="module")
def mitbih_100_p_signal(mitbih: Path) -> npt.NDArray[np.float32]:
    return wfdb_physical(mitbih / "100")


@pytest.mark.shared_data
def test_mitbih_discovery_has_one_unit_per_record_on_disk(mitbih: Path) -> None:
    discovery = WfdbFolderReader("mitbih", mitbih).discover()
    on_disk = sorted(p.stem for p in mitbih.glob("*.hea"))
    assert [u.key for u in discovery.units] == on_disk == ["100", "104", "106", "108"]
    # SOURCES.md (f): every record has its reference annotation file.
    for unit in discovery.units:
        assert unit.files == (f"{unit.key}.hea", f"{unit.key}.dat", f"{unit.key}.atr")
    assert discovery.rejected == ()
    assert accounted_files(discovery) == list_files(mitbih)


@pytest.mark.shared_data
def test_mitbih_whole_record_labels_drop_the_nul_padding_of_aux_strings(mitbih: Path) -> None:
    reader = WfdbFolderReader("mitbih", mitbih)
    padded = 0
    for unit in reader.discover().units:
        ann = wfdb.rdann(str(mitbih / unit.key), "atr")
        padded += sum(1 for note in ann.aux_note if note.endswith("\x00"))
        (record,) = records_of(read_all(reader, unit))
        codes = list(dict.fromkeys(label.code for label in record.raw_labels))
        assert codes == expected_window_labels(ann, 0, record.signal.shape[1], ())
        assert not any("\x00" in code for code in codes)
    assert padded > 0  # SOURCES.md (f): WFDB pads odd-length aux strings with a NUL byte


@pytest.mark.shared_data
def test_mitbih_100_whole_record_equals_wfdb_and_carries_all_annotation_labels(
    mitbih: Path, mitbih_100_p_signal: npt.NDArray[np.float32]
) -> None:
    reader = WfdbFolderReader("mitbih", mitbih)
    unit = unit_named(reader.discover(), "100")
    (record,) = records_of(read_all(reader, unit))
    assert record.record_id == "mitbih:100"
    assert record.signal.dtype == np.float32 and record.signal.shape == (2, 650_000)
    np.testing.assert_array_equal(record.signal, mitbih_100_p_signal)
    assert record.fs_hz == 360.0
    assert record.leads == ("MLII", "V5")
    assert record.patient_id == "100"
    # The age/sex line and the medication line are not labels.
    assert list(dict.fromkeys(label.code for label in record.raw_labels)) == ["N", "A", "V", "(N"]
    assert record.provenance == provenance_of(unit)


@pytest.mark.shared_data
def test_mitbih_100_windows_count_labels_and_signal_match_wfdb(
    mitbih: Path, mitbih_100_p_signal: npt.NDArray[np.float32]
) -> None:
    reader = WfdbFolderReader("mitbih", mitbih, window_s=10.0, hop_s=5.0)
    unit = unit_named(reader.discover(), "100")
    windows = records_of(read_all(reader, unit))
    win, hop, n = 3600, 1800, 650_000
    assert len(windows) == (n - win) // hop + 1
    ann = wfdb.rdann(str(mitbih / "100"), "atr")
    assert len(ann.sample) == 2274
    for i, rec in enumerate(windows):
        start, stop = i * hop, i * hop + win
        assert rec.record_id == f"mitbih:100/w{start:06d}"
        assert rec.provenance.window == (start, stop)
        assert rec.provenance.parent_id == "mitbih:100"
        assert rec.provenance.files == provenance_of(unit).files
        assert (
            rec.meta.items()
            >= {
                "parent": "mitbih:100",
                "window_start": str(start),
                "window_stop": str(stop),
                "fs_hz": "360.0",
            }.items()
        )
        assert list(dict.fromkeys(label.code for label in rec.raw_labels)) == expected_window_labels(
            ann, start, stop, ()
        )
    for i in (0, 1, len(windows) - 1):
        start = i * hop
        np.testing.assert_array_equal(windows[i].signal, mitbih_100_p_signal[:, start : start + win])
    codes = {label.code for rec in windows for label in rec.raw_labels}
    assert codes == {"N", "A", "V", "(N"}
    # The only rhythm annotation is at sample 18 and sets (N for the whole record.
    assert all(any(label.code == "(N" for label in rec.raw_labels) for rec in windows)


@pytest.mark.shared_data
def test_mitbih_window_ids_pad_to_the_digits_of_the_sample_count(mitbih: Path) -> None:
    reader = WfdbFolderReader("mitbih", mitbih, window_s=600.0)
    unit = unit_named(reader.discover(), "104")
    ids = [r.record_id for r in records_of(read_all(reader, unit))]
    assert ids == ["mitbih:104/w000000", "mitbih:104/w216000", "mitbih:104/w432000"]


def test_header_comment_labels_skip_mitbih_patient_medication_and_prose_lines() -> None:
    mitbih_104 = [
        "66 F 1567 694 x1",
        "Digoxin, Pronestyl",
        "The rate of paced rhythm is close to that of the underlying sinus rhythm,",
        "resulting in many pacemaker fusion beats.  The PVCs are multiform.  Several",
    ]
    assert header_comment_labels(mitbih_104) == ()
    assert header_comment_labels(["24 F 1581 654 x1", "Inderal", "The PVCs are multiform."]) == ()
    assert header_comment_labels(["-1 ? 1234 5678 x1", "None"]) == ()
    assert header_comment_labels(["persistent atrial fibrillation"]) == ("persistent atrial fibrillation",)
    assert header_comment_labels(["Asystole", "False alarm"]) == ("Asystole", "False alarm")
    assert header_comment_labels(["Ventricular_Tachycardia"]) == ("Ventricular_Tachycardia",)
    assert header_comment_labels(["Age: 62", "Dx: 426783006", "", "Sex: Male"]) == ()


@pytest.mark.shared_data
def test_cpsc_discovery_units_match_records_and_patient_regex_gives_patient(cpsc: Path) -> None:
    reader = WfdbFolderReader("cpsc2021", cpsc, patient_regex=CPSC_PATIENT)
    discovery = reader.discover()
    assert len(discovery.units) == len(list(cpsc.glob("*.hea"))) == 12
    assert all(len(u.files) == 3 and u.files[2].endswith(".atr") for u in discovery.units)
    assert accounted_files(discovery) == list_files(cpsc)
    (record,) = records_of(read_all(reader, unit_named(discovery, "data_8_2")))
    assert record.patient_id == "8"
    assert list(dict.fromkeys(label.code for label in record.raw_labels)) == [
        "N",
        "V",
        "(AFIB",
        "persistent atrial fibrillation",
    ]  # the (N on the final sample only closes the episode
    np.testing.assert_array_equal(record.signal, wfdb_physical(cpsc / "data_8_2"))


@pytest.mark.shared_data
def test_cpsc_windows_follow_af_episodes_from_rdann(cpsc: Path) -> None:
    reader = WfdbFolderReader("cpsc2021", cpsc, window_s=10.0, hop_s=7.5, patient_regex=CPSC_PATIENT)
    discovery = reader.discover()
    ann_codes: set[str] = set()
    for key in ("data_8_2", "data_84_3", "data_21_7"):
        ann = wfdb.rdann(str(cpsc / key), "atr")
        header_label = wfdb.rdheader(str(cpsc / key)).comments[0].strip()
        windows = records_of(read_all(reader, unit_named(discovery, key)))
        n = wfdb.rdheader(str(cpsc / key)).sig_len
        assert len(windows) == (n - 2000) // 1500 + 1
        p_signal = wfdb_physical(cpsc / key)
        for rec in windows:
            assert rec.provenance.window is not None
            start, stop = rec.provenance.window
            assert stop - start == 2000
            expected = expected_window_labels(ann, start, stop, (header_label,))
            assert list(dict.fromkeys(label.code for label in rec.raw_labels)) == expected
            assert rec.patient_id == key.split("_")[1]
            ann_codes.update(label.code for label in rec.raw_labels)
        np.testing.assert_array_equal(windows[3].signal, p_signal[:, 4500:6500])
    # The persistent-AF episodes end on the last sample, inside the dropped partial window.
    assert ann_codes == {"N", "V", "(AFIB", "persistent atrial fibrillation", "non atrial fibrillation"}


@pytest.mark.shared_data
def test_cpsc_persistent_af_end_marker_labels_no_window_not_even_the_partial_one(cpsc: Path) -> None:
    # data_8_4 (8235 samples): (AFIB at sample 0 and (N at sample 8234, the episode's end.
    full = WfdbFolderReader("cpsc2021", cpsc, window_s=5.0)
    windows = records_of(read_all(full, unit_named(full.discover(), "data_8_4")))
    assert len(windows) == 8
    for w in windows:
        assert list(dict.fromkeys(label.code for label in w.raw_labels)) == [
            "N",
            "(AFIB",
            "persistent atrial fibrillation",
        ]
    partial = WfdbFolderReader("cpsc2021", cpsc, window_s=5.0, keep_partial=True)
    last = records_of(read_all(partial, unit_named(partial.discover(), "data_8_4")))[-1]
    assert last.provenance.window == (8000, 8235)
    assert list(dict.fromkeys(label.code for label in last.raw_labels)) == [
        "N",
        "(AFIB",
        "persistent atrial fibrillation",
    ]
