"""The record contract shared by every source reader and the ingest pipeline.

A reader turns one :class:`InputUnit` (a recording's files plus its rows from shared metadata
tables) into :class:`Record` objects, or :class:`Rejection` objects for the parts it cannot read.
Readers do no filtering, no resampling and no label mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]


SCOPES = ("record", "interval", "beat")


@dataclass(frozen=True)
class RawLabel:
    """One label exactly as the source states it, with the scope it is stated at.

    ``code`` is the source's own code (``"NORM"``, ``"164889003"``, ``"A"``, ``"(AFIB"``);
    ``likelihood`` is the source's confidence in percent where it gives one (PTB-XL), else None.
    ``scope`` is ``"record"`` (header classes, CSV rows, exam flags: true of the recording as a
    whole, not necessarily of every part of it), ``"interval"`` (a rhythm annotation) or
    ``"beat"`` (an annotation at one sample). ``span`` is ``(start, stop)`` in samples at the
    record's own ``fs_hz``, relative to the record's (or window's) first sample, half-open: the
    part of an interval inside the record, ``(s, s + 1)`` for a beat; None for record scope.
    """

    code: str
    likelihood: float | None = None
    scope: str = "record"
    span: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError(f"raw label {self.code!r}: scope {self.scope!r}, expected one of {SCOPES}")
        if (self.span is None) != (self.scope == "record"):
            raise ValueError(
                f"raw label {self.code!r}: scope {self.scope!r} with span {self.span}; "
                "record scope has no span, interval and beat scope need one"
            )
        if self.span is not None and not 0 <= self.span[0] < self.span[1]:
            raise ValueError(
                f"raw label {self.code!r}: span {self.span} is not a (start, stop) with start < stop"
            )


@dataclass(frozen=True)
class Provenance:
    """Where a record came from: files relative to the source root with their sha256."""

    files: tuple[tuple[str, str], ...]
    reader: str
    parent_id: str | None = None
    window: tuple[int, int] | None = None  # (start, stop) sample indices at the original fs_hz


@dataclass(frozen=True)
class Record:
    """One recording (or one window of a long recording).

    ``signal`` is float32 ``(C, T)`` in mV (unitless for sources that publish normalised data,
    see ``meta["units"]``); ``fs_hz`` is its sampling rate (None where the source gives none,
    e.g. UCR beats); ``leads`` are canonical lead names, one per row of ``signal``.
    """

    record_id: str
    source: str
    signal: FloatArray
    fs_hz: float | None
    leads: tuple[str, ...]
    patient_id: str | None
    raw_labels: tuple[RawLabel, ...]
    provenance: Provenance
    meta: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.signal.ndim != 2:
            raise ValueError(f"{self.record_id}: signal must be (C, T), got shape {self.signal.shape}")
        if self.signal.shape[0] != len(self.leads):
            raise ValueError(
                f"{self.record_id}: {self.signal.shape[0]} signal rows but {len(self.leads)} lead names"
            )


@dataclass(frozen=True)
class InputUnit:
    """One readable unit of a source: usually a recording's header and signal files.

    ``files`` are paths relative to the source root, every file the unit reads (signal, header,
    annotation). ``extra`` carries the unit's rows from shared tables (e.g. its line of
    ``REFERENCE.csv``), so that the unit's fingerprint changes when, and only when, its own
    metadata changes.
    """

    key: str
    files: tuple[str, ...]
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Rejection:
    """An input (a unit, a row of a unit, a window, a whole file) that could not become a record."""

    item: str  # record id, unit key or file path
    files: tuple[str, ...]
    reason: str
    # "error": unreadable or invalid; "excluded": left out by configuration (e.g. another
    # sampling rate); "duplicate": the same data is ingested from another file.
    category: str = "error"


@dataclass(frozen=True)
class Discovery:
    """What a reader found under its root.

    ``units`` are readable units; ``metadata_files`` are shared tables the reader consumed
    (CSV/label files, accounted for but not records); ``rejected`` are files that cannot form a
    unit (a ``.dat`` with no header, a duplicate), each with its reason.
    """

    units: tuple[InputUnit, ...]
    metadata_files: tuple[str, ...] = ()
    rejected: tuple[Rejection, ...] = ()


class ReadError(Exception):
    """Raised by a reader when a unit cannot be read; the message is the quarantine reason."""
