"""Seeded synthetic ECG with physiologically meaningful class differences (pure numpy, no I/O).

The model follows ECGSYN (McSharry et al., IEEE TBME 2003) in describing every beat as a sum of
Gaussian waves (P, Q, R, S, T and class-specific extras), but gives each wave a 3-D direction so
that the waves add up to a heart vector ``d(t)`` of shape ``(3, T)`` in mV. Axes: x towards the
patient's left, y towards the feet, z anterior. The vector is projected onto the eight
independent leads I, II, V1–V6; III, aVR, aVL and aVF are then derived from I and II exactly as
an electrocardiograph derives them, so Einthoven's and Goldberger's identities hold bit for bit
in float32 (``III == II - I``, ``aVR == -(I + II) / 2``, ``aVL == I - II / 2``, ``aVF == II - I / 2``).

Classes (``CLASSES``) differ in rhythm and morphology:

- ``NORM``: sinus rhythm 55–95 bpm with respiratory RR modulation, a P wave before every QRS,
  narrow QRS (≈ 80–100 ms).
- ``AF``: irregularly irregular RR drawn independently from a wide distribution, no P waves,
  4–9 Hz fibrillatory f-waves.
- ``BBB``: sinus rhythm, QRS ≥ 120 ms; variant ``RBBB`` (terminal rightward-anterior R' in V1,
  broad S in I/V6) or ``LBBB`` (no septal q, broad notched R in I/V6, QS in V1), discordant T.
- ``MI``: pathological Q waves (≥ 40 ms) and ST elevation in the territory's leads with
  reciprocal depression; variant ``inferior`` (II, III, aVF) or ``anterior`` (V1–V4).
- ``NOISY``: sinus beats buried under motion-artefact bursts, baseline steps and EMG noise.
- ``OTHER``: variant ``PVC`` (frequent premature ventricular beats) or ``STACH``
  (sinus tachycardia 100–150 bpm).

Every record also carries mild baseline wander, mains hum and white noise. All randomness comes
from the ``numpy.random.Generator`` passed in, so a seed fixes the output exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from pipeline.core.leads import STANDARD_12, canonical_lead
from pipeline.core.records import FloatArray

F64 = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

CLASSES: tuple[str, ...] = ("NORM", "AF", "BBB", "MI", "NOISY", "OTHER")
VARIANTS: Mapping[str, tuple[str, ...]] = {
    "NORM": ("sinus",),
    "AF": ("af",),
    "BBB": ("RBBB", "LBBB"),
    "MI": ("inferior", "anterior"),
    "NOISY": ("artefact",),
    "OTHER": ("PVC", "STACH"),
}
# Beat kinds: N normal (or AF-conducted), V premature ventricular, R R-on-T PVC,
# S supraventricular premature, F fusion of a sinus and a ventricular beat.
BEAT_KINDS: tuple[str, ...] = ("N", "V", "R", "S", "F")

_INDEPENDENT = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
# Angle in the horizontal plane (0° = left, 90° = anterior) and gain of each chest lead; the
# middle chest leads sit closest to the heart, hence the larger gains.
_PRECORDIAL = ((115.0, 0.9), (95.0, 1.6), (75.0, 1.8), (55.0, 1.9), (30.0, 1.6), (0.0, 1.2))
_MARGIN_BEFORE_S = 1.5  # beats start before t = 0 so the first seconds hold complete waves
_MARGIN_AFTER_S = 1.0


def _lead_matrix() -> F64:
    """(8, 3) projection of the heart vector onto I, II, V1–V6."""
    rows = [(1.0, 0.0, 0.0), (0.5, math.sqrt(3.0) / 2.0, 0.0)]
    for angle, gain in _PRECORDIAL:
        rad = math.radians(angle)
        rows.append((gain * math.cos(rad), 0.0, gain * math.sin(rad)))
    return np.array(rows, dtype=np.float64)


_LEAD_MATRIX = _lead_matrix()


def _unit(x: float, y: float, z: float) -> F64:
    v = np.array([x, y, z], dtype=np.float64)
    return v / float(np.linalg.norm(v))


@dataclass(frozen=True)
class Wave:
    """One Gaussian wave of a beat.

    ``offset_s`` is the time of its peak relative to the R peak (multiplied by ``sqrt(RR)`` when
    ``qt_scaled``, so repolarisation shortens at high rates as QT does), ``width_s`` its standard
    deviation, ``vector`` its 3-D amplitude in mV.
    """

    offset_s: float
    width_s: float
    vector: tuple[float, float, float]
    qt_scaled: bool = False


def _wave(offset_s: float, width_s: float, vector: F64, qt_scaled: bool = False) -> Wave:
    return Wave(offset_s, width_s, (float(vector[0]), float(vector[1]), float(vector[2])), qt_scaled)


@dataclass(frozen=True)
class Patient:
    """Per-patient anatomy: what stays the same across one patient's recordings.

    ``axis_deg`` is the frontal QRS axis, ``r_amp_mv`` the R-vector magnitude (≈ the R amplitude
    in the lead along the axis), ``posterior`` the z component of the R direction (sets the
    precordial transition), ``pvc_direction`` the unit vector of this patient's ectopic focus.
    """

    axis_deg: float
    r_amp_mv: float
    posterior: float
    p_axis_deg: float
    p_amp_mv: float
    t_amp_mv: float
    pr_s: float
    qrs_scale: float
    pvc_direction: tuple[float, float, float]


def draw_patient(rng: np.random.Generator) -> Patient:
    """Draw one patient's anatomy."""
    pvc = rng.normal(size=3)
    pvc /= float(np.linalg.norm(pvc))
    return Patient(
        axis_deg=float(np.clip(rng.normal(50.0, 22.0), -25.0, 95.0)),
        r_amp_mv=float(rng.uniform(0.8, 1.5)),
        posterior=float(rng.uniform(-0.45, -0.15)),
        p_axis_deg=float(rng.normal(55.0, 10.0)),
        p_amp_mv=float(rng.uniform(0.1, 0.2)),
        t_amp_mv=float(rng.uniform(0.22, 0.42)),
        pr_s=float(rng.uniform(0.14, 0.18)),
        qrs_scale=float(rng.uniform(0.92, 1.08)),
        pvc_direction=(float(pvc[0]), float(pvc[1]), float(pvc[2])),
    )


