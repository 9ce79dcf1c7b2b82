"""Reader for EDF/EDF+ files (Holter exports, sleep and ambulatory databases): source kind ``edf``.

Discovery
    Every file matched by ``pattern`` (default ``**/*.edf``, case-insensitive suffix) is one unit;
    documentation files (``README``, ``LICENSE``, ``*.txt``/``*.md``/``*.pdf``, ``RECORDS``) are
    metadata; anything else is rejected with a reason.

Reading
    The header and the file's size are checked before anything is allocated; then ``edfio``
    decodes only the signals kept (see :mod:`pipeline.sources.edf_format`). A broken file is a
    :class:`ReadError` naming the file and the field.
    ECG signals are those whose physical units are a voltage (``mV``, ``uV``, ``µV``, ``V``, any
    case) and whose label names no other kind of signal (see
    :func:`pipeline.sources.wfdb.is_ecg_signal`); the ``EDF Annotations`` signal is never one.
    Each is read at its own rate (``samples per data record / duration``): the record is at the
    highest rate among them, a slower one linearly interpolated up, never a faster one averaged
    down. Signals are float32 ``(C, T)`` in mV; ``meta["dropped_channels"]`` names the others.
    Labels ``ECG I``/``EKG II`` lose their ``ECG``/``EKG`` prefix before canonicalisation.

Raw labels
    EDF+ annotations (``EDF+C``) become ``interval`` raw labels, one per annotation in order of
    onset, spanning ``[round(onset_s fs), round((onset_s + duration_s) fs))`` clipped to the record
    (an annotation without a duration spans one sample); one that starts past the last sample is a
    ``record`` label (it still says something about the recording);
    ``meta["annotations"]`` keeps every interval as JSON ``[onset_s, duration_s or null, text]``
    in order of onset, ``onset_s`` from the first sample.
    Discontinuous files (``EDF+D``) are refused: their data records are not one timeline.

Patients
    ``patient_regex`` (one group, searched in the file's path below the root without ``.edf``);
    without it the EDF patient field's first word (EDF+: the hospital code) or, if that is ``X``
    or empty, none.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterator, Sequence
from typing import ClassVar

import numpy as np

from pipeline.core.leads import canonical_leads
from pipeline.core.records import Discovery, InputUnit, Provenance, RawLabel, ReadError, Record, Rejection
from pipeline.sources.base import SourceReader, list_files
from pipeline.sources.edf_format import (
    ANNOTATION_LABEL,
    EdfAnnotation,
    EdfHeader,
    open_edf,
    read_edf_annotations,
    read_edf_header,
    read_edf_signals,
    records_in,
)
from pipeline.sources.options import EdfOptions
from pipeline.sources.wfdb import SignalSpec, is_ecg_signal, mv_factor
from pipeline.sources.wfdb_io import is_documentation

_PREFIX = re.compile(r"^(ecg|ekg)[\s_-]*", re.IGNORECASE)


def _as_spec(label: str, units: str) -> SignalSpec:
    """An EDF signal as the WFDB channel rule sees it (only units and description matter)."""
    return SignalSpec("", "16", 1, 0, 0, 1.0, 0, units, 16, 0, None, None, 0, _lead_name(label))


def _lead_name(label: str) -> str:
    return _PREFIX.sub("", label).strip() or label


class EdfReader(SourceReader):
    """EDF/EDF+ files below ``root``. Options: ``pattern``, ``voltage_only``, ``patient_regex``."""

    kind: ClassVar[str] = "edf"
    # 3: annotations are interval raw labels with their span; 2: edfio decodes, onsets from the first
    # sample, sorted
    version: ClassVar[str] = "3"

    Options: ClassVar[type[EdfOptions]] = EdfOptions
    options: EdfOptions

    def discover(self) -> Discovery:
        files = list_files(self.root)
        matched = {p.relative_to(self.root).as_posix() for p in self.root.glob(self.options.pattern)}
        units, metadata, rejected = [], [], []
        for rel in files:
            if rel in matched and rel.lower().endswith(".edf"):
                units.append(InputUnit(key=rel[: -len(".edf")], files=(rel,)))
            elif is_documentation(rel):
                metadata.append(rel)
            else:
                reason = f"{rel}: not an EDF file matched by pattern {self.options.pattern!r}; expected *.edf"
                rejected.append(Rejection(rel, (rel,), reason, category="excluded"))
        return Discovery(tuple(units), tuple(metadata), tuple(rejected))

    def read(self, unit: InputUnit, provenance: Provenance) -> Iterator[Record | Rejection]:
        rel = unit.files[0]
        path = self.resolve(rel)
        try:
            header = read_edf_header(path, rel)
            if header.plus and not header.continuous:
                raise ReadError(f"{rel}: EDF+D (discontinuous) file; expected EDF or EDF+C (one timeline)")
            keep, dropped = self._channels(header, rel)
            n_records = records_in(header, path.stat().st_size)
            edf = open_edf(path, rel)
            tracks = read_edf_signals(edf, header, keep, n_records, rel)
            notes = read_edf_annotations(edf, rel) if header.plus else []
        except OSError as exc:
            raise ReadError(f"{rel}: cannot read: {exc.strerror or exc}") from exc
        rates = [header.rate_hz(i) for i in keep]
        fs_hz = max(rates)
        signal = _common_grid(tracks, [header.signals[i].samples for i in keep], n_records)
        signal *= np.array([mv_factor(header.signals[i].units) or 1.0 for i in keep], np.float32)[:, None]
        meta = {"fs_hz": repr(fs_hz), "edf": "EDF+C" if header.plus else "EDF"}
        if dropped:
            meta["dropped_channels"] = ",".join(header.signals[i].label for i in dropped)
        if notes:
            meta["annotations"] = json.dumps([[n.onset_s, n.duration_s, n.text] for n in notes])
        yield Record(
            record_id=self.record_id(unit.key),
            source=self.name,
            signal=np.ascontiguousarray(signal),
            fs_hz=fs_hz,
            leads=canonical_leads([_lead_name(header.signals[i].label) for i in keep]),
            patient_id=self._patient(unit.key, header),
            raw_labels=interval_labels(notes, fs_hz, signal.shape[1]),
            provenance=provenance,
            meta=meta,
        )

    def _channels(self, header: EdfHeader, rel: str) -> tuple[list[int], list[int]]:
        signals = [i for i, s in enumerate(header.signals) if s.label != ANNOTATION_LABEL]
        if not self.options.voltage_only:
            keep = signals
        else:
            keep = [
                i
                for i in signals
                if is_ecg_signal(_as_spec(header.signals[i].label, header.signals[i].units))
            ]
        if not keep:
            found = ", ".join(f"{s.label} [{s.units}]" for s in header.signals)
            raise ReadError(f"{rel}: no ECG signal ({found}); expected a signal in mV, uV or V")
        return keep, [i for i in signals if i not in keep]

    def _patient(self, key: str, header: EdfHeader) -> str | None:
        if self.options.patient_regex is not None:
            match = re.search(self.options.patient_regex, key)
            return match.group(1) if match else None
        first = header.patient.split(" ", 1)[0] if header.patient else ""
        return None if first in ("", "X") else posixpath.basename(first)


def _common_grid(tracks: list[np.ndarray], per_record: list[int], n_records: int) -> np.ndarray:
    """Stack tracks of ``n_records * per_record[i]`` samples onto the fastest one's grid ``(C, T)``."""
    top = max(per_record)
    grid = (np.arange(n_records * top, dtype=np.float64) + 0.5) / top
    out = np.empty((len(tracks), n_records * top), dtype=np.float32)
    for k, (track, n) in enumerate(zip(tracks, per_record, strict=True)):
        if n == top:
            out[k] = track
        else:
            source = (np.arange(len(track), dtype=np.float64) + 0.5) / n
            out[k] = np.interp(grid, source, track.astype(np.float64))
    return out


def interval_labels(notes: Sequence[EdfAnnotation], fs_hz: float, n_samples: int) -> tuple[RawLabel, ...]:
    """Each annotation as an ``interval`` raw label over its samples at ``fs_hz`` (see the module
    docstring); ``n_samples``: the record's length ``T``."""
    out: list[RawLabel] = []
    for n in sorted(notes, key=lambda n: n.onset_s):
        start = max(0, round(n.onset_s * fs_hz))
        stop = start + max(1, round((n.duration_s or 0.0) * fs_hz))
        if start >= n_samples:
            out.append(RawLabel(n.text))
        else:
            out.append(RawLabel(n.text, scope="interval", span=(start, min(stop, n_samples))))
    return tuple(out)
