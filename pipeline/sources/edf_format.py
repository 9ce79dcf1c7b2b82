"""EDF/EDF+ files read without trusting them: the header, per-signal samples at their own rates, and
EDF+ annotations (time-stamped annotation lists, TALs) as intervals.

Why own code: of the readers compared (``pyedflib``, ``mne``, ``edfio``, ``wfdb``), the ones that
read EDF+ correctly (pyedflib, edfio; mne too, but it resamples every signal to the highest rate
and imports a large stack) are not dependencies of the project, and ``wfdb.io.convert.edf.read_edf``
averages a faster signal down to the slowest rate per data record (the multi-rate bug), reads the
whole file before checking its size, prints, and skips EDF+ annotations. EDF is a small fixed-width
format; this module decodes it with numpy and checks every field first.

May import: ``pipeline.core``, numpy.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from pipeline.core.records import ReadError

FloatArray = npt.NDArray[np.float32]

ANNOTATION_LABEL = "EDF Annotations"
MAX_SIGNALS = 4096  # far above real files (PSG ~ 100); bounds the header read
MAX_VALUES = 1 << 28  # float32 values decoded per file (1 GiB)
_FIXED = 256
# (field, width) of each per-signal header field, in file order.
_SIGNAL_FIELDS = (
    ("label", 16),
    ("transducer", 80),
    ("units", 8),
    ("physical minimum", 8),
    ("physical maximum", 8),
    ("digital minimum", 8),
    ("digital maximum", 8),
    ("prefiltering", 80),
    ("samples per data record", 8),
    ("reserved", 32),
)
_TAL = re.compile(rb"([+-]\d+(?:\.\d*)?)(?:\x15(\d+(?:\.\d*)?))?(\x14[^\x00]*)\x00")


@dataclass(frozen=True)
class EdfSignal:
    """One signal of an EDF header: ``samples`` per data record; physical = digital x scale + offset."""

    label: str
    units: str
    samples: int
    scale: float
    offset: float


@dataclass(frozen=True)
class EdfHeader:
    """An EDF header: ``record_s`` seconds per data record; ``plus`` for EDF+ (``continuous`` is False
    for EDF+D, whose data records need not be contiguous)."""

    n_records: int
    record_s: float
    signals: tuple[EdfSignal, ...]
    header_bytes: int
    plus: bool
    continuous: bool
    patient: str

    @property
    def record_bytes(self) -> int:
        return 2 * sum(s.samples for s in self.signals)

    def rate_hz(self, index: int) -> float:
        return self.signals[index].samples / self.record_s


def _ascii(raw: bytes, rel: str, field: str) -> str:
    try:
        return raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ReadError(
            f"{rel}: header field {field} holds non-ASCII bytes {raw!r}; expected ASCII"
        ) from None


def _number(text: str, rel: str, field: str, *, integer: bool = False) -> float:
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        raise ReadError(f"{rel}: header field {field} = {text!r}; expected a number") from None
    if not math.isfinite(value):
        raise ReadError(f"{rel}: header field {field} = {text!r}; expected a finite number")
    return value


def read_edf_header(path: Path, rel: str) -> EdfHeader:
    """Parse and check an EDF(+) header, and the file's size against it, before any sample is read."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        fixed = fh.read(_FIXED)
        if len(fixed) < _FIXED:
            raise ReadError(f"{rel}: {len(fixed)} bytes; expected a {_FIXED}-byte EDF header at least")
        if fixed[:8] != b"0       ":
            raise ReadError(f"{rel}: version field {fixed[:8]!r}; expected '0' (EDF/EDF+; BDF is not read)")
        n_sig = int(_number(_ascii(fixed[252:256], rel, "number of signals"), rel, "ns", integer=True))
        if not 1 <= n_sig <= MAX_SIGNALS:
            raise ReadError(f"{rel}: {n_sig} signals; expected 1 to {MAX_SIGNALS}")
        per_signal = fh.read(_FIXED * n_sig)
    header_bytes = int(
        _number(_ascii(fixed[184:192], rel, "header bytes"), rel, "header bytes", integer=True)
    )
    if header_bytes != _FIXED * (n_sig + 1) or len(per_signal) < _FIXED * n_sig:
        raise ReadError(
            f"{rel}: header declares {header_bytes} header bytes for {n_sig} signals; expected "
            f"{_FIXED * (n_sig + 1)} in a file of at least that size ({size} bytes)"
        )
    reserved = _ascii(fixed[192:236], rel, "reserved")
    n_records = int(
        _number(
            _ascii(fixed[236:244], rel, "number of data records"), rel, "number of data records", integer=True
        )
    )
    record_s = _number(_ascii(fixed[244:252], rel, "data record duration"), rel, "duration")
    if record_s <= 0:
        raise ReadError(f"{rel}: data record duration {record_s} s; expected a positive duration")
    signals = _signals(per_signal, n_sig, rel)
    header = EdfHeader(
        n_records=n_records,
        record_s=record_s,
        signals=signals,
        header_bytes=header_bytes,
        plus=reserved.startswith("EDF+"),
        continuous=reserved != "EDF+D",
        patient=_ascii(fixed[8:88], rel, "patient"),
    )
    _check_size(header, size, rel)
    return header


