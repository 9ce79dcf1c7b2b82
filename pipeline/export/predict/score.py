"""Scoring for ``ecgpipe predict``: records → preprocessed ``(N, C, L)`` batches → scores and decisions.

Preprocessing is the training shards' (the card's plan, then the int16 round trip at
``card.scale_mv``), so the model sees the values evaluation saw.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from tqdm.auto import tqdm

from pipeline.core.records import Record, Rejection
from pipeline.evaluation.decisions import DecisionRule
from pipeline.export.predict.table import REJECTED, SCORED, PredictionRow, PredictionTable
from pipeline.export.predict.units import Candidate
from pipeline.models.card import ModelCard
from pipeline.models.scoring import Task, output_scores
from pipeline.signal import dsp as sig
from pipeline.signal.preprocess import ProcessedBatch, SignalPlan, process
from pipeline.training.optim import resolve_device

F64 = npt.NDArray[np.float64]


def check_rule(rule: DecisionRule, card: ModelCard) -> None:
    """Raise ValueError when ``rule`` was not made for a model like ``card`` (task, classes)."""
    if rule.task != card.task:
        raise ValueError(f"decision rule is for a {rule.task} model, the model card says {card.task}")
    if card.task != "reconstruction" and tuple(rule.classes) != tuple(card.classes):
        raise ValueError(f"decision rule classes {list(rule.classes)} != model classes {list(card.classes)}")
    if card.task == "reconstruction" and (rule.thresholds is None or len(rule.thresholds.values) != 1):
        raise ValueError("a reconstruction decision rule needs exactly one threshold")


def predict_records(
    model: nn.Module,
    card: ModelCard,
    rule: DecisionRule | None,
    records: Iterable[Candidate],
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> PredictionTable:
    """Score ``records`` with ``model`` and decide with ``rule`` (None: scores only).

    Records are preprocessed with ``card.plan()`` and the int16 round trip at ``card.scale_mv``
    in groups of ``batch_size`` (so memory stays bounded), then scored by
    :func:`pipeline.models.scoring.output_scores` on ``device`` (``"cpu"``, ``"cuda"``, ``"auto"``...).
    Input order is kept; rejected candidates and records failing the profile's quality gates
    become rejected rows.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    plan = card.plan()
    if (len(plan.leads), plan.length) != tuple(card.input_shape):
        raise ValueError(
            f"model card input_shape {card.input_shape} != profile plan ({len(plan.leads)}, {plan.length})"
        )
    if rule is not None:
        check_rule(rule, card)
    dev = resolve_device(device) if isinstance(device, str) else device
    model.to(dev).eval()
    scorer = _Scorer(model, card, plan, rule, dev)
    rows: list[PredictionRow] = []
    chunk: list[Candidate] = []
    n_records = 0
    with tqdm(desc="predict", unit="rec", disable=not progress) as bar:
        for candidate in records:
            chunk.append(candidate)
            n_records += isinstance(candidate.item, Record)
            # Rejections cost no model time; flushing on them too keeps the progress bar moving.
            if n_records >= batch_size or len(chunk) >= 4 * batch_size:
                rows.extend(scorer.score(chunk))
                bar.update(len(chunk))
                chunk, n_records = [], 0
        rows.extend(scorer.score(chunk))
        bar.update(len(chunk))
    return PredictionTable(card.task, card.output_names, rule is not None, tuple(rows))


