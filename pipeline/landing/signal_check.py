"""The signal-file part of the landing check: are a header's signal files there, whole and unspoiled?

* every signal file the header names exists beside it and has exactly the size in bytes the header
  implies: byte offset + samples x signals x bytes per sample of its format (16, 61, 160: 2;
  212: 3 per 2 samples; 310/311: 4 per 3; 24: 3; 32: 4; 8, 80: 1; several signals may share one
  file). A MATLAB v4 ``.mat`` (CinC 2017/2021: format ``16+24``) must also agree with its own
  header: an int16 rows x cols matrix of exactly the header's samples, data starting at the
  header's byte offset. FLAC formats (508/516/524) are compressed, so their size is not checked;
* with ``verify_checksums``, each signal's 16-bit checksum from the header matches the sum of its
  samples (formats 16, 61, 160, 212, 24, 32 and 80 are decoded with numpy; others are skipped
  with a note). This catches a preallocated, zero-filled file of the right size. A checksum of
  0 is treated as "not set", as in CinC 2017 headers, so it never fails.

May import: ``pipeline.core``, ``pipeline.sources``, ``pipeline.landing.findings``; numpy.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from pipeline.core.records import ReadError
from pipeline.landing.findings import HEADER_SUFFIX, Findings, regular_file
from pipeline.sources.base import confined_path
from pipeline.sources.wfdb import (
    BYTES_PER_SAMPLE,
    DECODED_FORMATS,
    FLAC_FORMATS,
    MatLayout,
    MatV4Error,
    SignalSpec,
    WfdbHeader,
    check_mat_v4,
    decode_samples,
    signal_files,
)

_CHUNK_SAMPLES = 1 << 21  # samples decoded at a time while summing checksums (~16 MiB of int64)


def data_file_paths(
    root: Path,
    header: WfdbHeader,
    header_rel: str,
    annotation: str | None,
    signal_suffixes: tuple[str, ...] | None,
    found: Findings,
) -> list[str]:
    """Root-relative paths of the header's signal files; names that may not be taken are invalid."""
    folder = posixpath.dirname(header_rel)
    stem = posixpath.basename(header_rel)[: -len(HEADER_SUFFIX)]
    if any(s.file_name == "~" for s in header.signals):
        found.invalid.append(f"{header_rel}: a signal has no file ('~'); expected stored samples")
    paths = []
    for name in signal_files(header):
        rel = posixpath.join(folder, name)
        try:
            confined_path(root, rel)  # header paths are untrusted: refuse escapes, links included
        except ReadError as exc:
            found.invalid.append(f"{header_rel}: {exc}")
            continue
        if "/" in name or "\\" in name or name in (".", "..") or name.startswith("."):
            found.invalid.append(
                f"{header_rel}: names signal file {name!r}; expected a plain file name beside the header"
            )
            continue
        if rel in (header_rel, annotation):
            found.invalid.append(f"{header_rel}: names {name!r} as a signal file; expected a data file")
            continue
        if signal_suffixes is not None and name not in {stem + s for s in signal_suffixes}:
            allowed = " or ".join(stem + s for s in signal_suffixes)
            found.invalid.append(
                f"{header_rel}: names signal file {name!r}; this source reads only {allowed}"
            )
            continue
        paths.append(rel)
    return paths


@dataclass(frozen=True)
class _Group:
    """The signals stored in one signal file."""

    rel: str
    fmt: str
    byte_offset: int
    signals: tuple[SignalSpec, ...]

    @property
    def frame_width(self) -> int:
        return sum(s.samples_per_frame for s in self.signals)

    def describe(self, n_samples: int) -> str:
        """``format 212, 2 signals x 650,000 samples`` (plus offset and samples per frame)."""
        fmt = self.fmt + (f"+{self.byte_offset}" if self.byte_offset else "")
        n = len(self.signals)
        text = f"format {fmt}, {n} signal{'s' if n != 1 else ''} x {n_samples:,} samples"
        if self.frame_width != n:
            text += f" ({self.frame_width} samples per frame)"
        return text


def _groups(header: WfdbHeader, header_rel: str, found: Findings) -> list[_Group]:
    folder = posixpath.dirname(header_rel)
    groups = []
    for name in signal_files(header):
        signals = tuple(s for s in header.signals if s.file_name == name)
        if len({s.fmt for s in signals}) > 1:
            found.invalid.append(f"{name}: signals stored in one file have different formats; expected one")
            continue
        groups.append(_Group(posixpath.join(folder, name), signals[0].fmt, signals[0].byte_offset, signals))
    return groups


