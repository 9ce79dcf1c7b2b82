"""``ecgpipe predict``: score new, unlabelled records with a trained model.

A held-out set with no labels is scored the way evaluation scored the test split: the model's
own card (``ckpt["lineage"]["card"]``) gives the network, the profile's preprocessing and the
int16 scale of the training shards, and an optional decision rule (``thresholds.json`` written by
evaluation) turns scores into decisions.

Inputs and the reader rule
    Each input is a file or a folder (searched recursively; hidden files are ignored). Files
    are assigned to a reader by extension, then content:

    - ``<name>.hea``: a WFDB record, its header plus every signal file the header names
      (``.dat``, ``.mat`` behind a byte offset, ``.xyz``...). This covers CinC 2017 and CinC
      2020/21/Georgia ``.mat`` + ``.hea`` (including record lines such as ``E00271.mat 12 500``),
      PTB-XL and PTB Diagnostic ``.hea``/``.dat``, MIT-BIH-like long records (format 212) and
      CODE WFDB exams. They are read by the generic WFDB reader
      (:class:`pipeline.sources.wfdb_folder.WfdbFolderReader`, decoding by
      :mod:`pipeline.sources.wfdb_io`): the source-specific readers need label tables
      (``REFERENCE.csv``, ``ptbxl_database.csv``) that unlabelled data does not have, and they
      decode through the same ``wfdb_io`` functions. Non-voltage channels (plethysmogram,
      respiration) are dropped; annotation files are not read.
    - a signal file (``.dat``, ``.mat``, ``.xyz``) given on its own, or found in a folder: the
      record of the header in its folder that names it (``<stem>.hea``); with no such header the
      file is rejected ("signal file with no header").
    - ``.txt``, ``.tsv``, ``.arff``, ``.ts``: a UCR/UEA series file
      (:class:`pipeline.sources.ucr.UcrReader`), one record per row; the first column (``.txt``,
      ``.tsv``) or the class attribute is the label, which is ignored. A ``.txt``/``.tsv`` file
      is a series file only when its first line is numbers; other text files
      (``LICENSE.txt``, ``SHA256SUMS.txt``) are documentation.
    - ``.hdf5``/``.h5``: a CODE-15% part (:class:`pipeline.sources.code.CodeReader`), one record
      per exam. The CODE reader takes each exam's row from ``exams.csv``, so the part is read only
      when an ``exams.csv`` lies in its folder or a parent folder up to the input root; without
      one the part is rejected and the reason says so.
    - anything else (``.csv`` tables, ``RECORDS``, ``README``, ``.atr`` annotations...) found in a
      folder is listed as *skipped* in the JSON with its reason; named explicitly, it is a
      rejected row.

    A record reached twice (a folder and a file inside it, or a header and its ``.dat``) is
    scored once.

Record ids
    Stable and readable: the path relative to the input root (the folder given, or a given
    file's folder), in POSIX form. A WFDB record is its header path without ``.hea``
    (``sub/A00001``); a row of a multi-record file is the file path plus the reader's local id
    (``ECG5000_TRAIN.txt/00012`` for a UCR row, ``exams_part0.hdf5/1169160`` for a CODE-15% exam).
    When two different inputs give the same id, the later one is prefixed with its position on
    the command line (``input2:A00001``).

Preprocessing (exactly as the training shards were written)
    :func:`pipeline.signal.preprocess.process` with ``card.plan()``: lead selection (profile aliases),
    crop at the input rate, quality gates (duration, NaN, flat leads), resampling, filters,
    zero padding to the profile length, normalisation. A record longer than the profile length
    is cropped as the profile says (``SignalPlan.crop``: ``start`` keeps the first ``length``
    samples, ``center`` the middle), like in training; it is not windowed. The signal then makes
    the int16 round trip at ``card.scale_mv`` (:func:`pipeline.signal.dsp.quantise_rows` and
    :func:`pipeline.signal.dsp.dequantise`, the functions the shard writer and reader use), so the
    model sees the values evaluation saw, clipping included.

Outputs
    :func:`predict_records` returns a :class:`PredictionTable`: per record its id, input, source
    files, status (``scored`` / ``rejected`` with the reason), scores
    (:func:`pipeline.models.scoring.output_scores`, one column per ``card.output_names``) and, with a
    rule, decisions: the predicted classes (multilabel: every class at or above its
    threshold; multiclass: the argmax class) or ``is_anomaly`` and ``threshold``
    (reconstruction). :func:`run_predict` writes it as ``predictions.csv`` and
    ``predictions.json`` (model card summary, checkpoint sha256, rule, counts, skipped files,
    rows), both atomically.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import h5py
import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from tqdm.auto import tqdm

from pipeline.core.fs import sha256_file, write_atomic
from pipeline.core.records import Discovery, InputUnit, Provenance, ReadError, Record, Rejection
from pipeline.evaluation.decisions import DecisionRule, read_rule
from pipeline.evaluation.jsonable import json_safe
from pipeline.models.card import ModelCard, card_from_checkpoint
from pipeline.models.scoring import Task, output_scores
from pipeline.signal import dsp as sig
from pipeline.signal.preprocess import ProcessedBatch, SignalPlan, process
from pipeline.sources.base import SourceReader, confined_path, list_files
from pipeline.sources.code import CodeReader
from pipeline.sources.ucr import UcrReader
from pipeline.sources.wfdb import WfdbHeader, read_header, signal_files
from pipeline.sources.wfdb_folder import WfdbFolderReader
from pipeline.sources.wfdb_io import is_documentation, orphan_rejections
from pipeline.training.checkpoint import CheckpointError, load_checkpoint
from pipeline.training.load import pick_checkpoint
from pipeline.training.optim import resolve_device

PREDICTIONS_FORMAT = "ecgpipe-predictions/1"
CSV_NAME = "predictions.csv"
JSON_NAME = "predictions.json"
CODE_CSV = "exams.csv"

Status = Literal["scored", "rejected"]
SCORED: Literal["scored"] = "scored"
REJECTED: Literal["rejected"] = "rejected"
Kind = Literal["wfdb", "ucr", "code15"]

EXIT_SCORED = 0
EXIT_NONE_SCORED = 1
EXIT_BAD_ARGUMENTS = 2

_SOURCE = "predict"  # reader name; the ``predict:`` prefix is replaced by the ids described above
_SIGNAL_SUFFIXES = frozenset({".dat", ".mat", ".xyz"})
_UCR_SUFFIXES = frozenset({".txt", ".tsv", ".arff", ".ts"})
_SNIFFED_UCR = frozenset({".txt", ".tsv"})  # share their extension with documentation / other tables
_HDF5_SUFFIXES = frozenset({".hdf5", ".h5"})
_HDF5_GLOB = "*.h*5"  # what the CODE reader discovers: .hdf5 and .h5 parts
_SNIFF_BYTES = 1 << 16
_MISSING_TOKENS = frozenset({"?", "nan", "NaN"})

F64 = npt.NDArray[np.float64]


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Candidate:
    """One record to score, or one input that could not become a record.

    ``record_id``: the stable id (see the module docstring); ``input``: the input path as given;
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
        return _shown(self.shown_root, rel)


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
class _Root:
    """One input: its root folder (resolved, and as the user wrote it) and the path given."""

    position: int
    root: Path
    shown_root: str
    given: str

    def unit(self, kind: Kind, uid: str, files: Sequence[str], csv_dir: str = "") -> PredictUnit:
        return PredictUnit(uid, kind, self.root, self.shown_root, tuple(files), self.given, csv_dir)

    def rejected(self, uid: str, files: Sequence[str], reason: str) -> Candidate:
        shown = tuple(_shown(self.shown_root, f) for f in files)
        return Candidate(uid, self.given, shown, Rejection(uid, tuple(files), reason))

    def skipped(self, rel: str, reason: str) -> Skipped:
        return Skipped(_shown(self.shown_root, rel), reason)


