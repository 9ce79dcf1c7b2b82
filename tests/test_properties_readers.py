"""Hypothesis properties of the source readers on generated on-disk files.

Generated inputs, written to a fresh temporary folder per example:

- WFDB records: a header plus signal bytes in formats 16, 212 and 80 (random leads, lengths,
  gains, baselines, voltage units, invalid-sample codes), read by :class:`WfdbFolderReader`;
- MATLAB v4 ``.mat`` records as CinC 2017 (with ``REFERENCE.csv``) and CinC 2020/2021 (``#Dx:``)
  pairs, read by :class:`Cinc2017Reader` and :class:`Cinc2021Reader`;
- UCR ``.txt`` rows, read by :class:`UcrReader`;
- and corrupted variants of each (fuzzed header fields, truncated or padded files, foreign MAT
  type codes, garbage tokens).

The contract checked everywhere: discovery then reading either yields Records whose signal is
float32 ``(C, T)`` with ``C`` and ``T`` as the header says, in mV, equal to
``(adc - baseline) / gain`` (NaN exactly where the source marks a sample missing, finite
elsewhere), or raises :class:`ReadError` / yields a :class:`Rejection` with a reason; never another
exception. Every file under the root is accounted for by discovery.
"""

from __future__ import annotations

import struct
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.core.records import Discovery, InputUnit, Provenance, ReadError, Record, Rejection
from pipeline.sources.base import SourceReader, list_files
from pipeline.sources.cinc2017 import Cinc2017Reader
from pipeline.sources.cinc2021 import Cinc2021Reader
from pipeline.sources.ucr import UcrReader
from pipeline.sources.wfdb import mv_factor, read_header
from pipeline.sources.wfdb_folder import WfdbFolderReader

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


# --------------------------------------------------------------------------- WFDB


@PROPS
@given(case=wfdb_cases())
def test_wfdb_record_reads_as_adc_minus_baseline_over_gain_in_mv(case: WfdbCase) -> None:
    with scratch() as root:
        write_wfdb(root, case)
        _, records, reasons = read_everything(WfdbFolderReader("w", root))
        if np.isnan(case.expected_mv()).all():  # documented: a record of only invalid samples is rejected
            assert not records and reasons == ["every sample is invalid (NaN)"]
            return
        assert not reasons and len(records) == 1
        rec = records[0]
        assert_well_formed(rec, case.n_sig, case.n_samples)
        assert rec.fs_hz == case.fs and rec.record_id == "w:rec"
        assert_values(rec, case.expected_mv())


@PROPS
@given(case=wfdb_cases(), trailing=st.binary(min_size=1, max_size=64))
def test_bytes_after_the_declared_samples_are_ignored(case: WfdbCase, trailing: bytes) -> None:
    with scratch() as root:
        _, data = write_wfdb(root, case)
        data.write_bytes(data.read_bytes() + trailing)
        _, records, reasons = read_everything(WfdbFolderReader("w", root))
        assert len(records) + len(reasons) == 1
        for rec in records:
            assert_values(rec, case.expected_mv())


@PROPS
@given(case=wfdb_cases(), cut=st.integers(1, 10_000))
def test_a_truncated_signal_file_is_a_read_error_naming_the_sizes(case: WfdbCase, cut: int) -> None:
    with scratch() as root:
        _, data = write_wfdb(root, case)
        raw = data.read_bytes()
        data.write_bytes(raw[: max(0, len(raw) - cut)])
        _, records, reasons = read_everything(WfdbFolderReader("w", root))
        assert not records and len(reasons) == 1
        assert "bytes" in reasons[0] and "rec.dat" in reasons[0]


@st.composite
def field_edits(draw: st.DrawFn) -> tuple[int, int, str]:
    """(line, field, replacement) for one whitespace-separated header field; "" deletes it."""
    token = st.one_of(
        st.just(""),
        st.integers(-(2**70), 2**70).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.text(alphabet="0123456789+-.eExX:/()mVuµ~#abc", min_size=1, max_size=12),
    )
    return draw(st.integers(0, 4)), draw(st.integers(0, 9)), draw(token)


def edit_header(text: str, edits: list[tuple[int, int, str]]) -> str:
    lines = text.splitlines()
    for line_no, field, new in edits:
        if line_no >= len(lines):
            continue
        fields = lines[line_no].split()
        if field < len(fields):
            fields[field] = new
        elif new:
            fields.append(new)
        lines[line_no] = " ".join(f for f in fields if f)
    return "\n".join(lines) + "\n"


@OVERFLOW_WARNING
@FUZZ
@given(case=wfdb_cases(), edits=st.lists(field_edits(), min_size=1, max_size=4))
def test_a_fuzzed_wfdb_header_reads_or_fails_with_a_read_error(
    case: WfdbCase, edits: list[tuple[int, int, str]]
) -> None:
    with scratch() as root:
        header, _ = write_wfdb(root, case)
        header.write_text(edit_header(header.read_text(), edits))
        _, records, _ = read_everything(WfdbFolderReader("w", root))
        for rec in records:
            assert_well_formed(rec, allow_inf=scale_overflows_float32(header))


