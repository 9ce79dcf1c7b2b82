"""Shared by the reader property tests (``tests/test_properties_*.py``): hypothesis settings, sample
encoders, generated WFDB records and the contract every read must keep (see
:mod:`tests.test_properties_readers`)."""

from __future__ import annotations

import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from pipeline.core.records import Discovery, InputUnit, Provenance, ReadError, Record, Rejection
from pipeline.sources.base import SourceReader, list_files
from pipeline.sources.wfdb import mv_factor, read_header

IntArray = npt.NDArray[np.int64]
# The known overflow of absurd scales (see the xfail tests) warns while it yields inf.
OVERFLOW_WARNING = pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# (smallest valid sample, largest, the code WFDB reserves for "missing")
RANGES = {"16": (-32767, 32767, -32768), "212": (-2047, 2047, -2048), "80": (-127, 127, -128)}
UNITS = {"mV": 1.0, "mv": 1.0, "uV": 1e-3, "V": 1e3}
MAT4_HEADER = struct.Struct("<5i")


# --------------------------------------------------------------------------- encoders


def encode(fmt: str, digital: IntArray) -> bytes:
    """Frame-interleaved samples of ``digital`` ``(C, T)`` in WFDB format ``fmt``."""
    flat = digital.T.reshape(-1)
    if fmt == "16":
        return flat.astype("<i2").tobytes()
    if fmt == "80":
        return (flat + 128).astype(np.uint8).tobytes()
    pairs = np.concatenate([flat, np.zeros(flat.size % 2, dtype=np.int64)]).reshape(-1, 2) & 0xFFF
    out = np.empty((pairs.shape[0], 3), dtype=np.uint8)
    out[:, 0] = pairs[:, 0] & 0xFF
    out[:, 1] = ((pairs[:, 0] >> 8) & 0x0F) | (((pairs[:, 1] >> 8) & 0x0F) << 4)
    out[:, 2] = pairs[:, 1] & 0xFF
    return out.tobytes()[: -(-flat.size * 3 // 2)]


def mat_v4(val: IntArray, type_code: int = 30, name: bytes = b"val\x00") -> bytes:
    """A MATLAB v4 file holding ``val`` ``(rows, cols)`` as int16, column-major (as CinC ships)."""
    rows, cols = val.shape
    head = MAT4_HEADER.pack(type_code, rows, cols, 0, len(name)) + name
    return head + val.T.astype("<i2").tobytes()


# --------------------------------------------------------------------------- generated records


@dataclass(frozen=True)
class Channel:
    gain: float  # adu per unit as written; 0 means WFDB's default 200
    baseline: int | None  # None: not written, so adc_zero is the baseline
    adc_zero: int
    units: str

    @property
    def effective_gain(self) -> float:
        return self.gain or 200.0

    @property
    def effective_baseline(self) -> int:
        return self.adc_zero if self.baseline is None else self.baseline

    def gain_field(self) -> str:
        base = "" if self.baseline is None else f"({self.baseline})"
        return f"{self.gain!r}{base}/{self.units}"


@dataclass(frozen=True)
class WfdbCase:
    fmt: str
    fs: float
    digital: IntArray  # (C, T), invalid codes included where missing
    channels: tuple[Channel, ...]

    @property
    def n_sig(self) -> int:
        return int(self.digital.shape[0])

    @property
    def n_samples(self) -> int:
        return int(self.digital.shape[1])

    def header(self, name: str, signal_file: str) -> str:
        lines = [f"{name} {self.n_sig} {self.fs!r} {self.n_samples}"]
        for i, ch in enumerate(self.channels):
            init = int(self.digital[i, 0])
            lines.append(f"{signal_file} {self.fmt} {ch.gain_field()} 12 {ch.adc_zero} {init} 0 0 lead{i}")
        return "\n".join(lines) + "\n"

    def expected_mv(self) -> npt.NDArray[np.float64]:
        """``(adc - baseline) / gain`` converted to mV, NaN at the invalid-sample code."""
        out = np.empty(self.digital.shape, dtype=np.float64)
        for i, ch in enumerate(self.channels):
            out[i] = (self.digital[i] - ch.effective_baseline) / ch.effective_gain * UNITS[ch.units]
        out[self.digital == RANGES[self.fmt][2]] = np.nan
        return out


@st.composite
def channels(draw: st.DrawFn) -> Channel:
    gain = draw(st.one_of(st.just(0.0), st.floats(0.5, 1e5).map(lambda g: round(g, 4))))
    baseline = draw(st.one_of(st.none(), st.integers(-2000, 2000)))
    return Channel(gain, baseline, draw(st.integers(-2000, 2000)), draw(st.sampled_from(sorted(UNITS))))


@st.composite
def wfdb_cases(draw: st.DrawFn, fmts: tuple[str, ...] = ("16", "212", "80")) -> WfdbCase:
    fmt = draw(st.sampled_from(fmts))
    lo, hi, invalid = RANGES[fmt]
    c = draw(st.integers(1, 4))
    t = draw(st.one_of(st.integers(1, 8), st.integers(9, 3000)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    digital = rng.integers(lo, hi + 1, size=(c, t), dtype=np.int64)
    # the extremes of the range and the invalid code are where decoders go wrong
    for value in (lo, hi, invalid):
        if draw(st.booleans()):
            digital[draw(st.integers(0, c - 1)), draw(st.integers(0, t - 1))] = value
    fs = draw(st.sampled_from([100.0, 128.0, 250.0, 257.0, 360.0, 500.0, 1000.0]))
    return WfdbCase(fmt, fs, digital, tuple(draw(channels()) for _ in range(c)))


# --------------------------------------------------------------------------- reading helpers


@contextmanager
def scratch() -> Iterator[Path]:
    """A fresh folder per hypothesis example (function-scoped fixtures are shared across examples)."""
    with tempfile.TemporaryDirectory(prefix="ecgpipe-prop-") as tmp:
        yield Path(tmp)


def provenance(reader: SourceReader, unit: InputUnit) -> Provenance:
    return Provenance(files=tuple((f, "0" * 64) for f in unit.files), reader=reader.reader_id)


def read_everything(reader: SourceReader) -> tuple[Discovery, list[Record], list[str]]:
    """Discover and read every unit: the records and the reasons of every rejection or ReadError.

    Any other exception propagates and fails the calling test.
    """
    disc = reader.discover()
    accounted = {f for u in disc.units for f in u.files} | set(disc.metadata_files)
    accounted |= {f for r in disc.rejected for f in r.files} | {r.item for r in disc.rejected}
    assert set(list_files(reader.root)) <= accounted, "discovery left files unaccounted for"
    reasons = [r.reason for r in disc.rejected]
    records: list[Record] = []
    for unit in disc.units:
        try:
            for item in reader.read(unit, provenance(reader, unit)):
                if isinstance(item, Rejection):
                    reasons.append(item.reason)
                else:
                    records.append(item)
        except ReadError as exc:
            reasons.append(str(exc))
    assert all(reason.strip() for reason in reasons), "a rejection without a reason"
    return disc, records, reasons


def assert_well_formed(
    record: Record, n_sig: int | None = None, n_samples: int | None = None, allow_inf: bool = False
) -> None:
    """float32 ``(C, T)`` with C and T as declared (where known), and finite or NaN (missing) only.

    ``allow_inf`` tolerates the known overflow of absurd header scales (see the xfail test
    ``test_a_gain_too_small_for_float32_is_refused``) so the fuzzers keep looking for other faults.
    """
    x = record.signal
    assert x.dtype == np.float32 and x.ndim == 2
    assert x.shape[0] == len(record.leads)
    if n_sig is not None:
        assert x.shape[0] == n_sig
    if n_samples is not None:
        assert x.shape[1] == n_samples
    if not allow_inf:
        assert not np.isinf(x).any(), f"{record.record_id}: infinite sample values"


def scale_overflows_float32(header_path: Path) -> bool:
    """True when the header's baseline/gain can push a 16-bit sample beyond float32 (the known bug)."""
    try:
        header = read_header(header_path)
    except ReadError:
        return False
    for s in header.signals:
        divisor = abs(s.gain / (mv_factor(s.units) or 1.0))
        if (2**16 + abs(s.baseline)) / divisor > float(np.finfo(np.float32).max) / 2:
            return True
    return False


def assert_values(record: Record, expected: npt.NDArray[np.float64]) -> None:
    x = record.signal
    missing = np.isnan(expected)
    np.testing.assert_array_equal(np.isnan(x), missing)
    assert np.isfinite(x[~missing]).all()
    np.testing.assert_allclose(x[~missing], expected[~missing], rtol=2e-6, atol=1e-12)


def write_wfdb(root: Path, case: WfdbCase, name: str = "rec") -> tuple[Path, Path]:
    header = root / f"{name}.hea"
    data = root / f"{name}.dat"
    header.write_text(case.header(name, data.name))
    data.write_bytes(encode(case.fmt, case.digital))
    return header, data
