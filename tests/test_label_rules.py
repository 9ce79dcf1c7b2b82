"""Unified labels: table validation errors, the mapper's rules on small tables, the digest, and bulk
mapping equal to per-record mapping."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.records import RawLabel
from pipeline.labels.digest import tables_digest
from pipeline.labels.mapping import LabelMapper, UnknownSourceError
from pipeline.labels.tables import LabelTableError, LabelTables, load_tables
from tests.labels_support import (
    DEFAULT_VOCABULARY,
    VOCAB_CSV,
    make_mapper,
    make_tables,
    ptbxl_raw_labels,
    wfdb_label,
    write,
)


@pytest.fixture(scope="module")
def tables() -> LabelTables:
    return make_tables()


@pytest.fixture(scope="module")
def mapper(tables: LabelTables) -> LabelMapper:
    return make_mapper(tables)


# --------------------------------------------------------------------------- validation errors


def test_duplicate_code_with_different_labels_names_both_lines(tmp_path: Path) -> None:
    vocab = write(tmp_path, "vocabulary.csv", VOCAB_CSV)
    a = write(tmp_path, "a.csv", "# one\nsource,scope,source_code,label,note\ns,record,X,AF,\ns,record,Y,,\n")
    b = write(
        tmp_path,
        "b.csv",
        "source,scope,source_code,label,note\ns,record,Y,,same label: fine\ns,record,X,OTHER,\n",
    )
    with pytest.raises(LabelTableError, match=rf"{re.escape(str(b))}:3: .*'X'.*{re.escape(str(a))}:3"):
        load_tables([vocab, a, b])


def test_unknown_label_error_names_file_line_label_and_vocabulary(tmp_path: Path) -> None:
    vocab = write(tmp_path, "vocabulary.csv", VOCAB_CSV)
    table = write(
        tmp_path, "t.csv", "#c\n#c\nsource,scope,source_code,label,note\ns,record,X,NORM,\ns,record,Y,MI,\n"
    )
    with pytest.raises(LabelTableError) as err:
        load_tables([vocab, table])
    assert f"{table}:5" in str(err.value)
    assert "'MI'" in str(err.value) and "['NORM', 'AF', 'OTHER']" in str(err.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("source,code,label,note\ns,record,X,AF,\n", "expected source,scope,source_code,label,note"),
        ("source,scope,source_code,label,note\ns,record,X,AF\n", ":2: 4 fields but the header has 5"),
        ("source,scope,source_code,label,note\ns,record,X,AF,\n# late\n", ":3: '#' comment lines"),
        ("source,scope,source_code,label,note\ns,record,,AF,\n", ":2: empty source or source_code"),
    ],
)
def test_malformed_tables_are_rejected_with_their_line(tmp_path: Path, text: str, message: str) -> None:
    vocab = write(tmp_path, "vocabulary.csv", VOCAB_CSV)
    table = write(tmp_path, "t.csv", text)
    with pytest.raises(LabelTableError, match=re.escape(message)):
        load_tables([vocab, table])


def test_exactly_one_vocabulary_file_is_required(tmp_path: Path) -> None:
    table = write(tmp_path, "t.csv", "source,scope,source_code,label,note\ns,record,X,AF,\n")
    with pytest.raises(LabelTableError, match="exactly one vocabulary"):
        load_tables([table])
    v1, v2 = write(tmp_path, "v1.csv", VOCAB_CSV), write(tmp_path, "v2.csv", VOCAB_CSV)
    with pytest.raises(LabelTableError, match="found 2"):
        load_tables([v1, v2, table])


def test_quoted_fields_and_blank_lines_keep_line_numbers(tmp_path: Path) -> None:
    vocab = write(tmp_path, "vocabulary.csv", VOCAB_CSV)
    table = write(
        tmp_path,
        "t.csv",
        'source,scope,source_code,label,note\ns,record,X,AF,"a, b"\n\n'
        's,record,"Y",OTHER,"two\nlines"\ns,record,Z,MI,\n',
    )
    with pytest.raises(LabelTableError, match=re.escape(f"{table}:6: label 'MI'")):
        load_tables([vocab, table])


# --------------------------------------------------------------------------- mapper behaviour


@pytest.fixture
def small_tables(tmp_path: Path) -> LabelTables:
    vocab = write(tmp_path, "vocabulary.csv", "label,definition\nNORM,n\nAF,a\nMI,m\nOTHER,o\n")
    table = write(
        tmp_path,
        "t.csv",
        "source,scope,source_code,label,note\n"
        "ptbxl,record,NORM,NORM,\nptbxl,record,AFIB,AF,\nptbxl,record,IMI,MI,\nptbxl,record,SR,,\n"
        "ucr,record,ECG5000:1,NORM,\nucr,record,ECG200:-1,OTHER,\nwfdb,interval,(N,NORM,\nwfdb,beat,V,OTHER,\n",
    )
    return load_tables([vocab, table])


def test_threshold_keeps_labels_at_or_above_it_and_labels_without_likelihood(
    small_tables: LabelTables,
) -> None:
    raw = [RawLabel("NORM", 80.0), RawLabel("AFIB", 0.0), RawLabel("IMI", None)]
    expected = {0.0: [1, 1, 1, 0], 50.0: [1, 0, 1, 0], 80.0: [1, 0, 1, 0], 100.0: [0, 0, 1, 0]}
    for threshold, labels in expected.items():
        mapper = LabelMapper(small_tables, ("NORM", "AF", "MI", "OTHER"), ptbxl_min_likelihood=threshold)
        assert mapper.map_labels("ptbxl", raw).labels.tolist() == labels, threshold
    with pytest.raises(ValueError, match="ptbxl_min_likelihood"):
        LabelMapper(small_tables, ("NORM",), ptbxl_min_likelihood=101.0)


def test_unmapped_codes_are_reported_and_optionally_set_other(small_tables: LabelTables) -> None:
    raw = [RawLabel("NORM", 100.0), RawLabel("XYZ", 0.0), RawLabel("SR", 0.0), RawLabel("XYZ", 0.0)]
    ignore = LabelMapper(small_tables, ("NORM", "OTHER"))
    got = ignore.map_labels("ptbxl", raw)
    assert got.labels.tolist() == [1, 0] and got.unmapped == ("XYZ",)
    other = LabelMapper(small_tables, ("NORM", "OTHER"), unmapped="OTHER")
    assert other.map_labels("ptbxl", raw).labels.tolist() == [1, 1]
    batch = ignore.map_batch(["ptbxl", "ptbxl", "wfdb"], [raw, raw[1:2], [wfdb_label("Q")]])
    assert batch.unmapped == {"ptbxl": {"XYZ": 2}, "wfdb": {"Q": 1}}
    with pytest.raises(ValueError, match="needs OTHER"):
        LabelMapper(small_tables, ("NORM", "AF"), unmapped="OTHER")


def test_dataset_qualified_codes_for_ucr(small_tables: LabelTables) -> None:
    mapper = LabelMapper(small_tables, ("NORM", "OTHER"))
    batch = mapper.map_batch(
        ["ucr"] * 4,
        [[RawLabel("1")], [RawLabel("-1")], [RawLabel("1")], [RawLabel("1")]],
        ["ECG5000", "ECG200", "ECG200", None],
    )
    assert batch.labels.tolist() == [[1, 0], [0, 1], [0, 0], [0, 0]]
    assert batch.unmapped == {"ucr": {"ECG200:1": 1, "1": 1}}


def test_aliases_route_source_names_to_tables(small_tables: LabelTables) -> None:
    mapper = LabelMapper(small_tables, ("NORM", "OTHER"), table_for={"holter": "wfdb"})
    got = mapper.map_labels("holter", [wfdb_label(" (N\x00"), wfdb_label("V")])
    assert got.labels.tolist() == [1, 1] and got.unmapped == ()
    with pytest.raises(UnknownSourceError, match="'holter2'"):
        mapper.map_labels("holter2", [RawLabel("V")])
    with pytest.raises(UnknownSourceError, match=r"\['a', 'b'\]"):
        mapper.check_sources(["wfdb", "a", "b"])
    with pytest.raises(ValueError, match="no such table source"):
        LabelMapper(small_tables, ("NORM",), table_for={"holter": "nope"})


def test_profile_vocabulary_subset_drops_or_merges_labels(small_tables: LabelTables) -> None:
    raw = [RawLabel("IMI", 100.0)]
    dropped = LabelMapper(small_tables, ("OTHER", "NORM"))
    assert dropped.map_labels("ptbxl", raw).labels.tolist() == [0, 0]
    assert dropped.map_labels("ptbxl", [RawLabel("NORM", 100.0)]).labels.tolist() == [0, 1]
    merged = LabelMapper(small_tables, ("OTHER", "NORM"), merge={"MI": "OTHER", "AF": "OTHER"})
    assert merged.map_labels("ptbxl", raw).labels.tolist() == [1, 0]
    with pytest.raises(ValueError, match="not in the vocabulary"):
        LabelMapper(small_tables, ("NORM",), merge={"MI": "OTHER"})
    with pytest.raises(ValueError, match="cannot merge"):
        LabelMapper(small_tables, ("NORM", "OTHER"), merge={"NORM": "OTHER"})
    with pytest.raises(ValueError, match="not in the tables' vocabulary"):
        LabelMapper(small_tables, ("NORM", "NOISY"))


def test_digest_tracks_table_bytes_vocabulary_and_parameters(tmp_path: Path) -> None:
    vocab = write(tmp_path, "vocabulary.csv", VOCAB_CSV)
    table = write(tmp_path, "t.csv", "source,scope,source_code,label,note\ns,record,X,AF,\n")
    paths = [vocab, table]
    base = tables_digest(paths, ("NORM", "AF"))
    assert LabelMapper(load_tables(paths), ("NORM", "AF")).digest == base
    tuned = LabelMapper(load_tables(paths), ("NORM", "AF"), ptbxl_min_likelihood=50.0, table_for={"a": "s"})
    assert tuned.digest == tables_digest(
        paths, ("NORM", "AF"), ptbxl_min_likelihood=50.0, table_for={"a": "s"}
    )
    assert tables_digest(paths[::-1], ("NORM", "AF")) == base
    others = {
        tables_digest(paths, ("AF", "NORM")),
        tables_digest(paths, ("NORM", "AF"), ptbxl_min_likelihood=50.0),
        tables_digest(paths, ("NORM", "AF"), unmapped="OTHER"),
        tables_digest(paths, ("NORM", "AF"), merge={"OTHER": "AF"}),
    }
    table.write_text("source,scope,source_code,label,note\ns,record,X,OTHER,\n", encoding="utf-8")
    others.add(tables_digest(paths, ("NORM", "AF")))
    assert len(others) == 5 and base not in others


@pytest.mark.shared_data
def test_map_many_of_100k_records_matches_per_record_mapping(shared_data: Path, mapper: LabelMapper) -> None:
    raws = ptbxl_raw_labels(shared_data)
    n = 100_000
    sources = ["ptbxl"] * n
    big = [raws[i % len(raws)] for i in range(n)]
    start = time.perf_counter()
    labels = mapper.map_many(sources, big)
    seconds = time.perf_counter() - start
    print(f"map_many: {n} PTB-XL records in {seconds:.3f} s")
    single = np.stack([mapper.map_labels("ptbxl", raw).labels for raw in raws])
    assert labels.shape == (n, len(DEFAULT_VOCABULARY)) and labels.dtype == np.uint8
    assert np.array_equal(labels, single[np.arange(n) % len(raws)])
