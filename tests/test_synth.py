"""The synthetic ECG model: lead identities, determinism and measurable class differences."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

from pipeline.core.leads import STANDARD_12
from pipeline.demo.synth import (
    BEAT_KINDS,
    CLASSES,
    VARIANTS,
    SynthECG,
    draw_patient,
    synth_beat,
    synth_ecg,
    synth_record,
)

FS = 500.0
SEEDS = range(10)
F64 = npt.NDArray[np.float64]


def lead(rec: SynthECG, name: str, clean: bool = True) -> F64:
    x = rec.clean if clean else rec.signal
    out: F64 = x[rec.leads.index(name)].astype(np.float64)
    return out


def record(cls: str, seed: int, variant: str | None = None, duration_s: float = 10.0) -> SynthECG:
    return synth_record(np.random.default_rng(seed), cls, FS, duration_s, variant=variant)


def inner_peaks(rec: SynthECG) -> npt.NDArray[np.int64]:
    """R peaks with at least 0.3 s of signal on both sides."""
    r = rec.r_peaks
    margin = int(0.3 * rec.fs_hz)
    inner: npt.NDArray[np.int64] = r[(r >= margin) & (r < rec.clean.shape[1] - margin)]
    return inner


def at(seconds: float, fs: float = FS) -> int:
    return int(round(seconds * fs))


def qrs_width_s(rec: SynthECG) -> float:
    """Median QRS duration by the spatial-velocity method on the clean 12 leads: the span, from
    R − 100 ms to R + 140 ms, where Σ|dV/dt| exceeds 15 % of its maximum there."""
    velocity = np.abs(np.diff(rec.clean.astype(np.float64), axis=1)).sum(axis=0)
    widths = []
    for r in inner_peaks(rec):
        seg = velocity[r - at(0.1) : r + at(0.14)]
        above = np.flatnonzero(seg > 0.15 * seg.max())
        widths.append((above[-1] - above[0] + 1) / rec.fs_hz)
    return float(np.median(widths))


def st_level_mv(rec: SynthECG, name: str) -> float:
    """Median ST level: R + 100 ms against the PR segment at R − 85 ms."""
    x = lead(rec, name)
    r = inner_peaks(rec)
    return float(np.median(x[r + at(0.1)] - x[r - at(0.085)]))


def q_wave_s(rec: SynthECG, name: str) -> float:
    """Median duration of the negative deflection before R (the Q wave) against the PR level."""
    x = lead(rec, name)
    durations = []
    for r in inner_peaks(rec):
        seg = x[r - at(0.08) : r + 1] - x[r - at(0.085)]
        i = int(np.argmin(seg))
        if seg[i] >= 0:
            durations.append(0.0)
            continue
        a, b = i, i
        while a > 0 and seg[a - 1] < 0:
            a -= 1
        while b < len(seg) - 1 and seg[b + 1] < 0:
            b += 1
        durations.append((b - a + 1) / rec.fs_hz)
    return float(np.median(durations))


def rr_cv(rec: SynthECG) -> float:
    rr = np.diff(rec.r_peaks) / rec.fs_hz
    return float(rr.std() / rr.mean())


def hf_power(x: F64, fs: float) -> float:
    """Mean power above 25 Hz, mains bands left out (mV²)."""
    spectrum = np.abs(np.fft.rfft(x)) ** 2 / len(x)
    f = np.fft.rfftfreq(len(x), 1 / fs)
    keep = (f > 25) & (np.abs(f - 50) > 2) & (np.abs(f - 60) > 2)
    return float(spectrum[keep].sum() / len(x))


def for_seeds(cls: str, metric: Callable[[SynthECG], float], variant: str | None = None) -> F64:
    return np.array([metric(record(cls, s, variant)) for s in SEEDS])


# --------------------------------------------------------------------------- structure


@pytest.mark.parametrize("cls", CLASSES)
def test_einthoven_and_goldberger_identities_hold_exactly(cls: str) -> None:
    rec = record(cls, 1)
    for x in (rec.signal, rec.clean):
        i, ii = x[0], x[1]
        two = np.float32(2.0)
        np.testing.assert_array_equal(x[2], ii - i)
        np.testing.assert_array_equal(x[3], -(i + ii) / two)
        np.testing.assert_array_equal(x[4], i - ii / two)
        np.testing.assert_array_equal(x[5], ii - i / two)
        np.testing.assert_allclose(x[3] + x[4] + x[5], 0.0, atol=1e-5)


def test_output_is_float32_c_by_t_in_requested_lead_order() -> None:
    full = synth_ecg(np.random.default_rng(4), "NORM", FS, 10.0, STANDARD_12)
    part = synth_ecg(np.random.default_rng(4), "NORM", FS, 10.0, ("V2", "avr", "II"))
    assert full.dtype == np.float32 and full.shape == (12, 5000)
    assert part.shape == (3, 5000)
    np.testing.assert_array_equal(part, full[[7, 3, 1]])


def test_same_seed_gives_identical_arrays_and_another_seed_differs() -> None:
    a = synth_record(np.random.default_rng(7), "MI", 250.0, 8.0)
    b = synth_record(np.random.default_rng(7), "MI", 250.0, 8.0)
    c = synth_record(np.random.default_rng(8), "MI", 250.0, 8.0)
    np.testing.assert_array_equal(a.signal, b.signal)
    np.testing.assert_array_equal(a.r_peaks, b.r_peaks)
    assert a.variant == b.variant
    assert not np.array_equal(a.signal, c.signal)


def test_r_wave_in_lead_ii_is_about_one_millivolt() -> None:
    def qrs_peak_to_peak(rec: SynthECG) -> float:
        x = lead(rec, "II")
        return float(np.median([np.ptp(x[r - at(0.06) : r + at(0.06)]) for r in inner_peaks(rec)]))

    amplitudes = for_seeds("NORM", qrs_peak_to_peak)
    assert 0.7 < float(np.median(amplitudes)) < 1.5
    assert amplitudes.min() > 0.3 and amplitudes.max() < 2.5


def test_r_peaks_mark_the_qrs_and_sit_inside_the_record() -> None:
    rec = record("NORM", 2)
    assert rec.r_peaks.min() >= 0 and rec.r_peaks.max() < rec.signal.shape[1]
    assert len(rec.beat_kinds) == len(rec.r_peaks)
    velocity = np.abs(np.diff(rec.clean.astype(np.float64), axis=1)).sum(axis=0)
    for r in inner_peaks(rec):
        window = velocity[r - at(0.2) : r + at(0.2)]
        assert abs(int(np.argmax(window)) - at(0.2)) <= at(0.04)


def test_every_record_carries_wander_and_mains_hum_where_fs_allows() -> None:
    rec = synth_record(np.random.default_rng(3), "NORM", FS, 10.0, mains_hz=50.0)
    noise = lead(rec, "II", clean=False) - lead(rec, "II")
    spectrum = np.abs(np.fft.rfft(noise)) / len(noise)
    f = np.fft.rfftfreq(len(noise), 1 / FS)
    hum = spectrum[np.abs(f - 50) < 0.2].max()
    assert hum > 5 * np.median(spectrum[(f > 30) & (f < 45)])
    assert spectrum[(f > 0.05) & (f < 0.5)].max() > 5 * np.median(spectrum[(f > 2) & (f < 20)])
    # At 100 Hz a 50 Hz hum would sit on Nyquist; an anti-aliased recorder has none.
    low = synth_record(np.random.default_rng(3), "NORM", 100.0, 10.0, mains_hz=50.0)
    low_noise = lead(low, "II", clean=False) - lead(low, "II")
    low_spectrum = np.abs(np.fft.rfft(low_noise)) / len(low_noise)
    assert low_spectrum[-1] < 5 * np.median(low_spectrum[-150:-1])


# --------------------------------------------------------------------------- classes


def test_norm_is_sinus_55_to_95_bpm_with_small_rr_variability() -> None:
    rates = for_seeds("NORM", lambda r: r.heart_rate_bpm)
    assert rates.min() >= 50 and rates.max() <= 100
    assert for_seeds("NORM", rr_cv).max() < 0.06


def test_af_rr_is_irregular_well_beyond_norm() -> None:
    af = for_seeds("AF", rr_cv)
    norm = for_seeds("NORM", rr_cv)
    assert af.min() > 0.1
    assert af.min() > 2 * norm.max()


def test_norm_has_p_waves_and_af_has_none() -> None:
    def p_wave_mv(rec: SynthECG) -> float:
        """Lead II at R − PR against the mean of ±60 ms around it (a P bump stands out)."""
        x = lead(rec, "II")
        r = inner_peaks(rec)
        centre = r - at(rec.patient.pr_s)
        return float(np.median(x[centre] - 0.5 * (x[centre - at(0.06)] + x[centre + at(0.06)])))

    norm = for_seeds("NORM", p_wave_mv)
    af = for_seeds("AF", p_wave_mv)
    assert norm.min() > 0.07
    assert np.abs(af).max() < 0.06
    assert norm.mean() > 3 * np.abs(af).mean()


def test_af_shows_fibrillatory_waves_between_beats() -> None:
    def tq_oscillation_mv(rec: SynthECG) -> float:
        """Detrended SD of clean V1 between the end of T and the next QRS (NaN if no gap)."""
        x = lead(rec, "V1")
        guard = 0.06 if rec.cls == "AF" else rec.patient.pr_s + 0.07  # leave out the P wave
        sds = []
        for a, b in zip(rec.r_peaks[:-1], rec.r_peaks[1:], strict=True):
            rr = (b - a) / FS
            lo, hi = a + at(0.27 * np.sqrt(rr) + 0.15), b - at(guard)
            if hi - lo >= at(0.1):
                seg = x[lo:hi]
                t = np.arange(len(seg), dtype=np.float64)
                sds.append(float(np.std(seg - np.polyval(np.polyfit(t, seg, 1), t))))
        return float(np.median(sds)) if sds else float("nan")

    af = np.array([tq_oscillation_mv(record("AF", s, duration_s=30.0)) for s in SEEDS])
    norm = np.array([tq_oscillation_mv(record("NORM", s, duration_s=30.0)) for s in SEEDS])
    assert np.isfinite(af).sum() >= 8 and np.isfinite(norm).sum() >= 5
    assert np.nanmin(af) > 0.006
    assert np.nanmax(norm) < 0.002


@pytest.mark.parametrize("variant", VARIANTS["BBB"])
def test_bbb_qrs_is_at_least_120_ms_and_norm_below_110_ms(variant: str) -> None:
    assert for_seeds("BBB", qrs_width_s, variant).min() >= 0.12
    assert for_seeds("NORM", qrs_width_s).max() < 0.11


def test_rbbb_has_a_terminal_r_prime_in_v1() -> None:
    def v1_late_mv(rec: SynthECG) -> float:
        x = lead(rec, "V1")
        r = inner_peaks(rec)
        return float(np.median(x[r + at(0.075 * rec.patient.qrs_scale)] - x[r - at(0.085)]))

    assert for_seeds("BBB", v1_late_mv, "RBBB").min() > 0.2
    assert np.abs(for_seeds("NORM", v1_late_mv)).max() < 0.05


def test_lbbb_r_in_v6_is_broad_and_notched() -> None:
    def v6_r_peaks(rec: SynthECG) -> float:
        x = lead(rec, "V6")
        counts = []
        for r in inner_peaks(rec):
            seg = x[r - at(0.08) : r + at(0.09)]
            inner = seg[1:-1]
            counts.append(int(((inner > seg[:-2]) & (inner >= seg[2:]) & (inner > 0.1)).sum()))
        return float(np.median(counts))

    assert (for_seeds("BBB", v6_r_peaks, "LBBB") == 2).all()
    assert (for_seeds("NORM", v6_r_peaks) <= 1).all()


@pytest.mark.parametrize(
    ("variant", "territory", "reciprocal"),
    [("inferior", ("II", "III", "aVF"), ("aVL",)), ("anterior", ("V2", "V3", "V4"), ("II", "III", "aVF"))],
)
def test_mi_shifts_st_in_its_territory_with_reciprocal_change(
    variant: str, territory: tuple[str, ...], reciprocal: tuple[str, ...]
) -> None:
    for seed in SEEDS:
        mi, norm = record("MI", seed, variant), record("NORM", seed)
        assert min(st_level_mv(mi, name) for name in territory) > 0.1
        assert max(st_level_mv(mi, name) for name in reciprocal) < -0.02
        assert max(abs(st_level_mv(norm, name)) for name in territory + reciprocal) < 0.05


def test_inferior_mi_has_pathological_q_waves() -> None:
    for seed in SEEDS:
        mi, norm = record("MI", seed, "inferior"), record("NORM", seed)
        assert q_wave_s(mi, "III") >= 0.04 and q_wave_s(mi, "aVF") >= 0.04
        assert q_wave_s(norm, "aVF") < 0.04


def test_noisy_has_far_more_high_frequency_power() -> None:
    noisy = for_seeds("NOISY", lambda r: hf_power(lead(r, "II", clean=False), FS))
    norm = for_seeds("NORM", lambda r: hf_power(lead(r, "II", clean=False), FS))
    assert noisy.min() > 10 * norm.max()


def test_other_pvc_beats_are_premature_wide_and_followed_by_a_pause() -> None:
    found = 0
    for seed in SEEDS:
        rec = record("OTHER", seed, "PVC", duration_s=30.0)
        rr = np.diff(rec.r_peaks) / FS
        normal_rr = float(np.median(rr))
        for k, kind in enumerate(rec.beat_kinds[1:-1], start=1):
            if kind == "V" and rec.beat_kinds[k - 1] == "N" and rec.beat_kinds[k + 1] == "N":
                found += 1
                assert rr[k - 1] < 0.8 * normal_rr
                assert rr[k - 1] + rr[k] > 1.8 * normal_rr
    assert found >= 10


def test_other_sinus_tachycardia_is_above_100_bpm() -> None:
    assert for_seeds("OTHER", lambda r: r.heart_rate_bpm, "STACH").min() > 100


# --------------------------------------------------------------------------- single beats


def test_synth_beat_is_centred_on_r_and_kinds_differ_in_width() -> None:
    patient = draw_patient(np.random.default_rng(0))

    def width(kind: str) -> float:
        beat = synth_beat(np.random.default_rng(5), kind, 250.0, 50, 90, patient=patient).astype(np.float64)
        velocity = np.abs(np.diff(beat[25:80]))
        above = np.flatnonzero(velocity > 0.2 * velocity.max())
        return float(above[-1] - above[0]) / 250.0

    for kind in BEAT_KINDS:
        beat = synth_beat(np.random.default_rng(1), kind, 250.0, 50, 90, patient=patient)
        assert beat.shape == (140,) and beat.dtype == np.float32
    normal = synth_beat(np.random.default_rng(1), "N", 250.0, 50, 90, patient=patient).astype(np.float64)
    assert abs(int(np.argmax(np.abs(np.diff(normal)))) - 50) <= 8
    assert width("V") > width("N") + 0.02


def test_lvh_has_taller_lateral_r_and_deeper_v1_s_than_norm() -> None:
    def r_mv(rec: SynthECG, name: str) -> float:  # above the PR segment
        x = lead(rec, name)
        return float(
            np.median([x[p - at(0.04) : p + at(0.04)].max() - x[p - at(0.085)] for p in inner_peaks(rec)])
        )

    def s_mv(rec: SynthECG, name: str) -> float:
        x = lead(rec, name)
        return float(
            np.median([x[p - at(0.04) : p + at(0.06)].min() - x[p - at(0.085)] for p in inner_peaks(rec)])
        )

    for seed in SEEDS:
        norm = record("NORM", seed)
        lvh = synth_record(
            np.random.default_rng(seed), "OTHER", FS, 10.0, variant="LVH", patient=norm.patient
        )
        assert r_mv(lvh, "V5") > 1.3 * r_mv(norm, "V5") and r_mv(lvh, "V6") > 1.3 * r_mv(norm, "V6")
        assert s_mv(lvh, "V1") < s_mv(norm, "V1") - 0.5


def test_sttc_flattens_or_inverts_lateral_t_and_keeps_the_qrs() -> None:
    def t_v5(rec: SynthECG) -> float:
        x, r = lead(rec, "V5"), inner_peaks(rec)
        return float(np.median([x[p + at(0.2) : p + at(0.35)].mean() - x[p - at(0.085)] for p in r]))

    for seed in SEEDS:
        norm = record("NORM", seed)
        sttc = synth_record(
            np.random.default_rng(seed), "OTHER", FS, 10.0, variant="STTC", patient=norm.patient
        )
        assert t_v5(sttc) < 0.5 * t_v5(norm)
        assert abs(qrs_width_s(sttc) - qrs_width_s(norm)) < 0.02


def test_low_severity_blends_a_pattern_towards_the_normal_beat() -> None:
    def v1_late_mv(rec: SynthECG) -> float:
        x, r = lead(rec, "V1"), inner_peaks(rec)
        return float(np.median(x[r + at(0.075 * rec.patient.qrs_scale)] - x[r - at(0.085)]))

    for seed in SEEDS:
        rng = np.random.default_rng
        full = synth_record(rng(seed), "BBB", FS, 10.0, variant="RBBB")
        mild = synth_record(rng(seed), "BBB", FS, 10.0, variant="RBBB", patient=full.patient, severity=0.3)
        norm = synth_record(rng(seed), "NORM", FS, 10.0, patient=full.patient)
        assert v1_late_mv(norm) < v1_late_mv(mild) < v1_late_mv(full)
        assert v1_late_mv(mild) == pytest.approx(0.3 * v1_late_mv(full) + 0.7 * v1_late_mv(norm), abs=0.05)


def test_invalid_arguments_are_refused() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown class"):
        synth_ecg(rng, "VT", FS, 10.0)
    with pytest.raises(ValueError, match="unknown lead"):
        synth_ecg(rng, "NORM", FS, 10.0, ("MLII",))
    with pytest.raises(ValueError, match="unknown variant"):
        synth_record(rng, "BBB", FS, 10.0, variant="IRBBB")
    with pytest.raises(ValueError, match="severity must lie in"):
        synth_record(rng, "MI", FS, 10.0, severity=0.0)
    with pytest.raises(ValueError, match="unknown beat kind"):
        synth_beat(rng, "Q", FS, 50, 90)