@OVERFLOW_WARNING
@FUZZ
@given(case=wfdb_cases(), edits=st.lists(field_edits(), min_size=1, max_size=3))
def test_a_fuzzed_signal_line_keeps_the_shape_the_header_declares(
    case: WfdbCase, edits: list[tuple[int, int, str]]
) -> None:
    # Only signal-line fields (gain, baseline, ADC fields, description) change: C and T stay known.
    edits = [(max(1, line), max(2, field), new) for line, field, new in edits]
    with scratch() as root:
        header, _ = write_wfdb(root, case)
        header.write_text(edit_header(header.read_text(), edits))
        _, records, _ = read_everything(WfdbFolderReader("w", root))
        for rec in records:
            assert_well_formed(rec, case.n_sig, case.n_samples, allow_inf=scale_overflows_float32(header))


@OVERFLOW_WARNING
def test_a_gain_too_small_for_float32_is_refused() -> None:
    case = WfdbCase("16", 500.0, np.array([[1, -1, 0]]), (Channel(1e-40, 0, 0, "mV"),))
    with scratch() as root:
        write_wfdb(root, case)
        _, records, _ = read_everything(WfdbFolderReader("w", root))
        for rec in records:
            assert_well_formed(rec, 1, 3)


# --------------------------------------------------------------------------- CinC MAT v4 pairs


