"""The CODE-15% source ``code`` (a missing, label-less or oversized exam table is a structural error
of the whole source now, tested in tests/test_reader_code.py, not a corpus entry).

HDF5 parts ``tracings (N, 4096, 12)`` float32 (2 x mV at 400 Hz) + ``exam_id (N,)`` int64 and an
``exams.csv`` table, built from real PTB-XL 12-lead signals resampled to 400 Hz (no public CODE
sample exists).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import numpy.typing as npt
from scipy.signal import resample_poly

from tests.malformed.corpus import NAN_REASON, Corpus, Source, SourceSpec, csv_text
from tests.malformed.mutations import LINK_OUT_REASON
from tests.malformed.wfdb import Header

PART = "exams_part0.hdf5"

CODE_COLUMNS = (
    "exam_id", "age", "is_male", "nn_predicted_age", "1dAVb", "RBBB", "LBBB", "SB", "ST", "AF",
    "patient_id", "death", "timey", "normal_ecg", "trace_file",
)  # fmt: skip


def code_tracing(shared: Path, ecg_id: int) -> npt.NDArray[np.float32]:
    """A real PTB-XL 500 Hz 10 s record as a CODE-15% tracing ``(4096, 12)``: resampled to
    400 Hz (4000 samples), zero-padded 48 samples on each side, stored as 2 x mV."""
    folder = shared / "ptbxl" / "records500" / "00000"
    header = Header.parse((folder / f"{ecg_id:05d}_hr.hea").read_text())
    raw = np.frombuffer((folder / f"{ecg_id:05d}_hr.dat").read_bytes(), dtype="<i2")
    mv = raw.reshape(-1, len(header.signals)).astype(np.float64) / 1000.0
    x400 = resample_poly(mv, 4, 5, axis=0)
    out = np.zeros((4096, 12), dtype=np.float32)
    out[48 : 48 + x400.shape[0]] = (2.0 * x400).astype(np.float32)
    return out


def write_part(path: Path, exam_ids: Sequence[int], tracings: npt.NDArray[np.float32]) -> None:
    with h5py.File(path, "w") as handle:
        handle.create_dataset("tracings", data=tracings)
        handle.create_dataset("exam_id", data=np.asarray(exam_ids, dtype=np.int64))


def _exam_row(exam_id: int | str, **labels: str) -> dict[str, str]:
    row = dict.fromkeys(CODE_COLUMNS, "0")
    row.update(
        exam_id=str(exam_id), age="61", is_male="True", nn_predicted_age="58.2", patient_id=f"p{exam_id}"
    )
    row.update(death="False", timey="", normal_ecg="False", trace_file="exams_part0.hdf5")
    row.update(labels)
    return row


class _Code:
    """The ``code`` source under construction: the exams of its one part and its table rows."""

    def __init__(self, corpus: Corpus, shared: Path, rng: np.random.Generator) -> None:
        self.src = Source(corpus, SourceSpec("code", "code", "ecg12"), rng)
        self.real = [code_tracing(shared, i) for i in range(1, 9)]
        self.rows: list[dict[str, str]] = []
        self.ids: list[int] = []
        self.traces: list[npt.NDArray[np.float32]] = []

    def exam(self, exam_id: int, tracing: npt.NDArray[np.float32], row: dict[str, str] | None = None) -> None:
        self.ids.append(exam_id)
        self.traces.append(tracing)
        if row is not None:
            self.rows.append(row)

    def rejected(
        self,
        exam_id: int,
        category: str,
        label: str,
        reason: str,
        row: dict[str, str] | None,
        tracing: Any = None,
    ) -> None:
        """An exam in the part that must be quarantined (``tracing`` defaults to a good one)."""
        self.exam(exam_id, self.real[6] if tracing is None else tracing, row)
        record = self.src.record_id(str(exam_id))
        self.src.add(category, label, record, reason, [record])

    def good_exams(self) -> None:
        for i in range(6):
            row = _exam_row(1001 + i, AF="1" if i == 2 else "0", RBBB="1.0" if i == 3 else "0")
            self.exam(1001 + i, self.real[i], row)
            self.src.good.append(self.src.record_id(str(1001 + i)))

    def row_variants(self) -> None:
        """Good tracings whose table rows are missing, repeated, mislabelled or name other parts."""
        self.rejected(2001, "label", "no_csv_row", r"exam_id 2001 has no row", None)
        self.rows.append(_exam_row(2002))
        self.rejected(2002, "duplicate", "two_csv_rows", r"exam_id 2002 has 2 rows", _exam_row(2002))
        self.rejected(2003, "label", "label_value_2", r"AF = '2'; expected 0/1", _exam_row(2003, AF="2"))
        self.rejected(2004, "label", "label_value_text", r"SB = 'maybe'", _exam_row(2004, SB="maybe"))
        self.rejected(
            2005,
            "path_escape",
            "trace_file_escape",
            r"escapes the source root",
            _exam_row(2005, trace_file="../../outside/x.hdf5"),
        )
        self.rejected(
            2006,
            "path_escape",
            "trace_file_absolute",
            r"is absolute",
            _exam_row(2006, trace_file=str(self.src.corpus.outside / "x.hdf5")),
        )
        self.rejected(
            2007,
            "label",
            "trace_file_other_part",
            r"trace_file names exams_part9.hdf5",
            _exam_row(2007, trace_file="exams_part9.hdf5"),
        )

    def signal_variants(self) -> None:
        """Tracings with NaN, Inf or flat lines; a repeated exam id; the padding exam 0."""
        nan = self.real[6].copy()
        nan[:] = np.nan
        self.rejected(2008, "nan_inf", "all_nan", NAN_REASON, _exam_row(2008), nan)
        part_nan = self.real[6].copy()
        part_nan[48:1500] = np.nan
        self.rejected(2009, "nan_inf", "partly_nan", NAN_REASON, _exam_row(2009), part_nan)
        inf = self.real[6].copy()
        inf[100:900, 3] = np.inf
        self.rejected(2010, "nan_inf", "inf", NAN_REASON, _exam_row(2010), inf)
        flat = np.zeros((4096, 12), np.float32)
        self.rejected(2011, "flat", "all_zero", r"flat-line lead", _exam_row(2011), flat)
        self.exam(1001, self.real[7])  # the same exam id again in the part: the second is a duplicate
        reason = r"exam_id 1001 appears again at row \d+"
        self.src.add("duplicate", "exam_id_repeated", self.src.record_id("1001"), reason)
        self.exam(0, np.zeros((4096, 12), np.float32))  # the dataset padding every real part ends with


# Stands for an HDF5 group where a dataset belongs.
_GROUP = object()


def _shape_cases(
    small: npt.NDArray[np.float32], ok_ids: npt.NDArray[np.int64]
) -> list[tuple[str, str, dict[str, Any]]]:
    """(reason, label, datasets replacing the good ones) for parts with wrong shapes or dtypes."""
    return [
        (r"'tracings' has shape \(2, 49152\)", "tracings_2d", {"tracings": small.reshape(2, -1)}),
        (r"'tracings' has shape \(2, 4096, 8\)", "tracings_8_leads", {"tracings": small[:, :, :8]}),
        (
            r"'tracings' has shape \(2, 12, 4096\)",
            "tracings_leads_first",
            {"tracings": small.transpose(0, 2, 1)},
        ),
        (
            r"'tracings' has shape \(2, 0, 12\)",
            "tracings_no_samples",
            {"tracings": np.zeros((2, 0, 12), np.float32)},
        ),
        (r"'tracings' has dtype int16", "tracings_int16", {"tracings": (small * 1000).astype(np.int16)}),
        (r"'tracings' has shape \(2,\)", "tracings_strings", {"tracings": np.array([b"ecg", b"ecg"])}),
        (r"no dataset 'tracings'", "no_tracings", {"tracings": None}),
        (r"no dataset 'tracings'", "tracings_is_group", {"tracings": _GROUP}),
        (r"no dataset 'exam_id'", "no_exam_id", {"exam_id": None}),
        (r"'exam_id' has shape \(3,\)", "exam_id_too_long", {"exam_id": np.array([3001, 3002, 3003])}),
        (r"'exam_id' has shape \(2,\) dtype float64", "exam_id_float", {"exam_id": ok_ids.astype(float)}),
        (
            r"'exam_id' has shape \(2,\) dtype \|S4",
            "exam_id_strings",
            {"exam_id": np.array([b"3001", b"3002"])},
        ),
    ]


def _shape_variants(src: Source, small: npt.NDArray[np.float32], ok_ids: npt.NDArray[np.int64]) -> None:
    for reason, label, changes in _shape_cases(small, ok_ids):
        rel = f"exams_{label}.hdf5"
        with h5py.File(src.root / rel, "w") as handle:
            for name, data in {"tracings": small, "exam_id": ok_ids, **changes}.items():
                if data is _GROUP:
                    handle.create_group(name)
                elif data is not None:
                    handle.create_dataset(name, data=data)
        src.add("hdf5_shape", label, rel, reason)


def _bomb_variants(src: Source, ok_ids: npt.NDArray[np.int64]) -> None:
    """Datasets whose shape claims far more than the file stores: unwritten chunks read as the
    fill value, or zeros compressed a thousand-fold."""
    bombs: list[tuple[str, dict[str, Any], int]] = [
        (
            "claims_2e31_exams",
            {"tracings": (2**31, 4096, 12), "exam_id": (2**31,)},
            2**31 * (8 + 4096 * 12 * 4),
        ),
        ("claims_2e31_samples", {"tracings": (2, 2**31, 12)}, 2 * 2**31 * 12 * 4),
    ]
    for label, claims, claimed in bombs:
        rel = f"exams_{label}.hdf5"
        with h5py.File(src.root / rel, "w") as handle:
            handle.create_dataset(
                "tracings", shape=claims["tracings"], dtype=np.float32, chunks=(1, 4096, 12)
            )
            if "exam_id" in claims:
                handle.create_dataset("exam_id", shape=claims["exam_id"], dtype=np.int64, chunks=(4096,))
            else:
                handle.create_dataset("exam_id", data=ok_ids)
        src.add("alloc_bomb", label, rel, r"stores \d+ bytes", claimed_bytes=claimed)
    rel = "exams_zeros_compressed.hdf5"
    with h5py.File(src.root / rel, "w") as handle:
        zeros = np.zeros((2, 2**20, 12), np.float32)
        handle.create_dataset(
            "tracings", data=zeros, chunks=(1, 2**16, 12), compression="gzip", compression_opts=9
        )
        handle.create_dataset("exam_id", data=ok_ids)
    src.add("alloc_bomb", "zeros_compressed_1000x", rel, r"stores \d+ bytes", claimed_bytes=zeros.nbytes)


def _unit_variants(src: Source) -> None:
    """Parts that are not HDF5 at all, a part linked out of the root, a stray file."""

    def raw_unit(label: str, category: str, reason: str, data: bytes) -> None:
        rel = f"exams_{label}.hdf5"
        src.write(rel, data)
        src.add(category, label, rel, reason)

    whole = (src.root / PART).read_bytes()
    raw_unit("truncated_hdf5", "truncated", r"cannot open as HDF5", whole[: len(whole) // 2])
    raw_unit("empty_hdf5", "empty_file", r"cannot open as HDF5", b"")
    raw_unit("text_as_hdf5", "bad_encoding", r"cannot open as HDF5", b"exam_id,tracings\n1,2\n")
    src.link_outside("exams_linked_outside.hdf5", src.corpus.outside / "part.hdf5")
    src.add("path_escape", "part_symlink_outside", "exams_linked_outside.hdf5", LINK_OUT_REASON)
    src.write("notes.bin", b"\x00\x01binary")
    src.add("stray", "stray_binary", "notes.bin", r"not a CODE file")


def build_code(corpus: Corpus, shared: Path, rng: np.random.Generator) -> None:
    """Write the ``code`` source."""
    code = _Code(corpus, shared, rng)
    src = code.src
    code.good_exams()
    code.row_variants()
    code.signal_variants()
    write_part(src.root / PART, code.ids, np.stack(code.traces))
    small = np.stack(code.real[:2])
    ok_ids = np.array([3001, 3002], dtype=np.int64)
    _shape_variants(src, small, ok_ids)
    _bomb_variants(src, ok_ids)
    _unit_variants(src)
    src.write("exams.csv", csv_text(CODE_COLUMNS, code.rows))