@dataclass(frozen=True)
class SynthECG:
    """A synthetic recording and what it was made of.

    ``signal`` is float32 ``(C, T)`` in mV with all noise; ``clean`` the same leads with the
    cardiac signal only (f-waves included, no wander, hum, white noise or artefacts);
    ``r_peaks`` int64 ``(B,)`` sample indices of the R peaks inside ``[0, T)`` and ``beat_kinds``
    one character of ``BEAT_KINDS`` per peak.
    """

    signal: FloatArray
    clean: FloatArray
    r_peaks: IntArray
    beat_kinds: str
    fs_hz: float
    leads: tuple[str, ...]
    cls: str
    variant: str
    heart_rate_bpm: float
    axis_deg: float
    patient: Patient


# --------------------------------------------------------------------------- morphology


def _normal_waves(p: Patient, with_p: bool = True) -> list[Wave]:
    ax = math.radians(p.axis_deg)
    pax = math.radians(p.p_axis_deg)
    s = p.qrs_scale
    waves = [
        _wave(-0.03 * s, 0.009 * s, 0.12 * _unit(-0.6, 0.3, 0.75)),  # septal q: right, anterior
        _wave(0.0, 0.011 * s, p.r_amp_mv * _unit(math.cos(ax), math.sin(ax), p.posterior)),
        _wave(0.03 * s, 0.010 * s, 0.3 * p.r_amp_mv * _unit(-0.35, -0.55, -0.75)),  # basal forces
        _wave(0.27, 0.045, p.t_amp_mv * _unit(math.cos(ax - 0.17), math.sin(ax - 0.17), 0.35), True),
    ]
    if with_p:
        waves.insert(0, _wave(-p.pr_s, 0.022, p.p_amp_mv * _unit(math.cos(pax), math.sin(pax), 0.15)))
    return waves


