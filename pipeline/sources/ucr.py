"""UCR / UEA time-series archive files (e.g. ECG5000): one record per row.

Files are named ``<DATASET>_<SPLIT>.<ext>`` anywhere under the root (``ECG5000_TRAIN.txt``).
The four formats (``txt``, ``tsv``, ``arff``, ``ts``) and the rule that makes one class read the same
in every format are in :mod:`pipeline.sources.ucr_formats`.

The archive often ships one dataset+split in several of these formats with identical values,
so discovery keeps one file per dataset+split (the first format in ``prefer``) and rejects the
others as duplicates.

Each row becomes a ``(1, L)`` float32 record with lead ``"ECG"`` and ``meta["units"] ==
"normalised"``: UCR series are z-normalised and carry no units and no sampling rate
(``fs_hz`` is the reader option, None by default).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from pipeline.core.records import Discovery, InputUnit, Provenance, RawLabel, ReadError, Record, Rejection
from pipeline.sources.base import SourceReader, list_files
from pipeline.sources.options import UCR_FORMATS, UcrOptions
from pipeline.sources.ucr_formats import PARSERS, Parsed, Row, normalise_label

__all__ = ["FORMATS", "MAX_FILE_BYTES", "UcrReader", "normalise_label"]

FORMATS = UCR_FORMATS
_NAME = re.compile(r"^(?P<dataset>.+)_(?P<split>[^_]+)\.(?P<ext>[A-Za-z]+)$")
_MISSING_TOKEN = "?"
# The largest univariate UCR files are tens of MB; parsing holds several copies of the text.
MAX_FILE_BYTES = 256 << 20


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
        parsed = PARSERS[ext](text, rel)
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
    parsed: Parsed, rel: str
) -> Iterator[tuple[int, tuple[str, npt.NDArray[np.float32]] | str]]:
    """(row index, (normalised label, float32 values) or a rejection reason) for every row."""
    rows = parsed.rows
    expected = parsed.expected_length
    if expected is None and parsed.equal_length:
        lengths = [len(r.tokens) for r in rows if isinstance(r, Row)]
        expected = _modal(lengths) if lengths else None
    problems = [r if isinstance(r, str) else _row_problem(r, rel, expected, parsed.classes) for r in rows]
    good = [r for r, problem in zip(rows, problems, strict=True) if problem is None and isinstance(r, Row)]
    converted = iter(_to_floats(good, rel))
    for index, (row, problem) in enumerate(zip(rows, problems, strict=True)):
        if problem is not None or not isinstance(row, Row):
            yield index, problem or ""
            continue
        values = next(converted)
        yield index, values if isinstance(values, str) else (normalise_label(row.label), values)


def _modal(lengths: Sequence[int]) -> int:
    """Most common length; ties go to the longer one so the choice is deterministic."""
    counts = Counter(lengths)
    return max(counts, key=lambda n: (counts[n], n))


def _row_problem(row: Row, rel: str, expected: int | None, classes: frozenset[str] | None) -> str | None:
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


def _to_floats(rows: list[Row], rel: str) -> list[npt.NDArray[np.float32] | str]:
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


def _row_floats(row: Row, rel: str) -> npt.NDArray[np.float32] | str:
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
