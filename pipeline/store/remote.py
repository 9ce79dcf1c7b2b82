"""Shard stores on object storage (S3 and S3-compatible servers, through fsspec/s3fs).

The layout is the local one (:mod:`pipeline.store.local`) under ``<url>/<profile>/``; the bytes of every
shard, label store and JSON file are the same as on local disk. What differs is publishing, since
object stores have no rename:

* A shard is written whole into a local temporary folder by the one task that owns it, hashed
  there, and uploaded under its final key prefix. It is not part of the store until the manifest
  lists it. The manifest is one object replaced by one PUT, which S3 makes visible all at once
  (a reader gets the old manifest or the new one), and readers open only the shards a manifest
  lists, so no reader ever sees a half-uploaded shard. An upload cut short leaves unlisted
  objects; the next ingest deletes them (:meth:`RemoteShardStore.remove_debris`).
* The writer lock is an object created with a conditional PUT (``If-None-Match: *``): a second
  ingest on the same store fails at once. A killed ingest leaves its lock; the message says which
  object to delete.

Credentials come from the environment (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` or any other
botocore source), never from params; the endpoint and other fsspec options from
``ingest.object_store.options``.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import zarr
from zarr.storage import FsspecStore

from pipeline.core.crashpoints import crash_point
from pipeline.signal import dsp as sig
from pipeline.store.base import Store
from pipeline.store.group import ShardInfo, ShardRows, StorageSpec, files_digest, tree_digest, write_group
from pipeline.store.local import ShardStore
from pipeline.store.manifest import LABELS_DIR, LOCK_NAME, MANIFEST_NAME, SHARDS_DIR, Manifest, StoreError
from pipeline.store.root import StoreRoot


def open_store(root: StoreRoot | Path | str, profile: str) -> Store:
    """Profile ``profile``'s store under ``root``: local folder or object store."""
    r = StoreRoot.of(root)
    if not r.is_remote:
        return ShardStore(Path(r.url.removeprefix("file://")) / profile, profile)
    return RemoteShardStore(r, profile)


def list_profiles(root: StoreRoot | Path | str) -> list[str]:
    """Names of the profile stores under ``root`` that have a manifest, sorted."""
    r = StoreRoot.of(root)
    if not r.is_remote:
        folder = Path(r.url.removeprefix("file://"))
        return (
            sorted(p.name for p in folder.iterdir() if (p / MANIFEST_NAME).is_file())
            if folder.is_dir()
            else []
        )
    fs, base = r.filesystem()
    if not fs.exists(base):
        return []
    names = (Path(str(entry)).name for entry in fs.ls(base, detail=False))
    return sorted(n for n in names if fs.exists(f"{base}/{n}/{MANIFEST_NAME}"))


