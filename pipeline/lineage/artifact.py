"""Where an artifact came from: the DVC stage chain back to raw files, as one JSON document.

:func:`artifact_lineage` finds the stage whose out is (or contains) the artifact in ``dvc.lock``,
then walks the chain stage by stage through deps that are outs of other stages, down to the
leaves (raw folders, label tables, code). For each stage it reports the locked command, params,
deps (data and code) and outs with their hashes, whether each path on disk still matches the lock
(:func:`pipeline.lineage.dvc_lock.check_entry`: size then md5 for files, file count and size for folders),
and the code version from the stage's provenance record (:mod:`pipeline.core.provenance`), which is
``consistent_with_lock`` when its md5 is the one the lock holds.

Then the data: the shards that feed the artifact (for a model-side artifact only the shards and
rows its split index uses; for a path inside the store that shard or profile) with their sha256,
record counts and the Prefect flow-run ids that wrote them, and every raw file behind those
records with its sha256, grouped by source. Per-record arrays are read a whole shard at a time.

The document (``format`` :data:`FORMAT`)::

    artifact   {path, kind, exists, stage, out, inside_out, state}
    stages     [{name, depth, cmd, params, code_version, deps: {data, code}, outs, upstream}]
    leaves     {data: [...], code: [...]}       deps no stage produces
    shards     {scope, indexes, items, flow_run_ids, n_records}
    raw_files  {n_files, n_records, by_source: {source: {root, readers, n_files, n_records, files}}}
    checks     what "state" compares; warnings  [str]
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import numpy.typing as npt
import pathspec

from pipeline.core.provenance import PROVENANCE_DIR, record_name
from pipeline.dataset.splits import SplitError, read_index
from pipeline.lineage import dvc_lock as dl
from pipeline.store.local import read_strings
from pipeline.store.manifest import Manifest, StoreError
from pipeline.store.remote import list_profiles, open_store
from pipeline.store.root import StoreRoot, is_url

FORMAT = "ecgpipe.lineage.artifact/1"
# A dep no stage produces is code when it lies under one of these folders or has a code suffix;
# everything else (raw folders, label tables) is data.
CODE_ROOTS = ("pipeline", "flows", "ckernels", "scripts", "src")
CODE_SUFFIXES = frozenset({".py", ".c", ".h", ".cc", ".cpp", ".hpp", ".pyx", ".sh"})
CODE_NAMES = frozenset({"Makefile", "CMakeLists.txt", "pyproject.toml", "setup.py", "setup.cfg"})
CHECKS = (
    "state compares the path on disk with dvc.lock: a file by size, then md5 of its bytes (files over "
    f"{dl.MAX_MD5_BYTES // 2**20} MiB by size only); a folder by file count and total size, honouring "
    ".dvcignore (an in-place edit keeping both is not seen: `dvc status` is exact); a file inside a "
    "cached folder out by md5 against DVC's .dir listing in the cache"
)


class LineageError(ValueError):
    """An artifact path or record id lineage cannot answer for; the message says why."""


@dataclass(frozen=True)
class StoreLayout:
    """Where the pipeline keeps what lineage reads (from params).

    ``store``: the shard store root (``ingest.store``, or ``ingest.object_store``'s URL), one store
    per profile; ``index_dir``: split indexes (``split.out_dir``); ``source_roots``: source name →
    raw root (``sources.*.root``).
    """

    store: StoreRoot | Path
    index_dir: Path
    source_roots: Mapping[str, Path] = field(default_factory=dict)


# --------------------------------------------------------------------------- entry point


def artifact_lineage(
    project_root: Path, path: Path | str, layout: StoreLayout, cwd: Path | None = None
) -> dict[str, Any]:
    """The lineage document of ``path`` (absolute, or relative to ``cwd``, default the project root)
    in the DVC project at ``project_root``; raises :class:`LineageError` when no stage produces it."""
    root = Path(project_root).resolve()
    lock = dl.load_lock(root)
    rel = dl.normalise(root, path, cwd or root)
    start = _start_producers(lock, rel, root)
    ctx = _Context(root=root, lock=lock, ignore=dl.load_ignore(root))
    artifact = _artifact_json(ctx, rel, start)
    order = _chain(lock, [p.stage.name for p in start])
    stages = [_stage_json(ctx, lock.stage(name), depth) for name, depth in order.items()]
    shards, raw = _data_lineage(ctx, rel, list(order), layout)
    warnings = _stage_warnings(stages) + ctx.warnings
    return {
        "format": FORMAT,
        "project_root": str(root),
        "artifact": artifact,
        "stages": stages,
        "leaves": _leaves(stages),
        "shards": shards,
        "raw_files": raw,
        "checks": CHECKS,
        "warnings": warnings,
    }


@dataclass
class _Context:
    root: Path
    lock: dl.DvcLock
    ignore: pathspec.GitIgnoreSpec | None
    warnings: list[str] = field(default_factory=list)
    _states: dict[tuple[str, str | None, int | None, int | None], dl.EntryState] = field(default_factory=dict)

    def state(self, entry: dl.LockEntry) -> dl.EntryState:
        """On-disk state of a lock entry, computed once per path and hash (code deps repeat a lot)."""
        key = (entry.path, entry.md5, entry.size, entry.nfiles)
        if key not in self._states:
            self._states[key] = dl.check_entry(self.root, entry, self.ignore)
        return self._states[key]


# --------------------------------------------------------------------------- the stage chain


def _start_producers(lock: dl.DvcLock, rel: str, root: Path) -> list[dl.Producer]:
    found = lock.producers(rel) or lock.producers_inside(rel)
    if found:
        return found
    users = lock.dep_users(rel)
    if users:
        what = "code" if is_code_path(rel) else "a raw input"
        state = "" if (root / rel).exists() else " (and does not exist)"
        raise LineageError(
            f"{rel}: not produced by any stage{state}: it is {what}, a dependency of {', '.join(users[:8])}"
            f"{' ...' if len(users) > 8 else ''}; ask about an output of one of those stages"
        )
    on_disk = "exists but is" if (root / rel).exists() else "does not exist and is"
    near = dl.nearby_outs(lock, rel)
    raise LineageError(
        f"{rel}: {on_disk} not produced by any stage in dvc.lock"
        f"{'; stage outs nearby: ' + ', '.join(near) if near else ''}"
    )


def _chain(lock: dl.DvcLock, start: Sequence[str]) -> dict[str, int]:
    """Stage name → depth, breadth first from the producing stages through data deps."""
    order: dict[str, int] = {}
    frontier = list(dict.fromkeys(start))
    depth = 0
    while frontier:
        nxt: list[str] = []
        for name in frontier:
            if name in order:
                continue
            order[name] = depth
            for dep in lock.stage(name).deps:
                nxt.extend(p.stage.name for p in lock.dep_producers(dep.path, exclude=name))
        frontier = [n for n in dict.fromkeys(nxt) if n not in order]
        depth += 1
    return order


def is_code_path(rel: str) -> bool:
    """Whether a dep no stage produces is code (see :data:`CODE_ROOTS`) rather than data."""
    p = PurePosixPath(rel)
    in_code_root = bool(p.parts) and p.parts[0] in CODE_ROOTS
    return in_code_root or p.suffix in CODE_SUFFIXES or p.name in CODE_NAMES


def _artifact_json(ctx: _Context, rel: str, start: Sequence[dl.Producer]) -> dict[str, Any]:
    full = ctx.root / rel
    first = start[0]
    exact = [p for p in start if p.out.path == rel]
    if exact:
        state = ctx.state(exact[0].out)
    elif dl.is_within(rel, first.out.path):
        state = dl.check_inside(ctx.root, first.out, rel)
        if state.status == "unknown":  # no cached listing (a cache: false out): judge the whole folder
            outer = ctx.state(first.out)
            state = dl.EntryState(
                outer.status,
                f"{outer.method} of {first.out.path}",
                outer.size,
                outer.nfiles,
                None,
                outer.detail,
            )
    else:  # a folder holding outs: each out carries its own state in its stage
        state = dl.EntryState(
            "unknown", "none", detail="a folder holding several outs; see each stage's outs"
        )
    if not exact and state.status in ("modified", "missing"):  # an exact out is warned about by its stage
        ctx.warnings.append(f"artifact {rel}: {state.status} since dvc.lock ({state.detail})")
    return {
        "path": rel,
        "kind": "folder" if full.is_dir() else "file" if full.exists() else "missing",
        "exists": full.exists(),
        "stage": first.stage.name,
        "stages": sorted({p.stage.name for p in start}),
        "out": first.out.path,
        "inside_out": first.out.path != rel and dl.is_within(rel, first.out.path),
        "state": state.to_json(),
    }


def _stage_json(ctx: _Context, stage: dl.LockStage, depth: int) -> dict[str, Any]:
    data: list[dict[str, Any]] = []
    code: list[dict[str, Any]] = []
    upstream: list[str] = []
    for dep in stage.deps:
        producers = ctx.lock.dep_producers(dep.path, exclude=stage.name)
        item = {**dep.to_json(), "state": ctx.state(dep).to_json()}
        if producers:
            names = sorted({p.stage.name for p in producers})
            upstream.extend(names)
            item["produced_by"] = names
            item["matches_producer"] = _matches_producer(dep, producers)
            data.append(item)
        elif is_code_path(dep.path):
            code.append(item)
        else:
            item["produced_by"] = []
            data.append(item)
    return {
        "name": stage.name,
        "depth": depth,
        "cmd": stage.cmd_json(),
        "params": {f: dict(v) for f, v in stage.params.items()},
        "code_version": code_version(ctx.root, stage),
        "deps": {"data": data, "code": code},
        "outs": [{**o.to_json(), "state": ctx.state(o).to_json()} for o in stage.outs],
        "upstream": sorted(set(upstream)),
    }


def _matches_producer(dep: dl.LockEntry, producers: Sequence[dl.Producer]) -> bool | None:
    """Whether the dep's locked hash is its producer's locked out hash (None: not the same path)."""
    same = [p.out for p in producers if p.out.path == dep.path]
    if not same:
        return None
    return all(o.md5 == dep.md5 for o in same)


def code_version(root: Path, stage: dl.LockStage) -> dict[str, Any]:
    """The stage's provenance record, checked against the md5 the lock holds for it."""
    rel = (PurePosixPath(PROVENANCE_DIR) / record_name(stage.name)).as_posix()
    entry = stage.out(rel)
    path = Path(root) / rel
    base: dict[str, Any] = {"record": rel, "status": "", "consistent_with_lock": None}
    if entry is None and not path.is_file():
        why = (
            "the locked run predates provenance records (re-run the stage to record one)"
            if _is_ecgpipe(stage.cmd)
            else "the stage writes no provenance record (not an ecgpipe command)"
        )
        return {**base, "record": None, "status": "not recorded", "note": why}
    if not path.is_file():
        return {
            **base,
            "status": "missing",
            "consistent_with_lock": False,
            "note": f"dvc.lock lists {rel} but it is not on disk",
        }
    consistent = entry is not None and entry.md5 == dl.md5_file(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        return {**base, "status": "unreadable", "consistent_with_lock": False, "note": str(exc)}
    keys = (
        "git_commit",
        "git_dirty",
        "dirty_files",
        "argv",
        "started_utc",
        "finished_utc",
        "prefect_flow_run_id",
    )
    note = (
        ""
        if consistent
        else (
            "dvc.lock does not list this record"
            if entry is None
            else "the record differs from the one dvc.lock holds: it was written by another run than the "
            "locked outputs (stale)"
        )
    )
    return {
        **base,
        "status": "recorded" if consistent else "stale",
        "consistent_with_lock": consistent,
        **{k: record.get(k) for k in keys},
        "note": note,
    }


def _is_ecgpipe(cmd: str | tuple[str, ...]) -> bool:
    first = cmd if isinstance(cmd, str) else (cmd[0] if cmd else "")
    return first.split(" ", 1)[0] == "ecgpipe"


def _stage_warnings(stages: Sequence[Mapping[str, Any]]) -> list[str]:
    out: list[str] = []
    for s in stages:
        cv = s["code_version"]
        if cv["status"] in ("stale", "missing", "unreadable"):
            out.append(
                f"{s['name']}: provenance record {cv['record']} is {cv['status']}: {cv.get('note', '')}"
            )
        for o in s["outs"]:
            if o["state"]["status"] in ("modified", "missing"):
                out.append(
                    f"{s['name']}: out {o['path']} {o['state']['status']} since dvc.lock "
                    f"({o['state']['detail']})"
                )
        deps = [*s["deps"]["data"], *s["deps"]["code"]]
        changed = [d["path"] for d in deps if d["state"]["status"] in ("modified", "missing")]
        behind = [d["path"] for d in deps if d.get("matches_producer") is False]
        if changed:
            out.append(
                f"{s['name']}: not up to date: {len(changed)} dep(s) changed since dvc.lock "
                f"({_first(changed)})"
            )
        if behind:
            out.append(
                f"{s['name']}: not up to date: dep(s) {_first(behind)} locked with another hash "
                "than their producing stage now holds"
            )
    return out


def _first(items: Sequence[str], n: int = 4) -> str:
    return ", ".join(items[:n]) + (f", ... ({len(items) - n} more)" if len(items) > n else "")


def _leaves(stages: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Deps no stage produces, once each, with the stages that use them."""
    found: dict[str, dict[str, dict[str, Any]]] = {"data": {}, "code": {}}
    for s in stages:
        for kind in ("data", "code"):
            for d in s["deps"][kind]:
                if d.get("produced_by"):
                    continue
                base = {k: v for k, v in d.items() if k != "produced_by"}
                item = found[kind].setdefault(d["path"], {**base, "used_by": []})
                item["used_by"].append(s["name"])
    return {k: [v for _, v in sorted(items.items())] for k, items in found.items()}


# --------------------------------------------------------------------------- shards and raw files


@dataclass
class _Selection:
    """Rows of one shard that feed the artifact; ``split`` per row when a split index chose them."""

    profile: str
    shard: str
    rows: npt.NDArray[np.int64] | None  # None: every live row
    split: list[str] | None = None
    record_ids: list[str] | None = None


def _data_lineage(
    ctx: _Context, rel: str, stage_names: Sequence[str], layout: StoreLayout
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
    ctx: _Context, rel: str, stage_names: Sequence[str], layout: StoreLayout, store_rel: str | None
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


def _index_paths(ctx: _Context, rel: str, stage_names: Sequence[str], layout: StoreLayout) -> list[str]:
    index_rel = _rel_or_none(ctx.root, layout.index_dir)
    if index_rel is None:
        return []
    candidates = [rel, *(d.path for n in stage_names for d in ctx.lock.stage(n).deps)]
    found = [p for p in candidates if dl.is_within(p, index_rel) and p.endswith(".csv") and p != index_rel]
    return [p for p in dict.fromkeys(found) if (ctx.root / p).is_file()]


def _index_selection(ctx: _Context, rel: str) -> tuple[dict[str, Any], list[_Selection]]:
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
        "model": index.header.get("model"),
    }
    return info, sels


def _store_path_scope(
    ctx: _Context, rel: str, store_rel: str, store: StoreRoot | Path
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


def shown_location(root: Path, location: str) -> str:
    """A store location as lineage shows it: relative to the project when local, else the URL."""
    return location if is_url(location) else dl.display_path(root, Path(location))


def _profile_selections(store: StoreRoot | Path, profiles: Iterable[str]) -> list[_Selection]:
    out: list[_Selection] = []
    for profile in profiles:
        manifest = open_store(store, profile).load_manifest()
        out.extend(_Selection(profile, name, None) for name in sorted(manifest.shards))
    return out


def _read_selection(
    ctx: _Context, store_root: StoreRoot, sel: _Selection, manifests: dict[str, Manifest], raw: _RawFiles
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
    ctx: _Context,
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
    ctx: _Context, indexes: Sequence[Mapping[str, Any]], manifests: Mapping[str, Manifest]
) -> None:
    for info in indexes:
        profile = info.get("profile")
        if not profile or profile not in manifests:
            continue
        pointer = manifests[profile].labels
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
