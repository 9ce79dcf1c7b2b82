"""Hypothesis properties of the signal transforms in pipeline/signal/dsp.py (quantisation and
``preprocess.process`` are in test_properties_preprocess.py; strategies in tests/signal_strategies.py).

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

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from pipeline.signal import dsp as sig
from tests.signal_strategies import (
    AMPLITUDE_MV,
    F32,
    FAST,
    REAL_RATES,
    ecg_arrays,
    mhz_rates,
    rates,
    small_arrays,
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
    y = sig.fix_length(x, length, crop)  # type: ignore[arg-type]  # hypothesis draws crop as str
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
