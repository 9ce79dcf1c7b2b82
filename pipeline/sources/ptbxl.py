"""PTB-XL: 12-lead 10 s records at 100 Hz (``records100/``) and 500 Hz (``records500/``).

``ptbxl_database.csv`` has one row per ``ecg_id`` with its SCP codes (a Python dict literal
``{'NORM': 100.0, 'SR': 0.0}``: code → likelihood in percent), patient, fold and the paths
``filename_lr`` (100 Hz) / ``filename_hr`` (500 Hz) of its WFDB files without suffix.
``scp_statements.csv`` describes the codes (metadata here; label mapping happens elsewhere).

Each ``ecg_id`` becomes one unit, read at the first rate in ``rates`` whose ``.hea`` and
``.dat`` both exist; its files at another rate in ``rates`` are rejected as duplicates, and
files at a rate not in ``rates`` as excluded.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import ClassVar

from pipeline.core.records import Discovery, InputUnit, Provenance, RawLabel, ReadError, Record, Rejection
from pipeline.sources.base import ConfinedPaths, SourceLayoutError, SourceReader, list_files, resolved_root
from pipeline.sources.options import PTBXL_QUALITY_COLUMNS, PtbXlOptions
from pipeline.sources.wfdb_io import is_documentation, lead_names, read_unit_ecg

DATABASE = "ptbxl_database.csv"
STATEMENTS = "scp_statements.csv"
RATE_COLUMNS = {100: "filename_lr", 500: "filename_hr"}
_MAX_CSV_BYTES = 256 << 20
_MAX_SCP_CHARS = 10_000  # literal_eval of a huge nested string could exhaust the stack


@dataclass(frozen=True)
class _Candidate:
    """The files of one ``ecg_id`` at one rate, as found on disk."""

    rate: int
    stem: str  # e.g. records500/00000/00001_hr
    files: tuple[str, ...]  # those of (.hea, .dat) that exist
    complete: bool


class PtbXlReader(SourceReader):
    """One record per ``ecg_id``; local id = the ecg_id zero-padded to 5 digits (``00001``).

    ``rates``: sampling rates to read, in order of preference (each 100 or 500). Signals are
    float32 ``(12, T)`` in mV (``T`` = 1000 at 100 Hz, 5000 at 500 Hz); raw labels are the SCP
    codes with their likelihoods; ``patient_id`` is the CSV's patient id (``15709.0`` →
    ``15709``); ``meta`` holds ``strat_fold``, ``age``, ``sex``, ``rate_hz`` and ``filename``.
    The unit's ``extra`` holds the columns ``read`` uses plus a digest of the ecg_id's whole CSV
    row, so editing a row changes its fingerprint.
    """

    kind: ClassVar[str] = "ptbxl"
    version: ClassVar[str] = "2"  # 2: signal-quality columns become raw labels (noise_columns)
    decodes_loaded: ClassVar[bool] = True

    Options: ClassVar[type[PtbXlOptions]] = PtbXlOptions
    options: PtbXlOptions

    # ------------------------------------------------------------------ discovery

    def discover(self) -> Discovery:
        files = list_files(self.root)
        on_disk = set(files)
        metadata = [rel for rel in (DATABASE, STATEMENTS) if rel in on_disk]
        rejected: list[Rejection] = []
        rows = self._rows(rejected) if DATABASE in on_disk else {}
        units: list[InputUnit] = []
        claimed = set(metadata)
        owners: dict[str, int] = {}  # record file -> the ecg_id whose unit reads it
        paths = ConfinedPaths(self.root)  # each records folder resolved once, not once per row
        for ecg_id, row in sorted(rows.items()):
            candidates = self._candidates(ecg_id, row, on_disk, rejected, paths)
            unit, rejections = self._choose(ecg_id, row, candidates)
            if unit is not None:
                shared = _shared_files(ecg_id, unit, owners)
                if shared is None:
                    units.append(unit)
                else:
                    rejected.append(shared)
            rejected.extend(rejections)
            claimed.update(rel for c in candidates for rel in c.files)
        for rel in files:
            if rel in claimed:
                continue
            if is_documentation(rel):
                metadata.append(rel)
            elif PurePosixPath(rel).suffix in (".hea", ".dat"):
                reason = f"{rel}: record file with no row in {DATABASE}"
                rejected.append(Rejection(rel, (rel,), reason))
            else:
                rejected.append(Rejection(rel, (rel,), f"{rel}: not a PTB-XL record or metadata file"))
        return Discovery(tuple(units), tuple(metadata), tuple(rejected))

    def _rows(self, rejected: list[Rejection]) -> dict[int, dict[str, str]]:
        """ecg_id → CSV row (all values as strings); malformed rows are rejected.

        A table that cannot be used at all (too large, not UTF-8 CSV, a required column missing) is a
        :class:`SourceLayoutError`: every record's labels come from it, so quarantining each record for
        the same cause would hide the one thing to fix.
        """
        path = self.resolve(DATABASE)
        if path.stat().st_size > _MAX_CSV_BYTES:
            raise SourceLayoutError(f"{path}: larger than {_MAX_CSV_BYTES} bytes; expected the PTB-XL table")
        rows: dict[int, dict[str, str]] = {}
        try:
            with path.open(newline="", encoding="utf-8") as fh:
                table = csv.DictReader(fh)
                self._check_columns(path, table.fieldnames or [])
                for row in table:
                    line_no = table.line_num  # physical line, correct even for quoted newlines
                    problem = _row_problem(row, rows)
                    if problem:
                        reason = f"{DATABASE}: line {line_no}: {problem}"
                        rejected.append(Rejection(f"{DATABASE}:{line_no}", (), reason))
                        continue
                    clean = {k: v or "" for k, v in row.items() if k is not None}
                    rows[int(clean["ecg_id"])] = clean
        except (csv.Error, UnicodeDecodeError) as exc:
            raise SourceLayoutError(f"{path}: unreadable CSV: {exc}; expected UTF-8 CSV") from None
        return rows

    def _check_columns(self, path: Path, columns: Sequence[str]) -> None:
        """The header names ``ecg_id``, ``scp_codes`` and the file column of a rate in ``rates``."""
        missing = [c for c in _REQUIRED_COLUMNS if c not in columns]
        rate_columns = [RATE_COLUMNS[r] for r in self.options.rates if r in RATE_COLUMNS]
        if not any(c in columns for c in rate_columns):
            missing.append(" or ".join(rate_columns))
        if missing:
            found = ", ".join(columns) or "no header"
            raise SourceLayoutError(
                f"{path}: missing column(s) {', '.join(missing)}; expected a PTB-XL table with "
                f"{', '.join([*_REQUIRED_COLUMNS, *rate_columns])} (found: {found})"
            )

    def _candidates(
        self,
        ecg_id: int,
        row: Mapping[str, str],
        on_disk: set[str],
        rejected: list[Rejection],
        paths: ConfinedPaths,
    ) -> list[_Candidate]:
        """The ecg_id's files at each rate the CSV names and the disk holds."""
        out = []
        root = Path(resolved_root(self.root))
        for rate, column in RATE_COLUMNS.items():
            stem = row.get(column, "").strip()
            if not stem:
                continue
            if "\x00" in stem:
                reason = (
                    f"{DATABASE}: {column}: {stem!r} has a NUL byte; expected a path relative to the root"
                )
                rejected.append(Rejection(f"{DATABASE}:ecg_id={ecg_id}", (), reason))
                continue
            try:
                stem = paths(stem).relative_to(root).as_posix()
            except ReadError as exc:
                rejected.append(Rejection(f"{DATABASE}:ecg_id={ecg_id}", (), f"{DATABASE}: {column}: {exc}"))
                continue
            found = tuple(f"{stem}{suffix}" for suffix in (".hea", ".dat") if f"{stem}{suffix}" in on_disk)
            if found:
                out.append(_Candidate(rate, stem, found, complete=len(found) == 2))
        return out

    def _choose(
        self, ecg_id: int, row: dict[str, str], candidates: list[_Candidate]
    ) -> tuple[InputUnit | None, list[Rejection]]:
        """The unit at the first wanted rate with complete files; rejections for the rest."""
        wanted = [c for r in self.options.rates for c in candidates if c.rate == r and c.complete]
        chosen = wanted[0] if wanted else None
        rejections = []
        for c in candidates:
            if c is chosen:
                continue
            if c.rate not in self.options.rates:
                reason = f"{c.stem}: sampling rate {c.rate} Hz is not in rates {self.options.rates}"
                rejections.append(Rejection(c.stem, c.files, reason, category="excluded"))
            elif not c.complete:
                reason = (
                    f"{c.stem}: incomplete record, only {', '.join(c.files)} exists; expected .hea and .dat"
                )
                rejections.append(Rejection(c.stem, c.files, reason))
            else:
                assert chosen is not None  # a complete wanted candidate exists, so one was chosen
                reason = f"{c.stem}: ecg_id {ecg_id} is read from {chosen.stem}.dat at {chosen.rate} Hz"
                rejections.append(Rejection(c.stem, c.files, reason, category="duplicate"))
        if chosen is None:
            return None, rejections
        # Only the columns read() uses travel with the unit; the digest of the whole row still makes
        # any edit of the row change the fingerprint (full rows cost ~2 kB a unit in the plan).
        extra = {key: row.get(key, "") for key in (*_USED_COLUMNS, *PTBXL_QUALITY_COLUMNS)}
        extra.update(_row_sha256=_row_digest(row), _rate_hz=str(chosen.rate), _filename=chosen.stem)
        # the option is part of the fingerprint: choosing other columns re-reads the records' labels
        extra.update(_noise_columns=",".join(self.options.noise_columns))
        return InputUnit(key=f"{ecg_id:05d}", files=chosen.files, extra=extra), rejections

    # ------------------------------------------------------------------ reading

    def read(self, unit: InputUnit, provenance: Provenance) -> Iterator[Record | Rejection]:
        yield self._record(unit, provenance, None)

    def read_loaded(
        self, unit: InputUnit, provenance: Provenance, loaded: Mapping[str, bytes]
    ) -> Iterator[Record | Rejection]:
        yield self._record(unit, provenance, loaded)

    def _record(self, unit: InputUnit, provenance: Provenance, loaded: Mapping[str, bytes] | None) -> Record:
        row = unit.extra
        labels = parse_scp_codes(row.get("scp_codes", ""), f"{DATABASE}: ecg_id {row.get('ecg_id')}")
        labels += quality_labels(row, self.options.noise_columns)
        header, signal = read_unit_ecg(self.root, unit.files, loaded)
        meta = {key: row.get(key, "") for key in ("strat_fold", "age", "sex")}
        meta.update(rate_hz=f"{header.fs_hz:g}", filename=row["_filename"])
        return Record(
            record_id=self.record_id(unit.key),
            source=self.name,
            signal=signal,
            fs_hz=header.fs_hz,
            leads=lead_names(header),
            patient_id=normalise_patient_id(row.get("patient_id", "")),
            raw_labels=labels,
            provenance=provenance,
            meta=meta,
        )

    def scp_statements(self) -> dict[str, dict[str, str]]:
        """``scp_statements.csv`` as SCP code → its row (strings); empty when the file is absent."""
        if not (self.root / STATEMENTS).is_file():
            return {}
        with Path(self.resolve(STATEMENTS)).open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            columns = next(reader, [])
            return {line[0]: dict(zip(columns[1:], line[1:], strict=False)) for line in reader if line}


