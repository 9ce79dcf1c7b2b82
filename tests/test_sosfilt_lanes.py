"""The compiled sosfiltfilt (pipeline.signal.sosfilt, eight signals per loop) gives scipy's exact bits.

Stored samples depend on it (the plan digest assumes scipy's values), so every case compares with
``np.array_equal``, never a tolerance: real PTB-XL and CinC 2017 records through the profiles' own filter
designs, lane remainders (1-9 signals), float32 and float64 input, the shortest accepted length, and
filters with several sections.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import signal as sps

from pipeline.core.records import Discovery
from pipeline.signal import _lanes
from pipeline.signal.dsp import FilterSpec, apply_filters, design_sos, min_filter_length
from pipeline.signal.sosfilt import sosfiltfilt
from pipeline.sources.cinc2017 import Cinc2017Reader
from pipeline.sources.ptbxl import PtbXlReader
from tests.security_support import read_all

SPECS = {
    "ecg12 500 Hz": FilterSpec(500.0, 0.5, 50.0, 30.0, None, 2),
    "lead1_af 300 Hz": FilterSpec(300.0, 0.5, 50.0, 30.0, None, 2),
    "band-pass 360 Hz, order 4": FilterSpec(360.0, 0.5, 60.0, 30.0, (0.5, 40.0), 4),
}


def _sos(name: str) -> np.ndarray:
    sos = design_sos(SPECS[name])
    assert sos is not None
    return sos


@pytest.mark.shared_data
def test_real_ptbxl_and_cinc2017_records_filter_to_scipys_exact_bits(shared_data: Path) -> None:
    ptbxl = PtbXlReader("ptbxl", shared_data / "ptbxl")
    disc = ptbxl.discover()
    first = Discovery(tuple(sorted(disc.units, key=lambda u: u.key)[:16]), (), ())
    records, _ = read_all(ptbxl, first)
    block = np.stack([r.signal for r in records if r.signal.shape == (12, 5000)])
    assert block.shape[0] >= 8
    sos = _sos("ecg12 500 Hz")
    np.testing.assert_array_equal(sosfiltfilt(sos, block), sps.sosfiltfilt(sos, block, axis=-1))
    cinc = Cinc2017Reader("cinc2017", shared_data / "cinc2017" / "training2017")
    disc = cinc.discover()
    records, _ = read_all(cinc, Discovery(tuple(sorted(disc.units, key=lambda u: u.key)[:5]), (), ()))
    assert len(records) == 5
    sos = _sos("lead1_af 300 Hz")
    for rec in records:
        np.testing.assert_array_equal(sosfiltfilt(sos, rec.signal), sps.sosfiltfilt(sos, rec.signal, axis=-1))


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("n_signals", [1, 2, 7, 8, 9, 17])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_lane_remainder_and_dtype_matches_scipy_exactly(name: str, n_signals: int, dtype: type) -> None:
    sos = _sos(name)
    x: np.ndarray = (np.random.default_rng(n_signals).standard_normal((n_signals, 1200)) * 0.8).astype(dtype)
    ours, theirs = sosfiltfilt(sos, x), sps.sosfiltfilt(sos, x, axis=-1)
    assert ours.dtype == theirs.dtype == np.float64
    np.testing.assert_array_equal(ours, theirs)


def test_batch_shapes_and_the_shortest_accepted_length_match_scipy() -> None:
    spec = SPECS["ecg12 500 Hz"]
    sos = _sos("ecg12 500 Hz")
    shortest = min_filter_length(spec)
    x = np.random.default_rng(0).standard_normal((2, 3, shortest)).astype(np.float32)
    np.testing.assert_array_equal(sosfiltfilt(sos, x), sps.sosfiltfilt(sos, x, axis=-1))
    np.testing.assert_array_equal(apply_filters(x, spec), sps.sosfiltfilt(sos, x, axis=-1).astype(np.float32))
    with pytest.raises(ValueError, match=f"greater than padlen, which is {shortest - 1}"):
        sosfiltfilt(sos, x[..., :-1])


def test_the_extension_refuses_wrong_shapes_and_dtypes_by_name() -> None:
    sos = _sos("ecg12 500 Hz")
    x = np.zeros((3, 50))
    with pytest.raises(ValueError, match=r"zi \(n_signals, n_sections, 2\)"):
        _lanes.sosfilt(sos, x, np.zeros((3, 1, 2)), False)
    with pytest.raises(TypeError, match="x: expected a C-contiguous float64 array"):
        _lanes.sosfilt(sos, x.astype(np.float32), np.zeros((3, len(sos), 2)), False)
    with pytest.raises(ValueError, match="a0 == 1"):
        sosfiltfilt(sos * 2.0, x)
