"""What a killed writer leaves behind is removed by the next ingest (under the store lock)."""

from __future__ import annotations

from pathlib import Path

from pipeline.store.local import ShardStore
from pipeline.store.manifest import Manifest, ShardEntry


def test_remove_debris_deletes_temp_json_temp_label_stores_and_unlisted_shards(tmp_path: Path) -> None:
    store = ShardStore(tmp_path / "ecg12", "ecg12")
    (store.root / "labels" / ".tmp-1a2b3c4d").mkdir(parents=True)
    (store.root / "labels" / "0123abcd.zarr").mkdir()
    (store.shard_dir / ".tmp-part-000001-9f").mkdir(parents=True)
    (store.shard_dir / "part-000000-00").mkdir()
    (store.shard_dir / "part-000002-00").mkdir()
    (store.root / ".manifest.json.5e6f7a8b.tmp").write_text("{")
    (store.root / "manifest.json").write_text("{}")
    manifest = Manifest(
        profile="ecg12", shards={"part-000000-00": ShardEntry(n_records=1, sha256="", nbytes=0)}
    )

    removed = store.remove_debris(manifest)

    assert sorted(removed) == [
        ".manifest.json.5e6f7a8b.tmp",
        ".tmp-part-000001-9f",
        "labels/.tmp-1a2b3c4d",
        "part-000002-00",
    ]
    left = sorted(p.relative_to(store.root).as_posix() for p in store.root.rglob("*"))
    assert left == ["labels", "labels/0123abcd.zarr", "manifest.json", "shards", "shards/part-000000-00"]