def _rbbb_waves(p: Patient) -> list[Wave]:
    """Normal early QRS, then slow right-ventricular activation: a late rightward-anterior R'."""
    ax = math.radians(p.axis_deg)
    s = p.qrs_scale
    pax = math.radians(p.p_axis_deg)
    return [
        _wave(-p.pr_s, 0.022, p.p_amp_mv * _unit(math.cos(pax), math.sin(pax), 0.15)),
        _wave(-0.03 * s, 0.009 * s, 0.12 * _unit(-0.6, 0.3, 0.75)),
        _wave(0.0, 0.011 * s, 0.85 * p.r_amp_mv * _unit(math.cos(ax), math.sin(ax), p.posterior)),
        _wave(0.032 * s, 0.011 * s, 0.25 * p.r_amp_mv * _unit(-0.35, -0.55, -0.75)),
        _wave(0.075 * s, 0.02 * s, 0.7 * p.r_amp_mv * _unit(-0.6, 0.05, 0.8)),
        _wave(0.30, 0.05, p.t_amp_mv * _unit(0.7, 0.6, -0.45), True),  # discordant to R' in V1
    ]


def _lbbb_waves(p: Patient) -> list[Wave]:
    """No septal q; two slow leftward-posterior fronts give a broad notched R; discordant T."""
    s = p.qrs_scale
    pax = math.radians(p.p_axis_deg)
    r = 1.2 * p.r_amp_mv
    return [
        _wave(-p.pr_s, 0.022, p.p_amp_mv * _unit(math.cos(pax), math.sin(pax), 0.15)),
        _wave(-0.03 * s, 0.018 * s, 0.8 * r * _unit(0.75, 0.05, -0.65)),
        _wave(0.035 * s, 0.019 * s, 0.9 * r * _unit(0.85, -0.15, -0.5)),
        _wave(0.31, 0.06, 1.3 * p.t_amp_mv * _unit(-0.7, -0.1, 0.7), True),
    ]


_TERRITORY = {"inferior": _unit(0.15, 1.0, 0.05), "anterior": _unit(0.1, -0.3, 1.0)}


def _mi_waves(p: Patient, territory: str, rng: np.random.Generator) -> list[Wave]:
    """Necrosis removes forces towards the territory (deep wide Q, smaller R); injury current
    points towards it (ST elevation there, reciprocal depression opposite)."""
    u = _TERRITORY[territory]
    waves = _normal_waves(p)
    r_index = 2  # P, septal q, R, S, T
    r = np.array(waves[r_index].vector)
    toward = float(r @ u)
    if toward > 0:
        r = r - 0.6 * toward * u
    waves[r_index] = _wave(0.0, waves[r_index].width_s, r)
    q_amp = float(rng.uniform(0.3, 0.55))
    st_amp = float(rng.uniform(0.15, 0.3))
    waves += [
        _wave(-0.036, 0.016, -q_amp * u),
        _wave(0.08, 0.03, st_amp * u),
        _wave(0.15, 0.04, st_amp * u, True),
    ]
    return waves


def _pvc_waves(p: Patient) -> list[Wave]:
    """Ectopic ventricular beat: no P, wide bizarre QRS from the patient's focus, discordant T."""
    v = np.array(p.pvc_direction)
    side = np.cross(v, np.array([0.0, 0.0, 1.0]))
    side = side / max(float(np.linalg.norm(side)), 1e-6)
    r = 1.6 * p.r_amp_mv
    return [
        _wave(-0.02, 0.028, r * v),
        _wave(0.045, 0.026, 0.45 * r * _unit(*(side - 0.5 * v))),
        _wave(0.30, 0.065, -0.35 * r * v, True),
    ]


def _svpb_waves(p: Patient) -> list[Wave]:
    """Supraventricular premature beat: ectopic (low atrial, inverted inferior) P, normal QRS."""
    waves = _normal_waves(p, with_p=False)
    waves.insert(0, _wave(-0.13, 0.02, p.p_amp_mv * _unit(0.3, -0.9, 0.3)))
    return waves


def _scaled(w: Wave, k: float) -> Wave:
    return Wave(w.offset_s, w.width_s, (k * w.vector[0], k * w.vector[1], k * w.vector[2]), w.qt_scaled)


def _fusion_waves(p: Patient, ventricular: float = 0.5) -> list[Wave]:
    """Sinus and ventricular fronts meet: the sinus P, then QRS and T mixed with weight
    ``ventricular`` (0–1) on the ectopic part."""
    normal = _normal_waves(p)
    mixed = [_scaled(w, 1.0 - ventricular) for w in normal[1:]] + [
        _scaled(w, ventricular) for w in _pvc_waves(p)
    ]
    return [normal[0], *mixed]


