"""Hypothesis properties of the source readers on generated on-disk files.

Generated inputs, written to a fresh temporary folder per example:

- WFDB records: a header plus signal bytes in formats 16, 212 and 80 (random leads, lengths,
  gains, baselines, voltage units, invalid-sample codes), read by :class:`WfdbFolderReader`;
- MATLAB v4 ``.mat`` records as CinC 2017 (with ``REFERENCE.csv``) and CinC 2020/2021 (``#Dx:``)
  pairs, read by :class:`Cinc2017Reader` and :class:`Cinc2021Reader`;
- UCR ``.txt`` rows, read by :class:`UcrReader`;
- and corrupted variants of each (fuzzed header fields, truncated or padded files, foreign MAT
  type codes, garbage tokens).

The contract checked everywhere: discovery then reading either yields Records whose signal is
float32 ``(C, T)`` with ``C`` and ``T`` as the header says, in mV, equal to
``(adc - baseline) / gain`` (NaN exactly where the source marks a sample missing, finite
elsewhere), or raises :class:`ReadError` / yields a :class:`Rejection` with a reason; never another
exception. Every file under the root is accounted for by discovery.

The WFDB properties are here; the CinC and UCR ones in ``test_properties_cinc.py`` and
``test_properties_ucr.py``; generators and the contract's checks in ``reader_properties_support.py``.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from pipeline.sources.wfdb_folder import WfdbFolderReader
from tests.reader_properties_support import (
    FUZZ,
    OVERFLOW_WARNING,
    PROPS,
    Channel,
    WfdbCase,
    assert_values,
    assert_well_formed,
    read_everything,
    scale_overflows_float32,
    scratch,
    wfdb_cases,
    write_wfdb,
)

# --------------------------------------------------------------------------- WFDB


@PROPS
@given(case=wfdb_cases())
def test_wfdb_record_reads_as_adc_minus_baseline_over_gain_in_mv(case: WfdbCase) -> None:
    with scratch() as root:
        write_wfdb(root, case)
        _, records, reasons = read_everything(WfdbFolderReader("w", root))
        if np.isnan(case.expected_mv()).all():  # documented: a record of only invalid samples is rejected
            assert not records and reasons == ["every sample is invalid (NaN)"]
            return
        assert not reasons and len(records) == 1
        rec = records[0]
        assert_well_formed(rec, case.n_sig, case.n_samples)
        assert rec.fs_hz == case.fs and rec.record_id == "w:rec"
        assert_values(rec, case.expected_mv())


@PROPS
@given(case=wfdb_cases(), trailing=st.binary(min_size=1, max_size=64))
def test_bytes_after_the_declared_samples_are_ignored(case: WfdbCase, trailing: bytes) -> None:
    with scratch() as root:
        _, data = write_wfdb(root, case)
        data.write_bytes(data.read_bytes() + trailing)
        _, records, reasons = read_everything(WfdbFolderReader("w", root))
        assert len(records) + len(reasons) == 1
        for rec in records:
            assert_values(rec, case.expected_mv())


@PROPS
@given(case=wfdb_cases(), cut=st.integers(1, 10_000))
def test_a_truncated_signal_file_is_a_read_error_naming_the_sizes(case: WfdbCase, cut: int) -> None:
    with scratch() as root:
        _, data = write_wfdb(root, case)
        raw = data.read_bytes()
        data.write_bytes(raw[: max(0, len(raw) - cut)])
        _, records, reasons = read_everything(WfdbFolderReader("w", root))
        assert not records and len(reasons) == 1
        assert "bytes" in reasons[0] and "rec.dat" in reasons[0]


@st.composite
def field_edits(draw: st.DrawFn) -> tuple[int, int, str]:
    """(line, field, replacement) for one whitespace-separated header field; "" deletes it."""
    token = st.one_of(
        st.just(""),
        st.integers(-(2**70), 2**70).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.text(alphabet="0123456789+-.eExX:/()mVuµ~#abc", min_size=1, max_size=12),
    )
    return draw(st.integers(0, 4)), draw(st.integers(0, 9)), draw(token)


def edit_header(text: str, edits: list[tuple[int, int, str]]) -> str:
    lines = text.splitlines()
    for line_no, field, new in edits:
        if line_no >= len(lines):
            continue
        fields = lines[line_no].split()
        if field < len(fields):
            fields[field] = new
        elif new:
            fields.append(new)
        lines[line_no] = " ".join(f for f in fields if f)
    return "\n".join(lines) + "\n"


@OVERFLOW_WARNING
@FUZZ
@given(case=wfdb_cases(), edits=st.lists(field_edits(), min_size=1, max_size=4))
def test_a_fuzzed_wfdb_header_reads_or_fails_with_a_read_error(
    case: WfdbCase, edits: list[tuple[int, int, str]]
) -> None:
    with scratch() as root:
        header, _ = write_wfdb(root, case)
        header.write_text(edit_header(header.read_text(), edits))
        _, records, _ = read_everything(WfdbFolderReader("w", root))
        for rec in records:
            assert_well_formed(rec, allow_inf=scale_overflows_float32(header))


@OVERFLOW_WARNING
@FUZZ
@given(case=wfdb_cases(), edits=st.lists(field_edits(), min_size=1, max_size=3))
def test_a_fuzzed_signal_line_keeps_the_shape_the_header_declares(
    case: WfdbCase, edits: list[tuple[int, int, str]]
) -> None:
    # Only signal-line fields (gain, baseline, ADC fields, description) change: C and T stay known.
    edits = [(max(1, line), max(2, field), new) for line, field, new in edits]
    with scratch() as root:
        header, _ = write_wfdb(root, case)
        header.write_text(edit_header(header.read_text(), edits))
        _, records, _ = read_everything(WfdbFolderReader("w", root))
        for rec in records:
            assert_well_formed(rec, case.n_sig, case.n_samples, allow_inf=scale_overflows_float32(header))


@OVERFLOW_WARNING
def test_a_gain_too_small_for_float32_is_refused() -> None:
    case = WfdbCase("16", 500.0, np.array([[1, -1, 0]]), (Channel(1e-40, 0, 0, "mV"),))
    with scratch() as root:
        write_wfdb(root, case)
        _, records, _ = read_everything(WfdbFolderReader("w", root))
        for rec in records:
            assert_well_formed(rec, 1, 3)
