"""The store interface: what every part of the pipeline may ask of a profile's store.

:class:`Store` is implemented in full by the store on local disk (:class:`pipeline.store.local.ShardStore`)
and the one on object storage (:class:`pipeline.store.remote.RemoteShardStore`). Code outside
``pipeline.store`` names files by their path relative to the store (``"quarantine.json"``,
``"labels/<digest>.zarr"``) and shards by name, never by a local path, so ingest, verify, lineage,
relabel, split and the training loader run on either.
"""

from __future__ import annotations

import abc
import hashlib
import json
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import zarr

from pipeline.signal import dsp as sig
from pipeline.store.blocks import ShardSignal, describe_signal
from pipeline.store.manifest import (
    FILE_CACHE_NAME,
    MANIFEST_NAME,
    RUN_LOG_NAME,
    SHARDS_DIR,
    Manifest,
    StoreError,
    json_bytes,
)
from pipeline.store.root import StoreRoot


class Store(abc.ABC):
    """One profile's store (layout: :mod:`pipeline.store.local`), wherever it lives.

    ``remote`` is None on local disk; on object storage it is the :class:`StoreRoot` from which each
    reading process opens its own connection (ranged reads of shard files in DataLoader workers).
    """

    profile: str
    is_remote: bool = False
    remote: StoreRoot | None = None

    # --- primitives ---------------------------------------------------------------------------

    @abc.abstractmethod
    def location(self, rel: str = "") -> str:
        """Where ``rel`` lives, for messages and lineage (a path here, a URL on object storage)."""

    @abc.abstractmethod
    def has(self, rel: str) -> bool:
        """Whether a file or folder ``rel`` exists."""

    @abc.abstractmethod
    def read_bytes(self, rel: str) -> bytes:
        """The bytes of ``rel``; FileNotFoundError when there is none."""

    @abc.abstractmethod
    def write_bytes(self, rel: str, data: bytes) -> None:
        """Replace ``rel`` at once (readers see the old bytes or the new, never a mix)."""

    @abc.abstractmethod
    def list_names(self, rel: str = "") -> list[str]:
        """Names of the entries directly in folder ``rel``, sorted (empty when there is none)."""

    @abc.abstractmethod
    def modified_ns(self, rel: str) -> int | None:
        """When ``rel`` was last written (ns since the epoch); None when it does not exist."""

    @abc.abstractmethod
    def new_tree(self, rel: str) -> Path:
        """A fresh local folder to write ``rel`` into before :meth:`publish_tree`."""

    @abc.abstractmethod
    def publish_tree(self, tmp: Path, rel: str) -> None:
        """Put the folder ``tmp`` (from :meth:`new_tree`) in place as ``rel``, replacing it."""

    @abc.abstractmethod
    def remove(self, rel: str) -> None:
        """Delete the file or folder ``rel`` (nothing when it does not exist)."""

    @abc.abstractmethod
    def open_group(self, rel: str) -> zarr.Group:
        """The zarr v3 group at ``rel``, read-only."""

    @abc.abstractmethod
    def lock(self) -> AbstractContextManager[None]:
        """Exclusive writer lock; a second ingest on the same store fails at once, clearly."""

    @abc.abstractmethod
    def lock_holder(self) -> str | None:
        """Who holds the writer lock now (for messages), or None; never takes the lock."""

    # --- shards -------------------------------------------------------------------------------

    @abc.abstractmethod
    def write_shard(self, name: str, signal: sig.F32, rows: Any, storage: Any, attrs: dict[str, Any]) -> Any:
        """Write ``signal`` ``(N, C, L)`` mV and its rows as one immutable shard; a ShardInfo."""

    @abc.abstractmethod
    def shard_digest(self, name: str) -> tuple[str, int]:
        """The store digest (:func:`pipeline.store.group.files_digest`) of shard ``name`` as stored:
        (sha256, bytes)."""

    @abc.abstractmethod
    def remove_debris(self, manifest: Manifest) -> list[str]:
        """Delete crash leftovers no manifest lists; returns their names relative to the store."""

    def has_shard(self, name: str) -> bool:
        return self.has(f"{SHARDS_DIR}/{name}")

    def shard_names(self) -> list[str]:
        """Every entry under ``shards/``: published shards, unlisted ones and temporary folders."""
        return self.list_names(SHARDS_DIR)

    def shard_location(self, name: str) -> str:
        return self.location(f"{SHARDS_DIR}/{name}")

    def open_shard(self, name: str) -> zarr.Group:
        return self.open_group(f"{SHARDS_DIR}/{name}")

    def signal_blocks(self, name: str) -> ShardSignal:
        """How to read shard ``name``'s signal block by block (see :mod:`pipeline.store.blocks`)."""
        return describe_signal(self, name)

    # --- manifest -----------------------------------------------------------------------------

    def read_json(self, rel: str, default: Any) -> Any:
        """JSON at ``rel``; ``default`` when it is missing or unreadable."""
        try:
            return json.loads(self.read_bytes(rel))
        except (OSError, json.JSONDecodeError):
            return default

    def write_json(self, rel: str, data: Any) -> None:
        """Replace the JSON at ``rel`` (:func:`pipeline.store.manifest.json_bytes`, atomically)."""
        self.write_bytes(rel, json_bytes(data))

    def has_manifest(self) -> bool:
        return self.has(MANIFEST_NAME)

    def manifest_sha256(self) -> str:
        return hashlib.sha256(self.read_bytes(MANIFEST_NAME)).hexdigest()

    def load_manifest(self) -> Manifest:
        """The manifest (an empty one before the first ingest); StoreError when unreadable."""
        where = self.location(MANIFEST_NAME)
        try:
            raw = self.read_bytes(MANIFEST_NAME)
        except FileNotFoundError:
            return Manifest(profile=self.profile)
        try:
            data = json.loads(raw)
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise StoreError(f"{where}: unreadable manifest: {exc}") from exc
        legacy = data.get("file_cache", {}) if isinstance(data, dict) else {}
        run_log = self.read_json(RUN_LOG_NAME, None)
        return Manifest.from_json(data, where, self._load_file_cache(legacy), run_log)

    def save_manifest(self, manifest: Manifest) -> None:
        """Publish the manifest, then the run log beside it (a crash between the two loses one run's
        bookkeeping, never data)."""
        self.write_json(MANIFEST_NAME, manifest.to_json())
        log = manifest.run_log()
        if self.read_json(RUN_LOG_NAME, None) != log:
            self.write_json(RUN_LOG_NAME, log)

    def _load_file_cache(self, legacy: dict[str, list[Any]]) -> dict[str, list[Any]]:
        """The stat cache (beside the manifest; older stores kept it inside)."""
        cache = self.read_json(FILE_CACHE_NAME, None)
        # a missing or torn cache only costs re-hashing
        return dict(legacy) if not isinstance(cache, dict) else cache

    def save_file_cache(self, cache: dict[str, list[Any]]) -> None:
        if self._load_file_cache({}) != cache:
            self.write_json(FILE_CACHE_NAME, cache)
