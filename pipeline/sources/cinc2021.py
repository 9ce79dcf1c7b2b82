"""PhysioNet/CinC Challenge 2020/2021 12-lead records: ``<record>.hea`` + ``<record>.mat``.

Records may sit in nested folders (the challenge data has ``training/<db>/<group>/``). Each
``.mat`` is a MATLAB v4 file whose ``val`` matrix is WFDB format 16 behind a 24-byte prefix
(``16+24`` or ``16x1+24`` in the header). Labels are the SNOMED-CT codes of the ``#Dx:`` /
``# Dx:`` comment; ``#Age``, ``#Sex``, ``#Rx``, ``#Hx`` and ``#Sx`` go to ``meta``.

Both header styles are read: raw challenge headers (dates in the record line, Georgia record
lines such as ``E00271.mat 12 500 5000 05-May-2020 14:50:55`` that ``wfdb`` rejects) and headers
rewritten by wfdb-python (``16x1+24``, ``1000.0(0)/mv``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import ClassVar

from pipeline.core.records import Discovery, InputUnit, Provenance, RawLabel, Record, Rejection
from pipeline.sources.base import SourceReader, list_files
from pipeline.sources.wfdb_io import (
    comment_fields,
    duplicate_name,
    group_wfdb_files,
    is_documentation,
    lead_names,
    orphan_rejections,
    read_unit_ecg,
    split_others,
)

_META_KEYS = ("age", "sex", "rx", "hx", "sx")


class Cinc2021Reader(SourceReader):
    """One record per ``.hea``/``.mat`` pair; local id = the record name (``E00271``).

    Signals are float32 ``(12, T)`` in mV at the header's ``fs_hz`` (500 Hz for most
    databases). ``.csv`` tables beside the records (``dx_mapping_scored.csv``, ``weights.csv``)
    and documentation files are metadata; a ``.mat`` with no header is rejected; a record name
    seen twice is read once, the other copy is rejected as a duplicate.
    """

    kind: ClassVar[str] = "cinc2021"
    version: ClassVar[str] = "1"

    def discover(self) -> Discovery:
        sets = group_wfdb_files(list_files(self.root), (".mat",))
        units: list[InputUnit] = []
        rejected: list[Rejection] = []
        seen: dict[str, str] = {}
        for stem, files in sets.records.items():
            duplicate = duplicate_name(stem, files, seen)
            if duplicate is not None:
                rejected.append(duplicate)
                continue
            name = PurePosixPath(stem).name
            seen[name] = files[0]
            units.append(InputUnit(key=name, files=files))
        rejected.extend(orphan_rejections(sets.orphans))
        metadata, stray = split_others(
            sets.others,
            lambda rel: is_documentation(rel) or rel.lower().endswith(".csv"),
            "a CinC 2020/2021 record; expected <record>.hea + <record>.mat",
        )
        return Discovery(tuple(units), tuple(metadata), tuple(rejected + stray))

    def read(self, unit: InputUnit, provenance: Provenance) -> Iterator[Record | Rejection]:
        header, signal = read_unit_ecg(self.root, unit.files)
        fields = comment_fields(header.comments)
        codes = [code.strip() for code in fields.get("dx", "").split(",")]
        yield Record(
            record_id=self.record_id(unit.key),
            source=self.name,
            signal=signal,
            fs_hz=header.fs_hz,
            leads=lead_names(header),
            patient_id=None,
            raw_labels=tuple(RawLabel(code) for code in codes if code),
            provenance=provenance,
            meta={key: fields[key] for key in _META_KEYS if key in fields},
        )
