"""PTB Diagnostic ECG Database: ``patientNNN/sNNNN_re.{hea,dat,xyz}``.

Each record has 15 signals at 1000 Hz: the 12 standard leads in ``.dat`` and the Frank leads
``vx vy vz`` in ``.xyz``, all format 16 in mV. The label is the text after ``Reason for
admission:`` in the header comments (``Myocardial infarction``, ``Healthy control``; ``n/a``,
which states that no reason is known, gives no label). The patient is the record's folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import ClassVar

from pipeline.core.records import Discovery, InputUnit, Provenance, RawLabel, Record, Rejection
from pipeline.sources.base import SourceReader, list_files
from pipeline.sources.wfdb_io import (
    comment_fields,
    group_wfdb_files,
    is_documentation,
    lead_names,
    orphan_rejections,
    read_unit_ecg,
    split_others,
)

SIGNAL_SUFFIXES = (".dat", ".xyz")
_NO_REASON = frozenset({"", "n/a"})


class PtbDiagnosticReader(SourceReader):
    """One record per header; local id = its path without suffix (``patient001/s0010_re``).

    Signals are float32 ``(15, T)`` in mV at 1000 Hz (``fs_hz`` from the header); leads
    ``I II III aVR aVL aVF V1..V6 vx vy vz``. ``patient_id`` is the folder name
    (``patient001``), None for a record directly under the root; ``meta`` has ``age`` and
    ``sex`` as the header states them.
    """

    kind: ClassVar[str] = "ptb_diagnostic"
    version: ClassVar[str] = "1"

    def discover(self) -> Discovery:
        sets = group_wfdb_files(list_files(self.root), SIGNAL_SUFFIXES)
        units = [InputUnit(key=stem, files=files) for stem, files in sets.records.items()]
        metadata, stray = split_others(
            sets.others, is_documentation, "a PTB Diagnostic record; expected <record>.hea/.dat/.xyz"
        )
        rejected = orphan_rejections(sets.orphans) + stray
        return Discovery(tuple(units), tuple(metadata), tuple(rejected))

    def read(self, unit: InputUnit, provenance: Provenance) -> Iterator[Record | Rejection]:
        header, signal = read_unit_ecg(self.root, unit.files)
        fields = comment_fields(header.comments)
        reason = fields.get("reason for admission", "")
        folder = PurePosixPath(unit.key).parent.name
        yield Record(
            record_id=self.record_id(unit.key),
            source=self.name,
            signal=signal,
            fs_hz=header.fs_hz,
            leads=lead_names(header),
            patient_id=folder or None,
            raw_labels=() if reason.lower() in _NO_REASON else (RawLabel(reason),),
            provenance=provenance,
            meta={key: fields[key] for key in ("age", "sex") if key in fields},
        )
