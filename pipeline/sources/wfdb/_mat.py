"""The one MATLAB v4 check for ``.mat`` signal files (CinC 2017/2020/2021: WFDB format ``16+24``
behind a MAT v4 header), used by the readers and by the landing check.

WFDB reads such a file as format 16 behind the header's byte offset, so the MAT header must agree:
a real little-endian int16 matrix whose data starts exactly at that offset, holding exactly the
header's samples. A MATLAB v5 file or a matrix of another type would otherwise decode silently
into garbage. Private: import the names from :mod:`pipeline.sources.wfdb`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.records import ReadError

MAT4_HEADER = struct.Struct("<5i")  # type, rows, cols, imaginary flag, name length
MAT4_INT16 = 30  # MAT v4 type code: little-endian, full matrix, int16
_MAT4_INT16_P = 3  # the type code's precision digit P: 3 = int16
_MAX_MAT_NAME = 64


class MatV4Error(ReadError):
    """A ``.mat`` signal file that disagrees with its WFDB header; ``arriving`` when more bytes
    could still make it whole (a header or matrix not written yet), so a landing check waits."""

    def __init__(self, message: str, *, arriving: bool = False) -> None:
        super().__init__(message)
        self.arriving = arriving


@dataclass(frozen=True)
class MatLayout:
    """How the WFDB header reads one ``.mat`` file: format, byte offset, samples per frame
    (summed over the file's signals) and samples per signal (None when the header gives none)."""

    rel: str
    fmt: str
    byte_offset: int
    frame_width: int
    n_samples: int | None


def check_mat_v4(path: Path, layout: MatLayout, size: int) -> int | None:
    """Samples per signal the MAT v4 matrix holds; None when the header does not read the file as a
    MAT matrix (format 16 with no offset, or another format over something else).

    Raises :class:`MatV4Error` naming ``layout.rel`` when the file is not what the header says.
    """
    with path.open("rb") as fh:
        head = fh.read(MAT4_HEADER.size + _MAX_MAT_NAME)
    rel = layout.rel
    if head.startswith(b"MATLAB"):
        raise MatV4Error(f"{rel}: MATLAB v5 file; expected a MATLAB v4 int16 matrix (as in CinC data)")
    if layout.fmt != "16" or layout.byte_offset <= 0:
        _check_other_format(head, layout)
        return None
    if len(head) < MAT4_HEADER.size:
        raise MatV4Error(f"{rel}: {size:,} bytes, MAT v4 header not written yet", arriving=True)
    mopt, rows, cols, imag, name_len = (int(v) for v in MAT4_HEADER.unpack_from(head))
    problem = _header_problem(mopt, rows, cols, imag, name_len, layout.byte_offset)
    if problem:
        raise MatV4Error(f"{rel}: {problem}")
    return _matrix_samples(layout, rows, cols, size, MAT4_HEADER.size + name_len)


def _check_other_format(head: bytes, layout: MatLayout) -> None:
    """An int16 MAT matrix read as another format decodes into garbage: refuse it."""
    if len(head) < MAT4_HEADER.size:
        return
    mopt, _, _, _, name_len = MAT4_HEADER.unpack_from(head)
    if layout.fmt != "16" and mopt == MAT4_INT16 and layout.byte_offset == MAT4_HEADER.size + name_len:
        raise MatV4Error(
            f"{layout.rel}: MAT v4 int16 matrix but the header reads it as format {layout.fmt}; "
            "expected format 16"
        )


def _header_problem(
    mopt: int, rows: int, cols: int, imag: int, name_len: int, byte_offset: int
) -> str | None:
    """What is wrong with a MAT v4 header read as format 16 behind ``byte_offset``."""
    machine, precision, matrix_type = mopt // 1000, mopt // 10 % 10, mopt % 10
    if mopt < 0 or machine != 0 or precision != _MAT4_INT16_P or matrix_type != 0 or imag:
        imaginary = " with an imaginary part" if imag else ""
        return f"MAT v4 type code {mopt}{imaginary}; expected {MAT4_INT16} (real little-endian int16 matrix)"
    if not 0 < name_len <= _MAX_MAT_NAME or rows < 0 or cols < 0:
        return f"MAT v4 header has rows {rows}, cols {cols}, name length {name_len}; expected a plain matrix"
    data_start = MAT4_HEADER.size + name_len
    if data_start != byte_offset:
        return f"MAT v4 data starts at byte {data_start}; the header's format says +{byte_offset}"
    return None


def _matrix_samples(layout: MatLayout, rows: int, cols: int, size: int, data_start: int) -> int:
    rel = layout.rel
    mat_size = data_start + 2 * rows * cols
    if size < mat_size:
        raise MatV4Error(
            f"{rel}: {size:,} of {mat_size:,} bytes its MAT v4 header implies (int16 {rows} x {cols})",
            arriving=True,
        )
    if rows * cols % layout.frame_width:
        raise MatV4Error(
            f"{rel}: MAT v4 matrix {rows} x {cols} is not a whole number of "
            f"{layout.frame_width}-sample frames"
        )
    mat_samples = rows * cols // layout.frame_width
    if layout.n_samples is not None and mat_samples != layout.n_samples:
        raise MatV4Error(
            f"{rel}: MAT v4 matrix {rows} x {cols} holds {mat_samples:,} samples per signal; "
            f"the header declares {layout.n_samples:,}"
        )
    return mat_samples
