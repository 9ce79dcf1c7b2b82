"""The store's names and its manifest: which shards and units a store holds, and which labels.

``manifest.json`` is the one object that says what a store holds; readers open only the shards it
lists, and a writer replaces it whole (atomically on disk, by one PUT on object storage).

The manifest is typed (pydantic): :class:`Manifest` holds :class:`ShardEntry`, :class:`UnitEntry`,
:class:`RunEntry` and an optional :class:`LabelsPointer`. :meth:`Manifest.to_json` writes back the
keys that were read or given, in the stored order, so re-saving a manifest keeps its bytes.

``manifest.json`` holds only what the store's content determines: two ingests of the same raw tree
into fresh stores write the same bytes (so DVC sees the same hash on every machine). Which flow run
wrote a shard and when (``ShardEntry.run``/``created``, ``Manifest.runs``) is the machine-local run
log ``runs.json`` beside it (:meth:`Manifest.run_log`), left out of the DVC hash like the stat cache.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pydantic
from pydantic import BaseModel, ConfigDict, Field

FORMAT_VERSION = 1
FILE_CACHE_NAME = "file_cache.json"
RUN_LOG_NAME = "runs.json"
MANIFEST_NAME = "manifest.json"
SHARDS_DIR = "shards"
LABELS_DIR = "labels"
LOCK_NAME = ".lock"


class StoreError(RuntimeError):
    """A store that is locked, corrupt or of another format version."""


class _Entry(BaseModel):
    # an unknown key is a manifest this code does not understand: refuse it rather than drop it
    model_config = ConfigDict(extra="forbid")

    def to_json(self) -> dict[str, Any]:
        """The JSON object as stored: the keys that were read or given, in declaration order."""
        return self.model_dump(mode="json", exclude_unset=True)


class ShardEntry(_Entry):
    """One published shard: its records, store digest (:func:`pipeline.store.group.files_digest`),
    rows superseded since, and the ingest run that wrote it."""

    n_records: int
    sha256: str
    nbytes: int
    dropped_rows: list[int] = Field(default_factory=list)
    run: str | None = None  # run log (runs.json), never in manifest.json
    created: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The stored JSON object, without the run bookkeeping (that is in the run log)."""
        return self.model_dump(mode="json", exclude_unset=True, exclude=set(_SHARD_RUN_FIELDS))

    def live_rows(self) -> npt.NDArray[np.int64]:
        """Row indices ``(n_live,)`` of the shard that are not superseded."""
        return live_rows(self.n_records, self.dropped_rows)


_SHARD_RUN_FIELDS = ("run", "created")


class UnitEntry(_Entry):
    """One input unit: its fingerprint, whether it became records, and where they are.

    ``segments`` are ``(shard, start, stop)`` row ranges; ``rejections`` are quarantine entries
    (``source``, ``item``, ``files``, ``reason``, ``category``, ``stage``) as ``quarantine.json`` holds them.
    """

    fingerprint: str
    status: str
    segments: list[tuple[str, int, int]] = Field(default_factory=list)
    n_records: int = 0
    rejections: list[dict[str, Any]] = Field(default_factory=list)


class RunEntry(_Entry):
    """One ingest run that changed the store (the last 50 are kept)."""

    flow_run_id: str | None = None
    started: str | None = None
    limit: int | None = None
    records_processed: int = 0
    units: int = 0


class SchemeLabels(_Entry):
    """One named label scheme's labels (:mod:`pipeline.store.labels`); ``tables_digest`` is the
    scheme's mapper digest (tables, vocabulary, rule), the one a model card records."""

    digest: str
    path: str
    n_records: int
    vocabulary: list[str]
    tables_digest: str


class LabelsPointer(_Entry):
    """The store's current unified labels (:mod:`pipeline.store.labels`): the default scheme's in
    the profile's vocabulary, and ``schemes`` (name → labels) for the other derived schemes."""

    digest: str
    path: str
    n_records: int
    vocabulary: list[str]
    schemes: dict[str, SchemeLabels] = Field(default_factory=dict)

    def paths(self) -> set[str]:
        """Every labels store this pointer references (relative to the store)."""
        return {self.path, *(s.path for s in self.schemes.values())}