def _signals(raw: bytes, n_sig: int, rel: str) -> tuple[EdfSignal, ...]:
    fields: dict[str, list[str]] = {}
    pos = 0
    for name, width in _SIGNAL_FIELDS:
        fields[name] = [_ascii(raw[pos + i * width : pos + (i + 1) * width], rel, name) for i in range(n_sig)]
        pos += width * n_sig
    out = []
    for i in range(n_sig):
        label = fields["label"][i]
        where = f"signal {i + 1} ({label or 'unnamed'})"

        def num(field: str, integer: bool = False, k: int = i, at: str = where) -> float:
            return _number(fields[field][k], rel, f"{field} of {at}", integer=integer)

        samples = int(num("samples per data record", integer=True))
        pmin, pmax = num("physical minimum"), num("physical maximum")
        dmin, dmax = num("digital minimum", True), num("digital maximum", True)
        if samples < 1 or not -32768 <= dmin < dmax <= 32767 or pmin == pmax:
            raise ReadError(
                f"{rel}: {where}: {samples} samples per record, digital {dmin}..{dmax}, physical "
                f"{pmin}..{pmax}; expected at least 1 sample, -32768 <= digital min < max <= 32767 and "
                "distinct physical limits"
            )
        scale = (pmax - pmin) / (dmax - dmin)
        out.append(EdfSignal(label, fields["units"][i], samples, scale, pmin - dmin * scale))
    return tuple(out)


def _check_size(header: EdfHeader, size: int, rel: str) -> None:
    data = size - header.header_bytes
    whole, extra = divmod(data, header.record_bytes)
    if header.n_records == -1:  # allowed while recording; the file's size says how many there are
        if extra:
            raise ReadError(f"{rel}: {data} data bytes are not whole data records of {header.record_bytes}")
        return
    if header.n_records < 0 or whole < header.n_records or (whole, extra) != (header.n_records, 0):
        raise ReadError(
            f"{rel}: header declares {header.n_records} data records of {header.record_bytes} bytes but the "
            f"file holds {data} data bytes; expected {header.n_records * header.record_bytes}"
        )


def records_in(header: EdfHeader, size: int) -> int:
    """Data records in the file: the header's count, or (count -1) what the size holds."""
    if header.n_records >= 0:
        return header.n_records
    return (size - header.header_bytes) // header.record_bytes


def read_edf_signals(
    path: Path, header: EdfHeader, rows: list[int], rel: str
) -> tuple[list[FloatArray], int]:
    """Each signal of ``rows`` at its own rate, float32 in its physical units, and the record count."""
    n_records = records_in(header, path.stat().st_size)
    values = n_records * sum(header.signals[i].samples for i in rows)
    if values > MAX_VALUES:
        raise ReadError(f"{rel}: {values} samples to decode; expected at most {MAX_VALUES}")
    width = header.record_bytes // 2
    with path.open("rb") as fh:
        fh.seek(header.header_bytes)
        data = np.fromfile(fh, dtype="<i2", count=n_records * width)
    if data.size != n_records * width:
        raise ReadError(f"{rel}: data ends after {data.size} samples; expected {n_records * width}")
    blocks = data.reshape(n_records, width)
    starts = np.cumsum([0] + [s.samples for s in header.signals])
    tracks = []
    for i in rows:
        sig = header.signals[i]
        digital = blocks[:, starts[i] : starts[i + 1]].reshape(-1).astype(np.float64)
        tracks.append((digital * sig.scale + sig.offset).astype(np.float32))
    return tracks, n_records


@dataclass(frozen=True)
class EdfAnnotation:
    """One EDF+ annotation: ``onset_s`` from the file's start, ``duration_s`` (None when not given)."""

    onset_s: float
    duration_s: float | None
    text: str


def read_edf_annotations(path: Path, header: EdfHeader, rel: str) -> list[EdfAnnotation]:
    """The EDF+ annotations of every ``EDF Annotations`` signal, in file order (the time-keeping
    TAL that opens each data record, which has no text, is left out)."""
    rows = [i for i, s in enumerate(header.signals) if s.label == ANNOTATION_LABEL]
    if not rows:
        return []
    n_records = records_in(header, path.stat().st_size)
    width = header.record_bytes
    starts = np.cumsum([0] + [2 * s.samples for s in header.signals])
    out: list[EdfAnnotation] = []
    with path.open("rb") as fh:
        fh.seek(header.header_bytes)
        for _ in range(n_records):
            block = fh.read(width)
            for i in rows:
                out += _tals(block[starts[i] : starts[i + 1]], rel)
    return out


def _tals(raw: bytes, rel: str) -> list[EdfAnnotation]:
    out = []
    for match in _TAL.finditer(raw):
        onset = float(match[1])
        duration = float(match[2]) if match[2] else None
        for text in match[3].split(b"\x14"):
            if text:
                try:
                    note = text.decode("utf-8").strip()
                except UnicodeDecodeError:
                    raise ReadError(
                        f"{rel}: annotation {text!r} is not UTF-8; expected EDF+ UTF-8 text"
                    ) from None
                if note:
                    out.append(EdfAnnotation(onset, duration, note))
    return out