def discover_inputs(inputs: Sequence[Path]) -> InputScan:
    """Find the records under ``inputs`` (files and/or folders) and choose a reader for each.

    Raises ``FileNotFoundError`` naming an input that is neither a file nor a folder. Never
    reads signal data; WFDB headers are parsed to learn which files a record uses.
    """
    entries: list[Entry] = []
    skipped: list[Skipped] = []
    seen_files: dict[str, str] = {}  # real path of a primary file -> id it was listed under
    used_ids: set[str] = set()
    for position, path in enumerate(inputs, start=1):
        root, found = _scan_input(Path(path), position)
        for entry in found:
            if isinstance(entry, Skipped):
                skipped.append(entry)
                continue
            primary = os.path.realpath(root.root / _rel_files(entry)[0])
            if primary in seen_files:
                again = f"already listed as {seen_files[primary]}"
                is_file = Path(path).is_file()
                skipped.append(
                    Skipped(root.given, again) if is_file else root.skipped(_rel_files(entry)[0], again)
                )
                continue
            entry = _unique_id(entry, root.position, used_ids)
            seen_files[primary] = _entry_id(entry)
            entries.append(entry)
    return InputScan(tuple(entries), tuple(skipped))


def _scan_input(path: Path, position: int) -> tuple[_Root, list[Entry | Skipped]]:
    if path.is_dir():
        root = _Root(position, path.resolve(), str(path), str(path))
        return root, _scan_folder(root)
    if path.is_file():
        parent = path.parent
        root = _Root(position, parent.resolve(), "" if str(parent) == "." else str(parent), str(path))
        return root, [_file_entry(root, path.name)]
    raise FileNotFoundError(f"{path}: no such file or folder")


