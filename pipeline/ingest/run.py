"""Ingest as three library steps the flow orchestrates: plan → run batches → commit.

* :func:`plan_ingest` discovers every source, hashes input files (cached by size+mtime),
  fingerprints units (reader version + file hashes + the unit's metadata rows + signal-plan
  digest) and diffs against the manifest: only new or changed units are batched.
* :func:`run_batch` reads, preprocesses and writes its shard(s); one writer per shard file.
  Nothing a bad input does escapes it: errors become quarantine entries.
* :func:`commit` updates the manifest atomically, drops superseded rows, and writes the
  quarantine and reconciliation reports.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import socket
import time
import traceback
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.crashpoints import crash_point
from pipeline.core.fs import sha256_file
from pipeline.core.records import Discovery, InputUnit, Provenance, ReadError, Record, Rejection
from pipeline.signal.preprocess import SignalPlan, process
from pipeline.sources.base import SourceReader, confined_path, list_files
from pipeline.store.base import Store
from pipeline.store.local import ShardInfo, StorageSpec, rows_for, single_threaded_codecs
from pipeline.store.manifest import Manifest, RunEntry, ShardEntry, UnitEntry


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


@dataclass(frozen=True)
class UnitOutcome:
    uid: str
    fingerprint: str
    status: str  # "ingested" | "quarantined"
    segments: tuple[tuple[str, int, int], ...]  # (shard, start row, stop row)
    rejections: tuple[dict[str, Any], ...]
    file_cache: Mapping[str, list[Any]] = field(default_factory=dict)  # new (size, mtime, sha256) entries


@dataclass(frozen=True)
class BatchResult:
    seq: int
    shards: tuple[ShardInfo, ...]
    outcomes: tuple[UnitOutcome, ...]
    n_records: int
    seconds: float
    writer: str = ""  # "<host>:<pid>" of the process that wrote the shards (for cluster runs' reports)


# --- plan --------------------------------------------------------------------------------------


def _hash_files(root: Path, files: Sequence[str], cache: dict[str, list[Any]]) -> tuple[tuple[str, str], ...]:
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
        key = os.path.abspath(root / rel)  # the key _cached_hashes looks up
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
        hit = cache.get(os.path.abspath(path))
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
    """Discover one source; a missing root or a failing discovery is reported, not raised."""
    scan = SourceScan(name=name, root=str(reader.root))
    if not reader.root.is_dir():
        # the path is in scan.root: the stored report must not change when the project moves
        scan.skipped = "root does not exist"
        return scan
    try:
        disc = reader.discover()
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
                hashes = _hash_files(reader.root, unit.files, cache)
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


# --- run one batch -----------------------------------------------------------------------------


def _rejection_dict(rej: Rejection, source: str, stage: str) -> dict[str, Any]:
    return {
        "source": source,
        "item": rej.item,
        "files": list(rej.files),
        "reason": rej.reason,
        "category": rej.category,
        "stage": stage,
    }


def hashed(task: UnitTask, reader: SourceReader, plan_digest: str) -> tuple[UnitTask, dict[str, list[Any]]]:
    """The task with its file hashes and fingerprint filled in, and the new hash-cache entries."""
    if task.file_hashes is not None and task.fingerprint is not None:
        return task, {}
    cache: dict[str, list[Any]] = {}
    hashes = _hash_files(reader.root, task.unit.files, cache)
    fp = fingerprint(reader.reader_id, hashes, task.unit.extra, plan_digest)
    return UnitTask(task.source, task.unit, hashes, fp), cache


def _unexpected(exc: Exception) -> str:
    tb = traceback.extract_tb(exc.__traceback__)[-1]
    return f"unexpected {type(exc).__name__}: {exc} (at {Path(tb.filename).name}:{tb.lineno})"


class _BatchWriter:
    """Streams a batch's records into shards of at most ``max_records`` records.

    Records are preprocessed and written per shard, so memory is bounded by one shard even for
    a unit with tens of thousands of records; such a unit simply spans several shards.
    """

    def __init__(
        self,
        batch: Batch,
        plan: SignalPlan,
        storage: StorageSpec,
        store: Store,
        attrs: Mapping[str, Any],
        max_records: int,
    ) -> None:
        self.batch, self.plan, self.storage, self.store = batch, plan, storage, store
        self.attrs, self.max_records = dict(attrs), max_records
        self.pending: list[tuple[str, Record]] = []
        self.shards: list[ShardInfo] = []
        self.segments: dict[str, list[tuple[str, int, int]]] = {}
        self.rejections: dict[str, list[dict[str, Any]]] = {}

    def reject(self, uid: str, source: str, rej: Rejection, stage: str) -> None:
        self.rejections.setdefault(uid, []).append(_rejection_dict(rej, source, stage))

    def read_unit(self, reader: SourceReader, task: UnitTask) -> None:
        """Stream one unit's records in; bad input becomes rejections, never an exception."""
        assert task.file_hashes is not None
        files = tuple(task.unit.files)
        missing = [f for f, h in task.file_hashes if h == "missing"]
        if missing:
            reason = f"file(s) disappeared before reading: {', '.join(missing)}"
            self.reject(task.uid, task.source, Rejection(task.uid, files, reason), "read")
            return
        n = 0
        try:
            for item in reader.read(task.unit, Provenance(files=task.file_hashes, reader=reader.reader_id)):
                if isinstance(item, Rejection):
                    self.reject(task.uid, task.source, item, "read")
                    continue
                self.pending.append((task.uid, item))
                n += 1
                if len(self.pending) >= self.max_records:
                    self.flush()
        except Exception as exc:  # noqa: BLE001 - one bad file must not lose the batch
            reason = str(exc) if isinstance(exc, ReadError) else _unexpected(exc)
            if n:
                reason = f"reading stopped after {n} record(s): {reason}"
            self.reject(task.uid, task.source, Rejection(task.uid, files, reason), "read")

    def flush(self) -> None:
        if not self.pending:
            return
        uids = {r.record_id: uid for uid, r in self.pending}
        processed, rejected = process([r for _, r in self.pending], self.plan)
        self.pending = []
        for rej in rejected:
            uid = uids[rej.item]
            self.reject(uid, uid.split("/", 1)[0], rej, "preprocess")
        if not processed.records:
            return
        name = f"part-{self.batch.seq:06d}-{len(self.shards):02d}"
        units = [uids[r.record_id] for r in processed.records]
        rows = rows_for(processed.records, units, processed.valid_len)
        self.shards.append(self.store.write_shard(name, processed.signal, rows, self.storage, self.attrs))
        start = 0
        for i in range(1, len(units) + 1):
            if i == len(units) or units[i] != units[start]:
                self.segments.setdefault(units[start], []).append((name, start, i))
                start = i

    def outcome(self, task: UnitTask, file_cache: Mapping[str, list[Any]]) -> UnitOutcome:
        segs = tuple(self.segments.get(task.uid, ()))
        return UnitOutcome(
            uid=task.uid,
            fingerprint=str(task.fingerprint),
            status="ingested" if segs else "quarantined",
            segments=segs,
            rejections=tuple(self.rejections.get(task.uid, ())),
            file_cache=file_cache,
        )