class RemoteShardStore(Store):
    """A profile's store on object storage; see the module docstring for how it publishes."""

    is_remote = True

    def __init__(self, root: StoreRoot, profile: str) -> None:
        self.spec = root.child(profile)
        self.remote = self.spec
        self.profile = profile
        self.url = self.spec.url.rstrip("/")
        self.fs, self.base = self.spec.filesystem()

    def _key(self, rel: str) -> str:
        return f"{self.base}/{rel}" if rel else self.base

    @contextmanager
    def _reaching(self, rel: str) -> Iterator[None]:
        """A store that cannot be reached (endpoint, bucket, credentials) is a StoreError naming the
        URL, not a botocore traceback. A missing object stays FileNotFoundError."""
        try:
            yield
        except (FileNotFoundError, FileExistsError):
            raise
        except Exception as exc:  # noqa: BLE001 - botocore/aiohttp raise many unrelated types
            raise StoreError(
                f"{self.location(rel)}: object store not reachable: {exc} (check ingest.object_store.url, "
                "ingest.object_store.options.endpoint_url and the AWS_* credentials in the environment)"
            ) from exc

    # --- primitives -------------------------------------------------------------------------

    def location(self, rel: str = "") -> str:
        return f"{self.url}/{rel}" if rel else self.url

    def has(self, rel: str) -> bool:
        with self._reaching(rel):
            return bool(self.fs.exists(self._key(rel)))

    def read_bytes(self, rel: str) -> bytes:
        try:
            with self._reaching(rel):
                return bytes(self.fs.cat_file(self._key(rel)))
        except FileNotFoundError:
            raise FileNotFoundError(self.location(rel)) from None

    def write_bytes(self, rel: str, data: bytes) -> None:
        with self._reaching(rel):
            self.fs.pipe_file(self._key(rel), data)

    def list_names(self, rel: str = "") -> list[str]:
        key = self._key(rel)
        with self._reaching(rel):
            if not self.fs.isdir(key):
                return []
            return sorted(Path(str(entry)).name for entry in self.fs.ls(key, detail=False))

    def modified_ns(self, rel: str) -> int | None:
        try:
            with self._reaching(rel):
                info = self.fs.info(self._key(rel))
        except FileNotFoundError:
            return None
        stamp = info.get("LastModified")
        return int(stamp.timestamp() * 1e9) if isinstance(stamp, datetime) else None

    def new_tree(self, rel: str) -> Path:
        return Path(tempfile.mkdtemp(prefix="ecgpipe-upload-")) / Path(rel).name

    def publish_tree(self, tmp: Path, rel: str) -> None:
        try:
            self._upload(tmp, rel)
        finally:
            shutil.rmtree(tmp.parent, ignore_errors=True)

    def remove(self, rel: str) -> None:
        key = self._key(rel)
        if self.fs.exists(key):
            self.fs.rm(key, recursive=True)

    def open_group(self, rel: str) -> zarr.Group:
        store = FsspecStore.from_url(
            self.location(rel), storage_options=dict(self.spec.options), read_only=True
        )
        return zarr.open_group(store, mode="r", zarr_format=3)

    # --- lock -------------------------------------------------------------------------------

    @contextmanager
    def lock(self) -> Iterator[None]:
        """A lock object made by a conditional PUT; fails at once when another ingest holds it."""
        key = self._key(LOCK_NAME)
        holder = f"host {socket.gethostname()} pid {os.getpid()} since {datetime.now(UTC).isoformat()}"
        try:
            with self._reaching(LOCK_NAME):
                self.fs.pipe_file(key, holder.encode(), mode="create")
        except FileExistsError:
            try:
                found = self.read_bytes(LOCK_NAME).decode(errors="replace").strip()
            except FileNotFoundError:
                found = "released just now; retry"
            raise StoreError(
                f"{self.url}: another ingest is writing this store (holder: {found}); if none is "
                f"running (a killed ingest leaves its lock), delete {self.location(LOCK_NAME)}"
            ) from None
        try:
            yield
        finally:
            self.fs.rm_file(key)

    def lock_holder(self) -> str | None:
        try:
            return self.read_bytes(LOCK_NAME).decode(errors="replace").strip() or "unknown"
        except FileNotFoundError:
            return None

    # --- shards -----------------------------------------------------------------------------

    def write_shard(
        self, name: str, signal: sig.F32, rows: ShardRows, storage: StorageSpec, attrs: dict[str, Any]
    ) -> ShardInfo:
        """Write ``signal`` ``(N, C, L)`` mV and its rows as one shard locally, then upload it whole.

        Objects already under the shard's prefix can only be an earlier, failed attempt of this
        same batch (names come from the manifest's sequence under the writer lock): replaced.
        """
        tmp = self.new_tree(f"{SHARDS_DIR}/{name}")
        try:
            write_group(tmp, signal, rows, storage, attrs)
            digest, nbytes = tree_digest(tmp)
            crash_point("shard.before_rename")
            rel = f"{SHARDS_DIR}/{name}"
            self.remove(rel)
            self._upload(tmp, rel)
            crash_point("shard.after_rename")
        finally:
            shutil.rmtree(tmp.parent, ignore_errors=True)
        return ShardInfo(name=name, n_records=len(rows.record_id), sha256=digest, nbytes=nbytes)

    def _upload(self, tmp: Path, rel: str) -> None:
        """Upload every file under the local folder ``tmp`` to ``rel``, then check what arrived.

        A short or missing object raises OSError, which the ingest task retries.
        """
        files = sorted(p for p in tmp.rglob("*") if p.is_file())
        rels = [p.relative_to(tmp).as_posix() for p in files]
        half = len(files) // 2
        for part in (slice(0, half), slice(half, None)):
            if files[part]:
                self.fs.put([str(p) for p in files[part]], [self._key(f"{rel}/{r}") for r in rels[part]])
            if part.start == 0:
                crash_point("shard.upload_half")
        found = {
            Path(k).relative_to(self._key(rel)).as_posix(): int(info["size"])
            for k, info in self.fs.find(self._key(rel), detail=True).items()
        }
        expected = {r: p.stat().st_size for r, p in zip(rels, files, strict=True)}
        if found != expected:
            short = sorted(r for r in expected if found.get(r) != expected[r])[:3]
            raise OSError(f"{self.location(rel)}: upload incomplete (missing or short: {short})")

    def shard_digest(self, name: str) -> tuple[str, int]:
        """:func:`pipeline.store.group.tree_digest` of a shard as stored: (sha256, bytes)."""
        key = self._key(f"{SHARDS_DIR}/{name}")
        rels = [Path(obj).relative_to(key).as_posix() for obj in self.fs.find(key)]
        return files_digest(rels, lambda rel: bytes(self.fs.cat_file(f"{key}/{rel}")))

    def remove_debris(self, manifest: Manifest) -> list[str]:
        """Delete what no manifest lists: shards from uploads cut short, label stores of a crashed
        relabel. Names are relative to the store, as for a local store."""
        removed: list[str] = []
        keep_labels = (
            {Path(p).name for p in manifest.labels.paths()} if manifest.labels is not None else set()
        )
        for folder, keep in ((SHARDS_DIR, set(manifest.shards)), (LABELS_DIR, keep_labels)):
            key = self._key(folder)
            if not self.fs.exists(key):
                continue
            for entry in sorted(self.fs.ls(key, detail=False)):
                name = Path(str(entry)).name
                if name not in keep:
                    self.fs.rm(str(entry), recursive=True)
                    removed.append(name if folder == SHARDS_DIR else f"{folder}/{name}")
        return removed
