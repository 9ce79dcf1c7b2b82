"""Label tables: reading and validating one scheme folder's ``*.csv`` into :class:`LabelTables`.

Each CSV starts with optional ``#`` comment lines, then one of three headers: ``label,definition``
(the vocabulary file, exactly one), ``key,value`` (the scheme file, read by
:mod:`pipeline.labels.schemes`, skipped here), or ``source,scope,source_code,label,note`` (a
mapping table; more columns follow for documentation, and an optional ``windows`` column). An
empty ``label`` means the code is known and deliberately maps to no label. ``scope`` is one of
:data:`~pipeline.core.records.SCOPES`; a record-scope row's ``windows`` (``always``, the
default, ``never`` or ``unannotated``) says whether it reaches windows of a long recording.
Errors name the file and line (:class:`LabelTableError`).
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.records import SCOPES

TABLE_COLUMNS = ("source", "scope", "source_code", "label", "note")
VOCABULARY_COLUMNS = ("label", "definition")
SCHEME_COLUMNS = ("key", "value")
WINDOW_RULES = ("always", "never", "unannotated")
# Source codes used as labels verbatim (PTB-XL "LAO/LAE", "PRC(S)", "1AVB"; CODE "1dAVb"): no comma, no space.
_LABEL_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_/()+.|-]*")


class LabelTableError(ValueError):
    """A label table or the vocabulary file is malformed; the message names file and line."""


@dataclass(frozen=True)
class TableRow:
    """One row of a mapping table; ``label`` is ``""`` for a code that maps to no label.

    ``windows`` is the record-scope rule (``always``, ``never``, ``unannotated``); ``""`` for
    interval and beat rows, which reach a window by their position.
    """

    source: str
    scope: str
    code: str
    label: str
    note: str
    file: str
    line: int
    windows: str = ""


@dataclass(frozen=True)
class LabelTables:
    """Validated mapping tables plus the vocabulary they use.

    ``rows`` is keyed by ``(table source, scope, code)``; ``files`` holds ``(file name, sha256)`` of
    every file read, sorted by name, for :func:`tables_digest`.
    """

    vocabulary: tuple[str, ...]
    definitions: Mapping[str, str]
    rows: Mapping[tuple[str, str, str], TableRow]
    files: tuple[tuple[str, str], ...]

    def sources(self) -> frozenset[str]:
        """Table sources that have at least one row (``ptbxl``, ``wfdb``, ...)."""
        return frozenset(source for source, _, _ in self.rows)

    def codes(self, source: str, scope: str = "record") -> dict[str, str]:
        """``code -> label`` (``""`` for no label) of one table source at one scope."""
        return {
            code: row.label for (src, sc, code), row in self.rows.items() if src == source and sc == scope
        }


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


def _is_scheme_file(f: _CsvFile) -> bool:
    return f.header[: len(SCHEME_COLUMNS)] == SCHEME_COLUMNS


def _check_header(f: _CsvFile) -> None:
    if f.header[: len(TABLE_COLUMNS)] != TABLE_COLUMNS:
        raise LabelTableError(
            f"{f.path}:{f.header_line}: header {','.join(f.header)!r}; expected "
            f"{','.join(TABLE_COLUMNS)} (optionally followed by more columns) for a mapping table, "
            f"{','.join(VOCABULARY_COLUMNS)} for the vocabulary or {','.join(SCHEME_COLUMNS)} for the scheme"
        )


def _check_width(f: _CsvFile, line: int, fields: tuple[str, ...]) -> None:
    if len(fields) != len(f.header):
        raise LabelTableError(
            f"{f.path}:{line}: {len(fields)} fields but the header has {len(f.header)} "
            f"({','.join(f.header)}); quote fields that contain commas"
        )


def _parse_vocabulary(f: _CsvFile) -> dict[str, str]:
    """``label -> definition`` in file order; labels unique, letters, digits and ``_/()+.|-`` only."""
    definitions: dict[str, str] = {}
    for line, fields in f.rows:
        _check_width(f, line, fields)
        label, definition = fields[0].strip(), fields[1].strip()
        if not _LABEL_PATTERN.fullmatch(label):
            raise LabelTableError(
                f"{f.path}:{line}: label {label!r} holds characters other than letters, digits and _/()+.|-"
            )
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
    source, scope, code, label, note = (
        fields[0].strip(),
        fields[1].strip(),
        normalise_code(fields[2]),
        fields[3].strip(),
        fields[4],
    )
    if not source or not code:
        raise LabelTableError(f"{f.path}:{line}: empty source or source_code")
    if scope not in SCOPES:
        raise LabelTableError(f"{f.path}:{line}: scope {scope!r}; expected one of {', '.join(SCOPES)}")
    if label and label not in vocabulary:
        raise LabelTableError(
            f"{f.path}:{line}: label {label!r} is not in the vocabulary {list(vocabulary)} "
            "(leave label empty for 'no label')"
        )
    return TableRow(
        source, scope, code, label, note.strip(), str(f.path), line, _windows(f, line, fields, scope)
    )


def _windows(f: _CsvFile, line: int, fields: tuple[str, ...], scope: str) -> str:
    """The row's ``windows`` rule: given for record scope (empty means ``always``), empty otherwise."""
    value = fields[f.header.index("windows")].strip() if "windows" in f.header else ""
    if scope != "record":
        if value:
            raise LabelTableError(
                f"{f.path}:{line}: windows={value!r} on a {scope}-scope row; only record-scope rows take "
                "a windows rule (interval and beat labels reach windows by their position)"
            )
        return ""
    value = value or "always"
    if value not in WINDOW_RULES:
        raise LabelTableError(
            f"{f.path}:{line}: windows={value!r}; expected one of {', '.join(WINDOW_RULES)}"
        )
    return value


def _add_row(rows: dict[tuple[str, str, str], TableRow], row: TableRow) -> None:
    """Add a row; the same code twice (at one scope) is fine only with the same label and rule."""
    key = (row.source, row.scope, row.code)
    earlier = rows.get(key)
    if earlier is None:
        rows[key] = row
    elif (earlier.label, earlier.windows) != (row.label, row.windows):
        raise LabelTableError(
            f"{row.file}:{row.line}: ({row.source}, {row.scope}, {row.code!r}) maps to {row.label!r} "
            f"(windows {row.windows or '-'}) here but to {earlier.label!r} "
            f"(windows {earlier.windows or '-'}) at {earlier.file}:{earlier.line}"
        )


def load_tables(paths: Sequence[Path]) -> LabelTables:
    """Read and validate label tables; exactly one of ``paths`` must be the vocabulary file.

    Raises :class:`LabelTableError` (naming file and line) for a wrong header, a row with the
    wrong number of fields, a code listed twice with different labels, a label that is not in
    the vocabulary, or an unknown scope or ``windows`` rule. A ``key,value`` file (the scheme
    file) is skipped but counted in ``files``.
    """
    files = [_read_csv(Path(p)) for p in paths]
    definitions = _find_vocabulary(files)
    vocabulary = tuple(definitions)
    rows: dict[tuple[str, str, str], TableRow] = {}
    for f in files:
        if _is_vocabulary(f) or _is_scheme_file(f):
            continue
        _check_header(f)
        for line, fields in f.rows:
            _add_row(rows, _parse_row(f, line, fields, vocabulary))
    hashes = tuple(sorted((f.path.name, f.sha256) for f in files))
    return LabelTables(vocabulary, definitions, rows, hashes)
