"""The landing check on records written in every WFDB format (by wfdb-python and by hand): complete
when whole, any cut caught, checksums of big-endian and offset-binary formats, formats not decoded
here size-checked only, shared files, samples per frame and byte offsets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import wfdb

from pipeline.landing.check import COMPLETE, INCOMPLETE, INVALID, check_record

# --------------------------------------------------------------------------- formats


def write_wfdb(folder: Path, name: str, fmt: str, digital: npt.NDArray[np.int32]) -> Path:
    wfdb.wrsamp(
        name,
        fs=250,
        units=["mV"] * digital.shape[1],
        sig_name=[f"s{i}" for i in range(digital.shape[1])],
        d_signal=digital,
        fmt=[fmt] * digital.shape[1],
        adc_gain=[200.0] * digital.shape[1],
        baseline=[0] * digital.shape[1],
        write_dir=str(folder),
    )
    return folder / f"{name}.dat"


@pytest.mark.parametrize(
    ("fmt", "limit"), [("16", 30000), ("24", 2**22), ("32", 2**30), ("80", 120), ("212", 2000)]
)
@pytest.mark.parametrize("n_samples", [1000, 1001])
def test_formats_wfdb_writes_are_complete_and_any_cut_is_caught(
    tmp_path: Path, fmt: str, limit: int, n_samples: int
) -> None:
    digital = np.random.default_rng(1).integers(-limit, limit, size=(n_samples, 3)).astype(np.int32)
    dat = write_wfdb(tmp_path, "rec", fmt, digital)
    assert check_record(tmp_path, "rec.hea").status == COMPLETE
    full = dat.read_bytes()
    for cut in (0, 1, len(full) // 3, len(full) - 1):
        dat.write_bytes(full[:cut])
        assert check_record(tmp_path, "rec.hea").status == INCOMPLETE, cut
    # a changed sample of the right size is caught by the checksum wfdb wrote
    dat.write_bytes(bytes([full[0] ^ 0x01]) + full[1:])
    assert "checksum" in check_record(tmp_path, "rec.hea").reason


def hand_written(folder: Path, fmt: str, n_samples: int, data: bytes, checksum: str = "") -> None:
    (folder / "h.dat").write_bytes(data)
    fields = f"{checksum} 0 s0" if checksum else ""
    (folder / "h.hea").write_text(f"h 1 250 {n_samples}\nh.dat {fmt} 200/mV 16 0 0 {fields}\n")


@pytest.mark.parametrize(
    ("fmt", "encode"),
    [
        ("61", lambda d: d.astype(">i2").tobytes()),
        ("160", lambda d: (d + 32768).astype("<u2").tobytes()),
    ],
)
def test_hand_written_big_endian_and_offset_binary_checksums(
    tmp_path: Path, fmt: str, encode: Callable[[npt.NDArray[np.int64]], bytes]
) -> None:
    digital = np.random.default_rng(2).integers(-3000, 3000, size=500).astype(np.int64)
    data = encode(digital)
    hand_written(tmp_path, fmt, 500, data, checksum=str(int(digital.sum()) % 65536))
    assert np.array_equal(wfdb.rdrecord(str(tmp_path / "h"), physical=False).d_signal[:, 0], digital)
    assert check_record(tmp_path, "h.hea").status == COMPLETE
    hand_written(tmp_path, fmt, 500, bytes(len(data)), checksum=str(int(digital.sum()) % 65536))
    assert "checksum" in check_record(tmp_path, "h.hea").reason


@pytest.mark.parametrize(
    ("fmt", "n_samples", "sizes"), [("310", 7, (10, 12)), ("311", 6, (8, 8)), ("8", 5, (5, 5))]
)
def test_formats_not_decoded_here_are_size_checked_and_say_the_checksum_was_skipped(
    tmp_path: Path, fmt: str, n_samples: int, sizes: tuple[int, int]
) -> None:
    low, high = sizes
    for size in range(low, high + 1):
        hand_written(tmp_path, fmt, n_samples, bytes(size), checksum="123")
        check = check_record(tmp_path, "h.hea")
        assert check.status == COMPLETE, (size, check.problems)
        assert check.notes == (f"h.dat: checksums not verified (format {fmt} is not decoded here)",)
        wfdb.rdrecord(str(tmp_path / "h"), physical=False)  # wfdb accepts that size too
    hand_written(tmp_path, fmt, n_samples, bytes(low - 1), checksum="123")
    assert check_record(tmp_path, "h.hea").status == INCOMPLETE
    hand_written(tmp_path, fmt, n_samples, bytes(high + 1), checksum="123")
    assert check_record(tmp_path, "h.hea").status == INVALID


def test_shared_files_samples_per_frame_and_byte_offsets(tmp_path: Path) -> None:
    """Two signals in a.dat (one at 2 samples per frame) behind a 24-byte prefix, a third in b.dat."""
    rng = np.random.default_rng(3)
    frames = 100
    a = rng.integers(-2000, 2000, size=(frames, 3)).astype("<i2")  # columns: s0, s0, s1
    b = rng.integers(-2000, 2000, size=frames).astype(np.int64)
    (tmp_path / "a.dat").write_bytes(b"P" * 24 + a.tobytes())
    packed = np.zeros(frames // 2 * 3, dtype=np.uint8)
    lo, hi = b[0::2] & 0xFFF, b[1::2] & 0xFFF
    packed[0::3], packed[1::3], packed[2::3] = lo & 0xFF, (lo >> 8) | ((hi >> 8) << 4), hi & 0xFF
    (tmp_path / "b.dat").write_bytes(packed.tobytes())
    s0 = int(a[:, :2].astype(np.int64).sum()) % 65536
    s1 = int(a[:, 2].astype(np.int64).sum()) % 65536
    s2 = int(b.sum()) % 65536
    header = (
        f"m 3 250 {frames}\n"
        f"a.dat 16x2+24 200/mV 16 0 0 {s0} 0 s0\n"
        f"a.dat 16+24 200/mV 16 0 0 {s1} 0 s1\n"
        f"b.dat 212 200/mV 12 0 0 {s2} 0 s2\n"
    )
    (tmp_path / "m.hea").write_text(header)
    record = wfdb.rdrecord(str(tmp_path / "m"), physical=False, smooth_frames=False)
    assert np.array_equal(record.e_d_signal[2], b)
    check = check_record(tmp_path, "m.hea")
    assert check.status == COMPLETE, check.problems
    assert check.files == ("a.dat", "b.dat", "m.hea")
    (tmp_path / "a.dat").write_bytes(b"P" * 24 + a.tobytes()[:-1])
    assert check_record(tmp_path, "m.hea").problems == (
        "a.dat: 623 of 624 bytes the header implies "
        "(format 16+24, 2 signals x 100 samples (3 samples per frame))",
    )
    (tmp_path / "a.dat").write_bytes(b"P" * 24 + a.tobytes())
    (tmp_path / "m.hea").write_text(header.replace(f" {s2} 0 s2", f" {(s2 + 1) % 65536} 0 s2"))
    assert "b.dat: checksum of signal s2" in check_record(tmp_path, "m.hea").reason
