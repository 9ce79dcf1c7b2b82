"""WFDB header parsing and signal decoding, checked against wfdb-python on real records."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import scipy.io
import wfdb

from pipeline.core.records import ReadError
from pipeline.sources.wfdb import (
    mv_factor,
    parse_header,
    physical_units,
    read_header,
    read_signals,
    signal_files,
)

# (folder, record) pairs that wfdb.rdheader accepts, one or more per format/quirk.
REAL_RECORDS = [
    ("ptbxl/records100/00000", "00001_lr"),  # format 16, 1000.0(0)/mV
    ("ptbxl/records500/00000", "00002_hr"),  # format 16, 5000 samples
    ("mitbih", "100"),  # format 212, gain 200 with no units, adc_zero 1024
    ("mitbih", "104"),
    ("wfdb_misc", "v102s"),  # format 212 with ADC resolution 0, NU channels
    ("wfdb_misc", "3000003_0003"),  # format 80, 29/mV, base time
    ("wfdb_misc", "a103l"),  # .mat 16+24, 1.052e+04/mV, NU channel
    ("cinc2017/training2017", "A00001"),  # .mat 16+24, CRLF, date in record line
    ("cinc2017/training2017", "A01999"),
    ("cinc2021", "A0689"),  # raw challenge header
    ("cinc2021", "E07500"),  # wfdb-rewritten, 16x1+24
    ("cinc2021", "HR06000"),  # lowercase mv
    ("ptb_diagnostic/patient001", "s0010_re"),  # two signal files (.dat + .xyz), gain 2000
    ("cpsc2021", "data_8_2"),  # gain 34043.46727318676(-167477)/mV
]


def _wfdb_physical(folder: Path, record: str) -> npt.NDArray[np.float32]:
    rec = wfdb.rdrecord(str(folder / record))
    return np.asarray(rec.p_signal.T, dtype=np.float32)


def _write(directory: Path, name: str, header: str, data: bytes) -> Path:
    (directory / f"{name}.hea").write_text(header)
    (directory / f"{name}.dat").write_bytes(data)
    return directory / f"{name}.hea"


class _WfdbSpy:
    """Counts calls to ``wfdb.rdrecord`` while still delegating to it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self._real = wfdb.rdrecord
        monkeypatch.setattr(wfdb, "rdrecord", self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self._real(*args, **kwargs)


# --------------------------------------------------------------------------- header parsing


def test_parse_header_georgia_record_line_with_mat_suffix_and_date_first() -> None:
    text = (
        "E00271.mat 12 500 5000 05-May-2020 14:50:55\n"
        + "".join(f"E00271.mat 16+24 1000/mV 16 0 -73 123 0 {lead}\n" for lead in ["I"] * 12)
        + "#Age: 83\n#Dx: 59118001\n"
    )
    header = parse_header(text, "E00271.hea")
    assert header.record_name == "E00271"
    assert (header.n_sig, header.fs_hz, header.n_samples) == (12, 500.0, 5000)
    spec = header.signals[0]
    assert (spec.file_name, spec.fmt, spec.byte_offset, spec.samples_per_frame) == ("E00271.mat", "16", 24, 1)
    assert (spec.gain, spec.baseline, spec.units, spec.adc_res, spec.adc_zero) == (1000.0, 0, "mV", 16, 0)
    assert (spec.init_value, spec.checksum, spec.block_size, spec.description) == (-73, 123, 0, "I")
    assert header.comments == ("Age: 83", "Dx: 59118001")


def test_parse_header_wfdb_rewritten_format_and_gain_with_baseline() -> None:
    text = "E07500 1 500 5000\nE07500.mat 16x1+24 1000.0(7)/mv 16 3 -68 1250 0 aVR\n# Age: 78\n"
    spec = parse_header(text, "E07500.hea").signals[0]
    assert (spec.fmt, spec.samples_per_frame, spec.byte_offset) == ("16", 1, 24)
    assert (spec.gain, spec.baseline, spec.units, spec.adc_zero) == (1000.0, 7, "mv", 3)


def test_parse_header_gain_variants() -> None:
    text = (
        "r 5 200 10\n"
        "r.dat 16 34043.46727318676(-167477)/mV 16 0 3659 12527 0 I\n"
        "r.dat 16 2000 16 5 0 0 0 i\n"  # no units: WFDB default mV, baseline = adc_zero
        "r.dat 16 29/mV 8 0 -5 -3441 0 II\n"
        "r.dat 16 1.052e+04/NU 16 0\n"
        "r.dat 16 0/mV\n"  # gain 0 means WFDB's default 200
    )
    specs = parse_header(text, "r.hea").signals
    assert (specs[0].gain, specs[0].baseline, specs[0].units) == (34043.46727318676, -167477, "mV")
    assert (specs[1].gain, specs[1].baseline, specs[1].units) == (2000.0, 5, "mV")
    assert (specs[2].gain, specs[2].baseline) == (29.0, 0)
    assert (specs[3].gain, specs[3].units, specs[3].init_value, specs[3].description) == (
        10520.0,
        "NU",
        None,
        "",
    )
    assert specs[4].gain == 200.0


def test_parse_header_minimal_lines_use_wfdb_defaults() -> None:
    header = parse_header("rec 1\nrec.dat 212\n", "rec.hea")
    assert (header.fs_hz, header.n_samples) == (250.0, None)
    spec = header.signals[0]
    assert (spec.gain, spec.baseline, spec.units, spec.adc_res, spec.init_value) == (200.0, 0, "mV", 0, None)


def test_parse_header_crlf_blank_lines_and_description_with_spaces() -> None:
    text = "\ufeffr 1 360 5\r\n\r\n# first\r\nr.dat 16 200 11 0 0 0 0 ECG lead II\r\n\r\n#  second  \r\n"
    header = parse_header(text, "r.hea")
    assert header.signals[0].description == "ECG lead II"
    assert header.comments == ("first", "second")


def test_parse_header_skew_and_samples_per_frame() -> None:
    spec = parse_header("r 1 100 4\nr.dat 16x4:2+8\n", "r.hea").signals[0]
    assert (spec.samples_per_frame, spec.skew, spec.byte_offset) == (4, 2, 8)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("r 1 abc 10\nr.dat 16\n", "line 1: field sampling frequency = 'abc'"),
        ("r x 500 10\n", "line 1: field number of signals = 'x'"),
        ("r 1 500 -10\nr.dat 16\n", "line 1: field number of samples = '-10'"),
        ("r 1 0 10\nr.dat 16\n", "line 1: field sampling frequency = '0'"),
        ("r 1 500 10\nr.dat 999\n", "line 2: field format = '999'"),
        ("r 1 500 10\nr.dat 16+x\n", "line 2: field format = '16+x'"),
        ("r 1 500 10\nr.dat 16 abc/mV\n", "line 2: field gain = 'abc'"),
        ("r 1 500 10\nr.dat 16 nan/mV\n", "line 2: field gain = 'nan'"),
        ("r 1 500 10\nr.dat 16 200(1.5)/mV\n", "line 2: field baseline = '1.5'"),
        ("r 1 500 10\n\nr.dat 16 200 12 zero\n", "line 3: field ADC zero = 'zero'"),
        ("r 1 500 10\nr.dat 16 200 -1\n", "line 2: field ADC resolution = '-1'"),
        ("r 1 500 10\nr.dat 16 200 12 0 0 sum\n", "line 2: field checksum = 'sum'"),
        ("r 2 500 10\nr.dat 16\n", "declares 2 signals but the header has 1 signal lines"),
        ("r/2 1 500 10\n", "multi-segment"),
        ("# only a comment\n", "no record line"),
    ],
)
def test_parse_header_rejects_malformed_fields_naming_file_line_and_field(text: str, expected: str) -> None:
    with pytest.raises(ReadError, match="^bad.hea: ") as info:
        parse_header(text, "bad.hea")
    assert expected in str(info.value)


