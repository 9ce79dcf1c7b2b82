"""Rhythm and rendering of the synthetic ECG: R-peak times per class, beats summed into a heart
vector ``(3, n)`` in mV, and atrial fibrillatory waves. Pure numpy; randomness from the caller."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.demo.waves import F64, Wave, unit

_MARGIN_BEFORE_S = 1.5  # beats start before t = 0 so the first seconds hold complete waves
_MARGIN_AFTER_S = 1.0


@dataclass(frozen=True)
class Rhythm:
    times_s: F64  # (B,) R-peak times, some before 0 and after the end
    kinds: str  # one character per beat
    rr_prev_s: F64  # (B,) preceding RR interval, sets QT


def with_rr(times: F64, kinds: str) -> Rhythm:
    rr = np.diff(times, prepend=times[0] - (times[1] - times[0]))
    return Rhythm(times, kinds, rr)


def _sinus_times(rng: np.random.Generator, hr_bpm: float, duration_s: float) -> F64:
    """R times with respiratory sinus arrhythmia (0.15–0.4 Hz) plus small beat-to-beat jitter."""
    rr0 = 60.0 / hr_bpm
    n = int(math.ceil((duration_s + _MARGIN_BEFORE_S + _MARGIN_AFTER_S) / (0.85 * rr0))) + 2
    resp_hz = rng.uniform(0.15, 0.4)
    rsa = rng.uniform(0.01, 0.04)
    jitter = rng.uniform(0.004, 0.012)
    beat = np.arange(n, dtype=np.float64)
    rr = rr0 * (1.0 + rsa * np.sin(2 * np.pi * resp_hz * beat * rr0 + rng.uniform(0, 2 * np.pi)))
    rr += rng.normal(0.0, jitter * rr0, n)
    start = -_MARGIN_BEFORE_S + rng.uniform(0.0, rr0)
    return start + np.concatenate([[0.0], np.cumsum(rr[:-1])])


def _af_times(rng: np.random.Generator, duration_s: float) -> F64:
    """Irregularly irregular: independent RR draws, log-normal with CV ≈ 0.2–0.4, no periodicity."""
    mean_rr = 60.0 / rng.uniform(70.0, 140.0)
    spread = rng.uniform(0.2, 0.38)
    n = int(math.ceil((duration_s + _MARGIN_BEFORE_S + _MARGIN_AFTER_S) / 0.28)) + 2
    rr = np.clip(mean_rr * rng.lognormal(-0.5 * spread**2, spread, n), 0.28, 2.2)
    start = -_MARGIN_BEFORE_S + rng.uniform(0.0, mean_rr)
    return start + np.concatenate([[0.0], np.cumsum(rr[:-1])])


def _with_pvcs(rng: np.random.Generator, times: F64) -> tuple[F64, str]:
    """Replace sinus beats by early ventricular beats; the sinus node keeps its rhythm, so the
    next sinus beat comes on time (full compensatory pause)."""
    out = times.copy()
    kinds = ["N"] * len(times)
    rate = rng.uniform(0.15, 0.35)
    for i in range(2, len(times)):
        if kinds[i - 1] == "N" and rng.random() < rate:
            rr = times[i] - times[i - 1]
            out[i] = times[i - 1] + rng.uniform(0.55, 0.72) * rr
            kinds[i] = "V"
    return out, "".join(kinds)


def draw_rhythm(rng: np.random.Generator, cls: str, variant: str, duration_s: float) -> Rhythm:
    if cls == "AF":
        times = _af_times(rng, duration_s)
        return with_rr(times, "N" * len(times))
    if variant == "STACH":
        hr = rng.uniform(100.0, 150.0)
    elif cls == "NOISY":
        hr = rng.uniform(55.0, 110.0)
    else:
        hr = rng.uniform(55.0, 95.0)
    times = _sinus_times(rng, hr, duration_s)
    if variant == "PVC":
        times, kinds = _with_pvcs(rng, times)
        return with_rr(times, kinds)
    return with_rr(times, "N" * len(times))


# --------------------------------------------------------------------------- rendering


def _gaussians(centers_s: F64, widths_s: F64, vectors: F64, fs_hz: float, n: int) -> F64:
    """Sum of Gaussians, each truncated at ±5 SD, as a (3, n) heart vector in mV."""
    out = np.zeros((3, n), dtype=np.float64)
    if len(centers_s) == 0:
        return out
    half = int(math.ceil(5.0 * float(widths_s.max()) * fs_hz)) + 1
    idx = np.round(centers_s * fs_hz).astype(np.int64)[:, None] + np.arange(-half, half + 1)[None, :]
    g = np.exp(-0.5 * ((idx / fs_hz - centers_s[:, None]) / widths_s[:, None]) ** 2)
    keep = (idx >= 0) & (idx < n)
    flat_idx = idx[keep]
    for axis in range(3):
        out[axis] = np.bincount(flat_idx, weights=(g * vectors[:, axis, None])[keep], minlength=n)
    return out


def render_beats(
    rhythm: Rhythm, morphs: Mapping[str, Sequence[Wave]], beat_gain: F64, fs_hz: float, n: int
) -> F64:
    """(3, n) heart vector of all beats; ``beat_gain`` (B,) scales each beat (respiration)."""
    centers: list[float] = []
    widths: list[float] = []
    vectors: list[tuple[float, ...]] = []
    for t, kind, rr, gain in zip(rhythm.times_s, rhythm.kinds, rhythm.rr_prev_s, beat_gain, strict=True):
        qt = math.sqrt(float(rr))
        for w in morphs[kind]:
            centers.append(float(t) + w.offset_s * (qt if w.qt_scaled else 1.0))
            widths.append(w.width_s)
            vectors.append(tuple(float(gain) * c for c in w.vector))
    return _gaussians(np.array(centers), np.array(widths), np.array(vectors).reshape(-1, 3), fs_hz, n)


def beat_gain(rng: np.random.Generator, times: F64) -> F64:
    """Respiration moves the heart: ±2–6 % amplitude modulation plus 2 % beat-to-beat scatter."""
    resp = rng.uniform(0.15, 0.4)
    depth = rng.uniform(0.02, 0.06)
    phase = rng.uniform(0, 2 * np.pi)
    return 1.0 + depth * np.sin(2 * np.pi * resp * times + phase) + rng.normal(0.0, 0.02, len(times))


def f_waves(rng: np.random.Generator, fs_hz: float, n: int) -> F64:
    """(3, n) atrial fibrillatory activity: 4–9 Hz with wandering frequency and amplitude."""
    t = np.arange(n) / fs_hz
    f0 = rng.uniform(4.0, 9.0)
    inst = f0 + 0.6 * np.sin(2 * np.pi * rng.uniform(0.05, 0.2) * t + rng.uniform(0, 2 * np.pi))
    inst = np.clip(inst, 4.0, 9.0)
    phase = 2 * np.pi * np.cumsum(inst) / fs_hz + rng.uniform(0, 2 * np.pi)
    amp = rng.uniform(0.03, 0.1) * (1.0 + 0.35 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * t))
    wave = amp * (np.sin(phase) + 0.3 * np.sin(2 * phase + rng.uniform(0, 2 * np.pi)))
    # Atrial activity projects mostly onto V1 and the inferior leads.
    direction = unit(-0.3, 0.6, 0.75)
    return direction[:, None] * wave[None, :]
