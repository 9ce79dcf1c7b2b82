"""scripts/compare_stores.py: the same data compares equal despite run bookkeeping; a data change does not."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.script_module import load_script

compare_stores = load_script("compare_stores")


def _manifest(run: str, created: str) -> dict[str, Any]:
    return {
        "format": 1,
        "shards": {"part-000000-00": {"n_records": 2, "sha256": "ab" * 32, "run": run, "created": created}},
        "units": {"u1": {"fingerprint": "f" * 16}},
        "runs": [{"flow_run_id": run, "started": created}],
    }


def _store(root: Path, run: str, created: str, source_root: str) -> Path:
    (root / "p" / "shards" / "part-000000-00").mkdir(parents=True)
    (root / "p" / "shards" / "part-000000-00" / "c0").write_bytes(b"\x00\x01zstd-bytes")
    (root / "p" / "manifest.json").write_text(json.dumps(_manifest(run, created)))
    (root / "p" / "ingest_report.json").write_text(json.dumps({"sources": {"ptbxl": {"root": source_root}}}))
    (root / "p" / "file_cache.json").write_text(json.dumps({source_root + "/a.dat": [1, 2, "cafe"]}))
    (root / "p" / ".lock").write_text("pid 12")
    return root


def test_stores_that_differ_only_in_run_ids_times_roots_and_caches_compare_equal(tmp_path: Path) -> None:
    a = _store(tmp_path / "a", "run-1", "2026-01-01T00:00:00", "/x/raw")
    b = _store(tmp_path / "b", "run-2", "2026-02-02T00:00:00", "/y/raw")
    assert compare_stores.compare(a, b) == []
    assert compare_stores.main([str(a), str(b)]) == 0


@pytest.mark.parametrize("change", ["shard_bytes", "shard_count", "unit", "missing_file"])
def test_any_change_to_stored_data_is_reported_with_the_file_and_exit_1(tmp_path: Path, change: str) -> None:
    a = _store(tmp_path / "a", "run-1", "t1", "/x/raw")
    b = _store(tmp_path / "b", "run-1", "t1", "/x/raw")
    manifest = b / "p" / "manifest.json"
    doc = json.loads(manifest.read_text())
    if change == "shard_bytes":
        (b / "p" / "shards" / "part-000000-00" / "c0").write_bytes(b"\x00\x02zstd-bytes")
        expected = "differs: p/shards/part-000000-00/c0"
    elif change == "shard_count":
        doc["shards"]["part-000000-00"]["n_records"] = 3
        expected = "differs: p/manifest.json"
    elif change == "unit":
        doc["units"]["u1"]["fingerprint"] = "0" * 16
        expected = "differs: p/manifest.json"
    else:
        shutil.rmtree(b / "p" / "shards")
        expected = f"only in {a}: p/shards/part-000000-00/c0"
    manifest.write_text(json.dumps(doc))
    assert compare_stores.compare(a, b) == [expected]
    assert compare_stores.main([str(a), str(b)]) == 1
