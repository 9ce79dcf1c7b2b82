"""Named label schemes: the shipped schemes load, the PTB-XL tasks match the benchmark's aggregation,
bad scheme files fail naming file and line, several schemes live side by side in one store and editing
one re-derives only it, and AAMI beat classes of MIT-BIH windows equal counts from ``wfdb.rdann``."""

from __future__ import annotations

import ast
import csv
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import wfdb

from pipeline.config import Params
from pipeline.config.build import signal_plan, storage_spec
from pipeline.core.records import RawLabel
from pipeline.ingest.batch import run_batch
from pipeline.ingest.commit import commit
from pipeline.ingest.plan import plan_ingest
from pipeline.labels.mapping import LabelMapper
from pipeline.labels.schemes import check_schemes, load_scheme, scheme_names
from pipeline.labels.tables import LabelTableError
from pipeline.sources.registry import build_readers
from pipeline.sources.wfdb_folder import WfdbFolderReader
from pipeline.store.labels import read_labels, relabel
from pipeline.store.local import ShardStore
from tests.script_module import load_script
from tests.wfdb_folder_support import read_all, records_of

REPO = Path(__file__).resolve().parents[1]
LABELS = REPO / "data" / "labels"
PTBXL_TASKS = {
    "all": 71,
    "diagnostic": 44,
    "subdiagnostic": 23,
    "superdiagnostic": 5,
    "form": 19,
    "rhythm": 12,
}
AAMI = {"N": "NLRejBn", "S": "AaJS", "V": "VrE", "F": "F", "Q": "/fQ"}  # EC57 classes, written out again


def test_shipped_schemes_load_with_their_rules_and_sizes() -> None:
    names = scheme_names(LABELS)
    assert names[0] == "coarse"
    schemes = {s.name: s for s in check_schemes(LABELS, names)}
    assert {f"ptbxl_{t}" for t in PTBXL_TASKS} | {"coarse", "cinc2017", "aami"} <= set(schemes)
    for task, k in PTBXL_TASKS.items():
        assert len(schemes[f"ptbxl_{task}"].vocabulary) == k, task
    assert schemes["ptbxl_superdiagnostic"].vocabulary == ("CD", "HYP", "MI", "NORM", "STTC")
    assert (schemes["cinc2017"].rule, schemes["cinc2017"].vocabulary) == ("single", ("N", "A", "O", "NOISY"))
    assert (schemes["aami"].rule, schemes["aami"].vocabulary) == ("beat", ("N", "S", "V", "F", "Q"))
    assert schemes["coarse"].vocabulary == ("NORM", "AF", "MI", "BBB", "OTHER", "NOISY")


def _benchmark_labels(shared: Path, task: str) -> list[set[str]]:
    """PTB-XL benchmark aggregation (helme/ecg_ptbxl_benchmarking compute_label_aggregations), re-written."""
    with (shared / "ptbxl" / "scp_statements.csv").open(newline="", encoding="utf-8") as f:
        statements = {row[""]: row for row in csv.DictReader(f)}
    with (shared / "ptbxl" / "ptbxl_database.csv").open(newline="", encoding="utf-8") as f:
        records = [ast.literal_eval(r["scp_codes"]) for r in csv.DictReader(f)]
    column = {"diagnostic": "diagnostic", "subdiagnostic": "diagnostic", "superdiagnostic": "diagnostic"}
    out = []
    for codes in records:
        labels = set()
        for code in codes:  # every key, whatever its likelihood
            row = statements.get(code)
            if row is None or (task != "all" and row[column.get(task, task)] != "1.0"):
                continue
            value = {"subdiagnostic": row["diagnostic_subclass"], "superdiagnostic": row["diagnostic_class"]}
            labels.add(value.get(task, code))
        out.append(labels)
    return out


