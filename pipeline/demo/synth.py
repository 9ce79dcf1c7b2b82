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
- ``OTHER``: variant ``PVC`` (frequent premature ventricular beats), ``STACH`` (sinus
  tachycardia 100–150 bpm), ``LVH`` (left ventricular hypertrophy: tall leftward-posterior R,
  strain T) or ``STTC`` (non-specific ST-T change: flat or inverted T, mild ST depression).

``severity`` (0–1] blends a morphology class's beat (BBB, MI, LVH, STTC) with the patient's
normal beat, so borderline records overlap with ``NORM`` as real ones do; 1 is the full pattern.

Every record also carries mild baseline wander, mains hum and white noise. All randomness comes
from the ``numpy.random.Generator`` passed in, so a seed fixes the output exactly.

Modules: :mod:`pipeline.demo.waves` (patients and beat morphology), :mod:`pipeline.demo.rhythm`
(R-peak times and rendering), :mod:`pipeline.demo.noise` (ambient noise and artefacts); this
module holds the classes and the public API.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from pipeline.core.leads import STANDARD_12, canonical_lead
from pipeline.core.records import FloatArray
from pipeline.demo.noise import ambient_noise, artefacts
from pipeline.demo.rhythm import beat_gain, draw_rhythm, f_waves, render_beats, with_rr
from pipeline.demo.waves import F64, LEAD_MATRIX, Patient, draw_patient, morphologies

__all__ = [
    "BEAT_KINDS",
    "CLASSES",
    "VARIANTS",
    "Patient",
    "SynthECG",
    "draw_patient",
    "synth_beat",
    "synth_ecg",
    "synth_record",
]

IntArray = npt.NDArray[np.int64]

CLASSES: tuple[str, ...] = ("NORM", "AF", "BBB", "MI", "NOISY", "OTHER")
VARIANTS: Mapping[str, tuple[str, ...]] = {
    "NORM": ("sinus",),
    "AF": ("af",),
    "BBB": ("RBBB", "LBBB"),
    "MI": ("inferior", "anterior"),
    "NOISY": ("artefact",),
    "OTHER": ("PVC", "STACH", "LVH", "STTC"),
}
# Beat kinds: N normal (or AF-conducted), V premature ventricular, R R-on-T PVC,
# S supraventricular premature, F fusion of a sinus and a ventricular beat.
BEAT_KINDS: tuple[str, ...] = ("N", "V", "R", "S", "F")


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
    severity: float = 1.0,
) -> SynthECG:
    """One synthetic recording of class ``cls`` (see ``CLASSES``) with its beat positions.

    ``leads`` are lead names (any spelling ``canonical_lead`` knows); the result's rows follow
    them. ``variant`` picks a sub-type (``VARIANTS``), drawn when None; ``patient`` fixes the
    anatomy (drawn when None), so one patient's records resemble each other; ``mains_hz`` is
    50 or 60 Hz, drawn when None; ``severity``: see the module docstring. Returns
    ``signal``/``clean`` float32 ``(C, round(fs_hz * duration_s))`` in mV.
    """
    _check_args(cls, variant, fs_hz, duration_s)
    if not 0.0 < severity <= 1.0:
        raise ValueError(f"severity must lie in (0, 1], got {severity}")
    rows = _lead_rows(leads)
    options = VARIANTS[cls]
    chosen = variant if variant is not None else options[int(rng.integers(len(options)))]
    anatomy = patient if patient is not None else draw_patient(rng)
    hum_hz = mains_hz if mains_hz is not None else float(rng.choice([50.0, 60.0]))
    n = int(round(fs_hz * duration_s))

    rhythm = draw_rhythm(rng, cls, chosen, duration_s)
    morphs = morphologies(anatomy, cls, chosen, rng, rhythm.kinds, severity)
    heart = render_beats(rhythm, morphs, beat_gain(rng, rhythm.times_s), fs_hz, n)
    if cls == "AF":
        heart += f_waves(rng, fs_hz, n)
    if cls == "NOISY":
        heart *= rng.uniform(0.5, 0.9)
    cardiac = LEAD_MATRIX @ heart
    noise = ambient_noise(rng, fs_hz, n, hum_hz)
    if cls == "NOISY":
        noise += artefacts(rng, fs_hz, n)

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
    if kind == "N":  # sinus arrhythmia: a normal beat may come a little early or late
        coupling = rr * rng.uniform(0.88, 1.1)
    elif kind == "V":
        coupling = rr * rng.uniform(0.55, 0.72)
    elif kind == "R":  # lands on the previous beat's T peak
        coupling = 0.27 * math.sqrt(rr) * rng.uniform(0.9, 1.1)
    elif kind == "S":  # often only slightly premature, as in real supraventricular ectopy
        coupling = rr * rng.uniform(0.68, 0.92)
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
        axis_deg=p.axis_deg + float(rng.normal(0.0, 9.0)),  # respiration and posture move the axis
        r_amp_mv=p.r_amp_mv * float(rng.uniform(0.8, 1.2)),
        t_amp_mv=p.t_amp_mv * float(rng.uniform(0.7, 1.3)),
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
    rhythm = with_rr(times, kinds)
    morphs = morphologies(anatomy, "NORM", "sinus", rng, kinds)
    heart = render_beats(rhythm, morphs, beat_gain(rng, times), fs_hz, n)
    mains = float(rng.choice([50.0, 60.0]))
    strip: FloatArray = _derive_12(LEAD_MATRIX @ heart + ambient_noise(rng, fs_hz, n, mains))[row[0]]
    return strip[target - n_before : target + n_after].copy()
