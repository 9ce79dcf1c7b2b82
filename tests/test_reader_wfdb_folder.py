"""The generic WFDB-folder reader on real MIT-BIH, CPSC 2021 and assorted WFDB records, plus
hand-built folders for the RECORDS, NaN-window and channel-dropping rules."""

from __future__ import annotations

import pickle
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import wfdb

from pipeline.core.records import Discovery, InputUnit, Provenance, ReadError, Record, Rejection
from pipeline.sources.base import list_files
from pipeline.sources.wfdb_folder import WfdbFolderReader
from pipeline.sources.wfdb_text import header_comment_labels
from pipeline.sources.windows import BEAT_SYMBOLS

CPSC_PATIENT = r"data_(\d+)_\d+"


def provenance_of(unit: InputUnit) -> Provenance:
    return Provenance(files=tuple((f, "0" * 64) for f in unit.files), reader="wfdb@test")


def read_all(reader: WfdbFolderReader, unit: InputUnit) -> list[Record | Rejection]:
    return list(reader.read(unit, provenance_of(unit)))


def records_of(items: Iterable[Record | Rejection]) -> list[Record]:
    out = []
    for item in items:
        assert isinstance(item, Record), item
        out.append(item)
    return out


def unit_named(discovery: Discovery, key: str) -> InputUnit:
    return next(u for u in discovery.units if u.key == key)


def accounted_files(discovery: Discovery) -> list[str]:
    files = [f for u in discovery.units for f in u.files]
    files += list(discovery.metadata_files)
    files += [f for r in discovery.rejected for f in r.files]
    return sorted(files)


def wfdb_physical(record_path: Path) -> npt.NDArray[np.float32]:
    """wfdb's own decoding, ``(C, T)`` float32 in the header's units."""
    rec = wfdb.rdrecord(str(record_path))
    return np.asarray(rec.p_signal, dtype=np.float64).T.astype(np.float32)


def expected_window_labels(ann: wfdb.Annotation, start: int, stop: int, extra: tuple[str, ...]) -> list[str]:
    """Oracle written independently of ``windows.py``: a plain scan over ``rdann`` output."""
    beats: list[str] = []
    rhythms: list[str] = []
    current: str | None = None
    for sample, symbol, aux in zip(ann.sample, ann.symbol, ann.aux_note, strict=True):
        note = (aux or "").rstrip("\x00")
        if symbol == "+" and note:
            if sample <= start:
                current = note
            elif sample < stop:
                rhythms.append(note)
        elif symbol in BEAT_SYMBOLS and start <= sample < stop:
            beats.append(symbol)
    ordered = beats + ([current] if current else []) + rhythms + list(extra)
    return list(dict.fromkeys(ordered))


def copy_records(src: Path, dst: Path, names: Iterable[str]) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for name in names:
        for f in src.glob(f"{name}.*"):
            shutil.copy(f, dst / f.name)
            (dst / f.name).chmod(0o644)


def write_record(folder: Path, name: str, digital: npt.NDArray[np.int16], lines: list[str]) -> None:
    """A format-16 record: ``digital`` is ``(C, T)``; ``lines`` are the signal lines' tails."""
    folder.mkdir(parents=True, exist_ok=True)
    n_sig, n = digital.shape
    header = [f"{name} {n_sig} 100 {n}"] + [f"{name}.dat 16 {tail}" for tail in lines]
    (folder / f"{name}.hea").write_text("\n".join(header) + "\n")
    digital.T.astype("<i2").tofile(folder / f"{name}.dat")


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
        codes = [label.code for label in record.raw_labels]
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
    assert [label.code for label in record.raw_labels] == ["N", "A", "V", "(N"]
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
        assert [label.code for label in rec.raw_labels] == expected_window_labels(ann, start, stop, ())
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


# ------------------------------------------------------------------ CPSC 2021


@pytest.fixture(scope="module")
def cpsc(shared_data: Path) -> Path:
    return shared_data / "cpsc2021"