# --------------------------------------------------------------------------- real records


@pytest.mark.shared_data
@pytest.mark.parametrize(("folder", "record"), REAL_RECORDS)
def test_read_signals_equals_wfdb_p_signal_on_real_records(
    shared_data: Path, folder: str, record: str
) -> None:
    directory = shared_data / folder
    header = read_header(directory / f"{record}.hea")
    signal = read_signals(header, directory, shared_data)
    expected = _wfdb_physical(directory, record)
    assert signal.dtype == np.float32 and signal.flags.c_contiguous
    assert signal.shape == expected.shape == (header.n_sig, header.n_samples)
    np.testing.assert_array_equal(signal, expected)


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("folder", "record"),
    [("mitbih", "100"), ("wfdb_misc", "3000003_0003"), ("ptbxl/records100/00000", "00003_lr")],
)
def test_fast_path_digital_values_equal_wfdb_d_signal(shared_data: Path, folder: str, record: str) -> None:
    directory = shared_data / folder
    header = read_header(directory / f"{record}.hea")
    signal = read_signals(header, directory, shared_data).astype(np.float64)
    gains = np.array([s.gain for s in header.signals])[:, None]
    baselines = np.array([s.baseline for s in header.signals])[:, None]
    digital = np.rint(signal * gains + baselines).astype(np.int64)
    expected = wfdb.rdrecord(str(directory / record), physical=False).d_signal.T
    np.testing.assert_array_equal(digital, expected)


