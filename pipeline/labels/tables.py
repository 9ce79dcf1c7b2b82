"""Label tables: reading and validating ``data/labels/*.csv`` into :class:`LabelTables`.

Each CSV starts with optional ``#`` comment lines, then either the header ``label,definition``
(the vocabulary file, exactly one) or the header ``source,source_code,unified_label,note``
(+ free documentation columns). An empty ``unified_label`` means the code is known and
deliberately maps to no label. Errors name the file and line (:class:`LabelTableError`).
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

TABLE_COLUMNS = ("source", "source_code", "unified_label", "note")
VOCABULARY_COLUMNS = ("label", "definition")
_LABEL_PATTERN = re.compile(r"[A-Z][A-Z0-9_]*")


class LabelTableError(ValueError):
    """A label table or the vocabulary file is malformed; the message names file and line."""


@dataclass(frozen=True)
class TableRow:
    """One row of a mapping table; ``label`` is ``""`` for a code that maps to no label."""

    source: str
    code: str
    label: str
    note: str
    file: str
    line: int


@dataclass(frozen=True)
class LabelTables:
    """Validated mapping tables plus the vocabulary they use.

    ``rows`` is keyed by ``(table source, code)``; ``files`` holds ``(file name, sha256)`` of
    every file read, sorted by name, for :func:`tables_digest`.
    """

    vocabulary: tuple[str, ...]
    definitions: Mapping[str, str]
    rows: Mapping[tuple[str, str], TableRow]
    files: tuple[tuple[str, str], ...]

    def sources(self) -> frozenset[str]:
        """Table sources that have at least one row (``ptbxl``, ``wfdb``, ...)."""
        return frozenset(source for source, _ in self.rows)

    def codes(self, source: str) -> dict[str, str]:
        """``code -> label`` (``""`` for no label) of one table source."""
        return {code: row.label for (src, code), row in self.rows.items() if src == source}


def normalise_code(code: str) -> str:
    """The lookup form of a code: surrounding whitespace and NUL padding removed."""
    return code.strip().strip("\x00").strip()


def table_paths(directory: Path) -> list[Path]:
    """Every ``*.csv`` in a label folder (tables and the vocabulary), sorted by name."""
    return sorted(directory.glob("*.csv"))


# --------------------------------------------------------------------------- loading tables


@dataclass(frozen=True)
class _CsvFile:
    path: Path
    header: tuple[str, ...]
    header_line: int
    rows: tuple[tuple[int, tuple[str, ...]], ...]  # (line number, fields)
    sha256: str


def _csv_rows(path: Path, lines: list[str], first_line: int) -> Iterator[tuple[int, tuple[str, ...]]]:
    """Parsed non-blank CSV rows with their 1-based line numbers in the file."""
    reader = csv.reader(iter(lines))
    start = 1
    for fields in reader:
        line = first_line + start - 1
        start = reader.line_num + 1
        if not fields or all(not f.strip() for f in fields):
            continue
        if fields[0].lstrip().startswith("#"):
            raise LabelTableError(f"{path}:{line}: '#' comment lines are allowed only at the top of the file")
        yield line, tuple(fields)


def _read_csv(path: Path) -> _CsvFile:
    """Read one label CSV: skip the leading comment block, split header and rows."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LabelTableError(f"{path}: not UTF-8 text ({exc})") from exc
    lines = text.splitlines(keepends=True)
    skip = 0
    while skip < len(lines) and (not lines[skip].strip() or lines[skip].lstrip().startswith("#")):
        skip += 1
    parsed = list(_csv_rows(path, lines[skip:], skip + 1))
    if not parsed:
        raise LabelTableError(f"{path}: no header line; expected {','.join(TABLE_COLUMNS)}")
    (header_line, header), rows = parsed[0], tuple(parsed[1:])
    header = tuple(h.strip() for h in header)
    return _CsvFile(path, header, header_line, rows, hashlib.sha256(data).hexdigest())


def _is_vocabulary(f: _CsvFile) -> bool:
    return f.header[: len(VOCABULARY_COLUMNS)] == VOCABULARY_COLUMNS


