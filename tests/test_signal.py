"""Signal transforms: resampling lengths, filter behaviour, padding, normalisation, quantisation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.records import Provenance
from pipeline.signal import dsp as sig
from pipeline.sources.ptbxl import PtbXlReader


def _spec(fs: float, **kw: object) -> sig.FilterSpec:
    base: dict[str, object] = {
        "fs_hz": fs,
        "baseline_hz": 0.5,
        "notch_hz": 50.0,
        "notch_q": 30.0,
        "bandpass_hz": None,
        "order": 2,
    }
    base.update(kw)
    return sig.FilterSpec(**base)  # type: ignore[arg-type]  # kwargs dict of mixed value types


def test_resample_500_to_300_gives_exact_length_and_keeps_a_10hz_sine() -> None:
    t = np.arange(5000) / 500
    x = np.sin(2 * np.pi * 10 * t).astype(np.float32)[None, None, :]
    y = sig.resample(x, 500, 300)
    assert y.shape == (1, 1, 3000)
    t2 = np.arange(3000) / 300
    ref = np.sin(2 * np.pi * 10 * t2)
    assert np.max(np.abs(y[0, 0, 100:-100] - ref[100:-100])) < 1e-2


def test_resample_ratio_handles_non_integer_rates() -> None:
    assert sig.resample_ratio(360, 250) == (25, 36)
    assert sig.resample_ratio(257, 500) == (500, 257)


def test_baseline_highpass_removes_wander_and_notch_removes_mains_but_keeps_qrs_band() -> None:
    fs = 500
    t = np.arange(10 * fs) / fs
    wander = 0.8 * np.sin(2 * np.pi * 0.15 * t)
    mains = 0.2 * np.sin(2 * np.pi * 50 * t)
    qrs_band = 0.5 * np.sin(2 * np.pi * 10 * t)
    x = (wander + mains + qrs_band).astype(np.float32)[None, :]
    y = sig.apply_filters(x, _spec(fs))[0, fs:-fs]
    ref = qrs_band[fs:-fs]
    assert np.sqrt(np.mean((y - ref) ** 2)) < 0.02


def test_filters_are_designed_once_per_spec() -> None:
    sig.design_sos.cache_clear()
    spec = _spec(500)
    sig.design_sos(spec)
    sig.design_sos(spec)
    info = sig.design_sos.cache_info()
    assert info.hits == 1 and info.misses == 1


def test_batch_filtering_equals_record_by_record() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 2000)).astype(np.float32)
    spec = _spec(500, bandpass_hz=(0.5, 40.0))
    batch = sig.apply_filters(x, spec)
    single = np.stack([sig.apply_filters(r, spec) for r in x])
    np.testing.assert_allclose(batch, single, atol=1e-6)


def test_fix_length_crops_start_or_center_and_zero_pads_at_end() -> None:
    x = np.arange(10, dtype=np.float32)[None, :]
    assert sig.fix_length(x, 4, "start").tolist() == [[0, 1, 2, 3]]
    assert sig.fix_length(x, 4, "center").tolist() == [[3, 4, 5, 6]]
    assert sig.fix_length(x, 12).tolist() == [list(range(10)) + [0, 0]]


def test_zscore_ignores_padding_and_keeps_it_zero() -> None:
    x = np.zeros((1, 1, 10), dtype=np.float32)
    x[..., :6] = np.array([1, 2, 3, 4, 5, 6])
    y = sig.normalise(x, "zscore", valid=6)
    assert abs(float(y[..., :6].mean())) < 1e-6 and abs(float(y[..., :6].std()) - 1) < 1e-5
    assert np.all(y[..., 6:] == 0)


def test_fill_nonfinite_interpolates_gaps_and_zeroes_all_nan_leads() -> None:
    x = np.array([[0, np.nan, 2, np.inf, 4], [np.nan] * 5], dtype=np.float32)
    y = sig.fill_nonfinite(x)
    assert y[0].tolist() == [0, 1, 2, 3, 4]
    assert y[1].tolist() == [0] * 5
    assert sig.nan_fraction(x) == pytest.approx(7 / 10)


def test_flat_leads_finds_a_disconnected_lead() -> None:
    x = np.stack([np.sin(np.arange(100) / 5), np.full(100, 0.3)]).astype(np.float32)
    assert sig.flat_leads(x, 0.02) == [1]


def test_quantise_clips_and_counts_out_of_range_samples() -> None:
    x = np.array([0.0, 0.0015, 40.0, -40.0], dtype=np.float32)
    q, clipped = sig.quantise(x, 0.001)
    assert q.tolist() == [0, 2, 32767, -32767] and clipped == 2


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=50, max_value=3000),
    fs_in=st.sampled_from([100.0, 125.0, 200.0, 250.0, 257.0, 300.0, 360.0, 400.0, 500.0, 1000.0]),
    fs_out=st.sampled_from([100.0, 250.0, 300.0, 500.0]),
)
def test_resampled_length_matches_resample_output(n: int, fs_in: float, fs_out: float) -> None:
    x = np.random.default_rng(n).standard_normal((2, n)).astype(np.float32)
    y = sig.resample(x, fs_in, fs_out)
    assert y.shape == (2, sig.resampled_length(n, fs_in, fs_out))
    assert y.dtype == np.float32 and np.isfinite(y).all()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=-30, max_value=30, allow_nan=False, width=32), min_size=1, max_size=200))
def test_quantise_round_trip_is_within_half_a_step(values: list[float]) -> None:
    x = np.asarray(values, dtype=np.float32)
    q, clipped = sig.quantise(x, 0.001)
    assert clipped == 0
    assert np.max(np.abs(sig.dequantise(q, 0.001) - x)) <= 0.0005 + 1e-6


@pytest.mark.shared_data
def test_filtering_a_block_of_real_records_in_one_call_is_bit_identical_to_each_lead_alone(
    shared_data: Path,
) -> None:
    # Ingest filters (B, C, T) blocks in one sosfiltfilt call; scipy loops over the signals of that
    # call one by one, so each lead gets exactly the float64 operations it would get alone.
    reader = PtbXlReader("ptbxl", shared_data / "ptbxl", rates=(500,))
    units = reader.discover().units[:8]
    block = np.stack([next(iter(reader.read(u, Provenance((), "x")))).signal for u in units])  # type: ignore[union-attr]
    assert block.shape == (8, 12, 5000) and block.dtype == np.float32
    spec = _spec(500)
    together = sig.apply_filters(block, spec)
    for b in range(block.shape[0]):
        for c in range(block.shape[1]):
            alone = sig.apply_filters(np.ascontiguousarray(block[b, c]), spec)
            assert np.array_equal(together[b, c], alone), (units[b].key, c)
    assert not np.array_equal(together, block)  # the filters did change the signal