def _rel_files(entry: Entry) -> tuple[str, ...]:
    """An entry's files below its root, the primary one first."""
    if isinstance(entry, PredictUnit):
        return entry.files
    item = entry.item
    return item.files if isinstance(item, Rejection) else tuple(f for f, _ in item.provenance.files)


def _entry_id(entry: Entry) -> str:
    return entry.uid if isinstance(entry, PredictUnit) else entry.record_id


def _unique_id(entry: Entry, position: int, used_ids: set[str]) -> Entry:
    """The entry, its id prefixed with ``input<position>:`` when an earlier input used it."""
    uid = _entry_id(entry)
    if uid in used_ids:
        uid = f"input{position}:{uid}"
    used_ids.add(uid)
    if isinstance(entry, PredictUnit):
        return dataclasses.replace(entry, uid=uid)
    assert isinstance(entry.item, Rejection)  # discovery makes no records
    return dataclasses.replace(entry, record_id=uid, item=dataclasses.replace(entry.item, item=uid))


def _scan_folder(root: _Root) -> list[Entry | Skipped]:
    """One entry per record or rejected file, and the skipped files, in file order.

    Headers go first so that the signal files they name are claimed before the other files
    are classified; every file ends up in exactly one entry.
    """
    files = list_files(root.root)
    available = set(files)
    found: dict[str, Entry | Skipped] = {}
    claimed: set[str] = set()
    for rel in files:
        if rel.endswith(".hea"):
            entry = _header_entry(root, rel, available)
            found[rel] = entry
            claimed.update(_rel_files(entry))
    records = {rel[: -len(".hea")] for rel in files if rel.endswith(".hea")}
    for rel in files:
        stem = PurePosixPath(rel).with_suffix("").as_posix()
        if rel in claimed:
            continue
        if stem in records and PurePosixPath(rel).suffix.lower() not in _SIGNAL_SUFFIXES:
            found[rel] = root.skipped(rel, f"{rel}: belongs to record {stem}; not needed to score it")
        else:
            found[rel] = _other_entry(root, rel, explicit=False)
    return [found[rel] for rel in files if rel in found]


def _file_entry(root: _Root, name: str) -> Entry:
    """A file named on the command line: its record, or a rejected entry saying why not."""
    suffix = PurePosixPath(name).suffix.lower()
    if suffix == ".hea":
        return _header_entry(root, name, None)
    header = f"{PurePosixPath(name).stem}.hea"
    if suffix in _SIGNAL_SUFFIXES and (root.root / header).is_file():
        entry = _header_entry(root, header, None)
        if name in _rel_files(entry):
            return entry
    found = _other_entry(root, name, explicit=True)
    assert not isinstance(found, Skipped)  # explicit files are never skipped
    return found


