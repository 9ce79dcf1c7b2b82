"""The demo-data writer: real on-disk layouts that read back with wfdb and scipy, exact counts,
byte-identical output for one seed."""

from __future__ import annotations

import ast
import csv
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import wfdb

from pipeline.core.records import Provenance, Record, Rejection
from pipeline.demo.ptbxl_tree import LABEL_NOISE, NORM_VARIANT, _ptbxl_plan, _synth_class
from pipeline.demo.raw_tree import (
    CINC_FRACTIONS,
    MARKER,
    PTBXL_COLUMNS,
    SCP_STATEMENT_ROWS,
    SCP_STATEMENTS_HEADER,
    DemoSummary,
    source_state,
    split_counts,
    write_demo_data,
)
from pipeline.demo.ucr_tree import LABEL_NOISE as UCR_LABEL_NOISE
from pipeline.demo.ucr_tree import UCR_BEAT_KIND, beat_kind
from pipeline.sources.base import SourceReader, list_files
from pipeline.sources.cinc2017 import Cinc2017Reader
from pipeline.sources.ptbxl import PtbXlReader
from pipeline.sources.ucr import UcrReader

SMALL = {"n_ptbxl": 30, "n_cinc2017": 24, "n_ucr": 40}


def write_small(out_dir: Path, seed: int) -> DemoSummary:
    return write_demo_data(out_dir, seed, SMALL["n_ptbxl"], SMALL["n_cinc2017"], SMALL["n_ucr"])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoSummary:
    return write_small(tmp_path_factory.mktemp("demo"), 3)


