"""The ``edf`` source kind: EDF written by wfdb-python's writer, EDF+ with annotations, per-signal
rates, units, confinement, size checks and quarantine reasons, and property tests on generated files.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import edfio
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.records import Provenance, RawLabel, ReadError, Record
from pipeline.sources.edf import EdfReader
from pipeline.sources.registry import make_reader
from tests.edf_support import EdfSignalSpec, patch_field, signal_field, wfdb_written_edf, write_edf


def _read(root: Path, key: str, **options: object) -> Record:
    reader = EdfReader("edf", root, **options)
    unit = next(u for u in reader.discover().units if u.key == key)
    (record,) = list(reader.read(unit, Provenance(((unit.files[0], "0" * 64),), reader.reader_id)))
    assert isinstance(record, Record)
    return record


def test_an_edf_written_by_wfdb_gives_its_500_hz_ecg_and_drops_the_125_hz_resp(tmp_path: Path) -> None:
    ecg = wfdb_written_edf(tmp_path)
    record = _read(tmp_path, "mr")
    assert record.leads == ("II",) and record.fs_hz == 500.0
    assert record.meta["dropped_channels"] == "RESP" and record.meta["edf"] == "EDF"
    np.testing.assert_allclose(record.signal[0, :1000], ecg, atol=1e-6)


def _ecg(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-30000, 30000, size=n).astype(np.int16)


def test_edf_plus_annotations_become_interval_labels_and_units_convert_to_mv(tmp_path: Path) -> None:
    uv = EdfSignalSpec("ECG I", "uV", 200, _ecg(600), (-5000, 5000))
    mv = EdfSignalSpec("EKG II", "mV", 200, _ecg(600, 1), (-5, 5))
    spo2 = EdfSignalSpec("SpO2", "%", 1, np.zeros(3, np.int16), (0, 100))
    notes = [(0.5, 1.25, "Atrial fibrillation"), (2.0, None, "Noise")]
    write_edf(tmp_path / "h.edf", [uv, mv, spo2], n_records=3, annotations=notes)
    record = _read(tmp_path, "h")
    assert record.leads == ("I", "II") and record.fs_hz == 200.0 and record.signal.shape == (2, 600)
    scale = 10_000 / 65_535
    expected_uv = (uv.digital.astype(np.float64) + 32768) * scale - 5000
    np.testing.assert_allclose(record.signal[0], expected_uv / 1000, rtol=1e-5)
    assert record.raw_labels == (  # 200 Hz: 0.5 s + 1.25 s -> samples [100, 350); no duration: one sample
        RawLabel("Atrial fibrillation", scope="interval", span=(100, 350)),
        RawLabel("Noise", scope="interval", span=(400, 401)),
    )
    assert json.loads(record.meta["annotations"]) == [
        [0.5, 1.25, "Atrial fibrillation"],
        [2.0, None, "Noise"],
    ]
    assert record.meta["dropped_channels"] == "SpO2"


def test_a_slower_ecg_lead_is_interpolated_up_to_the_fastest_never_averaged_down(tmp_path: Path) -> None:
    fast = EdfSignalSpec("ECG I", "mV", 256, _ecg(512))
    slow = EdfSignalSpec("ECG II", "mV", 128, _ecg(256, 2))
    write_edf(tmp_path / "r.edf", [fast, slow], n_records=2, plus=None)
    record = _read(tmp_path, "r")
    assert record.fs_hz == 256.0 and record.signal.shape == (2, 512)
    scale = 6.5535 / 65535
    expected = (fast.digital.astype(np.float64) + 32768) * scale - 3.2768
    np.testing.assert_allclose(record.signal[0], expected, atol=1e-6)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("truncated", r"declares 3 data records .* holds"),
        ("header_bytes", r"header declares 999 header bytes"),
        ("non_ascii_label", r"non-ASCII bytes"),
        ("edf_plus_d", r"EDF\+D"),
        ("no_ecg", r"no ECG signal"),
        ("digital_range", r"digital min < max"),
    ],
)
def test_a_broken_edf_is_refused_with_a_reason(tmp_path: Path, damage: str, reason: str) -> None:
    path = tmp_path / "b.edf"
    label, units = ("Temp", "degC") if damage == "no_ecg" else ("ECG", "mV")
    signal = EdfSignalSpec(label, units, 10, _ecg(30))
    write_edf(path, [signal], n_records=3, plus="EDF+D" if damage == "edf_plus_d" else "EDF+C")
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:-7])
    elif damage == "header_bytes":
        patch_field(path, 184, 8, b"999")
    elif damage == "non_ascii_label":
        patch_field(path, *signal_field(2, "label", 0), "ÉCG".encode("latin-1"))
    elif damage == "digital_range":  # equal digital limits: edfio writes none, so patch them in
        patch_field(path, *signal_field(2, "digital_max", 0), b"-32768")
    reader = EdfReader("edf", tmp_path)
    (unit,) = reader.discover().units
    with pytest.raises(ReadError, match=reason):
        list(reader.read(unit, Provenance((), reader.reader_id)))


def test_a_header_claiming_huge_data_is_refused_before_allocating(tmp_path: Path) -> None:
    path = tmp_path / "big.edf"
    write_edf(path, [EdfSignalSpec("ECG", "mV", 10, _ecg(10))], n_records=1, plus=None)
    patch_field(path, 236, 8, b"99999999")
    with pytest.raises(ReadError, match="declares 99999999 data records"):
        _read(tmp_path, "big")


def test_discovery_accounts_for_every_file_and_the_kind_is_registered(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    write_edf(tmp_path / "a" / "x.edf", [EdfSignalSpec("ECG", "mV", 4, _ecg(4))], 1)
    (tmp_path / "README.txt").write_text("notes\n")
    (tmp_path / "x.csv").write_text("1\n")
    reader = make_reader("e", "edf", tmp_path, {})
    disc = reader.discover()
    assert [u.key for u in disc.units] == ["a/x"] and disc.metadata_files == ("README.txt",)
    assert [r.item for r in disc.rejected] == ["x.csv"]


def test_a_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "out"
    root.mkdir()
    outside.mkdir()
    write_edf(outside / "s.edf", [EdfSignalSpec("ECG", "mV", 4, _ecg(4))], 1)
    (root / "s.edf").symlink_to(outside / "s.edf")
    reader = EdfReader("edf", root)
    (unit,) = reader.discover().units
    with pytest.raises(ReadError, match="escapes the source root"):
        list(reader.read(unit, Provenance((), reader.reader_id)))


@settings(max_examples=25, deadline=None)
@given(
    rates=st.lists(st.sampled_from([1, 2, 4, 8]), min_size=1, max_size=3),
    n_records=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_any_generated_edf_reads_at_the_fastest_rate_with_the_fastest_lead_exact(
    tmp_path_factory: pytest.TempPathFactory, rates: list[int], n_records: int, seed: int
) -> None:
    folder = tmp_path_factory.mktemp("edf")
    signals = [
        EdfSignalSpec(f"ECG V{i + 1}", "mV", r * 4, _ecg(r * 4 * n_records, seed + i))
        for i, r in enumerate(rates)
    ]
    write_edf(folder / "p.edf", signals, n_records=n_records, record_s=0.5)
    record = _read(folder, "p")
    top = max(rates) * 4
    assert record.fs_hz == top / 0.5 and record.signal.shape == (len(rates), top * n_records)
    fastest = rates.index(max(rates))
    expected = (signals[fastest].digital.astype(np.float64) + 32768) * (6.5535 / 65535) - 3.2768
    np.testing.assert_allclose(record.signal[fastest], expected, atol=1e-6)
    assert np.isfinite(record.signal).all()


def test_annotations_in_later_data_records_and_a_subsecond_start_count_from_the_first_sample(
    tmp_path: Path,
) -> None:
    ecg = edfio.EdfSignal.from_digital(_ecg(1000), 100.0, label="ECG II", physical_dimension="mV")
    notes = [
        edfio.EdfAnnotation(o, d, t) for o, d, t in [(7.5, 1.0, "Ventrikuläre Salve"), (0.2, None, "Start")]
    ]
    edf = edfio.Edf([ecg], starttime=datetime.time(10, 0, 0, 250_000), annotations=notes)
    edf.write(tmp_path / "late.edf")
    assert (tmp_path / "late.edf").read_bytes().count(
        b"+0.25\x14\x14\x00"
    ) == 1  # first record starts at .25 s
    record = _read(tmp_path, "late")
    assert json.loads(record.meta["annotations"]) == [[0.2, None, "Start"], [7.5, 1.0, "Ventrikuläre Salve"]]
    assert record.raw_labels == (  # 100 Hz, 1,000 samples
        RawLabel("Start", scope="interval", span=(20, 21)),
        RawLabel("Ventrikuläre Salve", scope="interval", span=(750, 850)),
    )


def test_an_annotation_that_is_not_utf8_is_refused_naming_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "enc.edf"
    write_edf(path, [EdfSignalSpec("ECG", "mV", 10, _ecg(30))], n_records=3, annotations=[(1.0, None, "Xyz")])
    path.write_bytes(path.read_bytes().replace(b"\x14Xyz\x14", b"\x14\xc9yz\x14"))
    with pytest.raises(ReadError, match=r"enc\.edf: annotation bytes b'\\xc9' are not UTF-8"):
        _read(tmp_path, "enc")


def test_a_record_count_of_minus_one_reads_what_the_file_holds_and_zero_records_are_refused(
    tmp_path: Path,
) -> None:
    signal = EdfSignalSpec("ECG", "mV", 10, _ecg(30))
    write_edf(tmp_path / "open.edf", [signal], n_records=3, plus=None)
    patch_field(tmp_path / "open.edf", 236, 8, b"-1")  # allowed by EDF while a recording is still written
    with pytest.warns(UserWarning, match="indicates -1 data records"):  # edfio's own notice
        assert _read(tmp_path, "open").signal.shape == (1, 30)
    (tmp_path / "open.edf").unlink()
    write_edf(tmp_path / "none.edf", [signal], n_records=3, plus=None)
    raw = (tmp_path / "none.edf").read_bytes()
    (tmp_path / "none.edf").write_bytes(raw[:512])
    patch_field(tmp_path / "none.edf", 236, 8, b"0")
    with pytest.raises(ReadError, match="none.edf: the file holds no data records"):
        _read(tmp_path, "none")
