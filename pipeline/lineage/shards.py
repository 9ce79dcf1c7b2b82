"""The data behind an artifact: the shards that feed it (split-index rows, a shard, a profile or the
whole store) with their hashes and flow runs, and the raw files behind those records, by source.
Per-record arrays are read a whole shard at a time.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.dataset.splits import SplitError, read_index
from pipeline.lineage import dvc_lock as dl
from pipeline.lineage.query import LineageContext, StoreLayout, shown_location
from pipeline.store.local import read_strings
from pipeline.store.manifest import Manifest, StoreError
from pipeline.store.remote import list_profiles, open_store
from pipeline.store.root import StoreRoot


@dataclass
class _Selection:
    """Rows of one shard that feed the artifact; ``split`` per row when a split index chose them."""

    profile: str
    shard: str
    rows: npt.NDArray[np.int64] | None  # None: every live row
    split: list[str] | None = None
    record_ids: list[str] | None = None


def data_lineage(
    ctx: LineageContext, rel: str, stage_names: Sequence[str], layout: StoreLayout
) -> tuple[dict[str, Any], dict[str, Any]]:
    root = StoreRoot.of(layout.store)
    store_rel = None if root.is_remote else _rel_or_none(ctx.root, Path(root.url))
    scope, indexes, selections = _scope(ctx, rel, stage_names, layout, store_rel)
    items: list[dict[str, Any]] = []
    raw = _RawFiles(ctx.root, layout.source_roots)
    manifests: dict[str, Manifest] = {}
    for sel in selections:
        item = _read_selection(ctx, root, sel, manifests, raw)
        if item is not None:
            items.append(item)
    _check_labels_digest(ctx, indexes, manifests)
    runs = sorted({i["flow_run_id"] for i in items if i.get("flow_run_id")})
    shards = {
        "scope": scope,
        "store": shown_location(ctx.root, root.url),
        "indexes": indexes,
        "items": items,
        "flow_run_ids": runs,
        "n_records": sum(i["rows_used"] for i in items),
    }
    return shards, raw.to_json()


def _rel_or_none(root: Path, path: Path) -> str | None:
    try:
        return dl.normalise(root, path)
    except dl.LockError:
        return None


def _scope(
    ctx: LineageContext, rel: str, stage_names: Sequence[str], layout: StoreLayout, store_rel: str | None
) -> tuple[str, list[dict[str, Any]], list[_Selection]]:
    """What feeds the artifact: split-index rows, a shard, a profile, the whole store, or nothing."""
    index_paths = _index_paths(ctx, rel, stage_names, layout)
    if index_paths:
        indexes: list[dict[str, Any]] = []
        selections: list[_Selection] = []
        for p in index_paths:
            info, sels = _index_selection(ctx, p)
            indexes.append(info)
            selections.extend(sels)
        return f"rows of split index {', '.join(index_paths)}", indexes, selections
    if store_rel is not None and dl.is_within(rel, store_rel):
        return _store_path_scope(ctx, rel, store_rel, layout.store)
    if store_rel is not None and _chain_writes_store(ctx.lock, stage_names, store_rel):
        return (
            "every live record in the store",
            [],
            _profile_selections(layout.store, list_profiles(layout.store)),
        )
    return "no shards feed this artifact", [], []


def _index_paths(ctx: LineageContext, rel: str, stage_names: Sequence[str], layout: StoreLayout) -> list[str]:
    index_rel = _rel_or_none(ctx.root, layout.index_dir)
    if index_rel is None:
        return []
    candidates = [rel, *(d.path for n in stage_names for d in ctx.lock.stage(n).deps)]
    found = [p for p in candidates if dl.is_within(p, index_rel) and p.endswith(".csv") and p != index_rel]
    return [p for p in dict.fromkeys(found) if (ctx.root / p).is_file()]


def _index_selection(ctx: LineageContext, rel: str) -> tuple[dict[str, Any], list[_Selection]]:
    try:
        index = read_index(ctx.root / rel)
    except SplitError as exc:
        ctx.warnings.append(f"split index {rel}: unreadable: {exc}")
        return {"path": rel, "error": str(exc)}, []
    profile = str(index.header.get("profile", ""))
    by_shard: dict[str, list[tuple[int, str, str]]] = {}
    for r in index.rows:
        by_shard.setdefault(r.shard, []).append((r.row, r.split, r.record_id))
    sels = [
        _Selection(
            profile=profile,
            shard=shard,
            rows=np.array([t[0] for t in rows], dtype=np.int64),
            split=[t[1] for t in rows],
            record_ids=[t[2] for t in rows],
        )
        for shard, rows in sorted(by_shard.items())
    ]
    info = {
        "path": rel,
        "profile": profile,
        "records": len(index.rows),
        "by_split": dict(sorted(Counter(r.split for r in index.rows).items())),
        "labels_digest": index.header.get("labels_digest"),
        "scheme": index.header.get("scheme"),
        "model": index.header.get("model"),
    }
    return info, sels


def _store_path_scope(
    ctx: LineageContext, rel: str, store_rel: str, store: StoreRoot | Path
) -> tuple[str, list[dict[str, Any]], list[_Selection]]:
    parts = PurePosixPath(rel).relative_to(store_rel).parts
    if not parts:
        return "every live record in the store", [], _profile_selections(store, list_profiles(store))
    profile = parts[0]
    if len(parts) >= 3 and parts[1] == "shards":
        shard = parts[2]
        return f"shard {profile}/{shard}", [], [_Selection(profile, shard, None)]
    return f"every live record of profile {profile}", [], _profile_selections(store, [profile])


def _chain_writes_store(lock: dl.DvcLock, stage_names: Sequence[str], store_rel: str) -> bool:
    return any(
        dl.is_within(o.path, store_rel) or dl.is_within(store_rel, o.path)
        for n in stage_names
        for o in lock.stage(n).outs
    )


def _profile_selections(store: StoreRoot | Path, profiles: Iterable[str]) -> list[_Selection]:
    out: list[_Selection] = []
    for profile in profiles:
        manifest = open_store(store, profile).load_manifest()
        out.extend(_Selection(profile, name, None) for name in sorted(manifest.shards))
    return out


def _read_selection(
    ctx: LineageContext,
    store_root: StoreRoot,
    sel: _Selection,
    manifests: dict[str, Manifest],
    raw: _RawFiles,
) -> dict[str, Any] | None:
    """One shard's entry; its rows' raw files go into ``raw``. Whole arrays, one read each."""
    store = open_store(store_root, sel.profile)
    if sel.profile not in manifests:
        manifests[sel.profile] = store.load_manifest()
    entry = manifests[sel.profile].shards.get(sel.shard)
    where = f"{sel.profile}/{sel.shard}"
    if entry is None or not store.has_shard(sel.shard):
        ctx.warnings.append(f"shard {where}: not in the store's manifest or not on disk")
        return None
    try:
        group = store.open_shard(sel.shard)
        ids = read_strings(group, "record_id")
        sources = read_strings(group, "source")
        provenance = read_strings(group, "provenance")
    except (StoreError, OSError, KeyError, ValueError) as exc:
        ctx.warnings.append(f"shard {where}: unreadable: {exc}")
        return None
    live = entry.live_rows()
    rows = live if sel.rows is None else sel.rows
    rows = _check_rows(ctx, where, rows, ids, sel.record_ids)
    for r in rows:
        raw.add(sources[r], provenance[r])
    item: dict[str, Any] = {
        "profile": sel.profile,
        "shard": sel.shard,
        "path": shown_location(ctx.root, store.shard_location(sel.shard)),
        "sha256": entry.sha256,
        "n_records": entry.n_records,
        "live_records": len(live),
        "rows_used": len(rows),
        "flow_run_id": entry.run,
        "created": entry.created,
    }
    if sel.split is not None:
        item["rows_by_split"] = dict(sorted(Counter(sel.split).items()))
    return item


def _check_rows(
    ctx: LineageContext,
    where: str,
    rows: npt.NDArray[np.int64],
    ids: Sequence[str],
    expected: Sequence[str] | None,
) -> npt.NDArray[np.int64]:
    """Rows inside the shard whose record id is the one the index names; warns about the rest."""
    inside = (rows >= 0) & (rows < len(ids))
    ok = inside.copy()
    if expected is not None:
        for i in np.flatnonzero(inside):
            ok[i] = ids[int(rows[i])] == expected[int(i)]
    bad = int((~ok).sum())
    if bad:
        ctx.warnings.append(
            f"shard {where}: {bad} split-index rows do not point at the record id the index names "
            "(index older than the store? re-run the split stage)"
        )
    return rows[ok]


def _check_labels_digest(
    ctx: LineageContext, indexes: Sequence[Mapping[str, Any]], manifests: Mapping[str, Manifest]
) -> None:
    for info in indexes:
        profile = info.get("profile")
        if not profile or profile not in manifests:
            continue
        pointer = manifests[profile].labels
        scheme = info.get("scheme")
        # an index made from a named scheme is compared with that scheme's labels, not the default's
        if pointer is not None and scheme and scheme in pointer.schemes:
            now: str | None = pointer.schemes[scheme].digest
        else:
            now = pointer.digest if pointer is not None else None
        if info.get("labels_digest") and now and info["labels_digest"] != now:
            ctx.warnings.append(
                f"split index {info['path']} was made from labels {str(info['labels_digest'])[:12]}, "
                f"the store {profile} now holds labels {str(now)[:12]}: re-run the split stage"
            )


class _RawFiles:
    """Raw files behind a set of records, grouped by source, each with the records it feeds."""

    def __init__(self, root: Path, source_roots: Mapping[str, Path]) -> None:
        self.root = root
        self.source_roots = source_roots
        self.files: dict[str, dict[tuple[str, str], int]] = {}
        self.records: Counter[str] = Counter()
        self.readers: dict[str, set[str]] = {}
        self._parsed: dict[str, tuple[list[tuple[str, str]], str]] = {}

    def add(self, source: str, provenance_json: str) -> None:
        files, reader = self._parse(provenance_json)
        per = self.files.setdefault(source, {})
        for rel, sha in files:
            per[(rel, sha)] = per.get((rel, sha), 0) + 1
        self.records[source] += 1
        self.readers.setdefault(source, set()).add(reader)

    def _parse(self, text: str) -> tuple[list[tuple[str, str]], str]:
        # Sources that keep many records in one file repeat the same provenance string.
        if text not in self._parsed:
            data = json.loads(text)
            self._parsed[text] = (
                [(str(f[0]), str(f[1])) for f in data.get("files", [])],
                str(data.get("reader", "")),
            )
        return self._parsed[text]

    def _root_of(self, source: str) -> Path | None:
        root = self.source_roots.get(source)
        return None if root is None else Path(root)

    def to_json(self) -> dict[str, Any]:
        by_source: dict[str, Any] = {}
        for source in sorted(self.files):
            root = self._root_of(source)
            # One resolve per source, not per file: 20k-record profiles have 40k+ files.
            shown_root = None if root is None else dl.display_path(self.root, root)
            files = [
                {
                    "path": rel if shown_root is None else _join(shown_root, rel),
                    "file": rel,
                    "sha256": sha,
                    "records": n,
                }
                for (rel, sha), n in sorted(self.files[source].items())
            ]
            by_source[source] = {
                "root": shown_root,
                "readers": sorted(self.readers[source]),
                "n_files": len(files),
                "n_records": self.records[source],
                "files": files,
            }
        return {
            "n_files": sum(s["n_files"] for s in by_source.values()),
            "n_records": sum(self.records.values()),
            "by_source": by_source,
        }


def _join(folder: str, rel: str) -> str:
    # Plain string work: a Path object per raw file costs more than the rest of the lookup.
    return rel if folder in ("", ".") else f"{folder.rstrip('/')}/{rel}"