@pytest.mark.shared_data
@pytest.mark.parametrize("task", sorted(PTBXL_TASKS))
def test_ptbxl_task_labels_equal_the_benchmark_aggregation(shared_data: Path, task: str) -> None:
    scheme = load_scheme(LABELS, f"ptbxl_{task}")
    mapper = LabelMapper(scheme.tables, scheme.vocabulary, rule=scheme.rule)
    with (shared_data / "ptbxl" / "ptbxl_database.csv").open(newline="", encoding="utf-8") as f:
        raws = [
            [RawLabel(k, float(v)) for k, v in ast.literal_eval(r["scp_codes"]).items()]
            for r in csv.DictReader(f)
        ]
    batch = mapper.map_batch(["ptbxl"] * len(raws), raws)
    assert batch.unmapped == {}
    got = [{scheme.vocabulary[k] for k in np.flatnonzero(row)} for row in batch.labels]
    assert got == _benchmark_labels(shared_data, task)


@pytest.mark.shared_data
def test_ptbxl_scheme_script_regenerates_the_committed_schemes(shared_data: Path, tmp_path: Path) -> None:
    script = REPO / "scripts" / "make_ptbxl_schemes.py"
    src = shared_data / "ptbxl" / "scp_statements.csv"
    subprocess.run([sys.executable, str(script), str(src), str(tmp_path)], check=True, capture_output=True)
    for task in PTBXL_TASKS:
        for name in ("vocabulary.csv", "scheme.csv", "ptbxl.csv"):
            fresh = (tmp_path / "schemes" / f"ptbxl_{task}" / name).read_text(encoding="utf-8").splitlines()
            committed = (LABELS / "schemes" / f"ptbxl_{task}" / name).read_text(encoding="utf-8").splitlines()
            assert fresh[1:] == committed[1:], (task, name)  # line 1 is the command with its paths


def _scheme(tmp_path: Path, rule: str, table: str) -> Path:
    folder = tmp_path / "schemes" / "s"
    folder.mkdir(parents=True)
    (folder / "vocabulary.csv").write_text("label,definition\nN,n\nA,a\n", encoding="utf-8")
    (folder / "scheme.csv").write_text(f"key,value\nrule,{rule}\n", encoding="utf-8")
    (folder / "x.csv").write_text("source,scope,source_code,label,note\n" + table, encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("rule", "table", "where", "message"),
    [
        (
            "single",
            "x,record,c,N,\nx,interval,c,A,\n",
            "x.csv:3",
            "single-label scheme needs one label per code",
        ),
        ("multilabel", "x,record,c,Z,\n", "x.csv:2", "label 'Z' is not in the vocabulary"),
        ("sometimes", "x,record,c,N,\n", "scheme.csv", "rule 'sometimes'; expected one of"),
        ("multilabel", "x,episode,c,N,\n", "x.csv:2", "scope 'episode'"),
    ],
)
def test_bad_scheme_fails_naming_file_line_and_expectation(
    tmp_path: Path, rule: str, table: str, where: str, message: str
) -> None:
    _scheme(tmp_path, rule, table)
    with pytest.raises(LabelTableError, match=re.escape(where) + ".*" + re.escape(message)):
        load_scheme(tmp_path, "s")
    with pytest.raises(LabelTableError, match="no label scheme 'nope'"):
        load_scheme(LABELS, "nope")


def test_single_rule_keeps_the_first_label_in_vocabulary_order() -> None:
    scheme = load_scheme(LABELS, "cinc2017")
    mapper = LabelMapper(scheme.tables, scheme.vocabulary, rule=scheme.rule)
    got = mapper.map_labels("cinc2017", [RawLabel("O"), RawLabel("A")])
    assert got.labels.tolist() == [0, 1, 0, 0]


# --------------------------------------------------------------------------- MIT-BIH AAMI classes


