"""Discovery bookkeeping of the WFDB-folder reader (:mod:`pipeline.sources.wfdb_folder`): which
files are still unaccounted for, which record took which signal file, the order in which headers
may take files, and ``RECORDS`` entries naming nothing under the root.

May import: ``pipeline.core``, ``pipeline.sources.wfdb``, ``pipeline.sources.wfdb_text``.
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.core.records import InputUnit, ReadError, Rejection
from pipeline.sources.wfdb import WfdbHeader, signal_files
from pipeline.sources.wfdb_text import RecordsList

HEADER_SUFFIX = ".hea"


def stem(rel: str) -> str:
    """A file's record name: its path without the last extension."""
    return posixpath.splitext(rel)[0]


@dataclass
class Scan:
    """Discovery state: files still unaccounted for and what has been decided so far."""

    remaining: set[str]
    units: list[InputUnit] = dataclasses.field(default_factory=list)
    rejected: list[Rejection] = dataclasses.field(default_factory=list)
    # record name -> (reason, category) for records whose leftover files share their fate
    record_fate: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    owner: dict[str, str] = dataclasses.field(default_factory=dict)  # file -> the unit that took it

    def reject(self, rel: str, reason: str, category: str = "error") -> None:
        self.remaining.discard(rel)
        self.rejected.append(Rejection(item=rel, files=(rel,), reason=reason, category=category))


class DuplicateHeader(ReadError):
    """A header naming a signal file another record already reads."""


def stem_owners_first(parsed: Mapping[str, object]) -> list[str]:
    """Headers in the order they may take signal files: first those whose record name matches the
    stem of every signal file they name (``100.hea`` for ``100.dat``), then the rest; sorted within.
    So a variant header (``100-no-len.hea``) naming the same file is the duplicate, not the record."""

    def matches(rel: str) -> bool:
        header = parsed[rel]
        name = posixpath.basename(rel)[: -len(HEADER_SUFFIX)]
        return isinstance(header, WfdbHeader) and all(stem(f) == name for f in signal_files(header))

    return sorted(parsed, key=lambda rel: (not matches(rel), rel))


def missing_listed(lists: Mapping[str, RecordsList], files: list[str]) -> list[Rejection]:
    """Records a ``RECORDS`` file lists whose header does not exist or which would leave the root
    (no file under the root to account for)."""
    present = set(files)
    missing = [
        Rejection(
            item=key,
            files=(),
            reason=f"listed in {listing.file} but {key}{HEADER_SUFFIX} does not exist",
        )
        for listing in lists.values()
        for key in sorted(listing.records)
        if f"{key}{HEADER_SUFFIX}" not in present
    ]
    escaping = [
        Rejection(
            item=entry,
            files=(),
            reason=f"listed in {listing.file} but {entry!r} leaves the source root; expected a record "
            "name under it",
        )
        for listing in lists.values()
        for entry in listing.escaping
    ]
    return missing + escaping
