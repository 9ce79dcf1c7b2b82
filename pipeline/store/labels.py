"""Unified labels of a store, derived from the raw labels kept in the shards, one set per label scheme.

Mapping tables change more often than signals do, so unified labels live beside the shards,
not in them. The default scheme (``coarse``, in the profile's vocabulary) is at
``labels/<digest>.zarr``; every other derived scheme at ``labels/<scheme>-<digest>.zarr``, each
with ``record_id``, ``shard``, ``row`` and the multi-hot ``y`` ``(N, K)`` uint8. A scheme's digest
covers its tables' bytes, vocabulary, rule and mapper settings and the set of live shard rows;
when it is unchanged that scheme is not recomputed, so editing one scheme re-derives only it,
and deriving reads only the small per-record string arrays, never a signal.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import zarr

from pipeline.labels.mapping import LabelMapper
from pipeline.labels.schemes import DEFAULT_SCHEME, load_scheme
from pipeline.store.base import Store
from pipeline.store.group import raw_labels_from_json, read_array, read_strings
from pipeline.store.manifest import LabelsPointer, Manifest, SchemeLabels, ShardEntry


@dataclass(frozen=True)
class LabelSet:
    """Unified labels: ``y`` ``(N, K)`` uint8 over ``vocabulary``, one row per live record.

    ``scheme`` names the label scheme, ``tables_digest`` its mapper digest (tables, vocabulary,
    rule, settings); ``unmapped`` is ``{source: {code: n_records}}`` of codes with no table row.
    """

    record_id: tuple[str, ...]
    shard: tuple[str, ...]
    row: npt.NDArray[np.int64]
    y: npt.NDArray[np.uint8]
    vocabulary: tuple[str, ...]
    digest: str
    scheme: str = DEFAULT_SCHEME
    tables_digest: str = ""
    unmapped: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

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
            scheme=self.scheme,
            tables_digest=self.tables_digest,
        )


@dataclass
class _Mapped:
    """One scheme's labels while they are derived."""

    mapper: LabelMapper
    ids: list[str] = field(default_factory=list)
    shards: list[str] = field(default_factory=list)
    rows: list[npt.NDArray[np.int64]] = field(default_factory=list)
    ys: list[npt.NDArray[np.uint8]] = field(default_factory=list)
    unmapped: dict[str, Counter[str]] = field(default_factory=dict)


def labels_digest(mapper_digest: str, shards: Mapping[str, ShardEntry]) -> str:
    """Digest of the mapping (tables, vocabulary, settings) and of the live shard rows."""
    live = {n: [e.sha256, len(e.dropped_rows)] for n, e in sorted(shards.items())}
    return hashlib.sha256(json.dumps([mapper_digest, live], sort_keys=True).encode()).hexdigest()


def scheme_mappers(
    tables_dir: Path,
    schemes: Sequence[str],
    ptbxl_min_likelihood: float,
    table_for: Mapping[str, str],
) -> dict[str, LabelMapper]:
    """Mappers of the named non-default schemes, each in its own vocabulary, rule and ``unmapped``.

    Every scheme is loaded and validated before any is used, so a bad table stops the run before
    any work (the error names file and line).
    """
    loaded = [load_scheme(tables_dir, name) for name in schemes if name != DEFAULT_SCHEME]
    return {
        s.name: LabelMapper(
            s.tables,
            s.vocabulary,
            ptbxl_min_likelihood,
            s.unmapped,
            table_for,
            rule=s.rule,
            partial=True,  # a scheme may cover some sources only; the rest count as unmapped
        )
        for s in loaded
    }