def _header_entry(root: _Root, rel: str, available: set[str] | None) -> Entry:
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
        own = [f"{uid}{s}" for s in sorted(_SIGNAL_SUFFIXES) if exists(f"{uid}{s}")]
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


def _other_entry(root: _Root, rel: str, explicit: bool) -> Entry | Skipped:
    """A file that is not part of a WFDB record: a UCR file, a CODE-15% part, or neither."""
    suffix = PurePosixPath(rel).suffix.lower()
    path = root.root / rel
    if suffix in _SIGNAL_SUFFIXES:
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
        with open(path, "rb") as fh:
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


def _hdf5_entry(root: _Root, rel: str) -> Entry:
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


def _shown(shown_root: str, rel: str) -> str:
    return (PurePosixPath(shown_root) / rel).as_posix() if shown_root else rel


# --------------------------------------------------------------------------- reading


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
        reader = CodeReader(_SOURCE, csv_root, csv=CODE_CSV, hdf5_glob=_HDF5_GLOB)
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


# --------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class PredictionRow:
    """One output row.

    ``scores``: one value per ``card.output_names`` (empty when rejected); ``predicted``: the
    decided classes (multilabel: all at or above threshold, multiclass: the argmax class), None
    without a rule or for reconstruction; ``is_anomaly`` and ``threshold``: reconstruction with
    a rule; ``valid_len``: samples of real signal before the zero padding (at the profile rate);
    ``clipped``: samples clipped by the int16 round trip.
    """

    record_id: str
    input: str
    files: tuple[str, ...]
    status: Status
    reason: str = ""
    scores: tuple[float, ...] = ()
    predicted: tuple[str, ...] | None = None
    is_anomaly: bool | None = None
    threshold: float | None = None
    valid_len: int | None = None
    clipped: int | None = None


