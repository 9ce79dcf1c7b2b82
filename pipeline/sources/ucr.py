"""UCR / UEA time-series archive files (e.g. ECG5000): one record per row.

Files are named ``<DATASET>_<SPLIT>.<ext>`` anywhere under the root (``ECG5000_TRAIN.txt``).
Four on-disk formats are read:

``txt``
    whitespace-separated, class in column 0, one series per line (the pre-2018 archive).
``tsv``
    tab-separated, class in column 0 (the 2018 archive); ``NaN`` pads shorter series.
``arff``
    Weka ARFF: numeric attributes, then a final class attribute (usually nominal ``{1,2,...}``);
    ``?`` is a missing value.
``ts``
    sktime: ``@`` header lines, then ``v1,v2,...:label`` per line; ``?`` is a missing value;
    ``@equalLength false`` allows rows of different lengths.

The archive often ships one dataset+split in several of these formats with identical values,
so discovery keeps one file per dataset+split (the first format in ``prefer``) and rejects the
others as duplicates.

Each row becomes a ``(1, L)`` float32 record with lead ``"ECG"`` and ``meta["units"] ==
"normalised"``: UCR series are z-normalised and carry no units and no sampling rate
(``fs_hz`` is the reader option, None by default).

Class labels are normalised so that one class reads the same in every format: a label that
parses as an integral number is written as that integer (``1``, ``1.0``, ``1.0000000e+00`` and
``'1'`` all read ``1``); another number is written in shortest round-trip form (``0.50`` reads
``0.5``); anything else (``normal``) is kept as stated, without surrounding quotes or spaces.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from pipeline.core.records import Discovery, InputUnit, Provenance, RawLabel, ReadError, Record, Rejection
from pipeline.sources.base import SourceReader, list_files
from pipeline.sources.options import UCR_FORMATS, UcrOptions

FORMATS = UCR_FORMATS
_NAME = re.compile(r"^(?P<dataset>.+)_(?P<split>[^_]+)\.(?P<ext>[A-Za-z]+)$")
_MISSING_TOKEN = "?"
# The largest univariate UCR files are tens of MB; parsing holds several copies of the text.
MAX_FILE_BYTES = 256 << 20


@dataclass
class _Row:
    """One data line: its 1-based line number, class label and value tokens."""

    line: int
    label: str
    tokens: list[str]


@dataclass
class _Parsed:
    """A parsed file: its data rows, per-row problems found while splitting, and header facts.

    ``expected_length`` is the declared series length (ARFF attribute count, ``.ts``
    ``@seriesLength``) or None to use the file's modal length; ``classes`` is the declared
    class set, or None when the file declares none.
    """

    rows: list[_Row | str] = field(default_factory=list)  # a str is a reason the line was bad
    expected_length: int | None = None
    equal_length: bool = True
    classes: frozenset[str] | None = None


def normalise_label(text: str) -> str:
    """The class label as the file states it, minus quotes, with numbers in one canonical form.

    ``"1"``, ``"1.0"``, ``"1.0000000e+00"`` → ``"1"``; ``"0.50"`` → ``"0.5"``; ``"'N'"`` → ``"N"``.
    """
    label = text.strip().strip("'\"").strip()
    try:
        value = float(label)
    except ValueError:
        return label
    if not math.isfinite(value):
        return label
    if value == int(value):
        return str(int(value))
    return repr(value)


class UcrReader(SourceReader):
    """Reads UCR/UEA archive files (``.txt``, ``.tsv``, ``.ts``, ``.arff``) under ``root``.

    One unit per dataset+split, from the first format in ``prefer`` present; every row is a
    Record with signal float32 ``(1, L)`` (unitless, z-normalised) and ``fs_hz`` = the option.
    """

    kind: ClassVar[str] = "ucr"
    version: ClassVar[str] = "1"

    Options: ClassVar[type[UcrOptions]] = UcrOptions
    options: UcrOptions

    # ------------------------------------------------------------------ discovery

    def discover(self) -> Discovery:
        groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
        rejected: list[Rejection] = []
        for rel in list_files(self.root):
            match = _NAME.match(PurePosixPath(rel).name)
            ext = match["ext"].lower() if match else ""
            if match is None or ext not in FORMATS:
                rejected.append(
                    Rejection(
                        rel,
                        (rel,),
                        f"{rel}: not a UCR file; expected <DATASET>_<SPLIT>.{{{','.join(FORMATS)}}}",
                        category="excluded",
                    )
                )
                continue
            groups.setdefault((match["dataset"], match["split"]), []).append((rel, ext))
        units = []
        for (dataset, split), files in sorted(groups.items()):
            unit, others = self._choose(dataset, split, files)
            if unit is not None:
                units.append(unit)
            rejected.extend(others)
        return Discovery(units=tuple(units), rejected=tuple(rejected))

    def _choose(
        self, dataset: str, split: str, files: list[tuple[str, str]]
    ) -> tuple[InputUnit | None, list[Rejection]]:
        """The unit for one dataset+split and the rejections of its other files."""
        rank = {ext: i for i, ext in enumerate(self.options.prefer)}
        candidates = sorted((rank[ext], rel) for rel, ext in files if ext in rank)
        key = f"{dataset}_{split}"
        if not candidates:
            reason = f"format not in prefer={self.options.prefer}; {key} has no file in a preferred format"
            return None, [Rejection(rel, (rel,), f"{rel}: {reason}", category="excluded") for rel, _ in files]
        chosen = candidates[0][1]
        chosen_ext = PurePosixPath(chosen).suffix.lstrip(".").lower()
        unit = InputUnit(
            key=key, files=(chosen,), extra={"dataset": dataset, "split": split, "format": chosen_ext}
        )
        duplicates = [
            Rejection(
                rel,
                (rel,),
                f"{rel}: same dataset+split as {chosen}, which is read instead "
                f"(prefer={self.options.prefer})",
                category="duplicate",
            )
            for rel, _ in sorted(files)
            if rel != chosen
        ]
        return unit, duplicates

    # ------------------------------------------------------------------ reading

    def read(self, unit: InputUnit, provenance: Provenance) -> Iterator[Record | Rejection]:
        rel = unit.files[0]
        ext = PurePosixPath(rel).suffix.lstrip(".").lower()
        dataset = unit.extra.get("dataset") or unit.key.rsplit("_", 1)[0]
        split = unit.extra.get("split") or unit.key.rsplit("_", 1)[-1]
        text = _read_text(self.resolve(rel), rel)
        parsed = _PARSERS[ext](text, rel)
        if not parsed.rows:
            raise ReadError(f"{rel}: no data rows; expected one series per line")
        for index, item in _checked_rows(parsed, rel):
            local_id = f"{unit.key}/{index:05d}"
            if isinstance(item, str):
                yield Rejection(self.record_id(local_id), (rel,), item)
                continue
            label, values = item
            yield Record(
                record_id=self.record_id(local_id),
                source=self.name,
                signal=values.reshape(1, -1),
                fs_hz=self.options.fs_hz,
                leads=("ECG",),
                patient_id=None,
                raw_labels=(RawLabel(label),),
                provenance=provenance,
                meta={"units": "normalised", "dataset": dataset, "split": split, "row": str(index)},
            )


# ---------------------------------------------------------------------- text and row checks


def _read_text(path: Path, rel: str) -> str:
    """The file as text; ReadError for a missing, empty, oversized or binary file."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ReadError(f"{rel}: {size} bytes, larger than {MAX_FILE_BYTES}; expected a UCR archive file")
        raw = path.read_bytes()
    except OSError as exc:
        raise ReadError(f"{rel}: cannot read: {exc.strerror or exc}") from exc
    if not raw.strip():
        raise ReadError(f"{rel}: empty file; expected one series per line")
    if b"\x00" in raw:
        raise ReadError(f"{rel}: binary content (NUL bytes); expected a text file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReadError(f"{rel}: not UTF-8 text at byte {exc.start}; expected a text file") from exc


def _checked_rows(
    parsed: _Parsed, rel: str
) -> Iterator[tuple[int, tuple[str, npt.NDArray[np.float32]] | str]]:
    """(row index, (normalised label, float32 values) or a rejection reason) for every row."""
    rows = parsed.rows
    expected = parsed.expected_length
    if expected is None and parsed.equal_length:
        lengths = [len(r.tokens) for r in rows if isinstance(r, _Row)]
        expected = _modal(lengths) if lengths else None
    problems = [r if isinstance(r, str) else _row_problem(r, rel, expected, parsed.classes) for r in rows]
    good = [r for r, problem in zip(rows, problems, strict=True) if problem is None and isinstance(r, _Row)]
    converted = iter(_to_floats(good, rel))
    for index, (row, problem) in enumerate(zip(rows, problems, strict=True)):
        if problem is not None or not isinstance(row, _Row):
            yield index, problem or ""
            continue
        values = next(converted)
        yield index, values if isinstance(values, str) else (normalise_label(row.label), values)


def _modal(lengths: Sequence[int]) -> int:
    """Most common length; ties go to the longer one so the choice is deterministic."""
    counts = Counter(lengths)
    return max(counts, key=lambda n: (counts[n], n))


def _row_problem(row: _Row, rel: str, expected: int | None, classes: frozenset[str] | None) -> str | None:
    if not row.tokens:
        return f"{rel}: line {row.line}: no values; expected a series of numbers"
    if not row.label.strip():
        return f"{rel}: line {row.line}: empty class label; expected a class"
    if expected is not None and len(row.tokens) != expected:
        return f"{rel}: line {row.line}: {len(row.tokens)} values; expected {expected}"
    if classes is not None and normalise_label(row.label) not in classes:
        declared = ",".join(sorted(classes))
        label = row.label.strip()
        return f"{rel}: line {row.line}: class {label!r} not in the declared classes {{{declared}}}"
    return None


def _to_floats(rows: list[_Row], rel: str) -> list[npt.NDArray[np.float32] | str]:
    """Each row's values as float32, or the reason a row has a non-numeric value.

    Rows are converted together (one numpy call per group of equal length); only when that
    fails are rows converted one by one to find the bad ones.
    """
    out: list[npt.NDArray[np.float32] | str] = [""] * len(rows)
    by_length: dict[int, list[int]] = {}
    for i, row in enumerate(rows):
        by_length.setdefault(len(row.tokens), []).append(i)
    for length, members in by_length.items():
        flat = [tok for i in members for tok in rows[i].tokens]
        try:
            block = _parse_tokens(flat).reshape(len(members), length)
        except ValueError:
            for i in members:
                out[i] = _row_floats(rows[i], rel)
            continue
        for j, i in enumerate(members):
            out[i] = block[j]
    return out


def _row_floats(row: _Row, rel: str) -> npt.NDArray[np.float32] | str:
    try:
        return _parse_tokens(row.tokens)
    except ValueError:
        for column, tok in enumerate(row.tokens, start=1):
            try:
                _parse_tokens([tok])
            except ValueError:
                where = f"{rel}: line {row.line}: value {column}"
                return f"{where} is {tok!r}, not a number; expected a finite number within float32 (or NaN)"
        return f"{rel}: line {row.line}: values are not numbers; expected numbers"


def _parse_tokens(tokens: list[str]) -> npt.NDArray[np.float32]:
    """Strings → float32 (``?`` and ``NaN`` → NaN); ValueError on anything non-numeric, on ``inf`` and
    on values beyond float32 (NaN is the only missing marker; an infinite sample is damage)."""
    if _MISSING_TOKEN in tokens:
        tokens = ["nan" if tok == _MISSING_TOKEN else tok for tok in tokens]
    values = np.array(tokens, dtype=np.float64)
    if np.isinf(values).any() or (np.abs(values[np.isfinite(values)]) > np.finfo(np.float32).max).any():
        raise ValueError("infinite or beyond the float32 range")
    return values.astype(np.float32)


# ---------------------------------------------------------------------- format parsers


def _data_lines(lines: list[str], start: int = 0) -> Iterator[tuple[int, str]]:
    """(1-based line number, stripped text) of non-blank lines from index ``start``."""
    for number, line in enumerate(lines[start:], start=start + 1):
        stripped = line.strip()
        if stripped:
            yield number, stripped


def _parse_txt(text: str, rel: str) -> _Parsed:
    parsed = _Parsed()
    for number, line in _data_lines(text.splitlines()):
        fields = line.split()
        parsed.rows.append(_Row(number, fields[0], fields[1:]))
    return parsed


def _parse_tsv(text: str, rel: str) -> _Parsed:
    parsed = _Parsed()
    for number, line in _data_lines(text.splitlines()):
        fields = [f.strip() for f in line.split("\t")]
        parsed.rows.append(_Row(number, fields[0], fields[1:]))
    return parsed


def _parse_arff(text: str, rel: str) -> _Parsed:
    lines = text.splitlines()
    attributes: list[tuple[str, str]] = []
    data_start = None
    for i, raw in enumerate(lines):
        line = raw.strip()
        low = line.lower()
        if not line or line.startswith("%"):
            continue
        if low.startswith("@attribute"):
            attributes.append(_arff_attribute(line, rel, i + 1))
        elif low.startswith("@data"):
            data_start = i + 1
            break
    if data_start is None or len(attributes) < 2:
        raise ReadError(f"{rel}: not an ARFF file; expected @attribute lines then @data")
    for number, (_, kind) in enumerate(attributes[:-1], start=1):
        if kind.lower() not in ("numeric", "real", "integer"):
            raise ReadError(f"{rel}: attribute {number} has type {kind!r}; expected numeric attributes")
    parsed = _Parsed(expected_length=len(attributes) - 1)
    class_kind = attributes[-1][1]
    if class_kind.startswith("{"):
        parsed.classes = frozenset(normalise_label(c) for c in class_kind.strip("{}").split(","))
    for number, line in _data_lines(lines, data_start):
        if line.startswith("%"):
            continue
        fields = [f.strip() for f in line.split(",")]
        parsed.rows.append(_Row(number, fields[-1], fields[:-1]))
    return parsed


def _arff_attribute(line: str, rel: str, number: int) -> tuple[str, str]:
    """(name, type) of an ``@attribute name type`` line; nominal types keep their braces."""
    rest = line[len("@attribute") :].strip()
    if rest.startswith(("'", '"')):
        quote = rest[0]
        end = rest.find(quote, 1)
        name, kind = rest[1:end], rest[end + 1 :].strip()
    else:
        parts = rest.split(None, 1)
        name, kind = parts[0], parts[1].strip() if len(parts) > 1 else ""
    if not kind:
        where = f"{rel}: line {number}: attribute {name!r}"
        raise ReadError(f"{where} has no type; expected '@attribute name type'")
    return name, kind


def _parse_ts(text: str, rel: str) -> _Parsed:
    lines = text.splitlines()
    parsed = _Parsed()
    data_start = None
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith("@"):
            raise ReadError(f"{rel}: line {i + 1}: data before @data; expected @ header lines first")
        key, _, value = line[1:].partition(" ")
        key, value = key.lower(), value.strip()
        if key == "data":
            data_start = i + 1
            break
        _apply_ts_header(parsed, key, value, rel, i + 1)
    if data_start is None:
        raise ReadError(f"{rel}: no @data line; expected an sktime .ts file")
    for number, line in _data_lines(lines, data_start):
        if line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) != 2:
            separators = len(parts) - 1
            parsed.rows.append(
                f"{rel}: line {number}: {separators} ':' separators; expected 'values:label' (univariate)"
            )
            continue
        values, label = parts
        parsed.rows.append(_Row(number, label, [v.strip() for v in values.split(",")] if values else []))
    return parsed


def _apply_ts_header(parsed: _Parsed, key: str, value: str, rel: str, number: int) -> None:
    low = value.lower()
    if key == "timestamps" and low == "true":
        raise ReadError(f"{rel}: line {number}: @timeStamps true is unsupported; expected plain values")
    if key == "univariate" and low == "false":
        raise ReadError(f"{rel}: line {number}: @univariate false; expected a univariate (single-lead) file")
    if key == "equallength":
        parsed.equal_length = low != "false"
    elif key == "serieslength" and value:
        if not value.isdigit():
            raise ReadError(f"{rel}: line {number}: @seriesLength {value!r}; expected an integer")
        parsed.expected_length = int(value)
    elif key == "classlabel" and low.startswith("true"):
        names = value.split()[1:]
        parsed.classes = frozenset(normalise_label(n) for n in names) if names else None
    if not parsed.equal_length:
        parsed.expected_length = None


_PARSERS = {"txt": _parse_txt, "tsv": _parse_tsv, "arff": _parse_arff, "ts": _parse_ts}
