"""The ingest flow end to end on real records: incremental runs, relabelling, quarantine, read-back.

These run the real Prefect engine (a temporary local server on 127.0.0.1, stopped at the end of
the session) and write real zarr stores under tmp_path.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flows.cli import main
from pipeline.config import load_params
from pipeline.config.build import signal_plan
from pipeline.core.fs import sha256_file
from pipeline.core.records import Provenance, Record
from pipeline.ingest.plan import fingerprint
from pipeline.ingest.report import profile_summary
from pipeline.signal.preprocess import process
from pipeline.sources.registry import build_readers
from pipeline.store.labels import read_labels
from pipeline.store.local import ShardStore, read_signal, read_strings

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.shared_data, pytest.mark.prefect]


@pytest.fixture(scope="module", autouse=True)
def prefect_server() -> Iterator[None]:
    """One real temporary Prefect server (SQLite, 127.0.0.1) for the module's flow runs."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


def _cinc_subset(shared: Path, dest: Path, n: int) -> Path:
    src = shared / "cinc2017" / "training2017"
    dest.mkdir(parents=True)
    names = [f"A{i:05d}" for i in range(1, n + 1)]
    for name in names:
        for ext in (".hea", ".mat"):
            shutil.copy(src / f"{name}{ext}", dest / f"{name}{ext}")
    ref = (src / "REFERENCE.csv").read_bytes().split(b"\r\n")
    (dest / "REFERENCE.csv").write_bytes(b"\r\n".join(ref[:n]) + b"\r\n")
    return dest


def _args(tmp: Path, root: Path, *extra: str) -> list[str]:
    return [
        "--params",
        str(REPO / "params.yaml"),
        "--set",
        f"ingest.store={tmp / 'store'}",
        "--set",
        f"sources.cinc2017.root={root}",
        "--set",
        "ingest.batch_units=8",
        *extra,
    ]


def _report(tmp: Path) -> dict[str, Any]:
    return json.loads((tmp / "store" / "lead1_af" / "ingest_report.json").read_text())  # type: ignore[no-any-return]  # json.loads returns Any


def _summary(tmp: Path) -> dict[str, Any]:
    return profile_summary(ShardStore(tmp / "store" / "lead1_af", "lead1_af"))


def test_incremental_ingest_adds_only_new_records_and_relabels_without_reading_signals(
    tmp_path: Path, shared_data: Path
) -> None:
    root = _cinc_subset(shared_data, tmp_path / "cinc", 24)
    ingest = ["ingest", "--profile", "lead1_af", *_args(tmp_path, root)]
    assert main(ingest) == 0
    first = _report(tmp_path)
    assert first["records_processed_this_run"] + first["sources"]["cinc2017"]["units_quarantined"] == 24
    assert first["reconciled"]

    store = tmp_path / "store" / "lead1_af"
    kept = {n: (store / n).read_bytes() for n in ("manifest.json", "ingest_report.json", "quarantine.json")}
    assert main([*ingest, "--metrics", str(tmp_path / "m.json")]) == 0
    again = json.loads((tmp_path / "m.json").read_text())["lead1_af"]
    assert again["records_processed_this_run"] == 0
    # a run with nothing new leaves the store byte-identical, so DVC sees no change downstream
    assert {n: (store / n).read_bytes() for n in kept} == kept

    src = shared_data / "cinc2017" / "training2017"
    for ext in (".hea", ".mat"):
        shutil.copy(src / f"A00025{ext}", root / f"A00025{ext}")
    line = next(x for x in (src / "REFERENCE.csv").read_bytes().split(b"\r\n") if x.startswith(b"A00025,"))
    with (root / "REFERENCE.csv").open("ab") as fh:
        fh.write(line + b"\r\n")
    assert main(ingest) == 0
    added = _report(tmp_path)
    assert added["units_processed_this_run"] == 1 and added["records_processed_this_run"] == 1

    before = _summary(tmp_path)
    tables = tmp_path / "labels"
    shutil.copytree(REPO / "data" / "labels", tables)
    cinc = tables / "schemes" / "coarse" / "cinc2017.csv"
    cinc.write_text(cinc.read_text().replace("cinc2017,record,O,OTHER", "cinc2017,record,O,NOISY"))
    relabel = [*ingest, "--set", f"labels.tables_dir={tables}"]
    assert main([*relabel, "--metrics", str(tmp_path / "m.json")]) == 0
    assert json.loads((tmp_path / "m.json").read_text())["lead1_af"]["records_processed_this_run"] == 0
    after = _summary(tmp_path)
    moved = before["unified_label_counts"]["OTHER"]
    assert moved > 0 and after["unified_label_counts"]["OTHER"] == 0
    assert after["unified_label_counts"]["NOISY"] == before["unified_label_counts"]["NOISY"] + moved


