"""The PhysioNet/CinC Challenge 2021 metric: normalised weighted accuracy over the 26 scored classes.

Definition (Reyna et al. 2021, physionetchallenges/evaluation-2021): for binary labels ``L`` and
binary outputs ``O`` ``(N, K)`` over the scored classes (equivalent codes merged into one column),
the modified confusion matrix is ``A[j, k] = Σ_i L[i, j] · O[i, k] / max(|L_i ∪ O_i|, 1)`` (each
(label, output) pair of a record weighted by one over the classes it names or is given), and the raw score
``s(O) = Σ W ∘ A`` with the weight matrix ``W`` of ``weights.csv`` (rows: true class, columns:
output class; 1 on the diagonal, partial credit for clinically close mistakes). The Challenge
metric normalises it between the "inactive" classifier that outputs only the normal class
426783006 (sinus rhythm) and the perfect one: ``(s(O) - s(inactive)) / (s(L) - s(inactive))``,
0 where the two references coincide (as the Challenge's code does).

Written here from that definition (no upstream code copied); the weights are the Challenge's own,
committed with their source and sha256 in ``data/scoring/cinc2021_weights.csv``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_WEIGHTS = REPO_ROOT / "data" / "scoring" / "cinc2021_weights.csv"
NORMAL_CODE = "426783006"
_SHA_PREFIX = "# sha256 of the table below"

# Abbreviations of the 30 scored SNOMED CT codes (dx_mapping_scored.csv of evaluation-2021), so a
# scheme may name its classes either way.
SCORED_ABBREVIATIONS: dict[str, str] = {
    "AF": "164889003", "AFL": "164890007", "BBB": "6374002", "Brady": "426627000",
    "CLBBB": "733534002", "LBBB": "164909002", "CRBBB": "713427006", "RBBB": "59118001",
    "IAVB": "270492004", "IRBBB": "713426002", "LAD": "39732003", "LAnFB": "445118002",
    "LPR": "164947007", "LQRSV": "251146004", "LQT": "111975006", "NSIVCB": "698252002",
    "NSR": "426783006", "PAC": "284470004", "SVPB": "63593006", "PR": "10370003",
    "PRWP": "365413008", "PVC": "427172004", "VPB": "17338001", "QAb": "164917005",
    "RAD": "47665007", "SA": "427393009", "SB": "426177001", "STach": "427084000",
    "TAb": "164934002", "TInv": "59931005",
}  # fmt: skip


class WeightsFileError(ValueError):
    """The weights file is not the square, labelled table the Challenge metric needs."""


@dataclass(frozen=True)
class ChallengeWeights:
    """``groups[k]``: the SNOMED CT codes scored as class ``k`` (equivalent codes share a group);
    ``weights`` ``(K, K)``: row = true group, column = output group."""

    groups: tuple[tuple[str, ...], ...]
    weights: F64
    path: Path

    @property
    def names(self) -> tuple[str, ...]:
        """One name per group: its codes joined by ``|``, as in the weights file."""
        return tuple("|".join(g) for g in self.groups)

    def group_of(self, name: str) -> int | None:
        """The group of a class named by SNOMED CT code, scored abbreviation or a ``|``-joined
        group name (``713427006|59118001``); None if unscored."""
        wanted = {SCORED_ABBREVIATIONS.get(part.strip(), part.strip()) for part in name.split("|")}
        for k, codes in enumerate(self.groups):
            if wanted & set(codes):
                return k
        return None

    @property
    def normal_index(self) -> int:
        k = self.group_of(NORMAL_CODE)
        if k is None:
            raise WeightsFileError(
                f"{self.path}: the normal class {NORMAL_CODE} is not among the scored classes"
            )
        return k


def load_challenge_weights(path: Path = DEFAULT_WEIGHTS) -> ChallengeWeights:
    """Read a ``weights.csv`` (leading ``#`` comments allowed; a ``# sha256 of the table below: <hex>``
    comment is checked against the table's bytes). Raises :class:`WeightsFileError` naming the line."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    skip = 0
    expected_sha: str | None = None
    while skip < len(lines) and lines[skip].startswith("#"):
        if lines[skip].startswith(_SHA_PREFIX):
            expected_sha = lines[skip].rsplit(":", 1)[1].strip()
        skip += 1
    table = lines[skip:]
    if expected_sha is not None:
        actual = hashlib.sha256("".join(table).encode()).hexdigest()
        if actual != expected_sha:
            raise WeightsFileError(f"{path}: table sha256 {actual} differs from the recorded {expected_sha}")
    rows = [[c.strip() for c in line.split(",")] for line in table if line.strip()]
    if not rows:
        raise WeightsFileError(f"{path}: no header line after the comments")
    header = rows[0][1:]
    if len(rows) - 1 != len(header):
        raise WeightsFileError(
            f"{path}: {len(header)} columns but {len(rows) - 1} rows; expected a square table"
        )
    values = np.zeros((len(header), len(header)), dtype=np.float64)
    for i, row in enumerate(rows[1:]):
        line = skip + i + 2
        if len(row) != len(header) + 1 or row[0] != header[i]:
            raise WeightsFileError(
                f"{path}:{line}: expected row {header[i]!r} with {len(header)} values, got {row[0]!r} "
                f"with {len(row) - 1}"
            )
        try:
            values[i] = [float(v) for v in row[1:]]
        except ValueError as exc:
            raise WeightsFileError(f"{path}:{line}: non-numeric weight ({exc})") from exc
    if not np.allclose(np.diag(values), 1.0) or values.min() < 0 or values.max() > 1:
        raise WeightsFileError(f"{path}: weights must lie in [0, 1] with 1 on the diagonal")
    return ChallengeWeights(tuple(tuple(h.split("|")) for h in header), values, path)


def to_challenge_space(
    y: npt.ArrayLike, classes: Sequence[str], weights: ChallengeWeights
) -> tuple[Bool, list[str]]:
    """Binary ``y`` ``(N, C)`` over ``classes`` → ``(N, K)`` over the scored groups (equivalent codes
    OR-ed into one column, as the Challenge merges them); also the classes that are not scored."""
    arr = np.asarray(y).astype(bool)
    if arr.ndim != 2 or arr.shape[1] != len(classes):
        raise ValueError(f"expected (N, {len(classes)}) binary labels/outputs, got shape {arr.shape}")
    out = np.zeros((arr.shape[0], len(weights.groups)), dtype=bool)
    unscored: list[str] = []
    for c, name in enumerate(classes):
        k = weights.group_of(name)
        if k is None:
            unscored.append(name)
        else:
            out[:, k] |= arr[:, c]
    return out, unscored


def modified_confusion(labels: Bool, outputs: Bool) -> F64:
    """``(K, K)``: every (true, output) pair of a record, weighted ``1 / |L_i ∪ O_i|`` (module docstring)."""
    lab = labels.astype(np.float64)
    out = outputs.astype(np.float64)
    norm = np.maximum(np.logical_or(labels, outputs).sum(axis=1), 1).astype(np.float64)
    result: F64 = lab.T @ (out / norm[:, None])
    return result


def challenge_metric(labels: Bool, outputs: Bool, weights: F64, normal_index: int) -> float:
    """The normalised Challenge score of binary ``outputs`` against ``labels`` (both ``(N, K)``)."""
    inactive = np.zeros_like(labels)
    inactive[:, normal_index] = True
    observed = float(np.sum(weights * modified_confusion(labels, outputs)))
    correct = float(np.sum(weights * modified_confusion(labels, labels)))
    floor = float(np.sum(weights * modified_confusion(labels, inactive)))
    if correct == floor:
        return 0.0
    return (observed - floor) / (correct - floor)


def cinc2021_score(
    y_true: npt.ArrayLike,
    decisions: npt.ArrayLike,
    classes: Sequence[str],
    weights: ChallengeWeights | None = None,
) -> dict[str, Any]:
    """The Challenge metric of thresholded ``decisions`` ``(N, C)`` against ``y_true`` ``(N, C)``,
    classes named by SNOMED CT code or abbreviation; unscored classes are left out and listed."""
    w = weights if weights is not None else load_challenge_weights()
    labels, unscored = to_challenge_space(y_true, classes, w)
    outputs, _ = to_challenge_space(decisions, classes, w)
    present = [w.names[k] for k in range(len(w.groups)) if any(w.group_of(c) == k for c in classes)]
    return {
        "challenge_metric": challenge_metric(labels, outputs, w.weights, w.normal_index),
        "normal_class": NORMAL_CODE,
        "scored_groups_in_model": present,
        "unscored_classes": unscored,
        "n_records": int(labels.shape[0]),
        "weights_file": w.path.name,
    }
