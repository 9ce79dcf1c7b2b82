"""Unified labels of a store, derived from the raw labels kept in the shards.

Mapping tables change more often than signals do, so unified labels live beside the shards,
not in them: ``labels/<digest>.zarr`` holds ``record_id``, ``shard``, ``row`` and the multi-hot
``y`` ``(N, K)`` uint8. The digest covers the tables' bytes, the vocabulary, the mapper settings
and the set of live shard rows; when it is unchanged nothing is recomputed, and when only a
table changed only the small per-record string arrays are read, never a signal.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import zarr

from pipeline.labels.mapping import LabelMapper
from pipeline.labels.schemes import DEFAULT_SCHEME, load_scheme
from pipeline.store.base import Store
from pipeline.store.group import raw_labels_from_json, read_array, read_strings
from pipeline.store.manifest import LabelsPointer, ShardEntry


@dataclass(frozen=True)
class LabelSet:
    """Unified labels: ``y`` ``(N, K)`` uint8 over ``vocabulary``, one row per live record."""

    record_id: tuple[str, ...]
    shard: tuple[str, ...]
    row: npt.NDArray[np.int64]
    y: npt.NDArray[np.uint8]
    vocabulary: tuple[str, ...]
    digest: str

    def subset(self, positions: npt.NDArray[np.int64]) -> LabelSet:
        """The records at ``positions`` (same vocabulary and digest: the labels they came from)."""
        take = np.asarray(positions, dtype=np.int64)
        return LabelSet(
            record_id=tuple(self.record_id[i] for i in take),
            shard=tuple(self.shard[i] for i in take),
            row=self.row[take],
            y=self.y[take],
            vocabulary=self.vocabulary,
            digest=self.digest,
        )


def labels_digest(mapper_digest: str, shards: Mapping[str, ShardEntry]) -> str:
    """Digest of the mapping (tables, vocabulary, settings) and of the live shard rows."""
    live = {n: [e.sha256, len(e.dropped_rows)] for n, e in sorted(shards.items())}
    return hashlib.sha256(json.dumps([mapper_digest, live], sort_keys=True).encode()).hexdigest()


def relabel(
    store: Store,
    tables_dir: Path,
    vocabulary: Sequence[str],
    ptbxl_min_likelihood: float,
    unmapped: str,
    table_for: Mapping[str, str],
    merge: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Re-derive unified labels if tables, settings or shards changed; returns what it did."""
    t0 = time.perf_counter()
    manifest = store.load_manifest()
    scheme = load_scheme(tables_dir, DEFAULT_SCHEME)
    mapper = LabelMapper(scheme.tables, vocabulary, ptbxl_min_likelihood, unmapped, table_for, merge)
    digest = labels_digest(mapper.digest, manifest.shards)
    old = manifest.labels.path if manifest.labels is not None else None
    if manifest.labels is not None and manifest.labels.digest == digest and old and store.has(old):
        return {"relabelled": False, "digest": digest}
    ids, shard_names, rows, y, missing = _map_store(store, manifest.shards, mapper)
    rel = f"labels/{digest[:16]}.zarr"
    tmp = store.new_tree(rel)
    try:
        _write_labels(tmp, ids, shard_names, rows, y, vocabulary, digest)
        store.publish_tree(tmp, rel)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    manifest.labels = LabelsPointer(digest=digest, path=rel, n_records=len(ids), vocabulary=list(vocabulary))
    store.save_manifest(manifest)
    if old and old != rel:
        store.remove(old)
    return {
        "relabelled": True,
        "digest": digest,
        "n_records": len(ids),
        "seconds": round(time.perf_counter() - t0, 3),
        "unmapped_codes": dict(missing.most_common(20)),
    }


def _map_store(
    store: Store, shards: Mapping[str, ShardEntry], mapper: LabelMapper
) -> tuple[list[str], list[str], npt.NDArray[np.int64], npt.NDArray[np.uint8], Counter[str]]:
    ids: list[str] = []
    names: list[str] = []
    rows: list[npt.NDArray[np.int64]] = []
    ys: list[npt.NDArray[np.uint8]] = []
    missing: Counter[str] = Counter()
    for name, entry in sorted(shards.items()):
        group = store.open_shard(name)
        keep = entry.live_rows()
        rid = read_strings(group, "record_id")
        src = read_strings(group, "source")
        raw = read_strings(group, "raw_labels")
        meta = read_strings(group, "meta")
        metas = [json.loads(meta[i]) for i in keep]
        mapped = mapper.map_batch(
            [src[i] for i in keep],
            [raw_labels_from_json(raw[i]) for i in keep],
            [m.get("dataset") for m in metas],
            ["parent" in m for m in metas],  # a window of a longer recording (the WFDB reader's meta)
        )
        for source, codes in mapped.unmapped.items():
            missing.update({f"{source}:{code}": n for code, n in codes.items()})
        y_part = mapped.labels
        ids.extend(rid[i] for i in keep)
        names.extend([name] * len(keep))
        rows.append(keep)
        ys.append(y_part)
    k = len(mapper.vocabulary)
    y = np.concatenate(ys) if ys else np.zeros((0, k), dtype=np.uint8)
    row = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    return ids, names, row, y, missing


def _write_labels(
    path: Path,
    ids: Sequence[str],
    shards: Sequence[str],
    rows: npt.NDArray[np.int64],
    y: npt.NDArray[np.uint8],
    vocabulary: Sequence[str],
    digest: str,
) -> None:
    """Write the label group (record ids, shard, row, multi-hot ``y`` (N, K)) at the local ``path``."""
    n = len(ids)
    g = zarr.open_group(str(path), mode="w", zarr_format=3)
    for name, values in (("record_id", ids), ("shard", shards)):
        a = g.create_array(name, shape=(n,), dtype=str, chunks=(max(n, 1),))
        if n:
            a[...] = np.array(values, dtype=object)
    a = g.create_array("row", shape=(n,), dtype=np.int64, chunks=(max(n, 1),))
    if n:
        a[...] = rows
    a = g.create_array("y", shape=(n, len(vocabulary)), dtype=np.uint8, chunks=(max(n, 1), len(vocabulary)))
    if n:
        a[...] = y
    g.attrs.update({"vocabulary": list(vocabulary), "digest": digest})


def read_labels(store: Store) -> LabelSet | None:
    """The store's current unified labels, or None before the first ingest."""
    manifest = store.load_manifest()
    if manifest.labels is None or not store.has(manifest.labels.path):
        return None
    rel = manifest.labels.path
    g = store.open_group(rel)
    return LabelSet(
        record_id=tuple(read_strings(g, "record_id")),
        shard=tuple(read_strings(g, "shard")),
        row=read_array(g, "row").astype(np.int64),
        y=read_array(g, "y").astype(np.uint8),
        vocabulary=tuple(g.attrs["vocabulary"]),  # type: ignore[arg-type]  # zarr attrs are JSON values
        digest=str(g.attrs["digest"]),
    )
