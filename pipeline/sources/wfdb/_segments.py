"""Multi-segment WFDB records (MIMIC and many PhysioNet databases): a master header naming segments,
read as one recording. Private: import the names from :mod:`pipeline.sources.wfdb`.

Fixed layout: every segment holds the same signals. Variable layout: the first segment is a layout
header of length 0 that names the record's signals; each later segment holds any subset of them,
matched by name, and a segment named ``~`` is a gap. Samples a segment does not hold are NaN.
"""

from __future__ import annotations

import dataclasses
import posixpath
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.core.records import ReadError
from pipeline.sources.wfdb._decode import FloatArray, read_signals, sample_rate_hz
from pipeline.sources.wfdb._header import (
    DEFAULT_FS_HZ,
    SignalSpec,
    WfdbHeader,
    header_text,
    parse_header,
    split_lines,
)

GAP = "~"
# The assembled recording is allocated before the segments are read; a master whose segment
# lengths (gaps are backed by no file) add up to more is refused first. 2**28 float32 = 1 GiB.
MAX_VALUES = 1 << 28
_MAX_SEGMENTS = 100_000


@dataclass(frozen=True)
class Segment:
    """One line of a master header: a segment record name (``~`` for a gap) and its frame count."""

    name: str
    n_frames: int


@dataclass(frozen=True)
class MultiSegmentHeader:
    """A parsed master header; ``n_samples`` is the record's frame count (None when unstated)."""

    record_name: str
    n_sig: int
    fs_hz: float
    n_samples: int | None
    segments: tuple[Segment, ...]
    comments: tuple[str, ...]

    @property
    def variable_layout(self) -> bool:
        """True when the first segment is a layout header (length 0), as WFDB decides it."""
        return bool(self.segments) and self.segments[0].n_frames == 0 and self.segments[0].name != GAP

    def segment_headers(self) -> tuple[str, ...]:
        """Record names of the segment headers (layout first), gaps left out, in order, distinct."""
        return tuple(dict.fromkeys(s.name for s in self.segments if s.name != GAP))


def is_multi_segment(text: str) -> bool:
    """True when the header text's record line names segments (``name/n_seg ...``)."""
    lines, _ = split_lines(text.lstrip("\ufeff"), "")
    return bool(lines) and "/" in lines[0].text.split()[0]


def read_any_header(path: Path, source: str | None = None) -> WfdbHeader | MultiSegmentHeader:
    """Read a ``.hea``: a :class:`MultiSegmentHeader` for a master header, else a :class:`WfdbHeader`."""
    source = source or Path(path).name
    text = header_text(path, source)
    return parse_master(text, source) if is_multi_segment(text) else parse_header(text, source)


def parse_master(text: str, source: str) -> MultiSegmentHeader:
    """Parse a master header (``name/n_seg n_sig [fs [n_samples]]`` then ``segment n_frames`` lines)."""
    lines, comments = split_lines(text.lstrip("\ufeff"), source)
    record = lines[0]
    fields = record.text.split()
    name, _, count = fields[0].partition("/")
    n_seg = record.int_field("number of segments", count, minimum=1)
    if n_seg > _MAX_SEGMENTS:
        raise record.error("number of segments", count, f"at most {_MAX_SEGMENTS}")
    n_sig = record.int_field("number of signals", fields[1] if len(fields) > 1 else "", minimum=1)
    fs_hz = DEFAULT_FS_HZ
    if len(fields) > 2:
        fs_hz = record.float_field("sampling frequency", fields[2].split("/", 1)[0])
        if fs_hz <= 0:
            raise record.error("sampling frequency", fields[2], "a positive number of Hz")
    n_samples = record.int_field("number of samples", fields[3], minimum=0) if len(fields) > 3 else None
    if len(lines) - 1 != n_seg:
        listed = len(lines) - 1
        raise ReadError(f"{source}: record line declares {n_seg} segments but the header lists {listed}")
    segments = []
    for line in lines[1:]:
        parts = line.text.split()
        seg_name = parts[0]
        if seg_name != GAP and (seg_name in (".", "..") or "/" in seg_name or "\\" in seg_name):
            raise line.error("segment name", seg_name, "a record name beside the master header")
        n_frames = line.int_field("segment length", parts[1] if len(parts) > 1 else "", minimum=0)
        segments.append(Segment(seg_name, n_frames))
    total = sum(s.n_frames for s in segments)
    if n_samples and total != n_samples:
        raise ReadError(
            f"{source}: segments add up to {total} samples but the record line declares {n_samples}"
        )
    return MultiSegmentHeader(name, n_sig, fs_hz, n_samples or total, tuple(segments), tuple(comments))


@dataclass(frozen=True)
class SegmentedRecord:
    """A master and its segment headers, with the record's signals as one :class:`WfdbHeader`.

    ``combined`` lists the record's signals (the layout header's, or the first segment's in a fixed
    layout) with, per signal, the largest samples-per-frame any segment stores it at, so that
    :func:`~pipeline.sources.wfdb.sample_rate_hz` and the channel rules apply unchanged.
    """

    master: MultiSegmentHeader
    segments: dict[str, WfdbHeader]  # segment record name -> its header
    combined: WfdbHeader


