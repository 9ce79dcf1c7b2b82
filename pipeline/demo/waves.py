"""Beat morphology of the synthetic ECG: patients, Gaussian waves and the heart-vector leads.

Each beat is a sum of Gaussian :class:`Wave` s with a 3-D direction (mV; x towards the patient's
left, y towards the feet, z anterior); :func:`morphologies` gives the waves of every beat kind of
one record from the patient's anatomy (:class:`Patient`) and the class. ``LEAD_MATRIX`` (8, 3)
projects the heart vector onto I, II, V1–V6. Pure numpy; all randomness from the caller's rng.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

# The leads projected from the heart vector; III, aVR, aVL and aVF are derived from I and II.
INDEPENDENT = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
# Angle in the horizontal plane (0° = left, 90° = anterior) and gain of each chest lead; the
# middle chest leads sit closest to the heart, hence the larger gains.
_PRECORDIAL = ((115.0, 0.9), (95.0, 1.6), (75.0, 1.8), (55.0, 1.9), (30.0, 1.6), (0.0, 1.2))


def _lead_matrix() -> F64:
    """(8, 3) projection of the heart vector onto I, II, V1–V6."""
    rows = [(1.0, 0.0, 0.0), (0.5, math.sqrt(3.0) / 2.0, 0.0)]
    for angle, gain in _PRECORDIAL:
        rad = math.radians(angle)
        rows.append((gain * math.cos(rad), 0.0, gain * math.sin(rad)))
    return np.array(rows, dtype=np.float64)


LEAD_MATRIX = _lead_matrix()


def unit(x: float, y: float, z: float) -> F64:
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


def _normal_waves(p: Patient, with_p: bool = True) -> list[Wave]:
    ax = math.radians(p.axis_deg)
    pax = math.radians(p.p_axis_deg)
    s = p.qrs_scale
    waves = [
        _wave(-0.03 * s, 0.009 * s, 0.12 * unit(-0.6, 0.3, 0.75)),  # septal q: right, anterior
        _wave(0.0, 0.011 * s, p.r_amp_mv * unit(math.cos(ax), math.sin(ax), p.posterior)),
        _wave(0.03 * s, 0.010 * s, 0.3 * p.r_amp_mv * unit(-0.35, -0.55, -0.75)),  # basal forces
        _wave(0.27, 0.045, p.t_amp_mv * unit(math.cos(ax - 0.17), math.sin(ax - 0.17), 0.35), True),
    ]
    if with_p:
        waves.insert(0, _wave(-p.pr_s, 0.022, p.p_amp_mv * unit(math.cos(pax), math.sin(pax), 0.15)))
    return waves


def _rbbb_waves(p: Patient) -> list[Wave]:
    """Normal early QRS, then slow right-ventricular activation: a late rightward-anterior R'."""
    ax = math.radians(p.axis_deg)
    s = p.qrs_scale
    pax = math.radians(p.p_axis_deg)
    return [
        _wave(-p.pr_s, 0.022, p.p_amp_mv * unit(math.cos(pax), math.sin(pax), 0.15)),
        _wave(-0.03 * s, 0.009 * s, 0.12 * unit(-0.6, 0.3, 0.75)),
        _wave(0.0, 0.011 * s, 0.85 * p.r_amp_mv * unit(math.cos(ax), math.sin(ax), p.posterior)),
        _wave(0.032 * s, 0.011 * s, 0.25 * p.r_amp_mv * unit(-0.35, -0.55, -0.75)),
        _wave(0.075 * s, 0.02 * s, 0.7 * p.r_amp_mv * unit(-0.6, 0.05, 0.8)),
        _wave(0.30, 0.05, p.t_amp_mv * unit(0.7, 0.6, -0.45), True),  # discordant to R' in V1
    ]


def _lbbb_waves(p: Patient) -> list[Wave]:
    """No septal q; two slow leftward-posterior fronts give a broad notched R; discordant T."""
    s = p.qrs_scale
    pax = math.radians(p.p_axis_deg)
    r = 1.2 * p.r_amp_mv
    return [
        _wave(-p.pr_s, 0.022, p.p_amp_mv * unit(math.cos(pax), math.sin(pax), 0.15)),
        _wave(-0.03 * s, 0.018 * s, 0.8 * r * unit(0.75, 0.05, -0.65)),
        _wave(0.035 * s, 0.019 * s, 0.9 * r * unit(0.85, -0.15, -0.5)),
        _wave(0.31, 0.06, 1.3 * p.t_amp_mv * unit(-0.7, -0.1, 0.7), True),
    ]