@dataclass(frozen=True)
class PredictionTable:
    """Rows of :func:`predict_records`, with what is needed to render them."""

    task: Task
    output_names: tuple[str, ...]
    has_rule: bool
    rows: tuple[PredictionRow, ...]

    def counts(self) -> dict[str, int]:
        """Rows per status (both keys always present)."""
        counted = Counter(r.status for r in self.rows)
        return {SCORED: counted[SCORED], REJECTED: counted[REJECTED]}

    def decision_columns(self) -> tuple[str, ...]:
        if not self.has_rule:
            return ()
        return ("is_anomaly", "threshold") if self.task == "reconstruction" else ("predicted",)

    def score_columns(self) -> tuple[str, ...]:
        """CSV columns of the scores: the output names (``score_<name>`` if one clashes)."""
        fixed = {"record_id", "status", "reason", "input", "files", "valid_len", "clipped_samples"}
        fixed.update(self.decision_columns())
        return tuple(f"score_{n}" if n in fixed else n for n in self.output_names)

    def csv_columns(self) -> tuple[str, ...]:
        return (
            "record_id",
            "status",
            *self.score_columns(),
            *self.decision_columns(),
            "valid_len",
            "clipped_samples",
            "reason",
            "input",
            "files",
        )

    def csv_text(self) -> str:
        """The table as CSV (floats in shortest round-trip form, lists joined with ``;``)."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.csv_columns())
        for row in self.rows:
            writer.writerow(self._csv_row(row))
        return buf.getvalue()

    def _csv_row(self, row: PredictionRow) -> list[str]:
        scores = [_csv_value(v) for v in row.scores] or [""] * len(self.output_names)
        decisions: list[str] = []
        if self.has_rule and self.task == "reconstruction":
            decisions = [_csv_value(row.is_anomaly), _csv_value(row.threshold)]
        elif self.has_rule:
            decisions = [";".join(row.predicted) if row.predicted is not None else ""]
        tail = [_csv_value(row.valid_len), _csv_value(row.clipped), row.reason, row.input]
        return [row.record_id, row.status, *scores, *decisions, *tail, ";".join(row.files)]

    def json_rows(self) -> list[dict[str, Any]]:
        """Rows as JSON-able dicts (scores keyed by output name; non-finite values as null)."""
        out = []
        for row in self.rows:
            d: dict[str, Any] = {
                "record_id": row.record_id,
                "status": row.status,
                "scores": (
                    dict(zip(self.output_names, row.scores, strict=True)) if row.status == SCORED else None
                ),
            }
            if self.has_rule:
                d.update(self._json_decision(row))
            d.update(
                valid_len=row.valid_len,
                clipped_samples=row.clipped,
                reason=row.reason,
                input=row.input,
                files=list(row.files),
            )
            out.append(d)
        return out

    def _json_decision(self, row: PredictionRow) -> dict[str, Any]:
        if self.task == "reconstruction":
            return {"is_anomaly": row.is_anomaly, "threshold": row.threshold}
        if row.predicted is None:
            return {"predicted": None}
        if self.task == "multiclass":
            return {"predicted": row.predicted[0]}
        return {"predicted": list(row.predicted)}


def _csv_value(value: float | int | bool | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def check_rule(rule: DecisionRule, card: ModelCard) -> None:
    """Raise ValueError when ``rule`` was not made for a model like ``card`` (task, classes)."""
    if rule.task != card.task:
        raise ValueError(f"decision rule is for a {rule.task} model, the model card says {card.task}")
    if card.task != "reconstruction" and tuple(rule.classes) != tuple(card.classes):
        raise ValueError(f"decision rule classes {list(rule.classes)} != model classes {list(card.classes)}")
    if card.task == "reconstruction" and (rule.thresholds is None or len(rule.thresholds.values) != 1):
        raise ValueError("a reconstruction decision rule needs exactly one threshold")


def predict_records(
    model: nn.Module,
    card: ModelCard,
    rule: DecisionRule | None,
    records: Iterable[Candidate],
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> PredictionTable:
    """Score ``records`` with ``model`` and decide with ``rule`` (None: scores only).

    Records are preprocessed with ``card.plan()`` and the int16 round trip at ``card.scale_mv``
    in groups of ``batch_size`` (so memory stays bounded), then scored by
    :func:`pipeline.models.scoring.output_scores` on ``device`` (``"cpu"``, ``"cuda"``, ``"auto"``...).
    Input order is kept; rejected candidates and records failing the profile's quality gates
    become rejected rows.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    plan = card.plan()
    if (len(plan.leads), plan.length) != tuple(card.input_shape):
        raise ValueError(
            f"model card input_shape {card.input_shape} != profile plan ({len(plan.leads)}, {plan.length})"
        )
    if rule is not None:
        check_rule(rule, card)
    dev = resolve_device(device) if isinstance(device, str) else device
    model.to(dev).eval()
    scorer = _Scorer(model, card, plan, rule, dev)
    rows: list[PredictionRow] = []
    chunk: list[Candidate] = []
    n_records = 0
    with tqdm(desc="predict", unit="rec", disable=not progress) as bar:
        for candidate in records:
            chunk.append(candidate)
            n_records += isinstance(candidate.item, Record)
            # Rejections cost no model time; flushing on them too keeps the progress bar moving.
            if n_records >= batch_size or len(chunk) >= 4 * batch_size:
                rows.extend(scorer.score(chunk))
                bar.update(len(chunk))
                chunk, n_records = [], 0
        rows.extend(scorer.score(chunk))
        bar.update(len(chunk))
    return PredictionTable(card.task, card.output_names, rule is not None, tuple(rows))


