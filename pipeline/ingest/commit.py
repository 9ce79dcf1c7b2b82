"""Ingest step 3, the commit: fold batch results into the manifest, publish it, write the reports.

:func:`commit` updates the manifest atomically, drops superseded rows and dead shards, and writes
the quarantine report (``quarantine.json``/``.csv``: :func:`quarantine_entries`) and the
reconciliation report (``ingest_report.json``: :func:`reconcile`).
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.core.crashpoints import crash_point
from pipeline.ingest.batch import BatchResult, rejection_entry
from pipeline.ingest.plan import IngestPlan, SourceScan
from pipeline.store.base import Store
from pipeline.store.manifest import Manifest, RunEntry, ShardEntry, UnitEntry


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
    _fold_results(plan, results, manifest, run_info)
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
        store.write_json("ingest_report.json", stored_report(report))
    crash_point("commit.done")
    return report


def _fold_results(
    plan: IngestPlan, results: Sequence[BatchResult], manifest: Manifest, run_info: Mapping[str, Any]
) -> None:
    """The new shards and unit outcomes into ``manifest``; superseded rows dropped, dead shards gone."""
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


def stored_report(report: Mapping[str, Any]) -> dict[str, Any]:
    """``ingest_report.json`` as stored: without the sources' absolute roots, which name the machine, not
    the data (the returned report and the stage's provenance record keep them), so two ingests of the
    same raw tree from different folders store the same bytes."""
    sources = {
        name: {k: v for k, v in src.items() if k != "root"} if isinstance(src, dict) else src
        for name, src in report.get("sources", {}).items()
    }
    return {**report, "sources": sources}


def _stored_report(store: Store) -> Any:
    return store.read_json("ingest_report.json", None)


def quarantine_entries(plan: IngestPlan, manifest: Manifest) -> list[dict[str, Any]]:
    """Every input that is not a record now: discovery rejections + unit/record rejections."""
    return quarantine_of(plan.scans, manifest)


def quarantine_of(scans: Mapping[str, SourceScan], manifest: Manifest) -> list[dict[str, Any]]:
    """quarantine.json's entries for these source scans and manifest (verify compares with this)."""
    entries: list[dict[str, Any]] = []
    for name, scan in scans.items():
        entries.extend(rejection_entry(r, name, "discover") for r in scan.discovery.rejected)
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
