"""Check one profile's shard store against its manifest and against the raw inputs it came from.

:func:`verify_store` reads a :class:`~pipeline.store.base.Store` (local or object storage) and the
readers of the profile's sources (``pipeline.config.build_readers``) and never writes anything.
Every finding names the file or key, what was expected and what was found, and has a *kind* that
says what to do:

* ``corrupt``: published data contradicts the manifest (a shard missing, its bytes changed, record
  counts or array lengths wrong, a record id live twice, unit segments pointing at wrong rows).
  Restore the store or delete it and re-run ingest.
* ``lagging``: a file derived from the manifest (unified labels, quarantine report, ingest report)
  or a shard folder does not match it; an ingest was interrupted (or is running). Re-run ingest.
* ``stale``: raw inputs or parameters changed since the ingest (a file's sha256 differs, a new or
  vanished input, another preprocessing plan or label mapping). Re-run ingest.
* ``accounting``: a raw file the source's reader placed nowhere, or in more than one place
  (a unit, the source metadata, the discovery rejections): a reader's discovery is wrong.

Leftovers that are harmless (``.tmp-*`` folders, temporary JSON files, unreferenced label
stores) are warnings, as are sources whose root is missing (their inputs cannot be checked).
The store is clean (``ok``) when there is no problem of any kind.

The checks live in private modules behind this function: ``_shards`` (manifest, shards, segments),
``_labels``, ``_inputs`` (raw files and units), ``_quarantine``, ``_report`` (ingest report, debris,
counts); ``_result`` holds :class:`VerifyResult`.

May import: :mod:`pipeline.ingest.plan` (discovery and fingerprints as ingest does them),
:mod:`pipeline.ingest.commit` (the quarantine entries ingest writes), `pipeline.store`,
`pipeline.sources` and `pipeline.core`.
"""

from __future__ import annotations

from collections.abc import Mapping

from pipeline.ingest.verify._inputs import check_inputs, scan_sources
from pipeline.ingest.verify._labels import check_labels
from pipeline.ingest.verify._quarantine import check_quarantine
from pipeline.ingest.verify._report import check_debris, check_report, count_store
from pipeline.ingest.verify._result import KIND_HINTS, Checks, VerifyResult
from pipeline.ingest.verify._shards import (
    check_duplicates,
    check_lock,
    check_manifest,
    check_segments,
    check_shards,
    check_unlisted,
)
from pipeline.sources.base import SourceReader
from pipeline.store.base import Store

__all__ = ["KIND_HINTS", "VerifyResult", "verify_store"]


def verify_store(
    store: Store,
    readers: Mapping[str, SourceReader],
    *,
    plan_digest: str | None = None,
    mapper_digest: str | None = None,
) -> VerifyResult:
    """Check ``store`` against its manifest and the raw inputs of ``readers``; never writes.

    ``plan_digest`` (``SignalPlan.digest()`` of the current params) and ``mapper_digest``
    (``LabelMapper.digest`` of the current tables) are optional: given, a store built with other
    preprocessing or label mapping is reported ``stale``. Raw files are re-hashed (sha256).
    """
    ctx = Checks(store, VerifyResult(profile=store.profile, store=store.location()))
    check_lock(ctx)
    manifest = check_manifest(ctx)
    if manifest is None:
        return ctx.result
    shards = check_shards(ctx, manifest)
    check_unlisted(ctx, manifest)
    check_duplicates(ctx, shards)
    check_segments(ctx, manifest, shards)
    check_labels(ctx, manifest, shards, mapper_digest)
    if plan_digest is not None and manifest.plan_digest and plan_digest != manifest.plan_digest:
        ctx.problem(
            "plan",
            "stale",
            "manifest.json: plan_digest",
            f"{plan_digest[:16]} (the profile's preprocessing now)",
            f"{manifest.plan_digest[:16]}: shards were preprocessed with other params",
        )
    scans = scan_sources(ctx, manifest, readers)
    quarantine = check_quarantine(ctx, manifest, scans, readers)
    check_inputs(ctx, manifest, scans, readers, shards)
    check_report(ctx, manifest, scans, quarantine)
    check_debris(ctx, manifest)
    count_store(ctx, manifest, shards, quarantine)
    return ctx.result
