"""Hypothesis properties of the CinC 2017 and 2020/2021 readers on generated MATLAB v4 ``.mat`` +
header pairs, and on damaged or foreign MAT files (the contract is :mod:`tests.test_properties_readers`'s)."""

from __future__ import annotations

import struct
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from hypothesis import given
from hypothesis import strategies as st

from pipeline.sources.base import SourceReader
from pipeline.sources.cinc2017 import Cinc2017Reader
from pipeline.sources.cinc2021 import Cinc2021Reader
from tests.reader_properties_support import (
    FUZZ,
    MAT4_HEADER,
    PROPS,
    IntArray,
    assert_values,
    assert_well_formed,
    mat_v4,
    read_everything,
    scratch,
)

# --------------------------------------------------------------------------- CinC MAT v4 pairs


@st.composite
def mat_cases(draw: st.DrawFn, max_c: int = 12) -> tuple[IntArray, float, int]:
    """(val ``(C, N)`` int16 values, gain, baseline) of a CinC-style MAT v4 record."""
    c = draw(st.integers(1, max_c))
    n = draw(st.one_of(st.integers(1, 8), st.integers(9, 4000)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    val = rng.integers(-32767, 32768, size=(c, n), dtype=np.int64)
    gain = draw(st.sampled_from([1000.0, 200.0, 2000.0, 4.88]))
    return val, gain, draw(st.integers(-100, 100))


def cinc_header(name: str, val: IntArray, gain: float, baseline: int, style: str, dx: str = "") -> str:
    """A CinC header in the raw challenge style (``A00001 1 300 N``, Georgia ``E00001.mat ...``)
    or the wfdb-python rewritten style (``16x1+24 1000.0(0)/mV``)."""
    c, n = val.shape
    if style == "georgia":
        lines = [f"{name}.mat {c} 500 {n} 05-May-2020 14:50:55"]
    else:
        lines = [f"{name} {c} {300 if c == 1 else 500} {n}"]
    fmt = "16x1+24" if style == "rewritten" else "16+24"
    for i in range(c):
        lines.append(f"{name}.mat {fmt} {gain!r}({baseline})/mV 16 0 {int(val[i, 0])} 0 0 lead{i}")
    if dx:
        lines.append(f"#Dx: {dx}")
    return "\n".join(lines) + "\n"


def expected_mat_mv(val: IntArray, gain: float, baseline: int) -> npt.NDArray[np.float64]:
    expected = (val - baseline) / gain
    expected[val == -32768] = np.nan
    return expected


@PROPS
@given(
    case=mat_cases(max_c=1),
    label=st.sampled_from(["N", "A", "O", "~"]),
    style=st.sampled_from(["raw", "rewritten"]),
)
def test_cinc2017_pair_reads_the_mat_matrix_in_mv_with_its_reference_label(
    case: tuple[IntArray, float, int], label: str, style: str
) -> None:
    val, gain, baseline = case
    with scratch() as root:
        (root / "A00001.hea").write_text(cinc_header("A00001", val, gain, baseline, style))
        (root / "A00001.mat").write_bytes(mat_v4(val))
        (root / "REFERENCE.csv").write_bytes(f"A00001,{label}\r\n".encode())
        _, records, reasons = read_everything(Cinc2017Reader("c17", root))
        assert not reasons and len(records) == 1
        assert_well_formed(records[0], 1, val.shape[1])
        assert [r.code for r in records[0].raw_labels] == [label]
        assert_values(records[0], expected_mat_mv(val, gain, baseline))


@PROPS
@given(
    case=mat_cases(),
    style=st.sampled_from(["raw", "georgia", "rewritten"]),
    codes=st.lists(st.integers(10**8, 10**9).map(str), min_size=1, max_size=4),
)
def test_cinc2021_pair_reads_every_lead_in_mv_and_the_dx_codes(
    case: tuple[IntArray, float, int], style: str, codes: list[str]
) -> None:
    val, gain, baseline = case
    with scratch() as root:
        (root / "E00001.hea").write_text(cinc_header("E00001", val, gain, baseline, style, ",".join(codes)))
        (root / "E00001.mat").write_bytes(mat_v4(val))
        _, records, reasons = read_everything(Cinc2021Reader("c21", root))
        assert not reasons and len(records) == 1
        assert_well_formed(records[0], val.shape[0], val.shape[1])
        assert [r.code for r in records[0].raw_labels] == codes
        assert_values(records[0], expected_mat_mv(val, gain, baseline))


@st.composite
def mat_corruptions(draw: st.DrawFn) -> Callable[[bytes], bytes]:
    """One way a ``.mat`` file can be damaged or foreign."""
    kind = draw(st.sampled_from(["type", "dims", "truncate", "v5", "name", "garbage"]))
    if kind == "type":
        code = draw(st.integers(0, 100).filter(lambda t: t != 30))
        return lambda raw: MAT4_HEADER.pack(code, *MAT4_HEADER.unpack(raw[:20])[1:]) + raw[20:]
    if kind == "dims":
        rows, cols = draw(st.integers(0, 2**31 - 1)), draw(st.integers(0, 2**31 - 1))
        return lambda raw: raw[:4] + struct.pack("<2i", rows, cols) + raw[12:]
    if kind == "truncate":
        keep = draw(st.integers(0, 200))
        return lambda raw: raw[: min(keep, len(raw) - 1)]
    if kind == "v5":
        return lambda raw: b"MATLAB 5.0 MAT-file" + raw[19:]
    if kind == "name":
        length = draw(st.integers(0, 64))
        return lambda raw: raw[:16] + struct.pack("<i", length) + raw[20:]
    junk = draw(st.binary(min_size=0, max_size=300))
    return lambda raw: junk


@FUZZ
@given(
    case=mat_cases(max_c=3), damage=mat_corruptions(), reader_kind=st.sampled_from(["cinc2017", "cinc2021"])
)
def test_a_damaged_or_foreign_mat_file_reads_or_fails_with_a_read_error(
    case: tuple[IntArray, float, int], damage: Callable[[bytes], bytes], reader_kind: str
) -> None:
    val, gain, baseline = case
    with scratch() as root:
        (root / "A00001.hea").write_text(cinc_header("A00001", val, gain, baseline, "raw", "426783006"))
        (root / "A00001.mat").write_bytes(damage(mat_v4(val)))
        (root / "REFERENCE.csv").write_text("A00001,N\n")
        reader: SourceReader = (
            Cinc2017Reader("c", root) if reader_kind == "cinc2017" else Cinc2021Reader("c", root)
        )
        _, records, _ = read_everything(reader)
        for rec in records:
            assert_well_formed(rec, val.shape[0], val.shape[1])
