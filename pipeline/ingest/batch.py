"""Ingest step 2, one batch: read (hashing new units on the way), preprocess and write its own shards.

:func:`run_batch` runs in a worker (one writer per shard file). Nothing a bad input does escapes
it: errors become quarantine entries (:func:`rejection_entry`), and the :class:`BatchResult` says
what happened to each unit for :func:`pipeline.ingest.commit.commit`.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.crashpoints import crash_point
from pipeline.core.fs import read_file
from pipeline.core.records import Provenance, ReadError, Record, Rejection
from pipeline.ingest.plan import Batch, UnitTask, fingerprint, hash_files
from pipeline.signal.preprocess import SignalPlan, process
from pipeline.sources.base import ConfinedPaths, SourceReader, confined_path
from pipeline.store.base import Store
from pipeline.store.local import ShardInfo, StorageSpec, rows_for, single_threaded_codecs


def unreadable_reason(root: Path, files: list[str]) -> str:
    """Why unit files that hashed as "missing" cannot be read: a link (or path) leaving the source root
    is refused, by name (a folder of symlinks to another tree is a common way to build a subset; its
    records must not read as vanished); otherwise the files disappeared between planning and reading."""
    refused = []
    for rel in files:
        try:
            confined_path(root, rel)
        except ReadError as exc:
            refused.append(f"{exc} (a symbolic link to a file outside the root is not followed)")
    return "; ".join(refused) or f"file(s) disappeared before reading: {', '.join(files)}"


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


def rejection_entry(rej: Rejection, source: str, stage: str) -> dict[str, Any]:
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
    hashes = hash_files(reader.root, task.unit.files, cache)
    fp = fingerprint(reader.reader_id, hashes, task.unit.extra, plan_digest)
    return UnitTask(task.source, task.unit, hashes, fp), cache


# A unit's files are read whole, once, for hashing and decoding, up to this many bytes each; a larger
# file is hashed in blocks and read by its reader as before, so memory stays bounded.
LOAD_LIMIT_BYTES = 64 << 20


def loaded(
    task: UnitTask,
    reader: SourceReader,
    plan_digest: str,
    max_bytes: int = LOAD_LIMIT_BYTES,
    paths: ConfinedPaths | None = None,
) -> tuple[UnitTask, dict[str, list[Any]], dict[str, bytes] | None]:
    """:func:`hashed`, reading each file of the unit once and keeping its bytes for the reader.

    One pass: the sha256 is of the very bytes that are decoded, and the file is not read again.
    The third item maps root-relative paths to bytes; None where the reader does not decode
    loaded bytes (``decodes_loaded``) or a file exceeds ``max_bytes``. ``paths``: the batch's
    confinement of the reader's root (folders resolved once), else ``reader.resolve``.
    """
    if not reader.decodes_loaded:
        return (*hashed(task, reader, plan_digest), None)
    need_hash = task.file_hashes is None or task.fingerprint is None
    resolve = paths or reader.resolve
    data: dict[str, bytes] = {}
    cache: dict[str, list[Any]] = {}
    hashes: list[tuple[str, str]] = []
    for rel in task.unit.files:
        try:
            got = read_file(resolve(rel), sha256=need_hash, max_bytes=max_bytes)
        except (OSError, ReadError):
            hashes.append((rel, "missing"))  # as hash_files: the batch quarantines the unit
            continue
        if got is None:
            return (*hashed(task, reader, plan_digest), None)
        data[rel] = got.data
        if got.sha256 is not None:
            # the hash cache's key rule (plan.hash_files): abspath, links not followed
            cache[os.path.abspath(reader.root / rel)] = [got.size, got.mtime_ns, got.sha256]  # noqa: PTH100
            hashes.append((rel, got.sha256))
    if not need_hash:
        return task, {}, data
    fp = fingerprint(reader.reader_id, tuple(hashes), task.unit.extra, plan_digest)
    return UnitTask(task.source, task.unit, tuple(hashes), fp), cache, data


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
        self.rejections.setdefault(uid, []).append(rejection_entry(rej, source, stage))

    def read_unit(
        self, reader: SourceReader, task: UnitTask, data: Mapping[str, bytes] | None = None
    ) -> None:
        """Stream one unit's records in; bad input becomes rejections, never an exception.

        ``data``: the unit's file bytes already read by :func:`loaded`, decoded instead of re-read.
        """
        assert task.file_hashes is not None
        files = tuple(task.unit.files)
        missing = [f for f, h in task.file_hashes if h == "missing"]
        if missing:
            reason = unreadable_reason(reader.root, missing)
            self.reject(task.uid, task.source, Rejection(task.uid, files, reason), "read")
            return
        n = 0
        provenance = Provenance(files=task.file_hashes, reader=reader.reader_id)
        try:
            items = (
                reader.read(task.unit, provenance)
                if data is None
                else reader.read_loaded(task.unit, provenance, data)
            )
            for item in items:
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
    paths = {name: ConfinedPaths(reader.root) for name, reader in readers.items()}  # for this batch only
    for todo in batch.tasks:
        task, cache, data = loaded(todo, readers[todo.source], digest, paths=paths[todo.source])
        tasks.append((task, cache))
        crash_point("batch.read_unit")
        writer.read_unit(readers[task.source], task, data)
        del data  # a unit's bytes are not kept beyond its records
    writer.flush()
    outcomes = tuple(writer.outcome(task, cache) for task, cache in tasks)
    n = sum(s.n_records for s in writer.shards)
    seconds = time.perf_counter() - t0
    return BatchResult(
        batch.seq, tuple(writer.shards), outcomes, n, seconds, f"{socket.gethostname()}:{os.getpid()}"
    )