def _morphologies(
    p: Patient, cls: str, variant: str, rng: np.random.Generator, kinds: str = "N"
) -> dict[str, list[Wave]]:
    """Waves of the beat kinds in ``kinds`` for one record."""
    morphs: dict[str, list[Wave]] = {}
    for kind in sorted(set(kinds) - {"N"}):
        if kind == "F":
            morphs[kind] = _fusion_waves(p, float(rng.uniform(0.3, 0.7)))
        else:
            morphs[kind] = _svpb_waves(p) if kind == "S" else _pvc_waves(p)
    morphs["N"] = _sinus_morphology(p, cls, variant, rng)
    return morphs


def _sinus_morphology(p: Patient, cls: str, variant: str, rng: np.random.Generator) -> list[Wave]:
    """Waves of the record's dominant (sinus or AF-conducted) beat."""
    if cls == "AF":
        return _normal_waves(p, with_p=False)
    if variant == "RBBB":
        return _rbbb_waves(p)
    if variant == "LBBB":
        return _lbbb_waves(p)
    if cls == "MI":
        return _mi_waves(p, variant, rng)
    return _normal_waves(p)


# --------------------------------------------------------------------------- rhythm


@dataclass(frozen=True)
class _Rhythm:
    times_s: F64  # (B,) R-peak times, some before 0 and after the end
    kinds: str  # one character per beat
    rr_prev_s: F64  # (B,) preceding RR interval, sets QT


def _with_rr(times: F64, kinds: str) -> _Rhythm:
    rr = np.diff(times, prepend=times[0] - (times[1] - times[0]))
    return _Rhythm(times, kinds, rr)


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


def _rhythm(rng: np.random.Generator, cls: str, variant: str, duration_s: float) -> _Rhythm:
    if cls == "AF":
        times = _af_times(rng, duration_s)
        return _with_rr(times, "N" * len(times))
    if variant == "STACH":
        hr = rng.uniform(100.0, 150.0)
    elif cls == "NOISY":
        hr = rng.uniform(55.0, 110.0)
    else:
        hr = rng.uniform(55.0, 95.0)
    times = _sinus_times(rng, hr, duration_s)
    if variant == "PVC":
        times, kinds = _with_pvcs(rng, times)
        return _with_rr(times, kinds)
    return _with_rr(times, "N" * len(times))


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


def _render_beats(
    rhythm: _Rhythm, morphs: Mapping[str, Sequence[Wave]], beat_gain: F64, fs_hz: float, n: int
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


def _beat_gain(rng: np.random.Generator, times: F64) -> F64:
    """Respiration moves the heart: ±2–6 % amplitude modulation plus 2 % beat-to-beat scatter."""
    resp = rng.uniform(0.15, 0.4)
    depth = rng.uniform(0.02, 0.06)
    phase = rng.uniform(0, 2 * np.pi)
    return 1.0 + depth * np.sin(2 * np.pi * resp * times + phase) + rng.normal(0.0, 0.02, len(times))


def _f_waves(rng: np.random.Generator, fs_hz: float, n: int) -> F64:
    """(3, n) atrial fibrillatory activity: 4–9 Hz with wandering frequency and amplitude."""
    t = np.arange(n) / fs_hz
    f0 = rng.uniform(4.0, 9.0)
    inst = f0 + 0.6 * np.sin(2 * np.pi * rng.uniform(0.05, 0.2) * t + rng.uniform(0, 2 * np.pi))
    inst = np.clip(inst, 4.0, 9.0)
    phase = 2 * np.pi * np.cumsum(inst) / fs_hz + rng.uniform(0, 2 * np.pi)
    amp = rng.uniform(0.03, 0.1) * (1.0 + 0.35 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * t))
    wave = amp * (np.sin(phase) + 0.3 * np.sin(2 * phase + rng.uniform(0, 2 * np.pi)))
    # Atrial activity projects mostly onto V1 and the inferior leads.
    direction = _unit(-0.3, 0.6, 0.75)
    return direction[:, None] * wave[None, :]


# --------------------------------------------------------------------------- noise


def _sines(t: F64, hz: float, phases: F64) -> F64:
    """(k, n) ``sin(2π hz t + phase_k)``, from one sine and one cosine of length n."""
    w = 2 * np.pi * hz * t
    out: F64 = np.outer(np.cos(phases), np.sin(w)) + np.outer(np.sin(phases), np.cos(w))
    return out


