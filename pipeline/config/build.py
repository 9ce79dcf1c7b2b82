"""Params → the library's own objects: a profile's ``SignalPlan`` and ``StorageSpec``, the ``StoreRoot``.

Each is built with one constructor call from the params model's dump (no field-by-field copies,
:func:`pipeline.config.feed.from_params`), so a new setting is declared once, in the params model and
the library dataclass. Kept apart from the rest of ``pipeline.config`` because it imports the signal
and store code: loading params does not.

May import: ``pipeline.signal``, ``pipeline.store``.
"""

from __future__ import annotations

from typing import Any

from pipeline.config.feed import from_params
from pipeline.config.profiles import Profile
from pipeline.config.stages import IngestParams
from pipeline.signal.preprocess import SignalPlan
from pipeline.store.local import StorageSpec
from pipeline.store.root import StoreRoot


def signal_plan(profile: Profile) -> SignalPlan:
    """The profile's preprocessing plan. Its digest is part of every shard's fingerprint: the values
    (types included: ``notch_hz`` a float, aliases sorted) must stay as they are or every record
    re-ingests (tests/test_config.py pins the digests of the shipped profiles)."""
    values: dict[str, Any] = {
        **profile.model_dump(),
        **profile.quality.model_dump(),
        "length": profile.length,
        "lead_aliases": tuple(sorted((k, tuple(v)) for k, v in profile.lead_aliases.items())),
        "notch_hz": float(profile.notch_hz) if profile.notch_hz is not None else None,
    }
    return from_params(SignalPlan, values)


def storage_spec(profile: Profile) -> StorageSpec:
    """How the profile's signals are stored (dtype, scale, records per chunk)."""
    return from_params(StorageSpec, profile.storage.model_dump())


def store_root(cfg: IngestParams, smoke: bool = False) -> StoreRoot:
    """Where the profile stores live: ``ingest.object_store`` when set, else the local folders."""
    if cfg.object_store is not None:
        root = StoreRoot.of(cfg.object_store.url, cfg.object_store.options)
        return root.child("_smoke") if smoke else root
    return StoreRoot.of(cfg.smoke_store if smoke else cfg.store)
