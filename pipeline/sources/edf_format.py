"""EDF/EDF+ files read without trusting them: the header checked here, then samples at each
signal's own rate, physical scaling and EDF+ annotations (TALs) decoded by ``edfio``.

Why ``edfio`` (compared with ``pyedflib`` and ``wfdb``, table in ``docs/sources.md``): it reads
EDF+ annotations as onset/duration/text and every signal at its own rate, memory-maps the data
records so only the signals asked for are read, is typed and pure Python, and reads a 10-minute
12-lead 500 Hz file in ~10 ms (pyedflib ~300 ms; ``wfdb``'s ``read_edf`` averages a faster signal
down to the slowest rate and fails on EDF+ files). It is lenient where we must not be: a
truncated file or a wrong record count is "repaired" with a warning, non-ASCII header bytes become
U+FFFD, equal digital limits give uncalibrated values. So :func:`read_edf_header` checks every
header field, and the file's size against it, before the library sees the file.

May import: ``pipeline.core``, numpy, edfio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import edfio
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
    if header.n_records == 0 or (header.n_records == -1 and whole == 0):
        raise ReadError(f"{rel}: the file holds no data records; expected at least one")
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


def open_edf(path: Path, rel: str) -> edfio.Edf:
    """The file as ``edfio`` sees it, data memory-mapped (nothing decoded yet); call only after
    :func:`read_edf_header` accepted the file."""
    try:
        return edfio.read_edf(path, lazy_load_data=True, header_encoding="ascii")
    except (ValueError, UnicodeDecodeError) as exc:  # what edfio raises on fields it cannot parse
        raise ReadError(f"{rel}: edfio cannot read the file: {exc}") from None


def read_edf_signals(
    edf: edfio.Edf, header: EdfHeader, rows: list[int], n_records: int, rel: str
) -> list[FloatArray]:
    """Each signal of ``rows`` at its own rate, float32 ``(n_records * samples,)`` in its physical
    units (edfio scales digital to physical as the header says)."""
    values = n_records * sum(header.signals[i].samples for i in rows)
    if values > MAX_VALUES:
        raise ReadError(f"{rel}: {values} samples to decode; expected at most {MAX_VALUES}")
    tracks = []
    for i in rows:
        try:
            data = edf.signals[i].data
        except ValueError as exc:  # edfio's slice check; unreachable once the size check passed
            raise ReadError(f"{rel}: edfio cannot decode signal {i + 1}: {exc}") from None
        expected = n_records * header.signals[i].samples
        if data.shape != (expected,):  # the header check makes this unreachable; never store a short track
            raise ReadError(f"{rel}: signal {i + 1} decodes to {data.shape}; expected ({expected},)")
        tracks.append(data.astype(np.float32))
    return tracks


@dataclass(frozen=True)
class EdfAnnotation:
    """One EDF+ annotation: ``onset_s`` from the first sample, ``duration_s`` (None when not given)."""

    onset_s: float
    duration_s: float | None
    text: str


def read_edf_annotations(edf: edfio.Edf, rel: str) -> list[EdfAnnotation]:
    """The EDF+ annotations with text, in order of onset (edfio leaves out the time-keeping TAL
    that opens each data record and measures onsets from the first sample)."""
    try:
        notes = edf.annotations
    except UnicodeDecodeError as exc:
        raise ReadError(
            f"{rel}: annotation bytes {exc.object[exc.start : exc.end]!r} are not UTF-8; expected EDF+ "
            "UTF-8 text"
        ) from None
    except ValueError as exc:
        raise ReadError(f"{rel}: unreadable EDF+ annotation list: {exc}") from None
    return [EdfAnnotation(n.onset, n.duration, n.text.strip()) for n in notes if n.text.strip()]
