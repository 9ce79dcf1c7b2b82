"""Shared helpers of the security tests: observing which files a process opens, reading every unit."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from pipeline.core.records import Discovery, Provenance, ReadError, Record, Rejection
from pipeline.sources.base import SourceReader
from pipeline.sources.code import LABEL_COLUMNS

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# --------------------------------------------------------------------------- observing opens

_RECORDERS: list[list[tuple[str, object, object]]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _RECORDERS and isinstance(args[0], str | bytes | os.PathLike):
        path = os.fsdecode(args[0])
        for recorder in _RECORDERS:
            recorder.append((os.path.realpath(path), args[1], args[2]))


# Audit hooks cannot be removed; this one only appends while a recorder is active.
sys.addaudithook(_audit)


@contextmanager
def recorded_opens(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, object, object]]]:
    """(real path, mode, flags) of every file opened in this process inside the block, HDF5 included."""
    opened: list[tuple[str, object, object]] = []
    real_file = h5py.File

    def spy(name: Any, mode: str = "r", *args: Any, **kwargs: Any) -> h5py.File:
        if isinstance(name, str | os.PathLike):
            opened.append((os.path.realpath(os.fspath(name)), f"h5py:{mode}", None))
        return real_file(name, mode, *args, **kwargs)

    monkeypatch.setattr(h5py, "File", spy)
    _RECORDERS.append(opened)
    try:
        yield opened
    finally:
        _RECORDERS.remove(opened)
        monkeypatch.setattr(h5py, "File", real_file)


def opened_under(opened: list[tuple[str, object, object]], folder: Path) -> list[str]:
    base = os.path.realpath(folder) + os.sep
    return sorted({path for path, _, _ in opened if path.startswith(base)})


def read_all(reader: SourceReader, disc: Discovery) -> tuple[list[Record], dict[str, str]]:
    """Records of every unit, and unit key → ReadError/Rejection reason for the rest."""
    records: list[Record] = []
    reasons: dict[str, str] = {}
    for unit in disc.units:
        prov = Provenance(files=tuple((f, "0" * 64) for f in unit.files), reader=reader.reader_id)
        try:
            for item in reader.read(unit, prov):
                if isinstance(item, Rejection):
                    reasons[item.item] = item.reason
                else:
                    records.append(item)
        except ReadError as exc:
            reasons[unit.key] = str(exc)
    return records, reasons


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path → sha256 of every file under ``root``; empty folders appear as ``<dir>``."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif path.is_dir() and not any(path.iterdir()):
            out[rel] = "<dir>"
    return out


def code15_part(root: Path, name: str, exam_ids: list[int]) -> Path:
    """A CODE-15% HDF5 part ``name``: random ``tracings (N, 4096, 12)`` and ``exam_id (N,)``."""
    path = root / name
    with h5py.File(path, "w") as fh:
        rng = np.random.default_rng(0)
        tracings = rng.standard_normal((len(exam_ids), 4096, 12)).astype(np.float32)
        fh.create_dataset("tracings", data=tracings)
        fh.create_dataset("exam_id", data=np.asarray(exam_ids, dtype=np.int64))
    return path


def exams_csv(path: Path, rows: list[tuple[int, str]]) -> None:
    """A CODE ``exams.csv`` of (exam_id, trace_file) rows with fixed labels."""
    header = ["exam_id", "age", "is_male", *LABEL_COLUMNS, "patient_id", "trace_file"]
    lines = [",".join(header)]
    for exam, trace_file in rows:
        lines.append(",".join([str(exam), "60", "True", "1", "0", "0", "0", "0", "0", str(exam), trace_file]))
    path.write_text("\n".join(lines) + "\n")
