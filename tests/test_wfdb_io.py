"""WFDB header parsing, and signal decoding checked against wfdb-python on real records (synthetic
records, the fallback formats and MAT files are in ``test_wfdb_decode.py``).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import wfdb

from pipeline.core.records import ReadError
from pipeline.sources.wfdb import (
    parse_header,
    physical_units,
    read_header,
    read_signals,
    signal_files,
)
from tests.wfdb_io_support import WfdbSpy, wfdb_physical

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
    expected = wfdb_physical(directory, record)
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
    spy = WfdbSpy(monkeypatch)
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
    np.testing.assert_array_equal(read_signals(header, tmp_path, tmp_path), wfdb_physical(source, "100"))


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
