"""The ingest library without Prefect: plan → run_batch → commit on real files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pipeline.ingest import commit, plan_ingest, run_batch
from pipeline.preprocess import SignalPlan
from pipeline.records import Discovery, InputUnit, Provenance, RawLabel, ReadError, Record, Rejection
from pipeline.shards import ShardStore, StorageSpec, live_rows, read_strings
from pipeline.sources.base import SourceReader
from pipeline.sources.ucr import UcrReader

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
    assert sorted(e["n_records"] for e in manifest.shards.values()) == [116, 128, 128, 128]
    (unit,) = [u for u in manifest.units.values() if u["status"] == "ingested"]
    assert [s[1:] for s in unit["segments"]] == [[0, 128]] * 3 + [[0, 116]] and unit["n_records"] == 500
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
    assert unit["status"] == "ingested" and unit["n_records"] == 3 and len(unit["segments"]) == 2
    reasons = [r["reason"] for r in unit["rejections"]]
    assert reasons == [
        "row 4: 'abc' is not a number",
        "reading stopped after 3 record(s): u.bin: truncated after row 4",
    ]
    live = sum(len(live_rows(e)) for e in manifest.shards.values())
    assert live == 3