def relabel(
    store: Store,
    tables_dir: Path,
    vocabulary: Sequence[str],
    ptbxl_min_likelihood: float,
    unmapped: str,
    table_for: Mapping[str, str],
    merge: Mapping[str, str] | None = None,
    schemes: Sequence[str] = (),
) -> dict[str, Any]:
    """Re-derive each scheme's labels whose tables, settings or shards changed; returns what it did.

    The default scheme uses the profile's ``vocabulary``/``merge`` and the ``unmapped`` policy;
    ``schemes`` names the other schemes to keep beside it (their labels are dropped from the
    store when they leave the list).
    """
    t0 = time.perf_counter()
    manifest = store.load_manifest()
    default = LabelMapper(
        load_scheme(tables_dir, DEFAULT_SCHEME).tables,
        vocabulary,
        ptbxl_min_likelihood,
        unmapped,
        table_for,
        merge,
    )
    mappers = {
        DEFAULT_SCHEME: default,
        **scheme_mappers(tables_dir, schemes, ptbxl_min_likelihood, table_for),
    }
    digests = {name: labels_digest(m.digest, manifest.shards) for name, m in mappers.items()}
    todo = {name: m for name, m in mappers.items() if not _current(store, manifest, name, digests[name])}
    old = manifest.labels.paths() if manifest.labels is not None else set()
    if not todo and (
        manifest.labels is None or set(manifest.labels.schemes) == set(mappers) - {DEFAULT_SCHEME}
    ):
        return {
            "relabelled": False,
            "digest": digests[DEFAULT_SCHEME],
            "schemes": dict.fromkeys(mappers, False),
        }
    mapped = _map_store(store, manifest.shards, todo)
    for name, part in mapped.items():
        _publish(store, manifest, name, part, digests[name])
    if manifest.labels is not None and set(manifest.labels.schemes) - set(mappers):
        manifest.labels.schemes = {n: e for n, e in manifest.labels.schemes.items() if n in mappers}
    store.save_manifest(manifest)
    for rel in sorted(old - (manifest.labels.paths() if manifest.labels is not None else set())):
        store.remove(rel)
    main = mapped.get(DEFAULT_SCHEME)
    missing = Counter(
        {f"{s}:{c}": n for s, cs in (main.unmapped if main else {}).items() for c, n in cs.items()}
    )
    return {
        "relabelled": DEFAULT_SCHEME in todo,
        "digest": digests[DEFAULT_SCHEME],
        "n_records": len(main.ids) if main else (manifest.labels.n_records if manifest.labels else 0),
        "seconds": round(time.perf_counter() - t0, 3),
        "unmapped_codes": dict(missing.most_common(20)),
        "schemes": {n: n in todo for n in mappers},
    }


def _current(store: Store, manifest: Manifest, name: str, digest: str) -> bool:
    """Whether the stored labels of scheme ``name`` are those of ``digest``."""
    pointer = manifest.labels
    if pointer is None:
        return False
    if name == DEFAULT_SCHEME:
        return pointer.digest == digest and store.has(pointer.path)
    entry = pointer.schemes.get(name)
    return entry is not None and entry.digest == digest and store.has(entry.path)


def _publish(store: Store, manifest: Manifest, name: str, part: _Mapped, digest: str) -> None:
    """Write one scheme's label store and point the manifest at it."""
    rel = f"labels/{digest[:16]}.zarr" if name == DEFAULT_SCHEME else f"labels/{name}-{digest[:16]}.zarr"
    k = len(part.mapper.vocabulary)
    y = np.concatenate(part.ys) if part.ys else np.zeros((0, k), dtype=np.uint8)
    rows = np.concatenate(part.rows) if part.rows else np.zeros(0, dtype=np.int64)
    attrs = {
        "scheme": name,
        "tables_digest": part.mapper.digest,
        "unmapped": {s: dict(sorted(c.items())) for s, c in sorted(part.unmapped.items())},
    }
    tmp = store.new_tree(rel)
    try:
        _write_labels(tmp, part.ids, part.shards, rows, y, part.mapper.vocabulary, digest, attrs)
        store.publish_tree(tmp, rel)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    vocabulary = list(part.mapper.vocabulary)
    if name == DEFAULT_SCHEME:
        kept = manifest.labels.schemes if manifest.labels is not None else {}
        manifest.labels = LabelsPointer(
            digest=digest, path=rel, n_records=len(part.ids), vocabulary=vocabulary
        )
        if kept:  # no "schemes" key otherwise: the entry stays as it was before schemes existed
            manifest.labels.schemes = kept
        return
    if manifest.labels is None:
        raise RuntimeError("the default scheme's labels are derived before the other schemes'")
    entry = SchemeLabels(
        digest=digest,
        path=rel,
        n_records=len(part.ids),
        vocabulary=vocabulary,
        tables_digest=part.mapper.digest,
    )
    manifest.labels.schemes = {**manifest.labels.schemes, name: entry}