def test_truncated_and_corrupt_inputs_are_quarantined_while_the_rest_land(
    tmp_path: Path, shared_data: Path
) -> None:
    root = _cinc_subset(shared_data, tmp_path / "cinc", 12)
    mat = root / "A00003.mat"
    mat.write_bytes(mat.read_bytes()[:1000])
    (root / "A00005.hea").write_text("A00005 1 three-hundred 9000\nA00005.mat 16+24 1000/mV 16 0 0 0 0 ECG\n")
    (root / "A00007.mat").write_bytes(b"")
    assert main(["ingest", "--profile", "lead1_af", *_args(tmp_path, root)]) == 0
    summary = _summary(tmp_path)
    reasons = {q["item"].split("/")[-1].split(":")[-1]: q["reason"] for q in summary["quarantined"]}
    assert {"A00003", "A00005", "A00007"} <= set(reasons), reasons
    assert all(reasons[k] for k in ("A00003", "A00005", "A00007"))
    rep = _report(tmp_path)["sources"]["cinc2017"]
    assert rep["units_ingested"] + rep["units_quarantined"] == 12 and rep["unaccounted_files"] == 0
    assert summary["records"] >= 9 - (rep["units_quarantined"] - 3)


def test_shard_records_equal_preprocessing_output_within_one_quantisation_step(
    tmp_path: Path, shared_data: Path
) -> None:
    root = _cinc_subset(shared_data, tmp_path / "cinc", 10)
    args = _args(tmp_path, root)
    assert main(["ingest", "--profile", "lead1_af", *args]) == 0
    params = load_params(REPO / "params.yaml", [a for a in args[2:] if a != "--set"])
    reader = build_readers(params, ["cinc2017"])["cinc2017"]
    plan = signal_plan(params.profiles["lead1_af"])
    records: list[Record] = []
    for unit in reader.discover().units:
        hashes = tuple((f, sha256_file(root / f)) for f in unit.files)
        records.extend(
            r for r in reader.read(unit, Provenance(hashes, reader.reader_id)) if isinstance(r, Record)
        )
    expected, _ = process(records, plan)
    by_id = {r.record_id: i for i, r in enumerate(expected.records)}
    store = ShardStore(tmp_path / "store" / "lead1_af", "lead1_af")
    manifest = store.load_manifest()
    seen = 0
    for name, entry in manifest.shards.items():
        group = store.open_shard(name)
        ids = read_strings(group, "record_id")
        x = read_signal(group)
        for i in entry.live_rows():
            diff = np.abs(x[i] - expected.signal[by_id[ids[i]]]).max()
            assert diff <= 0.0005 + 1e-6, (ids[i], diff)
            seen += 1
    assert seen == len(expected.records) == 10
    labels = read_labels(store)
    assert labels is not None and labels.y.shape == (10, 6)
    assert fingerprint("a", [("f", "h")], {}, "d") != fingerprint("a", [("f", "h2")], {}, "d")


def _store_content(store_root: Path) -> dict[str, tuple[bytes, str]]:
    """record id → (signal bytes, raw labels) over the live rows of a store."""
    store = ShardStore(store_root, "lead1_af")
    out: dict[str, tuple[bytes, str]] = {}
    for name, entry in store.load_manifest().shards.items():
        group = store.open_shard(name)
        ids, labels, x = (
            read_strings(group, "record_id"),
            read_strings(group, "raw_labels"),
            read_signal(group),
        )
        for i in entry.live_rows():
            out[ids[i]] = (x[i].tobytes(), labels[i])
    return out


@pytest.mark.slow
def test_process_pool_and_dask_runners_build_the_same_store_as_threads(
    tmp_path: Path, shared_data: Path
) -> None:
    root = _cinc_subset(shared_data, tmp_path / "cinc", 16)
    contents = {}
    for runner in ("threads", "processes", "dask"):
        store = tmp_path / runner
        args = _args(
            tmp_path, root, "--set", f"ingest.task_runner={runner}", "--set", f"ingest.store={store}"
        )
        assert main(["ingest", "--profile", "lead1_af", *args]) == 0
        contents[runner] = _store_content(store / "lead1_af")
    assert len(contents["threads"]) == 16
    assert contents["processes"] == contents["threads"] == contents["dask"]


def test_limit_runs_into_the_smoke_store_and_a_summary_artifact_is_published(
    tmp_path: Path, shared_data: Path
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    root = _cinc_subset(shared_data, tmp_path / "cinc", 12)
    smoke = tmp_path / "smoke"
    args = _args(tmp_path, root, "--set", f"ingest.smoke_store={smoke}")
    assert main(["ingest", "--profile", "lead1_af", "--limit", "5", *args]) == 0
    assert not (tmp_path / "store" / "lead1_af" / "manifest.json").exists()
    rep = json.loads((smoke / "lead1_af" / "ingest_report.json").read_text())
    src = rep["sources"]["cinc2017"]
    assert src["units_ingested"] + src["units_quarantined"] == 5 and src["units_limited_out"] == 7
    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["ingest-summary"]))
        )
    assert arts and "lead1_af" in str(arts[-1].data)
