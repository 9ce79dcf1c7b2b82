"""What a WFDB folder's text says: ``RECORDS`` lists, shared metadata file names, header comment labels.

May import: the standard library only.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

RECORDS_FILE = "RECORDS"
# Far above real files (a RECORDS file of 100k records is ~2 MB); the cap keeps a damaged or
# hostile file from being read whole into memory.
MAX_RECORDS_BYTES = 64 << 20

# Shared documentation/listing files of PhysioNet databases: accounted for, never records.
METADATA_NAME = re.compile(
    r"(RECORDS([-_.][\w.-]+)?|ANNOTATORS|DBS|"
    r"(README|LICEN[CS]E|SHA(1|256)SUMS|MD5SUMS|CHANGES|NOTES)(\.\w+)?|"
    r".+\.(md|html?|pdf))",
    re.IGNORECASE,
)

# MIT-BIH's first comment line: "<age> <sex> <reference numbers> x1" (age may be -1 or ??).
_PATIENT_LINE = re.compile(r"(-?\d+|\?+)\s+[MFmf?](\s.*)?")
# A label is a short phrase: starts with a letter, then letters, digits, spaces, _ ( ) / + ' -.
_LABEL_LINE = re.compile(r"[^\W\d_][\w ()/+'-]*")
MAX_LABEL_WORDS = 6


def header_comment_labels(comments: Iterable[str]) -> tuple[str, ...]:
    """The header comment lines that are labels, stripped, in order.

    The rule: a comment line is a label when it is a short phrase (at most
    :data:`MAX_LABEL_WORDS` words, starting with a letter and holding only letters, digits,
    spaces and ``_ ( ) / + ' -``). So these are skipped:

    - fielded metadata ``key: value`` (``Age: 62``, ``Dx: ...``; sources with such fields have
      their own readers);
    - prose, i.e. lines with sentence punctuation ``. , ;`` or more words (MIT-BIH's notes such
      as ``The PVCs are multiform.``);
    - MIT-BIH's patient line ``69 M 1085 1629 x1`` (age, sex, ...) **and the line after it**,
      which is the medication list (``Aldomet, Inderal``, but also a single ``Inderal`` or
      ``None``, which would otherwise read as a label).
    """
    labels: list[str] = []
    after_patient_line = False
    for raw in comments:
        line = raw.strip()
        if after_patient_line:
            after_patient_line = False
            continue
        if _PATIENT_LINE.fullmatch(line):
            after_patient_line = True
            continue
        if _LABEL_LINE.fullmatch(line) and len(line.split()) <= MAX_LABEL_WORDS:
            labels.append(line)
    return tuple(labels)


@dataclass(frozen=True)
class RecordsList:
    """One ``RECORDS`` file: the record names it lists, relative to the source root."""

    file: str
    folder: str
    records: frozenset[str]
    folders: tuple[str, ...]  # subfolder entries, relative to the root, ending in "/"
    escaping: tuple[str, ...] = ()  # entries as written that would leave the source root

    def lists(self, key: str) -> bool:
        return key in self.records or any(key.startswith(f) for f in self.folders)


def parse_records_file(rel: str, text: str) -> RecordsList:
    """Parse the ``RECORDS`` file at ``rel`` (one record name or ``folder/`` per line).

    Entries that would leave the source root cannot name a record under it: they are kept in
    ``escaping`` so discovery can say why they were not read.
    """
    folder = posixpath.dirname(rel)
    records: set[str] = set()
    folders: list[str] = []
    escaping: list[str] = []
    for line in text.splitlines():
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        joined = posixpath.normpath(posixpath.join(folder, entry))
        if joined.startswith("..") or PurePosixPath(joined).is_absolute():
            escaping.append(entry)
            continue
        if entry.endswith("/"):
            folders.append(joined + "/")
        else:
            records.add(joined)
    return RecordsList(rel, folder, frozenset(records), tuple(folders), tuple(escaping))


def governing_list(header_rel: str, lists: Mapping[str, RecordsList]) -> RecordsList | None:
    """The ``RECORDS`` file of the header's folder or the nearest folder above it."""
    folder = posixpath.dirname(header_rel)
    while True:
        if folder in lists:
            return lists[folder]
        if not folder:
            return None
        folder = posixpath.dirname(folder)
