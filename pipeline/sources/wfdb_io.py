"""Tolerant WFDB header parsing and fast signal decoding.

``parse_header`` accepts every header quirk met in real PhysioNet/CinC data (record names
carrying ``.mat``, dates before times, ``16x1+24`` formats, gains such as ``1000.0(0)/mv``,
missing units, CRLF line endings, blank lines). ``read_signals`` decodes formats 16, 212 and
80 (optionally behind a byte offset, as in CinC MATLAB v4 ``.mat`` files) with numpy, and
hands every other layout to ``wfdb.rdrecord`` through a normalised temporary header.

Every decode checks the signal file's size against the header's claimed length before it
allocates anything, and refuses a file holding well beyond it (the header misdescribes it).
"""

from __future__ import annotations

import math
import os
import re
import stat
import struct
import tempfile
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import numpy.typing as npt

from pipeline.core.leads import canonical_leads
from pipeline.core.records import ReadError, Rejection
from pipeline.sources.base import confined_path

FloatArray = npt.NDArray[np.float32]

DEFAULT_GAIN = 200.0  # WFDB: a gain of 0 or none means 200 adu per physical unit
DEFAULT_FS_HZ = 250.0  # WFDB: a record line without a sampling frequency means 250 Hz
DEFAULT_UNITS = "mV"

# Bytes per sample (as a ratio) of each fixed-width WFDB format; FLAC formats (508/516/524)
# are compressed, so their length cannot be checked from the file size.
BYTES_PER_SAMPLE: dict[str, tuple[int, int]] = {
    "8": (1, 1),
    "16": (2, 1),
    "24": (3, 1),
    "32": (4, 1),
    "61": (2, 1),
    "80": (1, 1),
    "160": (2, 1),
    "212": (3, 2),
    "310": (4, 3),
    "311": (4, 3),
}
FLAC_FORMATS = frozenset({"508", "516", "524"})
KNOWN_FORMATS = frozenset(BYTES_PER_SAMPLE) | FLAC_FORMATS
_FAST_FORMATS = frozenset({"16", "212", "80"})

# Digital value WFDB uses for a missing sample, per format (format 8 has none).
INVALID_SAMPLE = {"80": -(2**7), "212": -(2**11), "16": -(2**15)}

# Multiplier taking a voltage in these units (compared lower-cased) to mV.
_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3, "nv": 1e-6}

_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_FORMAT = re.compile(r"(?P<fmt>\d+)(?:x(?P<spf>\d+))?(?::(?P<skew>\d+))?(?:\+(?P<offset>\d+))?")
_GAIN = re.compile(r"(?P<gain>[^(/]*)(?:\((?P<baseline>[^)]*)\))?(?:/(?P<units>.*))?")
_SUFFIXES = (".mat", ".hea", ".dat")
_MAX_SIGNALS = 100_000
_MAT4_HEADER = struct.Struct("<5i")  # type, rows, cols, imaginary flag, name length
_MAT4_INT16 = 30  # MAT v4 type code: little-endian, full matrix, int16
MAX_HEADER_BYTES = 16 << 20  # far above any real header; guards against reading a huge file as one
_SURPLUS_BYTES = 64  # trailing bytes beyond the declared samples ignored (plus 1% of the data)


@dataclass(frozen=True)
class SignalSpec:
    """One signal line of a WFDB header.

    ``gain`` is in adu per physical unit (a header gain of 0 becomes WFDB's default 200);
    ``baseline`` defaults to ``adc_zero`` when the header gives none; ``units`` defaults to mV.
    """

    file_name: str
    fmt: str
    samples_per_frame: int
    skew: int
    byte_offset: int
    gain: float
    baseline: int
    units: str
    adc_res: int
    adc_zero: int
    init_value: int | None
    checksum: int | None
    block_size: int
    description: str


