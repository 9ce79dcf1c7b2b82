"""The units of ``ecgpipe predict``: what input discovery finds and hands to the readers.

A :class:`PredictUnit` is one readable input (a WFDB record, a UCR file, a CODE-15% part); a
:class:`Candidate` is one record read from it, or an input that could not become a record; a
:class:`Skipped` file is no record at all. Paths are kept relative to the input root and shown as the
user wrote that root (:func:`shown_path`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from pipeline.core.records import Record, Rejection

CODE_CSV = "exams.csv"
HDF5_GLOB = "*.h*5"  # what the CODE reader discovers: .hdf5 and .h5 parts
SIGNAL_SUFFIXES = frozenset({".dat", ".mat", ".xyz"})

Kind = Literal["wfdb", "ucr", "code15"]


@dataclass(frozen=True)
class Candidate:
    """One record to score, or one input that could not become a record.

    ``record_id``: the stable id (see the package docstring); ``input``: the input path as given;
    ``files``: the source files, as the input path joined with their path below it;
    ``item``: the reader's :class:`Record` (``signal`` float32 ``(C, T)`` in mV at ``fs_hz``) or
    a :class:`Rejection` whose ``reason`` is reported.
    """

    record_id: str
    input: str
    files: tuple[str, ...]
    item: Record | Rejection


@dataclass(frozen=True)
class PredictUnit:
    """A readable unit found among the inputs: one WFDB record, UCR file or CODE-15% part.

    ``uid`` is its id (WFDB) or the prefix of its records' ids; ``root`` the input root (absolute,
    symbolic links resolved); ``shown_root`` the same root as the user wrote it; ``files`` paths
    below ``root``, the primary file (header, series file, HDF5 part) first; ``csv_dir`` (CODE-15%
    only) the folder below ``root`` holding ``exams.csv``.
    """

    uid: str
    kind: Kind
    root: Path
    shown_root: str
    files: tuple[str, ...]
    input: str
    csv_dir: str = ""

    def shown(self, rel: str) -> str:
        return shown_path(self.shown_root, rel)


@dataclass(frozen=True)
class Skipped:
    """A file found in an input folder that is no record (documentation, tables, annotations)."""

    path: str
    reason: str


@dataclass(frozen=True)
class InputScan:
    """What :func:`discover_inputs` found: ``entries`` in output order (units to read and inputs
    already rejected), and the ``skipped`` files of input folders."""

    entries: tuple[PredictUnit | Candidate, ...]
    skipped: tuple[Skipped, ...]


Entry = PredictUnit | Candidate


@dataclass(frozen=True)
class InputRoot:
    """One input: its root folder (resolved, and as the user wrote it) and the path given."""

    position: int
    root: Path
    shown_root: str
    given: str

    def unit(self, kind: Kind, uid: str, files: Sequence[str], csv_dir: str = "") -> PredictUnit:
        return PredictUnit(uid, kind, self.root, self.shown_root, tuple(files), self.given, csv_dir)

    def rejected(self, uid: str, files: Sequence[str], reason: str) -> Candidate:
        shown = tuple(shown_path(self.shown_root, f) for f in files)
        return Candidate(uid, self.given, shown, Rejection(uid, tuple(files), reason))

    def skipped(self, rel: str, reason: str) -> Skipped:
        return Skipped(shown_path(self.shown_root, rel), reason)


def entry_files(entry: Entry) -> tuple[str, ...]:
    """An entry's files below its root, the primary one first."""
    if isinstance(entry, PredictUnit):
        return entry.files
    item = entry.item
    return item.files if isinstance(item, Rejection) else tuple(f for f, _ in item.provenance.files)


def entry_id(entry: Entry) -> str:
    return entry.uid if isinstance(entry, PredictUnit) else entry.record_id


def shown_path(shown_root: str, rel: str) -> str:
    return (PurePosixPath(shown_root) / rel).as_posix() if shown_root else rel
