"""Is a landed WFDB record complete? A pure check of one record's files (nothing is moved).

Files arrive in the landing zone partially written and in any order, so a record is complete
only when every one of these holds:

* the header parses completely: it ends with a newline (a header cut mid-line is still being
  written), holds its record line and as many signal lines as the record line declares (fewer is
  *incomplete*; a malformed field, more signal lines or a name leaving the header's folder is
  *invalid*), and has the comment fields the source needs (``# Dx:`` for CinC 2020/2021);
* every signal file the header names exists beside it with exactly the size the header implies
  (a MATLAB v4 ``.mat`` also agreeing with its own header) and, with ``verify_checksums``, each
  signal's checksum matches: the rules are :mod:`pipeline.landing.signal_check`'s;
* the annotation file ``<record>.<annotation_ext>``, when one is required, is whole: a sequence of
  MIT annotation words ending exactly at the end-of-file marker (two zero bytes).

Sizes in messages are bytes. Problems name the file and what was expected versus found, e.g.
``100.dat: 411,000 of 1,950,000 bytes the header implies (format 212, 2 signals x 650,000 samples)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.core.records import ReadError
from pipeline.landing.findings import COMPLETE, HEADER_SUFFIX, INCOMPLETE, INVALID, Findings, regular_file
from pipeline.landing.signal_check import check_signal_files, data_file_paths
from pipeline.sources.wfdb import MAX_HEADER_BYTES, WfdbHeader, annotation_problem, parse_header
from pipeline.sources.wfdb_io import comment_fields

__all__ = [
    "COMPLETE",
    "HEADER_SUFFIX",
    "INCOMPLETE",
    "INVALID",
    "RecordCheck",
    "annotation_status",
    "check_record",
]


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
    found = Findings()
    data_files: list[str] = []
    try:
        header = _checked_header(root, header_rel, required_comments, found)
        if header is not None:
            data_files = data_file_paths(root, header, header_rel, annotation, signal_suffixes, found)
            if not found.invalid:
                check_signal_files(root, header, header_rel, verify_checksums, found)
        if annotation is not None:
            _check_annotation(root, annotation, found)
    except OSError as exc:  # unreadable (permissions, I/O error): not something waiting helps
        found.invalid.append(f"{exc.filename or header_rel}: cannot read: {exc.strerror or exc}")
    files = (*data_files, *([annotation] if annotation else []), header_rel)
    return RecordCheck(header_rel, found.status(), files, found.problems(), tuple(found.notes))


# --------------------------------------------------------------------------- header


def _checked_header(
    root: Path, header_rel: str, required_comments: tuple[str, ...], found: Findings
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


def _header_text(root: Path, header_rel: str, found: Findings) -> str | None:
    located = regular_file(root, header_rel, "missing", found)
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


# --------------------------------------------------------------------------- annotations


def _check_annotation(root: Path, rel: str, found: Findings) -> None:
    located = regular_file(root, rel, "missing; this source requires the annotation file", found)
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
