"""Noise of the synthetic ECG on the eight independent leads ``(8, n)`` in mV: mild ambient noise
on every record, heavy motion/electrode/EMG artefacts on ``NOISY`` ones."""

from __future__ import annotations

import numpy as np

from pipeline.demo.waves import F64, INDEPENDENT


def _sines(t: F64, hz: float, phases: F64) -> F64:
    """(k, n) ``sin(2π hz t + phase_k)``, from one sine and one cosine of length n."""
    w = 2 * np.pi * hz * t
    out: F64 = np.outer(np.cos(phases), np.sin(w)) + np.outer(np.sin(phases), np.cos(w))
    return out


def ambient_noise(rng: np.random.Generator, fs_hz: float, n: int, mains_hz: float) -> F64:
    """(8, n) mild noise on the independent leads: baseline wander (0.1–0.4 Hz), mains hum (only
    where fs allows it: an anti-aliased recorder removes hum above Nyquist) and white noise."""
    t = np.arange(n) / fs_hz
    k = len(INDEPENDENT)
    wander_hz = rng.uniform(0.1, 0.4)
    wander = rng.uniform(0.03, 0.15) * rng.uniform(0.5, 1.5, (k, 1))
    phases = rng.uniform(0, 2 * np.pi, (k, 2))
    noise = wander * (_sines(t, wander_hz, phases[:, 0]) + 0.5 * _sines(t, 0.37 * wander_hz, phases[:, 1]))
    hum = rng.uniform(0.003, 0.02) * rng.uniform(0.5, 1.5, (k, 1))
    hum_phase = rng.uniform(0, 2 * np.pi)
    if mains_hz < fs_hz / 2:
        noise += hum * np.sin(2 * np.pi * mains_hz * t + hum_phase)[None, :]
    noise += rng.normal(0.0, rng.uniform(0.004, 0.015), (k, n))
    return noise


def _lowpass_noise(rng: np.random.Generator, n: int, width: int) -> F64:
    """Unit-variance noise smoothed by a moving average of ``width`` samples."""
    x = np.convolve(rng.normal(size=n + width), np.ones(width) / width, mode="valid")[:n]
    return x / max(float(x.std()), 1e-9)


def artefacts(rng: np.random.Generator, fs_hz: float, n: int) -> F64:
    """(8, n) heavy CinC-'~'-like noise: motion bursts, baseline steps, EMG."""
    k = len(INDEPENDENT)
    out = np.zeros((k, n), dtype=np.float64)
    t = np.arange(n)
    for _ in range(int(rng.integers(1, 5))):  # motion artefact bursts (≈ 0.5–8 Hz)
        length = int(rng.uniform(0.5, 3.0) * fs_hz)
        start = int(rng.integers(0, max(1, n - length)))
        seg = np.zeros(n)
        stop = min(n, start + length)
        seg[start:stop] = np.hanning(length)[: stop - start]
        motion = _lowpass_noise(rng, n, max(1, int(fs_hz / 8)))
        out += rng.uniform(0.4, 1.5) * rng.uniform(-1.0, 1.0, (k, 1)) * (seg * motion)[None, :]
    for _ in range(int(rng.integers(1, 4))):  # electrode pops: a jump that decays slowly
        at = int(rng.integers(0, n))
        tau = rng.uniform(0.3, 1.5) * fs_hz
        step = np.where(t >= at, np.exp(-(t - at) / tau), 0.0)
        out += rng.uniform(0.3, 1.5) * rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 1.0, (k, 1)) * step
    white = rng.normal(size=(k, n))
    # Muscle noise is broadband above ~20 Hz: white noise minus its 20 Hz moving average.
    width = max(1, int(fs_hz / 20))
    smooth = np.stack([np.convolve(w, np.ones(width) / width, mode="same") for w in white])
    emg = white - smooth
    envelope = 0.6 + 0.4 * np.abs(_lowpass_noise(rng, n, max(1, int(fs_hz / 2))))
    out += rng.uniform(0.1, 0.3) * emg * envelope[None, :]
    return out