@st.composite
def mat_cases(draw: st.DrawFn, max_c: int = 12) -> tuple[IntArray, float, int]:
    """(val ``(C, N)`` int16 values, gain, baseline) of a CinC-style MAT v4 record."""
    c = draw(st.integers(1, max_c))
    n = draw(st.one_of(st.integers(1, 8), st.integers(9, 4000)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    val = rng.integers(-32767, 32768, size=(c, n), dtype=np.int64)
    gain = draw(st.sampled_from([1000.0, 200.0, 2000.0, 4.88]))
    return val, gain, draw(st.integers(-100, 100))


def cinc_header(name: str, val: IntArray, gain: float, baseline: int, style: str, dx: str = "") -> str:
    """A CinC header in the raw challenge style (``A00001 1 300 N``, Georgia ``E00001.mat ...``)
    or the wfdb-python rewritten style (``16x1+24 1000.0(0)/mV``)."""
    c, n = val.shape
    if style == "georgia":
        lines = [f"{name}.mat {c} 500 {n} 05-May-2020 14:50:55"]
    else:
        lines = [f"{name} {c} {300 if c == 1 else 500} {n}"]
    fmt = "16x1+24" if style == "rewritten" else "16+24"
    for i in range(c):
        lines.append(f"{name}.mat {fmt} {gain!r}({baseline})/mV 16 0 {int(val[i, 0])} 0 0 lead{i}")
    if dx:
        lines.append(f"#Dx: {dx}")
    return "\n".join(lines) + "\n"


def expected_mat_mv(val: IntArray, gain: float, baseline: int) -> npt.NDArray[np.float64]:
    expected = (val - baseline) / gain
    expected[val == -32768] = np.nan
    return expected


@PROPS
@given(
    case=mat_cases(max_c=1),
    label=st.sampled_from(["N", "A", "O", "~"]),
    style=st.sampled_from(["raw", "rewritten"]),
)
def test_cinc2017_pair_reads_the_mat_matrix_in_mv_with_its_reference_label(
    case: tuple[IntArray, float, int], label: str, style: str
) -> None:
    val, gain, baseline = case
    with scratch() as root:
        (root / "A00001.hea").write_text(cinc_header("A00001", val, gain, baseline, style))
        (root / "A00001.mat").write_bytes(mat_v4(val))
        (root / "REFERENCE.csv").write_bytes(f"A00001,{label}\r\n".encode())
        _, records, reasons = read_everything(Cinc2017Reader("c17", root))
        assert not reasons and len(records) == 1
        assert_well_formed(records[0], 1, val.shape[1])
        assert [r.code for r in records[0].raw_labels] == [label]
        assert_values(records[0], expected_mat_mv(val, gain, baseline))


@PROPS
@given(
    case=mat_cases(),
    style=st.sampled_from(["raw", "georgia", "rewritten"]),
    codes=st.lists(st.integers(10**8, 10**9).map(str), min_size=1, max_size=4),
)
def test_cinc2021_pair_reads_every_lead_in_mv_and_the_dx_codes(
    case: tuple[IntArray, float, int], style: str, codes: list[str]
) -> None:
    val, gain, baseline = case
    with scratch() as root:
        (root / "E00001.hea").write_text(cinc_header("E00001", val, gain, baseline, style, ",".join(codes)))
        (root / "E00001.mat").write_bytes(mat_v4(val))
        _, records, reasons = read_everything(Cinc2021Reader("c21", root))
        assert not reasons and len(records) == 1
        assert_well_formed(records[0], val.shape[0], val.shape[1])
        assert [r.code for r in records[0].raw_labels] == codes
        assert_values(records[0], expected_mat_mv(val, gain, baseline))


@st.composite
def mat_corruptions(draw: st.DrawFn) -> Callable[[bytes], bytes]:
    """One way a ``.mat`` file can be damaged or foreign."""
    kind = draw(st.sampled_from(["type", "dims", "truncate", "v5", "name", "garbage"]))
    if kind == "type":
        code = draw(st.integers(0, 100).filter(lambda t: t != 30))
        return lambda raw: MAT4_HEADER.pack(code, *MAT4_HEADER.unpack(raw[:20])[1:]) + raw[20:]
    if kind == "dims":
        rows, cols = draw(st.integers(0, 2**31 - 1)), draw(st.integers(0, 2**31 - 1))
        return lambda raw: raw[:4] + struct.pack("<2i", rows, cols) + raw[12:]
    if kind == "truncate":
        keep = draw(st.integers(0, 200))
        return lambda raw: raw[: min(keep, len(raw) - 1)]
    if kind == "v5":
        return lambda raw: b"MATLAB 5.0 MAT-file" + raw[19:]
    if kind == "name":
        length = draw(st.integers(0, 64))
        return lambda raw: raw[:16] + struct.pack("<i", length) + raw[20:]
    junk = draw(st.binary(min_size=0, max_size=300))
    return lambda raw: junk


@FUZZ
@given(
    case=mat_cases(max_c=3), damage=mat_corruptions(), reader_kind=st.sampled_from(["cinc2017", "cinc2021"])
)
def test_a_damaged_or_foreign_mat_file_reads_or_fails_with_a_read_error(
    case: tuple[IntArray, float, int], damage: Callable[[bytes], bytes], reader_kind: str
) -> None:
    val, gain, baseline = case
    with scratch() as root:
        (root / "A00001.hea").write_text(cinc_header("A00001", val, gain, baseline, "raw", "426783006"))
        (root / "A00001.mat").write_bytes(damage(mat_v4(val)))
        (root / "REFERENCE.csv").write_text("A00001,N\n")
        reader: SourceReader = (
            Cinc2017Reader("c", root) if reader_kind == "cinc2017" else Cinc2021Reader("c", root)
        )
        _, records, _ = read_everything(reader)
        for rec in records:
            assert_well_formed(rec, val.shape[0], val.shape[1])


# --------------------------------------------------------------------------- UCR text rows

finite_values = st.floats(-1e6, 1e6, allow_nan=False, width=32)
labels = st.one_of(st.integers(1, 5).map(str), st.sampled_from(["1.0", "2.0000000e+00", "normal", "'3'"]))


@PROPS
@given(
    rows=st.lists(
        st.tuples(labels, st.lists(finite_values, min_size=1, max_size=30)), min_size=1, max_size=20
    )
)
def test_ucr_rows_become_float32_beats_or_rejections_one_per_row_in_order(
    rows: list[tuple[str, list[float]]],
) -> None:
    text = "".join(f"  {label} " + " ".join(f"{v:.9e}" for v in values) + "\n" for label, values in rows)
    with scratch() as root:
        (root / "ECG_TRAIN.txt").write_text(text)
        reader = UcrReader("u", root)
        disc, records, reasons = read_everything(reader)
        assert len(records) + len(reasons) == len(rows)
        by_row = {int(r.meta["row"]): r for r in records}
        for i, (_, values) in enumerate(rows):
            if i not in by_row:
                continue
            rec = by_row[i]
            assert_well_formed(rec, 1, len(values))
            np.testing.assert_array_equal(rec.signal[0], np.asarray(values, dtype=np.float32))
        modal = max({len(v) for _, v in rows}, key=lambda n: (sum(len(v) == n for _, v in rows), n))
        assert sorted(by_row) == [i for i, (_, v) in enumerate(rows) if len(v) == modal]


tokens = st.one_of(
    finite_values.map(repr),
    st.sampled_from(["NaN", "nan", "?", "abc", "1,5", "--1", "0x10", "1e5", "", "\t"]),
)


@FUZZ
@given(lines=st.lists(st.lists(tokens, min_size=0, max_size=12), min_size=0, max_size=12))
def test_ucr_garbage_rows_never_raise_anything_but_read_error(lines: list[list[str]]) -> None:
    with scratch() as root:
        (root / "ECG_TEST.txt").write_text("\n".join(" ".join(tokens) for tokens in lines) + "\n")
        _, records, _ = read_everything(UcrReader("u", root))
        for rec in records:
            assert_well_formed(rec, 1)


@OVERFLOW_WARNING
def test_ucr_values_beyond_float32_are_rejected_not_stored_as_inf() -> None:
    with scratch() as root:
        (root / "ECG_TRAIN.txt").write_text("1 0.5 1e39 0.25\n2 0.5 inf 0.25\n1 0.1 0.2 0.3\n")
        _, records, _ = read_everything(UcrReader("u", root))
        for rec in records:
            assert_well_formed(rec, 1, 3)
