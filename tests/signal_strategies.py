"""Hypothesis strategies and settings shared by the signal property tests: ECG-like float32
``(C, T)`` arrays in mV (large ones built from a drawn seed), small shrinkable arrays, sampling rates."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

F32 = npt.NDArray[np.float32]
AMPLITUDE_MV = 20.0  # beyond any real ECG lead, inside the int16 range at 1 µV steps
FAST = settings(max_examples=40, deadline=None)
SLOW = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Sampling rates met in real data plus awkward ones (prime, fractional).
REAL_RATES = (50.0, 100.0, 125.0, 128.0, 200.0, 250.0, 257.0, 300.0, 360.0, 400.0, 500.0, 1000.0)
mhz_rates = st.integers(min_value=50_000, max_value=2_000_000).map(lambda m: m / 1000)
rates = st.one_of(st.sampled_from(REAL_RATES), mhz_rates)


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