@dataclass(frozen=True)
class _Scorer:
    model: nn.Module
    card: ModelCard
    plan: SignalPlan
    rule: DecisionRule | None
    device: torch.device

    def score(self, chunk: Sequence[Candidate]) -> list[PredictionRow]:
        """Rows for one chunk of candidates, in order."""
        records = [c.item for c in chunk if isinstance(c.item, Record)]
        batch, reasons = _preprocess(records, self.plan)
        fields: dict[str, dict[str, Any]] = {}
        if batch.records:
            x, clipped = stored_signal(batch.signal, self.card.scale_mv)
            scores = model_scores(self.model, self.card.task, x, self.device)
            for i, (rec, decided) in enumerate(zip(batch.records, self._decisions(scores), strict=True)):
                fields[rec.record_id] = {
                    "scores": tuple(float(v) for v in scores[i]),
                    "valid_len": int(batch.valid_len[i]),
                    "clipped": int(clipped[i]),
                    **decided,
                }
        return [self._row(c, fields, reasons) for c in chunk]

    @staticmethod
    def _row(
        c: Candidate, fields: Mapping[str, Mapping[str, Any]], reasons: Mapping[str, str]
    ) -> PredictionRow:
        if isinstance(c.item, Rejection):
            return PredictionRow(c.record_id, c.input, c.files, REJECTED, reason=c.item.reason)
        if c.record_id in fields:
            return PredictionRow(c.record_id, c.input, c.files, SCORED, **fields[c.record_id])
        reason = reasons.get(c.record_id, "not scored (no reason reported)")
        return PredictionRow(c.record_id, c.input, c.files, REJECTED, reason=reason)

    def _decisions(self, scores: F64) -> list[dict[str, Any]]:
        """Per row the decision fields of :class:`PredictionRow` (empty without a rule)."""
        if self.rule is None:
            return [{} for _ in range(len(scores))]
        if self.card.task == "reconstruction":
            assert self.rule.thresholds is not None  # check_rule
            threshold = float(self.rule.thresholds.values[0])
            flags = self.rule.decide(scores[:, 0])
            return [{"is_anomaly": bool(f), "threshold": threshold} for f in flags]
        chosen = self.rule.decide(scores)
        names = self.card.classes
        return [{"predicted": tuple(n for n, on in zip(names, row, strict=True) if on)} for row in chosen]


def _preprocess(records: list[Record], plan: SignalPlan) -> tuple[ProcessedBatch, dict[str, str]]:
    """:func:`process` on a chunk; should it raise, each record alone, so one cannot sink the rest."""
    try:
        batch, rejected = process(records, plan)
        return batch, {r.item: r.reason for r in rejected}
    except Exception:  # noqa: BLE001 - find the record that raised, keep the others
        pass
    kept: list[ProcessedBatch] = []
    reasons: dict[str, str] = {}
    for rec in records:
        try:
            one, rejected = process([rec], plan)
        except Exception as exc:  # noqa: BLE001
            reasons[rec.record_id] = f"preprocessing failed: {type(exc).__name__}: {exc}"
            continue
        reasons.update({r.item: r.reason for r in rejected})
        if one.records:
            kept.append(one)
    if not kept:
        empty = np.zeros((0, len(plan.leads), plan.length), dtype=np.float32)
        return ProcessedBatch((), empty, ()), reasons
    merged = ProcessedBatch(
        tuple(r for b in kept for r in b.records),
        np.concatenate([b.signal for b in kept]),
        tuple(v for b in kept for v in b.valid_len),
    )
    return merged, reasons


def stored_signal(x: sig.F32, scale_mv: float) -> tuple[sig.F32, npt.NDArray[np.int32]]:
    """``(N, C, L)`` mV after the int16 round trip the training shards made at ``scale_mv``,
    and the number of clipped samples per record ``(N,)``. ``scale_mv`` 0 means the profile
    stores float32 (no quantisation): ``x`` is returned as it is."""
    if scale_mv <= 0:
        return x, np.zeros(len(x), dtype=np.int32)
    q, clipped = sig.quantise_rows(x, scale_mv)
    return sig.dequantise(q, scale_mv), clipped


def model_scores(model: nn.Module, task: Task, x: sig.F32, device: torch.device) -> F64:
    """Scores ``(N, K)`` float64 of ``x`` ``(N, C, L)`` (reconstruction: ``(N, 1)``)."""
    xt = torch.from_numpy(np.ascontiguousarray(x))
    # Pinned host memory lets the copy to the GPU overlap; pointless (and unavailable) on CPU.
    xt = xt.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else xt.to(device)
    with torch.inference_mode():
        out = model(xt)
        scores = output_scores(task, xt, out)
    return np.asarray(scores.double().cpu().numpy()).reshape(len(x), -1)


