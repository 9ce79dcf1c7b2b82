"""Pure numpy/scipy transforms on ECG arrays: ``(C, T)`` for one record, ``(B, C, T)`` for a batch.

Filters are designed once per (settings, fs) and applied to a whole batch in one call, because
per-record redesign and per-record calls dominate the cost (≈ 3.5 ms/record measured, DESIGN.md).
All amplitudes are mV.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Literal

import numpy as np
import numpy.typing as npt

from pipeline.signal.sosfilt import pad_length, sosfiltfilt

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class FilterSpec:
    """Filter settings at one sampling rate; hashable so designs are cached."""

    fs_hz: float
    baseline_hz: float | None  # high-pass corner for baseline-wander removal
    notch_hz: float | None  # power-line frequency
    notch_q: float
    bandpass_hz: tuple[float, float] | None
    order: int


@lru_cache(maxsize=64)
def design_sos(spec: FilterSpec) -> npt.NDArray[np.float64] | None:
    """One second-order-sections cascade for all enabled filters (None if none is enabled).

    Butterworth high-pass for baseline wander, IIR notch for mains, optional Butterworth band-pass.
    Applied forward-backward (zero phase), so the effective order doubles.
    """
    from scipy import signal as sps  # on first use: importing scipy.signal costs ~0.5 s per command

    stages: list[npt.NDArray[np.float64]] = []
    nyq = spec.fs_hz / 2
    if spec.baseline_hz is not None:
        stages.append(sps.butter(spec.order, spec.baseline_hz, btype="highpass", fs=spec.fs_hz, output="sos"))
    if spec.notch_hz is not None and spec.notch_hz < nyq:
        b, a = sps.iirnotch(spec.notch_hz, spec.notch_q, fs=spec.fs_hz)
        stages.append(sps.tf2sos(b, a))
    if spec.bandpass_hz is not None:
        lo, hi = spec.bandpass_hz
        stages.append(
            sps.butter(spec.order, [lo, min(hi, 0.99 * nyq)], btype="bandpass", fs=spec.fs_hz, output="sos")
        )
    if not stages:
        return None
    return np.ascontiguousarray(np.concatenate(stages, axis=0), dtype=np.float64)


def apply_filters(x: F32, spec: FilterSpec) -> F32:
    """Zero-phase filter ``x`` ``(..., T)`` along the last axis; returns float32 of the same shape.

    The float64 result is ``scipy.signal.sosfiltfilt``'s to the bit, computed on eight signals per
    loop (:mod:`pipeline.signal.sosfilt`)."""
    sos = design_sos(spec)
    if sos is None:
        return x
    return sosfiltfilt(sos, x).astype(np.float32, copy=False)


def min_filter_length(spec: FilterSpec) -> int:
    """Shortest signal (samples) that ``sosfiltfilt`` accepts with its default padding."""
    sos = design_sos(spec)
    if sos is None:
        return 1
    return pad_length(sos) + 1


def resample_ratio(fs_in: float, fs_out: float) -> tuple[int, int]:
    """Integer (up, down) with ``fs_in * up / down ≈ fs_out``: exact when the 1 mHz-rounded ratio has a
    denominator ≤ 10,000 (all integer rates up to 10 kHz), else the closest such fraction (relative
    error < 1e-4), which keeps the polyphase filter small."""
    frac = Fraction(round(fs_out * 1000), round(fs_in * 1000)).limit_denominator(10_000)
    return frac.numerator, frac.denominator


def resample(x: F32, fs_in: float, fs_out: float) -> F32:
    """Polyphase resampling of ``(..., T)`` along the last axis from ``fs_in`` to ``fs_out`` Hz."""
    from scipy import signal as sps  # on first use: importing scipy.signal costs ~0.5 s per command

    up, down = resample_ratio(fs_in, fs_out)
    if up == down:
        return x
    y: F32 = sps.resample_poly(x, up, down, axis=-1).astype(np.float32, copy=False)
    return y


def resampled_length(n: int, fs_in: float, fs_out: float) -> int:
    up, down = resample_ratio(fs_in, fs_out)
    return -(-n * up // down)


def fix_length(x: F32, length: int, crop: Literal["start", "center"] = "start") -> F32:
    """Crop or zero-pad ``(..., T)`` to ``(..., length)``; padding goes at the end."""
    t = x.shape[-1]
    if t == length:
        return x
    if t > length:
        start = 0 if crop == "start" else (t - length) // 2
        return x[..., start : start + length]
    pad = [(0, 0)] * (x.ndim - 1) + [(0, length - t)]
    return np.pad(x, pad)


def normalise(x: F32, how: Literal["none", "zscore", "minmax"], valid: int | None = None) -> F32:
    """Per-lead normalisation of ``(..., C, T)``; statistics over the first ``valid`` samples.

    ``valid`` excludes zero padding from the statistics; padding stays 0. A flat lead (spread below
    1e-8 + 1e-6 of its level) becomes 0 under either method.
    """
    if how == "none":
        return x
    # float64 statistics: a flat lead's float32 mean is off by an ulp, its "sd" then ~1e-6 and the
    # lead became a constant ±1 instead of 0. A lead whose spread is below 1e-6 of its level is flat.
    part = (x[..., :valid] if valid is not None else x).astype(np.float64)
    x64 = x.astype(np.float64)
    if how == "zscore":
        mu = part.mean(axis=-1, keepdims=True)
        sd = part.std(axis=-1, keepdims=True)
        flat = sd <= 1e-8 + 1e-6 * np.abs(mu)
        out = np.where(flat, 0.0, (x64 - mu) / np.where(flat, 1.0, sd))
    else:
        lo = part.min(axis=-1, keepdims=True)
        hi = part.max(axis=-1, keepdims=True)
        flat = hi - lo <= 1e-8 + 1e-6 * np.maximum(np.abs(lo), np.abs(hi))
        out = np.where(flat, 0.0, 2 * (x64 - lo) / np.where(flat, 1.0, hi - lo) - 1)
    if valid is not None and valid < x.shape[-1]:
        out[..., valid:] = 0
    result: F32 = out.astype(np.float32, copy=False)
    return result


def nan_fraction(x: F32) -> float:
    """Fraction of non-finite samples in ``x``."""
    return float(1.0 - np.isfinite(x).mean()) if x.size else 0.0


def fill_nonfinite(x: F32) -> F32:
    """Linear interpolation over NaN/Inf samples per lead of ``(C, T)``; an all-NaN lead becomes 0."""
    out = x.copy()
    t = np.arange(x.shape[-1])
    for c in range(x.shape[0]):
        bad = ~np.isfinite(out[c])
        if not bad.any():
            continue
        good = ~bad
        out[c, bad] = np.interp(t[bad], t[good], out[c, good]) if good.any() else 0.0
    return out


def flat_leads(x: F32, min_ptp_mv: float) -> list[int]:
    """Indices of leads of ``(C, T)`` whose peak-to-peak amplitude is below ``min_ptp_mv``."""
    ptp = np.ptp(x, axis=-1)
    return [int(i) for i in np.flatnonzero(ptp < min_ptp_mv)]


def quantise(x: F32, scale_mv: float) -> tuple[npt.NDArray[np.int16], int]:
    """mV → int16 steps of ``scale_mv``; returns the array and the number of clipped samples."""
    q, clipped = quantise_rows(x.reshape(1, -1), scale_mv)
    return q.reshape(x.shape), int(clipped.sum())


def quantise_rows(
    x: F32, scale_mv: float, block: int = 16
) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.int32]]:
    """``(N, ...)`` mV → int16 steps, and the count of clipped samples per row ``(N,)``.

    One rounding pass per block of rows into a preallocated output: whole-batch temporaries of
    float64 cost more in page zeroing than the arithmetic itself.
    """
    out = np.empty(x.shape, dtype=np.int16)
    clipped = np.zeros(x.shape[0], dtype=np.int32)
    inv = 1.0 / scale_mv
    for i in range(0, x.shape[0], block):
        r = np.rint(x[i : i + block] * np.float32(inv))
        over = (r > 32767) | (r < -32767)
        clipped[i : i + block] = over.reshape(over.shape[0], -1).sum(axis=1)
        # -32768 is left unused so it can mark missing data in a later format version.
        np.clip(r, -32767, 32767, out=r)
        out[i : i + block] = r
    return out, clipped


def dequantise(q: npt.NDArray[np.int16], scale_mv: float) -> F32:
    """int16 steps → float32 mV."""
    return (q.astype(np.float32) * np.float32(scale_mv)).astype(np.float32, copy=False)
