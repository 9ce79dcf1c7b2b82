"""Builders of the documented CODE layouts shared by ``tests/test_reader_code*.py``: CODE-15% HDF5
parts + ``exams.csv`` (Layout A) and the helpers that read a CodeReader's output."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import numpy.typing as npt

from pipeline.core.records import InputUnit, Provenance, Record, Rejection
from pipeline.sources.code import CodeReader

EXAM_COLUMNS = [
    "exam_id",
    "age",
    "is_male",
    "nn_predicted_age",
    "1dAVb",
    "RBBB",
    "LBBB",
    "SB",
    "ST",
    "AF",
    "patient_id",
    "death",
    "timey",
    "normal_ecg",
    "trace_file",
]
LEAD_NAMES = ["DI", "DII", "DIII", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]
Array = npt.NDArray[np.float32]


# ---------------------------------------------------------------------- fixture builders


def tracing(seed: int, n_active: int, n_samples: int = 4096) -> Array:
    """One exam ``(n_samples, 12)``: ``n_active`` non-zero samples centred in zero padding."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n_samples, 12), dtype=np.float32)
    pad = (n_samples - n_active) // 2
    out[pad : pad + n_active] = rng.uniform(0.1, 3.0, size=(n_active, 12)).astype(np.float32)
    return out


def write_part(path: Path, exam_ids: Sequence[int], tracings: Array) -> None:
    with h5py.File(path, "w") as handle:
        handle.create_dataset("tracings", data=tracings.astype(np.float32))
        handle.create_dataset("exam_id", data=np.asarray(exam_ids, dtype=np.int64))


def exam_row(
    exam_id: int, patient: int, labels: Sequence[str] = (), part: str = "exams_part0.hdf5"
) -> dict[str, str]:
    row = dict.fromkeys(("1dAVb", "RBBB", "LBBB", "SB", "ST", "AF"), "False")
    row.update(dict.fromkeys(labels, "True"))
    row.update(
        exam_id=str(exam_id),
        age=str(40 + exam_id % 50),
        is_male="True" if exam_id % 2 else "False",
        nn_predicted_age="51.3",
        patient_id=str(patient),
        death="",
        timey="",
        normal_ecg="False" if labels else "True",
        trace_file=part,
    )
    return row


def write_csv(path: Path, rows: list[dict[str, str]], columns: Sequence[str] = EXAM_COLUMNS) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def make_code15(tmp_path: Path) -> Path:
    """Two parts: part0 exams 101 (7 s), 102, 103 (10 s) + padding 0; part1 exams 201, 202 + 0."""
    root = tmp_path / "code15"
    root.mkdir()
    part0 = np.stack([tracing(1, 2800), tracing(2, 4000), tracing(3, 4000), np.zeros((4096, 12))])
    part1 = np.stack([tracing(4, 4000), tracing(5, 2800), np.zeros((4096, 12))])
    write_part(root / "exams_part0.hdf5", [101, 102, 103, 0], part0.astype(np.float32))
    write_part(root / "exams_part1.hdf5", [201, 202, 0], part1.astype(np.float32))
    rows = [
        exam_row(101, 9001, ["1dAVb"]),
        exam_row(102, 9001, ["RBBB", "AF"]),
        exam_row(103, 9002),
        exam_row(201, 9003, part="exams_part1.hdf5"),
        exam_row(202, 9004, ["ST"], part="exams_part1.hdf5"),
        exam_row(999, 9005, ["SB"], part="exams_part9.hdf5"),  # exam in a part not downloaded
    ]
    write_csv(root / "exams.csv", rows)
    return root


def read_unit(reader: CodeReader, unit: InputUnit) -> list[Record | Rejection]:
    return list(reader.read(unit, Provenance(tuple((f, "") for f in unit.files), reader.reader_id)))


def read_all(reader: CodeReader) -> list[Record | Rejection]:
    return [item for unit in reader.discover().units for item in read_unit(reader, unit)]


def records_by_id(items: list[Record | Rejection]) -> dict[str, Record]:
    return {item.record_id: item for item in items if isinstance(item, Record)}


def rejections_by_item(items: list[Record | Rejection]) -> dict[str, Rejection]:
    return {item.item: item for item in items if isinstance(item, Rejection)}


def unit_named(reader: CodeReader, key: str) -> InputUnit:
    return next(u for u in reader.discover().units if u.key == key)


def stored_tracing(root: Path, part: str, row: int) -> Array:
    with h5py.File(root / part, "r") as handle:
        return np.asarray(handle["tracings"][row], dtype=np.float32)