def tree_digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def ptbxl_rows(demo: DemoSummary) -> list[dict[str, str]]:
    with (demo.roots["ptbxl"] / "ptbxl_database.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def cinc_folder(demo: DemoSummary) -> Path:
    return demo.roots["cinc2017"] / "training2017"


# --------------------------------------------------------------------------- whole tree


def test_summary_lists_every_file_and_the_requested_counts(demo: DemoSummary) -> None:
    on_disk = sorted(p for p in demo.out_dir.rglob("*") if p.is_file())
    assert list(demo.files) == on_disk
    assert demo.total("ptbxl") == SMALL["n_ptbxl"]
    assert demo.total("cinc2017") == SMALL["n_cinc2017"]
    assert demo.total("ucr") == SMALL["n_ucr"] == sum(demo.ucr_split.values())
    assert set(demo.counts["cinc2017"]) == set(CINC_FRACTIONS)
    assert all(n > 0 for source in demo.counts.values() for n in source.values())


def test_same_seed_writes_byte_identical_trees_and_another_seed_does_not(
    demo: DemoSummary, tmp_path: Path
) -> None:
    again = write_small(tmp_path / "again", 3)
    other = write_small(tmp_path / "other", 4)
    first = tree_digest(demo.out_dir)
    assert tree_digest(again.out_dir) == first
    different = tree_digest(other.out_dir)
    assert different.keys() == first.keys()
    assert sum(different[k] != first[k] for k in first) > len(first) // 2


def test_rerun_replaces_an_earlier_demo_tree_without_stale_records(tmp_path: Path) -> None:
    write_demo_data(tmp_path, seed=1, n_ptbxl=6, n_cinc2017=6, n_ucr=10)
    smaller = write_demo_data(tmp_path, seed=1, n_ptbxl=3, n_cinc2017=2, n_ucr=10)
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == list(smaller.files)


def test_leaves_a_folder_holding_real_data_untouched_and_writes_the_others(tmp_path: Path) -> None:
    (tmp_path / "ptbxl").mkdir()
    (tmp_path / "ptbxl" / "mine.csv").write_text("keep me\n")
    summary = write_demo_data(tmp_path, n_ptbxl=2, n_cinc2017=2, n_ucr=10)
    assert summary.skipped == ("ptbxl",)
    assert [p.name for p in (tmp_path / "ptbxl").iterdir()] == ["mine.csv"]
    assert summary.total("cinc2017") == 2 and (tmp_path / "cinc2017" / MARKER).is_file()


def test_an_interrupted_demo_run_is_rewritten_not_taken_for_real_data(tmp_path: Path) -> None:
    write_demo_data(tmp_path, n_ptbxl=2, n_cinc2017=2, n_ucr=10)
    (tmp_path / "cinc2017" / MARKER).write_text(
        "Synthetic demo data written by `ecgpipe demo-data`\nincomplete\n"
    )
    assert source_state(tmp_path / "cinc2017", "x") == "write"
    summary = write_demo_data(tmp_path, n_ptbxl=2, n_cinc2017=2, n_ucr=10)
    assert summary.skipped == () and summary.total("cinc2017") == 2


def test_split_counts_are_exact_and_proportional() -> None:
    counts = split_counts(240, {"N": 0.45, "A": 0.2, "O": 0.25, "~": 0.1})
    assert counts == {"N": 108, "A": 48, "O": 60, "~": 24}
    assert sum(split_counts(7, {"a": 1.0, "b": 1.0, "c": 1.0}).values()) == 7


@pytest.mark.slow
def test_defaults_stay_small(tmp_path: Path) -> None:
    summary = write_demo_data(tmp_path)
    size = sum(p.stat().st_size for p in summary.files)
    assert size < 60e6
    assert summary.total("ptbxl") == 240 and summary.total("cinc2017") == 240 and summary.total("ucr") == 300


def read_all(reader: SourceReader) -> tuple[list[Record], list[Rejection]]:
    """Discover and read everything; every file under the root must be accounted for."""
    found = reader.discover()
    accounted = set(found.metadata_files) | {f for u in found.units for f in u.files}
    accounted |= {f for r in found.rejected for f in r.files}
    assert accounted == set(list_files(reader.root))
    records: list[Record] = []
    rejected = [r for r in found.rejected if r.category == "error"]
    for unit in found.units:
        for item in reader.read(unit, Provenance((), reader.reader_id)):
            if isinstance(item, Record):
                records.append(item)
            else:
                rejected.append(item)
    return records, rejected


def test_the_project_readers_read_every_demo_record(demo: DemoSummary) -> None:
    ptbxl, errors = read_all(PtbXlReader("ptbxl", demo.roots["ptbxl"]))
    assert not errors and len(ptbxl) == demo.total("ptbxl")
    assert all(r.signal.shape == (12, 5000) and r.patient_id for r in ptbxl)
    cinc, errors = read_all(Cinc2017Reader("cinc2017", demo.roots["cinc2017"]))
    assert not errors
    labels = [r.raw_labels[0].code for r in cinc]
    assert {k: labels.count(k) for k in CINC_FRACTIONS} == dict(demo.counts["cinc2017"])
    ucr, errors = read_all(UcrReader("ucr", demo.roots["ucr"], fs_hz=250.0))
    assert not errors and len(ucr) == demo.total("ucr")
    assert all(r.signal.shape == (1, 140) for r in ucr)


# --------------------------------------------------------------------------- PTB-XL


@pytest.mark.shared_data
def test_ptbxl_columns_match_the_real_header_line(demo: DemoSummary, shared_data: Path) -> None:
    real = (shared_data / "ptbxl" / "ptbxl_database.csv").read_text(encoding="utf-8").splitlines()[0]
    ours = (demo.roots["ptbxl"] / "ptbxl_database.csv").read_text(encoding="utf-8").splitlines()[0]
    assert ours == real == ",".join(PTBXL_COLUMNS)


@pytest.mark.shared_data
def test_scp_statement_rows_are_the_real_rows(demo: DemoSummary, shared_data: Path) -> None:
    real_lines = (shared_data / "ptbxl" / "scp_statements.csv").read_text(encoding="utf-8").splitlines()
    ours = (demo.roots["ptbxl"] / "scp_statements.csv").read_text(encoding="utf-8").splitlines()
    assert ours[0] == real_lines[0] == SCP_STATEMENTS_HEADER
    real_by_code = {line.split(",", 1)[0]: line for line in real_lines[1:]}
    assert ours[1:] == list(SCP_STATEMENT_ROWS)
    assert all(real_by_code[line.split(",", 1)[0]] == line for line in ours[1:])
    real_order = [code for code in real_by_code if code in {line.split(",", 1)[0] for line in ours[1:]}]
    assert [line.split(",", 1)[0] for line in ours[1:]] == real_order


def test_ptbxl_rows_have_real_value_formats_and_known_codes(demo: DemoSummary) -> None:
    rows = ptbxl_rows(demo)
    codes = {line.split(",", 1)[0] for line in SCP_STATEMENT_ROWS}
    assert [int(r["ecg_id"]) for r in rows] == list(range(1, len(rows) + 1))
    for r in rows:
        assert re.fullmatch(r"\d+\.0", r["patient_id"]) and re.fullmatch(r"\d+\.0", r["age"])
        assert r["sex"] in ("0", "1")
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", r["recording_date"])
        scp = ast.literal_eval(r["scp_codes"])
        assert isinstance(scp, dict) and set(scp) <= codes
        assert all(isinstance(v, float) for v in scp.values())
        assert 1 <= int(r["strat_fold"]) <= 10
        assert r["filename_lr"] == f"records100/00000/{int(r['ecg_id']):05d}_lr"
        assert r["filename_hr"] == f"records500/00000/{int(r['ecg_id']):05d}_hr"
    dates = [r["recording_date"] for r in rows]
    assert dates == sorted(dates)


def test_ptbxl_class_counts_match_codes_and_noise_columns(demo: DemoSummary) -> None:
    rows = ptbxl_rows(demo)
    counts = demo.counts["ptbxl"]

    def has(code: str) -> int:
        return sum(code in ast.literal_eval(r["scp_codes"]) for r in rows)

    noisy = sum(bool(r["static_noise"]) for r in rows)
    assert noisy == counts["NOISY"] > 0
    assert all(bool(r["burst_noise"]) == bool(r["static_noise"]) for r in rows)
    assert has("AFIB") == counts["AF"]
    assert has("IMI") + has("AMI") == counts["MI"]
    assert has("CLBBB") + has("CRBBB") == counts["BBB"]
    assert has("LVH") == counts["HYP"] and has("NDT") == counts["STTC"]
    assert has("NORM") == counts["NORM"] + counts["NOISY"]


def test_ptbxl_codes_cover_every_diagnostic_superclass_of_the_benchmark(demo: DemoSummary) -> None:
    # diagnostic_class is column 5 of scp_statements.csv; the benchmark's superdiagnostic task has five
    superclass = {line.split(",")[0]: line.split(",")[5] for line in SCP_STATEMENT_ROWS}
    seen = {superclass[c] for r in ptbxl_rows(demo) for c in ast.literal_eval(r["scp_codes"])} - {""}
    assert seen == {"NORM", "MI", "STTC", "CD", "HYP"}


def test_ptbxl_label_noise_and_borderline_severity_are_drawn_as_documented() -> None:
    records, _ = _ptbxl_plan(0, 2000)
    mislabelled = [r for r in records if r.drawn_as != r.patient.drawn_as]
    assert abs(len(mislabelled) / len(records) - LABEL_NOISE) < 0.015
    sick = [r.patient for r in records if r.patient.cls in ("MI", "BBB", "HYP", "STTC")]
    assert all(p.drawn_as == (_synth_class(p.cls), p.variant) and 0.1 <= p.severity <= 1.0 for p in sick)
    assert np.mean([p.severity < 0.3 for p in sick]) > 0.15
    normal = [r.patient for r in records if r.patient.cls == "NORM"]
    traced = [p for p in normal if p.drawn_as[0] != "NORM"]
    assert abs(len(traced) / len(normal) - NORM_VARIANT) < 0.06
    assert all(0.02 <= p.severity <= 0.25 for p in traced)
    assert all(r.patient.severity == 1.0 for r in records if r.patient.cls in ("AF", "NOISY"))


def test_ptbxl_patients_repeat_and_keep_one_fold(demo: DemoSummary) -> None:
    rows = ptbxl_rows(demo)
    folds: dict[str, set[str]] = {}
    for r in rows:
        folds.setdefault(r["patient_id"], set()).add(r["strat_fold"])
    assert len(folds) == demo.ptbxl_patients < len(rows)
    assert all(len(f) == 1 for f in folds.values())


def test_ptbxl_records_read_back_with_wfdb_at_both_rates(demo: DemoSummary) -> None:
    root = demo.roots["ptbxl"]
    for r in ptbxl_rows(demo):
        high = wfdb.rdrecord(str(root / r["filename_hr"]), physical=False)
        low = wfdb.rdrecord(str(root / r["filename_lr"]), physical=False)
        for rec, fs, n in ((high, 500, 5000), (low, 100, 1000)):
            assert rec.fs == fs and rec.sig_len == n and rec.n_sig == 12
            assert rec.sig_name == ["I", "II", "III", "AVR", "AVL", "AVF", *(f"V{k}" for k in range(1, 7))]
            assert rec.units == ["mV"] * 12 and rec.adc_gain == [1000.0] * 12 and rec.fmt == ["16"] * 12
            assert rec.init_value == rec.d_signal[0].tolist()
            assert rec.checksum == (rec.d_signal.astype(np.int64).sum(axis=0) % 65536).tolist()
        # The 100 Hz file is the 500 Hz recording decimated: block means of 5 samples follow it.
        block_means = high.d_signal.astype(np.float64).reshape(1000, 5, 12).mean(axis=1)
        corr = [np.corrcoef(block_means[:, c], low.d_signal[:, c])[0, 1] for c in range(12)]
        assert np.median(corr) > 0.8


@pytest.mark.shared_data
def test_ptbxl_headers_look_like_the_real_ones(demo: DemoSummary, shared_data: Path) -> None:
    def shape(text: str) -> list[str]:
        return [re.sub(r"-?\d+", "#", line) for line in text.splitlines(keepends=True)]

    for rate, suffix in (("records100", "lr"), ("records500", "hr")):
        real = (shared_data / "ptbxl" / rate / "00000" / f"00001_{suffix}.hea").read_text()
        ours = (demo.roots["ptbxl"] / rate / "00000" / f"00001_{suffix}.hea").read_text()
        assert shape(ours) == shape(real)


# --------------------------------------------------------------------------- CinC 2017


def test_cinc_records_read_back_with_wfdb_and_loadmat(demo: DemoSummary) -> None:
    folder = cinc_folder(demo)
    names = (folder / "RECORDS").read_text().split()
    assert names == [f"A{i:05d}" for i in range(1, SMALL["n_cinc2017"] + 1)]
    lengths = []
    for name in names:
        rec = wfdb.rdrecord(str(folder / name), physical=False)
        mat = scipy.io.loadmat(str(folder / f"{name}.mat"))
        assert rec.fs == 300 and rec.sig_name == ["ECG"] and rec.adc_gain == [1000.0]
        assert rec.byte_offset == [24]
        assert mat["val"].dtype == np.int16 and mat["val"].shape == (1, rec.sig_len)
        np.testing.assert_array_equal(mat["val"][0], rec.d_signal[:, 0])
        assert rec.init_value == [int(mat["val"][0, 0])]
        assert (folder / f"{name}.mat").stat().st_size == 24 + 2 * rec.sig_len
        lengths.append(rec.sig_len / 300)
    assert min(lengths) >= 9 and max(lengths) <= 61
    assert np.median(lengths) == 30


def test_cinc_reference_has_crlf_lines_and_the_summary_counts(demo: DemoSummary) -> None:
    raw = (cinc_folder(demo) / "REFERENCE.csv").read_bytes()
    lines = raw.split(b"\r\n")
    assert lines[-1] == b"" and b"\n" not in b"".join(lines)
    pairs = [line.decode().split(",") for line in lines[:-1]]
    assert [name for name, _ in pairs] == [f"A{i:05d}" for i in range(1, len(pairs) + 1)]
    labels = [label for _, label in pairs]
    assert {k: labels.count(k) for k in CINC_FRACTIONS} == dict(demo.counts["cinc2017"])


@pytest.mark.shared_data
def test_cinc_header_matches_the_real_layout(demo: DemoSummary, shared_data: Path) -> None:
    def shape(raw: bytes) -> bytes:
        return re.sub(rb"-?\d+", b"#", raw)

    real = (shared_data / "cinc2017" / "training2017" / "A00001.hea").read_bytes()
    ours = (cinc_folder(demo) / "A00001.hea").read_bytes()
    assert shape(ours) == shape(real)
    # MATLAB v4 header: type, rows, (columns differ), imaginary flag, name length, "val\0".
    real_mat = (shared_data / "cinc2017" / "training2017" / "A00001.mat").read_bytes()
    our_mat = (cinc_folder(demo) / "A00001.mat").read_bytes()
    assert our_mat[:8] == real_mat[:8] and our_mat[12:24] == real_mat[12:24]


# --------------------------------------------------------------------------- UCR


def test_ucr_files_are_fixed_width_znormalised_beats(demo: DemoSummary) -> None:
    total: dict[int, int] = {}
    for split in ("TRAIN", "TEST"):
        text = (demo.roots["ucr"] / f"ECG5000_{split}.txt").read_text()
        lines = text.splitlines()
        assert len(lines) == demo.ucr_split[split.lower()]
        assert all(len(line) == 141 * 16 for line in lines)
        data = np.loadtxt(demo.roots["ucr"] / f"ECG5000_{split}.txt", ndmin=2)
        labels = data[:, 0].astype(int)
        assert list(labels) == sorted(labels)
        np.testing.assert_allclose(data[:, 1:].mean(axis=1), 0.0, atol=1e-6)
        np.testing.assert_allclose(data[:, 1:].std(axis=1, ddof=1), 1.0, atol=1e-6)
        for c in labels:
            total[int(c)] = total.get(int(c), 0) + 1
    assert {str(k): v for k, v in sorted(total.items())} == dict(demo.counts["ucr"])


def test_ucr_label_noise_crosses_normal_and_ectopic_at_the_documented_rate() -> None:
    rng = np.random.default_rng(0)
    normal_rows = [beat_kind(rng, "1") for _ in range(4000)]
    ectopic_rows = [beat_kind(rng, "3") for _ in range(4000)]
    wrong = [k for k in normal_rows if k != "N"]
    assert abs(len(wrong) / 4000 - UCR_LABEL_NOISE) < 0.012
    assert set(wrong) == set(UCR_BEAT_KIND.values()) - {"N"}
    assert set(ectopic_rows) == {"V", "N"}
    assert abs(ectopic_rows.count("N") / 4000 - UCR_LABEL_NOISE) < 0.012


@pytest.mark.shared_data
def test_ucr_line_format_matches_the_real_file(demo: DemoSummary, shared_data: Path) -> None:
    field = re.compile(r"( {2,3}-?\d\.\d{7}e[+-]\d\d)")
    real = (shared_data / "ucr_ecg5000" / "ECG5000_TRAIN.txt").read_text().splitlines()[0]
    ours = (demo.roots["ucr"] / "ECG5000_TRAIN.txt").read_text().splitlines()[0]
    assert len(ours) == len(real)
    assert len(field.findall(ours)) == len(field.findall(real)) == 141
