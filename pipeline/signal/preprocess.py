"""Per-profile preprocessing of records into fixed-shape batches.

Order, per record: select leads → crop at the input rate (only the needed span is filtered)
→ quality checks (duration, NaN, flat leads) → then per group of equal (fs, T), in one array
call each: resample (polyphase) → baseline/notch/band-pass filter → zero-pad → normalise.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from pipeline.core.records import Record, Rejection
from pipeline.signal import dsp as sig

PREPROCESS_VERSION = "1"
DSP_BLOCK = 16  # records per resample/filter call


@dataclass(frozen=True)
class SignalPlan:
    """A profile's signal settings as plain values (built from params by ``pipeline.config``)."""

    leads: tuple[str, ...]
    lead_aliases: tuple[tuple[str, tuple[str, ...]], ...]
    fs_hz: float | None  # target rate; None keeps the native rate (no resampling, no filters)
    length: int  # output samples at fs_hz
    crop: str  # "start" | "center"
    baseline_hz: float | None
    notch_hz: float | None
    notch_q: float
    bandpass_hz: tuple[float, float] | None
    filter_order: int
    normalise: str  # "none" | "zscore" | "minmax"
    max_nan_fraction: float
    flat_ptp_mv: float
    reject_flat: bool
    min_duration_s: float

    def digest(self) -> str:
        """Stable hash of every setting that changes the preprocessed signal."""
        blob = json.dumps({"v": PREPROCESS_VERSION, **asdict(self)}, sort_keys=True, default=list)
        return hashlib.sha256(blob.encode()).hexdigest()

    def filter_spec(self, fs_hz: float) -> sig.FilterSpec:
        return sig.FilterSpec(
            fs_hz=fs_hz,
            baseline_hz=self.baseline_hz,
            notch_hz=self.notch_hz,
            notch_q=self.notch_q,
            bandpass_hz=self.bandpass_hz,
            order=self.filter_order,
        )


@dataclass(frozen=True)
class Prepared:
    """A record after lead selection, cropping and checks: ``x`` is ``(C, T)`` mV at ``fs_hz``."""

    record: Record
    x: sig.F32
    fs_hz: float | None


@dataclass(frozen=True)
class ProcessedBatch:
    """Preprocessed records: ``signal`` float32 ``(N, C, L)``; ``valid_len`` samples before padding."""

    records: tuple[Record, ...]
    signal: sig.F32
    valid_len: tuple[int, ...]


def select_leads(record: Record, plan: SignalPlan) -> sig.F32 | str:
    """``(C_profile, T)`` rows in profile lead order, or a reason naming the missing leads."""
    aliases = dict(plan.lead_aliases)
    index = {name: i for i, name in enumerate(record.leads)}
    rows: list[int] = []
    missing: list[str] = []
    for lead in plan.leads:
        found = next((index[n] for n in (lead, *aliases.get(lead, ())) if n in index), None)
        if found is None:
            missing.append(lead)
        else:
            rows.append(found)
    if missing:
        return f"missing lead(s) {', '.join(missing)}; record has {', '.join(record.leads)}"
    return record.signal[rows]


def _input_span(plan: SignalPlan, fs_in: float | None) -> int:
    """Input samples needed to produce ``plan.length`` output samples."""
    if plan.fs_hz is None or fs_in is None:
        return plan.length
    return math.ceil(plan.length * fs_in / plan.fs_hz)


def _crop(x: sig.F32, span: int, how: str) -> sig.F32:
    if x.shape[-1] <= span:
        return x
    start = 0 if how == "start" else (x.shape[-1] - span) // 2
    return x[:, start : start + span]