# --------------------------------------------------------------------------- run


@dataclass(frozen=True)
class _Loaded:
    model: nn.Module
    card: ModelCard
    checkpoint: dict[str, Any]
    path: Path
    sha256: str


class _BadArguments(ValueError):
    """An argument of :func:`run_predict` that makes the run impossible (exit code 2)."""


def _load(model_path: Path) -> _Loaded:
    """The checkpoint at ``model_path`` (a file, or a training folder: ``best.pt``, else
    ``latest.pt``), its card and the card's network with the weights loaded, in eval mode."""
    if not model_path.exists():
        raise _BadArguments(f"{model_path}: no such model checkpoint file")
    try:
        path = pick_checkpoint(model_path)
    except FileNotFoundError as exc:
        raise _BadArguments(str(exc)) from None
    try:
        ckpt = load_checkpoint(path)
    except CheckpointError as exc:
        raise _BadArguments(str(exc)) from None
    try:
        card = card_from_checkpoint(ckpt, str(path))
    except (ValueError, TypeError, KeyError) as exc:
        raise _BadArguments(_naming(path, f"unusable model card: {exc}")) from None
    state = ckpt.get("model")
    if not isinstance(state, Mapping):
        raise _BadArguments(f"{path}: no model weights ('model' state dict) in the checkpoint")
    model = card.build()
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise _BadArguments(f"{path}: weights do not fit the card's {card.kind} network: {exc}") from None
    return _Loaded(model.eval(), card, ckpt, path, sha256_file(path))


def _naming(path: Path, message: str) -> str:
    """``message`` starting with the file's name unless it already names it."""
    return message if str(path) in message else f"{path}: {message}"


def _load_rule(
    rule_path: Path | None, card: ModelCard, checkpoint_sha256: str, explicit: bool = True
) -> tuple[DecisionRule | None, str]:
    """The rule (checked against the card) and a note for the JSON; (None, why) when absent.

    A rule chosen for other weights is refused when given explicitly and passed over (scores only,
    with a note) when it is only the default one found beside the model's evaluation."""
    if rule_path is None:
        return None, "no decision rule was available (none given): scores only"
    if not Path(rule_path).is_file():
        return None, f"no decision rule was available ({rule_path} does not exist): scores only"
    try:
        rule = read_rule(Path(rule_path))
        check_rule(rule, card)
        stale = rule.checkpoint_sha256 is not None and rule.checkpoint_sha256 != checkpoint_sha256
        if stale and explicit:
            raise ValueError("it was chosen for another checkpoint (checkpoint_sha256 differs)")
    except (ValueError, KeyError, TypeError) as exc:
        raise _BadArguments(_naming(Path(rule_path), f"unusable decision rule: {exc}")) from None
    if stale:
        note = (
            f"{rule_path} was chosen for another checkpoint: scores only "
            "(re-run ecgpipe evaluate, or pass --rule)"
        )
        print(f"note: {note}", file=sys.stderr)
        return None, note
    return rule, f"decisions by {rule_path}"


