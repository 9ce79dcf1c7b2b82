"""Writers the demo sources share: per-record generators, class counts, WFDB format 16 and MATLAB
v4 files, CSV text. Sample values are int16 ADU at 1000 adu/mV."""

from __future__ import annotations

import csv
import io
import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from pipeline.core.records import FloatArray

_GAIN_ADU_PER_MV = 1000.0
MAINS_HZ = 50.0  # European mains, as in PTB-XL (recorded in Germany)
_SOURCE_INDEX = {"ptbxl": 0, "cinc2017": 1, "ucr": 2}


def record_rng(seed: int, source: str, *index: int) -> np.random.Generator:
    """Independent generator per (seed, source, index...), so records do not depend on order."""
    return np.random.default_rng([seed, _SOURCE_INDEX[source], *index])


def split_counts(n: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """Split ``n`` into integer counts proportional to ``fractions`` (largest remainder)."""
    total = sum(fractions.values())
    exact = {k: n * v / total for k, v in fractions.items()}
    counts = {k: int(math.floor(x)) for k, x in exact.items()}
    by_remainder = sorted(fractions, key=lambda k: (counts[k] - exact[k], list(fractions).index(k)))
    for k in by_remainder[: n - sum(counts.values())]:
        counts[k] += 1
    return counts


def shuffled_labels(rng: np.random.Generator, counts: Mapping[str, int]) -> list[str]:
    labels = [k for k, c in counts.items() for _ in range(c)]
    return [labels[i] for i in rng.permutation(len(labels))]


def to_adu(signal_mv: FloatArray | npt.NDArray[np.float64]) -> npt.NDArray[np.int16]:
    """mV → int16 at 1000 adu/mV; -32768 is WFDB's missing-sample code, so it is never written."""
    adu = np.round(np.asarray(signal_mv, dtype=np.float64) * _GAIN_ADU_PER_MV)
    return np.clip(adu, -32767, 32767).astype(np.int16)


def _checksum(adu: npt.NDArray[np.int16]) -> int:
    return int(adu.astype(np.int64).sum()) % 65536


def write_wfdb16(
    directory: Path, record_name: str, adu: npt.NDArray[np.int16], fs_hz: int, sig_names: Sequence[str]
) -> tuple[Path, Path]:
    """Write ``adu`` int16 ``(C, T)`` as a PTB-XL-style WFDB record: ``<name>.dat`` (format 16,
    interleaved little-endian) and ``<name>.hea`` (gain ``1000.0(0)/mV``, checksums, no date)."""
    n_sig, n = adu.shape
    dat = directory / f"{record_name}.dat"
    hea = directory / f"{record_name}.hea"
    dat.write_bytes(np.ascontiguousarray(adu.T).astype("<i2").tobytes())
    lines = [f"{record_name} {n_sig} {fs_hz} {n}"]
    for c, name in enumerate(sig_names):
        lines.append(f"{record_name}.dat 16 1000.0(0)/mV 16 0 {int(adu[c, 0])} {_checksum(adu[c])} 0 {name}")
    hea.write_text("\n".join(lines) + "\n", encoding="ascii", newline="\n")
    return hea, dat


def mat_v4_bytes(values: npt.NDArray[np.int16], name: str = "val") -> bytes:
    """A MATLAB v4 file holding one int16 row vector ``(1, N)``: a 20-byte header (type 30 =
    little-endian int16 full matrix), the null-terminated name, then the data. With a 3-letter
    name the data starts at byte 24, which the CinC headers state as ``16+24``."""
    encoded = name.encode("ascii") + b"\0"
    header = struct.pack("<5i", 30, 1, int(values.shape[-1]), 0, len(encoded))
    return header + encoded + np.asarray(values, dtype="<i2").tobytes()


def csv_text(rows: Iterable[Sequence[str]], newline: str = "\n") -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator=newline)
    writer.writerows(rows)
    return buf.getvalue()
