"""CODE-15% HDF5 parts: the datasets' checks, block reads and the padding span of each exam.

A part holds ``tracings`` float32 ``(N, 4096, 12)`` (exam, sample, lead; leads ``DI, DII, DIII,
AVR, AVL, AVF, V1..V6``; 400 Hz) and ``exam_id`` ``(N,)``; see :mod:`pipeline.sources.code` for
the layout.

Units of the HDF5 tracings. The READMEs (automatic-ecg-diagnosis, ecg-age-prediction) say
"represented ... at the scale 1e-4V: so if the signal is in V it should be multiplied by
1000", which contradicts itself (V x 1000 is mV). antonior92/ecg-preprocessing states that
CODE-15% and SaMi-Trop were produced by ``generate_h5.py --scale 2`` applied to WFDB physical
signals (mV), i.e. stored value = 2 x mV, and an independent comparison of amplitude
distributions against other mV datasets (ecg-age-prediction issue #5) found the same factor
0.5. The PhysioNet Challenge 2025 conversion instead wrote the values unchanged as mV. The
reader multiplies by ``hdf5_scale_to_mv`` (default 0.5, the documented generation factor);
set it to 1.0 to follow the Challenge convention.

May import: ``pipeline.core``, ``pipeline.sources.code_table``; numpy, h5py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import h5py
import numpy as np
import numpy.typing as npt

from pipeline.core.leads import canonical_lead
from pipeline.core.records import Provenance, ReadError
from pipeline.sources.code_table import ExamTable

HDF5_LEADS = ("DI", "DII", "DIII", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6")
N_LEADS = len(HDF5_LEADS)
_SOURCE_LEADS = {"di": "I", "dii": "II", "diii": "III"}
# An HDF5 dataset may claim a shape its file never stores (unwritten chunks read as the fill value,
# or chunks compressed beyond any real ECG). Believing the claim allocates without bound, so the
# stored bytes times this must cover the claimed ones; real float32 ECG compresses a few-fold.
_MAX_COMPRESSION = 100
BLOCK_BYTES = 256 << 20  # float32 tracings read at once, whatever the samples per exam

FloatBlock = npt.NDArray[np.float32]


def canonical_code_lead(name: str) -> str:
    """CODE lead names (``DI``, ``DII``, ``DIII``, ``AVR`` ...) as canonical names (``I``, ``aVR``)."""
    return _SOURCE_LEADS.get(name.strip().lower(), canonical_lead(name))


LEADS = tuple(canonical_code_lead(n) for n in HDF5_LEADS)


def iter_blocks(n: int, size: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of consecutive blocks of at most ``size`` items covering ``range(n)``."""
    for start in range(0, n, size):
        yield start, min(start + size, n)


