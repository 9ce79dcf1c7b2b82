"""CODE exam tables: the CSV of exams, its rows, and what a row says (labels, patient, age, sex).

Labels: a diagnosis column becomes ``RawLabel(<column name>)`` when its value is 1 (``1``,
``1.0``, ``True``); 0/False/empty mean absent; anything else rejects the exam. Exam ids compare
as integers when they are integers (:func:`norm_exam_id`).

May import: ``pipeline.core``; pandas, numpy.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from pipeline.core.records import RawLabel, ReadError

LABEL_COLUMNS = ("1dAVb", "RBBB", "LBBB", "SB", "ST", "AF")
HDF5_ID_COLUMNS = ("exam_id",)
WFDB_ID_COLUMNS = ("id_exam", "exam_id")
_TNMG = re.compile(r"^TNMG(?P<exam>\d+)_N\d+$")
_INTEGER = re.compile(r"^[+-]?\d+(?:\.0*)?$")
_TRUE = frozenset({"1", "1.0", "true", "t", "yes"})
_FALSE = frozenset({"0", "0.0", "false", "f", "no", ""})
_MAX_CSV_BYTES = 256 << 20  # CODE-15%'s exams.csv is ~30 MB; pandas needs several times the size


def norm_exam_id(text: str) -> str:
    """Exam ids compare as integers when they are integers (``"0042"``, ``"42.0"`` → ``"42"``)."""
    stripped = text.strip()
    if _INTEGER.match(stripped):
        return str(int(stripped.split(".")[0]))
    return stripped


def exam_id_of_record(record_name: str) -> str:
    """Exam id of a WFDB exam: the digits of ``TNMG<id>_N<k>``, else the record name."""
    match = _TNMG.match(record_name)
    return norm_exam_id(match["exam"] if match else record_name)


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
        import pandas as pd  # here: every ingest builds this reader, few read a CODE table (pandas ≈ 0.5 s)

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


def csv_row_extra(table: ExamTable | None, csv_error: str, exam_id: str) -> dict[str, str]:
    """The unit ``extra`` entries for a WFDB exam: its CSV row as JSON, or why there is none."""
    if table is None:
        return {"csv_error": csv_error}
    rows = table.rows(exam_id)
    if len(rows) != 1:
        found = "no row" if not rows else f"{len(rows)} rows"
        return {"csv_error": f"exam {exam_id} has {found} in {table.rel}; expected exactly one"}
    return {"csv_row": json.dumps(rows[0], sort_keys=True)}


def exam_labels(row: Mapping[str, str], csv_rel: str, exam: object) -> tuple[RawLabel, ...] | str:
    """Diagnosis columns set to 1 as RawLabels, or the reason a value is not 0/1."""
    labels = []
    for column in LABEL_COLUMNS:
        value = row.get(column, "").strip()
        if value.lower() in _TRUE:
            labels.append(RawLabel(column))
        elif value.lower() not in _FALSE:
            return f"{csv_rel}: exam {exam}: {column} = {value!r}; expected 0/1 or True/False"
    return tuple(labels)


def exam_patient(row: Mapping[str, str]) -> str | None:
    value = row.get("patient_id") or row.get("id_patient") or ""
    return norm_exam_id(value) or None


def exam_meta(row: Mapping[str, str], layout: str, exam: str) -> dict[str, str]:
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