def run_batch(
    batch: Batch,
    readers: Mapping[str, SourceReader],
    signal_plan: SignalPlan,
    storage: StorageSpec,
    store: Store,
    shard_attrs: Mapping[str, Any],
    max_records_per_shard: int = 2048,
) -> BatchResult:
    """Hash (if new), read, preprocess and write the units of one batch into its own shard files.

    Returns what happened to each unit. Nothing a bad input does escapes: it is a rejection.
    """
    t0 = time.perf_counter()
    single_threaded_codecs()
    writer = _BatchWriter(batch, signal_plan, storage, store, shard_attrs, max_records_per_shard)
    digest = signal_plan.digest()
    tasks: list[tuple[UnitTask, dict[str, list[Any]]]] = []
    for todo in batch.tasks:
        task, cache = hashed(todo, readers[todo.source], digest)
        tasks.append((task, cache))
        crash_point("batch.read_unit")
        writer.read_unit(readers[task.source], task)
    writer.flush()
    outcomes = tuple(writer.outcome(task, cache) for task, cache in tasks)
    n = sum(s.n_records for s in writer.shards)
    seconds = time.perf_counter() - t0
    return BatchResult(
        batch.seq, tuple(writer.shards), outcomes, n, seconds, f"{socket.gethostname()}:{os.getpid()}"
    )


# --- commit ------------------------------------------------------------------------------------


def _drop_rows(manifest: Manifest, segments: Sequence[Sequence[Any]]) -> None:
    for shard, start, stop in segments:
        entry = manifest.shards.get(shard)
        if entry is not None:
            dropped = set(entry.dropped_rows)
            dropped.update(range(int(start), int(stop)))
            entry.dropped_rows = sorted(dropped)


