"""Is a landed WFDB record complete? A pure check of one record's files (nothing is moved).

Files arrive in the landing zone partially written and in any order, so a record is complete
only when every one of these holds:

* the header parses completely: it ends with a newline (a header cut mid-line is still being
  written), holds its record line and as many signal lines as the record line declares (fewer is
  *incomplete*; a malformed field, more signal lines or a name leaving the header's folder is
  *invalid*), and has the comment fields the source needs (``# Dx:`` for CinC 2020/2021);
* every signal file the header names exists beside it and has exactly the size in bytes the header
  implies: byte offset + samples x signals x bytes per sample of its format (16, 61, 160: 2;
  212: 3 per 2 samples; 310/311: 4 per 3; 24: 3; 32: 4; 8, 80: 1; several signals may share one
  file). A MATLAB v4 ``.mat`` (CinC 2017/2021: format ``16+24``) must also agree with its own
  header: an int16 rows x cols matrix of exactly the header's samples, data starting at the
  header's byte offset. FLAC formats (508/516/524) are compressed, so their size is not checked;
* the annotation file ``<record>.<annotation_ext>``, when one is required, is whole: a sequence of
  MIT annotation words ending exactly at the end-of-file marker (two zero bytes);
* with ``verify_checksums``, each signal's 16-bit checksum from the header matches the sum of its
  samples (formats 16, 61, 160, 212, 24, 32 and 80 are decoded with numpy; others are skipped
  with a note). This catches a preallocated, zero-filled file of the right size. A checksum of
  0 is treated as "not set", as in CinC 2017 headers, so it never fails.

Sizes in messages are bytes. Problems name the file and what was expected versus found, e.g.
``100.dat: 411,000 of 1,950,000 bytes the header implies (format 212, 2 signals x 650,000 samples)``.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from pipeline.core.records import ReadError
from pipeline.sources.base import confined_path
from pipeline.sources.wfdb import (
    BYTES_PER_SAMPLE,
    DECODED_FORMATS,
    FLAC_FORMATS,
    MAX_HEADER_BYTES,
    MatLayout,
    MatV4Error,
    SignalSpec,
    WfdbHeader,
    annotation_problem,
    check_mat_v4,
    decode_samples,
    parse_header,
    signal_files,
)
from pipeline.sources.wfdb_io import comment_fields

COMPLETE = "complete"
INCOMPLETE = "incomplete"
INVALID = "invalid"
HEADER_SUFFIX = ".hea"

_CHUNK_SAMPLES = 1 << 21  # samples decoded at a time while summing checksums (~16 MiB of int64)


@dataclass(frozen=True)
class RecordCheck:
    """Outcome of :func:`check_record` for one header.

    ``status`` is ``complete``, ``incomplete`` (still arriving: a file missing or short, a header
    cut mid-line) or ``invalid`` (wrong beyond being incomplete). ``files`` are the record's files
    relative to the root, in move order: signal files, then the annotation file, header last
    (named whether or not they exist yet). ``problems`` say why the record is not complete, each
    naming its file; ``notes`` name checks that could not run (a format not decoded here).
    """

    header: str
    status: str
    files: tuple[str, ...]
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return self.status == COMPLETE

    @property
    def record_key(self) -> str:
        """The header's path relative to the root without ``.hea``."""
        return self.header[: -len(HEADER_SUFFIX)]

    @property
    def reason(self) -> str:
        return "; ".join(self.problems)


class _Findings:
    """Problems found so far; the worst status wins (invalid over incomplete over complete)."""

    def __init__(self) -> None:
        self.invalid: list[str] = []
        self.incomplete: list[str] = []
        self.notes: list[str] = []

    def status(self) -> str:
        if self.invalid:
            return INVALID
        return INCOMPLETE if self.incomplete else COMPLETE

    def problems(self) -> tuple[str, ...]:
        return (*self.invalid, *self.incomplete)


def check_record(
    root: Path,
    header_rel: str,
    *,
    annotation_ext: str | None = None,
    signal_suffixes: tuple[str, ...] | None = None,
    required_comments: tuple[str, ...] = (),
    verify_checksums: bool = True,
) -> RecordCheck:
    """Check that the record whose header is ``root/header_rel`` is complete.

    ``signal_suffixes`` restricts the signal files to ``<record><suffix>`` (e.g. ``(".mat",)``:
    the CinC reader groups only those with a header); None allows any file beside the header.
    ``required_comments`` are ``key: value`` comment keys (lower case) the header must hold.
    ``annotation_ext`` names a required annotation file ``<record>.<annotation_ext>``.
    """
    if not header_rel.endswith(HEADER_SUFFIX):
        raise ValueError(f"{header_rel}: expected a header path ending in {HEADER_SUFFIX}")
    key = header_rel[: -len(HEADER_SUFFIX)]
    annotation = f"{key}.{annotation_ext}" if annotation_ext else None
    found = _Findings()
    data_files: list[str] = []
    try:
        header = _checked_header(root, header_rel, required_comments, found)
        if header is not None:
            data_files = _data_file_paths(root, header, header_rel, annotation, signal_suffixes, found)
            if not found.invalid:
                _check_signal_files(root, header, header_rel, verify_checksums, found)
        if annotation is not None:
            _check_annotation(root, annotation, found)
    except OSError as exc:  # unreadable (permissions, I/O error): not something waiting helps
        found.invalid.append(f"{exc.filename or header_rel}: cannot read: {exc.strerror or exc}")
    files = (*data_files, *([annotation] if annotation else []), header_rel)
    return RecordCheck(header_rel, found.status(), files, found.problems(), tuple(found.notes))


# --------------------------------------------------------------------------- header