@pytest.mark.shared_data
def test_mitbih_window_aami_classes_equal_rdann_counts(shared_data: Path) -> None:
    scheme = load_scheme(LABELS, "aami")
    mapper = LabelMapper(
        scheme.tables, scheme.vocabulary, rule=scheme.rule, table_for={"mitbih": "wfdb"}, partial=True
    )
    root = shared_data / "mitbih"
    reader = WfdbFolderReader("mitbih", root, window_s=10.0, hop_s=10.0)
    for unit in reader.discover().units:
        windows = records_of(read_all(reader, unit))
        batch = mapper.map_batch(
            ["mitbih"] * len(windows), [w.raw_labels for w in windows], windowed=[True] * len(windows)
        )
        got = dict(zip(scheme.vocabulary, batch.labels.sum(axis=0).tolist(), strict=True))
        ann = wfdb.rdann(str(root / unit.key), "atr")
        win = round(10 * wfdb.rdheader(str(root / unit.key)).fs)
        n_windows = (wfdb.rdheader(str(root / unit.key)).sig_len - win) // win + 1
        expected: Counter[str] = Counter()
        for k in range(n_windows):
            inside = {
                sym for s, sym in zip(ann.sample, ann.symbol, strict=True) if k * win <= s < (k + 1) * win
            }
            expected.update(c for c, symbols in AAMI.items() if inside & set(symbols))
        assert len(windows) == n_windows, unit.key
        assert got == {c: expected[c] for c in AAMI}, unit.key
        assert batch.unmapped == {}, unit.key


# --------------------------------------------------------------------------- side by side in a store


def _ingest(
    params: Params, profile: str, tables: Path, schemes: tuple[str, ...]
) -> tuple[ShardStore, dict[str, Any]]:
    prof = params.profiles[profile]
    store = ShardStore(params.ingest.store / profile, profile)
    readers = build_readers(params, prof.sources)
    plan_s, storage = signal_plan(prof), storage_spec(prof)
    with store.lock():
        manifest = store.load_manifest()
        plan = plan_ingest(profile, plan_s, storage, readers, manifest, params.ingest.batch_units)
        results = [run_batch(b, readers, plan_s, storage, store, {"profile": profile}) for b in plan.batches]
        commit(plan, results, store, manifest, {"flow_run_id": None, "started": "test", "limit": None})
        report = relabel(
            store,
            tables,
            params.vocabulary(profile),
            params.labels.ptbxl_min_likelihood,
            params.labels.unmapped,
            params.label_tables_for(),
            prof.label_merge,
            schemes,
        )
    return store, report


