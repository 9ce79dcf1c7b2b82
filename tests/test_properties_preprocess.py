"""Hypothesis properties of int16 quantisation (also through a real zarr shard) and of
``pipeline.signal.preprocess.process``: every record yields the profile shape, finite float32, or a
rejection. Strategies are in tests/signal_strategies.py.
"""

from __future__ import annotations

import dataclasses
import math
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
from tests.signal_strategies import F32, FAST, REAL_RATES, SLOW, ecg_arrays, rates


def _plan(**kw: object) -> SignalPlan:
    base: dict[str, object] = {
        "leads": ("I", "II"),
        "lead_aliases": (("II", ("MLII",)),),
        "fs_hz": 250.0,
        "length": 500,
        "crop": "start",
        "baseline_hz": 0.5,
        "notch_hz": 50.0,
        "notch_q": 30.0,
        "bandpass_hz": None,
        "filter_order": 2,
        "normalise": "none",
        "max_nan_fraction": 0.05,
        "flat_ptp_mv": 0.02,
        "reject_flat": True,
        "min_duration_s": 0.0,
    }
    base.update(kw)
    return SignalPlan(**base)  # type: ignore[arg-type]  # kwargs dict of mixed value types


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