def _ambient_noise(rng: np.random.Generator, fs_hz: float, n: int, mains_hz: float) -> F64:
    """(8, n) mild noise on the independent leads: baseline wander (0.1–0.4 Hz), mains hum (only
    where fs allows it: an anti-aliased recorder removes hum above Nyquist) and white noise."""
    t = np.arange(n) / fs_hz
    k = len(_INDEPENDENT)
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


def _artefacts(rng: np.random.Generator, fs_hz: float, n: int) -> F64:
    """(8, n) heavy CinC-'~'-like noise: motion bursts, baseline steps, EMG."""
    k = len(_INDEPENDENT)
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


# --------------------------------------------------------------------------- leads


def _derive_12(independent: F64) -> FloatArray:
    """(8, T) I, II, V1–V6 → (12, T) float32 in ``STANDARD_12`` order, limb leads derived."""
    ind = independent.astype(np.float32)
    lead_i, lead_ii = ind[0], ind[1]
    two = np.float32(2.0)
    derived = np.stack(
        [lead_ii - lead_i, -(lead_i + lead_ii) / two, lead_i - lead_ii / two, lead_ii - lead_i / two]
    )
    return np.concatenate([ind[:2], derived, ind[2:]]).astype(np.float32)


def _lead_rows(leads: Sequence[str]) -> list[int]:
    rows = []
    for name in leads:
        canon = canonical_lead(name)
        if canon not in STANDARD_12:
            raise ValueError(f"unknown lead {name!r}; expected one of {', '.join(STANDARD_12)}")
        rows.append(STANDARD_12.index(canon))
    return rows


def _check_args(cls: str, variant: str | None, fs_hz: float, duration_s: float) -> None:
    if cls not in CLASSES:
        raise ValueError(f"unknown class {cls!r}; expected one of {', '.join(CLASSES)}")
    if variant is not None and variant not in VARIANTS[cls]:
        raise ValueError(f"unknown variant {variant!r} of {cls}; expected one of {VARIANTS[cls]}")
    if fs_hz < 50 or duration_s <= 0:
        raise ValueError(f"need fs_hz >= 50 and duration_s > 0, got {fs_hz}, {duration_s}")


# --------------------------------------------------------------------------- public API


def synth_record(
    rng: np.random.Generator,
    cls: str,
    fs_hz: float,
    duration_s: float,
    leads: Sequence[str] = STANDARD_12,
    *,
    variant: str | None = None,
    patient: Patient | None = None,
    mains_hz: float | None = None,
) -> SynthECG:
    """One synthetic recording of class ``cls`` (see ``CLASSES``) with its beat positions.

    ``leads`` are lead names (any spelling ``canonical_lead`` knows); the result's rows follow
    them. ``variant`` picks a sub-type (``VARIANTS``), drawn when None; ``patient`` fixes the
    anatomy (drawn when None), so one patient's records resemble each other; ``mains_hz`` is
    50 or 60 Hz, drawn when None. Returns ``signal``/``clean`` float32 ``(C, round(fs_hz *
    duration_s))`` in mV.
    """
    _check_args(cls, variant, fs_hz, duration_s)
    rows = _lead_rows(leads)
    options = VARIANTS[cls]
    chosen = variant if variant is not None else options[int(rng.integers(len(options)))]
    anatomy = patient if patient is not None else draw_patient(rng)
    hum_hz = mains_hz if mains_hz is not None else float(rng.choice([50.0, 60.0]))
    n = int(round(fs_hz * duration_s))

    rhythm = _rhythm(rng, cls, chosen, duration_s)
    morphs = _morphologies(anatomy, cls, chosen, rng, rhythm.kinds)
    heart = _render_beats(rhythm, morphs, _beat_gain(rng, rhythm.times_s), fs_hz, n)
    if cls == "AF":
        heart += _f_waves(rng, fs_hz, n)
    if cls == "NOISY":
        heart *= rng.uniform(0.5, 0.9)
    cardiac = _LEAD_MATRIX @ heart
    noise = _ambient_noise(rng, fs_hz, n, hum_hz)
    if cls == "NOISY":
        noise += _artefacts(rng, fs_hz, n)

    peaks = np.round(rhythm.times_s * fs_hz).astype(np.int64)
    inside = (peaks >= 0) & (peaks < n)
    kinds = "".join(k for k, keep in zip(rhythm.kinds, inside, strict=True) if keep)
    rr = np.diff(rhythm.times_s)
    return SynthECG(
        signal=_derive_12(cardiac + noise)[rows],
        clean=_derive_12(cardiac)[rows],
        r_peaks=peaks[inside],
        beat_kinds=kinds,
        fs_hz=float(fs_hz),
        leads=tuple(STANDARD_12[r] for r in rows),
        cls=cls,
        variant=chosen,
        heart_rate_bpm=float(60.0 / rr.mean()),
        axis_deg=anatomy.axis_deg,
        patient=anatomy,
    )


