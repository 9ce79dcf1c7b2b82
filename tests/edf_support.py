"""EDF/EDF+ files for the EDF reader tests and the malformed corpus: written by ``edfio`` (EDF and
EDF+ with annotations, :func:`write_edf`) and by wfdb-python's EDF writer (``wfdb_to_edf``, plain
EDF); damage no writer produces is patched into the header afterwards (:func:`patch_field`)."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import edfio
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


def write_edf(
    path: Path,
    signals: Sequence[EdfSignalSpec],
    n_records: int,
    record_s: float = 1.0,
    annotations: Sequence[tuple[float, float | None, str]] = (),
    plus: str | None = "EDF+C",
) -> None:
    """An EDF (``plus=None``) or EDF+ file written by ``edfio`` from digital values; ``plus`` other
    than ``EDF+C`` (``EDF+D``) is written into the reserved field afterwards (edfio writes EDF+C)."""
    edf_signals = [
        edfio.EdfSignal.from_digital(
            np.asarray(s.digital, dtype=np.int16),
            s.samples / record_s,
            label=s.label,
            physical_dimension=s.units,
            physical_range=s.physical,
            digital_range=s.digital_range,
        )
        for s in signals
    ]
    notes = [edfio.EdfAnnotation(onset, duration, text) for onset, duration, text in annotations]
    assert plus is not None or not notes, "plain EDF holds no annotations"
    edf = edfio.Edf(edf_signals, data_record_duration=record_s, annotations=notes if plus else None)
    assert edf.num_data_records == n_records, (edf.num_data_records, n_records)
    edf.write(path)
    if plus not in (None, "EDF+C"):
        patch_field(path, 192, 44, str(plus).encode())


def patch_field(path: Path, offset: int, width: int, value: bytes) -> None:
    """Overwrite one header field (space-padded) of an EDF file: damage the tests need and no
    writer produces."""
    raw = bytearray(path.read_bytes())
    raw[offset : offset + width] = value.ljust(width)
    path.write_bytes(bytes(raw))


# Per-signal header fields in file order with their widths; each is stored for all signals in turn.
_SIGNAL_FIELDS = {
    "label": 16,
    "transducer": 80,
    "units": 8,
    "physical_min": 8,
    "physical_max": 8,
    "digital_min": 8,
    "digital_max": 8,
    "prefiltering": 80,
    "samples": 8,
    "reserved": 32,
}


def signal_field(n_signals: int, field: str, index: int) -> tuple[int, int]:
    """(offset, width) of ``field`` of signal ``index`` (from 0) in a file of ``n_signals`` signals
    (the ``EDF Annotations`` signal included)."""
    offset = 256
    for name, width in _SIGNAL_FIELDS.items():
        if name == field:
            return offset + index * width, width
        offset += width * n_signals
    raise KeyError(field)


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
