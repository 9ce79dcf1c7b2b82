"""The demo CinC 2017 tree: ``training2017/A00001.{hea,mat}`` … (MATLAB v4 ``val`` int16
``(1, N)``, header ``16+24``, 300 Hz, 9–61 s), ``REFERENCE.csv`` (CRLF) and ``RECORDS``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from pipeline.demo.formats import (
    MAINS_HZ,
    csv_text,
    mat_v4_bytes,
    record_rng,
    shuffled_labels,
    split_counts,
    to_adu,
)
from pipeline.demo.synth import synth_record

CINC_FRACTIONS: Mapping[str, float] = {"N": 0.45, "A": 0.20, "O": 0.25, "~": 0.10}
CINC_CLASS: Mapping[str, str] = {"N": "NORM", "A": "AF", "O": "OTHER", "~": "NOISY"}
_CINC_FS = 300


def _cinc_length(rng: np.random.Generator) -> int:
    """Samples at 300 Hz: most records exactly 30 s, some 60 s, the rest anywhere in 9–61 s."""
    u = rng.random()
    if u < 0.7:
        return 9000
    if u < 0.8:
        return 18000
    return int(rng.integers(2700, 18301))


def _cinc_header(name: str, adu: npt.NDArray[np.int16], rng: np.random.Generator) -> str:
    """The CinC 2017 header, CRLF and trailing spaces included. The real headers' clock fields
    are odd (day always 1, minute equal to the month); the same pattern is drawn here."""
    month, hour, second = int(rng.integers(1, 13)), int(rng.integers(1, 13)), int(rng.integers(60))
    stamp = f"{hour:02d}:{month:02d}:{second:02d} 1/{month:02d}/2000"
    return (
        f"{name} 1 {_CINC_FS} {adu.shape[-1]} {stamp} \r\n"
        f"{name}.mat 16+24 1000/mV 16 0 {int(adu[0])} 0 0 ECG \r\n"
    )


def _write_cinc_record(folder: Path, seed: int, index: int, label: str) -> list[Path]:
    rng = record_rng(seed, "cinc2017", index)
    name = f"A{index:05d}"
    n = _cinc_length(rng)
    ecg = synth_record(rng, CINC_CLASS[label], _CINC_FS, n / _CINC_FS, ("I",), mains_hz=MAINS_HZ)
    signal = ecg.signal[0]
    if rng.random() < 0.05:  # handheld device held the other way round: inverted recording
        signal = -signal
    adu = to_adu(signal)
    mat = folder / f"{name}.mat"
    mat.write_bytes(mat_v4_bytes(adu))
    hea = folder / f"{name}.hea"
    hea.write_bytes(_cinc_header(name, adu, rng).encode("ascii"))
    return [hea, mat]


def write_cinc2017(
    root: Path, seed: int, n: int, progress: bool = False
) -> tuple[dict[str, int], list[Path]]:
    """Write ``root/training2017``; return (records per label, files)."""
    folder = root / "training2017"
    folder.mkdir(parents=True, exist_ok=True)
    counts = split_counts(n, CINC_FRACTIONS)
    labels = shuffled_labels(record_rng(seed, "cinc2017"), counts)
    files: list[Path] = []
    for i, label in enumerate(tqdm(labels, desc="cinc2017", disable=not progress, unit="rec"), start=1):
        files += _write_cinc_record(folder, seed, i, label)
    names = [f"A{i:05d}" for i in range(1, n + 1)]
    reference = folder / "REFERENCE.csv"
    reference.write_bytes(csv_text(zip(names, labels, strict=True), newline="\r\n").encode("ascii"))
    records = folder / "RECORDS"
    records.write_bytes(("".join(f"{name}\n" for name in names)).encode("ascii"))
    return counts, [*files, reference, records]