def load_segments(master: MultiSegmentHeader, folder: Path, rel_folder: str) -> SegmentedRecord:
    """Read and check every segment header of ``master`` (in ``folder``, named ``rel_folder/...`` in errors).

    Refused with :class:`ReadError`: a missing or unreadable segment header, a segment whose length
    differs from what the master lists, a rate other than the master's, and (fixed layout) signals
    differing from the first segment's, or (variable layout) a signal the layout does not name.
    """
    segments: dict[str, WfdbHeader] = {}
    for name in master.segment_headers():
        rel = posixpath.join(rel_folder, f"{name}.hea")
        try:
            header = read_any_header(folder / f"{name}.hea", rel)
        except ReadError as exc:
            raise ReadError(f"{master.record_name}: segment {name}: {exc}") from exc
        if isinstance(header, MultiSegmentHeader):
            raise ReadError(f"{rel}: a segment is itself multi-segment; expected a single-segment header")
        if header.fs_hz != master.fs_hz:
            raise ReadError(
                f"{rel}: segment at {header.fs_hz} Hz in a {master.fs_hz} Hz record; expected one rate"
            )
        segments[name] = header
    for seg in master.segments:
        declared = segments[seg.name].n_samples if seg.name != GAP else None
        if seg.name != GAP and (declared or 0) != seg.n_frames:
            rel = posixpath.join(rel_folder, seg.name)
            raise ReadError(
                f"{rel}.hea: segment holds {declared} samples but the master {master.record_name} lists "
                f"{seg.n_frames}; expected the same length"
            )
    combined = _combined(master, segments, rel_folder)
    return SegmentedRecord(master, segments, combined)


def _combined(master: MultiSegmentHeader, segments: dict[str, WfdbHeader], rel_folder: str) -> WfdbHeader:
    names = master.segment_headers()
    if not names:
        raise ReadError(f"{master.record_name}: every segment is a gap ('~'); expected stored samples")
    first = segments[names[0]]
    layout = [s.description for s in first.signals]
    if len(set(layout)) != len(layout) or len(layout) != master.n_sig:
        raise ReadError(
            f"{posixpath.join(rel_folder, names[0])}.hea: signals {layout}; expected {master.n_sig} distinct "
            "signal names (the master's count)"
        )
    spf = dict.fromkeys(layout, 1)
    for name in names[1:] if master.variable_layout else names:
        found = [s.description for s in segments[name].signals]
        stray = [d for d in found if d not in spf]
        if stray or (not master.variable_layout and found != layout):
            raise ReadError(
                f"{posixpath.join(rel_folder, name)}.hea: signals {found} do not match the layout {layout}; "
                "expected " + ("a subset of it" if master.variable_layout else "the same signals in order")
            )
        for s in segments[name].signals:
            spf[s.description] = max(spf[s.description], s.samples_per_frame)
    signals = tuple(_with_spf(s, spf[s.description]) for s in first.signals)
    m = master
    return WfdbHeader(m.record_name, m.n_sig, m.fs_hz, m.n_samples, signals, m.comments)


def _with_spf(spec: SignalSpec, spf: int) -> SignalSpec:
    return dataclasses.replace(spec, samples_per_frame=spf)


def read_segmented(record: SegmentedRecord, rows: list[int], folder: Path, root: Path) -> FloatArray:
    """The record's signals ``rows`` (indices into ``record.combined.signals``) as float32 ``(C, T)``
    at :func:`sample_rate_hz` ``(record.combined, rows)``: segments concatenated in order, each
    signal matched by name, NaN where a segment does not hold it and over gaps.
    """
    combined = record.combined
    top = round(sample_rate_hz(combined, rows) / combined.fs_hz)
    n_frames = record.master.n_samples or 0
    if n_frames * top * len(rows) > MAX_VALUES:
        raise ReadError(
            f"{combined.record_name}: {n_frames} samples x {top} per frame x {len(rows)} signals exceed "
            f"{MAX_VALUES} values; expected a smaller record"
        )
    out = np.full((len(rows), n_frames * top), np.nan, dtype=np.float32)
    wanted = [combined.signals[i].description for i in rows]
    start = 0
    for seg in record.master.segments:
        header = record.segments.get(seg.name)
        if header is not None and seg.n_frames:
            _place(header, wanted, folder, root, out[:, start * top : (start + seg.n_frames) * top], top)
        start += seg.n_frames
    return out


def _place(
    header: WfdbHeader, wanted: list[str], folder: Path, root: Path, target: FloatArray, top: int
) -> None:
    """Decode the ``wanted`` signals the segment holds into their rows of ``target``."""
    index = {s.description: i for i, s in reversed(list(enumerate(header.signals)))}
    present = [(row, index[name]) for row, name in enumerate(wanted) if name in index]
    if not present:
        return
    seg_rows = [i for _, i in present]
    signal = read_signals(header, folder, root, seg_rows)
    n = round(sample_rate_hz(header, seg_rows) / header.fs_hz)
    if n != top:  # this segment stores these signals at a lower rate than others: interpolate up
        grid = (np.arange(target.shape[1], dtype=np.float64) + 0.5) / top
        source = (np.arange(signal.shape[1], dtype=np.float64) + 0.5) / n
        rows = [np.interp(grid, source, row.astype(np.float64)) for row in signal]
        signal = np.stack(rows).astype(np.float32)
    for k, (row, _) in enumerate(present):
        target[row] = signal[k]