_USED_COLUMNS = ("ecg_id", "patient_id", "scp_codes", "strat_fold", "age", "sex")
_REQUIRED_COLUMNS = ("ecg_id", "scp_codes")


def _shared_files(ecg_id: int, unit: InputUnit, owners: dict[str, int]) -> Rejection | None:
    """A duplicate rejection when another ecg_id's unit already reads the unit's files (two rows
    naming one recording would land it twice); otherwise the files are recorded as the unit's."""
    first = next((owners[f] for f in unit.files if f in owners), None)
    if first is not None:
        reason = (
            f"{DATABASE}: ecg_id {ecg_id}: {unit.extra['_filename']} names the files of ecg_id {first}; "
            "expected each recording in one row"
        )
        return Rejection(f"{DATABASE}:ecg_id={ecg_id}", (), reason, category="duplicate")
    owners.update(dict.fromkeys(unit.files, ecg_id))
    return None


def _row_digest(row: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(sorted(row.items())).encode()).hexdigest()


def _row_problem(row: Mapping[str | None, str | None], seen: Mapping[int, object]) -> str | None:
    """Why a CSV row cannot be used, or None."""
    ecg_id = (row.get("ecg_id") or "").strip()
    if not ecg_id.isdigit():
        return f"ecg_id {ecg_id!r} is not a positive integer"
    if int(ecg_id) in seen:
        return f"ecg_id {ecg_id} appears twice; the first row is used"
    return None


