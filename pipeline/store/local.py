"""The zarr v3 shard store on local disk (the shard group itself: :mod:`pipeline.store.group`).

Layout of one profile's store ``<store>/<profile>/``::

    manifest.json            shards (records, sha256, units, dropped rows), units (fingerprint, status),
                             label pointer, runs that changed the store; replaced atomically
    file_cache.json          (size, mtime_ns, sha256) by absolute raw-file path: a machine-local stat
                             cache, left out of the store's DVC hash (.dvcignore)
    shards/part-000000/      one zarr v3 group per shard, immutable once renamed into place:
        signal               (N, C, L) int16 steps of attrs.scale_mv (or float32 mV), one shard file,
                             inner chunks of ``records_per_chunk`` records, blosc zstd + bit-shuffle
        record_id source unit patient_id raw_labels meta provenance   (N,) strings (JSON where nested)
        orig_fs orig_len valid_len clipped                            (N,) numbers
    labels/<digest>.zarr     unified multi-hot labels (N, K) + record ids; re-derived from raw labels
    quarantine.json/.csv     every input that did not become a record, with its reason
    ingest_report.json       per-source reconciliation of files, units, records, quarantine
    .lock                    held (flock) by the one ingest writing this store

One writer per shard file: each shard is written whole by one task into a temporary folder and
published by ``os.rename``; a crash leaves only a temporary folder, removed by the next run.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import zarr

from pipeline.core.crashpoints import crash_point
from pipeline.core.fs import LockHeldError, exclusive_lock, write_atomic
from pipeline.signal import dsp as sig
from pipeline.store.base import Store

# The shard group's I/O lives in pipeline.store.group; these names stay importable from here.
from pipeline.store.group import (
    STRING_FIELDS,
    ShardInfo,
    ShardRows,
    StorageSpec,
    array,
    files_digest,
    fsync_tree,
    raw_labels_from_json,
    raw_labels_json,
    read_array,
    read_signal,
    read_strings,
    rows_for,
    signal_codec,
    single_threaded_codecs,
    tree_digest,
    write_group,
)
from pipeline.store.manifest import (
    FILE_CACHE_NAME,
    LOCK_NAME,
    MANIFEST_NAME,
    SHARDS_DIR,
    Manifest,
    StoreError,
    json_bytes,
)

__all__ = [
    "STRING_FIELDS",
    "ShardInfo",
    "ShardRows",
    "ShardStore",
    "StorageSpec",
    "array",
    "files_digest",
    "flock_holder",
    "raw_labels_from_json",
    "raw_labels_json",
    "read_array",
    "read_signal",
    "read_strings",
    "rows_for",
    "signal_codec",
    "single_threaded_codecs",
    "tree_digest",
    "write_group",
    "write_json_atomic",
]


class ShardStore(Store):
    """One profile's store folder on local disk (see the module docstring for the layout).

    Implements :class:`pipeline.store.base.Store`, through which everything outside ``pipeline.store``
    reaches it; ``root``, ``shard_dir`` and ``manifest_path`` are for tests and tools that inspect
    the folder itself.
    """

    is_remote = False

    def __init__(self, root: Path, profile: str) -> None:
        self.root = Path(root)
        self.profile = profile
        self.shard_dir = self.root / SHARDS_DIR
        self.manifest_path = self.root / MANIFEST_NAME
        self.file_cache_path = self.root / FILE_CACHE_NAME

    # --- primitives -----------------------------------------------------------------------

    def location(self, rel: str = "") -> str:
        return str(self.root / rel) if rel else str(self.root)

    def has(self, rel: str) -> bool:
        return (self.root / rel).exists()

    def read_bytes(self, rel: str) -> bytes:
        return (self.root / rel).read_bytes()

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Replace ``rel`` atomically (readers see the old bytes or the new, never a mix)."""
        write_atomic(self.root / rel, data, crash_at="json.before_replace")

    def list_names(self, rel: str = "") -> list[str]:
        folder = self.root / rel
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []

    def modified_ns(self, rel: str) -> int | None:
        try:
            return (self.root / rel).stat().st_mtime_ns
        except FileNotFoundError:
            return None

    def new_tree(self, rel: str) -> Path:
        """A fresh local folder to write ``rel`` into before :meth:`publish_tree` (beside it, so
        publishing is a rename)."""
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.with_name(f".tmp-{uuid.uuid4().hex[:8]}")

    def publish_tree(self, tmp: Path, rel: str) -> None:
        """Put the folder ``tmp`` (from :meth:`new_tree`) in place as ``rel``, replacing it."""
        path = self.root / rel
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)

    def remove(self, rel: str) -> None:
        path = self.root / rel
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)

    def open_group(self, rel: str) -> zarr.Group:
        return zarr.open_group(str(self.root / rel), mode="r", zarr_format=3)

    # --- lock -------------------------------------------------------------------------------

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive writer lock; a second ingest on the same store fails at once, clearly."""
        try:
            with exclusive_lock(self.root / ".lock"):
                yield
        except LockHeldError as exc:
            raise StoreError(
                f"{self.root}: another ingest is writing this store (holder: {exc.holder})"
            ) from None

    def lock_holder(self) -> str | None:
        return flock_holder(self.root / LOCK_NAME)

    # --- shards -----------------------------------------------------------------------------

    def shard_path(self, name: str) -> Path:
        return self.shard_dir / name

    def has_shard(self, name: str) -> bool:
        return self.shard_path(name).is_dir()

    def shard_digest(self, name: str) -> tuple[str, int]:
        return tree_digest(self.shard_path(name))

    def write_shard(
        self,
        name: str,
        signal: sig.F32,
        rows: ShardRows,
        storage: StorageSpec,
        attrs: dict[str, Any],
    ) -> ShardInfo:
        """Write ``signal`` ``(N, C, L)`` mV and its rows as one shard, published by rename."""
        final = self.shard_path(name)
        if final.exists():
            raise StoreError(f"{final}: shard already exists; shards are immutable")
        self.shard_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.shard_dir / f".tmp-{name}-{uuid.uuid4().hex[:8]}"
        try:
            write_group(tmp, signal, rows, storage, attrs)
            digest, nbytes = tree_digest(tmp)
            fsync_tree(tmp)
            crash_point("shard.before_rename")
            tmp.rename(final)
            crash_point("shard.after_rename")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return ShardInfo(name=name, n_records=len(rows.record_id), sha256=digest, nbytes=nbytes)

    def remove_debris(self, manifest: Manifest) -> list[str]:
        """Delete crash leftovers: temporary folders and shards the manifest does not list, temporary
        JSON files (``write_json_atomic`` killed before its rename) and temporary label stores."""
        removed: list[str] = []
        leftovers = [*self.root.glob(".*.tmp"), *(self.root / "labels").glob(".tmp-*")]
        if self.shard_dir.exists():
            listed = manifest.shards
            leftovers += [
                p for p in self.shard_dir.iterdir() if p.name.startswith(".tmp-") or p.name not in listed
            ]
        for p in sorted(leftovers):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            removed.append(p.relative_to(self.root).as_posix() if p.parent != self.shard_dir else p.name)
        return removed


def flock_holder(path: Path) -> str | None:
    """The holder of an ingest's ``flock`` on ``path`` (from ``/proc/locks``), or None.

    Read-only on purpose: taking even a shared lock to test it would make an ingest starting at
    that moment fail with "another ingest is writing this store".
    """
    try:
        st = path.stat()
        table = Path("/proc/locks").read_text(encoding="ascii")
    except OSError:
        return None
    ident = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in table.splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5] == ident:
            return f"pid {parts[4]}"
    return None


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` atomically (:func:`pipeline.core.fs.write_atomic`; readers never see half),
    reaching the ``json.before_replace`` crash point between the fsync and the rename."""
    write_atomic(path, json_bytes(data), crash_at="json.before_replace")
