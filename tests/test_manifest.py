"""The typed manifest: stored bytes survive a load and save; a malformed manifest fails naming its file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline.store.local import ShardStore
from pipeline.store.manifest import (
    LabelsPointer,
    Manifest,
    RunEntry,
    ShardEntry,
    StoreError,
    UnitEntry,
    json_bytes,
)


def _manifest() -> Manifest:
    return Manifest(
        profile="p",
        plan_digest="d" * 64,
        next_seq=2,
        shards={
            "part-000000-00": ShardEntry(
                n_records=4, sha256="a" * 64, nbytes=10, dropped_rows=[1, 3], run=None, created="t"
            )
        },
        units={
            "src/u": UnitEntry(
                fingerprint="f",
                status="ingested",
                segments=[("part-000000-00", 0, 4)],
                n_records=4,
                rejections=[{"source": "src", "item": "u", "files": ["u.hea"], "reason": "r"}],
            )
        },
        labels=LabelsPointer(digest="e" * 64, path="labels/eeee.zarr", n_records=2, vocabulary=["AF"]),
        runs=[RunEntry(flow_run_id=None, started="t", limit=None, records_processed=4, units=1)],
    )


def test_a_saved_manifest_loads_back_equal_and_resaves_to_the_same_bytes(tmp_path: Path) -> None:
    store = ShardStore(tmp_path, "p")
    store.save_manifest(_manifest())
    raw = store.manifest_path.read_bytes()
    loaded = store.load_manifest()
    assert loaded == _manifest()
    assert json_bytes(loaded.to_json()) == raw
    assert list(json.loads(raw)) == [
        "format",
        "profile",
        "plan_digest",
        "next_seq",
        "shards",
        "units",
        "labels",
    ]
    assert loaded.shards["part-000000-00"].live_rows().tolist() == [0, 2]


def test_keys_a_manifest_lacks_are_not_added_on_save(tmp_path: Path) -> None:
    """Runs of a test ingest carry only the keys they were given; saving keeps it that way (an older
    store's runs inside the manifest are read, and saved to the run log, runs.json)."""
    doc = _manifest().to_json()
    doc["labels"] = {}
    (tmp_path / "manifest.json").write_bytes(
        json_bytes({**doc, "runs": [{"records_processed": 4, "units": 1}]})
    )
    loaded = ShardStore(tmp_path, "p").load_manifest()
    assert loaded.labels is None and loaded.runs[0].started is None
    assert json_bytes(loaded.to_json()) == json_bytes(doc)
    assert loaded.run_log()["runs"] == [{"records_processed": 4, "units": 1}]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["shards"]["part-000000-00"].pop("sha256"),
            r"shards\.part-000000-00\.sha256: Field required",
        ),
        (lambda d: d["units"]["src/u"].update(n_records="many"), r"units\.src/u\.n_records: Input should be"),
        (
            lambda d: d["shards"]["part-000000-00"].update(colour="red"),
            r"part-000000-00\.colour: Extra inputs",
        ),
        (lambda d: d.update(format=2), r"store format 2, this code reads 1"),
        (lambda d: d.pop("profile"), r"profile: Field required"),
    ],
)
def test_a_malformed_manifest_is_a_store_error_naming_the_file(
    tmp_path: Path, change: Callable[[dict[str, Any]], object], message: str
) -> None:
    doc = _manifest().to_json()
    change(doc)
    (tmp_path / "manifest.json").write_bytes(json_bytes(doc))
    with pytest.raises(StoreError, match=message) as err:
        ShardStore(tmp_path, "p").load_manifest()
    assert str(err.value).startswith(f"{tmp_path / 'manifest.json'}: ")


@pytest.mark.parametrize("raw", [b"[1, 2]", b"{not json", b"\xff\xfe"])
def test_a_manifest_that_is_not_a_json_object_is_a_store_error(tmp_path: Path, raw: bytes) -> None:
    (tmp_path / "manifest.json").write_bytes(raw)
    with pytest.raises(StoreError, match=r"manifest\.json: (unreadable|malformed) manifest"):
        ShardStore(tmp_path, "p").load_manifest()
