"""Helpers of the WFDB-folder reader tests (``tests/test_reader_wfdb_folder*.py``): reading a unit,
what discovery accounted for, wfdb-python's view of a record, and building records by hand."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import wfdb

from pipeline.core.records import Discovery, InputUnit, Provenance, Record, Rejection
from pipeline.sources.wfdb_folder import WfdbFolderReader
from pipeline.sources.windows import BEAT_SYMBOLS

CPSC_PATIENT = r"data_(\d+)_\d+"


def provenance_of(unit: InputUnit) -> Provenance:
    return Provenance(files=tuple((f, "0" * 64) for f in unit.files), reader="wfdb@test")


def read_all(reader: WfdbFolderReader, unit: InputUnit) -> list[Record | Rejection]:
    return list(reader.read(unit, provenance_of(unit)))


def records_of(items: Iterable[Record | Rejection]) -> list[Record]:
    out = []
    for item in items:
        assert isinstance(item, Record), item
        out.append(item)
    return out


def unit_named(discovery: Discovery, key: str) -> InputUnit:
    return next(u for u in discovery.units if u.key == key)


def accounted_files(discovery: Discovery) -> list[str]:
    files = [f for u in discovery.units for f in u.files]
    files += list(discovery.metadata_files)
    files += [f for r in discovery.rejected for f in r.files]
    return sorted(files)


def wfdb_physical(record_path: Path) -> npt.NDArray[np.float32]:
    """wfdb's own decoding, ``(C, T)`` float32 in the header's units."""
    rec = wfdb.rdrecord(str(record_path))
    return np.asarray(rec.p_signal, dtype=np.float64).T.astype(np.float32)


def expected_window_labels(ann: wfdb.Annotation, start: int, stop: int, extra: tuple[str, ...]) -> list[str]:
    """Oracle written independently of ``windows.py``: a plain scan over ``rdann`` output."""
    beats: list[str] = []
    rhythms: list[str] = []
    current: str | None = None
    for sample, symbol, aux in zip(ann.sample, ann.symbol, ann.aux_note, strict=True):
        note = (aux or "").rstrip("\x00")
        if symbol == "+" and note:
            if sample <= start:
                current = note
            elif sample < stop:
                rhythms.append(note)
        elif symbol in BEAT_SYMBOLS and start <= sample < stop:
            beats.append(symbol)
    ordered = beats + ([current] if current else []) + rhythms + list(extra)
    return list(dict.fromkeys(ordered))


def copy_records(src: Path, dst: Path, names: Iterable[str]) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for name in names:
        for f in src.glob(f"{name}.*"):
            shutil.copy(f, dst / f.name)
            (dst / f.name).chmod(0o644)


def write_record(folder: Path, name: str, digital: npt.NDArray[np.int16], lines: list[str]) -> None:
    """A format-16 record: ``digital`` is ``(C, T)``; ``lines`` are the signal lines' tails."""
    folder.mkdir(parents=True, exist_ok=True)
    n_sig, n = digital.shape
    header = [f"{name} {n_sig} 100 {n}"] + [f"{name}.dat 16 {tail}" for tail in lines]
    (folder / f"{name}.hea").write_text("\n".join(header) + "\n")
    digital.T.astype("<i2").tofile(folder / f"{name}.dat")


# ------------------------------------------------------------------ CPSC 2021
