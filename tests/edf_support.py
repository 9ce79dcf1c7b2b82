"""EDF/EDF+ files for the EDF reader tests and the malformed corpus: written by wfdb-python's EDF
writer (``wfdb_to_edf``, plain EDF) and, for EDF+ annotations (which no installed library writes),
by :func:`write_edf` below, which follows the EDF+ specification field by field."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import wfdb
from wfdb.io.convert.edf import wfdb_to_edf


@dataclass(frozen=True)
class EdfSignalSpec:
    """One signal to write: ``digital`` holds ``n_records * samples`` int16 values."""

    label: str
    units: str
    samples: int  # per data record
    digital: npt.NDArray[np.int16]
    physical: tuple[float, float] = (-3.2768, 3.2767)
    digital_range: tuple[int, int] = (-32768, 32767)


def _field(value: object, width: int) -> bytes:
    text = str(value).encode("latin-1")
    assert len(text) <= width, (value, width)
    return text.ljust(width)


def _tal(onset: float, duration: float | None, texts: Sequence[str]) -> bytes:
    head = f"+{onset:g}" + (f"\x15{duration:g}" if duration is not None else "")
    return head.encode() + b"\x14" + b"".join(t.encode("utf-8") + b"\x14" for t in texts) + b"\x00"


def write_edf(
    path: Path,
    signals: Sequence[EdfSignalSpec],
    n_records: int,
    record_s: float = 1.0,
    annotations: Sequence[tuple[float, float | None, str]] = (),
    plus: str | None = "EDF+C",
    annotation_bytes: int = 120,
) -> None:
    """An EDF (``plus=None``) or EDF+ file; annotations go into the first data record's TAL list."""
    specs = list(signals)
    if plus is not None:
        tals = [_tal(0, None, [])] + [_tal(o, d, [t]) for o, d, t in annotations]
        blob = b"".join(tals)
        assert len(blob) <= annotation_bytes, "annotations do not fit the first data record"
        first = np.frombuffer(blob.ljust(annotation_bytes, b"\x00"), dtype="<i2")
        rest = [
            np.frombuffer(_tal(k * record_s, None, []).ljust(annotation_bytes, b"\x00"), "<i2")
            for k in range(1, n_records)
        ]
        digital = np.concatenate([first, *rest]).astype(np.int16)
        specs.append(EdfSignalSpec(ANNOTATIONS, "", annotation_bytes // 2, digital, (-1, 1)))
    ns = len(specs)
    header = b"0".ljust(8) + _field("X X X X", 80) + _field("Startdate 01-JAN-2020 X X X", 80)
    header += b"01.01.20" + b"00.00.00" + _field(256 * (ns + 1), 8) + _field(plus or "", 44)
    header += _field(n_records, 8) + _field(f"{record_s:g}", 8) + _field(ns, 4)
    columns: list[list[str | int]] = [
        [s.label for s in specs],
        ["" for _ in specs],
        [s.units for s in specs],
        [f"{s.physical[0]:g}" for s in specs],
        [f"{s.physical[1]:g}" for s in specs],
        [s.digital_range[0] for s in specs],
        [s.digital_range[1] for s in specs],
        ["" for _ in specs],
        [s.samples for s in specs],
        ["" for _ in specs],
    ]
    widths = (16, 80, 8, 8, 8, 8, 8, 80, 8, 32)
    for column, width in zip(columns, widths, strict=True):
        header += b"".join(_field(v, width) for v in column)
    blocks = []
    for k in range(n_records):
        for s in specs:
            blocks.append(np.asarray(s.digital[k * s.samples : (k + 1) * s.samples], dtype="<i2").tobytes())
    path.write_bytes(header + b"".join(blocks))


ANNOTATIONS = "EDF Annotations"


@contextlib.contextmanager
def _in(folder: Path) -> Iterator[None]:
    here = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(here)


def wfdb_written_edf(folder: Path, name: str = "mr") -> npt.NDArray[np.float64]:
    """``<name>.edf`` written by ``wfdb_to_edf`` from a WFDB record: ``II`` (mV, 4 samples per frame,
    500 Hz) beside ``RESP`` (``NU``, 125 Hz); returns II's 1000 samples in mV."""
    rng = np.random.default_rng(3)
    ecg = rng.integers(-3000, 3000, size=1000).astype(np.int64)
    resp = rng.integers(-300, 300, size=250).astype(np.int64)
    with _in(folder), contextlib.redirect_stdout(io.StringIO()):  # wfdb prints its progress
        wfdb.wrsamp(
            name,
            fs=125,
            units=["mV", "NU"],
            sig_name=["II", "RESP"],
            e_d_signal=[ecg, resp],
            samps_per_frame=[4, 1],
            fmt=["16", "16"],
            adc_gain=[1000.0, 100.0],
            baseline=[0, 0],
        )
        wfdb_to_edf(name, output_filename=f"{name}.edf")
        for suffix in (".hea", ".dat"):
            (folder / f"{name}{suffix}").unlink()
    return ecg / 1000.0
