"""Which reader takes a file among ``ecgpipe predict``'s inputs (the reader rule of the package docstring).

A header gives a WFDB unit (with the signal files it names), a series file a UCR unit, an HDF5 part
with an ``exams.csv`` above it a CODE-15% unit; anything else is skipped (found in a folder) or
rejected (named on the command line), with the reason. Only headers and the first bytes of text
files are read; signal data is not.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import h5py

from pipeline.core.records import ReadError
from pipeline.export.predict.units import (
    CODE_CSV,
    SIGNAL_SUFFIXES,
    Entry,
    InputRoot,
    Skipped,
    entry_files,
)
from pipeline.sources.base import confined_path
from pipeline.sources.wfdb import WfdbHeader, read_header, signal_files
from pipeline.sources.wfdb_io import is_documentation, orphan_rejections

_UCR_SUFFIXES = frozenset({".txt", ".tsv", ".arff", ".ts"})
_SNIFFED_UCR = frozenset({".txt", ".tsv"})  # share their extension with documentation / other tables
_HDF5_SUFFIXES = frozenset({".hdf5", ".h5"})
_SNIFF_BYTES = 1 << 16
_MISSING_TOKENS = frozenset({"?", "nan", "NaN"})


def file_entry(root: InputRoot, name: str) -> Entry:
    """A file named on the command line: its record, or a rejected entry saying why not."""
    suffix = PurePosixPath(name).suffix.lower()
    if suffix == ".hea":
        return header_entry(root, name, None)
    header = f"{PurePosixPath(name).stem}.hea"
    if suffix in SIGNAL_SUFFIXES and (root.root / header).is_file():
        entry = header_entry(root, header, None)
        if name in entry_files(entry):
            return entry
    found = other_entry(root, name, explicit=True)
    assert not isinstance(found, Skipped)  # explicit files are never skipped
    return found


def header_entry(root: InputRoot, rel: str, available: set[str] | None) -> Entry:
    """The WFDB record of the header at ``rel``, or its rejection when the header is unusable.

    ``available``: the files of a folder scan; None for a header named on the command line.
    Signal files the header names that do not exist are left for the reader to report.
    """
    uid = rel[: -len(".hea")]

    def exists(f: str) -> bool:
        return f in available if available is not None else (root.root / f).is_file()

    try:
        header = read_header(confined_path(root.root, rel), rel)
        named = _named_files(header, rel, root.root)
    except ReadError as exc:
        # The record's own signal files share its fate instead of reading as orphans.
        own = [f"{uid}{s}" for s in sorted(SIGNAL_SUFFIXES) if exists(f"{uid}{s}")]
        return root.rejected(uid, (rel, *own), str(exc))
    return root.unit("wfdb", uid, [rel, *dict.fromkeys(f for f in named if exists(f))])


def _named_files(header: WfdbHeader, header_rel: str, root: Path) -> list[str]:
    """Root-relative paths of the signal files a header names (confined to the root)."""
    folder = PurePosixPath(header_rel).parent
    out = []
    for name in signal_files(header):
        full = confined_path(root, (folder / name).as_posix())
        out.append(full.relative_to(root).as_posix())
    return out


def other_entry(root: InputRoot, rel: str, explicit: bool) -> Entry | Skipped:
    """A file that is not part of a WFDB record: a UCR file, a CODE-15% part, or neither."""
    suffix = PurePosixPath(rel).suffix.lower()
    path = root.root / rel
    if suffix in SIGNAL_SUFFIXES:
        return root.rejected(rel, (rel,), orphan_rejections([rel])[0].reason)
    if suffix in _UCR_SUFFIXES and (suffix not in _SNIFFED_UCR or _looks_like_series(path, suffix)):
        return root.unit("ucr", rel, (rel,))
    if suffix in _HDF5_SUFFIXES:
        return _hdf5_entry(root, rel)
    reason = _not_a_record(rel, suffix)
    return root.rejected(rel, (rel,), reason) if explicit else root.skipped(rel, reason)


def _not_a_record(rel: str, suffix: str) -> str:
    if suffix in _SNIFFED_UCR:
        return f"{rel}: text file whose first line is not numbers; expected a UCR series file"
    if is_documentation(rel) or suffix == ".csv":
        return f"{rel}: documentation or metadata table, not a record"
    return (
        f"{rel}: no reader for this kind of file; predict reads WFDB records (.hea + signal files), "
        "UCR series files (.txt/.tsv/.arff/.ts) and CODE-15% HDF5 parts (.hdf5/.h5)"
    )


def _looks_like_series(path: Path, suffix: str) -> bool:
    """True when the first non-blank line is a label followed by numbers (UCR ``.txt``/``.tsv``)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(_SNIFF_BYTES)
    except OSError:
        return True  # let the reader report why it cannot be read
    if b"\x00" in head:
        return False
    lines = head.decode("utf-8", errors="replace").split("\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        tokens = [t.strip() for t in (line.split("\t") if suffix == ".tsv" else line.split())]
        if len(head) == _SNIFF_BYTES and i == len(lines) - 1:
            tokens = tokens[:-1]  # the read may have cut the last number
        return len(tokens) >= 2 and all(_is_number(t) for t in tokens[1:] if t)
    return False


def _is_number(token: str) -> bool:
    if token in _MISSING_TOKENS:
        return True
    try:
        float(token)
    except ValueError:
        return False
    return True


def _hdf5_entry(root: InputRoot, rel: str) -> Entry:
    if not h5py.is_hdf5(root.root / rel):
        return root.rejected(rel, (rel,), f"{rel}: not an HDF5 file; expected a CODE-15% part")
    csv_dir = _code_csv_dir(root.root, rel)
    if csv_dir is None:
        folder = PurePosixPath(rel).parent.as_posix()
        where = "its folder" if folder == "." else f"{folder} or its parent folders"
        reason = (
            f"{rel}: a CODE-15% HDF5 part cannot be read without its {CODE_CSV} (the CODE reader "
            f"takes each exam's row from it); none found in {where} up to the input root"
        )
        return root.rejected(rel, (rel,), reason)
    return root.unit("code15", rel, (rel,), csv_dir)


def _code_csv_dir(root: Path, rel: str) -> str | None:
    """The nearest folder below ``root`` (the part's own, then its parents) holding ``exams.csv``."""
    folder = PurePosixPath(rel).parent
    for candidate in (folder, *folder.parents):
        if (root / candidate / CODE_CSV).is_file():
            return candidate.as_posix()
    return None