@pytest.mark.shared_data
def test_schemes_live_side_by_side_and_editing_one_re_derives_only_it(
    shared_data: Path, tmp_path: Path
) -> None:
    kl = load_script("kill_loop")
    spec = kl.TreeSpec(n_cinc2017=0, n_ptbxl=12, mitbih=(), batch_units=8)
    kl.build_raw_tree(shared_data, tmp_path / "raw", spec)
    params = kl.load_tree_params(tmp_path / "raw", tmp_path / "store", spec)
    tables = tmp_path / "labels"
    shutil.copytree(LABELS, tables)
    schemes = ("coarse", "ptbxl_superdiagnostic", "ptbxl_rhythm", "cinc2017")
    store, first = _ingest(params, "ecg12", tables, schemes)
    assert first["schemes"] == dict.fromkeys(schemes, True)
    manifest = json.loads((store.root / "manifest.json").read_text())
    assert set(manifest["labels"]["schemes"]) == set(schemes) - {"coarse"}
    sup = read_labels(store, "ptbxl_superdiagnostic")
    assert (
        sup is not None and sup.vocabulary == ("CD", "HYP", "MI", "NORM", "STTC") and len(sup.record_id) == 12
    )
    expected = _benchmark_labels(shared_data, "superdiagnostic")
    for rid, row in zip(sup.record_id, sup.y, strict=True):
        ecg_id = int(rid.split(":")[1])
        assert {sup.vocabulary[k] for k in np.flatnonzero(row)} == expected[ecg_id - 1], rid
    cinc = read_labels(store, "cinc2017")
    assert cinc is not None and int(cinc.y.sum()) == 0 and "ptbxl" in cinc.unmapped  # no PTB-XL rows there
    coarse_before = manifest["labels"]["path"]
    rhythm_before = manifest["labels"]["schemes"]["ptbxl_rhythm"]["path"]

    table = tables / "schemes" / "ptbxl_superdiagnostic" / "ptbxl.csv"
    table.write_text(table.read_text().replace("ptbxl,record,NORM,NORM,", "ptbxl,record,NORM,,"))
    _, second = _ingest(params, "ecg12", tables, schemes)
    assert second["schemes"] == {**dict.fromkeys(schemes, False), "ptbxl_superdiagnostic": True}
    after = json.loads((store.root / "manifest.json").read_text())["labels"]
    assert after["path"] == coarse_before and after["schemes"]["ptbxl_rhythm"]["path"] == rhythm_before
    sup2 = read_labels(store, "ptbxl_superdiagnostic")
    assert sup2 is not None and int(sup2.y[:, 3].sum()) == 0 < int(sup.y[:, 3].sum())
    assert sorted(p.name for p in (store.root / "labels").iterdir()) == sorted(
        Path(p).name for p in [after["path"], *(s["path"] for s in after["schemes"].values())]
    )  # the old superdiagnostic labels are gone

    _, third = _ingest(params, "ecg12", tables, ("coarse",))
    assert (
        "schemes" not in json.loads((store.root / "manifest.json").read_text())["labels"]
        or not json.loads((store.root / "manifest.json").read_text())["labels"]["schemes"]
    )
    with pytest.raises(KeyError, match="'ptbxl_rhythm' is not derived"):
        read_labels(store, "ptbxl_rhythm")


# --------------------------------------------------------------------------- lineage: the why per scheme


@pytest.mark.shared_data
def test_record_lineage_lists_per_scheme_each_label_with_code_scope_and_table_row(
    shared_data: Path, tmp_path: Path
) -> None:
    from pipeline.lineage.query import StoreLayout
    from pipeline.lineage.record import record_lineage
    from pipeline.lineage.render import render_record

    kl = load_script("kill_loop")
    spec = kl.TreeSpec(n_cinc2017=0, n_ptbxl=3, mitbih=("100",), batch_units=8)
    kl.build_raw_tree(shared_data, tmp_path / "raw", spec)
    params = kl.load_tree_params(tmp_path / "raw", tmp_path / "store", spec)
    schemes = ("coarse", "aami", "ptbxl_superdiagnostic")
    for profile in ("ecg12", "holter"):
        _ingest(params, profile, LABELS, schemes)
    layout = StoreLayout(
        params.ingest.store, params.split.out_dir, labels_root=LABELS, table_for=params.label_tables_for()
    )
    window = "mitbih:100/w036000"  # 100 s into record 100: N beats and one A beat
    doc = record_lineage(REPO, window, layout, ["holter"])
    why = doc["occurrences"][0]["schemes"]
    ann = wfdb.rdann(str(shared_data / "mitbih" / "100"), "atr", sampfrom=36000, sampto=39600)
    beats = Counter(s for s in ann.symbol if s in "NA")
    aami = why["aami"]
    assert aami["positive"] == [
        c for c in ("N", "S") if (c == "N" and beats["N"]) or (c == "S" and beats["A"])
    ]
    rows = {(w["code"], w["scope"]): w for w in aami["why"]}
    assert rows[("N", "beat")]["row"].startswith("data/labels/schemes/aami/wfdb.csv:")
    line = int(rows[("N", "beat")]["row"].rsplit(":", 1)[1])
    assert (
        (LABELS / "schemes" / "aami" / "wfdb.csv")
        .read_text()
        .splitlines()[line - 1]
        .startswith("wfdb,beat,N,N,")
    )
    assert rows[("(N", "interval")]["reaches"] is False  # a beat scheme ignores rhythms
    coarse = {(w["code"], w["scope"]): w for w in why["coarse"]["why"]}
    assert coarse[("(N", "interval")]["label"] == "NORM" and coarse[("(N", "interval")]["reaches"]
    text = render_record(doc)
    assert (
        "scheme aami (beat): N" in text
        and f"N [beat] x{beats['N']} -> N  data/labels/schemes/aami/wfdb.csv" in text
    )

    ptbxl = record_lineage(REPO, "ptbxl:00001", layout, ["ecg12"])["occurrences"][0]["schemes"]
    sup = ptbxl["ptbxl_superdiagnostic"]
    assert sup["positive"] == ["NORM"]
    norm = next(w for w in sup["why"] if w["code"] == "NORM")
    assert norm["scope"] == "record" and norm["label"] == "NORM" and norm["reaches"]
    assert norm["row"].startswith("data/labels/schemes/ptbxl_superdiagnostic/ptbxl.csv:")


