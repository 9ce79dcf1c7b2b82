"""The four UCR / UEA archive file formats, parsed into rows of (class label, value tokens).

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

Class labels are normalised so that one class reads the same in every format: a label that
parses as an integral number is written as that integer (``1``, ``1.0``, ``1.0000000e+00`` and
``'1'`` all read ``1``); another number is written in shortest round-trip form (``0.50`` reads
``0.5``); anything else (``normal``) is kept as stated, without surrounding quotes or spaces.

May import: ``pipeline.core``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

from pipeline.core.records import ReadError


@dataclass
class Row:
    """One data line: its 1-based line number, class label and value tokens."""

    line: int
    label: str
    tokens: list[str]


@dataclass
class Parsed:
    """A parsed file: its data rows, per-row problems found while splitting, and header facts.

    ``expected_length`` is the declared series length (ARFF attribute count, ``.ts``
    ``@seriesLength``) or None to use the file's modal length; ``classes`` is the declared
    class set, or None when the file declares none.
    """

    rows: list[Row | str] = field(default_factory=list)  # a str is a reason the line was bad
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


def _data_lines(lines: list[str], start: int = 0) -> Iterator[tuple[int, str]]:
    """(1-based line number, stripped text) of non-blank lines from index ``start``."""
    for number, line in enumerate(lines[start:], start=start + 1):
        stripped = line.strip()
        if stripped:
            yield number, stripped


def _parse_txt(text: str, rel: str) -> Parsed:
    parsed = Parsed()
    for number, line in _data_lines(text.splitlines()):
        fields = line.split()
        parsed.rows.append(Row(number, fields[0], fields[1:]))
    return parsed


def _parse_tsv(text: str, rel: str) -> Parsed:
    parsed = Parsed()
    for number, line in _data_lines(text.splitlines()):
        fields = [f.strip() for f in line.split("\t")]
        parsed.rows.append(Row(number, fields[0], fields[1:]))
    return parsed


def _parse_arff(text: str, rel: str) -> Parsed:
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
    parsed = Parsed(expected_length=len(attributes) - 1)
    class_kind = attributes[-1][1]
    if class_kind.startswith("{"):
        parsed.classes = frozenset(normalise_label(c) for c in class_kind.strip("{}").split(","))
    for number, line in _data_lines(lines, data_start):
        if line.startswith("%"):
            continue
        fields = [f.strip() for f in line.split(",")]
        parsed.rows.append(Row(number, fields[-1], fields[:-1]))
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


def _parse_ts(text: str, rel: str) -> Parsed:
    lines = text.splitlines()
    parsed = Parsed()
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
        parsed.rows.append(Row(number, label, [v.strip() for v in values.split(",")] if values else []))
    return parsed


def _apply_ts_header(parsed: Parsed, key: str, value: str, rel: str, number: int) -> None:
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


PARSERS = {"txt": _parse_txt, "tsv": _parse_tsv, "arff": _parse_arff, "ts": _parse_ts}
