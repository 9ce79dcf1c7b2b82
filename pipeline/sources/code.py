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

Units of the HDF5 tracings. The READMEs (automatic-ecg-diagnosis, ecg-age-prediction) say
"represented ... at the scale 1e-4V: so if the signal is in V it should be multiplied by
1000", which contradicts itself (V x 1000 is mV). antonior92/ecg-preprocessing states that
CODE-15% and SaMi-Trop were produced by ``generate_h5.py --scale 2`` applied to WFDB physical
signals (mV), i.e. stored value = 2 x mV, and an independent comparison of amplitude
distributions against other mV datasets (ecg-age-prediction issue #5) found the same factor
0.5. The PhysioNet Challenge 2025 conversion instead wrote the values unchanged as mV. This
reader multiplies by ``hdf5_scale_to_mv`` (default 0.5, the documented generation factor);
set it to 1.0 to follow the Challenge convention. WFDB exams (Layout B) are converted to mV
from their headers.

Labels: a diagnosis column becomes ``RawLabel(<column name>)`` when its value is 1 (``1``,
``1.0``, ``True``); 0/False/empty mean absent; anything else rejects the exam.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

import h5py
import numpy as np
import numpy.typing as npt
import pandas as pd

from pipeline.core.leads import canonical_lead
from pipeline.core.records import Discovery, InputUnit, Provenance, RawLabel, ReadError, Record, Rejection
from pipeline.sources.base import SourceReader, confined_path, list_files
from pipeline.sources.options import CodeOptions
from pipeline.sources.wfdb import physical_units, read_header, read_signals, signal_files

LABEL_COLUMNS = ("1dAVb", "RBBB", "LBBB", "SB", "ST", "AF")
HDF5_LEADS = ("DI", "DII", "DIII", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6")
_SOURCE_LEADS = {"di": "I", "dii": "II", "diii": "III"}
_HDF5_ID_COLUMNS = ("exam_id",)
_WFDB_ID_COLUMNS = ("id_exam", "exam_id")
_TNMG = re.compile(r"^TNMG(?P<exam>\d+)_N\d+$")
_INTEGER = re.compile(r"^[+-]?\d+(?:\.0*)?$")
_TRUE = frozenset({"1", "1.0", "true", "t", "yes"})
_FALSE = frozenset({"0", "0.0", "false", "f", "no", ""})
_N_LEADS = len(HDF5_LEADS)
_MAX_CSV_BYTES = 256 << 20  # CODE-15%'s exams.csv is ~30 MB; pandas needs several times the size
# An HDF5 dataset may claim a shape its file never stores (unwritten chunks read as the fill value,
# or chunks compressed beyond any real ECG). Believing the claim allocates without bound, so the
# stored bytes times this must cover the claimed ones; real float32 ECG compresses a few-fold.
_MAX_COMPRESSION = 100
_BLOCK_BYTES = 256 << 20  # float32 tracings read at once, whatever the samples per exam

FloatBlock = npt.NDArray[np.float32]


def canonical_code_lead(name: str) -> str:
    """CODE lead names (``DI``, ``DII``, ``DIII``, ``AVR`` ...) as canonical names (``I``, ``aVR``)."""
    return _SOURCE_LEADS.get(name.strip().lower(), canonical_lead(name))


LEADS = tuple(canonical_code_lead(n) for n in HDF5_LEADS)


def norm_exam_id(text: str) -> str:
    """Exam ids compare as integers when they are integers (``"0042"``, ``"42.0"`` → ``"42"``)."""
    stripped = text.strip()
    if _INTEGER.match(stripped):
        return str(int(stripped.split(".")[0]))
    return stripped


def iter_blocks(n: int, size: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of consecutive blocks of at most ``size`` items covering ``range(n)``."""
    for start in range(0, n, size):
        yield start, min(start + size, n)


def active_span(block: FloatBlock) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per exam of a ``(B, T, 12)`` block: first non-padding sample and number of samples.

    The span runs from the first to the last sample where any lead is non-zero; an all-zero
    exam gives ``(0, 0)``.
    """
    nonzero = np.any(block != 0, axis=2)
    present = nonzero.any(axis=1)
    n_samples = block.shape[1]
    first = np.where(present, nonzero.argmax(axis=1), 0).astype(np.int64)
    last = np.where(present, n_samples - 1 - nonzero[:, ::-1].argmax(axis=1), -1).astype(np.int64)
    return first, last - first + 1


@dataclass(frozen=True)
class ExamTable:
    """A CODE exam CSV, every value kept as the text the file holds.

    ``values`` is ``(rows, columns)`` of str; ``positions`` maps a normalised exam id to its
    row indices (more than one means the CSV repeats the exam).
    """

    rel: str
    columns: tuple[str, ...]
    values: npt.NDArray[np.object_]
    positions: Mapping[str, tuple[int, ...]]

    @classmethod
    def load(cls, path: Path, rel: str, id_columns: tuple[str, ...]) -> ExamTable:
        """Parse the CSV; ReadError when it is unreadable or lacks the id or label columns."""
        size = path.stat().st_size
        if size > _MAX_CSV_BYTES:
            raise ReadError(
                f"{rel}: CSV is {size} bytes, larger than {_MAX_CSV_BYTES}; expected a CODE exam table"
            )
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
        except (OSError, ValueError) as exc:  # pandas parser errors are ValueErrors
            raise ReadError(f"{rel}: cannot read CSV: {exc}") from exc
        columns = tuple(str(c).strip() for c in frame.columns)
        id_column = next((c for c in id_columns if c in columns), None)
        if id_column is None:
            raise ReadError(
                f"{rel}: no exam id column; expected one of {list(id_columns)} in {list(columns)}"
            )
        missing = [c for c in LABEL_COLUMNS if c not in columns]
        if missing:
            raise ReadError(f"{rel}: missing label columns {missing}; expected all of {list(LABEL_COLUMNS)}")
        values = frame.to_numpy(dtype=object)
        id_index = columns.index(id_column)
        positions: dict[str, list[int]] = {}
        for row, value in enumerate(values[:, id_index]):
            positions.setdefault(norm_exam_id(str(value)), []).append(row)
        return cls(rel, columns, values, {k: tuple(v) for k, v in positions.items()})

    def rows(self, exam_id: str) -> list[dict[str, str]]:
        """The CSV rows of one exam as ``{column: text}``."""
        return [
            {c: str(v).strip() for c, v in zip(self.columns, self.values[i], strict=True)}
            for i in self.positions.get(exam_id, ())
        ]

    def digest(self, exam_ids: Iterable[str]) -> str:
        """sha256 of the header and the rows of these exams (in exam-id order)."""
        h = hashlib.sha256("\x1f".join(self.columns).encode())
        for exam_id in sorted(set(exam_ids)):
            for i in self.positions.get(exam_id, ()):
                h.update(b"\n" + "\x1f".join(str(v) for v in self.values[i]).encode())
        return h.hexdigest()


@dataclass
class _Part:
    """State of one HDF5 part while it is read: its exam ids and what was seen so far."""

    rel: str
    table: ExamTable
    ids: npt.NDArray[np.int64]
    provenance: Provenance
    seen: set[int] = field(default_factory=set)
    targets: dict[str, str | ReadError] = field(default_factory=dict)  # trace_file → file or error


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
            table = self._table(csv_rel, _HDF5_ID_COLUMNS)
        except ReadError as exc:
            reason = f"CODE-15% HDF5 part without a usable exam table: {exc}"
            return [], [Rejection(rel, (rel,), f"{rel}: {reason}") for rel in h5_files]
        units, rejected = [], []
        for rel in h5_files:
            try:  # resolve: a part linked out of the root is refused before h5py opens it
                ids = [str(i) for i in _hdf5_exam_ids(self.resolve(rel)) if i != 0]
            except ReadError as exc:
                rejected.append(Rejection(rel, (rel,), str(exc)))
                continue
            extra = {"layout": "hdf5", "csv": csv_rel, "csv_rows_sha256": table.digest(ids)}
            units.append(InputUnit(key=rel, files=(rel,), extra=extra))
        return units, rejected

    def _discover_wfdb(self, headers: list[str], csv_rel: str) -> tuple[list[InputUnit], list[Rejection]]:
        table: ExamTable | None = None
        csv_error = ""
        try:
            table = self._table(csv_rel, _WFDB_ID_COLUMNS)
        except ReadError as exc:
            csv_error = str(exc)
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
            extra.update(_csv_row_extra(table, csv_error, exam_id))
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
        table = self._table(csv_rel, _HDF5_ID_COLUMNS)
        try:
            handle = h5py.File(self.resolve(rel), "r")
        except OSError as exc:
            expected = "an HDF5 file with datasets 'tracings' and 'exam_id'"
            raise ReadError(f"{rel}: cannot open as HDF5 ({exc}); expected {expected}") from exc
        with handle:
            tracings, exam_ids = _checked_datasets(handle, rel)
            ids = np.asarray(exam_ids[()], dtype=np.int64)
            if table.digest(str(i) for i in ids if i != 0) != unit.extra.get("csv_rows_sha256"):
                raise ReadError(f"{csv_rel}: rows of the exams in {rel} changed since discovery; rediscover")
            part = _Part(rel, table, ids, provenance)
            exam_bytes = tracings.shape[1] * _N_LEADS * 4
            rows = max(1, min(self.options.block_size, _BLOCK_BYTES // exam_bytes))
            for start, stop in iter_blocks(len(ids), rows):
                if not ids[start:stop].any():
                    continue  # only the dataset's zero padding
                block = np.asarray(tracings[start:stop], dtype=np.float32)
                yield from self._hdf5_block(part, start, block)

    def _hdf5_block(self, part: _Part, start: int, block: FloatBlock) -> Iterator[Record | Rejection]:
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
            meta = _meta(row, "code15_hdf5", str(exam))
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
                patient_id=_patient(row),
                raw_labels=labels,
                provenance=part.provenance,
                meta=meta,
            )

    def _hdf5_exam(
        self, part: _Part, exam: int, row_index: int
    ) -> tuple[dict[str, str], tuple[RawLabel, ...]] | Rejection:
        """The exam's CSV row and labels, or the Rejection saying why it cannot be a record."""
        record_id = self.record_id(str(exam))
        files = (part.rel, part.table.rel)
        if exam in part.seen:
            reason = f"{part.rel}: exam_id {exam} appears again at row {row_index}; kept the first"
            return Rejection(record_id, files, reason, category="duplicate")
        part.seen.add(exam)
        row = self._exam_row(part, str(exam))
        if isinstance(row, str):
            return Rejection(record_id, files, row)
        labels = _labels(row, part.table.rel, exam)
        if isinstance(labels, str):
            return Rejection(record_id, files, labels)
        return row, labels

    def _exam_row(self, part: _Part, exam: str) -> dict[str, str] | str:
        """The exam's single CSV row, or why it cannot be used (missing, repeated, bad trace_file)."""
        table, rel = part.table, part.rel
        rows = table.rows(exam)
        if len(rows) != 1:
            found = "no row" if not rows else f"{len(rows)} rows"
            return f"{rel}: exam_id {exam} has {found} in {table.rel}; expected exactly one"
        row = rows[0]
        trace_file = row.get("trace_file", "")
        if not trace_file:
            return row
        if trace_file not in part.targets:
            part.targets[trace_file] = self._trace_target(table.rel, trace_file)
        named = part.targets[trace_file]
        if isinstance(named, ReadError):
            return f"{table.rel}: exam_id {exam}: trace_file {trace_file!r} rejected: {named}"
        if named != rel:
            return f"{table.rel}: exam_id {exam}: trace_file names {named} but the exam is in {rel}"
        return row

    def _trace_target(self, csv_rel: str, trace_file: str) -> str | ReadError:
        """The file a ``trace_file`` value names (relative to the CSV's folder), or why it is refused."""
        if "\x00" in trace_file:
            return ReadError(f"{trace_file!r} contains a NUL byte; expected a path relative to the CSV")
        try:
            return self._rel((PurePosixPath(csv_rel).parent / trace_file).as_posix())
        except ReadError as exc:
            return exc

    def _read_wfdb(self, unit: InputUnit, provenance: Provenance) -> Iterator[Record | Rejection]:
        hea = unit.files[0]
        exam = unit.extra.get("exam_id", "")
        record_id = self.record_id(exam)
        csv_rel = unit.extra.get("csv", "")
        if unit.extra.get("csv_error"):
            yield Rejection(record_id, (*unit.files, csv_rel), unit.extra["csv_error"])
            return
        row: dict[str, str] = json.loads(unit.extra.get("csv_row", "{}"))
        labels = _labels(row, csv_rel, exam)
        if isinstance(labels, str):
            yield Rejection(record_id, unit.files, labels)
            return
        path = self.resolve(hea)
        header = read_header(path)
        units = physical_units(header)
        if any(u != "mV" for u in units):
            raise ReadError(f"{hea}: signal units {list(units)}; expected voltages (mV, uV or V)")
        signal = read_signals(header, path.parent, self.root)
        meta = _meta(row, "code_wfdb", exam)
        meta["record"] = hea[: -len(".hea")]
        yield Record(
            record_id=record_id,
            source=self.name,
            signal=signal,
            fs_hz=header.fs_hz,
            leads=tuple(canonical_code_lead(s.description) for s in header.signals),
            patient_id=_patient(row),
            raw_labels=labels,
            provenance=provenance,
            meta=meta,
        )


# ---------------------------------------------------------------------- module helpers


def exam_id_of_record(record_name: str) -> str:
    """Exam id of a WFDB exam: the digits of ``TNMG<id>_N<k>``, else the record name."""
    match = _TNMG.match(record_name)
    return norm_exam_id(match["exam"] if match else record_name)


def _csv_row_extra(table: ExamTable | None, csv_error: str, exam_id: str) -> dict[str, str]:
    """The unit ``extra`` entries for a WFDB exam: its CSV row as JSON, or why there is none."""
    if table is None:
        return {"csv_error": csv_error}
    rows = table.rows(exam_id)
    if len(rows) != 1:
        found = "no row" if not rows else f"{len(rows)} rows"
        return {"csv_error": f"exam {exam_id} has {found} in {table.rel}; expected exactly one"}
    return {"csv_row": json.dumps(rows[0], sort_keys=True)}


def _hdf5_exam_ids(path: Path) -> list[int]:
    """The ``exam_id`` dataset for discovery; empty when unreadable (``read`` reports why)."""
    try:
        with h5py.File(path, "r") as handle:
            data = handle.get("exam_id")
            if not isinstance(data, h5py.Dataset) or data.ndim != 1 or data.dtype.kind not in "iu":
                return []
            if _unstored(data) is not None:
                return []
            return [int(i) for i in np.asarray(data[()], dtype=np.int64)]
    except (OSError, ValueError, TypeError):
        return []


def _checked_datasets(handle: h5py.File, rel: str) -> tuple[h5py.Dataset, h5py.Dataset]:
    """``tracings`` ``(N, T, 12)`` float and ``exam_id`` ``(N,)`` integer, else ReadError."""
    tracings = handle.get("tracings")
    expected = f"(N, 4096, {_N_LEADS}) floats"
    if not isinstance(tracings, h5py.Dataset):
        raise ReadError(f"{rel}: no dataset 'tracings'; expected {expected}")
    if tracings.ndim != 3 or tracings.shape[2] != _N_LEADS or tracings.shape[1] < 1:
        raise ReadError(f"{rel}: dataset 'tracings' has shape {tracings.shape}; expected {expected}")
    if tracings.dtype.kind != "f":
        raise ReadError(f"{rel}: dataset 'tracings' has dtype {tracings.dtype}; expected {expected}")
    exam_ids = handle.get("exam_id")
    n = tracings.shape[0]
    if not isinstance(exam_ids, h5py.Dataset):
        raise ReadError(f"{rel}: no dataset 'exam_id'; expected ({n},) integers matching 'tracings'")
    if exam_ids.shape != (n,) or exam_ids.dtype.kind not in "iu":
        raise ReadError(
            f"{rel}: dataset 'exam_id' has shape {exam_ids.shape} dtype {exam_ids.dtype}; "
            f"expected ({n},) integers matching 'tracings' {tracings.shape}"
        )
    for name, dataset in (("tracings", tracings), ("exam_id", exam_ids)):
        problem = _unstored(dataset)
        if problem is not None:
            raise ReadError(f"{rel}: dataset {name!r} {problem}")
    return tracings, exam_ids


def _unstored(dataset: h5py.Dataset) -> str | None:
    """Why a dataset's shape claims more data than its file stores, or None."""
    claimed = int(dataset.size) * dataset.dtype.itemsize
    stored = int(dataset.id.get_storage_size())
    if claimed <= stored * _MAX_COMPRESSION:
        return None
    return (
        f"claims {claimed} bytes {dataset.shape} but the file stores {stored} bytes of it; expected "
        f"the data itself (at most {_MAX_COMPRESSION}x compressed)"
    )


def _labels(row: Mapping[str, str], csv_rel: str, exam: object) -> tuple[RawLabel, ...] | str:
    """Diagnosis columns set to 1 as RawLabels, or the reason a value is not 0/1."""
    labels = []
    for column in LABEL_COLUMNS:
        value = row.get(column, "").strip()
        if value.lower() in _TRUE:
            labels.append(RawLabel(column))
        elif value.lower() not in _FALSE:
            return f"{csv_rel}: exam {exam}: {column} = {value!r}; expected 0/1 or True/False"
    return tuple(labels)


def _patient(row: Mapping[str, str]) -> str | None:
    value = row.get("patient_id") or row.get("id_patient") or ""
    return norm_exam_id(value) or None


def _meta(row: Mapping[str, str], layout: str, exam: str) -> dict[str, str]:
    return {"units": "mV", "layout": layout, "exam_id": exam, "age": row.get("age", ""), "sex": _sex(row)}


def _sex(row: Mapping[str, str]) -> str:
    """``M``/``F`` from ``is_male`` (True/False, 1/0) or ``sex`` (M/F, male/female); else empty."""
    is_male = row.get("is_male", "").strip().lower()
    if is_male in ("true", "1", "1.0"):
        return "M"
    if is_male in ("false", "0", "0.0"):
        return "F"
    sex = row.get("sex", "").strip().upper()
    return sex[:1] if sex[:1] in ("M", "F") else ""


def _leftover(rel: str) -> Rejection:
    """A file that belongs to no unit and is no exam table."""
    if rel.lower().endswith(".dat"):
        return Rejection(rel, (rel,), f"{rel}: signal file named by no header; expected a .hea beside it")
    reason = f"{rel}: not a CODE file; expected HDF5 parts, WFDB .hea/.dat or the exam CSV"
    return Rejection(rel, (rel,), reason, category="excluded")