_TERRITORY = {"inferior": unit(0.15, 1.0, 0.05), "anterior": unit(0.1, -0.3, 1.0)}


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
        _wave(0.045, 0.026, 0.45 * r * unit(*(side - 0.5 * v))),
        _wave(0.30, 0.065, -0.35 * r * v, True),
    ]


def _svpb_waves(p: Patient) -> list[Wave]:
    """Supraventricular premature beat: ectopic (low atrial, inverted inferior) P, normal QRS."""
    waves = _normal_waves(p, with_p=False)
    waves.insert(0, _wave(-0.13, 0.02, p.p_amp_mv * unit(0.3, -0.9, 0.3)))
    return waves


def _lvh_waves(p: Patient) -> list[Wave]:
    """Left ventricular hypertrophy: a larger, more leftward-posterior and slightly slower R vector
    (tall R in I/aVL/V5–V6, deep S in V1–V2) and the strain pattern: T turned away from the R."""
    ax = math.radians(p.axis_deg - 20.0)
    s = 1.12 * p.qrs_scale
    waves = _normal_waves(p)
    waves[2] = _wave(0.0, 0.011 * s, 2.2 * p.r_amp_mv * unit(math.cos(ax), math.sin(ax), p.posterior - 0.2))
    waves[3] = _wave(0.03 * s, 0.011 * s, 0.45 * p.r_amp_mv * unit(-0.35, -0.55, -0.75))
    waves[4] = _wave(0.28, 0.05, -0.8 * p.t_amp_mv * unit(math.cos(ax), math.sin(ax), 0.1), True)
    return waves


def _sttc_waves(p: Patient, rng: np.random.Generator) -> list[Wave]:
    """Non-specific ST-T change: normal QRS, a flat or inverted T and mild ST depression in the
    lateral leads (a wave pointing away from them between QRS and T)."""
    ax = math.radians(p.axis_deg)
    waves = _normal_waves(p)
    t = waves[4]
    waves[4] = _scaled(t, float(rng.uniform(-0.9, 0.1)))
    depression = float(rng.uniform(0.06, 0.15))
    waves.append(_wave(0.14, 0.045, -depression * unit(math.cos(ax), math.sin(ax), -0.3), True))
    return waves


def _blend(normal: list[Wave], abnormal: list[Wave], severity: float) -> list[Wave]:
    """A borderline beat between a normal and an abnormal morphology of the same patient: both
    wave sets, weighted ``1 - severity`` and ``severity`` (Gaussian waves add linearly)."""
    if severity >= 1.0:
        return abnormal
    return [_scaled(w, 1.0 - severity) for w in normal] + [_scaled(w, severity) for w in abnormal]


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


def morphologies(
    p: Patient, cls: str, variant: str, rng: np.random.Generator, kinds: str = "N", severity: float = 1.0
) -> dict[str, list[Wave]]:
    """Waves of the beat kinds in ``kinds`` for one record; ``severity`` (0–1] blends the dominant
    beat of a morphology class (BBB, MI, LVH, STTC) with the patient's normal beat."""
    morphs: dict[str, list[Wave]] = {}
    for kind in sorted(set(kinds) - {"N"}):
        if kind == "F":
            morphs[kind] = _fusion_waves(p, float(rng.uniform(0.15, 0.6)))  # mostly sinus-like
        else:
            morphs[kind] = _svpb_waves(p) if kind == "S" else _pvc_waves(p)
    dominant = _sinus_morphology(p, cls, variant, rng)
    if cls in ("BBB", "MI") or variant in ("LVH", "STTC"):
        dominant = _blend(_normal_waves(p), dominant, severity)
    morphs["N"] = dominant
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
    if variant == "LVH":
        return _lvh_waves(p)
    if variant == "STTC":
        return _sttc_waves(p, rng)
    return _normal_waves(p)
