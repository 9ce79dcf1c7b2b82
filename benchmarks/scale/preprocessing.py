"""The profile's preprocessing cost per record at 500 Hz (PTB-XL) and from 400 Hz (CODE-15%'s rate),
for the README's extrapolation."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from scipy.signal import resample_poly

from benchmarks.scale.options import CODE_FS_HZ, PROFILE, SOURCE
from pipeline.config import Params
from pipeline.config.build import signal_plan
from pipeline.core.records import Provenance, Record
from pipeline.signal.preprocess import SignalPlan, process
from pipeline.sources.registry import build_readers


def read_records(params: Params, n: int) -> list[Record]:
    """The first ``n`` records of the tree, read by the configured PTB-XL reader: float32 (12, 5000) mV."""
    reader = build_readers(params, [SOURCE])[SOURCE]
    units = reader.discover().units[:n]
    prov = Provenance(files=(), reader=reader.reader_id)
    return [r for u in units for r in reader.read(u, prov) if isinstance(r, Record)]


def at_rate(records: Sequence[Record], fs_hz: float) -> list[Record]:
    """The same records resampled (polyphase) to ``fs_hz``, as a 400 Hz source (CODE-15%) delivers them."""
    out = []
    for rec in records:
        if rec.fs_hz is None:
            raise ValueError(f"{rec.record_id}: no sampling rate to resample from")
        up, down = int(fs_hz), int(rec.fs_hz)
        g = np.gcd(up, down)
        signal = resample_poly(rec.signal, up // g, down // g, axis=1).astype(np.float32)
        out.append(replace(rec, signal=signal, fs_hz=fs_hz))
    return out


def time_process(records: Sequence[Record], plan: SignalPlan, repeats: int) -> float:
    """Best-of-``repeats`` ms per record of ``process`` on one batch of ``records``."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        process(records, plan)
        best = min(best, time.perf_counter() - t0)
    return 1000 * best / len(records)


def preprocess_costs(params: Params, n: int, repeats: int) -> dict[str, Any]:
    """ms per record of the profile's preprocessing, one process, for 500 Hz input (no resampling)
    and for the same signals at 400 Hz (resampled to 500 Hz first, as CODE-15% would be)."""
    plan = signal_plan(params.profiles[PROFILE])
    records = read_records(params, n)
    slow = at_rate(records, CODE_FS_HZ)
    ms500, ms400 = time_process(records, plan, repeats), time_process(slow, plan, repeats)
    return {
        "n_records": len(records),
        "ms_per_record_500hz": ms500,
        "ms_per_record_400hz_resampled": ms400,
        "resample_extra_ms_per_record": ms400 - ms500,
    }
