"""Reading the units of ``ecgpipe predict``: each unit through its source reader, under stable ids.

A unit that fails to read becomes a rejected candidate (after the records it gave before failing),
so one bad input never stops the run.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from pipeline.core.records import Discovery, InputUnit, Provenance, ReadError, Record, Rejection
from pipeline.export.predict.units import CODE_CSV, HDF5_GLOB, Candidate, InputScan, PredictUnit
from pipeline.sources.base import SourceReader
from pipeline.sources.code import CodeReader
from pipeline.sources.ucr import UcrReader
from pipeline.sources.wfdb_folder import WfdbFolderReader

_SOURCE = (
    "predict"  # reader name; the ``predict:`` prefix is replaced by the ids the package docstring describes
)


def read_candidates(scan: InputScan) -> Iterator[Candidate]:
    """Read the units of a scan, in order; a unit that fails gives a rejected candidate."""
    code_parts: dict[Path, tuple[CodeReader, Discovery]] = {}
    for entry in scan.entries:
        if isinstance(entry, Candidate):
            yield entry
        else:
            yield from _read_unit(entry, code_parts)


def _read_unit(
    unit: PredictUnit, code_parts: dict[Path, tuple[CodeReader, Discovery]]
) -> Iterator[Candidate]:
    n = 0
    try:
        reader, source_unit, prefix = _reader_for(unit, code_parts)
        provenance = Provenance(files=tuple((f, "") for f in source_unit.files), reader=reader.reader_id)
        for item in reader.read(source_unit, provenance):
            yield _candidate(unit, item, prefix)
            n += 1
    except Exception as exc:  # noqa: BLE001 - one bad input must not stop the run
        reason = str(exc) if isinstance(exc, ReadError) else f"unexpected {type(exc).__name__}: {exc}"
        if n:
            reason = f"reading stopped after {n} record(s): {reason}"
        files = tuple(unit.shown(f) for f in unit.files)
        yield Candidate(unit.uid, unit.input, files, Rejection(unit.uid, unit.files, reason))


def _reader_for(
    unit: PredictUnit, code_parts: dict[Path, tuple[CodeReader, Discovery]]
) -> tuple[SourceReader, InputUnit, str]:
    """The reader, its unit, and the local-id prefix to replace by ``unit.uid``."""
    primary = unit.files[0]
    if unit.kind == "wfdb":
        reader: SourceReader = WfdbFolderReader(
            _SOURCE, unit.root, use_records_file=False, annotation_ext=None, header_labels=False
        )
        return reader, InputUnit(key=primary[: -len(".hea")], files=unit.files), primary[: -len(".hea")]
    if unit.kind == "ucr":
        stem = PurePosixPath(primary).stem
        extra = {"dataset": stem, "split": "predict"}
        return UcrReader(_SOURCE, unit.root), InputUnit(key=primary, files=unit.files, extra=extra), primary
    return _code_reader(unit, code_parts)


def _code_reader(
    unit: PredictUnit, code_parts: dict[Path, tuple[CodeReader, Discovery]]
) -> tuple[SourceReader, InputUnit, str]:
    """The CODE reader rooted at the folder of ``exams.csv`` and its discovered unit for the part.

    One reader and one discovery per ``exams.csv`` (``code_parts``), so the table, which has a
    row per exam of every part, is parsed once however many parts are scored.
    """
    csv_root = unit.root / unit.csv_dir
    rel = os.path.relpath(unit.root / unit.files[0], csv_root).replace(os.sep, "/")
    if csv_root not in code_parts:
        reader = CodeReader(_SOURCE, csv_root, csv=CODE_CSV, hdf5_glob=HDF5_GLOB)
        code_parts[csv_root] = reader, reader.discover()
    reader, found = code_parts[csv_root]
    for source_unit in found.units:
        if source_unit.key == rel:
            return reader, source_unit, ""
    reasons = [r.reason for r in found.rejected if r.item == rel]
    raise ReadError(reasons[0] if reasons else f"{rel}: the CODE reader found no readable part")


def _candidate(unit: PredictUnit, item: Record | Rejection, prefix: str) -> Candidate:
    """A reader's output under the stable id: ``uid`` + what follows ``prefix`` in its local id."""
    source_id = item.record_id if isinstance(item, Record) else item.item
    local = source_id.split(":", 1)[1] if source_id.startswith(f"{_SOURCE}:") else source_id
    if prefix and local.startswith(prefix):
        record_id = unit.uid + local[len(prefix) :]
    elif prefix:
        record_id = unit.uid
    else:
        record_id = f"{unit.uid}/{local}"
    files = tuple(unit.shown(f) for f in unit.files)
    if isinstance(item, Record):
        return Candidate(record_id, unit.input, files, dataclasses.replace(item, record_id=record_id))
    return Candidate(record_id, unit.input, files, dataclasses.replace(item, item=record_id))
