"""Multi-rate WFDB records (``spf > 1`` samples per frame): every signal is read at its own rate,
the ECG leads at their true rate, never averaged per frame. On the shared multi-rate records
(``wfdb_misc/mixedsignals``, the 041s segments) and on records written with ``wfdb.wrsamp``
(``samps_per_frame``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import wfdb

from pipeline.core.records import ReadError
from pipeline.sources.wfdb_folder import WfdbFolderReader
from pipeline.sources.wfdb_io import read_unit_ecg
from tests.wfdb_folder_support import read_all, records_of, unit_named


def _unsmoothed(record_path: Path, rows: list[int]) -> np.ndarray:
    """wfdb's own sample-for-sample read (``smooth_frames=False``) of ``rows``, float32 ``(C, T)``."""
    rec = wfdb.rdrecord(str(record_path), smooth_frames=False, return_res=64)
    return np.stack([np.asarray(rec.e_p_signal[i], dtype=np.float64) for i in rows]).astype(np.float32)


@pytest.mark.shared_data
def test_the_shared_multi_rate_record_gives_its_ecg_at_250_hz_like_unsmoothed_wfdb(shared_data: Path) -> None:
    misc = shared_data / "wfdb_misc"
    reader = WfdbFolderReader("misc", misc)
    (record,) = records_of(read_all(reader, unit_named(reader.discover(), "mixedsignals")))
    assert record.leads == ("II", "III", "V") and record.signal.shape == (3, 57_600)
    assert record.fs_hz == pytest.approx(249.89) and record.meta["frame_fs_hz"] == "62.4725"
    assert record.meta["dropped_channels"] == "ABP,Pleth,Resp"
    np.testing.assert_array_equal(record.signal, _unsmoothed(misc / "mixedsignals", [0, 1, 2]))


@pytest.mark.shared_data
def test_a_shared_segment_with_four_ecg_samples_per_frame_is_read_at_500_hz(
    shared_data: Path, tmp_path: Path
) -> None:
    folder = tmp_path  # the segment alone: beside its master it is read as part of the master
    for suffix in (".hea", ".dat"):
        shutil.copy2(shared_data / "wfdb_misc" / "multi-segment" / "041s" / f"041s01{suffix}", folder)
    reader = WfdbFolderReader("misc", folder)
    (record,) = records_of(read_all(reader, unit_named(reader.discover(), "041s01")))
    # PLETH and RESP leave their units out (WFDB's default is mV) but are never ECG leads.
    assert record.leads == ("III", "I", "V") and record.fs_hz == 500.0
    assert record.meta["dropped_channels"] == "ABP,PAP,PLETH,RESP"
    np.testing.assert_array_equal(record.signal, _unsmoothed(folder / "041s01", [0, 1, 2]))


def _write_multirate(folder: Path, n_frames: int = 250) -> tuple[np.ndarray, np.ndarray]:
    """A 125 Hz-frame record: ECG ``II`` with 4 samples per frame (500 Hz) beside ``RESP`` with 1
    (125 Hz, in ``NU``), written by ``wfdb.wrsamp``; returns (ECG digital, RESP digital)."""
    rng = np.random.default_rng(7)
    ecg = rng.integers(-2000, 2000, size=n_frames * 4).astype(np.int64)
    resp = rng.integers(-500, 500, size=n_frames).astype(np.int64)
    wfdb.wrsamp(
        "mr",
        fs=125,
        units=["mV", "NU"],
        sig_name=["II", "RESP"],
        e_d_signal=[ecg, resp],
        samps_per_frame=[4, 1],
        fmt=["16", "16"],
        adc_gain=[1000.0, 100.0],
        baseline=[0, 0],
        write_dir=str(folder),
    )
    return ecg, resp


def test_a_generated_multi_rate_record_keeps_every_ecg_sample_at_its_true_rate(tmp_path: Path) -> None:
    ecg, _ = _write_multirate(tmp_path)
    reader = WfdbFolderReader("gen", tmp_path, annotation_ext=None)
    (record,) = records_of(read_all(reader, unit_named(reader.discover(), "mr")))
    assert record.leads == ("II",) and record.fs_hz == 500.0 and record.signal.shape == (1, 1000)
    np.testing.assert_allclose(record.signal[0], ecg / 1000.0, rtol=1e-6)
    assert record.meta["dropped_channels"] == "RESP"


def test_a_lower_rate_channel_kept_beside_the_ecg_is_interpolated_up_not_the_ecg_averaged_down(
    tmp_path: Path,
) -> None:
    ecg, resp = _write_multirate(tmp_path)
    reader = WfdbFolderReader("gen", tmp_path, annotation_ext=None, voltage_only=False)
    (record,) = records_of(read_all(reader, unit_named(reader.discover(), "mr")))
    assert record.leads == ("II", "RESP") and record.fs_hz == 500.0
    np.testing.assert_allclose(record.signal[0], ecg / 1000.0, rtol=1e-6)
    # a 125 Hz sample sits at the centre of its frame, i.e. between 500 Hz samples 4k + 1 and 4k + 2
    target, source = (np.arange(1000) + 0.5) / 4, np.arange(250) + 0.5
    np.testing.assert_allclose(record.signal[1], np.interp(target, source, resp / 100.0), rtol=1e-5)
    np.testing.assert_allclose(
        record.signal[1, 1::4][1:-1], resp[1:-1] / 100.0 * 0.875 + resp[:-2] / 100.0 * 0.125, rtol=1e-5
    )


def test_frame_timed_annotations_land_on_the_true_rate_samples(tmp_path: Path) -> None:
    _write_multirate(tmp_path)
    wfdb.wrann("mr", "atr", np.array([10, 100, 200]), ["N", "V", "N"], write_dir=str(tmp_path))
    reader = WfdbFolderReader("gen", tmp_path, window_s=0.5)
    records = records_of(read_all(reader, unit_named(reader.discover(), "mr")))
    # frames 10, 100, 200 are 500 Hz samples 40, 400, 800: windows of 250 samples
    assert [[label.code for label in r.raw_labels] for r in records] == [["N"], ["V"], [], ["N"]]


def test_fixed_database_readers_refuse_a_multi_rate_record_instead_of_averaging_it(tmp_path: Path) -> None:
    _write_multirate(tmp_path)
    with pytest.raises(ReadError, match="several samples per frame"):
        read_unit_ecg(tmp_path, ("mr.hea", "mr.dat"))