def _check(x: sig.F32, fs_in: float | None, plan: SignalPlan) -> sig.F32 | str:
    """Quality gate on the cropped ``(C, T)``; returns the (NaN-filled) array or a reason."""
    t = x.shape[-1]
    if fs_in is not None and t < plan.min_duration_s * fs_in:
        return f"too short: {t / fs_in:.2f} s < min_duration_s {plan.min_duration_s} s"
    if fs_in is not None and plan.fs_hz is not None:
        need = sig.min_filter_length(plan.filter_spec(plan.fs_hz))
        if sig.resampled_length(t, fs_in, plan.fs_hz) < need:
            return f"too short to filter: {t} samples (need {need} at {plan.fs_hz} Hz)"
    frac = sig.nan_fraction(x)
    if frac > plan.max_nan_fraction:
        return f"{frac:.1%} of samples are NaN/Inf (max_nan_fraction {plan.max_nan_fraction:.1%})"
    if frac > 0:
        x = sig.fill_nonfinite(x)
    if plan.reject_flat:
        flat = sig.flat_leads(x, plan.flat_ptp_mv)
        if flat:
            names = ", ".join(plan.leads[i] for i in flat)
            return f"flat-line lead(s) {names}: peak-to-peak < {plan.flat_ptp_mv} mV"
    return x


def prepare(record: Record, plan: SignalPlan) -> Prepared | Rejection:
    """Lead selection, crop and quality checks for one record."""
    files = tuple(f for f, _ in record.provenance.files)
    selected = select_leads(record, plan)
    if isinstance(selected, str):
        return Rejection(record.record_id, files, selected)
    if plan.fs_hz is not None and record.fs_hz is None:
        return Rejection(
            record.record_id, files, f"source gives no sampling rate; profile needs {plan.fs_hz} Hz"
        )
    cropped = _crop(selected, _input_span(plan, record.fs_hz), plan.crop)
    checked = _check(np.asarray(cropped, dtype=np.float32), record.fs_hz, plan)
    if isinstance(checked, str):
        return Rejection(record.record_id, files, checked)
    return Prepared(record, np.ascontiguousarray(checked), record.fs_hz)


def _dsp(x: sig.F32, fs_in: float | None, plan: SignalPlan) -> sig.F32:
    """Resample and filter a ``(B, C, T)`` group sharing one rate and length."""
    if plan.fs_hz is None or fs_in is None:
        return x
    y = sig.resample(x, fs_in, plan.fs_hz)
    return sig.apply_filters(y, plan.filter_spec(plan.fs_hz))


def process(records: Sequence[Record], plan: SignalPlan) -> tuple[ProcessedBatch, list[Rejection]]:
    """Preprocess records into one ``(N, C, L)`` batch (input order kept) plus the rejections."""
    rejected: list[Rejection] = []
    prepared: list[Prepared] = []
    for rec in records:
        p = prepare(rec, plan)
        if isinstance(p, Rejection):
            rejected.append(p)
        else:
            prepared.append(p)
    groups: dict[tuple[float | None, int], list[int]] = defaultdict(list)
    for i, p in enumerate(prepared):
        groups[(p.fs_hz, p.x.shape[-1])].append(i)
    out = np.zeros((len(prepared), len(plan.leads), plan.length), dtype=np.float32)
    valid = [0] * len(prepared)
    for (fs_in, _), idx in groups.items():
        # Blocks of a few records keep temporaries small: whole-batch float64 intermediates
        # cost more in page zeroing than the filtering itself.
        for start in range(0, len(idx), DSP_BLOCK):
            block = idx[start : start + DSP_BLOCK]
            y = _dsp(np.stack([prepared[i].x for i in block]), fs_in, plan)
            n = min(y.shape[-1], plan.length)
            y = sig.fix_length(y, plan.length, "start")
            # SignalPlan.normalise is a plain str (params check it is none/zscore/minmax)
            out[block] = sig.normalise(y, plan.normalise, valid=n)  # type: ignore[arg-type]  # str, checked
            for i in block:
                valid[i] = n
    batch = ProcessedBatch(tuple(p.record for p in prepared), out, tuple(valid))
    return batch, rejected
