"""Records from one decoded WFDB recording: the whole recording, or one per window, with its raw labels.

Serves :mod:`pipeline.sources.wfdb_folder`; windows and label rules are :mod:`pipeline.sources.windows`'s.

May import: ``pipeline.core``, ``pipeline.sources.wfdb``, ``pipeline.sources.windows``; numpy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipeline.core.records import Provenance, RawLabel, ReadError, Record, Rejection
from pipeline.sources.wfdb import WfdbHeader
from pipeline.sources.windows import AnnotationTrack, window_labels, window_starts, window_stop

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class RecordBase:
    """What every record (or window) of one recording shares."""

    record_id: str
    fs_hz: float
    leads: tuple[str, ...]
    patient_id: str | None
    header_labels: tuple[str, ...]
    meta: Mapping[str, str]
    provenance: Provenance

    def record(
        self,
        source: str,
        record_id: str,
        signal: FloatArray,
        labels: tuple[RawLabel, ...],
        extra_meta: Mapping[str, str],
        provenance: Provenance,
    ) -> Record:
        return Record(
            record_id=record_id,
            source=source,
            signal=signal,
            fs_hz=self.fs_hz,
            leads=self.leads,
            patient_id=self.patient_id,
            raw_labels=labels,
            provenance=provenance,
            meta={**self.meta, **extra_meta},
        )


def whole(
    source: str, base: RecordBase, signal: FloatArray, track: AnnotationTrack, files: tuple[str, ...]
) -> Iterator[Record | Rejection]:
    """The whole recording as one record (a rejection when every sample is invalid)."""
    n_samples = signal.shape[1]
    if np.isnan(signal).all():
        yield Rejection(item=base.record_id, files=files, reason="every sample is invalid (NaN)")
        return
    labels = _labels(track, 0, n_samples, base.header_labels)
    yield base.record(source, base.record_id, signal, labels, {}, base.provenance)


def _labels(
    track: AnnotationTrack, start: int, stop: int, header_labels: tuple[str, ...]
) -> tuple[RawLabel, ...]:
    """Raw labels of ``[start, stop)`` with their scopes (:func:`~pipeline.sources.windows.window_labels`)."""
    return window_labels(track, start, stop, header_labels)


def channel_name(header: WfdbHeader, index: int) -> str:
    """The channel's description, or ``ch<index>`` when the header leaves it blank."""
    return header.signals[index].description or f"ch{index}"


def _samples(seconds: float, fs_hz: float, option: str) -> int:
    count = round(seconds * fs_hz)
    if count < 1:
        raise ReadError(f"{option}={seconds} s is less than one sample at {fs_hz} Hz")
    return count


def windows(
    source: str,
    base: RecordBase,
    signal: FloatArray,
    track: AnnotationTrack,
    files: tuple[str, ...],
    spacing: tuple[float, float, bool],
) -> Iterator[Record | Rejection]:
    """One record per window of ``signal`` ``(C, T)``; ``spacing`` is (window_s, hop_s in seconds,
    keep_partial). A recording shorter than one window is rejected; so is an all-NaN window."""
    window_s, hop_s, keep_partial = spacing
    n_samples = signal.shape[1]
    win = _samples(window_s, base.fs_hz, "window_s")
    hop = _samples(hop_s, base.fs_hz, "hop_s")
    starts = window_starts(n_samples, win, hop, keep_partial)
    if not starts:
        reason = f"recording has {n_samples} samples, fewer than one window of {win} samples"
        yield Rejection(item=base.record_id, files=files, reason=reason, category="excluded")
    digits = len(str(n_samples))
    for start in starts:
        stop = window_stop(start, n_samples, win)
        window_id = f"{base.record_id}/w{start:0{digits}d}"
        window = signal[:, start:stop]
        if np.isnan(window).all():
            reason = f"window [{start}, {stop}) holds only invalid (NaN) samples"
            yield Rejection(item=window_id, files=files, reason=reason)
            continue
        yield base.record(
            source,
            window_id,
            np.ascontiguousarray(window),
            _labels(track, start, stop, base.header_labels),
            {"parent": base.record_id, "window_start": str(start), "window_stop": str(stop)},
            dataclasses.replace(base.provenance, parent_id=base.record_id, window=(start, stop)),
        )