def commit(
    plan: IngestPlan,
    results: Sequence[BatchResult],
    store: Store,
    manifest: Manifest,
    run_info: Mapping[str, Any],
) -> dict[str, Any]:
    """Fold batch results into the manifest, publish it, delete dead shards, write reports.

    A run that changes nothing leaves the manifest byte-identical (no run entry is appended), so a
    no-op ingest does not change the store's hash and DVC does not re-run the stages downstream.
    """
    before = json.dumps(manifest.to_json(), sort_keys=True)
    for uid in plan.vanished:
        _drop_rows(manifest, manifest.units.pop(uid).segments)
    for res in results:
        for info in res.shards:
            manifest.shards[info.name] = ShardEntry(
                n_records=info.n_records,
                sha256=info.sha256,
                nbytes=info.nbytes,
                dropped_rows=[],
                run=run_info.get("flow_run_id"),
                created=run_info.get("started"),
            )
        for out in res.outcomes:
            plan.file_cache.update(out.file_cache)
            old = manifest.units.get(out.uid)
            if old is not None:
                _drop_rows(manifest, old.segments)
            manifest.units[out.uid] = UnitEntry(
                fingerprint=out.fingerprint,
                status=out.status,
                segments=list(out.segments),
                n_records=sum(b - a for _, a, b in out.segments),
                rejections=list(out.rejections),
            )
    dead = [n for n, e in manifest.shards.items() if len(e.dropped_rows) >= e.n_records]
    for n in dead:
        del manifest.shards[n]
    manifest.plan_digest = plan.signal_plan.digest()
    manifest.file_cache = plan.file_cache
    manifest.next_seq = max([manifest.next_seq] + [b.seq + 1 for b in plan.batches])
    n_new = sum(r.n_records for r in results)
    changed = json.dumps(manifest.to_json(), sort_keys=True) != before or not store.has_manifest()
    crash_point("commit.before_manifest")
    if changed:
        run = RunEntry(**run_info, records_processed=n_new, units=len(plan.todo))
        manifest.runs = [*manifest.runs[-49:], run]
        store.save_manifest(manifest)
    crash_point("commit.after_manifest")
    store.save_file_cache(manifest.file_cache)
    store.remove_debris(manifest)
    quarantine = quarantine_entries(plan, manifest)
    store.write_json("quarantine.json", quarantine)
    store.write_bytes("quarantine.csv", quarantine_csv(quarantine))
    crash_point("commit.before_report")
    report = reconcile(plan, manifest, quarantine, n_new)
    if changed or _report_state(report) != _report_state(_stored_report(store)):
        store.write_json("ingest_report.json", report)
    crash_point("commit.done")
    return report


# Fields of the ingest report that describe one run or one machine, not the store's content.
_PER_RUN_FIELDS = frozenset(
    {"records_processed_this_run", "units_processed_this_run", "units_unchanged", "root"}
)


def _report_state(report: Any) -> Any:
    """The report without per-run fields: a no-op run whose state matches leaves the file alone."""
    if isinstance(report, dict):
        return {k: _report_state(v) for k, v in report.items() if k not in _PER_RUN_FIELDS}
    if isinstance(report, list):
        return [_report_state(v) for v in report]
    return report


def _stored_report(store: Store) -> Any:
    return store.read_json("ingest_report.json", None)


def quarantine_entries(plan: IngestPlan, manifest: Manifest) -> list[dict[str, Any]]:
    """Every input that is not a record now: discovery rejections + unit/record rejections."""
    entries: list[dict[str, Any]] = []
    for name, scan in plan.scans.items():
        entries.extend(_rejection_dict(r, name, "discover") for r in scan.discovery.rejected)
    for uid in sorted(manifest.units):
        entries.extend(manifest.units[uid].rejections)
    return entries


def quarantine_csv(entries: Sequence[Mapping[str, Any]]) -> bytes:
    """quarantine.json's entries as CSV (source, stage, category, item, files, reason)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["source", "stage", "category", "item", "files", "reason"])
    for e in entries:
        w.writerow([e["source"], e["stage"], e["category"], e["item"], ";".join(e["files"]), e["reason"]])
    return buf.getvalue().encode("utf-8")


def reconcile(
    plan: IngestPlan, manifest: Manifest, quarantine: Sequence[Mapping[str, Any]], n_new: int
) -> dict[str, Any]:
    """Per source: files on disk vs files accounted for; units ingested + quarantined = units."""
    per_source: dict[str, Any] = {}
    for name, scan in plan.scans.items():
        if scan.skipped:
            per_source[name] = {"skipped": scan.skipped, "root": scan.root}
            continue
        d = scan.discovery
        unit_files = {f for u in d.units for f in u.files}
        accounted = unit_files | set(d.metadata_files) | {f for r in d.rejected for f in r.files}
        accounted |= scan.limited_out_files
        units = [u for uid, u in manifest.units.items() if uid.split("/", 1)[0] == name]
        status = Counter(u.status for u in units)
        rec_rejects = sum(len(u.rejections) for u in units if u.status == "ingested")
        n_units = len(d.units)
        per_source[name] = {
            "root": scan.root,
            "files_on_disk": scan.files_on_disk,
            "files_accounted": len(accounted),
            "unaccounted_files": scan.files_on_disk - len(accounted),
            "units_on_disk": n_units + scan.limited_out,
            "units_limited_out": scan.limited_out,
            "units_ingested": status["ingested"],
            "units_quarantined": status["quarantined"],
            "files_rejected_at_discovery": len(d.rejected),
            "records": sum(u.n_records for u in units),
            "records_quarantined_within_units": rec_rejects,
            "reconciled": status["ingested"] + status["quarantined"] == n_units
            and scan.files_on_disk == len(accounted),
        }
    return {
        "profile": plan.profile,
        "records_processed_this_run": n_new,
        "units_processed_this_run": len(plan.todo),
        "units_unchanged": len(plan.unchanged),
        "units_vanished": len(plan.vanished),
        "records_total": sum(e.n_records - len(e.dropped_rows) for e in manifest.shards.values()),
        "quarantined_inputs": len(quarantine),
        "quarantined_by_category": dict(Counter(str(e["category"]) for e in quarantine)),
        "sources": per_source,
        "reconciled": all(s.get("reconciled", True) for s in per_source.values()),
    }
