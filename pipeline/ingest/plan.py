"""Ingest step 1, the plan: which input units must be (re)processed, grouped into batches.

:func:`plan_ingest` discovers every source (:func:`scan_source`), hashes input files (sha256,
cached by size+mtime), fingerprints units (reader version + file hashes + the unit's metadata rows
+ signal-plan digest) and diffs against the manifest: only new or changed units are batched.
The flow then runs the batches (:mod:`pipeline.ingest.batch`) and commits (:mod:`pipeline.ingest.commit`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.fs import sha256_file
from pipeline.core.records import Discovery, InputUnit, ReadError
from pipeline.signal.preprocess import SignalPlan
from pipeline.sources.base import SourceLayoutError, SourceReader, confined_path, list_files
from pipeline.store.local import StorageSpec
from pipeline.store.manifest import Manifest


@dataclass(frozen=True)
class UnitTask:
    """A unit to (re)process. A unit never seen before is hashed by its batch task, in parallel,
    rather than in the serial plan: ``file_hashes`` and ``fingerprint`` are then None here."""

    source: str
    unit: InputUnit
    file_hashes: tuple[tuple[str, str], ...] | None
    fingerprint: str | None

    @property
    def uid(self) -> str:
        return f"{self.source}/{self.unit.key}"


@dataclass(frozen=True)
class Batch:
    seq: int
    tasks: tuple[UnitTask, ...]


@dataclass
class SourceScan:
    name: str
    root: str
    skipped: str | None = None  # why the source was not read (e.g. root missing)
    discovery: Discovery = field(default_factory=lambda: Discovery(units=()))
    files_on_disk: int = 0
    limited_out: int = 0  # units left out by --limit
    limited_out_files: frozenset[str] = frozenset()  # their files: accounted for, not ingested


@dataclass
class IngestPlan:
    profile: str
    signal_plan: SignalPlan
    storage: StorageSpec
    scans: dict[str, SourceScan]
    todo: list[UnitTask]
    unchanged: list[str]
    vanished: list[str]
    batches: list[Batch]
    file_cache: dict[str, list[Any]]
    reader_ids: dict[str, str]


def hash_files(root: Path, files: Sequence[str], cache: dict[str, list[Any]]) -> tuple[tuple[str, str], ...]:
    """sha256 of each file, reusing the cached digest when size and mtime are unchanged."""
    out = []
    for rel in files:
        try:
            # a unit file that is a link out of the source root must not be read, not even hashed
            path = confined_path(root, rel)
            st = path.stat()
        except (OSError, ReadError):
            out.append((rel, "missing"))
            continue
        # the key _cached_hashes looks up; PTH100: abspath normalises '..' without following links, as the
        # stored cache keys were made (Path.resolve would follow symlinks and change them)
        key = os.path.abspath(root / rel)  # noqa: PTH100 - see above
        hit = cache.get(key)
        if hit and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
            digest = str(hit[2])
        else:
            digest = sha256_file(path)
        cache[key] = [st.st_size, st.st_mtime_ns, digest]
        out.append((rel, digest))
    return tuple(out)


def _cached_hashes(
    root: Path, files: Sequence[str], cache: Mapping[str, list[Any]]
) -> tuple[tuple[str, str], ...] | None:
    """The cached sha256 of every file if all are cache hits (same size and mtime), else None."""
    out = []
    for rel in files:
        path = root / rel
        try:
            st = path.stat()
        except OSError:
            return None
        hit = cache.get(os.path.abspath(path))  # noqa: PTH100 - the cache's own key rule (above)
        if not hit or hit[0] != st.st_size or hit[1] != st.st_mtime_ns:
            return None
        out.append((rel, str(hit[2])))
    return tuple(out)


def fingerprint(
    reader_id: str, hashes: Sequence[tuple[str, str]], extra: Mapping[str, str], plan_digest: str
) -> str:
    blob = json.dumps([reader_id, list(hashes), sorted(extra.items()), plan_digest])
    return hashlib.sha256(blob.encode()).hexdigest()


def scan_source(name: str, reader: SourceReader, limit: int | None) -> SourceScan:
    """Discover one source; a missing root or a failing discovery is reported, not raised.

    A source whose structure is wrong as a whole (:class:`SourceLayoutError`: a required column
    missing, its label file unreadable) is raised, naming the source: that ingest must fail loudly
    rather than quarantine every record for one cause. (A root that must exist and does not is refused
    before this, by ``pipeline.config.require_source_roots``.)
    """
    scan = SourceScan(name=name, root=str(reader.root))
    if not reader.root.is_dir():
        # the path is in scan.root: the stored report must not change when the project moves
        scan.skipped = "root does not exist"
        return scan
    try:
        disc = reader.discover()
    except SourceLayoutError as exc:
        raise SourceLayoutError(f"source {name}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - one broken source must not stop the others
        scan.skipped = f"discovery failed: {type(exc).__name__}: {exc}"
        return scan
    scan.files_on_disk = len(list_files(reader.root))
    if limit is not None and len(disc.units) > limit:
        ordered = sorted(disc.units, key=lambda u: u.key)
        units = tuple(ordered[:limit])
        scan.limited_out = len(disc.units) - limit
        scan.limited_out_files = frozenset(f for u in ordered[limit:] for f in u.files)
        disc = Discovery(units=units, metadata_files=disc.metadata_files, rejected=disc.rejected)
    scan.discovery = disc
    return scan


def plan_ingest(
    profile: str,
    signal_plan: SignalPlan,
    storage: StorageSpec,
    readers: Mapping[str, SourceReader],
    manifest: Manifest,
    batch_units: int,
    limit: int | None = None,
) -> IngestPlan:
    """Decide which units must be (re)processed and group them into batches, one shard each."""
    cache = dict(manifest.file_cache)
    digest = signal_plan.digest()
    scans: dict[str, SourceScan] = {}
    todo: list[UnitTask] = []
    unchanged: list[str] = []
    seen: set[str] = set()
    for name, reader in readers.items():
        scan = scan_source(name, reader, limit)
        scans[name] = scan
        for unit in scan.discovery.units:
            uid = f"{name}/{unit.key}"
            seen.add(uid)
            old = manifest.units.get(uid)
            hashes = _cached_hashes(reader.root, unit.files, cache)
            if hashes is None and old is None:
                todo.append(UnitTask(name, unit, None, None))
                continue
            if hashes is None:
                hashes = hash_files(reader.root, unit.files, cache)
            fp = fingerprint(reader.reader_id, hashes, unit.extra, digest)
            (
                unchanged.append(uid)
                if old and old.fingerprint == fp
                else todo.append(UnitTask(name, unit, hashes, fp))
            )
    skipped_sources = {n for n, s in scans.items() if s.skipped}
    vanished = [
        uid for uid in manifest.units if uid not in seen and uid.split("/", 1)[0] not in skipped_sources
    ]
    batches = [
        Batch(manifest.next_seq + i, tuple(todo[j : j + batch_units]))
        for i, j in enumerate(range(0, len(todo), batch_units))
    ]
    reader_ids = {n: r.reader_id for n, r in readers.items()}
    return IngestPlan(
        profile, signal_plan, storage, scans, todo, unchanged, vanished, batches, cache, reader_ids
    )
