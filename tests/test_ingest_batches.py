"""The ingest library without Prefect: plan → run_batch → commit on real files."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import load_params
from pipeline.config.build import signal_plan, storage_spec
from pipeline.core.fs import sha256_file
from pipeline.core.records import Discovery, InputUnit, Provenance, RawLabel, ReadError, Record, Rejection
from pipeline.ingest.batch import loaded, run_batch, unreadable_reason
from pipeline.ingest.commit import commit
from pipeline.ingest.plan import Batch, UnitTask, plan_ingest
from pipeline.signal.preprocess import SignalPlan
from pipeline.sources.base import ConfinedPaths, SourceReader, confined_path
from pipeline.sources.ptbxl import PtbXlReader
from pipeline.sources.ucr import UcrReader
from pipeline.store.local import ShardStore, StorageSpec, read_signal, read_strings

REPO_ROOT = Path(__file__).resolve().parents[1]
BEATS = SignalPlan(
    leads=("ECG",), lead_aliases=(), fs_hz=None, length=140, crop="start", baseline_hz=None, notch_hz=None,
    notch_q=30.0, bandpass_hz=None, filter_order=2, normalise="none", max_nan_fraction=0.0, flat_ptp_mv=0.0,
    reject_flat=False, min_duration_s=0.0,
)  # fmt: skip
STORAGE = StorageSpec(dtype="int16", scale_mv=0.001, records_per_chunk=16)


def _ingest(store: ShardStore, readers: dict[str, SourceReader], max_records: int) -> dict[str, object]:
    manifest = store.load_manifest()
    plan = plan_ingest("beats", BEATS, STORAGE, readers, manifest, batch_units=8)
    results = [run_batch(b, readers, BEATS, STORAGE, store, {}, max_records) for b in plan.batches]
    return commit(plan, results, store, manifest, {"flow_run_id": None})


@pytest.mark.shared_data
def test_a_unit_with_more_records_than_a_shard_spans_several_shards(
    tmp_path: Path, shared_data: Path
) -> None:
    reader = UcrReader("ucr", shared_data / "ucr_ecg5000")
    store = ShardStore(tmp_path / "beats", "beats")
    report = _ingest(store, {"ucr": reader}, max_records=128)
    manifest = store.load_manifest()
    assert sorted(e.n_records for e in manifest.shards.values()) == [116, 128, 128, 128]
    (unit,) = [u for u in manifest.units.values() if u.status == "ingested"]
    assert [s[1:] for s in unit.segments] == [(0, 128)] * 3 + [(0, 116)] and unit.n_records == 500
    assert report["records_total"] == 500 and report["reconciled"]
    ids = [i for name in sorted(manifest.shards) for i in read_strings(store.open_shard(name), "record_id")]
    assert len(set(ids)) == 500


class _FailsMidway(SourceReader):
    """A reader whose unit yields three records, one bad part, then breaks."""

    kind = "test"
    version = "1"

    def discover(self) -> Discovery:
        (self.root / "u.bin").write_bytes(b"x")
        return Discovery(units=(InputUnit("u", ("u.bin",)),))

    def read(self, unit: InputUnit, provenance: Provenance) -> Iterator[Record | Rejection]:
        for i in range(3):
            x = np.sin(np.arange(140, dtype=np.float32) / (3 + i))[None, :]
            yield Record(
                self.record_id(f"u/{i}"), self.name, x, None, ("ECG",), None, (RawLabel("1"),), provenance
            )
        yield Rejection(self.record_id("u/3"), unit.files, "row 4: 'abc' is not a number")
        raise ReadError("u.bin: truncated after row 4")


def test_a_reader_failing_midway_keeps_what_it_yielded_and_says_where_it_stopped(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    store = ShardStore(tmp_path / "beats", "beats")
    _ingest(store, {"t": _FailsMidway("t", tmp_path / "src")}, max_records=2)
    manifest = store.load_manifest()
    unit = manifest.units["t/u"]
    assert unit.status == "ingested" and unit.n_records == 3 and len(unit.segments) == 2
    reasons = [r["reason"] for r in unit.rejections]
    assert reasons == [
        "row 4: 'abc' is not a number",
        "reading stopped after 3 record(s): u.bin: truncated after row 4",
    ]
    live = sum(len(e.live_rows()) for e in manifest.shards.values())
    assert live == 3


@pytest.mark.shared_data
def test_a_batch_that_never_finished_is_not_reconciled_and_is_redone_next_run(
    tmp_path: Path, shared_data: Path
) -> None:
    from pipeline.sources.cinc2017 import Cinc2017Reader

    src = shared_data / "cinc2017" / "training2017"
    root = tmp_path / "cinc"
    root.mkdir()
    for i in range(1, 10):
        for ext in (".hea", ".mat"):
            (root / f"A{i:05d}{ext}").write_bytes((src / f"A{i:05d}{ext}").read_bytes())
    lines = (src / "REFERENCE.csv").read_bytes().split(b"\r\n")[:9]
    (root / "REFERENCE.csv").write_bytes(b"\r\n".join(lines) + b"\r\n")
    plan_1 = SignalPlan(
        leads=("ECG",), lead_aliases=(), fs_hz=300.0, length=3000, crop="start", baseline_hz=0.5,
        notch_hz=50.0, notch_q=30.0, bandpass_hz=None, filter_order=2, normalise="none",
        max_nan_fraction=0.01, flat_ptp_mv=0.02, reject_flat=True, min_duration_s=5.0,
    )  # fmt: skip
    readers: dict[str, SourceReader] = {"cinc2017": Cinc2017Reader("cinc2017", root)}
    store = ShardStore(tmp_path / "store", "rhythm")
    manifest = store.load_manifest()
    plan = plan_ingest("rhythm", plan_1, STORAGE, readers, manifest, batch_units=4)
    assert len(plan.batches) == 3
    done = [run_batch(b, readers, plan_1, STORAGE, store, {}) for b in plan.batches[:2]]
    report = commit(plan, done, store, manifest, {"flow_run_id": None})
    assert not report["reconciled"] and report["records_total"] == 8
    manifest = store.load_manifest()
    again = plan_ingest("rhythm", plan_1, STORAGE, readers, manifest, batch_units=4)
    assert [t.uid for t in again.todo] == ["cinc2017/A00009"] and len(again.unchanged) == 8
    results = [run_batch(b, readers, plan_1, STORAGE, store, {}) for b in again.batches]
    assert commit(again, results, store, manifest, {"flow_run_id": None})["reconciled"]


def _ecg12() -> tuple[SignalPlan, StorageSpec]:
    prof = load_params(REPO_ROOT / "params.yaml", []).profiles["ecg12"]
    return signal_plan(prof), storage_spec(prof)


class _ReadsTwice(PtbXlReader):
    """The PTB-XL reader as it was before one-pass reading: hash every file, then read it again."""

    decodes_loaded = False


@pytest.mark.shared_data
def test_one_pass_reading_hashes_and_stores_exactly_what_hashing_then_reading_did(
    tmp_path: Path, shared_data: Path
) -> None:
    root = shared_data / "ptbxl"
    once, twice = PtbXlReader("ptbxl", root, rates=(500,)), _ReadsTwice("ptbxl", root, rates=(500,))
    plan, storage = _ecg12()
    units = once.discover().units[:24]
    opened: list[str] = []
    watching = [True]

    under = str(root.resolve())  # readers open files under the resolved root (../shared may be a link)

    def audit(event: str, args: tuple[object, ...]) -> None:
        if event == "open" and watching[0] and isinstance(args[0], str) and args[0].startswith(under):
            opened.append(args[0])

    sys.addaudithook(audit)  # a real hook on every file open; hooks cannot be removed, hence the flag
    stores = {}
    for name, reader in (("once", once), ("twice", twice)):
        tasks = tuple(UnitTask("ptbxl", u, None, None) for u in units)
        store = ShardStore(tmp_path / name, "ecg12")
        opened.clear()
        watching[0] = True
        result = run_batch(Batch(0, tasks), {"ptbxl": reader}, plan, storage, store, {})
        watching[0] = False
        opens_per_file = len(opened) / (2 * len(units))
        stores[name] = (result, store, opens_per_file)
    (r1, s1, opens1), (r2, s2, opens2) = stores["once"], stores["twice"]
    assert opens1 == 1.0 and opens2 == 2.0  # .hea and .dat: each opened once, where it was twice
    assert [(o.uid, o.fingerprint, o.status, dict(o.file_cache)) for o in r1.outcomes] == [
        (o.uid, o.fingerprint, o.status, dict(o.file_cache)) for o in r2.outcomes
    ]
    assert all(o.status == "ingested" for o in r1.outcomes)
    for rel, digest in r1.outcomes[0].file_cache.items():
        assert sha256_file(Path(rel)) == digest[2]
    (shard1,), (shard2,) = r1.shards, r2.shards
    a1, a2 = (s.open_shard(sh.name) for s, sh in ((s1, shard1), (s2, shard2)))
    # int16 steps dequantised: equal float32 values are equal stored steps
    np.testing.assert_array_equal(read_signal(a1), read_signal(a2))


@pytest.mark.shared_data
def test_a_unit_file_above_the_load_limit_is_hashed_in_blocks_and_read_by_its_reader(
    shared_data: Path,
) -> None:
    reader = PtbXlReader("ptbxl", shared_data / "ptbxl", rates=(500,))
    unit = reader.discover().units[0]
    digest = _ecg12()[0].digest()
    task, cache, data = loaded(UnitTask("ptbxl", unit, None, None), reader, digest)
    # the .dat (120 KB) is over a 1 KiB limit, the .hea is not
    task2, cache2, data2 = loaded(UnitTask("ptbxl", unit, None, None), reader, digest, max_bytes=1024)
    assert data is not None and sorted(data) == sorted(unit.files) and data2 is None
    assert (task.file_hashes, task.fingerprint, cache) == (task2.file_hashes, task2.fingerprint, cache2)


def _resolved(resolve: Callable[[str], Path], rel: str) -> str:
    try:
        return str(resolve(rel))
    except ReadError as exc:
        return f"ReadError: {exc}"


def test_confined_paths_resolve_and_refuse_exactly_as_confined_path_including_links(tmp_path: Path) -> None:
    outside, root = tmp_path / "outside", tmp_path / "root"
    (outside / "d").mkdir(parents=True)
    (outside / "d" / "y.dat").write_bytes(b"y")
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.dat").write_bytes(b"x")
    (root / "a" / "out.dat").symlink_to(outside / "d" / "y.dat")  # a file link out of the root
    (root / "a" / "in.dat").symlink_to(root / "a" / "x.dat")
    (root / "b").symlink_to(outside / "d")  # a folder link out of the root
    (root / "c").symlink_to(root / "a")  # a folder link inside it
    rels = [
        "a/x.dat", "a/out.dat", "a/in.dat", "b/y.dat", "c/x.dat", "c/out.dat", "a/../a/x.dat",
        "a/../../outside", "a/missing.dat", "x.dat", "a/", "a/..", "/etc/passwd", "a/x\x00.dat", "./a/x.dat",
        "a//x.dat",
    ]  # fmt: skip
    paths = ConfinedPaths(root)
    for _ in range(2):  # the second round answers from the folder cache
        got = [_resolved(paths, rel) for rel in rels]
        assert got == [_resolved(lambda r: confined_path(root, r), rel) for rel in rels]
    assert got[0] == str(root / "a" / "x.dat") and got[1].startswith("ReadError: path 'a/out.dat' escapes")
    assert got[3].startswith("ReadError: path 'b/y.dat' escapes") and got[4] == got[0]


def test_a_unit_file_linked_out_of_the_root_is_quarantined_as_refused_not_as_vanished(tmp_path: Path) -> None:
    outside, root = tmp_path / "download", tmp_path / "subset"
    outside.mkdir()
    root.mkdir()
    (outside / "A00001.mat").write_bytes(b"x")
    (root / "A00001.mat").symlink_to(outside / "A00001.mat")
    reason = unreadable_reason(root, ["A00001.mat"])
    assert "'A00001.mat' escapes the source root" in reason
    assert "symbolic link" in reason and "disappeared" not in reason
    assert unreadable_reason(root, ["gone.mat"]) == "file(s) disappeared before reading: gone.mat"