@pytest.mark.shared_data
def test_fast_path_does_not_call_wfdb(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = _WfdbSpy(monkeypatch)
    for folder, record in REAL_RECORDS:
        header = read_header(shared_data / folder / f"{record}.hea")
        read_signals(header, shared_data / folder, shared_data)
    assert spy.calls == 0


@pytest.mark.shared_data
def test_georgia_header_wfdb_rejects_reads_like_scipy_loadmat(shared_data: Path) -> None:
    directory = shared_data / "cinc2021"
    with pytest.raises(Exception, match="record line"):
        wfdb.rdheader(str(directory / "E00271"))
    header = read_header(directory / "E00271.hea")
    assert header.record_name == "E00271"
    signal = read_signals(header, directory, shared_data)
    val = scipy.io.loadmat(str(directory / "E00271.mat"))["val"].astype(np.float64)
    baselines = np.array([s.baseline for s in header.signals], dtype=np.float64)[:, None]
    np.testing.assert_array_equal(signal, ((val - baselines) / 1000.0).astype(np.float32))


@pytest.mark.shared_data
def test_lowercase_mv_reads_the_same_as_uppercase(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "cinc2021"
    shutil.copy(source / "HR06000.mat", tmp_path / "HR06000.mat")
    text = (source / "HR06000.hea").read_text()
    assert "/mv" in text
    (tmp_path / "HR06000.hea").write_text(text.replace("/mv", "/mV"))
    lower = read_header(source / "HR06000.hea")
    upper = read_header(tmp_path / "HR06000.hea")
    assert physical_units(lower) == ("mV",) * 12
    np.testing.assert_array_equal(
        read_signals(lower, source, shared_data), read_signals(upper, tmp_path, tmp_path)
    )


@pytest.mark.shared_data
def test_non_voltage_channels_keep_their_units(shared_data: Path) -> None:
    header = read_header(shared_data / "wfdb_misc" / "v102s.hea")
    assert physical_units(header) == ("mV", "mV", "NU", "NU")
    assert header.signals[0].adc_res == 0


@pytest.mark.shared_data
def test_ptb_diagnostic_reads_both_signal_files(shared_data: Path) -> None:
    header = read_header(shared_data / "ptb_diagnostic" / "patient001" / "s0010_re.hea")
    assert signal_files(header) == ("s0010_re.dat", "s0010_re.xyz")
    assert header.signals[-1].description == "vz"
    assert "Reason for admission: Myocardial infarction" in header.comments


@pytest.mark.shared_data
def test_truncated_signal_file_raises_with_sizes(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "ptbxl" / "records100" / "00000"
    shutil.copy(source / "00001_lr.hea", tmp_path / "00001_lr.hea")
    data = (source / "00001_lr.dat").read_bytes()
    (tmp_path / "00001_lr.dat").write_bytes(data[:1000])
    header = read_header(tmp_path / "00001_lr.hea")
    message = (
        "00001_lr.dat: header declares 1000 samples x 12 signals (24000 bytes)"
        " but the file holds only 1000 bytes"
    )
    with pytest.raises(ReadError) as info:
        read_signals(header, tmp_path, tmp_path)
    assert str(info.value) == message


@pytest.mark.shared_data
def test_truncated_mat_file_counts_the_byte_offset(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "cinc2017" / "training2017"
    shutil.copy(source / "A00001.hea", tmp_path / "A00001.hea")
    data = (source / "A00001.mat").read_bytes()
    header = read_header(tmp_path / "A00001.hea")
    (tmp_path / "A00001.mat").write_bytes(data[:18024])  # 24-byte MAT prefix + 9000 int16
    assert read_signals(header, tmp_path, tmp_path).shape == (1, 9000)
    (tmp_path / "A00001.mat").write_bytes(data[:18023])
    expected = (
        r"^A00001.mat: header declares 9000 samples x 1 signals \(18024 bytes\) but the file holds only 18023"
    )
    with pytest.raises(ReadError, match=expected):
        read_signals(header, tmp_path, tmp_path)


@pytest.mark.shared_data
def test_trailing_bytes_after_declared_samples_are_ignored(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "mitbih"
    shutil.copy(source / "100.hea", tmp_path / "100.hea")
    (tmp_path / "100.dat").write_bytes((source / "100.dat").read_bytes() + b"\x01\x02\x03\x04\x05")
    header = read_header(tmp_path / "100.hea")
    np.testing.assert_array_equal(read_signals(header, tmp_path, tmp_path), _wfdb_physical(source, "100"))


@pytest.mark.shared_data
def test_decoding_a_12_lead_5000_sample_record_is_fast(shared_data: Path) -> None:
    directory = shared_data / "ptbxl" / "records500" / "00000"
    header = read_header(directory / "00001_hr.hea")
    read_signals(header, directory, shared_data)
    timings = []
    for _ in range(30):
        start = time.perf_counter()
        read_signals(header, directory, shared_data)
        timings.append(time.perf_counter() - start)
    # Generous bound: the decode itself takes ~0.3 ms; the machine is shared with other workers.
    assert float(np.median(timings)) < 0.005


# --------------------------------------------------------------------------- synthetic records


def test_header_claiming_more_samples_than_file_raises_before_allocating(tmp_path: Path) -> None:
    hea = _write(tmp_path, "big", "big 2 500 4000000000000\nbig.dat 16\nbig.dat 16\n", b"\x00" * 40)
    with pytest.raises(ReadError, match=r"^big.dat: header declares 4000000000000 samples x 2 signals"):
        read_signals(read_header(hea), tmp_path, tmp_path)


def test_missing_sample_count_is_taken_from_file_size(tmp_path: Path) -> None:
    values = np.array([[1, -2], [3, 4], [5, 6]], dtype="<i2")
    hea = _write(tmp_path, "r", "r 2 100\nr.dat 16 100/mV\nr.dat 16 100/mV\n", values.tobytes() + b"\x07")
    signal = read_signals(read_header(hea), tmp_path, tmp_path)
    np.testing.assert_array_equal(signal, (values.T / 100.0).astype(np.float32))


def test_invalid_sample_codes_become_nan_like_wfdb(tmp_path: Path) -> None:
    d16 = np.array([[100, -32768], [-32768, 5]], dtype="<i2").tobytes()
    d80 = bytes([128 + 10, 0, 0, 128 - 3])  # stored offset binary; 0 is the invalid -128
    # 212 pair (-2048, 1) packed: low byte, high nibbles, low byte
    d212 = bytes([0x00, 0x08, 0x01, 0x01, 0x80, 0x00])  # samples -2048, 1, 1, -2048
    for name, fmt, data in [("a", "16", d16), ("b", "80", d80), ("c", "212", d212)]:
        hea = _write(
            tmp_path, name, f"{name} 2 100 2\n{name}.dat {fmt} 10/mV\n{name}.dat {fmt} 10/mV\n", data
        )
        signal = read_signals(read_header(hea), tmp_path, tmp_path)
        np.testing.assert_array_equal(signal, _wfdb_physical(tmp_path, name))
        assert np.isnan(signal).sum() == 2, fmt


def test_format_212_with_odd_sample_count_matches_wfdb(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    d_signal = rng.integers(-2047, 2048, size=(7, 3)).astype(np.int32)
    wfdb.wrsamp(
        "odd",
        fs=100,
        units=["mV"] * 3,
        sig_name=["a", "b", "c"],
        d_signal=d_signal,
        fmt=["212"] * 3,
        adc_gain=[200.0] * 3,
        baseline=[0] * 3,
        write_dir=str(tmp_path),
    )
    header = read_header(tmp_path / "odd.hea")
    np.testing.assert_array_equal(read_signals(header, tmp_path, tmp_path), _wfdb_physical(tmp_path, "odd"))


@pytest.mark.parametrize(
    ("units", "factor"), [("uV", 1e-3), ("µV", 1e-3), ("UV", 1e-3), ("V", 1e3), ("v", 1e3)]
)
def test_microvolt_and_volt_channels_are_converted_to_mv(tmp_path: Path, units: str, factor: float) -> None:
    values = np.array([[1000, -500], [250, 4]], dtype="<i2")
    header_text = f"r 2 100 2\nr.dat 16 2({1})/{units}\nr.dat 16 2/mmHg\n"
    (tmp_path / "r.hea").write_text(header_text, encoding="utf-8")
    (tmp_path / "r.dat").write_bytes(values.tobytes())
    header = read_header(tmp_path / "r.hea")
    signal = read_signals(header, tmp_path, tmp_path)
    np.testing.assert_allclose(signal[0], (values[:, 0] - 1) / 2 * factor, rtol=1e-6)
    np.testing.assert_array_equal(signal[1], values[:, 1] / 2)
    assert physical_units(header) == ("mV", "mmHg")


def test_latin1_header_with_micro_sign_is_read(tmp_path: Path) -> None:
    (tmp_path / "r.hea").write_bytes("r 1 100 1\nr.dat 16 4/µV\n".encode("latin-1"))
    (tmp_path / "r.dat").write_bytes(np.array([8], dtype="<i2").tobytes())
    header = read_header(tmp_path / "r.hea")
    np.testing.assert_allclose(read_signals(header, tmp_path, tmp_path), [[0.002]], rtol=1e-6)


@pytest.mark.parametrize("fmt", ["24", "32"])
def test_formats_24_and_32_fall_back_to_wfdb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    rng = np.random.default_rng(1)
    high = {"24": 2**22, "32": 2**30}[fmt]
    d_signal = rng.integers(-high, high, size=(300, 3)).astype(np.int32)
    wfdb.wrsamp(
        "rec", fs=250, units=["mV", "uV", "NU"], sig_name=["I", "II", "x"], d_signal=d_signal,
        fmt=[fmt] * 3, adc_gain=[100.0, 3.5, 7.0], baseline=[5, -3, 0], write_dir=str(tmp_path),
    )  # fmt: skip
    expected = _wfdb_physical(tmp_path, "rec")
    expected[1] /= 1000.0
    spy = _WfdbSpy(monkeypatch)
    signal = read_signals(read_header(tmp_path / "rec.hea"), tmp_path, tmp_path)
    assert spy.calls == 1
    assert signal.shape == (3, 300) and signal.dtype == np.float32
    np.testing.assert_allclose(signal, expected, rtol=1e-6)


@pytest.mark.parametrize(("fmt", "encode"), [("61", ">i2"), ("160", "offset")])
def test_big_endian_and_offset_16_bit_formats_fall_back_to_wfdb(
    tmp_path: Path, fmt: str, encode: str
) -> None:
    values = np.array([[0, 7], [-300, 32767], [12345, -32767]], dtype=np.int32)
    raw = values.astype(">i2").tobytes() if encode == ">i2" else (values + 32768).astype("<u2").tobytes()
    hea = _write(tmp_path, "r", f"r 2 100 3\nr.dat {fmt} 100/mV\nr.dat {fmt} 100/mV\n", raw)
    signal = read_signals(read_header(hea), tmp_path, tmp_path)
    np.testing.assert_array_equal(signal, (values.T / 100.0).astype(np.float32))
    np.testing.assert_array_equal(signal, _wfdb_physical(tmp_path, "r"))


def test_fallback_accepts_a_header_wfdb_would_reject(tmp_path: Path) -> None:
    d_signal = np.arange(-20, 20, dtype=np.int32).reshape(20, 2) * 1000
    wfdb.wrsamp(
        "rec",
        fs=500,
        units=["mV", "mV"],
        sig_name=["I", "II"],
        d_signal=d_signal,
        fmt=["24", "24"],
        adc_gain=[1000.0, 1000.0],
        baseline=[0, 0],
        write_dir=str(tmp_path),
    )
    lines = (tmp_path / "rec.hea").read_text().splitlines()
    lines[0] = "rec.mat 2 500 20 05-May-2020 14:50:55"
    (tmp_path / "rec.hea").write_text("\r\n".join(lines) + "\r\n")
    header = read_header(tmp_path / "rec.hea")
    np.testing.assert_allclose(read_signals(header, tmp_path, tmp_path), d_signal.T / 1000.0, rtol=1e-6)


def test_fallback_with_samples_per_frame_matches_wfdb(tmp_path: Path) -> None:
    frames = np.array([[1, 2, 10], [3, 4, 20], [5, 6, 30]], dtype="<i2")  # sig0 x2 per frame, sig1 x1
    hea = _write(tmp_path, "spf", "spf 2 100 3\nspf.dat 16x2 10/mV\nspf.dat 16 10/mV\n", frames.tobytes())
    header = read_header(hea)
    signal = read_signals(header, tmp_path, tmp_path)
    np.testing.assert_array_equal(signal, _wfdb_physical(tmp_path, "spf"))


def test_truncated_file_in_fallback_format_raises_before_wfdb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hea = _write(tmp_path, "t", "t 1 100 10\nt.dat 24\n", b"\x00" * 29)
    spy = _WfdbSpy(monkeypatch)
    with pytest.raises(ReadError, match=r"t.dat: header declares 10 samples x 1 signals \(30 bytes\)"):
        read_signals(read_header(hea), tmp_path, tmp_path)
    assert spy.calls == 0


def test_missing_signal_file_raises(tmp_path: Path) -> None:
    (tmp_path / "gone.hea").write_text("gone 1 100 10\ngone.dat 16\n")
    with pytest.raises(ReadError, match="gone.dat: signal file named by header gone does not exist"):
        read_signals(read_header(tmp_path / "gone.hea"), tmp_path, tmp_path)


def test_signal_file_outside_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret.dat").write_bytes(b"\x00" * 20)
    (root / "evil.hea").write_text("evil 1 100 10\n../secret.dat 16\n")
    with pytest.raises(ReadError, match="escapes the source root"):
        read_signals(read_header(root / "evil.hea"), root, root)


def test_unreadable_header_raises_read_error(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match="cannot read header"):
        read_header(tmp_path / "absent.hea")


def test_mv_factor_names() -> None:
    assert mv_factor("mv") == 1.0
    assert mv_factor(" uV ") == 1e-3
    assert mv_factor("NU") is None


def _mat_record(directory: Path, val: npt.NDArray[Any], fmt: str = "4") -> Path:
    scipy.io.savemat(str(directory / "m.mat"), {"val": val}, format=fmt)  # type: ignore[arg-type]
    n_sig, n = val.shape
    lines = [f"m {n_sig} 500 {n}"] + [f"m.mat 16+24 1000/mV 16 0 0 0 0 L{i}" for i in range(n_sig)]
    (directory / "m.hea").write_text("\n".join(lines) + "\n")
    return directory / "m.hea"


def test_matlab_v4_int16_written_by_scipy_reads_back(tmp_path: Path) -> None:
    val = np.arange(-600, 600, dtype=np.int16).reshape(3, 400)
    header = read_header(_mat_record(tmp_path, val))
    np.testing.assert_array_equal(read_signals(header, tmp_path, tmp_path), (val / 1000.0).astype(np.float32))


def test_matlab_v5_or_non_int16_mat_files_are_refused(tmp_path: Path) -> None:
    val = np.zeros((2, 50), dtype=np.int16)
    header = read_header(_mat_record(tmp_path, val, fmt="5"))
    with pytest.raises(ReadError, match="^m.mat: MATLAB v5 file"):
        read_signals(header, tmp_path, tmp_path)
    header = read_header(_mat_record(tmp_path, val.astype(np.float64)))
    with pytest.raises(ReadError, match="^m.mat: MAT v4 type code 0; expected 30"):
        read_signals(header, tmp_path, tmp_path)


def test_mat_matrix_smaller_than_header_claims_is_refused(tmp_path: Path) -> None:
    header_path = _mat_record(tmp_path, np.zeros((2, 50), dtype=np.int16))
    with (tmp_path / "m.mat").open("ab") as fh:
        fh.write(b"\x00" * 400)  # file now long enough, but the matrix itself still holds 2 x 50
    header_path.write_text(header_path.read_text().replace("m 2 500 50", "m 2 500 100"))
    expected = r"^m.mat: MAT v4 matrix 2 x 50 holds 50 samples per signal; the header declares 100"
    with pytest.raises(ReadError, match=expected):
        read_signals(read_header(header_path), tmp_path, tmp_path)


def test_format_8_differences_keep_the_initial_value_in_the_fallback(tmp_path: Path) -> None:
    diffs = np.array([0, 2, -3, 0, 6], dtype=np.int8)
    hea = _write(tmp_path, "d8", "d8 1 100 5\nd8.dat 8 10/mV 8 0 5\n", diffs.tobytes())
    signal = read_signals(read_header(hea), tmp_path, tmp_path)
    expected = _wfdb_physical(tmp_path, "d8")
    np.testing.assert_array_equal(signal, expected)
    assert signal[0, 0] == pytest.approx(0.5)  # the initial value 5 adu at 10 adu/mV
