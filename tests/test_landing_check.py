"""Completeness of one landed record: real records are complete, every way of being half-written
is caught (short/empty signal files, cut headers, zero-filled preallocations, cut annotations),
and headers that are wrong beyond being incomplete are invalid. Synthetic records in every WFDB
format, shared files and samples per frame are in ``test_landing_check_formats.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import wfdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.landing.check import COMPLETE, INCOMPLETE, INVALID, annotation_status, check_record
from tests.landing_check_support import CINC, PTB, REAL, copy_record

# --------------------------------------------------------------------------- real records


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("folder", "options"),
    [
        ("cinc2021", CINC),
        ("mitbih", {}),
        ("cpsc2021", {"annotation_ext": "atr"}),
        ("ptb_diagnostic/patient001", PTB),
    ],
)
def test_every_real_record_of_a_landing_kind_is_complete(
    shared_data: Path, folder: str, options: dict[str, Any]
) -> None:
    root = shared_data / folder
    for header in sorted(root.glob("*.hea")):
        check = check_record(root, header.name, **options)
        assert check.status == COMPLETE, (header.name, check.problems)
        assert check.files[-1] == header.name, "the header moves last"
        assert check.notes == ()


@pytest.mark.shared_data
def test_files_are_listed_in_move_order_with_the_header_last(shared_data: Path) -> None:
    check = check_record(shared_data / "mitbih", "100.hea", annotation_ext="atr")
    assert check.files == ("100.dat", "100.atr", "100.hea")
    assert check.record_key == "100"
    ptb = check_record(shared_data / "ptb_diagnostic", "patient001/s0010_re.hea", **PTB)
    assert ptb.files == ("patient001/s0010_re.dat", "patient001/s0010_re.xyz", "patient001/s0010_re.hea")


@pytest.mark.shared_data
@pytest.mark.parametrize(("folder", "record", "cut_file", "options"), REAL)
def test_a_signal_file_cut_anywhere_is_incomplete(
    shared_data: Path, tmp_path: Path, folder: str, record: str, cut_file: str, options: dict[str, Any]
) -> None:
    root = copy_record(shared_data, folder, record, tmp_path)
    full = (root / cut_file).read_bytes()
    for cut in (0, 1, len(full) // 2, len(full) - 1):
        (root / cut_file).write_bytes(full[:cut])
        check = check_record(root, f"{record}.hea", **options)
        assert check.status == INCOMPLETE, (cut, check.problems)
        assert check.problems[0].startswith(f"{cut_file}: {cut:,} "), check.problems
    (root / cut_file).write_bytes(full)
    assert check_record(root, f"{record}.hea", **options).complete


@pytest.mark.shared_data
def test_short_signal_file_message_says_what_the_header_implies(shared_data: Path, tmp_path: Path) -> None:
    root = copy_record(shared_data, "mitbih", "100", tmp_path)
    full = (root / "100.dat").read_bytes()
    (root / "100.dat").write_bytes(full[:411_000])
    check = check_record(root, "100.hea")
    assert check.problems == (
        "100.dat: 411,000 of 1,950,000 bytes the header implies (format 212, 2 signals x 650,000 samples)",
    )


@pytest.mark.shared_data
def test_a_signal_file_longer_than_the_header_implies_is_invalid(shared_data: Path, tmp_path: Path) -> None:
    root = copy_record(shared_data, "cpsc2021", "data_8_2", tmp_path)
    with (root / "data_8_2.dat").open("ab") as fh:
        fh.write(b"\0\0")
    check = check_record(root, "data_8_2.hea")
    assert check.status == INVALID
    assert "more than the 172,368 the header implies" in check.reason


@pytest.mark.shared_data
def test_mat_header_must_agree_with_the_wfdb_header(shared_data: Path, tmp_path: Path) -> None:
    root = copy_record(shared_data, "cinc2021", "A0689", tmp_path)
    mat = bytearray((root / "A0689.mat").read_bytes())
    (root / "A0689.mat").write_bytes(bytes(mat[:10]))  # MAT header itself cut
    assert check_record(root, "A0689.hea", **CINC).status == INCOMPLETE
    wrong_cols = mat.copy()
    wrong_cols[8:12] = (4000).to_bytes(4, "little")  # cols: 5000 -> 4000, file keeps its size
    (root / "A0689.mat").write_bytes(bytes(wrong_cols))
    check = check_record(root, "A0689.hea", **CINC)
    assert check.status == INVALID
    assert "A0689.mat: MAT v4 matrix 12 x 4000" in check.reason
    double = mat.copy()
    double[0:4] = (0).to_bytes(4, "little")  # type 0: float64, not int16
    (root / "A0689.mat").write_bytes(bytes(double))
    assert "expected 30" in check_record(root, "A0689.hea", **CINC).reason
    (root / "A0689.mat").write_bytes(b"MATLAB 5.0 MAT-file" + bytes(mat[19:]))
    assert "MATLAB v5" in check_record(root, "A0689.hea", **CINC).reason


# --------------------------------------------------------------------------- headers


@pytest.mark.shared_data
def test_a_header_cut_mid_line_or_between_signal_lines_is_incomplete(
    shared_data: Path, tmp_path: Path
) -> None:
    root = copy_record(shared_data, "ptb_diagnostic/patient001", "s0010_re", tmp_path)
    text = (root / "s0010_re.hea").read_text()
    lines = text.splitlines(keepends=True)
    mid_signal_line = "".join(lines[:5]) + lines[5][:20]
    between_lines = "".join(lines[:9])
    for cut in (text[:1], lines[0].rstrip("\n"), lines[0], between_lines, mid_signal_line):
        (root / "s0010_re.hea").write_text(cut)
        check = check_record(root, "s0010_re.hea", **PTB)
        assert check.status == INCOMPLETE, (cut, check.problems)
    assert check.problems[0].startswith("s0010_re.hea: ends mid-line")
    (root / "s0010_re.hea").write_text(between_lines)
    assert check_record(root, "s0010_re.hea").problems == (
        "s0010_re.hea: 8 of the 15 signal lines its record line declares",
    )
    for start in (b"", b"\n", b"# a leading comment\n"):
        (root / "s0010_re.hea").write_bytes(start)
        assert check_record(root, "s0010_re.hea").status == INCOMPLETE, start


@pytest.mark.shared_data
def test_a_cinc_header_cut_before_its_dx_line_is_incomplete(shared_data: Path, tmp_path: Path) -> None:
    root = copy_record(shared_data, "cinc2021", "E00271", tmp_path)
    text = (root / "E00271.hea").read_text()
    (root / "E00271.hea").write_text(text[: text.index("#Dx")])
    check = check_record(root, "E00271.hea", **CINC)
    assert check.status == INCOMPLETE
    assert "no '# Dx:' comment line" in check.reason


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("replace", "by", "expected"),
    [
        ("100.dat 212 200 11 1024 995", "../100.dat 212 200 11 1024 995", "escapes the source root"),
        (
            "100.dat 212 200 11 1024 995",
            "sub/100.dat 212 200 11 1024 995",
            "plain file name beside the header",
        ),
        ("100.dat 212 200 11 1024 995", "100.dat 212 abc 11 1024 995", "field gain"),
        ("100 2 360", "100 1 360", "declares 1 signals but the header has 2"),
        ("100.dat 212 200 11 1024 995", "100.hea 212 200 11 1024 995", "as a signal file"),
        ("100.dat 212 200 11 1024 995", "100.dat 16 200 11 1024 995", "different formats"),
    ],
)
def test_a_header_that_is_wrong_beyond_incomplete_is_invalid(
    shared_data: Path, tmp_path: Path, replace: str, by: str, expected: str
) -> None:
    root = copy_record(shared_data, "mitbih", "100", tmp_path / "src")
    text = (root / "100.hea").read_text()
    assert replace in text
    (root / "100.hea").write_text(text.replace(replace, by, 1))
    check = check_record(root, "100.hea")
    assert check.status == INVALID, check.problems
    assert expected in check.reason


@pytest.mark.shared_data
def test_cinc_headers_may_name_only_their_own_mat_file(shared_data: Path, tmp_path: Path) -> None:
    root = copy_record(shared_data, "cinc2021", "A0689", tmp_path)
    (root / "A0689.hea").write_text((root / "A0689.hea").read_text().replace("A0689.mat 16", "other.mat 16"))
    check = check_record(root, "A0689.hea", **CINC)
    assert check.status == INVALID
    assert "this source reads only A0689.mat" in check.reason


@pytest.mark.shared_data
def test_a_missing_signal_file_is_incomplete(shared_data: Path, tmp_path: Path) -> None:
    root = copy_record(shared_data, "ptb_diagnostic/patient001", "s0010_re", tmp_path)
    (root / "s0010_re.xyz").unlink()
    check = check_record(root, "s0010_re.hea", **PTB)
    assert check.problems == ("s0010_re.xyz: missing (named by s0010_re.hea)",)


# --------------------------------------------------------------------------- checksums


@pytest.mark.shared_data
@pytest.mark.parametrize(("folder", "record", "cut_file", "options"), REAL)
def test_a_preallocated_zero_filled_signal_file_is_caught_by_the_checksum(
    shared_data: Path, tmp_path: Path, folder: str, record: str, cut_file: str, options: dict[str, Any]
) -> None:
    root = copy_record(shared_data, folder, record, tmp_path)
    full = (root / cut_file).read_bytes()
    keep = 24 if cut_file.endswith(".mat") else 0  # the MAT header is written first
    (root / cut_file).write_bytes(full[:keep] + bytes(len(full) - keep))
    check = check_record(root, f"{record}.hea", **options)
    assert check.status == INCOMPLETE
    assert "checksum of signal" in check.reason and cut_file in check.reason
    unchecked = check_record(root, f"{record}.hea", **{**options, "verify_checksums": False})
    assert unchecked.complete, "without checksums a preallocated file of the right size cannot be told"


@pytest.mark.shared_data
def test_a_checksum_of_zero_means_not_set(shared_data: Path, tmp_path: Path) -> None:
    root = copy_record(shared_data, "cinc2017/training2017", "A00001", tmp_path)
    assert " 0 0 ECG" in (root / "A00001.hea").read_text()
    assert check_record(root, "A00001.hea").complete


# --------------------------------------------------------------------------- annotations


@pytest.mark.shared_data
def test_a_missing_or_cut_annotation_is_incomplete(shared_data: Path, tmp_path: Path) -> None:
    root = copy_record(shared_data, "mitbih", "100", tmp_path)
    full = (root / "100.atr").read_bytes()
    assert full.endswith(b"\0\0")
    (root / "100.atr").unlink()
    missing = check_record(root, "100.hea", annotation_ext="atr")
    assert missing.problems == ("100.atr: missing; this source requires the annotation file",)
    assert check_record(root, "100.hea").complete, "no annotation required, none checked"
    for cut in (0, 1, 2, 3, len(full) // 2, len(full) - 2, len(full) - 1):
        (root / "100.atr").write_bytes(full[:cut])
        check = check_record(root, "100.hea", annotation_ext="atr")
        assert check.status == INCOMPLETE, cut
        assert "100.atr: no end-of-file marker" in check.reason
    (root / "100.atr").write_bytes(full + b"\x01\x02")
    assert check_record(root, "100.hea", annotation_ext="atr").status == INVALID


@pytest.mark.shared_data
def test_every_real_annotation_file_walks_to_its_end_marker(shared_data: Path) -> None:
    files = [shared_data / "mitbih" / "100.atr", *sorted((shared_data / "cpsc2021").glob("*.atr"))]
    for path in files:
        assert annotation_status(path) == (COMPLETE, ""), path


def test_annotation_cut_at_a_zero_word_inside_an_aux_note_is_still_incomplete(tmp_path: Path) -> None:
    # "(AFIB" is 5 bytes, padded with one zero; a cut just after it ends on b"B\0" + a zero byte
    # from the next field, which a naive "ends with two zeros" test would call complete.
    samples = np.array([10, 2000, 2100])
    wfdb.wrann(
        "r", "atr", samples, symbol=["+", "N", "N"], aux_note=["(AFIB", "", ""], write_dir=str(tmp_path)
    )
    full = (tmp_path / "r.atr").read_bytes()
    assert annotation_status(tmp_path / "r.atr")[0] == COMPLETE
    for cut in range(0, len(full) - 1):
        (tmp_path / "r.atr").write_bytes(full[:cut])
        assert annotation_status(tmp_path / "r.atr")[0] == INCOMPLETE, cut


# --------------------------------------------------------------------------- property


@pytest.mark.shared_data
@settings(
    max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_no_truncation_of_a_real_signal_file_is_ever_complete(
    shared_data: Path, tmp_path: Path, data: st.DataObject
) -> None:
    folder, record, cut_file, options = data.draw(st.sampled_from(REAL[1:]), label="record")
    root = tmp_path / record
    if not root.exists():
        copy_record(shared_data, folder, record, root)
    full = (shared_data / folder / cut_file).read_bytes()
    cut = data.draw(st.integers(0, len(full) - 1), label="cut")
    (root / cut_file).write_bytes(full[:cut])
    assert not check_record(root, f"{record}.hea", **options).complete
