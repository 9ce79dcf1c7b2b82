"""The demo UCR ECG5000 tree: ``ECG5000_TRAIN.txt`` and ``ECG5000_TEST.txt``, 140-sample beats
(250 Hz, R peak at sample 50) z-normalised per beat, the class in column 0, ``%16.7e`` fixed
width, rows sorted by class like the real file. ``LABEL_NOISE`` of the rows carry a beat of
the wrong kind (the real ECG5000 labels were assigned automatically, too; :func:`beat_kind`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from pipeline.core.records import FloatArray
from pipeline.demo.formats import record_rng, split_counts
from pipeline.demo.synth import Patient, draw_patient, synth_beat

UCR_FRACTIONS: Mapping[str, float] = {"1": 0.60, "2": 0.22, "3": 0.08, "4": 0.07, "5": 0.03}
# ECG5000 classes: 1 normal, 2 R-on-T PVC, 3 PVC, 4 supraventricular premature, 5 unclassified.
UCR_BEAT_KIND: Mapping[str, str] = {"1": "N", "2": "R", "3": "V", "4": "S", "5": "F"}
_UCR_FS, _UCR_BEFORE, _UCR_AFTER = 250.0, 50, 90
LABEL_NOISE = 0.06


def beat_kind(rng: np.random.Generator, label: str) -> str:
    """The kind of beat drawn for a row labelled ``label``: its own, or with probability
    ``LABEL_NOISE`` the wrong side of normal/anomalous (a normal row gets an ectopic beat of a
    random kind, an ectopic row a normal beat): the mistakes that matter to anomaly detection."""
    if rng.random() >= LABEL_NOISE:
        return UCR_BEAT_KIND[label]
    if label != "1":
        return "N"
    ectopic = [k for c, k in UCR_BEAT_KIND.items() if c != "1"]
    return ectopic[int(rng.integers(len(ectopic)))]


def znorm(beat: FloatArray) -> npt.NDArray[np.float64]:
    """Zero mean, unit sample standard deviation (ddof=1), as in the UCR archive."""
    x = beat.astype(np.float64)
    out: npt.NDArray[np.float64] = (x - x.mean()) / max(float(x.std(ddof=1)), 1e-12)
    return out


def _ucr_rows(seed: int, labels: Sequence[str], start: int, patient: Patient) -> str:
    lines = []
    for k, label in enumerate(labels):
        rng = record_rng(seed, "ucr", start + k)
        kind = beat_kind(rng, label)
        beat = znorm(synth_beat(rng, kind, _UCR_FS, _UCR_BEFORE, _UCR_AFTER, lead="II", patient=patient))
        lines.append("".join(f"{v:16.7e}" for v in (float(label), *beat.tolist())))
    return "\n".join(lines) + "\n" if lines else ""


def write_ucr(root: Path, seed: int, n: int) -> tuple[dict[str, int], dict[str, int], list[Path]]:
    """Write ECG5000_TRAIN.txt and ECG5000_TEST.txt (each class split in half, rows sorted by
    class); return (beats per class, beats per split, files)."""
    root.mkdir(parents=True, exist_ok=True)
    counts = split_counts(n, UCR_FRACTIONS)
    train = [c for c, k in counts.items() for _ in range(k // 2)]
    test = [c for c, k in counts.items() for _ in range(k - k // 2)]
    # ECG5000 comes from one patient's recording: one anatomy for every beat.
    patient = draw_patient(record_rng(seed, "ucr"))
    files = []
    for split, labels, start in (("TRAIN", train, 0), ("TEST", test, len(train))):
        path = root / f"ECG5000_{split}.txt"
        path.write_text(_ucr_rows(seed, labels, start, patient), encoding="ascii", newline="\n")
        files.append(path)
    return counts, {"train": len(train), "test": len(test)}, files
