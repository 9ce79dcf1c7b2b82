"""Hypothesis properties of the signal transforms (pipeline/signal/dsp.py, pipeline/signal/preprocess.py).

Inputs are arbitrary float32 ``(C, T)`` / ``(B, C, T)`` arrays within physical ECG ranges (tens of
mV), including NaN/Inf runs, flat leads, very short and long ``T`` and odd sampling-rate pairs.
Each property is the documented contract of one function: output shape, float32, finite output
for finite input, crop/pad semantics, normalisation invariants, DC removal by the high-pass and
the int16 quantisation round trip (also through a real zarr shard).

Large arrays are drawn as a seed plus shape/amplitude parameters and built with numpy, because
drawing tens of thousands of elements one by one through hypothesis would dominate the run time;
small arrays are drawn element by element so hypothesis can shrink them.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pipeline.core.records import Provenance, RawLabel, Record, Rejection
from pipeline.signal import dsp as sig
from pipeline.signal.preprocess import SignalPlan, process
from pipeline.store.local import ShardStore, StorageSpec, read_signal, rows_for

F32 = npt.NDArray[np.float32]
AMPLITUDE_MV = 20.0  # beyond any real ECG lead, inside the int16 range at 1 µV steps
FAST = settings(max_examples=40, deadline=None)
SLOW = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Sampling rates met in real data plus awkward ones (prime, fractional).
REAL_RATES = (50.0, 100.0, 125.0, 128.0, 200.0, 250.0, 257.0, 300.0, 360.0, 400.0, 500.0, 1000.0)
mhz_rates = st.integers(min_value=50_000, max_value=2_000_000).map(lambda m: m / 1000)
rates = st.one_of(st.sampled_from(REAL_RATES), mhz_rates)


# --------------------------------------------------------------------------- strategies


@st.composite
def small_arrays(draw: st.DrawFn, max_c: int = 3, max_t: int = 40) -> F32:
    """``(C, T)`` float32 drawn element by element (shrinkable), ``T`` from 1."""
    c = draw(st.integers(1, max_c))
    t = draw(st.integers(1, max_t))
    elements = st.floats(-AMPLITUDE_MV, AMPLITUDE_MV, allow_nan=False, width=32)
    return draw(hnp.arrays(np.float32, (c, t), elements=elements))


@st.composite
def ecg_arrays(
    draw: st.DrawFn, min_t: int = 1, max_t: int = 20_000, max_c: int = 4, nan_runs: bool = False
) -> F32:
    """ECG-like ``(C, T)`` float32 in mV: DC offset + slow wander + spikes + noise, some leads flat,
    optionally with NaN/Inf runs. Built from a drawn seed so large ``T`` stays cheap."""
    c = draw(st.integers(1, max_c))
    t = draw(st.one_of(st.integers(min_t, min(max_t, min_t + 40)), st.integers(min_t, max_t)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    offset = draw(st.floats(-5.0, 5.0))
    noise = draw(st.floats(0.0, 2.0))
    n = np.arange(t)
    wide = offset + 0.5 * np.sin(2 * np.pi * n / max(t, 2)) + noise * rng.standard_normal((c, t))
    wide += 3.0 * (rng.random((c, t)) > 0.995)  # sparse "QRS" spikes
    for lead in range(c):
        if draw(st.booleans()) and draw(st.booleans()):  # ~1 lead in 4 flat (disconnected)
            wide[lead] = draw(st.floats(-AMPLITUDE_MV / 2, AMPLITUDE_MV / 2))
    x: F32 = np.clip(wide, -AMPLITUDE_MV, AMPLITUDE_MV).astype(np.float32)
    if nan_runs:
        for _ in range(draw(st.integers(0, 3))):
            lead = draw(st.integers(0, c - 1))
            start = draw(st.integers(0, t - 1))
            stop = draw(st.integers(start + 1, min(t, start + 1 + max(1, t // 4))))
            x[lead, start:stop] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return x


def _plan(**kw: object) -> SignalPlan:
    base: dict[str, object] = dict(
        leads=("I", "II"),
        lead_aliases=(("II", ("MLII",)),),
        fs_hz=250.0,
        length=500,
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
        min_duration_s=0.0,
    )
    base.update(kw)
    return SignalPlan(**base)  # type: ignore[arg-type]


def _record(rid: str, x: F32, fs: float | None, leads: tuple[str, ...]) -> Record:
    return Record(
        record_id=rid,
        source="prop",
        signal=x,
        fs_hz=fs,
        leads=leads,
        patient_id=None,
        raw_labels=(RawLabel("N"),),
        provenance=Provenance(files=((f"{rid}.dat", "0" * 64),), reader="prop@1"),
    )


# --------------------------------------------------------------------------- resampling


@FAST
@given(x=ecg_arrays(max_t=20_000), fs_in=rates, fs_out=rates)
def test_resample_length_is_resampled_length_and_output_is_finite_float32(
    x: F32, fs_in: float, fs_out: float
) -> None:
    y = sig.resample(x, fs_in, fs_out)
    assert y.shape == (x.shape[0], sig.resampled_length(x.shape[-1], fs_in, fs_out))
    assert y.dtype == np.float32
    assert np.isfinite(y).all()


@FAST
@given(t=st.integers(1, 100_000), fs_in=st.integers(1, 10_000), fs_out=st.integers(1, 10_000))
def test_integer_rates_resample_by_their_exact_ratio_to_ceil_t_times_ratio(
    t: int, fs_in: int, fs_out: int
) -> None:
    up, down = sig.resample_ratio(float(fs_in), float(fs_out))
    assert Fraction(up, down) == Fraction(fs_out, fs_in)
    assert sig.resampled_length(t, fs_in, fs_out) == -(-t * fs_out // fs_in)


@FAST
@given(fs_in=mhz_rates, fs_out=st.sampled_from(REAL_RATES))
def test_rate_ratio_of_any_millihertz_rate_is_within_1e_4_of_the_true_ratio(
    fs_in: float, fs_out: float
) -> None:
    # limit_denominator(10_000) keeps the polyphase filter small; its error bound is 1 / (10_000 * up)
    up, down = sig.resample_ratio(fs_in, fs_out)
    assert up >= 1 and down >= 1
    assert math.isclose(fs_in * up / down, fs_out, rel_tol=1e-4)


def test_resample_ratio_of_a_millihertz_rate_is_the_nearest_small_fraction_as_documented() -> None:
    up, down = sig.resample_ratio(999.945, 1000.0)
    assert (up, down) == (10001, 10000)  # denominator capped at 10,000; relative error < 1e-4
    assert abs(999.945 * up / down - 1000.0) / 1000.0 < 1e-4


@FAST
@given(x=small_arrays(max_t=12), fs_in=st.sampled_from(REAL_RATES), fs_out=st.sampled_from(REAL_RATES))
def test_resample_of_very_short_signals_keeps_the_documented_length(
    x: F32, fs_in: float, fs_out: float
) -> None:
    y = sig.resample(x, fs_in, fs_out)
    assert y.shape[-1] == sig.resampled_length(x.shape[-1], fs_in, fs_out) >= 1
    assert y.dtype == np.float32 and np.isfinite(y).all()


@FAST
@given(x=ecg_arrays(max_t=3000), fs=rates)
def test_resample_to_the_same_rate_returns_the_input_unchanged(x: F32, fs: float) -> None:
    assert sig.resample(x, fs, fs) is x


# --------------------------------------------------------------------------- filters


def _spec(
    fs: float, baseline: float | None, notch: float | None, band: tuple[float, float] | None, order: int
) -> sig.FilterSpec:
    return sig.FilterSpec(
        fs_hz=fs, baseline_hz=baseline, notch_hz=notch, notch_q=30.0, bandpass_hz=band, order=order
    )


@st.composite
def highpass_specs(draw: st.DrawFn) -> sig.FilterSpec:
    """A spec whose cascade removes DC: a baseline high-pass and/or a band-pass, plus maybe a notch."""
    fs = draw(st.sampled_from(REAL_RATES))
    nyq = fs / 2
    baseline = draw(st.one_of(st.none(), st.floats(0.05, min(2.0, nyq / 4))))
    notch = draw(st.sampled_from([None, 50.0, 60.0]))
    band = None
    if baseline is None or draw(st.booleans()):
        lo = draw(st.floats(0.05, min(5.0, nyq / 8)))
        band = (lo, draw(st.floats(lo * 4, nyq * 0.95)))
    return _spec(fs, baseline, notch, band, draw(st.integers(1, 4)))


@FAST
@given(
    spec=highpass_specs(),
    level=st.floats(-AMPLITUDE_MV, AMPLITUDE_MV),
    c=st.integers(1, 3),
    extra=st.integers(0, 3000),
)
def test_high_pass_leaves_a_constant_signal_at_zero(
    spec: sig.FilterSpec, level: float, c: int, extra: int
) -> None:
    t = sig.min_filter_length(spec) + extra
    x = np.full((c, t), level, dtype=np.float32)
    y = sig.apply_filters(x, spec)
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.max(np.abs(y)) <= 1e-5 * max(1.0, abs(level))


@FAST
@given(spec=highpass_specs(), x=ecg_arrays(max_t=6000, max_c=3), batch=st.integers(1, 3))
def test_filters_keep_shape_float32_and_finite_output_for_a_batch(
    spec: sig.FilterSpec, x: F32, batch: int
) -> None:
    assume(x.shape[-1] >= sig.min_filter_length(spec))
    xb = np.stack([x] * batch)
    y = sig.apply_filters(xb, spec)
    assert y.shape == xb.shape and y.dtype == np.float32 and np.isfinite(y).all()


@FAST
@given(spec=highpass_specs(), c=st.integers(1, 3))
def test_min_filter_length_is_exactly_the_shortest_signal_the_filter_accepts(
    spec: sig.FilterSpec, c: int
) -> None:
    n = sig.min_filter_length(spec)
    assert np.isfinite(sig.apply_filters(np.ones((c, n), dtype=np.float32), spec)).all()
    if n > 1:
        with pytest.raises(ValueError):
            sig.apply_filters(np.ones((c, n - 1), dtype=np.float32), spec)


@FAST
@given(x=ecg_arrays(max_t=500), fs=st.sampled_from(REAL_RATES))
def test_a_spec_with_every_filter_off_returns_the_input(x: F32, fs: float) -> None:
    spec = _spec(fs, None, None, None, 2)
    assert sig.design_sos(spec) is None and sig.min_filter_length(spec) == 1
    assert sig.apply_filters(x, spec) is x


# --------------------------------------------------------------------------- fix_length


@FAST
@given(x=small_arrays(max_t=60), length=st.integers(1, 80), crop=st.sampled_from(["start", "center"]))
def test_fix_length_crops_or_zero_pads_at_the_end_as_documented(x: F32, length: int, crop: str) -> None:
    y = sig.fix_length(x, length, crop)  # type: ignore[arg-type]
    t = x.shape[-1]
    assert y.shape == (x.shape[0], length) and y.dtype == np.float32
    if t >= length:
        start = 0 if crop == "start" else (t - length) // 2
        np.testing.assert_array_equal(y, x[:, start : start + length])
    else:
        np.testing.assert_array_equal(y[:, :t], x)
        assert np.all(y[:, t:] == 0)


@FAST
@given(x=ecg_arrays(max_t=5000), length=st.integers(1, 6000), b=st.integers(1, 3))
def test_fix_length_on_a_batch_treats_every_record_alike(x: F32, length: int, b: int) -> None:
    xb = np.stack([x * (i + 1) for i in range(b)])
    y = sig.fix_length(xb, length, "center")
    assert y.shape == (b, x.shape[0], length)
    for i in range(b):
        np.testing.assert_array_equal(y[i], sig.fix_length(xb[i], length, "center"))


# --------------------------------------------------------------------------- normalise


@st.composite
def padded_batches(draw: st.DrawFn) -> tuple[F32, int]:
    """``(B, C, L)`` with zero padding after ``valid`` samples, as process() hands to normalise."""
    x = draw(ecg_arrays(min_t=2, max_t=3000, max_c=3))
    valid = x.shape[-1]
    pad = draw(st.integers(0, 200))
    xb = np.zeros((draw(st.integers(1, 3)), x.shape[0], valid + pad), dtype=np.float32)
    xb[..., :valid] = x
    return xb, valid


@FAST
@given(data=padded_batches())
def test_zscore_gives_zero_mean_unit_sd_over_valid_samples_and_keeps_padding_zero(
    data: tuple[F32, int],
) -> None:
    x, valid = data
    y = sig.normalise(x, "zscore", valid=valid)
    assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
    assert np.all(y[..., valid:] == 0)
    part = x[..., :valid].astype(np.float64)
    sd = part.std(axis=-1)
    body = y[..., :valid].astype(np.float64)
    varied = sd > 1e-2  # well above the 1e-8 guard, where float32 statistics are reliable
    np.testing.assert_allclose(body.mean(axis=-1)[varied], 0.0, atol=1e-3)
    np.testing.assert_allclose(body.std(axis=-1)[varied], 1.0, rtol=1e-3)
    for lead in zip(*np.nonzero(sd == 0), strict=True):
        assert np.all(body[lead] == 0)  # a flat lead becomes 0


def test_zscore_and_minmax_of_a_flat_lead_are_zero() -> None:
    x = np.full((1, 1, 7), -9.99, dtype=np.float32)
    np.testing.assert_array_equal(sig.normalise(x, "zscore"), np.zeros_like(x))
    np.testing.assert_array_equal(sig.normalise(x, "minmax"), np.zeros_like(x))


@FAST
@given(data=padded_batches())
def test_minmax_maps_each_lead_onto_minus_one_to_one_and_keeps_padding_zero(data: tuple[F32, int]) -> None:
    x, valid = data
    y = sig.normalise(x, "minmax", valid=valid)
    assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
    assert np.all(y[..., valid:] == 0)
    body = y[..., :valid]
    assert body.min() >= -1 - 1e-5 and body.max() <= 1 + 1e-5
    span = x[..., :valid].max(axis=-1) - x[..., :valid].min(axis=-1)
    varied = span > 1e-3
    np.testing.assert_allclose(body.min(axis=-1)[varied], -1.0, atol=1e-5)
    np.testing.assert_allclose(body.max(axis=-1)[varied], 1.0, atol=1e-5)
    # a flat lead maps to one constant (-1: its own minimum), never NaN
    for lead in zip(*np.nonzero(span == 0), strict=True):
        assert np.unique(body[lead]).size == 1


@FAST
@given(x=ecg_arrays(max_t=2000))
def test_normalise_none_is_the_identity(x: F32) -> None:
    assert sig.normalise(x, "none") is x


# --------------------------------------------------------------------------- NaN handling


@FAST
@given(x=ecg_arrays(max_t=4000, nan_runs=True))
def test_fill_nonfinite_is_finite_keeps_finite_samples_and_interpolates_inside_the_gap_bounds(x: F32) -> None:
    y = sig.fill_nonfinite(x)
    assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
    good = np.isfinite(x)
    np.testing.assert_array_equal(y[good], x[good])
    for c in range(x.shape[0]):
        if not good[c].any():
            assert np.all(y[c] == 0)  # documented: an all-NaN lead becomes 0
            continue
        lo, hi = x[c, good[c]].min(), x[c, good[c]].max()
        assert y[c].min() >= lo and y[c].max() <= hi  # linear interpolation never overshoots


@FAST
@given(x=ecg_arrays(max_t=4000, nan_runs=True))
def test_nan_fraction_counts_nan_and_inf(x: F32) -> None:
    assert sig.nan_fraction(x) == pytest.approx(float((~np.isfinite(x)).sum()) / x.size)


@FAST
@given(x=ecg_arrays(max_t=3000), min_ptp=st.floats(0.0, 1.0))
def test_flat_leads_are_exactly_those_with_peak_to_peak_below_the_threshold(x: F32, min_ptp: float) -> None:
    ptp = x.max(axis=-1) - x.min(axis=-1)
    assert sig.flat_leads(x, min_ptp) == [i for i in range(x.shape[0]) if ptp[i] < min_ptp]


# --------------------------------------------------------------------------- quantisation

scales = st.sampled_from([0.0005, 0.001, 0.00244, 0.005, 0.01])


def _round_trip_bound(x: F32, scale: float) -> npt.NDArray[np.float64]:
    # half a step, plus float32 rounding of x / scale and of q * scale (2 ulp-ish of |x|)
    return 0.5 * scale + 3e-7 * np.abs(x.astype(np.float64)) + 1e-9


@FAST
@given(
    x=hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 5), st.integers(1, 3), st.integers(1, 50)),
        elements=st.floats(-32.0, 32.0, width=32),
    ),
    scale=scales,
    block=st.integers(1, 7),
)
def test_quantise_rows_round_trips_within_half_a_step_and_counts_clipping(
    x: F32, scale: float, block: int
) -> None:
    q, clipped = sig.quantise_rows(x, scale, block)
    assert q.dtype == np.int16 and q.shape == x.shape and clipped.shape == (x.shape[0],)
    assert q.min() >= -32767  # -32768 is reserved (missing data in a later format)
    limit = 32767 * scale
    back = sig.dequantise(q, scale)
    assert back.dtype == np.float32
    inside = np.abs(x) <= limit * (1 - 1e-6)
    err = np.abs(back.astype(np.float64) - x)
    assert np.all(err[inside] <= _round_trip_bound(x, scale)[inside])
    over = np.rint(x.astype(np.float64) / scale)
    clipped_mask = np.abs(over) > 32767
    # samples beyond the range saturate at +-32767 steps, with their sign
    assert np.all(q[clipped_mask] == np.sign(x[clipped_mask]) * 32767)
    # the per-row count equals the saturated samples (the boundary step may round either way)
    slack = (
        (np.abs(np.abs(x.astype(np.float64) / scale) - 32767.5) < 0.01).reshape(x.shape[0], -1).sum(axis=1)
    )
    assert np.all(np.abs(clipped - clipped_mask.reshape(x.shape[0], -1).sum(axis=1)) <= slack)


@FAST
@given(x=ecg_arrays(max_t=5000), scale=scales)
def test_quantise_matches_quantise_rows_and_reports_the_total_clipped(x: F32, scale: float) -> None:
    q, n_clipped = sig.quantise(x, scale)
    q_rows, per_row = sig.quantise_rows(x[None], scale)
    np.testing.assert_array_equal(q, q_rows[0])
    assert n_clipped == int(per_row.sum())


@SLOW
@given(
    x=ecg_arrays(min_t=10, max_t=3000, max_c=2),
    n=st.integers(1, 5),
    scale=scales,
    per_chunk=st.integers(1, 4),
)
def test_a_zarr_shard_round_trips_int16_signals_within_half_a_step(
    tmp_path_factory: pytest.TempPathFactory, x: F32, n: int, scale: float, per_chunk: int
) -> None:
    signal = np.stack([x * (1 + 0.5 * i) for i in range(n)]).astype(np.float32)
    signal[0, 0, 0] = 40_000 * scale  # 40,000 steps: beyond int16, saturates at +32767 steps
    records = [
        _record(f"r{i}", signal[i], 500.0, tuple(f"L{j}" for j in range(x.shape[0]))) for i in range(n)
    ]
    store = ShardStore(tmp_path_factory.mktemp("store"), "prop")
    rows = rows_for(records, [f"u{i}" for i in range(n)], [x.shape[-1]] * n)
    store.write_shard("part-0", signal, rows, StorageSpec("int16", scale, per_chunk), {})
    back = read_signal(store.open_shard("part-0"))
    assert back.shape == signal.shape and back.dtype == np.float32
    inside = np.abs(signal) <= 32767 * scale * (1 - 1e-6)
    err = np.abs(back.astype(np.float64) - signal)
    assert np.all(err[inside] <= _round_trip_bound(signal, scale)[inside])
    assert back[0, 0, 0] == np.float32(32767) * np.float32(scale)


# --------------------------------------------------------------------------- preprocess.process


@st.composite
def plans(draw: st.DrawFn) -> SignalPlan:
    fs = draw(st.one_of(st.none(), st.sampled_from(REAL_RATES)))
    filtered = fs is not None and draw(st.booleans())
    baseline = draw(st.sampled_from([0.05, 0.5, 1.0])) if filtered else None
    notch = draw(st.sampled_from([None, 50.0, 60.0])) if filtered and fs is not None and fs > 130 else None
    return _plan(
        fs_hz=fs,
        length=draw(st.integers(1, 3000)),
        crop=draw(st.sampled_from(["start", "center"])),
        baseline_hz=baseline,
        notch_hz=notch,
        normalise=draw(st.sampled_from(["none", "zscore", "minmax"])),
        max_nan_fraction=draw(st.sampled_from([0.0, 0.05, 1.0])),
        flat_ptp_mv=draw(st.sampled_from([0.0, 0.02])),
        reject_flat=draw(st.booleans()),
        min_duration_s=draw(st.sampled_from([0.0, 0.5])),
    )


@st.composite
def record_lists(draw: st.DrawFn) -> list[Record]:
    out = []
    for i in range(draw(st.integers(1, 5))):
        x = draw(ecg_arrays(max_t=8000, max_c=3, nan_runs=True))
        leads = draw(st.sampled_from([("I", "II", "III"), ("MLII", "V1", "I"), ("V1", "V2", "V3")]))[
            : x.shape[0]
        ]
        fs = draw(st.one_of(st.none(), rates))
        out.append(_record(f"r{i}", x, fs, leads))
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans(), records=record_lists())
def test_process_yields_the_profile_shape_finite_float32_or_a_rejection_for_every_record(
    plan: SignalPlan, records: list[Record]
) -> None:
    batch, rejected = process(records, plan)
    assert batch.signal.shape == (len(batch.records), len(plan.leads), plan.length)
    assert batch.signal.dtype == np.float32 and np.isfinite(batch.signal).all()
    kept = [r.record_id for r in batch.records]
    assert kept == [r.record_id for r in records if r.record_id in set(kept)]  # input order kept
    assert sorted(kept + [r.item for r in rejected]) == sorted(r.record_id for r in records)
    assert all(isinstance(r, Rejection) and r.reason for r in rejected)
    for i, n in enumerate(batch.valid_len):
        assert 1 <= n <= plan.length
        assert np.all(batch.signal[i, :, n:] == 0)


@FAST
@given(
    plan=plans(),
    fs=st.sampled_from(REAL_RATES),
    extra=st.integers(0, 500),
    seed=st.integers(0, 2**32 - 1),
)
def test_a_record_long_enough_for_the_profile_fills_it_without_padding(
    plan: SignalPlan, fs: float, extra: int, seed: int
) -> None:
    plan = dataclasses.replace(plan, reject_flat=False, max_nan_fraction=1.0, min_duration_s=0.0)
    if plan.fs_hz is not None:  # a profile shorter than the filter's padding rejects everything
        assume(plan.length >= sig.min_filter_length(plan.filter_spec(plan.fs_hz)))
    span = plan.length if plan.fs_hz is None else math.ceil(plan.length * fs / plan.fs_hz)
    x = np.random.default_rng(seed).standard_normal((2, span + extra)).astype(np.float32)
    batch, rejected = process([_record("r", x, fs, ("II", "I"))], plan)
    assert not rejected and batch.valid_len == (plan.length,)
    assert np.isfinite(batch.signal).all()


def test_a_shard_of_known_values_rounds_to_the_step_and_saturates_at_32767_steps(tmp_path: Path) -> None:
    # Guards the shard round-trip property above against passing vacuously: one concrete shard.
    x = np.array([[[0.0, 0.0004, -0.0006, 12.3456, 40.0, -40.0]]], dtype=np.float32)
    rec = _record("r", x[0], 500.0, ("I",))
    store = ShardStore(tmp_path, "prop")
    store.write_shard("p", x, rows_for([rec], ["u"], [6]), StorageSpec("int16", 0.001, 1), {})
    back = read_signal(store.open_shard("p"))
    np.testing.assert_allclose(back[0, 0], [0.0, 0.0, -0.001, 12.346, 32.767, -32.767], atol=1e-6)
