"""WFDB signal decoding on synthetic records: sample codes, units, the formats that fall back to
wfdb-python, refused signal files and MATLAB ``.mat`` records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pytest
import scipy.io
import wfdb

from pipeline.core.records import ReadError
from pipeline.sources.wfdb import (
    mv_factor,
    physical_units,
    read_header,
    read_signals,
    sample_rate_hz,
)
from tests.wfdb_io_support import WfdbSpy, wfdb_physical, write_record

# --------------------------------------------------------------------------- synthetic records


def test_header_claiming_more_samples_than_file_raises_before_allocating(tmp_path: Path) -> None:
    hea = write_record(tmp_path, "big", "big 2 500 4000000000000\nbig.dat 16\nbig.dat 16\n", b"\x00" * 40)
    with pytest.raises(ReadError, match=r"^big.dat: header declares 4000000000000 samples x 2 signals"):
        read_signals(read_header(hea), tmp_path, tmp_path)


def test_missing_sample_count_is_taken_from_file_size(tmp_path: Path) -> None:
    values = np.array([[1, -2], [3, 4], [5, 6]], dtype="<i2")
    hea = write_record(
        tmp_path, "r", "r 2 100\nr.dat 16 100/mV\nr.dat 16 100/mV\n", values.tobytes() + b"\x07"
    )
    signal = read_signals(read_header(hea), tmp_path, tmp_path)
    np.testing.assert_array_equal(signal, (values.T / 100.0).astype(np.float32))


def test_invalid_sample_codes_become_nan_like_wfdb(tmp_path: Path) -> None:
    d16 = np.array([[100, -32768], [-32768, 5]], dtype="<i2").tobytes()
    d80 = bytes([128 + 10, 0, 0, 128 - 3])  # stored offset binary; 0 is the invalid -128
    # 212 pair (-2048, 1) packed: low byte, high nibbles, low byte
    d212 = bytes([0x00, 0x08, 0x01, 0x01, 0x80, 0x00])  # samples -2048, 1, 1, -2048
    for name, fmt, data in [("a", "16", d16), ("b", "80", d80), ("c", "212", d212)]:
        hea = write_record(
            tmp_path, name, f"{name} 2 100 2\n{name}.dat {fmt} 10/mV\n{name}.dat {fmt} 10/mV\n", data
        )
        signal = read_signals(read_header(hea), tmp_path, tmp_path)
        np.testing.assert_array_equal(signal, wfdb_physical(tmp_path, name))
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
    np.testing.assert_array_equal(read_signals(header, tmp_path, tmp_path), wfdb_physical(tmp_path, "odd"))


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
    expected = wfdb_physical(tmp_path, "rec")
    expected[1] /= 1000.0
    spy = WfdbSpy(monkeypatch)
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
    hea = write_record(tmp_path, "r", f"r 2 100 3\nr.dat {fmt} 100/mV\nr.dat {fmt} 100/mV\n", raw)
    signal = read_signals(read_header(hea), tmp_path, tmp_path)
    np.testing.assert_array_equal(signal, (values.T / 100.0).astype(np.float32))
    np.testing.assert_array_equal(signal, wfdb_physical(tmp_path, "r"))


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


def test_fallback_with_samples_per_frame_keeps_every_sample_like_unsmoothed_wfdb(tmp_path: Path) -> None:
    frames = np.array([[1, 2, 10], [3, 4, 20], [5, 6, 30]], dtype="<i2")  # sig0 x2 per frame, sig1 x1
    hea = write_record(
        tmp_path, "spf", "spf 2 100 3\nspf.dat 16x2 10/mV\nspf.dat 16 10/mV\n", frames.tobytes()
    )
    header = read_header(hea)
    expected = wfdb.rdrecord(str(tmp_path / "spf"), smooth_frames=False, return_res=64).e_p_signal
    np.testing.assert_array_equal(
        read_signals(header, tmp_path, tmp_path, [0])[0], expected[0].astype(np.float32)
    )
    assert sample_rate_hz(header, [0]) == 200.0 and sample_rate_hz(header, [1]) == 100.0
    both = read_signals(header, tmp_path, tmp_path)
    assert both.shape == (2, 6)  # the 100 Hz signal interpolated onto the 200 Hz grid, never averaged
    np.testing.assert_allclose(both[1], [1.0, 1.25, 1.75, 2.25, 2.75, 3.0])


def test_truncated_file_in_fallback_format_raises_before_wfdb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hea = write_record(tmp_path, "t", "t 1 100 10\nt.dat 24\n", b"\x00" * 29)
    spy = WfdbSpy(monkeypatch)
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


def _mat_record(directory: Path, val: npt.NDArray[Any], fmt: Literal["4", "5"] = "4") -> Path:
    scipy.io.savemat(str(directory / "m.mat"), {"val": val}, format=fmt)
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
    hea = write_record(tmp_path, "d8", "d8 1 100 5\nd8.dat 8 10/mV 8 0 5\n", diffs.tobytes())
    signal = read_signals(read_header(hea), tmp_path, tmp_path)
    expected = wfdb_physical(tmp_path, "d8")
    np.testing.assert_array_equal(signal, expected)
    assert signal[0, 0] == pytest.approx(0.5)  # the initial value 5 adu at 10 adu/mV