@dataclass(frozen=True)
class WfdbHeader:
    """A parsed single-segment WFDB header.

    ``record_name`` never carries a ``.mat``/``.hea`` suffix; ``fs_hz`` is the sampling rate in
    Hz; ``n_samples`` is the number of frames per signal (None when the header leaves it out);
    ``comments`` are the comment lines without their leading ``#``, stripped.
    """

    record_name: str
    n_sig: int
    fs_hz: float
    n_samples: int | None
    signals: tuple[SignalSpec, ...]
    comments: tuple[str, ...]


# --------------------------------------------------------------------------- header parsing


class _Line:
    """A header line with its 1-based number, for error messages."""

    def __init__(self, source: str, number: int, text: str) -> None:
        self.source = source
        self.number = number
        self.text = text

    def error(self, field: str, value: str, expected: str) -> ReadError:
        return ReadError(f"{self.source}: line {self.number}: field {field} = {value!r}; expected {expected}")

    def int_field(self, field: str, value: str, minimum: int | None = None) -> int:
        if not _INT.fullmatch(value):
            raise self.error(field, value, "an integer")
        number = int(value)
        if minimum is not None and number < minimum:
            raise self.error(field, value, f"an integer >= {minimum}")
        return number

    def float_field(self, field: str, value: str) -> float:
        if not _FLOAT.fullmatch(value):
            raise self.error(field, value, "a number")
        number = float(value)
        if not math.isfinite(number):
            raise self.error(field, value, "a finite number")
        return number


def parse_header(text: str, source: str) -> WfdbHeader:
    """Parse the text of a single-segment WFDB header; ``source`` names it in errors.

    Raises :class:`ReadError` naming the file, line and field for any malformed field.
    """
    lines, comments = _split_lines(text.lstrip("\ufeff"), source)
    if not lines:
        raise ReadError(f"{source}: no record line; expected 'name n_sig [fs [n_samples ...]]'")
    record_name, n_sig, fs_hz, n_samples = _parse_record_line(lines[0])
    signal_lines = lines[1:]
    if len(signal_lines) != n_sig:
        raise ReadError(
            f"{source}: record line declares {n_sig} signals but the header has {len(signal_lines)} "
            "signal lines"
        )
    signals = tuple(_parse_signal_line(line) for line in signal_lines)
    return WfdbHeader(record_name, n_sig, fs_hz, n_samples, signals, tuple(comments))


