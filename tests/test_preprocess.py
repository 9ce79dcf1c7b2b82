"""Per-profile preprocessing: lead selection, quality gates, batched DSP equals per-record DSP."""

from __future__ import annotations

import dataclasses

import numpy as np

from pipeline.core.records import Provenance, RawLabel, Record, Rejection
from pipeline.signal.preprocess import SignalPlan, process

PLAN = SignalPlan(
    leads=("I", "II"),
    lead_aliases=(("II", ("MLII",)),),
    fs_hz=250.0,
    length=2500,
    crop="start",
    baseline_hz=0.5,
    notch_hz=50.0,
    notch_q=30.0,
    bandpass_hz=None,
    filter_order=2,
    normalise="none",
    max_nan_fraction=0.05,
    flat_ptp_mv=0.02,
    reject_flat=True,
    min_duration_s=2.0,
)


def _rec(rid: str, x: np.ndarray, fs: float, leads: tuple[str, ...] = ("I", "II")) -> Record:
    return Record(
        record_id=rid,
        source="t",
        signal=x.astype(np.float32),
        fs_hz=fs,
        leads=leads,
        patient_id=None,
        raw_labels=(RawLabel("N"),),
        provenance=Provenance(files=((f"{rid}.dat", "0" * 64),), reader="t@1"),
    )


def _ecgish(n: int, fs: float, seed: int, c: int = 2) -> np.ndarray:
    t = np.arange(n) / fs
    rng = np.random.default_rng(seed)
    beats = np.sin(2 * np.pi * 1.2 * t) ** 31  # sharp periodic peaks
    return np.stack([beats * (1 + 0.1 * i) + 0.01 * rng.standard_normal(n) for i in range(c)])


def test_mixed_rates_and_lengths_come_out_at_profile_shape_in_input_order() -> None:
    recs = [
        _rec("a", _ecgish(5000, 500, 0), 500),
        _rec("b", _ecgish(3600, 360, 1), 360),
        _rec("c", _ecgish(1500, 250, 2), 250),
    ]
    batch, rejected = process(recs, PLAN)
    assert not rejected
    assert [r.record_id for r in batch.records] == ["a", "b", "c"]
    assert batch.signal.shape == (3, 2, 2500) and batch.signal.dtype == np.float32
    assert batch.valid_len == (2500, 2500, 1500)
    assert np.all(batch.signal[2, :, 1500:] == 0)


def test_batched_processing_equals_one_record_at_a_time() -> None:
    recs = [_rec(str(i), _ecgish(5000, 500, i), 500) for i in range(5)]
    batch, _ = process(recs, PLAN)
    for i, r in enumerate(recs):
        single, _ = process([r], PLAN)
        np.testing.assert_allclose(batch.signal[i], single.signal[0], atol=1e-5)


def test_alias_selects_mlii_for_ii_and_missing_lead_is_rejected_with_names() -> None:
    ok = _rec("mit", _ecgish(2500, 250, 0), 250, leads=("MLII", "I"))
    bad = _rec("v", _ecgish(2500, 250, 0), 250, leads=("V1", "V5"))
    batch, rejected = process([ok, bad], PLAN)
    assert [r.record_id for r in batch.records] == ["mit"]
    np.testing.assert_allclose(
        batch.signal[0, 1, 500:1000],
        process([dataclasses.replace(ok, leads=("II", "I"))], PLAN)[0].signal[0, 1, 500:1000],
    )
    assert rejected[0].item == "v" and "missing lead(s) I, II" in rejected[0].reason


def test_quality_gates_reject_nan_heavy_flat_and_short_records_but_fill_small_gaps() -> None:
    nan_heavy = _ecgish(2500, 250, 0)
    nan_heavy[0, :500] = np.nan
    small_gap = _ecgish(2500, 250, 1)
    small_gap[1, 100:110] = np.nan
    flat = _ecgish(2500, 250, 2)
    flat[1] = 0.5
    short = _ecgish(300, 250, 3)
    recs = [
        _rec("nan", nan_heavy, 250),
        _rec("gap", small_gap, 250),
        _rec("flat", flat, 250),
        _rec("short", short, 250),
    ]
    batch, rejected = process(recs, PLAN)
    assert [r.record_id for r in batch.records] == ["gap"]
    assert np.isfinite(batch.signal).all()
    reasons = {r.item: r.reason for r in rejected}
    assert isinstance(rejected[0], Rejection)
    assert (
        "NaN" in reasons["nan"]
        and "flat-line lead(s) II" in reasons["flat"]
        and "too short" in reasons["short"]
    )


def test_plan_digest_changes_with_any_signal_setting() -> None:
    assert PLAN.digest() == dataclasses.replace(PLAN).digest()
    assert PLAN.digest() != dataclasses.replace(PLAN, notch_hz=60.0).digest()
    assert PLAN.digest() != dataclasses.replace(PLAN, length=2400).digest()