def check_signal_files(
    root: Path, header: WfdbHeader, header_rel: str, verify_checksums: bool, found: Findings
) -> None:
    for group in _groups(header, header_rel, found):
        located = regular_file(root, group.rel, f"missing (named by {header_rel})", found)
        if located is None:
            continue
        path, info = located
        before = len(found.invalid) + len(found.incomplete)
        n_samples = _checked_size(path, group, header.n_samples, info.st_size, found)
        size_ok = len(found.invalid) + len(found.incomplete) == before
        if verify_checksums and size_ok and n_samples is not None:
            _check_checksums(path, group, n_samples, found)


def _checked_size(path: Path, group: _Group, n_samples: int | None, size: int, found: Findings) -> int | None:
    """Check ``size`` against what the header (and a MAT v4 header) imply; return the sample
    count per signal the file holds, None when it cannot be known."""
    if group.fmt in FLAC_FORMATS:
        found.notes.append(f"{group.rel}: size not checked (format {group.fmt} is compressed)")
        return None
    if n_samples is not None:
        low, high = _wfdb_size_range(group, n_samples)
        if size < low:
            found.incomplete.append(
                f"{group.rel}: {size:,} of {_span(low, high)} bytes the header implies "
                f"({group.describe(n_samples)})"
            )
            return None
    if path.suffix.lower() == ".mat":
        layout = MatLayout(group.rel, group.fmt, group.byte_offset, group.frame_width, n_samples)
        try:
            mat_samples = check_mat_v4(path, layout, size)
        except MatV4Error as exc:  # the readers' MAT v4 check: a record they would refuse never lands
            (found.incomplete if exc.arriving else found.invalid).append(str(exc))
            return None
        n_samples = n_samples if mat_samples is None else mat_samples
    if n_samples is None:
        found.notes.append(f"{group.rel}: size not checked (the header gives no sample count)")
        return None
    low, high = _wfdb_size_range(group, n_samples)
    if size > high:
        found.invalid.append(
            f"{group.rel}: {size:,} bytes, more than the {_span(low, high)} the header implies "
            f"({group.describe(n_samples)})"
        )
        return None
    return n_samples


def _wfdb_size_range(group: _Group, n_samples: int) -> tuple[int, int]:
    """Smallest and largest valid file size in bytes: a last partial group of format 212 or
    310/311 may be written short (WFDB C library) or padded to a whole group (wfdb-python)."""
    group_bytes, group_samples = BYTES_PER_SAMPLE[group.fmt]
    total = n_samples * group.frame_width
    low = group.byte_offset + -(-total * group_bytes // group_samples)
    high = group.byte_offset + -(-total // group_samples) * group_bytes
    return low, high


def _span(low: int, high: int) -> str:
    return f"{low:,}" if low == high else f"{low:,}-{high:,}"


def _check_checksums(path: Path, group: _Group, n_samples: int, found: Findings) -> None:
    wanted = [s.checksum for s in group.signals]
    if all(c is None or c == 0 for c in wanted):
        return
    if group.fmt not in DECODED_FORMATS or any(s.skew for s in group.signals):
        found.notes.append(
            f"{group.rel}: checksums not verified (format {group.fmt}"
            f"{' with skew' if any(s.skew for s in group.signals) else ''} is not decoded here)"
        )
        return
    sums = _signal_sums(path, group, n_samples)
    for spec, want, got in zip(group.signals, wanted, sums, strict=True):
        if want is None or want == 0:
            continue
        if (got - want) % 65536:
            found.incomplete.append(
                f"{group.rel}: checksum of signal {spec.description or '?'} is {_as_int16(got)}; the header "
                f"says {want} (partly written or preallocated file?)"
            )


def _as_int16(value: int) -> int:
    value %= 65536
    return value - 65536 if value >= 32768 else value


def _signal_sums(path: Path, group: _Group, n_samples: int) -> list[int]:
    """Sum of each signal's ``n_samples * samples_per_frame`` digital samples."""
    columns = np.cumsum([0] + [s.samples_per_frame for s in group.signals])
    sums = [0] * len(group.signals)
    for frames in _decoded_frames(path, group, n_samples):
        for i in range(len(group.signals)):
            sums[i] += int(frames[:, columns[i] : columns[i + 1]].sum(dtype=np.int64))
    return sums


def _decoded_frames(path: Path, group: _Group, n_samples: int) -> Iterator[npt.NDArray[np.signedinteger]]:
    """The file's digital samples as ``(frames, frame_width)`` integer blocks, a bounded chunk at a time."""
    group_bytes, group_samples = BYTES_PER_SAMPLE[group.fmt]
    width = group.frame_width
    # Whole format groups per chunk so that 212 triplets never straddle two reads.
    step = max(group_samples, _CHUNK_SAMPLES // width // group_samples * group_samples)
    with path.open("rb") as fh:
        fh.seek(group.byte_offset)
        done = 0
        while done < n_samples:
            frames = min(step, n_samples - done)
            count = frames * width
            buf = fh.read(-(-count * group_bytes // group_samples))
            yield decode_samples(group.fmt, buf, count).reshape(frames, width)
            done += frames