def run_predict(
    model_path: Path,
    inputs: Sequence[Path],
    out_dir: Path,
    rule_path: Path | None,
    batch_size: int = 64,
    device: str = "cpu",
    default_rules: Path | None = None,
) -> int:
    """Score ``inputs`` with the checkpoint at ``model_path`` and write ``predictions.csv`` and
    ``predictions.json`` into ``out_dir`` (atomically).

    Without ``rule_path``, the rule evaluation wrote for this model,
    ``<default_rules>/<card name>/thresholds.json``, is used if it was chosen for this very checkpoint.

    Returns 0 when at least one record was scored, 1 when none was (the files are still
    written), 2 for bad arguments (missing model file or input, checkpoint without a card,
    unusable rule, impossible device or batch size), with a message on stderr naming the file.
    """
    try:
        loaded, rule, note, scan = _prepare(model_path, inputs, rule_path, batch_size, device, default_rules)
    except _BadArguments as exc:
        print(f"ecgpipe predict: {exc}", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    table = predict_records(
        loaded.model, loaded.card, rule, read_candidates(scan), batch_size, device, progress=True
    )
    report = predictions_report(table, loaded, rule, note, inputs, scan)
    out_dir = Path(out_dir)
    write_atomic(out_dir / CSV_NAME, table.csv_text().encode("utf-8"))
    text = json.dumps(json_safe(report), indent=1, allow_nan=False) + "\n"
    write_atomic(out_dir / JSON_NAME, text.encode("utf-8"))
    counts = table.counts()
    print(
        f"ecgpipe predict: {counts[SCORED]} scored, {counts[REJECTED]} rejected, "
        f"{len(scan.skipped)} files skipped -> {out_dir / CSV_NAME}, {out_dir / JSON_NAME}"
    )
    return EXIT_SCORED if counts[SCORED] else EXIT_NONE_SCORED


def _prepare(
    model_path: Path,
    inputs: Sequence[Path],
    rule_path: Path | None,
    batch_size: int,
    device: str,
    default_rules: Path | None = None,
) -> tuple[_Loaded, DecisionRule | None, str, InputScan]:
    """Everything that can fail on the arguments, checked before any record is read."""
    if batch_size < 1:
        raise _BadArguments(f"batch size must be at least 1, got {batch_size}")
    if not inputs:
        raise _BadArguments("no inputs: give record files and/or folders")
    missing = [str(p) for p in inputs if not Path(p).exists()]
    if missing:
        raise _BadArguments(f"{', '.join(missing)}: no such file or folder")
    loaded = _load(Path(model_path))
    if rule_path is None and default_rules is not None:
        default = Path(default_rules) / loaded.card.name / "thresholds.json"
        rule, note = _load_rule(default, loaded.card, loaded.sha256, explicit=False)
    else:
        rule, note = _load_rule(rule_path, loaded.card, loaded.sha256)
    try:
        resolve_device(device)
    except (ValueError, RuntimeError) as exc:
        raise _BadArguments(f"device {device!r}: {exc}") from None
    try:
        scan = discover_inputs([Path(p) for p in inputs])
    except OSError as exc:
        raise _BadArguments(str(exc)) from None
    return loaded, rule, note, scan


def predictions_report(
    table: PredictionTable,
    loaded: _Loaded,
    rule: DecisionRule | None,
    note: str,
    inputs: Sequence[Path],
    scan: InputScan,
) -> dict[str, Any]:
    """The ``predictions.json`` document."""
    card, plan = loaded.card, loaded.card.plan()
    return {
        "format": PREDICTIONS_FORMAT,
        "model": {**card.to_dict(), "output_names": list(card.output_names), "plan_digest": plan.digest()},
        "checkpoint": {
            "path": str(loaded.path),
            "sha256": loaded.sha256,
            "epoch": loaded.checkpoint.get("epoch"),
            "code": loaded.checkpoint.get("code"),
        },
        "decision_rule": None if rule is None else rule.to_dict(),
        "decision_rule_note": note,
        "preprocessing": _preprocessing_note(card, plan),
        "inputs": [str(p) for p in inputs],
        "counts": {**table.counts(), "skipped_files": len(scan.skipped)},
        "skipped": [{"path": s.path, "reason": s.reason} for s in scan.skipped],
        "rows": table.json_rows(),
    }


def _preprocessing_note(card: ModelCard, plan: SignalPlan) -> dict[str, Any]:
    rate = "the native rate" if plan.fs_hz is None else f"{plan.fs_hz:g} Hz"
    return {
        "profile": card.profile,
        "leads": list(plan.leads),
        "fs_hz": plan.fs_hz,
        "length": plan.length,
        "crop": plan.crop,
        "long_records": (
            f"records longer than {plan.length} samples at {rate} are cropped ({plan.crop}) exactly as "
            "when the training shards were written, not windowed; shorter ones are zero-padded "
            "(valid_len = samples of real signal)"
        ),
        "quantisation": f"int16 round trip at {card.scale_mv} mV per step, as stored in the training shards",
    }