@dataclass(frozen=True)
class _Scorer:
    model: nn.Module
    card: ModelCard
    plan: SignalPlan
    rule: DecisionRule | None
    device: torch.device

    def score(self, chunk: Sequence[Candidate]) -> list[PredictionRow]:
        """Rows for one chunk of candidates, in order."""
        records = [c.item for c in chunk if isinstance(c.item, Record)]
        batch, reasons = _preprocess(records, self.plan)
        fields: dict[str, dict[str, Any]] = {}
        if batch.records:
            x, clipped = stored_signal(batch.signal, self.card.scale_mv)
            scores = model_scores(self.model, self.card.task, x, self.device)
            for i, (rec, decided) in enumerate(zip(batch.records, self._decisions(scores), strict=True)):
                fields[rec.record_id] = {
                    "scores": tuple(float(v) for v in scores[i]),
                    "valid_len": int(batch.valid_len[i]),
                    "clipped": int(clipped[i]),
                    **decided,
                }
        return [self._row(c, fields, reasons) for c in chunk]

    @staticmethod
    def _row(
        c: Candidate, fields: Mapping[str, Mapping[str, Any]], reasons: Mapping[str, str]
    ) -> PredictionRow:
        if isinstance(c.item, Rejection):
            return PredictionRow(c.record_id, c.input, c.files, REJECTED, reason=c.item.reason)
        if c.record_id in fields:
            return PredictionRow(c.record_id, c.input, c.files, SCORED, **fields[c.record_id])
        reason = reasons.get(c.record_id, "not scored (no reason reported)")
        return PredictionRow(c.record_id, c.input, c.files, REJECTED, reason=reason)

    def _decisions(self, scores: F64) -> list[dict[str, Any]]:
        """Per row the decision fields of :class:`PredictionRow` (empty without a rule)."""
        if self.rule is None:
            return [{} for _ in range(len(scores))]
        if self.card.task == "reconstruction":
            assert self.rule.thresholds is not None  # check_rule
            threshold = float(self.rule.thresholds.values[0])
            flags = self.rule.decide(scores[:, 0])
            return [{"is_anomaly": bool(f), "threshold": threshold} for f in flags]
        chosen = self.rule.decide(scores)
        names = self.card.classes
        return [{"predicted": tuple(n for n, on in zip(names, row, strict=True) if on)} for row in chosen]


def _preprocess(records: list[Record], plan: SignalPlan) -> tuple[ProcessedBatch, dict[str, str]]:
    """:func:`process` on a chunk; should it raise, each record alone, so one cannot sink the rest."""
    try:
        batch, rejected = process(records, plan)
        return batch, {r.item: r.reason for r in rejected}
    except Exception:  # noqa: BLE001 - find the record that raised, keep the others
        pass
    kept: list[ProcessedBatch] = []
    reasons: dict[str, str] = {}
    for rec in records:
        try:
            one, rejected = process([rec], plan)
        except Exception as exc:  # noqa: BLE001 - one record that breaks preprocessing must not lose the others
            reasons[rec.record_id] = f"preprocessing failed: {type(exc).__name__}: {exc}"
            continue
        reasons.update({r.item: r.reason for r in rejected})
        if one.records:
            kept.append(one)
    if not kept:
        empty = np.zeros((0, len(plan.leads), plan.length), dtype=np.float32)
        return ProcessedBatch((), empty, ()), reasons
    merged = ProcessedBatch(
        tuple(r for b in kept for r in b.records),
        np.concatenate([b.signal for b in kept]),
        tuple(v for b in kept for v in b.valid_len),
    )
    return merged, reasons


def stored_signal(x: sig.F32, scale_mv: float) -> tuple[sig.F32, npt.NDArray[np.int32]]:
    """``(N, C, L)`` mV after the int16 round trip the training shards made at ``scale_mv``,
    and the number of clipped samples per record ``(N,)``. ``scale_mv`` 0 means the profile
    stores float32 (no quantisation): ``x`` is returned as it is."""
    if scale_mv <= 0:
        return x, np.zeros(len(x), dtype=np.int32)
    q, clipped = sig.quantise_rows(x, scale_mv)
    return sig.dequantise(q, scale_mv), clipped


def model_scores(model: nn.Module, task: Task, x: sig.F32, device: torch.device) -> F64:
    """Scores ``(N, K)`` float64 of ``x`` ``(N, C, L)`` (reconstruction: ``(N, 1)``)."""
    xt = torch.from_numpy(np.ascontiguousarray(x))
    # Pinned host memory lets the copy to the GPU overlap; pointless (and unavailable) on CPU.
    xt = xt.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else xt.to(device)
    with torch.inference_mode():
        out = model(xt)
        scores = output_scores(task, xt, out)
    return np.asarray(scores.double().cpu().numpy()).reshape(len(x), -1)