@pytest.mark.shared_data
def test_summary_counts_unmapped_codes_per_source_per_scheme(shared_data: Path, tmp_path: Path) -> None:
    from pipeline.ingest.report import profile_summary

    kl = load_script("kill_loop")
    spec = kl.TreeSpec(n_cinc2017=0, n_ptbxl=5, mitbih=(), batch_units=8)
    kl.build_raw_tree(shared_data, tmp_path / "raw", spec)
    params = kl.load_tree_params(tmp_path / "raw", tmp_path / "store", spec)
    store, _ = _ingest(params, "ecg12", LABELS, ("coarse", "cinc2017", "ptbxl_form"))
    schemes = profile_summary(store)["schemes"]
    assert set(schemes) == {"coarse", "cinc2017", "ptbxl_form"}
    quality = ("static_noise", "burst_noise", "electrodes_problems")  # sources.ptbxl.noise_columns default
    with (shared_data / "ptbxl" / "ptbxl_database.csv").open(newline="", encoding="utf-8") as f:
        rows = [r for r, _ in zip(csv.DictReader(f), range(5), strict=False)]
    # the SCP statements and the signal-quality raw labels of each record
    codes = [[*ast.literal_eval(r["scp_codes"]), *(q for q in quality if r[q].strip())] for r in rows]
    # cinc2017 has no PTB-XL table: every code of every record is unmapped there
    assert schemes["cinc2017"]["unmapped"]["ptbxl"] == dict(
        sorted(Counter(c for cs in codes for c in cs).items())
    )
    assert schemes["cinc2017"]["unmapped_per_source"] == {"ptbxl": sum(len(cs) for cs in codes)}
    assert schemes["coarse"]["unmapped_per_source"] == {} and schemes["ptbxl_form"]["unmapped"] == {}


# --------------------------------------------------------------------------- Challenge 2021 and CODE


@pytest.mark.shared_data
def test_cinc2021_scored_has_26_classes_and_maps_the_shared_headers(shared_data: Path) -> None:
    from tests.labels_support import SCORED_2021

    scheme = load_scheme(LABELS, "cinc2021_scored")
    assert len(scheme.vocabulary) == 26
    pairs = {"713427006|59118001", "284470004|63593006", "427172004|17338001", "733534002|164909002"}
    assert pairs <= set(scheme.vocabulary)
    assert sorted(c for label in scheme.vocabulary for c in label.split("|")) == sorted(SCORED_2021)
    codes = scheme.tables.codes("cinc2021")
    assert (
        all(codes[c] for c in SCORED_2021) and codes["59118001"] == codes["713427006"] == "713427006|59118001"
    )
    mapper = LabelMapper(scheme.tables, scheme.vocabulary, rule=scheme.rule)
    raws = []
    for header in sorted((shared_data / "cinc2021").glob("*.hea")):
        for line in header.read_text().splitlines():
            found = re.match(r"#\s*Dx:\s*(.*)", line)
            if found:
                raws.append([RawLabel(c.strip()) for c in found.group(1).split(",")])
    batch = mapper.map_batch(["cinc2021"] * len(raws), raws)
    assert batch.unmapped == {}
    scored = {c for raw in raws for c in (r.code for r in raw) if c in SCORED_2021}
    positives = {scheme.vocabulary[k] for k in np.flatnonzero(batch.labels.any(axis=0))}
    assert positives == {label for label in scheme.vocabulary if set(label.split("|")) & scored}


