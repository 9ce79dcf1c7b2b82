"""Hypothesis properties of the UCR reader on generated ``.txt`` rows, garbage tokens included
(the contract is :mod:`tests.test_properties_readers`'s)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from pipeline.sources.ucr import UcrReader
from tests.reader_properties_support import (
    FUZZ,
    OVERFLOW_WARNING,
    PROPS,
    assert_well_formed,
    read_everything,
    scratch,
)

# --------------------------------------------------------------------------- UCR text rows

finite_values = st.floats(-1e6, 1e6, allow_nan=False, width=32)
labels = st.one_of(st.integers(1, 5).map(str), st.sampled_from(["1.0", "2.0000000e+00", "normal", "'3'"]))


@PROPS
@given(
    rows=st.lists(
        st.tuples(labels, st.lists(finite_values, min_size=1, max_size=30)), min_size=1, max_size=20
    )
)
def test_ucr_rows_become_float32_beats_or_rejections_one_per_row_in_order(
    rows: list[tuple[str, list[float]]],
) -> None:
    text = "".join(f"  {label} " + " ".join(f"{v:.9e}" for v in values) + "\n" for label, values in rows)
    with scratch() as root:
        (root / "ECG_TRAIN.txt").write_text(text)
        reader = UcrReader("u", root)
        disc, records, reasons = read_everything(reader)
        assert len(records) + len(reasons) == len(rows)
        by_row = {int(r.meta["row"]): r for r in records}
        for i, (_, values) in enumerate(rows):
            if i not in by_row:
                continue
            rec = by_row[i]
            assert_well_formed(rec, 1, len(values))
            np.testing.assert_array_equal(rec.signal[0], np.asarray(values, dtype=np.float32))
        modal = max({len(v) for _, v in rows}, key=lambda n: (sum(len(v) == n for _, v in rows), n))
        assert sorted(by_row) == [i for i, (_, v) in enumerate(rows) if len(v) == modal]


tokens = st.one_of(
    finite_values.map(repr),
    st.sampled_from(["NaN", "nan", "?", "abc", "1,5", "--1", "0x10", "1e5", "", "\t"]),
)


@FUZZ
@given(lines=st.lists(st.lists(tokens, min_size=0, max_size=12), min_size=0, max_size=12))
def test_ucr_garbage_rows_never_raise_anything_but_read_error(lines: list[list[str]]) -> None:
    with scratch() as root:
        (root / "ECG_TEST.txt").write_text("\n".join(" ".join(tokens) for tokens in lines) + "\n")
        _, records, _ = read_everything(UcrReader("u", root))
        for rec in records:
            assert_well_formed(rec, 1)


@OVERFLOW_WARNING
def test_ucr_values_beyond_float32_are_rejected_not_stored_as_inf() -> None:
    with scratch() as root:
        (root / "ECG_TRAIN.txt").write_text("1 0.5 1e39 0.25\n2 0.5 inf 0.25\n1 0.1 0.2 0.3\n")
        _, records, _ = read_everything(UcrReader("u", root))
        for rec in records:
            assert_well_formed(rec, 1, 3)
