"""CODE 12-lead ECG exams (Ribeiro et al., Telehealth Network of Minas Gerais) in two layouts.

Layout A, CODE-15% (Zenodo 10.5281/zenodo.4916206)
    ``exams.csv`` (one row per exam: ``exam_id, age, is_male, nn_predicted_age, 1dAVb, RBBB,
    LBBB, SB, ST, AF, patient_id, death, timey, normal_ecg, trace_file``) and HDF5 files
    ``exams_part{k}.hdf5``, each holding ``tracings`` float32 ``(N, 4096, 12)`` (exam, sample,
    lead; leads ``DI, DII, DIII, AVR, AVL, AVF, V1..V6``; 400 Hz) and ``exam_id`` ``(N,)``.
    Exams of 7 s (2800 samples) or 10 s (4000) were zero-padded *on both sides* to 4096
    samples (automatic-ecg-diagnosis ``data/README.md``: 648 zeros before and after a 7 s
    exam). The padding is kept (profiles crop); ``meta["original_length"]`` and
    ``meta["pad_start"]`` give the span between the first and last sample where any lead is
    non-zero. The last ``exam_id`` of each real part is 0 with an all-zero tracing (padding
    of the HDF5 dataset) and is skipped silently. One unit per HDF5 file, read in blocks of
    ``block_size`` exams so a 20,000-exam part is never in memory at once.

Layout B, CODE test set / "codesubset" WFDB exams
    WFDB records ``TNMG{exam_id}_N1.{hea,dat}`` (naming from antonior92/ecg-preprocessing) and
    a CSV keyed by ``id_exam`` (or ``exam_id``) with the annotation columns
    ``1dAVb, RBBB, LBBB, SB, AF, ST`` (0/1), as in the automatic-ecg-diagnosis
    ``annotations/*.csv``. Optional columns: ``id_patient``/``patient_id``, ``age``, ``sex``
    (``M``/``F``) or ``is_male``. One unit per record; the exam id is the digits of a
    ``TNMG<id>_N<k>`` record name, else the record name. The codesubset CSV itself could not
    be found publicly, so its key column name (``id_exam``) is taken from the project brief
    and ``exam_id`` is accepted as well.

The HDF5 parts (and the units of their tracings) are handled in :mod:`pipeline.sources.code_hdf5`,
the exam CSV and what its rows say (labels, patient, age, sex) in :mod:`pipeline.sources.code_table`.
WFDB exams (Layout B) are converted to mV from their headers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

import h5py
import numpy as np

from pipeline.core.records import Discovery, InputUnit, Provenance, RawLabel, ReadError, Record, Rejection
from pipeline.sources.base import SourceLayoutError, SourceReader, confined_path, list_files
from pipeline.sources.code_hdf5 import (
    BLOCK_BYTES,
    LEADS,
    N_LEADS,
    FloatBlock,
    Part,
    active_span,
    canonical_code_lead,
    checked_datasets,
    exam_row,
    hdf5_exam_ids,
    iter_blocks,
)
from pipeline.sources.code_table import (
    HDF5_ID_COLUMNS,
    LABEL_COLUMNS,
    WFDB_ID_COLUMNS,
    ExamTable,
    csv_row_extra,
    exam_id_of_record,
    exam_labels,
    exam_meta,
    exam_patient,
    norm_exam_id,
)
from pipeline.sources.options import CodeOptions
from pipeline.sources.wfdb import physical_units, read_header, read_signals, sample_rate_hz, signal_files

# Names callers import from here (the reader's public face); the definitions live in code_table/code_hdf5.
__all__ = [
    "LABEL_COLUMNS",
    "LEADS",
    "CodeReader",
    "ExamTable",
    "active_span",
    "canonical_code_lead",
    "exam_id_of_record",
    "iter_blocks",
    "norm_exam_id",
]


class CodeReader(SourceReader):
    """Reads CODE exams under ``root``: CODE-15% HDF5 parts and/or WFDB exams with a CSV.

    Records: signal float32 ``(12, T)`` in mV, leads ``I II III aVR aVL aVF V1..V6``, local id
    = exam id, raw labels = the diagnosis columns set to 1, ``patient_id`` from the CSV,
    ``meta`` with ``age``, ``sex`` (``M``/``F``/empty) and, for HDF5, the padding span.
    """

    kind: ClassVar[str] = "code"
    version: ClassVar[str] = "1"

    Options: ClassVar[type[CodeOptions]] = CodeOptions
    options: CodeOptions

    def __init__(self, name: str, root: Path, **options: Any) -> None:
        super().__init__(name, root, **options)
        self._tables: dict[tuple[str, tuple[str, ...], int, int], ExamTable] = {}

    def __getstate__(self) -> dict[str, Any]:
        # The parsed CSV can be hundreds of MB; workers re-read it rather than receive it.
        state = dict(self.__dict__)
        state["_tables"] = {}
        return state

    # ------------------------------------------------------------------ helpers

    def _rel(self, rel: str) -> str:
        """``rel`` normalised and confined to the root (ReadError if it escapes)."""
        return confined_path(self.root, rel).relative_to(self.root.resolve()).as_posix()

    def _table(self, rel: str, id_columns: tuple[str, ...]) -> ExamTable:
        path = self.resolve(rel)
        if not path.is_file():
            raise ReadError(f"{rel}: CSV not found under the source root; expected the CODE exam table")
        stat = path.stat()
        key = (rel, id_columns, stat.st_mtime_ns, stat.st_size)
        if key not in self._tables:
            self._tables = {k: v for k, v in self._tables.items() if k[:2] != key[:2]}
            self._tables[key] = ExamTable.load(path, rel, id_columns)
        return self._tables[key]

    # ------------------------------------------------------------------ discovery

    def discover(self) -> Discovery:
        files = list_files(self.root)
        units: list[InputUnit] = []
        rejected: list[Rejection] = []
        csv_rel = self._rel(self.options.csv)
        wfdb_csv_rel = self._rel(self.options.wfdb_csv) if self.options.wfdb_csv else csv_rel
        h5_files = [f for f in files if PurePosixPath(f).match(self.options.hdf5_glob)]
        headers = [f for f in files if f.lower().endswith(".hea")]
        if h5_files:
            hdf5_units, hdf5_rejected = self._discover_hdf5(h5_files, csv_rel)
            units += hdf5_units
            rejected += hdf5_rejected
        if headers:
            wfdb_units, wfdb_rejected = self._discover_wfdb(headers, wfdb_csv_rel)
            units += wfdb_units
            rejected += wfdb_rejected
        present = set(files)
        metadata = sorted({c for c in (csv_rel, wfdb_csv_rel) if c in present})
        claimed = {f for u in units for f in u.files} | set(metadata) | {r.item for r in rejected}
        rejected += [_leftover(rel) for rel in files if rel not in claimed]
        return Discovery(units=tuple(units), metadata_files=tuple(metadata), rejected=tuple(rejected))

    def _discover_hdf5(self, h5_files: list[str], csv_rel: str) -> tuple[list[InputUnit], list[Rejection]]:
        try:
            table = self._table(csv_rel, HDF5_ID_COLUMNS)
        except ReadError as exc:
            # the exam table is the whole source's labels and ids: without it nothing can be read, and
            # one quarantine entry per part would let `dvc repro` carry on with an empty store
            raise SourceLayoutError(
                f"{exc}; the CODE-15% HDF5 parts ({len(h5_files)}) need a usable exam table `{csv_rel}`"
            ) from None
        units, rejected = [], []
        for rel in h5_files:
            try:  # resolve: a part linked out of the root is refused before h5py opens it
                ids = [str(i) for i in hdf5_exam_ids(self.resolve(rel)) if i != 0]
            except ReadError as exc:
                rejected.append(Rejection(rel, (rel,), str(exc)))
                continue
            extra = {"layout": "hdf5", "csv": csv_rel, "csv_rows_sha256": table.digest(ids)}
            units.append(InputUnit(key=rel, files=(rel,), extra=extra))
        return units, rejected

    def _discover_wfdb(self, headers: list[str], csv_rel: str) -> tuple[list[InputUnit], list[Rejection]]:
        try:
            table = self._table(csv_rel, WFDB_ID_COLUMNS)
        except ReadError as exc:  # as for the HDF5 parts: the table is the whole source's
            raise SourceLayoutError(
                f"{exc}; the CODE WFDB exams ({len(headers)}) need a usable exam table `{csv_rel}`"
            ) from None
        csv_error = ""
        units: list[InputUnit] = []
        rejected: list[Rejection] = []
        claimed: set[str] = set()
        for hea in headers:
            try:
                files = self._record_files(hea, claimed)
            except ReadError as exc:
                rejected.append(Rejection(hea, (hea,), str(exc)))
                continue
            claimed.update(files)
            exam_id = exam_id_of_record(PurePosixPath(hea).stem)
            extra = {"layout": "wfdb", "csv": csv_rel, "exam_id": exam_id}
            extra.update(csv_row_extra(table, csv_error, exam_id))
            units.append(InputUnit(key=hea[: -len(".hea")], files=files, extra=extra))
        return units, rejected

    def _record_files(self, hea: str, claimed: set[str]) -> tuple[str, ...]:
        """Header plus its existing, confined signal files; ReadError naming what is wrong."""
        header = read_header(self.root / hea)
        folder = PurePosixPath(hea).parent
        files = [hea]
        for name in signal_files(header):
            try:
                rel = self._rel((folder / name).as_posix())
            except ReadError as exc:
                raise ReadError(f"{hea}: signal file {name!r}: {exc}") from exc
            if not (self.root / rel).is_file():
                raise ReadError(f"{hea}: signal file {rel} does not exist; expected it beside the header")
            if rel in claimed:
                raise ReadError(f"{hea}: signal file {rel} already belongs to another header")
            files.append(rel)
        return tuple(files)

    # ------------------------------------------------------------------ reading

    def read(self, unit: InputUnit, provenance: Provenance) -> Iterator[Record | Rejection]:
        layout = unit.extra.get("layout")
        if layout == "hdf5":
            yield from self._read_hdf5(unit, provenance)
        elif layout == "wfdb":
            yield from self._read_wfdb(unit, provenance)
        else:
            raise ReadError(f"{unit.key}: unit layout {layout!r}; expected 'hdf5' or 'wfdb' from discover()")

    def _read_hdf5(self, unit: InputUnit, provenance: Provenance) -> Iterator[Record | Rejection]:
        rel = unit.files[0]
        csv_rel = unit.extra["csv"]
        table = self._table(csv_rel, HDF5_ID_COLUMNS)
        try:
            handle = h5py.File(self.resolve(rel), "r")
        except OSError as exc:
            expected = "an HDF5 file with datasets 'tracings' and 'exam_id'"
            raise ReadError(f"{rel}: cannot open as HDF5 ({exc}); expected {expected}") from exc
        with handle:
            tracings, exam_ids = checked_datasets(handle, rel)
            ids = np.asarray(exam_ids[()], dtype=np.int64)
            if table.digest(str(i) for i in ids if i != 0) != unit.extra.get("csv_rows_sha256"):
                raise ReadError(f"{csv_rel}: rows of the exams in {rel} changed since discovery; rediscover")
            part = Part(rel, table, ids, provenance)
            exam_bytes = tracings.shape[1] * N_LEADS * 4
            rows = max(1, min(self.options.block_size, BLOCK_BYTES // exam_bytes))
            for start, stop in iter_blocks(len(ids), rows):
                if not ids[start:stop].any():
                    continue  # only the dataset's zero padding
                block = np.asarray(tracings[start:stop], dtype=np.float32)
                yield from self._hdf5_block(part, start, block)

    def _hdf5_block(self, part: Part, start: int, block: FloatBlock) -> Iterator[Record | Rejection]:
        """Records of one block of exams; ``block`` is ``(B, T, 12)`` in stored units."""
        first, length = active_span(block)
        # One transposing copy per block (exam, lead, sample), scaled to mV on the way.
        signals = np.empty((block.shape[0], block.shape[2], block.shape[1]), dtype=np.float32)
        np.multiply(block.transpose(0, 2, 1), np.float32(self.options.hdf5_scale_to_mv), out=signals)
        for j in range(block.shape[0]):
            exam = int(part.ids[start + j])
            if exam == 0:
                continue
            item = self._hdf5_exam(part, exam, start + j)
            if isinstance(item, Rejection):
                yield item
                continue
            row, labels = item
            meta = exam_meta(row, "code15_hdf5", str(exam))
            meta.update(
                hdf5_row=str(start + j),
                original_length=str(int(length[j])),
                pad_start=str(int(first[j])),
                hdf5_scale_to_mv=repr(self.options.hdf5_scale_to_mv),
            )
            yield Record(
                record_id=self.record_id(str(exam)),
                source=self.name,
                signal=signals[j].copy(),  # a copy, so a kept record does not pin the whole block
                fs_hz=self.options.fs_hz,
                leads=LEADS,
                patient_id=exam_patient(row),
                raw_labels=labels,
                provenance=part.provenance,
                meta=meta,
            )

    def _hdf5_exam(
        self, part: Part, exam: int, row_index: int
    ) -> tuple[dict[str, str], tuple[RawLabel, ...]] | Rejection:
        """The exam's CSV row and labels, or the Rejection saying why it cannot be a record."""
        record_id = self.record_id(str(exam))
        files = (part.rel, part.table.rel)
        if exam in part.seen:
            reason = f"{part.rel}: exam_id {exam} appears again at row {row_index}; kept the first"
            return Rejection(record_id, files, reason, category="duplicate")
        part.seen.add(exam)
        row = exam_row(part, str(exam), self._rel)
        if isinstance(row, str):
            return Rejection(record_id, files, row)
        labels = exam_labels(row, part.table.rel, exam)
        if isinstance(labels, str):
            return Rejection(record_id, files, labels)
        return row, labels

    def _read_wfdb(self, unit: InputUnit, provenance: Provenance) -> Iterator[Record | Rejection]:
        hea = unit.files[0]
        exam = unit.extra.get("exam_id", "")
        record_id = self.record_id(exam)
        csv_rel = unit.extra.get("csv", "")
        if unit.extra.get("csv_error"):
            yield Rejection(record_id, (*unit.files, csv_rel), unit.extra["csv_error"])
            return
        row: dict[str, str] = json.loads(unit.extra.get("csv_row", "{}"))
        labels = exam_labels(row, csv_rel, exam)
        if isinstance(labels, str):
            yield Rejection(record_id, unit.files, labels)
            return
        path = self.resolve(hea)
        header = read_header(path)
        units = physical_units(header)
        if any(u != "mV" for u in units):
            raise ReadError(f"{hea}: signal units {list(units)}; expected voltages (mV, uV or V)")
        signal = read_signals(header, path.parent, self.root)
        meta = exam_meta(row, "code_wfdb", exam)
        meta["record"] = hea[: -len(".hea")]
        yield Record(
            record_id=record_id,
            source=self.name,
            signal=signal,
            fs_hz=sample_rate_hz(header),
            leads=tuple(canonical_code_lead(s.description) for s in header.signals),
            patient_id=exam_patient(row),
            raw_labels=labels,
            provenance=provenance,
            meta=meta,
        )


# ---------------------------------------------------------------------- module helpers


def _leftover(rel: str) -> Rejection:
    """A file that belongs to no unit and is no exam table."""
    if rel.lower().endswith(".dat"):
        return Rejection(rel, (rel,), f"{rel}: signal file named by no header; expected a .hea beside it")
    reason = f"{rel}: not a CODE file; expected HDF5 parts, WFDB .hea/.dat or the exam CSV"
    return Rejection(rel, (rel,), reason, category="excluded")