@pytest.mark.shared_data
def test_cpsc_discovery_units_match_records_and_patient_regex_gives_patient(cpsc: Path) -> None:
    reader = WfdbFolderReader("cpsc2021", cpsc, patient_regex=CPSC_PATIENT)
    discovery = reader.discover()
    assert len(discovery.units) == len(list(cpsc.glob("*.hea"))) == 12
    assert all(len(u.files) == 3 and u.files[2].endswith(".atr") for u in discovery.units)
    assert accounted_files(discovery) == list_files(cpsc)
    (record,) = records_of(read_all(reader, unit_named(discovery, "data_8_2")))
    assert record.patient_id == "8"
    assert [label.code for label in record.raw_labels] == [
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
            assert [label.code for label in rec.raw_labels] == expected
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
        assert [label.code for label in w.raw_labels] == ["N", "(AFIB", "persistent atrial fibrillation"]
    partial = WfdbFolderReader("cpsc2021", cpsc, window_s=5.0, keep_partial=True)
    last = records_of(read_all(partial, unit_named(partial.discover(), "data_8_4")))[-1]
    assert last.provenance.window == (8000, 8235)
    assert [label.code for label in last.raw_labels] == ["N", "(AFIB", "persistent atrial fibrillation"]


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
def test_misc_multi_segment_and_multi_rate_records_are_read_as_today(misc: Path) -> None:
    """Pins today's behaviour on the records SOURCES.md (wfdb_misc) added, until multi-segment and
    multi-rate support (a later issue) changes it on purpose: a multi-segment master header (and the
    layout header of a variable-layout record) is refused, each segment is read as a record of its
    own, and a multi-rate record is read as wfdb's default read, one averaged sample per frame at the
    frame rate."""
    reader = WfdbFolderReader("misc", misc)
    discovery = reader.discover()
    headers = sorted(str(p.relative_to(misc).with_suffix("")) for p in misc.rglob("*.hea"))
    assert sorted([u.key for u in discovery.units] + [r.item[:-4] for r in discovery.rejected]) == headers
    reasons = {r.item: r.reason for r in discovery.rejected}
    assert {r.category for r in discovery.rejected} == {"error"}
    assert "multi-segment is unsupported" in reasons["multi-segment/041s/041s.hea"]
    assert "multi-segment is unsupported" in reasons["multi-segment/s25047/s25047-2704-05-04-10-44.hea"]
    assert "field format = '0'" in reasons["multi-segment/s25047/3234460_layout.hea"]
    assert len(reasons) == 3
    # The numerics record (HR, SpO2, ... at 1/60 Hz) has no voltage channel.
    numerics = unit_named(discovery, "multi-segment/s25047/s25047-2704-05-04-10-44n")
    with pytest.raises(ReadError, match="no voltage channel left"):
        read_all(reader, numerics)
    for unit in discovery.units:
        if unit.key == numerics.key:
            continue
        (record,) = records_of(read_all(reader, unit))
        rec = wfdb.rdrecord(str(misc / unit.key))
        assert record.fs_hz == float(rec.fs)
        kept = [rec.sig_name.index(lead) for lead in record.leads]
        np.testing.assert_array_equal(record.signal, wfdb_physical(misc / unit.key)[kept])
    mixed = records_of(read_all(reader, unit_named(discovery, "mixedsignals")))[0]
    # II, III and V have 4 samples per frame (249.89 Hz); today each frame is averaged to one.
    assert mixed.leads == ("II", "III", "V") and mixed.signal.shape == (3, 14_400)
    assert mixed.fs_hz == 62.4725 and mixed.meta["dropped_channels"] == "ABP,Pleth,Resp"
    segment = records_of(read_all(reader, unit_named(discovery, "multi-segment/041s/041s01")))[0]
    # PLETH and RESP declare mV in this header, so they count as voltage channels.
    assert segment.leads == ("III", "I", "V", "PLETH", "RESP") and segment.signal.shape == (5, 1000)


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
    clone = pickle.loads(pickle.dumps(reader))  # noqa: S301
    assert clone.options == reader.options
    assert (clone.options.window_s, clone.options.hop, clone.options.patient_regex, clone.reader_id) == (
        10.0,
        5.0,
        CPSC_PATIENT,
        "wfdb@1",
    )
