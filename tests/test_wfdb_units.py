"""WFDB unit strings: voltages in any case and both micro signs (UTF-8 and Latin-1 headers) are
converted to mV; non-voltage signals (``°``, ``mmHg``, ``%``, ``NU``) are never taken as ECG leads."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pipeline.sources.wfdb import is_ecg_signal, mv_factor, read_header
from pipeline.sources.wfdb_folder import WfdbFolderReader
from tests.wfdb_folder_support import read_all, records_of, unit_named


@pytest.mark.parametrize(
    ("units", "factor"),
    [
        ("mV", 1.0),
        ("mv", 1.0),
        ("MV", 1.0),
        (" mV ", 1.0),
        ("uV", 1e-3),
        ("UV", 1e-3),
        ("\u03bcV", 1e-3),  # Greek mu
        ("\u00b5V", 1e-3),  # micro sign (what Latin-1 byte 0xB5 decodes to)
        ("\u00b5v", 1e-3),
        ("V", 1e3),
        ("v", 1e3),
        ("microvolts", 1e-3),
    ],
)
def test_voltage_units_map_to_mv_whatever_their_case_or_micro_sign(units: str, factor: float) -> None:
    assert mv_factor(units) == factor


@pytest.mark.parametrize("units", ["\u00b0", "deg", "mmHg", "%", "NU", "bpm", "Ohm", "", "mVolt?"])
def test_non_voltage_units_are_not_a_voltage(units: str) -> None:
    assert mv_factor(units) is None


def _header(folder: Path, units: list[str], encoding: str) -> Path:
    names = ["II", "V", "TEMP", "ABP", "SpO2"][: len(units)]
    lines = [f"u {len(units)} 100 4"]
    lines += [f"u.dat 16 100/{unit} 16 0 0 0 0 {name}" for unit, name in zip(units, names, strict=True)]
    path = folder / "u.hea"
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    (folder / "u.dat").write_bytes(np.arange(4 * len(units), dtype="<i2").tobytes())
    return path


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_a_micro_volt_header_in_utf8_or_latin1_reads_as_mv_and_drops_non_ecg(
    tmp_path: Path, encoding: str
) -> None:
    path = _header(tmp_path, ["\u00b5V", "mv", "\u00b0", "mmHg", "%"], encoding)
    header = read_header(path)
    assert [is_ecg_signal(s) for s in header.signals] == [True, True, False, False, False]
    reader = WfdbFolderReader("u", tmp_path, annotation_ext=None)
    (record,) = records_of(read_all(reader, unit_named(reader.discover(), "u")))
    assert record.leads == ("II", "V") and record.meta["dropped_channels"] == "TEMP,ABP,SpO2"
    digital = np.arange(20).reshape(4, 5).T
    np.testing.assert_allclose(record.signal, [digital[0] / 100.0 * 1e-3, digital[1] / 100.0], rtol=1e-6)


@pytest.mark.parametrize("name", ["PLETH", "RESP", "ABP", "SpO2", "Pulse"])
def test_a_named_non_ecg_signal_in_mv_is_still_not_an_ecg_lead(tmp_path: Path, name: str) -> None:
    header = read_header(_header(tmp_path, ["mV"], "ascii"))
    spec = header.signals[0]
    assert is_ecg_signal(spec) and not is_ecg_signal(replace(spec, description=name))
