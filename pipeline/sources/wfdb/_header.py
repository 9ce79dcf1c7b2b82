"""WFDB header parsing, tolerant of every quirk met in real PhysioNet/CinC data (record names
carrying ``.mat``, dates before times, ``16x1+24`` formats, gains such as ``1000.0(0)/mv``, missing
units, CRLF line endings, blank lines). Private: import the names from :mod:`pipeline.sources.wfdb`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.records import ReadError

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

# Multiplier taking a voltage in these units (compared lower-cased) to mV. Both micro signs: the
# Greek mu (U+03BC) and the micro sign (U+00B5), which is what a Latin-1 header's byte 0xB5 decodes to.
_TO_MV = {
    "mv": 1.0,
    "millivolt": 1.0,
    "millivolts": 1.0,
    "uv": 1e-3,
    "\u00b5v": 1e-3,
    "\u03bcv": 1e-3,
    "microvolt": 1e-3,
    "microvolts": 1e-3,
    "v": 1e3,
    "volt": 1e3,
    "volts": 1e3,
    "nv": 1e-6,
}
# Signals that are never an ECG lead whatever their units say: MIMIC and Challenge headers often
# leave the units of PLETH/RESP out, and WFDB's default unit is mV.
_NOT_ECG = re.compile(
    r"(abp|art|pap|cvp|icp|rap|lap|uap|p\d*|pleth|ppg|resp|respiration|spo2|sao2|co2|etco2|hr|pulse|"
    r"nbp\w*|temp\w*|eeg\w*|emg\w*|eog\w*|sound|pcg)",
    re.IGNORECASE,
)

_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_FORMAT = re.compile(r"(?P<fmt>\d+)(?:x(?P<spf>\d+))?(?::(?P<skew>\d+))?(?:\+(?P<offset>\d+))?")
_GAIN = re.compile(r"(?P<gain>[^(/]*)(?:\((?P<baseline>[^)]*)\))?(?:/(?P<units>.*))?")
_SUFFIXES = (".mat", ".hea", ".dat")
_MAX_SIGNALS = 100_000
MAX_HEADER_BYTES = 16 << 20  # far above any real header; guards against reading a huge file as one


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
    lines, comments = split_lines(text.lstrip("\ufeff"), source)
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
    return parse_header(header_text(path, source), source)


def header_text(path: Path, source: str) -> str:
    """The text of a ``.hea`` file, size-checked first (UTF-8, falling back to Latin-1)."""
    try:
        size = Path(path).stat().st_size
        if size > MAX_HEADER_BYTES:
            raise ReadError(f"{source}: header is {size} bytes; expected at most {MAX_HEADER_BYTES}")
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ReadError(f"{source}: cannot read header: {exc.strerror or exc}") from exc
    return header_bytes_text(raw, source)


def header_bytes_text(raw: bytes, source: str) -> str:
    """The text of a ``.hea`` file's bytes, size-checked (UTF-8, falling back to Latin-1)."""
    if len(raw) > MAX_HEADER_BYTES:
        raise ReadError(f"{source}: header is {len(raw)} bytes; expected at most {MAX_HEADER_BYTES}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def split_lines(text: str, source: str) -> tuple[list[_Line], list[str]]:
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
        raise line.error("record name", name_field, "a single-segment record (this one is multi-segment)")
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
    # Format 0 is WFDB's null signal: no stored samples (the signal lines of a layout header, "~").
    null = file_name == "~" and fields[1] == "0"
    fmt, spf, skew, offset = ("0", 1, 0, 0) if null else _parse_format(line, fields[1])
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


def is_ecg_signal(spec: SignalSpec) -> bool:
    """True when the signal may be an ECG lead: its units are a voltage (:func:`mv_factor`) and its
    description does not name another kind of signal (``ABP``, ``PLETH``, ``RESP``, ``SpO2``, ...)."""
    return mv_factor(spec.units) is not None and not _NOT_ECG.fullmatch(spec.description.strip())


def physical_units(header: WfdbHeader) -> tuple[str, ...]:
    """Units of each row returned by :func:`read_signals`: ``"mV"`` for every voltage channel
    (converted from uV/V), otherwise the header's units unchanged (e.g. ``NU``, ``mmHg``)."""
    return tuple("mV" if mv_factor(s.units) is not None else s.units for s in header.signals)
