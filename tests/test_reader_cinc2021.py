"""CinC 2020/2021 reader on the real shared records and on damaged copies of them."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import wfdb

from pipeline.core.records import Discovery, Provenance, RawLabel, ReadError, Record, Rejection
from pipeline.sources.base import list_files
from pipeline.sources.cinc2021 import Cinc2021Reader

pytestmark = pytest.mark.shared_data

GEORGIA_RAW = {"E00271", "E03823", "E06320", "E07938", "E09314", "E10256"}


def _accounted(disc: Discovery) -> list[str]:
    files = [f for u in disc.units for f in u.files] + list(disc.metadata_files)
    return sorted(files + [f for r in disc.rejected for f in r.files])


def _read_all(reader: Cinc2021Reader, disc: Discovery) -> list[Record]:
    out = []
    for unit in disc.units:
        for item in reader.read(unit, Provenance((), reader.reader_id)):
            assert isinstance(item, Record)
            out.append(item)
    return out


def _copy(shared_data: Path, names: list[str], dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        for suffix in (".hea", ".mat"):
            shutil.copy(shared_data / "cinc2021" / f"{name}{suffix}", dest / f"{name}{suffix}")


def test_discovers_one_unit_per_header_and_accounts_for_every_file(shared_data: Path) -> None:
    root = shared_data / "cinc2021"
    disc = Cinc2021Reader("c21", root).discover()
    assert len(disc.units) == 89 == len(list(root.glob("*.hea")))
    assert disc.rejected == ()
    assert _accounted(disc) == list_files(root)
    assert all(u.files == (f"{u.key}.hea", f"{u.key}.mat") for u in disc.units)


def test_reads_every_record_with_labels_matching_sources_md(shared_data: Path) -> None:
    reader = Cinc2021Reader("c21", shared_data / "cinc2021")
    records = _read_all(reader, reader.discover())
    counts = Counter(label.code for r in records for label in r.raw_labels)
    assert len(counts) == 39
    assert counts["426783006"] == 29
    assert counts["427084000"] == 27
    assert counts["284470004"] == 23
    assert counts["426177001"] == 19
    assert counts["164934002"] == 14
    for record in records:
        assert record.fs_hz == 500.0
        assert record.signal.shape[0] == 12 and record.signal.dtype == np.float32
        assert record.leads == ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
        assert record.patient_id is None
        assert {"age", "sex", "rx", "hx"} <= set(record.meta)
        assert record.record_id.startswith("c21:")


def test_both_comment_styles_give_dx_and_meta(shared_data: Path) -> None:
    reader = Cinc2021Reader("c21", shared_data / "cinc2021")
    units = {u.key: u for u in reader.discover().units}
    spaced = next(iter(reader.read(units["E07500"], Provenance((), reader.reader_id))))  # "# Dx: a,b"
    raw = next(iter(reader.read(units["A0689"], Provenance((), reader.reader_id))))  # "#Dx: a"
    assert isinstance(spaced, Record) and isinstance(raw, Record)
    assert spaced.raw_labels == (RawLabel("67741000119109"), RawLabel("426177001"))
    assert dict(spaced.meta) == {"age": "78", "sex": "Male", "rx": "Unknown", "hx": "Unknown"}
    assert raw.raw_labels == (RawLabel("164889003"),)
    assert raw.meta["sx"] == "Unknown" and raw.meta["age"] == "80"


def test_signals_equal_wfdb_or_loadmat_in_mv(shared_data: Path) -> None:
    root = shared_data / "cinc2021"
    reader = Cinc2021Reader("c21", root)
    for record in _read_all(reader, reader.discover()):
        name = record.record_id.split(":", 1)[1]
        if name in GEORGIA_RAW:  # wfdb.rdheader rejects their record line
            header_lines = (root / f"{name}.hea").read_text().splitlines()[1:13]
            baselines = np.array([int(line.split()[4]) for line in header_lines], dtype=np.float64)
            val = scipy.io.loadmat(str(root / f"{name}.mat"))["val"].astype(np.float64)
            expected = ((val - baselines[:, None]) / 1000.0).astype(np.float32)
        else:
            expected = wfdb.rdrecord(str(root / name)).p_signal.T.astype(np.float32)
        np.testing.assert_array_equal(record.signal, expected, err_msg=name)


def test_nested_challenge_folders_are_found(shared_data: Path, tmp_path: Path) -> None:
    _copy(shared_data, ["E07500", "E00271"], tmp_path / "training" / "georgia" / "g1")
    _copy(shared_data, ["HR06000"], tmp_path / "training" / "ptb-xl" / "g1")
    (tmp_path / "training" / "weights.csv").write_text("a,b\n")
    (tmp_path / "LICENSE.txt").write_text("CC BY 4.0\n")
    reader = Cinc2021Reader("c21", tmp_path)
    disc = reader.discover()
    assert sorted(u.key for u in disc.units) == ["E00271", "E07500", "HR06000"]
    assert sorted(disc.metadata_files) == ["LICENSE.txt", "training/weights.csv"]
    assert _accounted(disc) == list_files(tmp_path)
    assert [r.signal.shape for r in _read_all(reader, disc)] == [(12, 5000)] * 3


def test_orphans_duplicates_and_stray_files_are_rejected(shared_data: Path, tmp_path: Path) -> None:
    _copy(shared_data, ["E07500", "E07501", "JS01048"], tmp_path / "a")
    _copy(shared_data, ["E07500"], tmp_path / "b")
    (tmp_path / "a" / "E07501.hea").unlink()  # orphan .mat
    (tmp_path / "a" / "JS01048.mat").unlink()  # header whose signal file is missing
    (tmp_path / "a" / "notes.bin").write_bytes(b"x")
    reader = Cinc2021Reader("c21", tmp_path)
    disc = reader.discover()
    assert _accounted(disc) == list_files(tmp_path)
    reasons = {r.item: (r.category, r.reason) for r in disc.rejected}
    assert reasons["a/E07501.mat"] == (
        "error",
        "a/E07501.mat: signal file with no header; expected a/E07501.hea",
    )
    assert reasons["b/E07500"][0] == "duplicate" and "a/E07500.hea" in reasons["b/E07500"][1]
    assert reasons["a/notes.bin"][0] == "error"
    units = {u.key: u for u in disc.units}
    assert set(units) == {"E07500", "JS01048"}
    with pytest.raises(
        ReadError, match=r"^a/JS01048.mat: signal file named by header a/JS01048.hea does not exist"
    ):
        list(reader.read(units["JS01048"], Provenance((), reader.reader_id)))


def test_truncated_record_raises_while_the_others_read(shared_data: Path, tmp_path: Path) -> None:
    names = ["E07500", "HR06000", "A0689", "E00271"]
    _copy(shared_data, names, tmp_path)
    data = (tmp_path / "HR06000.mat").read_bytes()
    (tmp_path / "HR06000.mat").write_bytes(data[: len(data) // 2])
    reader = Cinc2021Reader("c21", tmp_path)
    read: list[Record | Rejection] = []
    errors: dict[str, str] = {}
    for unit in reader.discover().units:
        try:
            read.extend(reader.read(unit, Provenance((), reader.reader_id)))
        except ReadError as exc:
            errors[unit.key] = str(exc)
    assert len(read) == 3
    assert list(errors) == ["HR06000"]
    assert errors["HR06000"].startswith(
        "HR06000.mat: header declares 5000 samples x 12 signals (120024 bytes)"
    )
