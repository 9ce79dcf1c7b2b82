"""PhysioNet/CinC Challenge 2017 single-lead AF records: ``A00001.{hea,mat}`` + a label file.

Each ``.mat`` is a MATLAB v4 file whose ``val`` (1, N) int16 matrix is WFDB format 16 behind
a 24-byte prefix (``16+24 1000/mV``), 300 Hz. Labels come from ``REFERENCE.csv`` (the original
v1 labelling, ``labels="v1"``) or ``REFERENCE-v3.csv`` (the updated one, ``labels="v3"``):
``record,label`` lines with Windows line endings and no header; the label is ``N``, ``A``,
``O`` or ``~`` and is kept as stated. Extra columns are ignored and a record written as a path
(``A00/A00001``, as in the published v3 file) is matched by its last component.

The root may be the folder holding the files or any parent of it: records and label files are
found recursively. A record takes its label from the label file in its own folder or the
nearest parent folder; if none is there and exactly one label file exists, that one.

The headers' initial values differ from the first sample in about 4% of records (a quirk of
the distributed headers); they are not checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import ClassVar

from pipeline.core.records import Discovery, InputUnit, Provenance, RawLabel, ReadError, Record, Rejection
from pipeline.sources.base import SourceLayoutError, SourceReader, list_files
from pipeline.sources.options import Cinc2017Options
from pipeline.sources.wfdb_io import (
    duplicate_name,
    group_wfdb_files,
    is_documentation,
    lead_names,
    orphan_rejections,
    read_unit_ecg,
)

LABEL_FILES = {"v1": "REFERENCE.csv", "v3": "REFERENCE-v3.csv"}
_LABEL_FILE = re.compile(r"^REFERENCE.*\.csv$", re.IGNORECASE)
_MAX_LABEL_FILE_BYTES = 64 << 20


class Cinc2017Reader(SourceReader):
    """One record per ``.hea``/``.mat`` pair; local id = the record name (``A00001``).

    ``labels``: ``"v1"`` (``REFERENCE.csv``) or ``"v3"`` (``REFERENCE-v3.csv``). Signals are
    float32 ``(1, T)`` in mV at 300 Hz, lead ``ECG``; ``patient_id`` is None (not published).
    A record with no line in its label file is rejected; label files of the other version
    are rejected as excluded; the unit's ``extra`` holds its label and label file, so editing
    one line changes only that record's fingerprint.
    """

    kind: ClassVar[str] = "cinc2017"
    version: ClassVar[str] = "1"
    Options: ClassVar[type[Cinc2017Options]] = Cinc2017Options
    options: Cinc2017Options

    def discover(self) -> Discovery:
        sets = group_wfdb_files(list_files(self.root), (".mat",))
        label_name = LABEL_FILES[self.options.labels]
        tables, rejected = self._label_tables(sets.others, label_name)
        label_files = sorted(tables)
        units: list[InputUnit] = []
        seen: dict[str, str] = {}
        for stem, files in sets.records.items():
            duplicate = duplicate_name(stem, files, seen)
            if duplicate is not None:
                rejected.append(duplicate)
                continue
            name = PurePosixPath(stem).name
            table = _label_file_for(stem, label_files)
            if table is None:
                reason = f"{files[0]}: no {label_name} for this record under the root"
                rejected.append(Rejection(stem, files, reason))
                continue
            label = tables[table].get(name, "")
            if not label:
                problem = "conflicting label lines" if name in tables[table] else "no label line"
                rejected.append(Rejection(stem, files, f"{files[0]}: {problem} for {name} in {table}"))
                continue
            seen[name] = files[0]
            units.append(InputUnit(key=name, files=files, extra={"label": label, "labels_file": table}))
        rejected.extend(orphan_rejections(sets.orphans))
        taken = set(tables) | {f for r in rejected for f in r.files}
        metadata, stray = self._classify_others([rel for rel in sets.others if rel not in taken], label_name)
        metadata.extend(label_files)
        return Discovery(tuple(units), tuple(sorted(metadata)), tuple(rejected + stray))

    def _classify_others(self, others: list[str], label_name: str) -> tuple[list[str], list[Rejection]]:
        """Split files that are neither records nor the label files in use into documentation
        (metadata) and rejections (label files of the other version, unknown files)."""
        metadata: list[str] = []
        rejected: list[Rejection] = []
        for rel in others:
            if _LABEL_FILE.match(PurePosixPath(rel).name):
                reason = (
                    f"{rel}: labels={self.options.labels!r} reads {label_name}; this label file is not used"
                )
                rejected.append(Rejection(rel, (rel,), reason, category="excluded"))
            elif is_documentation(rel):
                metadata.append(rel)
            else:
                reason = f"{rel}: not part of a CinC 2017 record; expected <record>.hea + <record>.mat"
                rejected.append(Rejection(rel, (rel,), reason))
        return metadata, rejected

    def read(self, unit: InputUnit, provenance: Provenance) -> Iterator[Record | Rejection]:
        header, signal = read_unit_ecg(self.root, unit.files)
        yield Record(
            record_id=self.record_id(unit.key),
            source=self.name,
            signal=signal,
            fs_hz=header.fs_hz,
            leads=lead_names(header),
            patient_id=None,
            raw_labels=(RawLabel(unit.extra["label"]),),
            provenance=provenance,
            meta={"labels": self.options.labels, "labels_file": unit.extra["labels_file"]},
        )

    def _label_tables(
        self, others: tuple[str, ...], label_name: str
    ) -> tuple[dict[str, dict[str, str]], list[Rejection]]:
        """Each label file named ``label_name`` → its table.

        A label file that cannot be read, or has no label column at all, is a :class:`SourceLayoutError`
        (the ingest fails with that one message): every record under it would otherwise be quarantined
        for the same cause. A single line without a label only leaves its record unlabelled.
        """
        tables: dict[str, dict[str, str]] = {}
        for rel in others:
            if PurePosixPath(rel).name != label_name:
                continue
            try:
                tables[rel] = self._read_labels(rel)
            except (ReadError, OSError) as exc:
                raise SourceLayoutError(
                    f"{self.root / rel}: unreadable label file: {exc}; expected `record,label` lines"
                ) from None
        return tables, []

    def _read_labels(self, rel: str) -> dict[str, str]:
        """Record name → label; ``""`` for a record whose lines give conflicting labels."""
        path = self.resolve(rel)
        if path.stat().st_size > _MAX_LABEL_FILE_BYTES:
            raise ReadError(f"larger than {_MAX_LABEL_FILE_BYTES} bytes")
        labels: dict[str, str] = {}
        first: tuple[int, str] | None = None  # the first non-empty line, for the message
        for i, line in enumerate(path.read_text(encoding="utf-8-sig", errors="replace").splitlines(), 1):
            fields = [f.strip() for f in line.split(",")]
            first = first or ((i, line) if line.strip() else None)
            if len(fields) < 2 or not fields[0] or not fields[1]:
                continue
            name = PurePosixPath(fields[0]).name
            labels[name] = fields[1] if labels.get(name, fields[1]) == fields[1] else ""
        if first is not None and not labels:
            raise SourceLayoutError(
                f"{path}: line {first[0]}: {first[1][:80]!r} has no label column; expected `record,label` "
                "lines (label N, A, O or ~)"
            )
        return labels


def _label_file_for(stem: str, label_files: list[str]) -> str | None:
    """The label file in the record's folder or its nearest parent; else the only one."""
    folder = PurePosixPath(stem).parent
    by_folder = {PurePosixPath(rel).parent: rel for rel in label_files}
    for candidate in (folder, *folder.parents):
        if candidate in by_folder:
            return by_folder[candidate]
    return label_files[0] if len(label_files) == 1 else None
