"""The prediction table of ``ecgpipe predict``: one row per record, rendered as CSV and JSON rows."""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from pipeline.models.scoring import Task

Status = Literal["scored", "rejected"]
SCORED: Literal["scored"] = "scored"
REJECTED: Literal["rejected"] = "rejected"


@dataclass(frozen=True)
class PredictionRow:
    """One output row.

    ``scores``: one value per ``card.output_names`` (empty when rejected); ``predicted``: the
    decided classes (multilabel: all at or above threshold, multiclass: the argmax class), None
    without a rule or for reconstruction; ``is_anomaly`` and ``threshold``: reconstruction with
    a rule; ``valid_len``: samples of real signal before the zero padding (at the profile rate);
    ``clipped``: samples clipped by the int16 round trip.
    """

    record_id: str
    input: str
    files: tuple[str, ...]
    status: Status
    reason: str = ""
    scores: tuple[float, ...] = ()
    predicted: tuple[str, ...] | None = None
    is_anomaly: bool | None = None
    threshold: float | None = None
    valid_len: int | None = None
    clipped: int | None = None


@dataclass(frozen=True)
class PredictionTable:
    """Rows of :func:`predict_records`, with what is needed to render them."""

    task: Task
    output_names: tuple[str, ...]
    has_rule: bool
    rows: tuple[PredictionRow, ...]

    def counts(self) -> dict[str, int]:
        """Rows per status (both keys always present)."""
        counted = Counter(r.status for r in self.rows)
        return {SCORED: counted[SCORED], REJECTED: counted[REJECTED]}

    def decision_columns(self) -> tuple[str, ...]:
        if not self.has_rule:
            return ()
        return ("is_anomaly", "threshold") if self.task == "reconstruction" else ("predicted",)

    def score_columns(self) -> tuple[str, ...]:
        """CSV columns of the scores: the output names (``score_<name>`` if one clashes)."""
        fixed = {"record_id", "status", "reason", "input", "files", "valid_len", "clipped_samples"}
        fixed.update(self.decision_columns())
        return tuple(f"score_{n}" if n in fixed else n for n in self.output_names)

    def csv_columns(self) -> tuple[str, ...]:
        return (
            "record_id",
            "status",
            *self.score_columns(),
            *self.decision_columns(),
            "valid_len",
            "clipped_samples",
            "reason",
            "input",
            "files",
        )

    def csv_text(self) -> str:
        """The table as CSV (floats in shortest round-trip form, lists joined with ``;``)."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.csv_columns())
        for row in self.rows:
            writer.writerow(self._csv_row(row))
        return buf.getvalue()

    def _csv_row(self, row: PredictionRow) -> list[str]:
        scores = [_csv_value(v) for v in row.scores] or [""] * len(self.output_names)
        decisions: list[str] = []
        if self.has_rule and self.task == "reconstruction":
            decisions = [_csv_value(row.is_anomaly), _csv_value(row.threshold)]
        elif self.has_rule:
            decisions = [";".join(row.predicted) if row.predicted is not None else ""]
        tail = [_csv_value(row.valid_len), _csv_value(row.clipped), row.reason, row.input]
        return [row.record_id, row.status, *scores, *decisions, *tail, ";".join(row.files)]

    def json_rows(self) -> list[dict[str, Any]]:
        """Rows as JSON-able dicts (scores keyed by output name; non-finite values as null)."""
        out = []
        for row in self.rows:
            d: dict[str, Any] = {
                "record_id": row.record_id,
                "status": row.status,
                "scores": (
                    dict(zip(self.output_names, row.scores, strict=True)) if row.status == SCORED else None
                ),
            }
            if self.has_rule:
                d.update(self._json_decision(row))
            d.update(
                valid_len=row.valid_len,
                clipped_samples=row.clipped,
                reason=row.reason,
                input=row.input,
                files=list(row.files),
            )
            out.append(d)
        return out

    def _json_decision(self, row: PredictionRow) -> dict[str, Any]:
        if self.task == "reconstruction":
            return {"is_anomaly": row.is_anomaly, "threshold": row.threshold}
        if row.predicted is None:
            return {"predicted": None}
        if self.task == "multiclass":
            return {"predicted": row.predicted[0]}
        return {"predicted": list(row.predicted)}


def _csv_value(value: float | int | bool | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)