class Manifest(BaseModel):
    """What a profile's store holds. ``file_cache`` is the machine-local stat cache, stored beside
    the manifest (``file_cache.json``), never in it; ``runs`` and each shard's ``run``/``created`` are
    the machine-local run log (``runs.json``, :meth:`run_log`)."""

    model_config = ConfigDict(extra="forbid")

    profile: str
    plan_digest: str = ""
    shards: dict[str, ShardEntry] = Field(default_factory=dict)
    units: dict[str, UnitEntry] = Field(default_factory=dict)
    file_cache: dict[str, list[Any]] = Field(default_factory=dict)
    labels: LabelsPointer | None = None
    next_seq: int = 0
    runs: list[RunEntry] = Field(default_factory=list)
    format: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        """The stored JSON object (``file_cache`` and the run log left out); every top-level key, always."""
        return {
            "format": self.format,
            "profile": self.profile,
            "plan_digest": self.plan_digest,
            "next_seq": self.next_seq,
            "shards": {n: e.to_json() for n, e in self.shards.items()},
            "units": {u: e.to_json() for u, e in self.units.items()},
            "labels": self.labels.to_json() if self.labels is not None else {},
        }

    def run_log(self) -> dict[str, Any]:
        """``runs.json``: the runs that changed the store and which run wrote each listed shard, when."""
        shards = {
            n: {k: getattr(e, k) for k in _SHARD_RUN_FIELDS if getattr(e, k) is not None}
            for n, e in self.shards.items()
        }
        return {"runs": [r.to_json() for r in self.runs], "shards": {n: v for n, v in shards.items() if v}}

    @classmethod
    def from_json(
        cls, data: Any, where: str, file_cache: dict[str, list[Any]], run_log: Any = None
    ) -> Manifest:
        """The manifest from its parsed JSON (and the run log's, when there is one); :class:`StoreError`
        naming ``where`` when it is of another format or malformed. Older stores kept the run log inside
        the manifest: it is read from there when ``run_log`` is missing."""
        if not isinstance(data, dict):
            raise StoreError(
                f"{where}: malformed manifest: expected a JSON object, found {type(data).__name__}"
            )
        if data.get("format") != FORMAT_VERSION:
            raise StoreError(
                f"{where}: store format {data.get('format')}, this code reads {FORMAT_VERSION}; "
                "delete the store folder and re-run ingest"
            )
        fields = {k: v for k, v in data.items() if k != "file_cache"}  # older stores kept it inside
        if fields.get("labels") == {}:
            fields["labels"] = None
        _merge_run_log(fields, run_log)
        try:
            return cls.model_validate({**fields, "file_cache": file_cache})
        except pydantic.ValidationError as exc:
            raise StoreError(f"{where}: malformed manifest: {_first_errors(exc)}") from None


def _merge_run_log(fields: dict[str, Any], run_log: Any) -> None:
    """Fill ``runs`` and the shards' ``run``/``created`` from a parsed ``runs.json`` (a torn or missing
    log leaves them as the manifest has them: it is bookkeeping, not data)."""
    if not isinstance(run_log, dict):
        return
    if isinstance(run_log.get("runs"), list):
        fields["runs"] = run_log["runs"]
    logged = run_log.get("shards")
    shards = fields.get("shards")
    if isinstance(logged, dict) and isinstance(shards, dict):
        for name, entry in shards.items():
            extra = logged.get(name)
            if isinstance(entry, dict) and isinstance(extra, dict):
                entry.update({k: extra[k] for k in _SHARD_RUN_FIELDS if k in extra})


def _first_errors(exc: pydantic.ValidationError, limit: int = 3) -> str:
    """The first few validation errors as ``shards.part-000000-00.n_records: <msg>``."""
    errs = exc.errors()
    parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errs[:limit]]
    more = f" (and {len(errs) - limit} more)" if len(errs) > limit else ""
    return "; ".join(parts) + more


def live_rows(n_records: int, dropped_rows: Sequence[int]) -> npt.NDArray[np.int64]:
    """Row indices ``(n_live,)`` of a shard of ``n_records`` rows that are not in ``dropped_rows``."""
    keep = np.ones(int(n_records), dtype=bool)
    if dropped_rows:
        keep[np.asarray(dropped_rows, dtype=np.int64)] = False
    return np.flatnonzero(keep)


def json_bytes(data: Any) -> bytes:
    """The one JSON encoding of store files (so a local and an object-store store hold the same bytes)."""
    return json.dumps(data, indent=1, sort_keys=False, default=str).encode("utf-8")
