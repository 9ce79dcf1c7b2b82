"""A profile store's content, record by record and independent of shard names, and what differs from
the reference run's (records lost, duplicated, extra)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.store.local import STRING_FIELDS, ShardStore, array, read_strings
from pipeline.store.manifest import ShardEntry

NUMERIC_FIELDS = ("orig_fs", "orig_len", "valid_len", "clipped")


PER_RUN_FIELDS = frozenset(
    {"records_processed_this_run", "units_processed_this_run", "units_unchanged", "root"}
)


def snapshot(store_root: Path, profile: str) -> dict[str, Any]:
    """A profile store's content, record by record, independent of shard names and order."""
    from pipeline.store.labels import read_labels

    store = ShardStore(store_root / profile, profile)
    manifest = store.load_manifest()
    ids: list[str] = []
    records: dict[str, str] = {}
    for name, entry in sorted(manifest.shards.items()):
        for rid, value in _shard_records(store, name, entry):
            ids.append(rid)
            records[rid] = value
    labels = read_labels(store)
    quarantine = json.loads((store.root / "quarantine.json").read_text(encoding="utf-8"))
    report = json.loads((store.root / "ingest_report.json").read_text(encoding="utf-8"))
    return {
        "ids": sorted(ids),
        "records": records,
        "labels": {} if labels is None else _label_rows(labels),
        "vocabulary": [] if labels is None else list(labels.vocabulary),
        "units": {
            uid: [u.fingerprint, u.status, u.n_records, u.rejections] for uid, u in manifest.units.items()
        },
        "quarantine": sorted(json.dumps(e, sort_keys=True) for e in quarantine),
        "report": _report_state(report),
    }


def _shard_records(store: ShardStore, name: str, entry: ShardEntry) -> Iterator[tuple[str, str]]:
    """(record id, sha256 of its stored signal bytes and every per-record field) per live row."""
    group = store.open_shard(name)
    signal_rows = np.asarray(array(group, "signal")[...])
    strings = {f: read_strings(group, f) for f in STRING_FIELDS}
    numbers = {f: np.asarray(array(group, f)[...]) for f in NUMERIC_FIELDS}
    scale = json.dumps([group.attrs.get("storage_dtype"), group.attrs.get("scale_mv")])
    for r in entry.live_rows():
        h = hashlib.sha256(signal_rows[r].tobytes())
        h.update(f"{signal_rows.dtype}{signal_rows[r].shape}{scale}".encode())
        for f in STRING_FIELDS:
            h.update(strings[f][r].encode() + b"\0")
        for f in NUMERIC_FIELDS:
            h.update(numbers[f][r].tobytes())
        yield strings["record_id"][r], h.hexdigest()


def _label_rows(labels: Any) -> dict[str, str]:
    return {rid: bytes(y).hex() for rid, y in zip(labels.record_id, labels.y, strict=True)}


def _report_state(report: Any) -> Any:
    if isinstance(report, dict):
        return {k: _report_state(v) for k, v in report.items() if k not in PER_RUN_FIELDS}
    if isinstance(report, list):
        return [_report_state(v) for v in report]
    return report


@dataclass
class Comparison:
    differences: list[str]
    records: int
    lost: int
    duplicated: int
    extra: int


def compare(got: Mapping[str, Any], ref: Mapping[str, Any]) -> Comparison:
    """What differs between a store snapshot and the reference's, and records lost/duplicated."""
    ids, ref_ids = got["ids"], ref["ids"]
    lost = len(set(ref_ids) - set(ids))
    extra = len(set(ids) - set(ref_ids))
    dup = len(ids) - len(set(ids))
    diffs = []
    if lost or extra or dup:
        diffs.append(f"record ids: {lost} lost, {extra} not in the reference, {dup} duplicated")
    changed = sorted(r for r in set(ids) & set(ref_ids) if got["records"][r] != ref["records"][r])
    if changed:
        diffs.append(f"{len(changed)} record(s) differ in signal bytes or fields, e.g. {changed[:3]}")
    for key in ("labels", "vocabulary", "units", "quarantine", "report"):
        if got[key] != ref[key]:
            diffs.append(f"{key} differ from the reference")
    return Comparison(diffs, len(ids), lost, dup, extra)