def read_header(path: Path, source: str | None = None) -> WfdbHeader:
    """Read and parse a ``.hea`` file (UTF-8, falling back to Latin-1 for e.g. ``µV``).

    ``source`` names the file in errors (default: its file name).
    """
    source = source or Path(path).name
    try:
        size = Path(path).stat().st_size
        if size > MAX_HEADER_BYTES:
            raise ReadError(f"{source}: header is {size} bytes; expected at most {MAX_HEADER_BYTES}")
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ReadError(f"{source}: cannot read header: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return parse_header(text, source)


def _split_lines(text: str, source: str) -> tuple[list[_Line], list[str]]:
    """Non-comment lines (numbered) and comment texts; blank lines are dropped."""
    lines: list[_Line] = []
    comments: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#"):
            comments.append(stripped[1:].strip())
        elif stripped:
            lines.append(_Line(source, number, stripped))
    return lines, comments


def _strip_suffix(name: str) -> str:
    for suffix in _SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _parse_record_line(line: _Line) -> tuple[str, int, float, int | None]:
    """(record name, n_sig, fs_hz, n_samples) from the record line.

    Base time and date are not used; they are ignored whatever their order (Georgia CinC 2020
    headers put the date first, which ``wfdb.rdheader`` rejects).
    """
    fields = line.text.split()
    name_field = fields[0]
    if "/" in name_field:
        raise line.error("record name", name_field, "a single-segment record (multi-segment is unsupported)")
    if len(fields) < 2:
        raise line.error("number of signals", "", "an integer after the record name")
    n_sig = line.int_field("number of signals", fields[1], minimum=0)
    if n_sig > _MAX_SIGNALS:
        raise line.error("number of signals", fields[1], f"at most {_MAX_SIGNALS}")
    fs_hz = DEFAULT_FS_HZ
    if len(fields) > 2:
        fs_text = fields[2].split("/", 1)[0]
        fs_hz = line.float_field("sampling frequency", fs_text)
        if fs_hz <= 0:
            raise line.error("sampling frequency", fs_text, "a positive number of Hz")
    n_samples: int | None = None
    if len(fields) > 3:
        n_samples = line.int_field("number of samples", fields[3], minimum=0) or None
    return _strip_suffix(name_field), n_sig, fs_hz, n_samples


def _parse_signal_line(line: _Line) -> SignalSpec:
    fields = line.text.split(maxsplit=8)
    if len(fields) < 2:
        raise line.error("format", "", "'file_name format ...' on a signal line")
    file_name = fields[0]
    if "\x00" in file_name:
        # A NUL byte cannot be in a path; os calls would raise ValueError instead of a ReadError.
        raise line.error("file name", file_name, "a file name without NUL bytes")
    fmt, spf, skew, offset = _parse_format(line, fields[1])
    adc_zero = line.int_field("ADC zero", fields[4]) if len(fields) > 4 else 0
    gain, baseline, units = _parse_gain(line, fields[2] if len(fields) > 2 else "", adc_zero)
    adc_res = line.int_field("ADC resolution", fields[3], minimum=0) if len(fields) > 3 else 0
    if adc_res > 64:
        raise line.error("ADC resolution", fields[3], "at most 64 bits")
    init_value = line.int_field("initial value", fields[5]) if len(fields) > 5 else None
    checksum = line.int_field("checksum", fields[6]) if len(fields) > 6 else None
    block_size = line.int_field("block size", fields[7], minimum=0) if len(fields) > 7 else 0
    description = fields[8].strip() if len(fields) > 8 else ""
    return SignalSpec(
        file_name=file_name,
        fmt=fmt,
        samples_per_frame=spf,
        skew=skew,
        byte_offset=offset,
        gain=gain,
        baseline=baseline,
        units=units,
        adc_res=adc_res,
        adc_zero=adc_zero,
        init_value=init_value,
        checksum=checksum,
        block_size=block_size,
        description=description,
    )


def _parse_format(line: _Line, text: str) -> tuple[str, int, int, int]:
    """(format, samples per frame, skew, byte offset) from e.g. ``16``, ``16x1+24``, ``212:3``."""
    match = _FORMAT.fullmatch(text)
    if match is None:
        raise line.error("format", text, "'FMT[xSPF][:SKEW][+OFFSET]'")
    fmt = str(int(match["fmt"]))
    if fmt not in KNOWN_FORMATS:
        raise line.error("format", text, f"one of the WFDB formats {sorted(KNOWN_FORMATS, key=int)}")
    spf = int(match["spf"]) if match["spf"] else 1
    if spf < 1:
        raise line.error("samples per frame", text, "at least 1")
    skew = int(match["skew"]) if match["skew"] else 0
    offset = int(match["offset"]) if match["offset"] else 0
    return fmt, spf, skew, offset


def _parse_gain(line: _Line, text: str, adc_zero: int) -> tuple[float, int, str]:
    """(gain, baseline, units) from e.g. ``1000.0(0)/mV``, ``2000``, ``29/mV``, or nothing."""
    if not text:
        return DEFAULT_GAIN, adc_zero, DEFAULT_UNITS
    match = _GAIN.fullmatch(text)
    if match is None or not match["gain"]:
        raise line.error("gain", text, "'GAIN[(BASELINE)][/UNITS]'")
    gain = line.float_field("gain", match["gain"]) or DEFAULT_GAIN
    baseline = adc_zero if match["baseline"] is None else line.int_field("baseline", match["baseline"])
    units = (match["units"] or "").strip() or DEFAULT_UNITS
    return gain, baseline, units


# --------------------------------------------------------------------------- public helpers


def signal_files(header: WfdbHeader) -> tuple[str, ...]:
    """Distinct signal file names in header order (``~``, meaning no file, is left out)."""
    return tuple(dict.fromkeys(s.file_name for s in header.signals if s.file_name != "~"))


def mv_factor(units: str) -> float | None:
    """Multiplier from ``units`` to mV, or None when the units are not a voltage."""
    return _TO_MV.get(units.strip().lower())


def physical_units(header: WfdbHeader) -> tuple[str, ...]:
    """Units of each row returned by :func:`read_signals`: ``"mV"`` for every voltage channel
    (converted from uV/V), otherwise the header's units unchanged (e.g. ``NU``, ``mmHg``)."""
    return tuple("mV" if mv_factor(s.units) is not None else s.units for s in header.signals)


# --------------------------------------------------------------------------- signal decoding


@dataclass(frozen=True)
class _FileGroup:
    """The signals stored in one signal file."""

    name: str
    path: Path
    rel: str
    rows: tuple[int, ...]
    fmt: str
    byte_offset: int
    frame_width: int  # samples per frame summed over the file's signals
    size: int  # bytes


def read_signals(header: WfdbHeader, directory: Path, root: Path) -> FloatArray:
    """Decode a record's signals as float32 ``(C, T)``.

    Voltage channels are in mV: ``(digital - baseline) / gain``, converted from uV/V where the
    units say so; other channels (``NU``, ``mmHg``) are ``(digital - baseline) / gain`` in their
    own units (see :func:`physical_units`). Invalid-sample codes become NaN. ``directory`` is
    the header's folder; signal files must lie inside ``root``.
    """
    if header.n_sig == 0:
        raise ReadError(f"{header.record_name}: header declares no signals")
    groups = _file_groups(header, directory, root)
    n_frames = _checked_frames(header, groups)
    for group in groups:
        if group.path.suffix.lower() == ".mat":
            _check_mat_v4(group, n_frames)
    _check_surplus(header, groups)
    if _fast_path_ok(header, groups):
        digital = np.empty((header.n_sig, n_frames), dtype=np.float64)
        invalid = np.zeros((header.n_sig, n_frames), dtype=bool)
        for group in groups:
            _decode_group(group, n_frames, digital, invalid)
        return _finite_or_refused(header, _to_physical(header, digital, invalid))
    return _finite_or_refused(header, _read_with_wfdb(header, groups, n_frames))


def _finite_or_refused(header: WfdbHeader, signal: FloatArray) -> FloatArray:
    """Refuse a record whose gains turn stored samples into ±inf (a gain too small for float32)."""
    inf = np.isinf(signal)
    if inf.any():
        lead = int(np.nonzero(inf.any(axis=-1))[0][0])
        spec = header.signals[lead]
        raise ReadError(
            f"{header.record_name}: signal {lead} ({spec.description or 'unnamed'}) has gain {spec.gain!r} "
            f"{spec.units}; its samples exceed the float32 range in mV; expected a gain such as 200 or 1000"
        )
    return signal


def _file_groups(header: WfdbHeader, directory: Path, root: Path) -> list[_FileGroup]:
    if any(s.file_name == "~" for s in header.signals):
        raise ReadError(f"{header.record_name}: a signal has no file ('~'); expected stored samples")
    groups = []
    for name in signal_files(header):
        rows = tuple(i for i, s in enumerate(header.signals) if s.file_name == name)
        first = header.signals[rows[0]]
        if any(header.signals[i].fmt != first.fmt for i in rows):
            raise ReadError(f"{name}: signals stored in one file have different formats; expected one")
        # relpath is pure string work; confined_path then resolves links and refuses escapes.
        rel = PurePosixPath(os.path.relpath(Path(directory) / name, root)).as_posix()
        path = confined_path(Path(root), rel)
        try:
            info = path.stat()
        except OSError as exc:
            raise ReadError(
                f"{rel}: signal file named by header {header.record_name} does not exist"
            ) from exc
        if not stat.S_ISREG(info.st_mode):
            raise ReadError(f"{rel}: signal file named by header {header.record_name} is not a regular file")
        width = sum(header.signals[i].samples_per_frame for i in rows)
        groups.append(_FileGroup(name, path, rel, rows, first.fmt, first.byte_offset, width, info.st_size))
    return groups


def _bytes_for(fmt: str, n_samples: int) -> int:
    num, den = BYTES_PER_SAMPLE[fmt]
    return -(-n_samples * num // den)


def _padded_bytes(group: _FileGroup, n_frames: int) -> int:
    """Largest valid file size for ``n_frames``: a last partial group of a packed format (212,
    310, 311) may be padded to whole bytes of the group."""
    num, den = BYTES_PER_SAMPLE[group.fmt]
    return group.byte_offset + -(-n_frames * group.frame_width // den) * num


def _frames_in(group: _FileGroup, size: int) -> int:
    num, den = BYTES_PER_SAMPLE[group.fmt]
    return max(size - group.byte_offset, 0) * den // num // group.frame_width


def _checked_frames(header: WfdbHeader, groups: list[_FileGroup]) -> int:
    """Frames to read: the header's count after checking each file holds them, or (when the
    header gives none) the number every file holds."""
    counts = []
    for group in groups:
        if group.fmt in FLAC_FORMATS:
            continue
        size = group.size
        if header.n_samples is None:
            counts.append(_frames_in(group, size))
            continue
        need = group.byte_offset + _bytes_for(group.fmt, header.n_samples * group.frame_width)
        if size < need:
            raise ReadError(
                f"{group.rel}: header declares {header.n_samples} samples x {len(group.rows)} signals "
                f"({need} bytes) but the file holds only {size} bytes"
            )
    if header.n_samples is not None:
        return header.n_samples
    if not counts:
        raise ReadError(f"{header.record_name}: header gives no sample count for a compressed signal file")
    return min(counts)


def _check_surplus(header: WfdbHeader, groups: list[_FileGroup]) -> None:
    """ReadError when a file holds well beyond the samples its header declares.

    A little trailing junk or padding is ignored (up to ``_SURPLUS_BYTES`` + 1% of the data); more
    means the header misdescribes the file (a wrong format code, signal count or sample count), and
    decoding would silently interleave the wrong samples.
    """
    if header.n_samples is None:
        return
    for group in groups:
        if group.fmt in FLAC_FORMATS:
            continue
        end = _padded_bytes(group, header.n_samples)
        if group.size - end > _SURPLUS_BYTES + (end - group.byte_offset) // 100:
            raise ReadError(
                f"{group.rel}: holds {_frames_in(group, group.size)} samples x {len(group.rows)} signals "
                f"({group.size} bytes) but the header declares {header.n_samples} samples; expected the "
                f"file to end after them ({end} bytes, format {group.fmt})"
            )


def _check_mat_v4(group: _FileGroup, n_frames: int) -> None:
    """Check that a ``.mat`` signal file is the MATLAB v4 int16 matrix WFDB expects.

    CinC ``.mat`` files are read as format 16 behind the MAT header; a MATLAB v5 file or a
    matrix of another type would otherwise decode silently into garbage.
    """
    with open(group.path, "rb") as fh:
        head = fh.read(_MAT4_HEADER.size)
    if head.startswith(b"MATLAB"):
        raise ReadError(f"{group.rel}: MATLAB v5 file; expected a MATLAB v4 int16 matrix (as in CinC data)")
    if len(head) < _MAT4_HEADER.size:
        return
    mat_type, rows, cols, imag, name_len = _MAT4_HEADER.unpack(head)
    if group.byte_offset != _MAT4_HEADER.size + name_len:
        return  # the header's offset does not point just past one MAT v4 variable name
    if group.fmt != "16":
        if mat_type == _MAT4_INT16:
            raise ReadError(
                f"{group.rel}: MAT v4 int16 matrix but the header reads it as format {group.fmt}; "
                "expected format 16"
            )
        return
    if mat_type != _MAT4_INT16 or imag:
        raise ReadError(
            f"{group.rel}: MAT v4 type code {mat_type}; expected {_MAT4_INT16} (real int16, little-endian)"
        )
    need = n_frames * group.frame_width
    if rows * cols < need:
        raise ReadError(f"{group.rel}: MAT v4 matrix is {rows} x {cols}; expected at least {need} samples")


def _fast_path_ok(header: WfdbHeader, groups: list[_FileGroup]) -> bool:
    return all(g.fmt in _FAST_FORMATS for g in groups) and all(
        s.samples_per_frame == 1 and s.skew == 0 for s in header.signals
    )


def _decode_group(
    group: _FileGroup,
    n_frames: int,
    digital: npt.NDArray[np.float64],
    invalid: npt.NDArray[np.bool_],
) -> None:
    """Decode one file's interleaved samples into rows ``group.rows`` of ``digital``."""
    n_total = n_frames * len(group.rows)
    n_bytes = _bytes_for(group.fmt, n_total)
    with open(group.path, "rb") as fh:
        fh.seek(group.byte_offset)
        buf = fh.read(n_bytes)
    if group.fmt == "16":
        samples: npt.NDArray[np.integer] = np.frombuffer(buf, dtype="<i2", count=n_total)
    elif group.fmt == "80":
        samples = np.frombuffer(buf, dtype=np.uint8, count=n_total).astype(np.int16) - 128
    else:
        samples = _decode_212(buf, n_total)
    frames = samples.reshape(n_frames, len(group.rows))
    rows = list(group.rows)
    if rows == list(range(rows[0], rows[0] + len(rows))):
        target = slice(rows[0], rows[0] + len(rows))
        digital[target] = frames.T
        invalid[target] = frames.T == INVALID_SAMPLE[group.fmt]
    else:
        digital[rows] = frames.T
        invalid[rows] = frames.T == INVALID_SAMPLE[group.fmt]


def _decode_212(buf: bytes, n_total: int) -> npt.NDArray[np.int16]:
    """Format 212: two 12-bit two's-complement samples packed in each 3 bytes."""
    raw = np.frombuffer(buf, dtype=np.uint8)
    pad = -len(raw) % 3
    if pad:
        raw = np.concatenate([raw, np.zeros(pad, dtype=np.uint8)])
    triples = raw.reshape(-1, 3).astype(np.int16)
    out = np.empty(triples.shape[0] * 2, dtype=np.int16)
    out[0::2] = triples[:, 0] | ((triples[:, 1] & 0x0F) << 8)
    out[1::2] = triples[:, 2] | ((triples[:, 1] & 0xF0) << 4)
    out[out >= 2048] -= 4096
    return out[:n_total]


def _scales(header: WfdbHeader) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per-channel baseline and divisor such that ``(d - baseline) / divisor`` is in mV."""
    baseline = np.array([s.baseline for s in header.signals], dtype=np.float64)
    divisor = np.array([s.gain / (mv_factor(s.units) or 1.0) for s in header.signals], dtype=np.float64)
    return baseline, divisor


def _to_physical(
    header: WfdbHeader, digital: npt.NDArray[np.float64], invalid: npt.NDArray[np.bool_]
) -> FloatArray:
    baseline, divisor = _scales(header)
    # float64 arithmetic, as wfdb does, so mV channels equal wfdb's p_signal cast to float32.
    digital -= baseline[:, None]
    digital /= divisor[:, None]
    out = digital.astype(np.float32)
    if invalid.any():
        out[invalid] = np.nan
    return out


def _read_with_wfdb(header: WfdbHeader, groups: list[_FileGroup], n_frames: int) -> FloatArray:
    """Decode any other layout with ``wfdb.rdrecord`` through a normalised header in a temp dir.

    The temp header uses plain names wfdb accepts and links to the (already confined and
    size-checked) signal files, so header quirks wfdb rejects never reach it.
    """
    import wfdb

    with tempfile.TemporaryDirectory(prefix="ecgpipe-wfdb-") as tmp:
        names = {}
        for i, group in enumerate(groups):
            names[group.name] = f"sig{i}.dat"
            os.symlink(group.path, Path(tmp) / names[group.name])
        (Path(tmp) / "rec.hea").write_text(_normalised_header(header, names, n_frames), encoding="ascii")
        try:
            record = wfdb.rdrecord(str(Path(tmp) / "rec"), physical=True, return_res=64)
        except Exception as exc:  # wfdb raises many types (ValueError, IndexError, ...)
            files = ", ".join(g.rel for g in groups)
            raise ReadError(f"{files}: wfdb could not decode the signals: {exc}") from exc
    p_signal = np.asarray(record.p_signal, dtype=np.float64)
    factors = np.array([mv_factor(s.units) or 1.0 for s in header.signals], dtype=np.float64)
    return np.ascontiguousarray((p_signal * factors).T, dtype=np.float32)


def _normalised_header(header: WfdbHeader, names: dict[str, str], n_frames: int) -> str:
    lines = [f"rec {header.n_sig} {header.fs_hz!r} {n_frames}"]
    for s in header.signals:
        fmt = s.fmt
        fmt += f"x{s.samples_per_frame}" if s.samples_per_frame != 1 else ""
        fmt += f":{s.skew}" if s.skew else ""
        fmt += f"+{s.byte_offset}" if s.byte_offset else ""
        # Units are applied by the caller; the temp header only needs gain and baseline.
        # Format 8 stores first differences, so wfdb needs the initial value to rebuild samples.
        init = "" if s.init_value is None else f" {s.init_value}"
        lines.append(f"{names[s.file_name]} {fmt} {s.gain!r}({s.baseline})/mV {s.adc_res} {s.adc_zero}{init}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- reader helpers

# Files a PhysioNet download ships beside its records that are documentation or indexes, not
# signal data: WFDB readers list them as metadata rather than quarantining them.
_DOC_NAMES = frozenset(
    {"records", "annotators", "controls", "license", "license.txt", "sha256sums.txt", "readme", "index.html"}
)
_DOC_SUFFIXES = frozenset({".md", ".html", ".htm", ".pdf", ".txt"})


def is_documentation(rel: str) -> bool:
    """True for index and documentation files (``RECORDS``, ``LICENSE.txt``, ``README.md``)."""
    path = PurePosixPath(rel)
    return path.name.lower() in _DOC_NAMES or path.suffix.lower() in _DOC_SUFFIXES


def comment_fields(comments: tuple[str, ...]) -> dict[str, str]:
    """``Key: value`` comment lines as ``{"key": "value"}`` (keys lower-cased, first one wins).

    ``#Age: 80``, ``# Age: 78`` and ``# age: 81`` all give ``{"age": ...}``.
    """
    fields: dict[str, str] = {}
    for comment in comments:
        key, sep, value = comment.partition(":")
        if sep and key.strip():
            fields.setdefault(key.strip().lower(), value.strip())
    return fields


def lead_names(header: WfdbHeader) -> tuple[str, ...]:
    """Canonical lead names from the signal descriptions (``AVR`` → ``aVR``); an empty
    description becomes ``sig<i>``."""
    return canonical_leads([s.description or f"sig{i}" for i, s in enumerate(header.signals)])


def orphan_rejections(orphans: Iterable[str]) -> list[Rejection]:
    """A rejection for each signal file that has no header beside it."""
    out = []
    for rel in orphans:
        header = PurePosixPath(rel).with_suffix(".hea").as_posix()
        out.append(Rejection(rel, (rel,), f"{rel}: signal file with no header; expected {header}"))
    return out


def duplicate_name(stem: str, files: tuple[str, ...], seen: Mapping[str, str]) -> Rejection | None:
    """A ``duplicate`` rejection when a record of the same name was already taken at ``seen[name]``.

    CinC releases identify records by name alone, so the same name in two folders is one record.
    """
    name = PurePosixPath(stem).name
    if name not in seen:
        return None
    reason = f"{files[0]}: record {name} is also at {seen[name]}, which is read instead"
    return Rejection(stem, files, reason, category="duplicate")


def split_others(
    others: Iterable[str], is_metadata: Callable[[str], bool], expected: str
) -> tuple[list[str], list[Rejection]]:
    """Files that are not part of a record: metadata where ``is_metadata``, else a rejection
    saying ``<file>: not part of <expected>``."""
    metadata: list[str] = []
    rejected: list[Rejection] = []
    for rel in others:
        if is_metadata(rel):
            metadata.append(rel)
        else:
            rejected.append(Rejection(rel, (rel,), f"{rel}: not part of {expected}"))
    return metadata, rejected


def read_unit_ecg(root: Path, files: tuple[str, ...]) -> tuple[WfdbHeader, FloatArray]:
    """Header and ``(C, T)`` mV signals of a unit whose first file is its ``.hea``."""
    header_rel = files[0]
    header = read_header(confined_path(root, header_rel), header_rel)
    return header, read_ecg(header, header_rel, root, files)


def read_ecg(header: WfdbHeader, header_rel: str, root: Path, allowed: Collection[str]) -> FloatArray:
    """Float32 ``(C, T)`` mV signals of the header at ``header_rel`` (relative to ``root``).

    Raises :class:`ReadError` when a channel is not a voltage, or when the header names a
    signal file outside ``allowed`` (the unit's files, so provenance covers every byte read).
    """
    directory = PurePosixPath(header_rel).parent
    for name in signal_files(header):
        rel = (directory / name).as_posix()
        if rel not in allowed and not confined_path(Path(root), rel).is_file():
            raise ReadError(f"{rel}: signal file named by header {header_rel} does not exist")
        if rel not in allowed:
            raise ReadError(
                f"{header_rel}: header names signal file {rel}, which is not among {sorted(allowed)}"
            )
    not_voltage = [
        f"{s.description or i} ({s.units})"
        for i, s in enumerate(header.signals)
        if mv_factor(s.units) is None
    ]
    if not_voltage:
        raise ReadError(
            f"{header_rel}: channels {', '.join(not_voltage)} are not in volts; expected ECG in mV"
        )
    return read_signals(header, Path(root) / directory, root)


@dataclass(frozen=True)
class WfdbFileSets:
    """Files under a root grouped into WFDB records by folder and stem.

    ``records`` maps a record's stem path (``patient001/s0010_re``) to its files (the header
    first, then the signal files found beside it); ``orphans`` are signal files with no header;
    ``others`` are files of neither kind.
    """

    records: dict[str, tuple[str, ...]]
    orphans: tuple[str, ...]
    others: tuple[str, ...]


def group_wfdb_files(files: Iterable[str], signal_suffixes: tuple[str, ...]) -> WfdbFileSets:
    """Group relative POSIX paths into records: ``<stem>.hea`` plus ``<stem><suffix>`` for each
    of ``signal_suffixes`` (e.g. ``(".dat", ".xyz")``), matched case-sensitively like WFDB."""
    by_stem: dict[str, dict[str, str]] = {}
    others = []
    for rel in files:
        path = PurePosixPath(rel)
        if path.suffix == ".hea" or path.suffix in signal_suffixes:
            stem = path.with_suffix("").as_posix()
            by_stem.setdefault(stem, {})[path.suffix] = rel
        else:
            others.append(rel)
    records: dict[str, tuple[str, ...]] = {}
    orphans: list[str] = []
    for stem, found in sorted(by_stem.items()):
        signals = [found[s] for s in signal_suffixes if s in found]
        if ".hea" in found:
            records[stem] = (found[".hea"], *signals)
        else:
            orphans.extend(signals)
    return WfdbFileSets(records, tuple(orphans), tuple(others))