def _checked_header(
    root: Path, header_rel: str, required_comments: tuple[str, ...], found: _Findings
) -> WfdbHeader | None:
    """The parsed header, or None (with the problem recorded) when it is not whole yet or wrong."""
    text = _header_text(root, header_rel, found)
    if text is None:
        return None
    declared, lines = _declared_signals(text)
    if lines == 0:
        found.incomplete.append(f"{header_rel}: comments only, no record line yet")
        return None
    if declared is not None and lines - 1 < declared:
        found.incomplete.append(
            f"{header_rel}: {max(lines - 1, 0)} of the {declared} signal lines its record line declares"
        )
        return None
    try:
        header = parse_header(text, header_rel)
    except ReadError as exc:
        found.invalid.append(str(exc))
        return None
    if header.n_sig == 0:
        found.invalid.append(f"{header_rel}: declares no signals; expected at least one")
        return None
    fields = comment_fields(header.comments)
    for name in required_comments:
        if name not in fields:
            found.incomplete.append(f"{header_rel}: no '# {name.capitalize()}:' comment line (yet)")
    return header


def _header_text(root: Path, header_rel: str, found: _Findings) -> str | None:
    located = _regular_file(root, header_rel, "missing", found)
    if located is None:
        return None
    path, info = located
    if info.st_size > MAX_HEADER_BYTES:
        found.invalid.append(f"{header_rel}: {info.st_size:,} bytes; expected at most {MAX_HEADER_BYTES:,}")
        return None
    raw = path.read_bytes()
    if not raw.strip():
        found.incomplete.append(f"{header_rel}: {len(raw):,} bytes, no record line yet")
        return None
    if not raw.endswith(b"\n"):
        found.incomplete.append(
            f"{header_rel}: ends mid-line after {len(raw):,} bytes; expected a final newline"
        )
        return None
    try:
        return raw.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _declared_signals(text: str) -> tuple[int | None, int]:
    """(signals the record line declares, or None when unreadable; count of non-comment lines)."""
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    fields = lines[0].split() if lines else []
    if len(fields) < 2 or not fields[1].isdigit():
        return None, len(lines)  # parse_header names the bad field
    return int(fields[1]), len(lines)


# --------------------------------------------------------------------------- signal files


def _data_file_paths(
    root: Path,
    header: WfdbHeader,
    header_rel: str,
    annotation: str | None,
    signal_suffixes: tuple[str, ...] | None,
    found: _Findings,
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


def _groups(header: WfdbHeader, header_rel: str, found: _Findings) -> list[_Group]:
    folder = posixpath.dirname(header_rel)
    groups = []
    for name in signal_files(header):
        signals = tuple(s for s in header.signals if s.file_name == name)
        if len({s.fmt for s in signals}) > 1:
            found.invalid.append(f"{name}: signals stored in one file have different formats; expected one")
            continue
        groups.append(_Group(posixpath.join(folder, name), signals[0].fmt, signals[0].byte_offset, signals))
    return groups


def _check_signal_files(
    root: Path, header: WfdbHeader, header_rel: str, verify_checksums: bool, found: _Findings
) -> None:
    for group in _groups(header, header_rel, found):
        located = _regular_file(root, group.rel, f"missing (named by {header_rel})", found)
        if located is None:
            continue
        path, info = located
        before = len(found.invalid) + len(found.incomplete)
        n_samples = _checked_size(path, group, header.n_samples, info.st_size, found)
        size_ok = len(found.invalid) + len(found.incomplete) == before
        if verify_checksums and size_ok and n_samples is not None:
            _check_checksums(path, group, n_samples, found)


def _checked_size(
    path: Path, group: _Group, n_samples: int | None, size: int, found: _Findings
) -> int | None:
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


# --------------------------------------------------------------------------- checksums


def _check_checksums(path: Path, group: _Group, n_samples: int, found: _Findings) -> None:
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
    with Path(path).open("rb") as fh:
        fh.seek(group.byte_offset)
        done = 0
        while done < n_samples:
            frames = min(step, n_samples - done)
            count = frames * width
            buf = fh.read(-(-count * group_bytes // group_samples))
            yield decode_samples(group.fmt, buf, count).reshape(frames, width)
            done += frames


# --------------------------------------------------------------------------- annotations


def _regular_file(root: Path, rel: str, missing: str, found: _Findings) -> tuple[Path, os.stat_result] | None:
    """``rel`` confined to ``root`` and its lstat, or None with the problem recorded in ``found``."""
    try:
        path = confined_path(root, rel)
        info = path.lstat()
    except ReadError as exc:
        found.invalid.append(str(exc))
        return None
    except OSError:
        found.incomplete.append(f"{rel}: {missing}")
        return None
    if not stat.S_ISREG(info.st_mode):
        found.invalid.append(f"{rel}: not a regular file")
        return None
    return path, info


def _check_annotation(root: Path, rel: str, found: _Findings) -> None:
    located = _regular_file(root, rel, "missing; this source requires the annotation file", found)
    if located is None:
        return
    path, _ = located
    status, problem = annotation_status(path, rel)
    if status == INCOMPLETE:
        found.incomplete.append(problem)
    elif status == INVALID:
        found.invalid.append(problem)


def annotation_status(path: Path, rel: str | None = None) -> tuple[str, str]:
    """(status, problem) of a MIT-format annotation file (``problem`` is ``""`` when complete),
    by the readers' rule (:func:`pipeline.sources.wfdb.annotation_problem`): complete when the
    end-of-file marker is its last word, incomplete when the words run out first, invalid when
    bytes follow the marker (or the file is far larger than any annotation file)."""
    problem = annotation_problem(path, rel)
    if problem is None:
        return COMPLETE, ""
    if problem.arriving:
        return INCOMPLETE, f"{problem.reason}; still arriving?"
    return INVALID, problem.reason