def synth_ecg(
    rng: np.random.Generator, cls: str, fs_hz: float, duration_s: float, leads: Sequence[str] = STANDARD_12
) -> FloatArray:
    """float32 ``(C, round(fs_hz * duration_s))`` ECG in mV of class ``cls``; see :func:`synth_record`."""
    return synth_record(rng, cls, fs_hz, duration_s, leads).signal


def _beat_strip_times(rng: np.random.Generator, kind: str, rr: float, target_s: float) -> tuple[F64, str]:
    """Three sinus beats, the target beat at ``target_s`` and one beat after it."""
    if kind == "N":
        coupling = rr * rng.uniform(0.95, 1.05)
    elif kind == "V":
        coupling = rr * rng.uniform(0.55, 0.72)
    elif kind == "R":  # lands on the previous beat's T peak
        coupling = 0.27 * math.sqrt(rr) * rng.uniform(0.9, 1.1)
    elif kind == "S":
        coupling = rr * rng.uniform(0.6, 0.8)
    else:
        coupling = rr * rng.uniform(0.92, 1.0)
    prev = target_s - coupling
    # Ventricular beats leave the sinus node undisturbed (compensatory pause); others reset it.
    after = prev + 2 * rr if kind in ("V", "R") else target_s + rr
    times = np.array([prev - 2 * rr, prev - rr, prev, target_s, after], dtype=np.float64)
    return times, "NNN" + kind + "N"


def _beat_to_beat(rng: np.random.Generator, p: Patient) -> Patient:
    """The same patient a moment later: axis, amplitudes and ectopic focus vary a little."""
    focus = np.array(p.pvc_direction) + rng.normal(0.0, 0.2, 3)
    focus /= float(np.linalg.norm(focus))
    return replace(
        p,
        axis_deg=p.axis_deg + float(rng.normal(0.0, 6.0)),
        r_amp_mv=p.r_amp_mv * float(rng.uniform(0.85, 1.15)),
        t_amp_mv=p.t_amp_mv * float(rng.uniform(0.8, 1.2)),
        p_amp_mv=p.p_amp_mv * float(rng.uniform(0.8, 1.2)),
        qrs_scale=p.qrs_scale * float(rng.uniform(0.95, 1.05)),
        pvc_direction=(float(focus[0]), float(focus[1]), float(focus[2])),
    )


def synth_beat(
    rng: np.random.Generator,
    kind: str,
    fs_hz: float,
    n_before: int,
    n_after: int,
    lead: str = "II",
    patient: Patient | None = None,
) -> FloatArray:
    """One beat of ``kind`` (``BEAT_KINDS``) in its rhythm context, float32 ``(n_before + n_after,)``
    in mV, the R peak at index ``n_before``; mild noise included.

    The window is cut from a short sinus strip, so premature beats show what precedes them
    (an R-on-T beat sits on the previous T wave). ``patient`` is one patient's anatomy, varied a
    little as from beat to beat; drawn afresh when None.
    """
    if kind not in BEAT_KINDS:
        raise ValueError(f"unknown beat kind {kind!r}; expected one of {BEAT_KINDS}")
    row = _lead_rows([lead])
    anatomy = _beat_to_beat(rng, patient) if patient is not None else draw_patient(rng)
    rr = 60.0 / rng.uniform(60.0, 95.0)
    target = n_before + int(math.ceil(4 * rr * fs_hz))
    n = target + n_after + int(fs_hz)
    times, kinds = _beat_strip_times(rng, kind, rr, target / fs_hz)
    rhythm = _with_rr(times, kinds)
    morphs = _morphologies(anatomy, "NORM", "sinus", rng, kinds)
    heart = _render_beats(rhythm, morphs, _beat_gain(rng, times), fs_hz, n)
    mains = float(rng.choice([50.0, 60.0]))
    strip: FloatArray = _derive_12(_LEAD_MATRIX @ heart + _ambient_noise(rng, fs_hz, n, mains))[row[0]]
    return strip[target - n_before : target + n_after].copy()