def _check_header(f: _CsvFile) -> None:
    if f.header[: len(TABLE_COLUMNS)] != TABLE_COLUMNS:
        raise LabelTableError(
            f"{f.path}:{f.header_line}: header {','.join(f.header)!r}; expected "
            f"{','.join(TABLE_COLUMNS)} (optionally followed by more columns) for a mapping table, "
            f"or {','.join(VOCABULARY_COLUMNS)} for the vocabulary"
        )


def _check_width(f: _CsvFile, line: int, fields: tuple[str, ...]) -> None:
    if len(fields) != len(f.header):
        raise LabelTableError(
            f"{f.path}:{line}: {len(fields)} fields but the header has {len(f.header)} "
            f"({','.join(f.header)}); quote fields that contain commas"
        )


def _parse_vocabulary(f: _CsvFile) -> dict[str, str]:
    """``label -> definition`` in file order; labels unique and upper-case identifiers."""
    definitions: dict[str, str] = {}
    for line, fields in f.rows:
        _check_width(f, line, fields)
        label, definition = fields[0].strip(), fields[1].strip()
        if not _LABEL_PATTERN.fullmatch(label):
            raise LabelTableError(f"{f.path}:{line}: label {label!r} is not an upper-case identifier")
        if label in definitions:
            raise LabelTableError(f"{f.path}:{line}: label {label!r} listed twice")
        definitions[label] = definition
    if not definitions:
        raise LabelTableError(f"{f.path}: the vocabulary lists no labels")
    return definitions


def _find_vocabulary(files: Sequence[_CsvFile]) -> dict[str, str]:
    vocab_files = [f for f in files if _is_vocabulary(f)]
    if len(vocab_files) != 1:
        names = [str(f.path) for f in vocab_files]
        raise LabelTableError(
            f"need exactly one vocabulary file (header {','.join(VOCABULARY_COLUMNS)}) among the "
            f"label tables, found {len(vocab_files)}: {names}"
        )
    return _parse_vocabulary(vocab_files[0])


def _parse_row(f: _CsvFile, line: int, fields: tuple[str, ...], vocabulary: Sequence[str]) -> TableRow:
    """One validated table row."""
    _check_width(f, line, fields)
    source, code, label, note = (fields[0].strip(), normalise_code(fields[1]), fields[2].strip(), fields[3])
    if not source or not code:
        raise LabelTableError(f"{f.path}:{line}: empty source or source_code")
    if label and label not in vocabulary:
        raise LabelTableError(
            f"{f.path}:{line}: unified label {label!r} is not in the vocabulary {list(vocabulary)} "
            "(leave unified_label empty for 'no label')"
        )
    return TableRow(source, code, label, note.strip(), str(f.path), line)


def _add_row(rows: dict[tuple[str, str], TableRow], row: TableRow) -> None:
    """Add a row; the same code twice is fine only with the same label."""
    key = (row.source, row.code)
    earlier = rows.get(key)
    if earlier is None:
        rows[key] = row
    elif earlier.label != row.label:
        raise LabelTableError(
            f"{row.file}:{row.line}: ({row.source}, {row.code!r}) maps to {row.label!r} here but to "
            f"{earlier.label!r} at {earlier.file}:{earlier.line}"
        )


def load_tables(paths: Sequence[Path]) -> LabelTables:
    """Read and validate label tables; exactly one of ``paths`` must be the vocabulary file.

    Raises :class:`LabelTableError` (naming file and line) for a wrong header, a row with the
    wrong number of fields, a code listed twice with different labels, or a unified label that
    is not in the vocabulary.
    """
    files = [_read_csv(Path(p)) for p in paths]
    definitions = _find_vocabulary(files)
    vocabulary = tuple(definitions)
    rows: dict[tuple[str, str], TableRow] = {}
    for f in files:
        if _is_vocabulary(f):
            continue
        _check_header(f)
        for line, fields in f.rows:
            _add_row(rows, _parse_row(f, line, fields, vocabulary))
    hashes = tuple(sorted((f.path.name, f.sha256) for f in files))
    return LabelTables(vocabulary, definitions, rows, hashes)
