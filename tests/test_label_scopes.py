"""Label scopes: raw labels carry record / interval / beat scope, windows take record-scope labels only
where the table's ``windows`` rule says so, and window label counts on the shared CPSC 2021 records equal
counts computed independently from the ``.atr`` files with ``wfdb.rdann``."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import wfdb

from pipeline.core.records import RawLabel, Record
from pipeline.labels.mapping import LabelMapper
from pipeline.labels.tables import LabelTableError, load_tables
from pipeline.sources.wfdb_folder import WfdbFolderReader
from pipeline.sources.windows import AnnotationTrack, window_labels
from pipeline.store.group import raw_labels_from_json, raw_labels_json
from tests.labels_support import VOCAB_CSV, labels_of, make_mapper, make_tables, write
from tests.wfdb_folder_support import read_all, records_of

AF_RHYTHMS = ("(AFIB", "(AFL")


def test_window_labels_carry_scope_and_spans_relative_to_the_window() -> None:
    track = AnnotationTrack.from_annotations(
        [0, 100, 250, 300, 500], ["+", "N", "+", "V", "N"], ["(N", "", "(AFIB", "", ""]
    )
    got = window_labels(track, 200, 400, ["paroxysmal atrial fibrillation"])
    assert got == (
        RawLabel("V", scope="beat", span=(100, 101)),
        RawLabel("(N", scope="interval", span=(0, 50)),
        RawLabel("(AFIB", scope="interval", span=(50, 200)),
        RawLabel("paroxysmal atrial fibrillation"),
    )


def test_raw_label_scope_and_span_are_validated() -> None:
    with pytest.raises(ValueError, match="scope 'episode'"):
        RawLabel("X", scope="episode", span=(0, 1))
    with pytest.raises(ValueError, match="need one"):
        RawLabel("V", scope="beat")
    with pytest.raises(ValueError, match="record scope has no span"):
        RawLabel("NORM", span=(0, 1))
    with pytest.raises(ValueError, match="start < stop"):
        RawLabel("(N", scope="interval", span=(5, 5))


def test_stored_raw_labels_round_trip_and_old_shards_read_as_record_scope() -> None:
    labels = (
        RawLabel("NORM", 100.0),
        RawLabel("V", scope="beat", span=(7, 8)),
        RawLabel("(N", None, "interval", (0, 9)),
    )
    text = raw_labels_json(labels)
    assert raw_labels_from_json(text) == labels
    assert raw_labels_json(labels[:1]) == '[["NORM", 100.0]]'  # record-scope rows keep the old bytes
    assert raw_labels_from_json('[["A", null], ["SR", 0.0]]') == (RawLabel("A"), RawLabel("SR", 0.0))


def test_record_scope_window_rules_always_never_unannotated(tmp_path: Path) -> None:
    vocab = write(tmp_path, "vocabulary.csv", VOCAB_CSV)
    table = write(
        tmp_path,
        "h.csv",
        "source,scope,source_code,label,note,windows\n"
        "h,record,parox,AF,,never\nh,record,persist,AF,,unannotated\nh,record,sinus,NORM,,\n"
        "h,interval,(N,NORM,,\nh,interval,(AFIB,AF,,\n",
    )
    mapper = LabelMapper(load_tables([vocab, table]), ("NORM", "AF", "OTHER"))
    rhythm = RawLabel("(N", scope="interval", span=(0, 10))
    cases = [
        ([RawLabel("parox")], False, {"AF"}),  # a whole record keeps its record class
        ([RawLabel("parox")], True, set()),
        ([RawLabel("parox"), rhythm], True, {"NORM"}),
        ([RawLabel("persist")], True, {"AF"}),  # no rhythm annotation contradicts it
        ([RawLabel("persist"), rhythm], True, {"NORM"}),  # the record's own rhythm governs
        ([RawLabel("sinus")], True, {"NORM"}),  # empty windows column means always
    ]
    for raw, windowed, expected in cases:
        got = mapper.map_labels("h", raw, windowed=windowed)
        assert labels_of(mapper, got.labels) == expected, (raw, windowed)
        assert got.unmapped == ()


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("h,episode,X,AF,,\n", "scope 'episode'; expected one of record, interval, beat"),
        ("h,record,X,AF,,sometimes\n", "windows='sometimes'; expected one of always, never, unannotated"),
        ("h,beat,X,AF,,never\n", "only record-scope rows take a windows rule"),
        ("h,record,X,MI,,\n", "label 'MI' is not in the vocabulary"),
    ],
)
def test_bad_scope_or_window_rule_names_file_and_line(tmp_path: Path, row: str, message: str) -> None:
    vocab = write(tmp_path, "vocabulary.csv", VOCAB_CSV)
    table = write(tmp_path, "h.csv", "source,scope,source_code,label,note,windows\n" + row)
    with pytest.raises(LabelTableError, match=re.escape(f"{table}:2: ") + ".*" + re.escape(message)):
        load_tables([vocab, table])


# --------------------------------------------------------------------------- real CPSC 2021 records


def rdann_af_windows(record: Path, win: int) -> tuple[int, int]:
    """(AF windows, windows) of 10 s windows, hop = window, computed from ``wfdb.rdann`` alone.

    A window is AF when an ``(AFIB``/``(AFL`` rhythm holds on at least one of its samples. A rhythm
    holds from its ``+`` annotation to the next one; a change on the record's last sample lasts no
    sample (CPSC 2021 closes AF episodes there) and is ignored.
    """
    n = wfdb.rdheader(str(record)).sig_len
    ann = wfdb.rdann(str(record), "atr")
    changes = [
        (int(s), a.replace("\x00", "").strip())
        for s, sym, a in zip(ann.sample, ann.symbol, ann.aux_note, strict=True)
        if sym == "+" and a and a.replace("\x00", "").strip() and int(s) < n - 1
    ]
    af_sample = np.zeros(n, dtype=bool)
    for i, (s, rhythm) in enumerate(changes):
        end = changes[i + 1][0] if i + 1 < len(changes) else n
        if rhythm in AF_RHYTHMS:
            af_sample[s:end] = True
    starts = range(0, n - win + 1, win)
    return sum(bool(af_sample[s : s + win].any()) for s in starts), len(starts)


def cpsc_windows(root: Path, key: str) -> list[Record]:
    reader = WfdbFolderReader("cpsc2021", root, window_s=10.0, hop_s=10.0)
    unit = next(u for u in reader.discover().units if u.key == key)
    return records_of(read_all(reader, unit))


def af_count(mapper: LabelMapper, windows: list[Record]) -> int:
    batch = mapper.map_batch(
        ["cpsc2021"] * len(windows), [w.raw_labels for w in windows], windowed=[True] * len(windows)
    )
    return int(batch.labels[:, mapper.vocabulary.index("AF")].sum())


@pytest.mark.shared_data
def test_cpsc2021_af_windows_equal_rdann_counts(shared_data: Path) -> None:
    mapper = make_mapper(make_tables())
    root = shared_data / "cpsc2021"
    totals = [0, 0]
    for header in sorted(root.glob("*.hea")):
        key = header.stem
        windows = cpsc_windows(root, key)
        fs = wfdb.rdheader(str(root / key)).fs
        expected_af, n_windows = rdann_af_windows(root / key, round(10 * fs))
        assert len(windows) == n_windows, key
        assert af_count(mapper, windows) == expected_af, key
        totals[0] += expected_af
        totals[1] += n_windows
    assert 0 < totals[0] < totals[1]  # both AF and non-AF windows are present


@pytest.mark.shared_data
def test_paroxysmal_af_record_class_does_not_leak_into_windows(shared_data: Path, tmp_path: Path) -> None:
    # The leak: a paroxysmal-AF header made every window AF. Give a record without AF
    # episodes the paroxysmal class: no window may become AF, the whole record still is.
    src = shared_data / "cpsc2021"
    for f in src.glob("data_21_7.*"):
        shutil.copy(f, tmp_path / f.name)
    header = tmp_path / "data_21_7.hea"
    header.chmod(0o644)
    header.write_text(header.read_text().replace("non atrial fibrillation", "paroxysmal atrial fibrillation"))
    mapper = make_mapper(make_tables())
    windows = cpsc_windows(tmp_path, "data_21_7")
    assert {"paroxysmal atrial fibrillation"} <= {lab.code for w in windows for lab in w.raw_labels}
    assert af_count(mapper, windows) == 0 and len(windows) > 10
    whole = mapper.map_labels("cpsc2021", [RawLabel("paroxysmal atrial fibrillation")])
    assert labels_of(mapper, whole.labels) == {"AF"}
