"""The store's names and its manifest: which shards and units a store holds, and which labels.

``manifest.json`` is the one object that says what a store holds; readers open only the shards it
lists, and a writer replaces it whole (atomically on disk, by one PUT on object storage).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

FORMAT_VERSION = 1
FILE_CACHE_NAME = "file_cache.json"
MANIFEST_NAME = "manifest.json"
SHARDS_DIR = "shards"
LABELS_DIR = "labels"
LOCK_NAME = ".lock"


class StoreError(RuntimeError):
    """A store that is locked, corrupt or of another format version."""


@dataclass
class Manifest:
    profile: str
    plan_digest: str = ""
    shards: dict[str, dict[str, Any]] = field(default_factory=dict)
    units: dict[str, dict[str, Any]] = field(default_factory=dict)
    file_cache: dict[str, list[Any]] = field(default_factory=dict)
    labels: dict[str, Any] = field(default_factory=dict)
    next_seq: int = 0
    runs: list[dict[str, Any]] = field(default_factory=list)
    format: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "profile": self.profile,
            "plan_digest": self.plan_digest,
            "next_seq": self.next_seq,
            "shards": self.shards,
            "units": self.units,
            "labels": self.labels,
            "runs": self.runs,
        }


def live_rows(entry: dict[str, Any]) -> npt.NDArray[np.int64]:
    """Row indices of a manifest shard entry that are not superseded."""
    keep = np.ones(int(entry["n_records"]), dtype=bool)
    dropped = entry.get("dropped_rows", [])
    if dropped:
        keep[np.asarray(dropped, dtype=np.int64)] = False
    return np.flatnonzero(keep)


def json_bytes(data: Any) -> bytes:
    """The one JSON encoding of store files (so a local and an object-store store hold the same bytes)."""
    return json.dumps(data, indent=1, sort_keys=False, default=str).encode("utf-8")