def active_span(block: FloatBlock) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per exam of a ``(B, T, 12)`` block: first non-padding sample and number of samples.

    The span runs from the first to the last sample where any lead is non-zero; an all-zero
    exam gives ``(0, 0)``.
    """
    nonzero = np.any(block != 0, axis=2)
    present = nonzero.any(axis=1)
    n_samples = block.shape[1]
    first = np.where(present, nonzero.argmax(axis=1), 0).astype(np.int64)
    last = np.where(present, n_samples - 1 - nonzero[:, ::-1].argmax(axis=1), -1).astype(np.int64)
    return first, last - first + 1


@dataclass
class Part:
    """State of one HDF5 part while it is read: its exam ids and what was seen so far."""

    rel: str
    table: ExamTable
    ids: npt.NDArray[np.int64]
    provenance: Provenance
    seen: set[int] = field(default_factory=set)
    targets: dict[str, str | ReadError] = field(default_factory=dict)  # trace_file → file or error


def hdf5_exam_ids(path: Path) -> list[int]:
    """The ``exam_id`` dataset for discovery; empty when unreadable (``read`` reports why)."""
    try:
        with h5py.File(path, "r") as handle:
            data = handle.get("exam_id")
            if not isinstance(data, h5py.Dataset) or data.ndim != 1 or data.dtype.kind not in "iu":
                return []
            if _unstored(data) is not None:
                return []
            return [int(i) for i in np.asarray(data[()], dtype=np.int64)]
    except (OSError, ValueError, TypeError):
        return []


def checked_datasets(handle: h5py.File, rel: str) -> tuple[h5py.Dataset, h5py.Dataset]:
    """``tracings`` ``(N, T, 12)`` float and ``exam_id`` ``(N,)`` integer, else ReadError."""
    tracings = handle.get("tracings")
    expected = f"(N, 4096, {N_LEADS}) floats"
    if not isinstance(tracings, h5py.Dataset):
        raise ReadError(f"{rel}: no dataset 'tracings'; expected {expected}")
    if tracings.ndim != 3 or tracings.shape[2] != N_LEADS or tracings.shape[1] < 1:
        raise ReadError(f"{rel}: dataset 'tracings' has shape {tracings.shape}; expected {expected}")
    if tracings.dtype.kind != "f":
        raise ReadError(f"{rel}: dataset 'tracings' has dtype {tracings.dtype}; expected {expected}")
    exam_ids = handle.get("exam_id")
    n = tracings.shape[0]
    if not isinstance(exam_ids, h5py.Dataset):
        raise ReadError(f"{rel}: no dataset 'exam_id'; expected ({n},) integers matching 'tracings'")
    if exam_ids.shape != (n,) or exam_ids.dtype.kind not in "iu":
        raise ReadError(
            f"{rel}: dataset 'exam_id' has shape {exam_ids.shape} dtype {exam_ids.dtype}; "
            f"expected ({n},) integers matching 'tracings' {tracings.shape}"
        )
    for name, dataset in (("tracings", tracings), ("exam_id", exam_ids)):
        problem = _unstored(dataset)
        if problem is not None:
            raise ReadError(f"{rel}: dataset {name!r} {problem}")
    return tracings, exam_ids


def _unstored(dataset: h5py.Dataset) -> str | None:
    """Why a dataset's shape claims more data than its file stores, or None."""
    claimed = int(dataset.size) * dataset.dtype.itemsize
    stored = int(dataset.id.get_storage_size())
    if claimed <= stored * _MAX_COMPRESSION:
        return None
    return (
        f"claims {claimed} bytes {dataset.shape} but the file stores {stored} bytes of it; expected "
        f"the data itself (at most {_MAX_COMPRESSION}x compressed)"
    )


def exam_row(part: Part, exam: str, confine: Callable[[str], str]) -> dict[str, str] | str:
    """The exam's single CSV row, or why it cannot be used (missing, repeated, bad trace_file).

    ``confine`` maps a root-relative path to its normalised form, raising ReadError when it
    leaves the source root.
    """
    table, rel = part.table, part.rel
    rows = table.rows(exam)
    if len(rows) != 1:
        found = "no row" if not rows else f"{len(rows)} rows"
        return f"{rel}: exam_id {exam} has {found} in {table.rel}; expected exactly one"
    row = rows[0]
    trace_file = row.get("trace_file", "")
    if not trace_file:
        return row
    if trace_file not in part.targets:
        part.targets[trace_file] = _trace_target(table.rel, trace_file, confine)
    named = part.targets[trace_file]
    if isinstance(named, ReadError):
        return f"{table.rel}: exam_id {exam}: trace_file {trace_file!r} rejected: {named}"
    if named != rel:
        return f"{table.rel}: exam_id {exam}: trace_file names {named} but the exam is in {rel}"
    return row


def _trace_target(csv_rel: str, trace_file: str, confine: Callable[[str], str]) -> str | ReadError:
    """The file a ``trace_file`` value names (relative to the CSV's folder), or why it is refused."""
    if "\x00" in trace_file:
        return ReadError(f"{trace_file!r} contains a NUL byte; expected a path relative to the CSV")
    try:
        return confine((PurePosixPath(csv_rel).parent / trace_file).as_posix())
    except ReadError as exc:
        return exc