def _map_store(
    store: Store, shards: Mapping[str, ShardEntry], mappers: Mapping[str, LabelMapper]
) -> dict[str, _Mapped]:
    """Every scheme in ``mappers`` mapped over the live rows, reading each shard's raw labels once."""
    out = {name: _Mapped(mapper) for name, mapper in mappers.items()}
    if not out:
        return out
    for name, entry in sorted(shards.items()):
        group = store.open_shard(name)
        keep = entry.live_rows()
        rid = read_strings(group, "record_id")
        src = read_strings(group, "source")
        raw = read_strings(group, "raw_labels")
        meta = read_strings(group, "meta")
        metas = [json.loads(meta[i]) for i in keep]
        sources = [src[i] for i in keep]
        raws = [raw_labels_from_json(raw[i]) for i in keep]
        datasets = [m.get("dataset") for m in metas]
        windowed = ["parent" in m for m in metas]  # a window of a longer recording (the WFDB reader's meta)
        for part in out.values():
            mapped = part.mapper.map_batch(sources, raws, datasets, windowed)
            for source, codes in mapped.unmapped.items():
                part.unmapped.setdefault(source, Counter()).update(codes)
            part.ids.extend(rid[i] for i in keep)
            part.shards.extend([name] * len(keep))
            part.rows.append(keep)
            part.ys.append(mapped.labels)
    return out


def _write_labels(
    path: Path,
    ids: Sequence[str],
    shards: Sequence[str],
    rows: npt.NDArray[np.int64],
    y: npt.NDArray[np.uint8],
    vocabulary: Sequence[str],
    digest: str,
    attrs: Mapping[str, Any],
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
    g.attrs.update({"vocabulary": list(vocabulary), "digest": digest, **attrs})


def read_labels(store: Store, scheme: str | None = None) -> LabelSet | None:
    """The store's current labels of ``scheme`` (None: the default scheme), or None before the
    first ingest. A scheme that is not derived raises :class:`KeyError` naming the derived ones."""
    manifest = store.load_manifest()
    if manifest.labels is None:
        return None
    if scheme is None or scheme == DEFAULT_SCHEME:
        rel = manifest.labels.path
        if not store.has(rel):
            return None
    else:
        entry = manifest.labels.schemes.get(scheme)
        if entry is None:
            derived = [DEFAULT_SCHEME, *sorted(manifest.labels.schemes)]
            raise KeyError(
                f"label scheme {scheme!r} is not derived in this store; derived: {derived} "
                "(add it to params labels.schemes and re-run ingest)"
            )
        rel = entry.path
    g = store.open_group(rel)
    unmapped = g.attrs.get("unmapped", {})
    return LabelSet(
        record_id=tuple(read_strings(g, "record_id")),
        shard=tuple(read_strings(g, "shard")),
        row=read_array(g, "row").astype(np.int64),
        y=read_array(g, "y").astype(np.uint8),
        vocabulary=tuple(g.attrs["vocabulary"]),  # type: ignore[arg-type]  # zarr attrs are JSON values
        digest=str(g.attrs["digest"]),
        scheme=str(g.attrs.get("scheme", DEFAULT_SCHEME)),
        tables_digest=str(g.attrs.get("tables_digest", "")),
        unmapped=unmapped if isinstance(unmapped, dict) else {},
    )
