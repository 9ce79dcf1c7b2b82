"""The decision rule evaluation chose for a model, as a small JSON file, and applying it.

Evaluation writes ``thresholds.json`` beside its metrics; ``ecgpipe predict`` reads it, so new
records are decided exactly as the test split was:

- ``multilabel``: class ``k`` is present when ``score[k] >= threshold[k]`` (thresholds chosen on
  the validation split, max F1 per class);
- ``multiclass``: the class with the highest probability (no thresholds);
- ``reconstruction``: anomalous when ``anomaly_score >= threshold`` (threshold from the training
  normals).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.evaluation.thresholds import ThresholdLeakError, ThresholdSet
from pipeline.models.scoring import TASKS, Task

RULE_FORMAT = "ecgpipe-decision-rule/1"


@dataclass(frozen=True)
class DecisionRule:
    """How scores become decisions for one model (see the module docstring)."""

    model: str
    task: Task
    classes: tuple[str, ...]
    thresholds: ThresholdSet | None
    checkpoint_sha256: str | None = None  # the checkpoint evaluation chose the rule for

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"decision rule task must be one of {TASKS}, got {self.task!r}")
        if self.task != "multiclass" and self.thresholds is None:
            raise ValueError(f"a {self.task} decision rule needs thresholds")
        if (
            self.task == "multilabel"
            and self.thresholds is not None
            and tuple(self.thresholds.classes) != tuple(self.classes)
        ):
            raise ValueError(
                f"decision rule classes {list(self.classes)} != threshold classes "
                f"{list(self.thresholds.classes)}"
            )
        if self.task == "reconstruction" and self.thresholds is not None and len(self.thresholds.values) != 1:
            raise ValueError(
                f"a reconstruction decision rule needs one threshold, got {len(self.thresholds.values)}"
            )

    def decide(self, scores: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
        """Decisions from scores: ``(N, K)`` bool for classifiers (one True per row for
        ``multiclass``), ``(N,)`` bool is-anomalous for ``reconstruction``."""
        s = np.asarray(scores, dtype=np.float64)
        if self.task == "multiclass":
            if s.ndim != 2 or s.shape[1] != len(self.classes):
                raise ValueError(f"expected scores (N, {len(self.classes)}), got {s.shape}")
            out = np.zeros(s.shape, dtype=bool)
            if len(s):
                out[np.arange(len(s)), s.argmax(axis=1)] = True
            return out
        assert self.thresholds is not None  # checked in __post_init__
        t = self.thresholds.as_array()
        if self.task == "reconstruction":
            return np.asarray(s.reshape(-1) >= t[0])
        if s.ndim != 2 or s.shape[1] != len(t):
            raise ValueError(f"expected scores (N, {len(t)}), got {s.shape}")
        return np.asarray(s >= t[None, :])

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": RULE_FORMAT,
            "model": self.model,
            "task": self.task,
            "classes": list(self.classes),
            "decision": {"multilabel": "score >= threshold per class", "multiclass": "argmax",
                         "reconstruction": "anomaly_score >= threshold"}[self.task],
            "thresholds": None if self.thresholds is None else self.thresholds.to_dict(),
            "checkpoint_sha256": self.checkpoint_sha256,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "decision rule") -> DecisionRule:
        if data.get("format") != RULE_FORMAT:
            raise ValueError(f"{where}: format {data.get('format')!r}, expected {RULE_FORMAT!r}")
        try:
            t = data.get("thresholds")
            return cls(
                model=str(data["model"]),
                task=data["task"],
                classes=tuple(str(c) for c in data["classes"]),
                thresholds=None if t is None else ThresholdSet.from_dict(t),
                checkpoint_sha256=data.get("checkpoint_sha256"),
            )
        except KeyError as exc:
            raise ValueError(f"{where}: missing key {exc}") from None
        except ThresholdLeakError as exc:
            raise ThresholdLeakError(f"{where}: {exc}") from None
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {exc}") from None


def write_rule(rule: DecisionRule, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rule.to_dict(), indent=2) + "\n")
    return path


def read_rule(path: Path) -> DecisionRule:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the decision rule ({exc})") from None
    return DecisionRule.from_dict(data, str(path))