def parse_scp_codes(text: str, where: str) -> tuple[RawLabel, ...]:
    """``"{'NORM': 100.0, 'SR': 0.0}"`` → ``(RawLabel('NORM', 100.0), RawLabel('SR', 0.0))``.

    Raises :class:`ReadError` (naming ``where``) unless ``text`` is a dict literal of string
    codes to finite numbers.
    """
    problem = f"{where}: scp_codes {text[:200]!r} is not a dict literal of SCP code -> likelihood"
    if len(text) > _MAX_SCP_CHARS:
        raise ReadError(f"{where}: scp_codes is {len(text)} characters; expected at most {_MAX_SCP_CHARS}")
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        raise ReadError(problem) from exc
    if not isinstance(value, dict):
        raise ReadError(problem)
    labels = []
    for code, likelihood in value.items():
        if (
            not isinstance(code, str)
            or isinstance(likelihood, bool)
            or not isinstance(likelihood, int | float)
        ):
            raise ReadError(problem)
        if not math.isfinite(likelihood):
            raise ReadError(problem)
        labels.append(RawLabel(code, float(likelihood)))
    return tuple(labels)


def quality_labels(row: Mapping[str, str], columns: Sequence[str]) -> tuple[RawLabel, ...]:
    """A raw label named after each of ``columns`` whose value (the leads affected, e.g. ``" , I-AVR,  "``
    or ``"alles"``, all) is non-empty: PTB-XL states signal-quality problems per record."""
    return tuple(RawLabel(c) for c in columns if row.get(c, "").strip(" ,"))


def normalise_patient_id(text: str) -> str | None:
    """``"15709.0"`` → ``"15709"``; empty → None; anything else stripped and kept."""
    text = text.strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if math.isfinite(number) and number.is_integer() else text