def test_code6_maps_code_flags_and_same_meaning_snomed_and_scp_codes() -> None:
    scheme = load_scheme(LABELS, "code6")
    assert scheme.vocabulary == ("1dAVb", "RBBB", "LBBB", "SB", "AF", "ST")
    mapper = LabelMapper(scheme.tables, scheme.vocabulary, rule=scheme.rule)
    cases = [
        ("code", ["RBBB", "AF"], {"RBBB", "AF"}),
        ("code", ["normal_ecg"], set()),
        ("cinc2021", ["59118001", "270492004"], {"RBBB", "1dAVb"}),
        ("ptbxl", ["CLBBB", "STACH"], {"LBBB", "ST"}),
    ]
    for source, codes, expected in cases:
        got = mapper.map_labels(source, [RawLabel(c) for c in codes])
        assert {scheme.vocabulary[k] for k in np.flatnonzero(got.labels)} == expected, (source, codes)
    assert mapper.map_labels("ptbxl", [RawLabel("IRBBB")]).unmapped == (
        "IRBBB",
    )  # incomplete: not CODE's RBBB


def test_ptbxl_superdiagnostic_takes_cinc2021_and_code_findings_only_where_ptbxl_has_the_same_statement() -> (
    None
):
    """Cross-source rows into the PTB-XL superclasses: a SNOMED concept or CODE flag maps where it is
    the same finding as a diagnostic SCP statement (its class is the label); rhythm findings, which
    PTB-XL gives no superclass, stay unmapped and are counted."""
    scheme = load_scheme(LABELS, "ptbxl_superdiagnostic")
    mapper = LabelMapper(scheme.tables, scheme.vocabulary, rule=scheme.rule)
    cases = [
        ("cinc2021", ["270492004", "713426002"], {"CD"}),  # 1st degree AV block, incomplete RBBB
        ("cinc2021", ["164873001", "164867002"], {"HYP", "MI"}),  # LVH, old infarction
        ("code", ["LBBB", "normal_ecg"], {"CD", "NORM"}),
        ("ptbxl", ["1AVB", "LVH"], {"CD", "HYP"}),  # the statements those rows stand for
    ]
    for source, codes, expected in cases:
        got = mapper.map_labels(source, [RawLabel(c) for c in codes])
        assert {scheme.vocabulary[k] for k in np.flatnonzero(got.labels)} == expected, (source, codes)
    rhythm = mapper.map_labels("cinc2021", [RawLabel("426783006"), RawLabel("164889003")])  # SR, AF
    assert not rhythm.labels.any() and set(rhythm.unmapped) == {"426783006", "164889003"}
    assert mapper.map_labels("code", [RawLabel("AF")]).unmapped == ("AF",)


def test_cinc2021_and_code6_script_regenerates_the_committed_schemes(tmp_path: Path) -> None:
    shutil.copytree(LABELS / "schemes" / "coarse", tmp_path / "schemes" / "coarse")
    script = REPO / "scripts" / "make_cinc2021_scheme.py"
    subprocess.run([sys.executable, str(script), str(tmp_path)], check=True, capture_output=True)
    for scheme in ("cinc2021_scored", "code6"):
        for fresh in sorted((tmp_path / "schemes" / scheme).glob("*.csv")):
            assert fresh.read_bytes() == (LABELS / "schemes" / scheme / fresh.name).read_bytes(), fresh
